// Quotes in the package: the shared totals fixture set (crm-core/testdata/quote_totals.json) through
// quoteTotals, compared exactly; the approval decision; the quote workflow on a LocalDb; the
// TypeScript declarations of the new functions.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { format } from 'node:util';
import { crm } from '../helpers.mjs';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../../crm-core/testdata/quote_totals.json', import.meta.url), 'utf8'),
);

describe('quoteTotals: the shared fixture set', () => {
  test('has its cases', () => assert.ok(fixtures.length >= 8));
  for (const fx of fixtures) {
    test(fx.name, () => {
      const t = crm.quoteTotals(fx.lines, fx.discount ?? null, fx.policy);
      const e = fx.expected;
      for (const f of ['subtotal', 'discount_total', 'tax_total', 'total']) {
        assert.equal(t[f], e[f], f);
      }
      assert.deepEqual(t.lines, e.lines);
      assert.deepEqual(t.taxes, e.taxes);
      // The shown lines add up to the shown totals (optional lines are shown, not counted).
      const counted = t.lines.filter((_, i) => !fx.lines[i].optional);
      const cents = (s) => BigInt(s.replace('.', ''));
      assert.equal(counted.reduce((s, l) => s + cents(l.total), 0n), cents(t.total));
    });
  }
});

describe('quoteTotals: input', () => {
  const line = { quantity: '2.5', unit_price: '12.34', tax_rate: '8.875' };

  test('defaults: no discount, the default policy (per line, half up, net prices)', () => {
    const t = crm.quoteTotals([line]);
    assert.deepEqual(t, crm.quoteTotals([line], 'none', { rounding: 'per_line', mode: 'half_up', prices_include_tax: false }));
    assert.equal(t.subtotal, '30.85');
    assert.equal(t.effective_discount_percent, '0');
  });

  test('unreadable input throws validation with every place at once', () => {
    assert.throws(
      () => crm.quoteTotals([line, { quantity: 'x', unit_price: '1' }], { percent: 'ten' }, { rounding: 'sideways' }),
      (e) => e.name === 'CrmError' && e.code === 'validation'
        && JSON.stringify(e.errors.map((f) => f.path)) === '["lines[1]","discount","policy"]',
    );
    assert.throws(() => crm.quoteTotals('lines'), (e) => e.code === 'validation' && e.errors[0].path === 'lines');
  });

  test('totals the core refuses come back as its field errors', () => {
    assert.throws(
      () => crm.quoteTotals([{ quantity: '1', unit_price: '10.00' }], { amount: '10.01' }),
      (e) => e.code === 'validation' && e.errors[0].path === 'discount_amount' && e.errors[0].code === 'too_large',
    );
  });
});

describe('approvalLevel', () => {
  const rules = [
    { role: 'manager', total_above: '10000', discount_percent_above: '15' },
    { role: 'admin', total_above: '50000' },
  ];

  test('the highest level whose threshold the quote passes', () => {
    assert.deepEqual(crm.approvalLevel(rules, '10000.00', '15'), { level: null, role: null });
    assert.deepEqual(crm.approvalLevel(rules, '10000.01'), { level: 0, role: 'manager' });
    assert.deepEqual(crm.approvalLevel(rules, '100.00', '15.01'), { level: 0, role: 'manager' });
    assert.deepEqual(crm.approvalLevel(rules, '50000.01', '0'), { level: 1, role: 'admin' });
    assert.deepEqual(crm.approvalLevel([], '999999.00', '90'), { level: null, role: null });
  });

  test('a browser form: totals then the decision, from the same inputs', () => {
    const t = crm.quoteTotals(
      [{ quantity: '1', unit_price: '10000.00' }, { quantity: '1', unit_price: '2000.00' }],
      { percent: '16' },
      { rounding: 'per_line', mode: 'half_up', prices_include_tax: false },
    );
    assert.equal(t.total, '10080.00');
    assert.equal(t.effective_discount_percent, '16');
    assert.deepEqual(crm.approvalLevel(rules, t.total, t.effective_discount_percent), { level: 0, role: 'manager' });
  });

  test('bad rules name their place', () => {
    assert.throws(
      () => crm.approvalLevel([{ role: 'manager', total_above: 'ten' }], '1.00'),
      (e) => e.code === 'validation' && e.errors[0].path === 'rules[0]',
    );
  });
});

describe('LocalDb: a quote through its workflow', () => {
  test('created with lines, submitted, refused and approved by the core', () => {
    const db = new crm.LocalDb({ now: '2025-06-01T12:00:00Z', deterministicIds: true });
    const org = db.createOrganization({ name: 'Acme Movers' });
    const admin = { tenant: org.id };
    db.update(admin, 'organization', org.id, org.version, {
      quote_approval_rules: [{ role: 'manager', total_above: '10000' }],
    });
    const sam = { tenant: org.id, user: db.create(admin, 'user', { name: 'sam', email: 'sam@acme.test', role: 'sales' }).id };
    const max = { tenant: org.id, user: db.create(admin, 'user', { name: 'max', email: 'max@acme.test', role: 'manager' }).id };
    const c = db.create(sam, 'contact', { first_name: 'Carla' });
    const lines = [{ description: 'Long-distance move', quantity: '1', unit_price: '12500.00', tax_rate: '8' }];
    const q = db.create(sam, 'quote', { contact_id: c.id, valid_until: '2025-06-30', quote_lines: lines });
    assert.equal(q.quote_lines.length, 1);
    // The stored totals are what the live form computed.
    const live = crm.quoteTotals(lines, null, { rounding: 'per_line', mode: 'half_up', prices_include_tax: false });
    assert.equal(q.total, live.total);
    assert.deepEqual(crm.approvalLevel([{ role: 'manager', total_above: '10000' }], live.total, live.effective_discount_percent).role, 'manager');

    const s = db.transition(sam, 'quote', q.id, q.version, 'submit');
    assert.equal(s.status, 'pending_approval');
    assert.equal(s.approval_level, 'manager');
    assert.deepEqual(s.quote_lines, q.quote_lines);
    assert.throws(() => db.transition(sam, 'quote', s.id, s.version, 'approve'), (e) => e.code === 'forbidden');
    assert.throws(() => db.transition(max, 'quote', q.id, q.version, 'approve'), (e) => e.code === 'conflict');
    assert.throws(
      () => db.transition(max, 'quote', s.id, s.version, 'reject', {}),
      (e) => e.code === 'validation' && e.errors[0].path === 'rejection_reason' && e.errors[0].code === 'required',
    );
    assert.equal(db.get(sam, 'quote', q.id).version, s.version, 'refusals write nothing');
    const a = db.transition(max, 'quote', s.id, s.version, 'approve');
    assert.equal(a.status, 'approved');
    const sent = db.transition(sam, 'quote', a.id, a.version, 'send');
    assert.equal(sent.state, 'sent');
    db.setNow('2025-07-02T09:00:00Z');
    assert.equal(db.get(sam, 'quote', q.id).state, 'expired');
    assert.throws(
      () => db.transition(sam, 'quote', sent.id, sent.version, 'accept'),
      (e) => e.code === 'validation' && e.errors[0].code === 'expired',
    );
    const rev = db.transition(sam, 'quote', sent.id, sent.version, 'revise');
    assert.equal(rev.revision, 2);
    assert.equal(rev.status, 'draft');
    assert.deepEqual(db.children(sam, 'quote', rev.id).quote_lines.map((l) => l.amount), ['12500.00']);
  });
});

describe('TypeScript declarations', () => {
  const dts = readFileSync(new URL('../../pkg/crm_wasm.d.ts', import.meta.url), 'utf8');
  const decl = (name) => dts.split('\n').find((l) => l.startsWith(`export function ${name}(`)) ?? '';

  test('quoteTotals and approvalLevel are typed, without any', () => {
    assert.equal(
      decl('quoteTotals'),
      'export function quoteTotals(lines: QuoteLineInput[], discount?: DocumentDiscount | null, policy?: RoundingPolicy | null): QuoteTotals;',
    );
    assert.equal(
      decl('approvalLevel'),
      'export function approvalLevel(rules: ApprovalRule[], total: MoneyString, discount_percent?: DecimalString | null): ApprovalDecision;',
    );
    for (const t of ['QuoteLineInput', 'QuoteTotals', 'LineTotals', 'TaxLine', 'ApprovalRule', 'ApprovalDecision']) {
      const line = dts.split('\n').find((l) => new RegExp(`^export (interface|type) ${t}\\b`).test(l));
      assert.ok(line, t);
      assert.doesNotMatch(line, /\bany\b/, t);
    }
  });

  test('LocalDb.transition and children are typed', () => {
    assert.match(dts, /transition\(actor: ActorRef, entity: string, id: string, version: number, name: string, input\?: Record<string, unknown>\): CrmRecord;/);
    assert.match(dts, /children\(actor: ActorRef, entity: string, id: string\): Record<string, CrmRecord\[\]>;/);
  });

  test('no function or method of the API takes or returns any (node.d.ts: the API without the loader)', () => {
    const api = readFileSync(new URL('../../pkg/crm_api.d.ts', import.meta.url), 'utf8');
    assert.match(api, /export function isCrmError\(e: unknown\): e is CrmError;/);
    const anys = api.split('\n').filter((l) => !/^\s*(\*|\/\*\*|\/\/)/.test(l) && /\bany\b/.test(l));
    assert.deepEqual(anys, []);
    assert.doesNotMatch(api, /\b(RequestInfo|Response|WebAssembly)\b/, 'types of the DOM lib');
  });
});

describe('docs/wasm.md: the quote blocks run as written', () => {
  const doc = readFileSync(new URL('../../../../docs/wasm.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
    .filter((b) => b.includes('quoteTotals(') || b.includes("'quote'"));

  test('there are two', () => assert.equal(blocks.length, 2));
  for (const [i, block] of blocks.entries()) {
    test(`block ${i + 1}: every console.log prints what its comment says`, () => {
      // The import line becomes a destructuring of the package; console.log is captured.
      const body = block.replace(/^import \{([^}]*)\} from '@crm\/wasm';$/m, 'const {$1} = crm;');
      assert.notEqual(body, block, 'the block imports from @crm/wasm');
      const expected = block.split('\n').filter((l) => /console\.log\(/.test(l) && l.includes('// '))
        .map((l) => l.slice(l.lastIndexOf('// ') + 3).trim());
      assert.ok(expected.length >= 3);
      const printed = [];
      const log = (...args) => printed.push(format(...args));
      new Function('crm', 'console', body)(crm, { log });
      assert.deepEqual(printed, expected);
    });
  }
});
