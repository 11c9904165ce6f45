// A browser module using the web entry, type-checked with the settings docs/wasm.md gives a web app
// (tsconfig.web.json: strict, the DOM lib for init()'s argument types, bundler resolution). Checked
// by .ci/wasm.sh, not run: examples/web runs the same calls in headless Chromium.
import init, { isCrmError, validate } from '@crm/wasm/web';
import type { FieldError } from '@crm/wasm/web';

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
