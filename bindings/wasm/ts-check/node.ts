// A small Node program using @crm/wasm with the settings docs/wasm.md documents (tsconfig.json:
// strict, lib es2022 without the DOM, no @types/node). .ci/wasm.sh installs the package as the guide
// does (npm pack, npm install), type-checks this file (tsc -p tsconfig.json) and runs what it emits
// (node out/node.js): the types must be the values the package really returns and throws.
import {
  LocalDb, defaultScoringModel, isCrmError, normalize, parseFilter, quoteTotals, schema, scoreLead, validate,
} from '@crm/wasm';
import type { CrmError, CrmRecord, FilterTree, ListRequest, ScoreResult, Validation } from '@crm/wasm';

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`ts-check: ${what}`);
}

/** Runs `f`, which must throw a CrmError; returns it, narrowed by the guard. */
function crmError(f: () => unknown): CrmError {
  try {
    f();
  } catch (e: unknown) {
    check(isCrmError(e), `not a CrmError: ${String(e)}`);
    return e;
  }
  throw new Error('ts-check: expected a CrmError');
}

const db = new LocalDb({ now: '2025-06-01T12:00:00Z', deterministicIds: true });
const org: CrmRecord = db.createOrganization({ name: 'Acme Roofing' });
const admin = { tenant: org.id };
const lead = db.create(admin, 'lead', { first_name: 'Ann', email: ' ANN@Example.COM ', estimated_value: '18500' });
check(lead.email === 'ann@example.com' && lead.estimated_value === '18500.00', 'lead normalised');
check(typeof lead.version === 'number', 'version is a number');

const request: ListRequest = { q: 'status:new', sort: [{ field: 'created_at', desc: true }], limit: 5 };
const page = db.list(admin, 'lead', request);
check(page.items.length === 1 && page.items[0].id === lead.id && page.nextCursor === null, 'list');
check(db.list(admin, 'lead').items.length === 1, 'the request is optional');

// A typo in a request object does not compile (the directive fails tsc if it would) ...
// @ts-expect-error 'limt' does not exist in type 'ListRequest'
const typo = () => db.list(admin, 'lead', { limt: 5 });
// ... and the package refuses it at run time too.
check(crmError(typo).code === 'validation', 'limt refused');
// @ts-expect-error 'mdoe' does not exist in type 'ValidateOptions'
const optionTypo = () => validate('lead', {}, { mdoe: 'update' });
check(crmError(optionTypo).code === 'validation', 'mdoe refused');
// @ts-expect-error 'asof' does not exist in type 'ScoreInput'
const scoreTypo = () => scoreLead({ lead: {}, asof: '2025-06-01' });
check(crmError(scoreTypo).code === 'validation', 'asof refused');

const v: Validation = validate('lead', { email: 'x@' });
check(!v.ok && v.errors[0].path === 'email' && v.errors[0].code === 'invalid_email', 'validate');

// Errors narrow by code to their members.
const e = crmError(() => normalize('lead', { email: 'x@', phone: 'abc' }));
if (e.code !== 'validation') throw e;
check(e.errors.map((f) => f.path).join(',') === 'email,phone', `fields: ${e.errors.map((f) => f.path)}`);
const q = crmError(() => parseFilter('status:'));
check(q.code === 'invalid_query' && q.position === 6 && q.name === 'CrmError', `invalid_query: ${q.message}`);
const c = crmError(() => db.update(admin, 'lead', lead.id, lead.version + 5, { notes: 'x' }));
check(c.code === 'conflict' && c.expected === lead.version + 5 && c.actual === lead.version, 'conflict');
const n = crmError(() => db.get(admin, 'lead', '01890000-0000-7000-8000-000000000999'));
check(n.code === 'not_found' && n.entity === 'lead', `not_found: ${n.message}`);
check(!isCrmError(new TypeError('x')) && !isCrmError({ name: 'CrmError', code: 'validation' }), 'guard');

const tree: FilterTree = parseFilter('status:new score>=60');
check(typeof tree === 'object' && 'and' in tree && tree.and.length === 2, 'filter tree');
const s: ScoreResult = scoreLead({ lead: { first_name: 'Ann', email: 'ann@example.com' } });
check(['hot', 'warm', 'cold'].includes(s.temperature) && Number.isInteger(s.score), 'score');
const t = quoteTotals([{ quantity: '2', unit_price: '10.00', tax_rate: '10' }], { percent: '5' });
check(t.total === '20.90', `quote total ${t.total}`);
const fields = schema('lead').fields;
check(fields.some((f) => f.name === 'source' && (f.options ?? []).length > 0), 'schema');

// Results the declarations describe member by member: every member the package returns is declared
// (a `keyof` list, so a member dropped from the declaration fails to compile here).
function membersOf<T extends object>(value: T, declared: (keyof T)[], what: string): void {
  const extra = Object.keys(value).filter((k) => !declared.includes(k as keyof T));
  check(extra.length === 0, `${what}: undeclared members ${extra.join(', ')}`);
}
const model = defaultScoringModel();
membersOf(model, ['name', 'total_cap', 'groups', 'tiers', 'reset_when'], 'ScoringModel');
for (const g of model.groups) {
  membersOf(g, ['name', 'kind', 'cap', 'floor', 'rules'], 'ScoringGroup');
  for (const r of g.rules) {
    membersOf(r, ['name', 'points', 'condition', 'kind', 'direction', 'outcome', 'limit', 'min_count', 'within_days', 'decay_days'], 'ScoringRule');
  }
}
for (const t of model.tiers) membersOf(t, ['name', 'min_score', 'temperature'], 'ScoringTier');
for (const f of fields) membersOf(f, ['name', 'writable', 'type', 'required', 'max_len', 'min', 'max', 'options', 'not_in_future'], 'FieldSchema');
const stages = db.pipelineSummary(admin);
check(stages.length > 0 && stages.every((st) => ['open', 'won', 'lost'].includes(st.kind)), 'stage kinds');
for (const st of stages) membersOf(st, ['key', 'label', 'kind', 'count', 'value'], 'StageSummary');
const events = db.eventsSince(admin, 0, 10);
check(events.length > 0 && typeof events[0].seq === 'number', 'events');
for (const ev of events) membersOf(ev, ['seq', 'tenant', 'id', 'at', 'kind', 'entity', 'entity_id', 'payload'], 'CrmEvent');
const report = db.integrityCheck(admin);
membersOf(report, ['checked', 'issues', 'issue_count', 'audit_entries', 'audit_broken_at'], 'IntegrityReport');
check(report.issue_count === 0 && report.checked.every(([entity, n]) => typeof entity === 'string' && typeof n === 'number'), 'integrity');
membersOf(s, ['score', 'tier', 'temperature', 'reset', 'contributions'], 'ScoreResult');
membersOf(v, ['ok', 'errors', 'normalized', 'changed'], 'Validation');
membersOf(page, ['items', 'nextCursor'], 'ListResult');
membersOf(t, ['lines', 'subtotal', 'discount_total', 'tax_total', 'total', 'taxes', 'effective_discount_percent'], 'QuoteTotals');
