// The Node entry is initialised on import; everything else is the web entry's API.
export * from './crm_wasm.js';
