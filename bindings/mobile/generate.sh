#!/usr/bin/env bash
# Builds the crm-mobile library and generates its Kotlin, Swift and Python bindings into generated/
# (git-ignored) at the repository root:
#
#   generated/python/   crm_mobile.py + libcrm_mobile.so   (runs as is: `import crm_mobile`)
#   generated/kotlin/   uniffi/crm_mobile/crm_mobile.kt    (+ the .so, for the JVM tests)
#   generated/swift/    crm_mobile.swift, crm_mobileFFI.h, crm_mobileFFI.modulemap
#   generated/lib/      the built libraries (cdylib and staticlib); stripped copies in lib/stripped/
#
# Usage: bindings/mobile/generate.sh [PROFILE]    PROFILE: dev (default) or mobile (size-optimised).
# Bindings are generated from the unstripped library (uniffi reads its metadata symbols); strip after.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${1:-dev}"
# Honour a shared target directory (CARGO_TARGET_DIR), as cargo does.
target="${CARGO_TARGET_DIR:-target}"
case "$profile" in
  dev) dir="$target/debug" ;;
  *) dir="$target/$profile" ;;
esac
out=generated

if [ "${CRM_PREBUILT:-}" = 1 ] && [ "$profile" = dev ]; then
  # .ci/run built every workspace target once (dev profile, one feature set): use those.
  echo "using the library and uniffi-bindgen already built in $dir (CRM_PREBUILT=1)"
else
  cargo build -p crm-mobile --profile "$profile"
  cargo build -p uniffi-bindgen
fi
bindgen="$target/debug/uniffi-bindgen"
lib="$dir/libcrm_mobile.so"

rm -rf "$out"
mkdir -p "$out/lib/stripped" "$out/python" "$out/kotlin" "$out/swift"
for lang in python kotlin swift; do
  "$bindgen" generate --library "$lib" --language "$lang" --out-dir "$out/$lang" --no-format
done
cp "$lib" "$dir/libcrm_mobile.a" "$out/lib/"
cp "$lib" "$out/python/"
cp "$lib" "$out/kotlin/"
for f in libcrm_mobile.so libcrm_mobile.a; do
  cp "$out/lib/$f" "$out/lib/stripped/$f"
  strip --strip-unneeded "$out/lib/stripped/$f"
done
echo "generated bindings in $out/ (profile $profile)"
