// The local database: crm-core's conformance Fixture (a roofing tenant with a user of each role, clock
// pinned, sequential ids) replayed through LocalDb, then the same operations native crm-core ran.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { crm, fixtures, outcome, plain } from '../helpers.mjs';

const fx = fixtures.localDb;

function open() {
  const db = new crm.LocalDb({ now: fx.now, deterministicIds: true });
  for (const s of fx.setup) {
    const rec = s.op === 'createOrganization'
      ? db.createOrganization(s.input)
      : db.create(fx.actors[s.as], s.entity, s.input);
    assert.equal(rec.id, s.expectId, `setup ${JSON.stringify(s.input)}`);
  }
  return db;
}

function run(db, o) {
  const a = fx.actors[o.as];
  switch (o.op) {
    case 'create': return db.create(a, o.entity, o.input);
    case 'get': return db.get(a, o.entity, o.id);
    case 'update': return db.update(a, o.entity, o.id, o.version, o.patch);
    case 'list': return db.list(a, o.entity, o.request);
    case 'logActivity': return db.logActivity(a, o.input);
    case 'explainScore': return db.explainScore(a, o.id, o.asOf);
    case 'pipelineSummary': return db.pipelineSummary(a);
    case 'eventsSince': return db.eventsSince(a, o.after, o.limit);
    default: throw new Error(`unknown op ${o.op}`);
  }
}

describe('local database', () => {
  test('the conformance fixture replays to the same ids', () => {
    open();
  });

  test('the scenario gives what native crm-core gave, step by step', async (t) => {
    const db = open();
    for (const [i, o] of fx.ops.entries()) {
      await t.test(`#${i} ${o.as} ${o.op} ${o.entity ?? ''}`, () => {
        assert.deepEqual(plain(outcome(() => run(db, o))), o.expect);
      });
    }
  });

  test('with the JS clock and crypto ids', () => {
    const db = new crm.LocalDb();
    const org = db.createOrganization({ name: 'Offline Roofing' });
    const admin = { tenant: org.id };
    const lead = db.create(admin, 'lead', { first_name: 'Ann', source: 'referral', estimated_value: '18500' });
    assert.match(lead.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.ok(Math.abs(Date.parse(lead.created_at) - Date.now()) < 60_000);
    const page = db.list(admin, 'lead', { q: 'source:referral', sort: '-score' });
    assert.deepEqual(page.items.map((l) => l.id), [lead.id]);
    assert.throws(() => db.setNow('2025-01-01'), (e) => e.code === 'validation');
  });
});

describe('sync from a LocalDb', () => {
  test('a server out of reach rejects with CrmRemoteError and keeps the queue', async () => {
    const db = new crm.LocalDb({ syncLog: true });
    const org = db.createOrganization({ name: 'Acme Roofing' });
    const admin = { tenant: org.id };
    db.create(admin, 'lead', { first_name: 'Ann' });
    const queued = db.pendingChanges(admin, 10).length;
    // Port 9 (discard) on loopback: nothing listens, fetch fails at once.
    const e = await db.sync(admin, { serverUrl: 'http://127.0.0.1:9', token: 't', device: 'node-1' }).then(
      () => assert.fail('resolved'), (x) => x);
    assert.equal(e.name, 'CrmRemoteError');
    assert.equal(e.status, 0);
    assert.equal(e.code, 'unreachable');
    assert.equal(db.pendingChanges(admin, 10).length, queued);
    assert.ok(queued > 0);
  });

  test('a server address that is not http(s) is refused on its field, before any request', () => {
    const db = new crm.LocalDb({ syncLog: true });
    const org = db.createOrganization({ name: 'Acme Roofing' });
    const e = outcome(() => db.sync({ tenant: org.id }, { serverUrl: 'ftp://x', token: 't', device: 'node-1' }));
    assert.equal(e.error.code, 'validation');
    assert.equal(e.error.errors[0].path, 'serverUrl');
    const bad = outcome(() => db.provision({ protocol: 1 }));
    assert.equal(bad.error.errors[0].path, 'provision');
  });
});
