// Shared by the node:test files: the built package (Node entry) and the fixtures written by the
// Rust bin `crm-wasm-fixtures` (native crm-core, same inputs).
import { readFileSync } from 'node:fs';

export * as crm from '../pkg/node.js';

const path = process.env.CRM_WASM_FIXTURES ?? new URL('./fixtures.json', import.meta.url);
export const fixtures = JSON.parse(readFileSync(path, 'utf8'));

/** Runs `f` and returns what native crm-core's fixture records: `{ok: value}` or `{error: details}`. */
export function outcome(f) {
  try {
    const ok = f();
    return { ok: ok === undefined ? null : ok };
  } catch (e) {
    if (e?.name !== 'CrmError') throw e;
    const error = { message: e.message };
    for (const k of Object.keys(e)) if (k !== 'name') error[k] = e[k];
    return { error };
  }
}

/** The fixtures' JSON and the package's values compared after a JSON round trip (5.0 is 5). */
export const plain = (v) => JSON.parse(JSON.stringify(v));
