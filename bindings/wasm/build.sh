#!/usr/bin/env bash
# Builds the npm package into bindings/wasm/pkg: wasm-bindgen `--target web` output (one ES module, its
# .wasm and .d.ts) plus a Node entry (node.js) and package.json from npm/.
#   bash bindings/wasm/build.sh            # dev build
#   bash bindings/wasm/build.sh --release  # release build, then wasm-opt -Oz (binaryen pinned in tools/:
#                                          # `npm ci` there first; without it the module is not optimised)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
profile=debug
flags=()
if [[ "${1:-}" == "--release" ]]; then
  profile=release
  flags=(--release)
  # Size over speed for the browser package (only this wasm build; the host release profile is untouched).
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat
fi
cargo build --manifest-path "$root/Cargo.toml" -p crm-wasm --lib --target wasm32-unknown-unknown "${flags[@]}"
rm -rf "$here/pkg"
built="$target_dir/wasm32-unknown-unknown/$profile/crm_wasm.wasm"
wasm-bindgen --target web --out-dir "$here/pkg" --out-name crm_wasm "$built"
# The Node entry's types (node.d.ts re-exports crm_api.d.ts): the API's declarations without the web
# entry's loader, whose `init`/`initSync` argument types (RequestInfo, Response, WebAssembly.Module)
# exist only in TypeScript's DOM lib. wasm-bindgen's bundler target writes exactly those declarations.
api_dts="$(mktemp -d)"
wasm-bindgen --target bundler --out-dir "$api_dts" --out-name crm_wasm "$built"
cp "$api_dts/crm_wasm.d.ts" "$here/pkg/crm_api.d.ts"
rm -rf "$api_dts"
cp "$here/npm/package.json" "$here/npm/node.js" "$here/npm/node.d.ts" "$here/npm/local.js" "$here/npm/local.d.ts" \
  "$here/npm/README.md" "$here/pkg/"
wasm="$here/pkg/crm_wasm_bg.wasm"
smoke() { node --input-type=module -e "const m = await import('$here/pkg/node.js'); m.parseFilter('status:new');" 2>/dev/null; }
if [[ "$profile" == release ]]; then
  # binaryen from npm at the version tools/package-lock.json pins (wasm-opt 132). Not Debian 12's
  # binaryen (wasm-opt 108): it rewrites wasm-bindgen's externref table into one the engines reject
  # ("Table.set(): ... must be a Wasm function object").
  wasm_opt="$here/tools/node_modules/.bin/wasm-opt"
  if [[ -x "$wasm_opt" ]]; then
    cp "$wasm" "$wasm.orig"
    # rustc's default wasm32 features (not --all-features: that lets wasm-opt emit typed function
    # references, which Node 20 rejects).
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue --strip-debug --strip-producers \
      -o "$wasm" "$wasm.orig"
    echo "crm_wasm_bg.wasm before wasm-opt: $(stat -c %s "$wasm.orig") bytes raw, $(gzip -9 -c "$wasm.orig" | wc -c) bytes gzip -9"
    smoke || { echo "$("$wasm_opt" --version): its output does not instantiate in Node" >&2; exit 1; }
    echo "$("$wasm_opt" --version): applied"
    rm -f "$wasm.orig"
  else
    echo "no pinned wasm-opt ($wasm_opt): run \`npm ci\` in bindings/wasm/tools; size not optimised" >&2
  fi
fi
smoke || { echo "the built package does not load in Node" >&2; exit 1; }
echo "crm_wasm_bg.wasm ($profile): $(stat -c %s "$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzip -9"
