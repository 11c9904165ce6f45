// The offline page in headless Debian Chromium against a real `crm serve --demo`: sign in, first
// sync (a provision and a snapshot), edit a lead and add a photo with the network cut, reload the
// page while the server is down (the edit, the photo's bytes and the queue come back from
// IndexedDB), start the server again, sync, and the server has the edit and the photo; a change made
// on the server meanwhile arrives in the same round. CRM_BIN names the crm binary (default target/debug/crm).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBrowser } from './browser.mjs';

const shots = process.env.SCREENSHOT_DIR ?? fileURLToPath(new URL('../screenshots/', import.meta.url));
const crmBin = process.env.CRM_BIN ?? fileURLToPath(new URL('../../../target/debug/crm', import.meta.url));
const password = 'browser-sync-password-1';
let browser, crm, dir, api, log = '';

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

let port;

/** Starts `crm serve --demo` on `port` over the test's database (again: the same data). */
async function startCrm() {
  crm = spawn(crmBin, ['--database', join(dir, 'server.db'), 'serve', '--demo', '--listen', `127.0.0.1:${port}`,
    '--cors-origin', browser.base.replace(/\/$/, '')], {
    env: { ...process.env, CRM_DEMO_PASSWORD: password, CRM_JWT_SECRET: 'offline-secret-offline-secret-offline-secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  crm.stdout.on('data', (d) => { log += d; });
  crm.stderr.on('data', (d) => { log += d; });
  let failed = null;
  crm.once('error', (e) => { failed = e; });   // no such binary: say so at once
  for (let i = 0; i < 600; i++) {
    if (failed) throw new Error(`cannot start ${crmBin}: ${failed.message}`);
    const up = await fetch(`${api}/readyz`).then((r) => r.ok, () => false);
    if (up) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`crm serve did not start:\n${log}`);
}

async function stopCrm() {
  const exited = new Promise((resolve) => crm.once('exit', resolve));
  crm.kill('SIGTERM');
  await exited;
}

before(async () => {
  browser = await openBrowser({ width: 900, height: 700 });
  dir = mkdtempSync(join(tmpdir(), 'crm-offline-'));
  port = await freePort();
  api = `http://127.0.0.1:${port}`;
  // The page's origin may call the API (CORS), as a web app served from its own host would.
  await startCrm();
});

after(async () => {
  await browser?.close();
  crm?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(method, path, token, body, headers = {}) {
  const r = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body && JSON.stringify(body),
  });
  const json = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

test('edit offline, reload, sync: the edit reaches the server and the server\'s changes arrive', async () => {
  const organization = log.match(/organization ([0-9a-f-]{36})/)[1];
  const email = log.split('\n').map((l) => l.trim().split(/\s+/)).find((w) => w[0] === 'sales')[1];
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${browser.base}offline.html?server=${encodeURIComponent(api)}`);
  await page.waitForSelector('body[data-ready=true]', { timeout: 15_000 });

  await page.fill('#organization', organization);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#sign-in button[type=submit]');
  await page.waitForSelector('#status[data-state=synced]', { timeout: 60_000 });
  const [firstSync, saveMs] = [await page.textContent('#status'), await page.getAttribute('#status', 'data-save-ms')];
  const rows = await page.$$('#leads tbody tr');
  assert.ok(rows.length > 0, 'the first sync brought the user\'s leads');
  const first = await page.getAttribute('#leads tbody tr:first-child', 'data-id');
  const second = await page.getAttribute('#leads tbody tr:nth-child(2)', 'data-id');
  assert.equal(await page.textContent('#pending'), '0');

  // Offline: the edit is made by the core in the tab and queued; a sync fails and keeps it.
  await browser.context.setOffline(true);
  await page.fill(`tr[data-id="${first}"] input[name=notes]`, 'gate code 12, typed offline');
  await page.click(`tr[data-id="${first}"] button`);
  assert.equal(await page.textContent('#pending'), '1');
  // And a photo of the same lead: the bytes stay in the tab (and IndexedDB) until the sync.
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(300, 7)]);
  await page.setInputFiles(`tr[data-id="${first}"] input[name=photo]`, { name: 'roof.png', mimeType: 'image/png', buffer: png });
  await page.waitForFunction(() => document.getElementById('pending').textContent === '2');
  await page.click('#sync');
  await page.waitForSelector('#status[data-state=failed]');
  assert.match(await page.textContent('#problem'), /your changes are kept/);

  // Meanwhile on the server: another lead's city changes. Then the server goes away.
  const { access_token: token } = await call('POST', '/api/v1/auth/login', '', { organization, email, password });
  const other = await call('GET', `/api/v1/leads/${second}`, token);
  await call('PATCH', `/api/v1/leads/${second}`, token, { city: 'York' }, { 'if-match': `"${other.version}"` });
  await stopCrm();
  await browser.context.setOffline(false);

  // A reload with the server still out of reach: the page opens its IndexedDB copy; the edit and the
  // queue are still there, and a sync keeps them.
  await page.reload();
  await page.waitForSelector('body[data-ready=true]');
  assert.equal(await page.inputValue(`tr[data-id="${first}"] input[name=notes]`), 'gate code 12, typed offline');
  assert.match(await page.textContent(`tr[data-id="${first}"] .photos`), /^1 photo/);
  assert.equal(await page.textContent('#pending'), '2');
  await page.click('#sync');
  await page.waitForSelector('#status[data-state=failed]');
  assert.equal(await page.textContent('#pending'), '2');

  // Online again: the sync sends the edit and brings the server's change.
  await startCrm();
  await page.click('#sync');
  await page.waitForSelector('#status[data-state=synced]');
  assert.equal(await page.textContent('#pending'), '0');
  assert.equal((await call('GET', `/api/v1/leads/${first}`, token)).notes, 'gate code 12, typed offline');
  // The photo went up with its bytes (kept in IndexedDB across the reload).
  const [att] = (await call('GET', `/api/v1/leads/${first}/attachments`, token)).items;
  assert.equal(att?.file_name, 'roof.png');
  const content = await fetch(`${api}/api/v1/attachments/${att.id}/content`, { headers: { authorization: `Bearer ${token}` } });
  assert.deepEqual(Buffer.from(await content.arrayBuffer()), png);
  assert.equal(await page.textContent(`tr[data-id="${second}"] td:nth-child(2)`), 'York');

  // And once more after a reload: what the sync brought is kept too.
  await page.reload();
  await page.waitForSelector('body[data-ready=true]');
  const records = await page.evaluate(() => document.querySelectorAll('#leads tbody tr').length);
  console.log(`first sync (${firstSync}): saved to IndexedDB in ${saveMs} ms; `
    + `reopened from IndexedDB in ${await page.getAttribute('body', 'data-open-ms')} ms (${records} leads drawn)`);
  assert.equal(await page.textContent(`tr[data-id="${second}"] td:nth-child(2)`), 'York');
  assert.equal(await page.textContent('#pending'), '0');
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'offline.png') });
  assert.deepEqual(errors, []);
});
