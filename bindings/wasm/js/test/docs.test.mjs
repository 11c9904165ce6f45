// Every ```js block of docs/wasm.md runs as written against the built package (Node entry), in file
// order: a block's `import { ... } from '@crm/wasm'` becomes a lookup in the package (each imported
// name must exist), and later blocks see the names earlier blocks imported, as in one module. Each
// block runs in its own scope. A failure names the block's line in docs/wasm.md. The quote blocks'
// printed values are also compared with their comments in quotes.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { crm } from '../helpers.mjs';

// How a block starts -> why it cannot run in Node.
const SKIP = {
  "import init, { validate, scoreLead } from '@crm/wasm/web';":
    'the web entry point fetches crm_wasm_bg.wasm over HTTP: a browser module (examples/web loads it in headless Chromium)',
  "import { openLocalDb } from '@crm/wasm/local';":
    'IndexedDB and a crm serve: a browser module (examples/web/offline.js runs the same calls in headless Chromium against crm serve)',
};

const doc = readFileSync(new URL('../../../../docs/wasm.md', import.meta.url), 'utf8');
const lines = doc.split('\n');
const blocks = [];
for (let i = 0; i < lines.length; i++) {
  if (lines[i].trim() !== '```js') continue;
  const start = i + 1;
  const body = [];
  for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
  blocks.push({ line: start, text: body.join('\n') });
}

test('docs/wasm.md has js blocks, and every SKIP entry matches one', () => {
  assert.ok(blocks.length >= 6, `${blocks.length} blocks`);
  for (const head of Object.keys(SKIP)) assert.ok(blocks.some((b) => b.text.startsWith(head)), head);
});

const imported = new Set();
for (const b of blocks) {
  const skip = Object.entries(SKIP).find(([head]) => b.text.startsWith(head))?.[1];
  test(`docs/wasm.md:${b.line} runs as written`, { skip }, () => {
    const body = b.text.replace(/^import \{([^}]*)\} from '@crm\/wasm';$/gm, (_, names) => {
      for (const n of names.split(',').map((s) => s.trim()).filter(Boolean)) {
        assert.ok(n in crm, `docs/wasm.md:${b.line}: the package exports no ${n}`);
        imported.add(n);
      }
      return '';
    });
    assert.doesNotMatch(body, /^import /m, `docs/wasm.md:${b.line}: an import the runner cannot map`);
    const names = [...imported];
    const printed = [];
    const console = { log: (...args) => printed.push(args) };
    try {
      new Function('crm', 'console', `const { ${names.join(', ')} } = crm;\n${body}`)(crm, console);
    } catch (e) {
      assert.fail(`docs/wasm.md:${b.line} threw: ${e?.stack ?? e}`);
    }
  });
}
