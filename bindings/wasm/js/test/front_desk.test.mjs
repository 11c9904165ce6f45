// The esports centre's front desk in the browser package: the staff rule (a staff user may change a
// client's notes and nothing else) decided by crm-core inside LocalDb, surfaced as CrmError.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
// The package only (not helpers.mjs): these cases need no native fixtures.
import * as crm from '../../pkg/node.js';

const NOW = '2026-03-02T09:00:00Z';

function centre() {
  const db = new crm.LocalDb({ now: NOW, deterministicIds: true });
  const org = db.createOrganization({ name: 'Pixel Arena' });
  const admin = { tenant: org.id };
  const user = db.create(admin, 'user', { name: 'Stan', email: 'stan@arena.test', role: 'staff' });
  const staff = { tenant: org.id, user: user.id };
  const client = db.create(admin, 'contact', { first_name: 'Front', last_name: 'Desk', email: 'fd@arena.test' });
  return { db, admin, staff, client };
}

const refused = {
  first_name: 'Mallory',
  last_name: 'Changed',
  email: 'new@arena.test',
  phone: '+13035550199',
  external_id: 'CARD-1',
  segment: 'gold',
  tags: ['vip'],
};

const forbidden = (f) => {
  try {
    f();
  } catch (e) {
    assert.equal(e.name, 'CrmError');
    return e;
  }
  assert.fail('expected a CrmError');
};

describe('front desk: the staff rule', () => {
  for (const [field, value] of Object.entries(refused)) {
    test(`staff may not write ${field}; the error names it and nothing changes`, () => {
      const { db, admin, staff, client } = centre();
      const e = forbidden(() => db.update(staff, 'contact', client.id, client.version, { [field]: value, notes: 'no' }));
      assert.deepEqual([e.code, e.action, e.entity, e.fields], ['forbidden', 'update', 'contact', [field]]);
      const after = db.get(admin, 'contact', client.id);
      assert.equal(after.version, client.version);
      assert.equal(after.notes ?? null, null);
    });
  }

  test('every refused field is named at once', () => {
    const { db, staff, client } = centre();
    const e = forbidden(() => db.update(staff, 'contact', client.id, client.version, { email: 'a@arena.test', phone: '+13035550100' }));
    assert.deepEqual([...e.fields].sort(), ['email', 'phone']);
  });

  test('staff may write notes, and may neither create nor delete clients', () => {
    const { db, admin, staff, client } = centre();
    const ok = db.update(staff, 'contact', client.id, client.version, { notes: 'asked about the yearly plan' });
    assert.equal(ok.version, client.version + 1);
    assert.equal(db.get(admin, 'contact', client.id).notes, 'asked about the yearly plan');
    assert.equal(forbidden(() => db.create(staff, 'contact', { first_name: 'Walk' })).action, 'create');
    assert.equal(forbidden(() => db.delete(staff, 'contact', client.id, ok.version)).action, 'delete');
    assert.equal(db.get(admin, 'contact', client.id).version, ok.version);
  });
});
