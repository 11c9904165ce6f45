// Validation, normalisation, scoring, access and the filter language: every fixture input through the
// wasm package must give exactly what native crm-core gave.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { crm, fixtures, outcome, plain } from '../helpers.mjs';

describe('validation', () => {
  for (const [i, c] of fixtures.validation.entries()) {
    test(`validate #${i} ${c.entity} ${JSON.stringify(c.input).slice(0, 60)}`, () => {
      assert.deepEqual(plain(outcome(() => crm.validate(c.entity, c.input, c.options))), c.expect);
      assert.deepEqual(plain(outcome(() => crm.normalize(c.entity, c.input, c.options))), c.normalize);
    });
  }

  test('errors are JS Errors with code and field details', () => {
    const e = assert.throws(() => crm.normalize('lead', { email: 'x@', source: 'pigeon' }), (e) => {
      assert.ok(e instanceof Error);
      assert.equal(e.code, 'validation');
      assert.deepEqual(e.fields.map((f) => [f.path, f.code]), [
        ['email', 'invalid_email'],
        ['source', 'invalid_option'],
      ]);
      return true;
    });
    assert.equal(e, undefined);
  });

  test('money crosses as a string, never a float', () => {
    const out = crm.normalize('lead', { first_name: 'A', estimated_value: '1,234.5' });
    assert.equal(out.estimated_value, '1234.50');
  });
});

describe('scoring', () => {
  for (const [i, c] of fixtures.scoring.entries()) {
    test(`scoreLead #${i} as of ${c.input.asOf}`, () => {
      assert.deepEqual(plain(outcome(() => crm.scoreLead(c.input))), c.expect);
    });
  }

  test('the explanation adds up to the score', () => {
    const r = crm.scoreLead(fixtures.scoring[5].input);
    assert.equal(Math.round(r.contributions.reduce((s, c) => s + c.points, 0)), r.score);
    assert.ok(r.score > 0);
  });

  test('the default model round-trips as a draft', () => {
    const model = crm.defaultScoringModel();
    const c = fixtures.scoring[0].input;
    assert.deepEqual(crm.scoreLead({ ...c, model }), crm.scoreLead(c));
  });
});

describe('access', () => {
  for (const c of fixtures.access) {
    test(`access ${JSON.stringify(c.role).slice(0, 30)} on ${c.entity}`, () => {
      assert.deepEqual(plain(outcome(() => crm.access(c.role, c.entity))), c.expect);
    });
  }
});

describe('filter language', () => {
  for (const c of fixtures.filters) {
    test(`parseFilter ${JSON.stringify(c.q)}`, () => {
      assert.deepEqual(plain(outcome(() => crm.parseFilter(c.q))), c.expect);
    });
  }

  test('syntax errors carry a position', () => {
    assert.throws(() => crm.parseFilter('status:new (score>=60'), (e) => e.code === 'invalid_query' && typeof e.position === 'number');
  });
});
