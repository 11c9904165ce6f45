#!/usr/bin/env bash
# Mobile bindings CI: builds the uniffi library (size-optimised `mobile` profile), generates the
# Kotlin, Swift and Python bindings, runs the Python tests under pytest and the Kotlin tests on the
# JVM against the generated code (with docs/mobile.md's commands, through the Android module's
# source layout), checks the packaging scripts' syntax, the Android module's wiring and the Swift
# package's layout (neither the AAR nor the XCFramework can be built here: no NDK, SDK, Gradle or
# Xcode), and prints the library sizes.
# Run from the repository root as root on Debian 12 (apt-get, npm and pip available).
# PROFILE=dev .ci/mobile.sh uses the debug library instead (faster; .ci/run does, with CRM_PREBUILT=1
# taking the library and uniffi-bindgen its one build made).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
profile="${PROFILE:-mobile}"
tools="$root/target/mobile-tools"
mkdir -p "$tools"

echo "== toolchain: libjna-java, pytest, shellcheck, kotlin-compiler 2.4.x"
have_pytest() { python3 -c 'import pytest' 2>/dev/null || /usr/bin/python3 -c 'import pytest' 2>/dev/null; }
if [ ! -f /usr/share/java/jna.jar ] || ! have_pytest || ! command -v java >/dev/null || ! command -v shellcheck >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libjna-java python3-pytest default-jre-headless shellcheck >/dev/null
fi
if [ ! -x "$tools/node_modules/kotlin-compiler/bin/kotlinc" ]; then
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error kotlin-compiler@2.4
fi
# A python3 that has pytest (Debian's python3-pytest lives in /usr/bin/python3).
py=python3
python3 -c 'import pytest' 2>/dev/null || py=/usr/bin/python3

echo "== build ($profile) and generate the bindings"
bash bindings/mobile/generate.sh "$profile"

echo "== Python: generated bindings under pytest"
rc=0
"$py" -m pytest -q -p no:cacheprovider bindings/mobile/tests/python || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "pytest failed (exit $rc; 5 means no tests were collected)" >&2
  exit 1
fi

echo "== packaging scripts: shell syntax and shellcheck (warnings and errors)"
scripts="bindings/mobile/generate.sh bindings/mobile/android/build-aar.sh bindings/mobile/swift/build-xcframework.sh"
for f in $scripts; do
  bash -n "$f"
done
# shellcheck disable=SC2086 # the list splits on spaces on purpose
shellcheck -S warning $scripts

echo "== Kotlin: the Android module's sources compiled and run on the JVM (docs/mobile.md's commands)"
rm -rf "$root/target/mobile-kotlin"
# The guide's Kotlin blocks that the tests call (estimateMove, CrmRepository), beside Main.kt
# (bindings/mobile/tests/kotlin/docs is git-ignored).
rm -rf bindings/mobile/tests/kotlin/docs
python3 .ci/doc_blocks.py kotlin bindings/mobile/tests/kotlin/docs
# docs/mobile.md's "On the JVM" block, verbatim: build-aar.sh --sources lays out the module's
# generated Kotlin, kotlinc compiles it with the module's helpers and the tests, java runs them.
# The two-phone sync scenario's server: `crm serve --demo`, stopped once so that the phones start
# from a copy of its database (their provisioning), then started again on it. Main.kt reads CRM_SYNC_*.
if [ -n "${CRM_BIN:-}" ]; then crm=$CRM_BIN; else cargo build -q -p crm-cli; crm="$root/target/debug/crm"; fi
sync_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve() {
  CRM_DEMO_PASSWORD=mobile-sync-password-1 CRM_JWT_SECRET=mobile-secret-mobile-secret-mobile-secret \
    "$crm" --database "$sync_dir/server.db" serve --demo --listen "127.0.0.1:$port" >> "$sync_dir/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && return 0
    sleep 0.5
  done
  cat "$sync_dir/serve.log" >&2
  exit 1
}
serve
kill -TERM "$server_pid"; wait "$server_pid" || true
cp "$sync_dir/server.db" "$sync_dir/phone.db"
serve
trap 'kill -TERM "$server_pid" 2>/dev/null || true' EXIT
CRM_SYNC_URL="http://127.0.0.1:$port" CRM_SYNC_DB="$sync_dir/phone.db" CRM_SYNC_PASSWORD=mobile-sync-password-1
CRM_SYNC_ORG=$(grep -o 'organization [0-9a-f-]*' "$sync_dir/serve.log" | head -1 | awk '{print $2}')
CRM_SYNC_EMAIL=$(grep -A10 'demo users' "$sync_dir/serve.log" | awk '$1 == "manager" {print $2}' | head -1)
export CRM_SYNC_URL CRM_SYNC_DB CRM_SYNC_PASSWORD CRM_SYNC_ORG CRM_SYNC_EMAIL
test -n "$CRM_SYNC_ORG" && test -n "$CRM_SYNC_EMAIL"

jvm_block="$(python3 .ci/doc_blocks.py block docs/mobile.md 'bindings/mobile/android/build-aar.sh --sources')"
bash -euo pipefail -c "$jvm_block" | tee "$sync_dir/jvm.out"
grep -q '^ok   two phones sync through crm serve' "$sync_dir/jvm.out" || { echo "the two-phone scenario did not run" >&2; exit 1; }

echo "== Android module: wiring (the AAR itself needs the NDK, SDK and Gradle: not on this machine)"
module=bindings/mobile/android/crm
test -s "$module/src/main/uniffi/uniffi/crm_mobile/crm_mobile.kt"
grep -q 'java.srcDir("src/main/uniffi")' "$module/build.gradle.kts"
grep -q 'include(":crm")' bindings/mobile/android/settings.gradle.kts
grep -q 'jna:.*@aar' "$module/build.gradle.kts"
grep -Eq 'suspend fun `?listLeads`?\(' "$module/src/main/uniffi/uniffi/crm_mobile/crm_mobile.kt"

echo "== Swift: package layout (no Swift toolchain on Linux CI; compiled only in Xcode)"
for f in crm_mobile.swift crm_mobileFFI.h crm_mobileFFI.modulemap; do
  test -s "generated/swift/$f" || { echo "missing generated/swift/$f" >&2; exit 1; }
done
bash bindings/mobile/swift/build-xcframework.sh --sources
pkg=bindings/mobile/swift
test -s "$pkg/Sources/CrmMobile/crm_mobile.swift"
test -s "$pkg/build/headers/crm_mobileFFI/crm_mobileFFI.h"
# One module name everywhere: the module map's, the binary target's, the generated Swift's import.
grep -q '^module crm_mobileFFI' "$pkg/build/headers/crm_mobileFFI/module.modulemap"
grep -q 'binaryTarget(name: "crm_mobileFFI", path: "crm_mobileFFI.xcframework")' "$pkg/Package.swift"
grep -q 'import crm_mobileFFI' "$pkg/Sources/CrmMobile/crm_mobile.swift"
# The async API the guide's Swift calls.
swift="$pkg/Sources/CrmMobile/crm_mobile.swift"
grep -Eq 'static func `?open`?\(path: String, user: String\) *async +throws' "$swift"
grep -Eq 'func listLeads\(query: ListQuery\) *async +throws' "$swift"
grep -Eq 'func loadDemo\(path: String, contacts: UInt32, leads: UInt32, activitiesPerLead: UInt32\) *async +throws' "$swift"
echo "swift sources present: $(ls generated/swift | tr '\n' ' ')"

echo "== library sizes (profile $profile, $(uname -m))"
for f in generated/lib/libcrm_mobile.so generated/lib/stripped/libcrm_mobile.so \
         generated/lib/libcrm_mobile.a generated/lib/stripped/libcrm_mobile.a; do
  printf '%10d bytes  %s\n' "$(stat -c %s "$f")" "$f"
done
echo "mobile CI passed"
