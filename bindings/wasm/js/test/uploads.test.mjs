// Attachments checked in the page before upload, and upserts from an external system, through the
// package in Node: checkUpload runs crm-core's upload checks (the code `attach` runs) without
// writing; the SHA-256 is compared with Node's own, and every refusal with what attach refuses.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crm, plain } from '../helpers.mjs';

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, ...new Array(64).fill(7)]);
const HTML = new TextEncoder().encode('<!doctype html><script>alert(1)</script>');
const sha = (b) => createHash('sha256').update(b).digest('hex');

function tenant() {
  const db = new crm.LocalDb({ now: '2025-06-01T12:00:00Z', deterministicIds: true });
  const org = db.createOrganization({ name: 'Swift Movers' });
  const admin = { tenant: org.id };
  const contact = db.create(admin, 'contact', { first_name: 'Cleo' });
  const job = db.create(admin, 'job', { kind: 'journey', title: 'Cleo to Elm St', contact_id: contact.id });
  return { db, org, admin, job };
}

/** What `attach` does with the same input and bytes: the record, or the thrown error's code and fields. */
function attachOutcome(t, input, bytes) {
  try {
    return { ok: t.db.attach(t.admin, 'job', t.job.id, input, bytes) };
  } catch (e) {
    assert.ok(crm.isCrmError(e), String(e));
    return { code: e.code, errors: plain(e.errors ?? []) };
  }
}

describe('checkUpload', () => {
  test('gives the hash, size and sniffed type attach stamps on the record', () => {
    const t = tenant();
    const input = { kind: 'photo', file_name: 'roof.png', media_type: 'image/png', size: PNG.length };
    const checked = crm.checkUpload('job', input, PNG);
    assert.deepEqual(plain(checked), {
      ok: true, sha256: sha(PNG), size: PNG.length, media_type: 'image/png',
      limit: 10 * 1024 * 1024, limit_exceeded: false, errors: [],
    });
    assert.equal(t.db.attachments(t.admin, 'job', t.job.id).length, 0, 'a check writes nothing');
    const rec = t.db.attach(t.admin, 'job', t.job.id, { ...input, sha256: checked.sha256 }, PNG);
    assert.deepEqual([rec.sha256, rec.size, rec.media_type], [checked.sha256, checked.size, checked.media_type]);
  });

  test("refuses what attach refuses, with attach's field errors", () => {
    const t = tenant();
    const cases = [
      [{ kind: 'photo', file_name: 'x.png' }, HTML],
      [{ kind: 'document', file_name: 'roof.png', media_type: 'image/png' }, HTML],
      [{ kind: 'document', file_name: 'a.png', sha256: '0'.repeat(64) }, PNG],
      [{ kind: 'document', file_name: 'a.png', size: PNG.length + 1 }, PNG],
      [{ kind: 'signature', file_name: 'sig.png' }, PNG],
    ];
    for (const [input, bytes] of cases) {
      const checked = crm.checkUpload('job', input, bytes);
      assert.equal(checked.ok, false, JSON.stringify(input));
      assert.equal(checked.sha256, sha(bytes));
      const attached = attachOutcome(t, input, bytes);
      assert.deepEqual(attached, { code: 'validation', errors: plain(checked.errors) }, JSON.stringify(input));
    }
    assert.equal(t.db.attachments(t.admin, 'job', t.job.id).length, 0);
  });

  test("holds the content to the tenant's limit, as attach does", () => {
    const t = tenant();
    t.db.update(t.admin, 'organization', t.org.id, t.org.version, { attachment_max_bytes: 50 });
    const checked = crm.checkUpload('job', { kind: 'document', file_name: 'big.png' }, PNG, { settings: { attachment_max_bytes: 50 } });
    assert.deepEqual([checked.ok, checked.limit_exceeded, checked.limit, checked.size], [false, true, 50, PNG.length]);
    assert.deepEqual(attachOutcome(t, { kind: 'document', file_name: 'big.png' }, PNG).code, 'limit_exceeded');
    assert.equal(crm.checkUpload('job', { kind: 'document', file_name: 'big.png' }, PNG).ok, true, 'the default limit is 10 MB');
  });

  test('throws for unusable arguments only', () => {
    assert.throws(() => crm.checkUpload('activity', { kind: 'document', file_name: 'a.png' }, PNG), (e) => crm.isCrmError(e) && e.code === 'not_found');
    assert.throws(() => crm.checkUpload('job', { kind: 'document', file_name: 'a.png', colour: 'red' }, PNG), (e) => e.code === 'validation' && e.errors[0].path === 'input');
    assert.throws(() => crm.checkUpload('job', { kind: 'document', file_name: 'a.png' }, PNG, { settings: { attachment_max_bytes: 'lots' } }),
      (e) => e.code === 'validation' && e.errors[0].path.startsWith('settings.'));
  });
});

describe('LocalDb.upsert', () => {
  const rows = [
    { external_id: 'crew-7', first_name: 'Lee', last_name: 'Mover' },
    { external_id: 'crew-8', first_name: 'Kim', email: 'not an email' },
  ];

  test('valid rows only, then unchanged, with a report per row', () => {
    const t = tenant();
    const first = t.db.upsert(t.admin, 'contact', { system: 'scheduler', rows });
    assert.deepEqual([first.created, first.rejected, first.applied], [1, 1, true]);
    assert.deepEqual(first.results.map((r) => [r.row, r.external_id, r.outcome]), [[1, 'crew-7', 'created'], [2, 'crew-8', 'rejected']]);
    assert.deepEqual(first.results[1].errors.map((e) => [e.path, e.code]), [['email', 'invalid_email']]);
    const lee = t.db.get(t.admin, 'contact', first.results[0].id);
    assert.equal(lee.last_name, 'Mover');
    const again = t.db.upsert(t.admin, 'contact', { system: 'scheduler', rows: [rows[0]] });
    assert.deepEqual([again.unchanged, again.results.length], [1, 0]);
    assert.equal(t.db.get(t.admin, 'contact', lee.id).version, lee.version, 'nothing written');
  });

  test('all or nothing, create-only and update-only refuse per row', () => {
    const t = tenant();
    const aon = t.db.upsert(t.admin, 'contact', { system: 'scheduler', all_or_nothing: true, rows });
    assert.deepEqual([aon.applied, t.db.list(t.admin, 'contact', { q: 'Lee' }).items.length], [false, 0]);
    t.db.upsert(t.admin, 'contact', { system: 'scheduler', rows: [rows[0]] });
    const co = t.db.upsert(t.admin, 'contact', { system: 'scheduler', mode: 'create_only', rows: [rows[0]] });
    assert.deepEqual(co.results[0].errors.map((e) => e.code), ['already_bound']);
    const uo = t.db.upsert(t.admin, 'contact', { system: 'scheduler', mode: 'update_only', rows: [{ external_id: 'crew-9', first_name: 'New' }] });
    assert.deepEqual(uo.results[0].errors.map((e) => e.code), ['not_bound']);
    const other = t.db.upsert(t.admin, 'contact', { system: 'payroll', mode: 'create_only', rows: [rows[0]] });
    assert.equal(other.created, 1, 'another system, its own binding');
    assert.throws(() => t.db.upsert(t.admin, 'contact', { rows }), (e) => e.code === 'validation' && e.errors[0].path === 'request');
  });
});
