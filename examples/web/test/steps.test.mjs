// The step checklist page in headless Debian Chromium: ticking steps runs crm-core's transitions in the
// tab, completing the job early shows the core's reasons (open required steps, then the missing
// signature), and the job completes once both are met. Saves a screenshot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { openBrowser } from './browser.mjs';

const shots = process.env.SCREENSHOT_DIR ?? fileURLToPath(new URL('../screenshots/', import.meta.url));
let browser, context, url;

before(async () => {
  browser = await openBrowser({ width: 720, height: 640 });
  context = browser.context;
  url = `${browser.base}steps.html`;
});

after(async () => {
  await browser?.close();
});

test('the checklist follows the core: steps in order, guards with their reasons', async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true]', { timeout: 15_000 });

  const names = await page.$$eval('#steps li', (lis) => lis.map((li) => li.dataset.step));
  assert.deepEqual(names, ['Walkthrough', 'Load the truck', 'Unload', 'Photos'], "the template's steps, in order");
  assert.equal(await page.textContent('#status'), 'in progress');
  assert.equal(await page.textContent('#progress-text'), '0 of 4 steps');

  await page.click('#complete');
  assert.equal(await page.getAttribute('#refusal', 'data-codes'), 'open_steps');
  assert.equal(await page.textContent('#refusal'), '3 required step(s) still open');

  for (const name of ['Walkthrough', 'Load the truck', 'Unload']) {
    await page.check(`#steps li[data-step="${name}"] input`);
  }
  await page.click('#steps li[data-step="Photos"] button');
  assert.equal(await page.textContent('#progress-text'), '4 of 4 steps');
  assert.equal(await page.getAttribute('#steps li[data-step="Photos"]', 'class'), 'skipped');
  assert.equal(await page.isDisabled('#steps li[data-step="Unload"] input'), true, 'a done step stays done');

  await page.click('#complete');
  assert.equal(await page.getAttribute('#refusal', 'data-codes'), 'unsigned');
  await page.check('#signed');
  await page.click('#complete');
  assert.equal(await page.textContent('#status'), 'completed');
  assert.equal(await page.textContent('#refusal'), '');

  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'steps.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('a picked photo is checked by the core in the tab before it is attached', async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true]', { timeout: 15_000 });
  const sha = (b) => createHash('sha256').update(b).digest('hex');

  // A web page named like a photo: refused by the core's check, nothing attached.
  const html = Buffer.from('<!doctype html><script>alert(1)</script>');
  await page.setInputFiles('#photo', { name: 'roof.png', mimeType: 'image/png', buffer: html });
  await page.waitForSelector('#photo-check[data-sha256]');
  assert.equal(await page.getAttribute('#photo-check', 'data-sha256'), sha(html), "the core's hash is the file's");
  assert.equal(await page.getAttribute('#photo-check', 'data-codes'), 'invalid_format');
  assert.match(await page.textContent('#photo-check'), /a photo is a PNG, JPEG/);
  assert.equal(await page.getAttribute('#photo-check', 'data-attached'), null, 'nothing attached');

  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 1, 2, 3, 4]);
  await page.setInputFiles('#photo', { name: 'truck.png', mimeType: 'image/png', buffer: png });
  await page.waitForSelector('#photo-check[data-attached="1"]');
  assert.equal(await page.getAttribute('#photo-check', 'data-sha256'), sha(png));
  assert.equal(await page.textContent('#photo-check'), `truck.png: image/png, ${png.length} bytes`);
  assert.equal(await page.getAttribute('#refusal', 'data-codes'), '', 'attached without a refusal');
  assert.deepEqual(errors, []);
});
