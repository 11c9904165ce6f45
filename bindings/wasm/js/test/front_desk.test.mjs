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

describe('front desk: the membership status, live', () => {
  const today = '2026-03-02';
  const opts = { now: NOW };

  test('the status follows the dates as the form changes, on the boundary days', () => {
    const form = { starts_on: today };
    assert.equal(crm.membershipStatus(form, opts).status, null, 'no end date yet');
    const steps = [
      ['2026-03-01', 'expired'],   // ended yesterday
      ['2026-03-02', 'expiring'],  // ends today
      ['2026-03-16', 'expiring'],  // in exactly 14 days (the default window)
      ['2026-03-17', 'active'],    // in 15 days
    ];
    for (const [ends_on, want] of steps) {
      const r = crm.membershipStatus({ starts_on: '2026-02-01', ends_on }, opts);
      assert.equal(r.status, want, ends_on);
      assert.deepEqual(r.errors, []);
    }
    assert.equal(crm.membershipStatus({ starts_on: '2026-03-03', ends_on: '2026-04-02' }, opts).status, 'upcoming');
    assert.equal(crm.membershipStatus({ starts_on: today, ends_on: '2026-04-30', cancelled: true }, opts).status, 'cancelled');
  });

  test('a freeze covering today freezes it and moves the end by policy', () => {
    const m = { starts_on: '2026-02-01', ends_on: '2026-03-31', membership_freezes: [{ starts_on: '2026-03-01', ends_on: '2026-03-10' }] };
    const r = crm.membershipStatus(m, opts);
    assert.deepEqual([r.status, r.ends_on, r.frozen_from, r.frozen_to, r.frozen_days], ['frozen', '2026-04-10', '2026-03-01', '2026-03-10', 10]);
    const kept = crm.membershipStatus(m, { ...opts, settings: { membership_freeze_extends: false } });
    assert.equal(kept.ends_on, '2026-03-31');
    const wide = crm.membershipStatus({ starts_on: '2026-02-01', ends_on: '2026-03-31' }, { ...opts, settings: { membership_expiring_days: 30 } });
    assert.equal(wide.status, 'expiring');
  });

  test('invalid dates give errors, not a status', () => {
    const r = crm.membershipStatus({ starts_on: '2026-03-10', ends_on: '2026-03-01' }, opts);
    assert.equal(r.status, null);
    assert.deepEqual(r.errors.map((e) => [e.path, e.code]), [['ends_on', 'too_small']]);
    const typo = crm.membershipStatus({ starts_on: '2026-02-30', ends_on: '2026-03-31' }, opts);
    assert.equal(typo.errors[0].path, 'starts_on');
    assert.throws(() => crm.membershipStatus({ starts_on: today }, { when: today }), (e) => e.name === 'CrmError');
  });

  test('the same status the local database stores and filters by', () => {
    const { db, admin, client } = centre();
    for (const ends_on of ['2026-03-01', '2026-03-02', '2026-03-16', '2026-03-17']) {
      const form = { starts_on: '2026-02-01', ends_on };
      const stored = db.create(admin, 'membership', { ...form, contact_id: client.id });
      assert.equal(crm.membershipStatus(form, opts).status, stored.status, ends_on);
    }
    const expiring = db.list(admin, 'membership', { q: 'status:expiring' }).items.map((m) => m.ends_on).sort();
    assert.deepEqual(expiring, ['2026-03-02', '2026-03-16']);
  });
});
