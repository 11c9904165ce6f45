#!/usr/bin/env bash
# The WebAssembly binding end to end (issue 7). Run from the repository root, as root, on Debian 12:
#   bash .ci/wasm.sh
# Installs the wasm32 target, wasm-bindgen-cli (= the crate's pinned wasm-bindgen), chromium +
# chromium-driver, and from npm (lock files) binaryen's wasm-opt (bindings/wasm/tools), TypeScript
# (bindings/wasm/ts-check) and the example's dependencies; then runs the
# wasm-bindgen-test suite in Node, builds the release package, and runs the node:test suites (package
# against native crm-core fixtures; the example page in headless Chromium) and tsc --strict over
# TypeScript programs using the packed package (bindings/wasm/ts-check, TypeScript pinned by its lock).
set -euo pipefail

WASM_BINDGEN_VERSION=0.2.130
root="$(pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "toolchain"
rustup target add wasm32-unknown-unknown
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  # Not --locked: the CLI's lock file names a webpki-roots version missing from the registry.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
grep -q "wasm-bindgen = \"=$WASM_BINDGEN_VERSION\"" bindings/wasm/Cargo.toml \
  || { echo "bindings/wasm/Cargo.toml must pin wasm-bindgen = \"=$WASM_BINDGEN_VERSION\"" >&2; exit 1; }

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver nodejs npm
fi

step "npm dependencies: the example's tests, binaryen (wasm-opt for build.sh --release)"
(cd examples/web && npm ci --no-audit --no-fund)
(cd bindings/wasm/tools && npm ci --no-audit --no-fund)

# node --test passes when it finds no tests (a file without any counts as one passing test): insist
# that at least MIN real tests passed (TAP lines `ok N - name`, not file entries `ok N - /path`) and none failed.
node_tests() {
  local dir="$1" min="$2" log n
  shift 2
  log="$(mktemp)"
  (cd "$dir" && node --test --test-reporter=tap "$@") | tee "$log"
  n="$(grep -cE '^ *ok [0-9]+ - [^/]' "$log" || true)"
  if [[ "$n" -lt "$min" ]]; then
    echo "node:test in $dir: $n tests passed, expected at least $min" >&2
    exit 1
  fi
  grep -q '^# fail 0$' "$log" || { echo "node:test failures in $dir" >&2; exit 1; }
  echo "node:test in $dir: $n passing entries (tests and suites): $(sed -n "s/^# tests //p" "$log" | tail -1) tests"
  rm -f "$log"
}

step "wasm-bindgen-test (Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p crm-wasm --target wasm32-unknown-unknown

step "fixtures from native crm-core"
if [ "${CRM_PREBUILT:-}" = 1 ]; then  # .ci/run built every workspace target once: use that one
  "${CARGO_TARGET_DIR:-target}/debug/crm-wasm-fixtures" bindings/wasm/js/fixtures.json
else
  cargo run -p crm-wasm --bin crm-wasm-fixtures -- bindings/wasm/js/fixtures.json
fi

step "release package (pkg/)"
bash bindings/wasm/build.sh --release

step "node:test: the package against the fixtures, and docs/wasm.md's js blocks"
node_tests bindings/wasm/js 101 test/rules.test.mjs test/localdb.test.mjs test/quotes.test.mjs test/front_desk.test.mjs test/round_trip.test.mjs test/docs.test.mjs test/uploads.test.mjs

step "TypeScript: tsc --strict on programs using the installed package (bindings/wasm/ts-check)"
# Installed as docs/wasm.md does (npm pack, npm install), with the pinned TypeScript of the lock file.
(
  cd bindings/wasm/ts-check
  npm ci --no-audit --no-fund
  rm -rf out ./*.tgz
  tgz="$(npm pack ../pkg --silent | tail -1)"
  npm install --no-save --no-audit --no-fund "./$tgz"
  echo "tsc $(npx tsc --version)"
  node docs.mjs                  # docs/wasm.md's ts blocks -> docs/*.ts; its tsconfig blocks = the files used here
  npx tsc -p tsconfig.json       # node.ts and the guide's blocks: strict, no DOM lib; @ts-expect-error lines must be errors
  node out/node.js               # the typed program runs: the types are what the package returns and throws
  for f in out/docs/*.js; do node "$f"; done
  npx tsc -p tsconfig.web.json   # web.ts: strict, DOM lib, bundler resolution of '@crm/wasm/web'
  # typo.ts must not compile, and for the typo.
  if npx tsc -p tsconfig.typo.json >typo.log 2>&1; then
    echo "typo.ts compiled: a misspelt request member must be a type error" >&2
    exit 1
  fi
  grep -E "typo\.ts.*error TS2(353|561): .*'limt'" typo.log || { cat typo.log >&2; echo "tsc refused typo.ts, not for limt" >&2; exit 1; }
  rm -f typo.log
)

step "node:test: the example pages (lead form, step checklist, offline leads synced with crm serve) in headless Chromium"
# The offline page syncs with a real `crm serve --demo` (CRM_BIN; .ci/run built it).
if [ -z "${CRM_BIN:-}" ]; then cargo build -q -p crm-cli; CRM_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/crm"; fi
# Absolute: the test runs from examples/web (.ci/run gives a path relative to the repository).
CRM_BIN="$(cd "$root" && realpath "$CRM_BIN")"
export CRM_BIN
SCREENSHOT_DIR="$root/target/wasm-screenshots" node_tests examples/web 4 test/page.test.mjs test/steps.test.mjs test/offline.test.mjs
echo "screenshots: target/wasm-screenshots/lead-form.png, steps.png, offline.png"
