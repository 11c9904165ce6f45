// A record read and written back unchanged is stored unchanged, through the package as a web app
// uses it: money is read as a decimal string in major units ("18500.00") and written in the same
// unit, so saving an edit form as it was loaded changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crm } from '../helpers.mjs';

/** The values of every field the role may write, as read: what an edit form sends back. */
function sameFields(rec, role, entity) {
  const { writable } = crm.access(role, entity);
  return Object.fromEntries(writable.filter((f) => f in rec).map((f) => [f, rec[f]]));
}

test('a lead read and written back unchanged is stored unchanged (money above all)', () => {
  const db = new crm.LocalDb();
  const org = db.createOrganization({ name: 'Offline Roofing' });
  const admin = { tenant: org.id };
  const created = db.create(admin, 'lead', {
    first_name: 'Ann', last_name: "O'Hara", email: 'Ann@Example.com', phone: '(303) 555-0199',
    estimated_value: '18500', project_type: 'roof_replacement', tags: ['Storm', 'vip'],
    expected_close_date: '2026-03-31', notes: 'Tear-off\nand "re-roof"', latitude: 39.7392,
  });
  const read = db.get(admin, 'lead', created.id);
  assert.equal(read.estimated_value, '18500.00', 'money reads in major units, as a string');
  const patch = sameFields(read, 'admin', 'lead');
  assert.ok(Object.keys(patch).length > 10, JSON.stringify(patch));
  assert.ok('estimated_value' in patch && 'tags' in patch && 'expected_close_date' in patch);

  const same = db.update(admin, 'lead', read.id, read.version, patch);
  assert.deepEqual(same, read, 'the answer is the record as it was');
  assert.deepEqual(db.get(admin, 'lead', read.id), read, 'stored unchanged');

  // A form that keeps the amount as a number writes the same amount (major units).
  const asNumber = db.update(admin, 'lead', read.id, read.version, { ...patch, estimated_value: Number(read.estimated_value) });
  assert.deepEqual(asNumber, read);

  const edited = db.update(admin, 'lead', read.id, read.version, { ...patch, notes: 'ladder needed' });
  assert.equal(edited.version, read.version + 1);
  assert.equal(edited.estimated_value, '18500.00', 'money unchanged');
  for (const [f, v] of Object.entries(patch)) {
    if (f !== 'notes') assert.deepEqual(edited[f], v, `${f} unchanged`);
  }
});

test('a field error says message, as on every face', () => {
  const db = new crm.LocalDb();
  const org = db.createOrganization({ name: 'Offline Roofing' });
  const admin = { tenant: org.id };
  const lead = db.create(admin, 'lead', { first_name: 'Ann' });
  assert.throws(
    () => db.update(admin, 'lead', lead.id, lead.version, { estimated_value: '12.345', email: 'nope' }),
    (e) => {
      assert.equal(e.code, 'validation');
      assert.deepEqual(e.errors.map((f) => f.path).sort(), ['email', 'estimated_value']);
      assert.ok(e.errors.every((f) => typeof f.message === 'string' && f.message.length > 0));
      return true;
    },
  );
});
