// A browser module using the web entry, type-checked with the settings docs/wasm.md gives a web app
// (tsconfig.web.json: strict, the DOM lib for init()'s argument types, bundler resolution). Checked
// by .ci/wasm.sh, not run: examples/web runs the same calls in headless Chromium.
import init, { isCrmError, validate } from '@crm/wasm/web';
import type { CrmRemoteError, FieldError, SyncReport } from '@crm/wasm/web';
import { openLocalDb } from '@crm/wasm/local';

await init();
const form = document.querySelector('form');
const input: Record<string, string> = {};
for (const el of form?.querySelectorAll('input') ?? []) if (el.value !== '') input[el.name] = el.value;
const shown: FieldError[] = validate('lead', input).errors;
for (const f of shown) document.getElementById(`error-${f.path}`)?.replaceChildren(f.message);
try {
  validate('no_such_entity', input);
} catch (e) {
  if (isCrmError(e) && e.code === 'not_found') console.log(e.entity);
}

// The offline database (local.d.ts) and the sync types.
const db = await openLocalDb('my-leads');
const me = await db.connect({ serverUrl: 'https://crm.example.com', token: 'token' });
try {
  const report: SyncReport = await db.sync(me, { serverUrl: 'https://crm.example.com', token: 'token', device: 'browser-1' });
  console.log(report.push.accepted, report.pull.more, db.pendingChanges(me, 10).length);
} catch (e) {
  if ((e as Error).name === 'CrmRemoteError') console.log((e as CrmRemoteError).status);
}
await db.save();
await db.close();
