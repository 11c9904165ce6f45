// docs/wasm.md's TypeScript, checked as the guide shows it (run by .ci/wasm.sh before tsc):
// - each ```ts block becomes docs/wasm_md_L<line>.ts (tsconfig.json type-checks it like node.ts, and
//   .ci/wasm.sh runs what tsc emits), so a failure names the block's line in the guide;
// - each ```json block with `compilerOptions` must hold exactly the settings of the tsconfig file
//   this check uses for that resolution (tsconfig.json for nodenext, tsconfig.web.json for bundler),
//   besides the check's own output options.
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const here = new URL('.', import.meta.url);
const lines = readFileSync(new URL('../../../docs/wasm.md', here), 'utf8').split('\n');
const blocks = [];
for (let i = 0; i < lines.length; i++) {
  const m = /^```(\w+)\s*$/.exec(lines[i]);
  if (!m) continue;
  const line = i + 1;
  const body = [];
  for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
  blocks.push({ lang: m[1], line, text: body.join('\n') });
}

const out = new URL('docs/', here);
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const ts = blocks.filter((b) => b.lang === 'ts' || b.lang === 'typescript');
if (ts.length === 0) throw new Error('docs/wasm.md has no ts block');
for (const b of ts) {
  writeFileSync(new URL(`wasm_md_L${b.line}.ts`, out), `// docs/wasm.md:${b.line}\n${b.text}\nexport {};\n`);
}

const own = new Set(['outDir', 'rootDir', 'noEmit', 'noEmitOnError']);
const settings = (file) => {
  const o = JSON.parse(readFileSync(new URL(file, here), 'utf8')).compilerOptions;
  return Object.fromEntries(Object.entries(o).filter(([k]) => !own.has(k)));
};
const files = { nodenext: 'tsconfig.json', bundler: 'tsconfig.web.json' };
const seen = new Set();
for (const b of blocks.filter((b) => b.lang === 'json' && b.text.includes('"compilerOptions"'))) {
  const documented = JSON.parse(b.text).compilerOptions;
  const file = files[documented.moduleResolution];
  if (!file) throw new Error(`docs/wasm.md:${b.line}: no checked tsconfig for moduleResolution ${documented.moduleResolution}`);
  if (!isDeepStrictEqual(documented, settings(file))) {
    throw new Error(`docs/wasm.md:${b.line}: the documented settings are not ${file}'s: ${JSON.stringify(settings(file))}`);
  }
  seen.add(file);
}
for (const file of Object.values(files)) {
  if (!seen.has(file)) throw new Error(`docs/wasm.md documents no settings for ${file}`);
}
console.log(`docs/wasm.md: ${ts.length} ts block(s) written to docs/, ${seen.size} tsconfig block(s) match`);
