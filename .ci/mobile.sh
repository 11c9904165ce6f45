#!/usr/bin/env bash
# Mobile bindings CI: builds the uniffi library (size-optimised `mobile` profile), generates the
# Kotlin, Swift and Python bindings, runs the Python tests under pytest and the Kotlin tests on the
# JVM against the generated code, checks the Swift output and prints the library sizes.
# Run from the repository root as root on Debian 12 (apt-get, npm and pip available).
# PROFILE=dev .ci/mobile.sh uses the debug library instead (faster; .ci/run does, with CRM_PREBUILT=1
# taking the library and uniffi-bindgen its one build made).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
profile="${PROFILE:-mobile}"
tools="$root/target/mobile-tools"
mkdir -p "$tools"

echo "== toolchain: libjna-java, pytest, kotlin-compiler 2.4.x"
have_pytest() { python3 -c 'import pytest' 2>/dev/null || /usr/bin/python3 -c 'import pytest' 2>/dev/null; }
if [ ! -f /usr/share/java/jna.jar ] || ! have_pytest || ! command -v java >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libjna-java python3-pytest default-jre-headless >/dev/null
fi
if [ ! -x "$tools/node_modules/kotlin-compiler/bin/kotlinc" ]; then
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error kotlin-compiler@2.4
fi
kc="$tools/node_modules/kotlin-compiler"
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

echo "== Kotlin: generated bindings compiled and run on the JVM"
build="$root/target/mobile-kotlin"
rm -rf "$build" && mkdir -p "$build"
cp_compile="/usr/share/java/jna.jar:$kc/lib/kotlinx-coroutines-core-jvm.jar"
# docs/mobile.md's Kotlin block under "## Quotes offline" is compiled with the tests (Main.kt calls it).
awk '/^## Quotes offline/{s=1} s&&/^```kotlin/{k=1;next} k&&/^```/{exit} k' docs/mobile.md > "$build/DocsQuotes.kt"
grep -q 'fun estimateMove' "$build/DocsQuotes.kt" || { echo "docs/mobile.md: no estimateMove block" >&2; exit 1; }
"$kc/bin/kotlinc" -nowarn generated/kotlin/uniffi/crm_mobile/crm_mobile.kt bindings/mobile/tests/kotlin/Main.kt "$build/DocsQuotes.kt" \
  -cp "$cp_compile" -d "$build/app.jar"
java -Djna.library.path="$root/generated/kotlin" \
  -cp "$build/app.jar:$cp_compile:$kc/lib/kotlin-stdlib.jar" MainKt

echo "== Swift: generated (no Swift toolchain on Linux CI; compiled only in Xcode)"
for f in crm_mobile.swift crm_mobileFFI.h crm_mobileFFI.modulemap; do
  test -s "generated/swift/$f" || { echo "missing generated/swift/$f" >&2; exit 1; }
done
grep -q 'public func loadDemo' generated/swift/crm_mobile.swift
grep -q 'open class Crm' generated/swift/crm_mobile.swift
echo "swift sources present: $(ls generated/swift | tr '\n' ' ')"

echo "== library sizes (profile $profile, $(uname -m))"
for f in generated/lib/libcrm_mobile.so generated/lib/stripped/libcrm_mobile.so \
         generated/lib/libcrm_mobile.a generated/lib/stripped/libcrm_mobile.a; do
  printf '%10d bytes  %s\n' "$(stat -c %s "$f")" "$f"
done
echo "mobile CI passed"
