// Node entry: instantiates the module synchronously from the .wasm next to this file, then exposes
// the same API as the web entry (no `await init()` needed).
import { readFileSync } from 'node:fs';
import { initSync } from './crm_wasm.js';

initSync({ module: readFileSync(new URL('./crm_wasm_bg.wasm', import.meta.url)) });

export * from './crm_wasm.js';
