// The example page in headless Debian Chromium (playwright-core, no downloaded browser): typing into
// the lead form shows crm-core's validation messages and score preview. Saves a screenshot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBrowser } from './browser.mjs';

const shots = process.env.SCREENSHOT_DIR ?? fileURLToPath(new URL('../screenshots/', import.meta.url));
const fixtures = JSON.parse(readFileSync(process.env.CRM_WASM_FIXTURES
  ?? new URL('../../../bindings/wasm/js/fixtures.json', import.meta.url), 'utf8'));
let browser, context, url;

before(async () => {
  browser = await openBrowser({ width: 960, height: 760 });
  context = browser.context;
  url = `${browser.base}`;
});

after(async () => {
  await browser?.close();
});

test('the lead form validates as you type and previews the score', async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true]', { timeout: 15_000 });

  // Empty form: a lead needs a name, a company, an email or a phone.
  assert.equal(await page.textContent('#error-first_name'), 'a lead needs a name, a company, an email or a phone');
  assert.equal(await page.textContent('#score'), '–');

  await page.fill('#first_name', 'Ann');
  await page.type('#email', 'ann@');
  assert.equal(await page.textContent('#error-email'), 'not a valid email address');
  assert.equal(await page.getAttribute('#email', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#status', 'data-codes'), 'invalid_email');
  assert.equal(await page.isDisabled('#save'), true);

  await page.type('#email', 'example.com');
  assert.equal(await page.textContent('#error-email'), '');
  await page.fill('#phone', '(303) 555-0123');
  await page.selectOption('#source', 'referral');
  await page.fill('#estimated_value', '18,500');
  assert.equal(await page.textContent('#status'), 'Looks good.');

  // The score and explanation native crm-core gives for this lead (fixtures from crm-wasm-fixtures).
  const want = fixtures.pagePreview.expect.ok;
  assert.equal(await page.textContent('#score'), String(want.score));
  assert.equal(await page.textContent('#temperature'), `${want.temperature} · tier ${want.tier}`);
  const rows = await page.$$eval('#explanation tr', (trs) => trs.map((tr) => tr.textContent));
  assert.deepEqual(rows, want.contributions.map((c) => `${c.group} / ${c.rule}${c.points > 0 ? '+' : ''}${c.points}`));

  // A bad amount: money is parsed by the core, the message is the core's.
  await page.fill('#estimated_value', '-5');
  assert.equal(await page.textContent('#error-estimated_value'), 'at least 0');
  assert.equal(await page.textContent('#score'), '–');
  await page.fill('#estimated_value', '18500');

  await page.click('#save');
  assert.match(await page.textContent('#saved'), /^Saved Ann \(score \d+\); 1 lead\(s\) in this tab\.$/);

  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'lead-form.png'), fullPage: true });
  assert.deepEqual(errors, []);
});
