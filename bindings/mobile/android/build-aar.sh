#!/usr/bin/env bash
# Builds the Android library (AAR) of the CRM from this Gradle project:
#
#   1. the Kotlin bindings, generated from a host build of the same commit (uniffi reads them from
#      the library's metadata; they are the same for every target), into crm/src/main/uniffi/;
#   2. libcrm_mobile.so for each Android ABI, cross-compiled with cargo-ndk against the Android NDK
#      and stripped, into crm/src/main/jniLibs/<abi>/;
#   3. Gradle: crm/build/outputs/aar/crm-release.aar.
#
# Usage (from anywhere):
#   bindings/mobile/android/build-aar.sh            # all three steps
#   bindings/mobile/android/build-aar.sh --sources  # step 1 only, from generated/ (no NDK, no SDK);
#                                                   # runs generate.sh first when generated/ has no Kotlin
#   bindings/mobile/android/build-aar.sh --libs     # steps 1 and 2 (no Android SDK, no Gradle)
# Environment: ABIS (default "arm64-v8a armeabi-v7a x86_64 x86"), PROFILE (default mobile: the
# size-optimised profile; dev for a quick unoptimised build), CARGO_TARGET_DIR (honoured), GRADLE
# (default ./gradlew if present, else gradle).
#
# Needs, for steps 2 and 3 (none of them is on the Linux CI machine, so CI runs --sources only):
#   the Android NDK r26 or newer (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>), cargo-ndk
#   (`cargo install cargo-ndk`), the Rust targets (`rustup target add aarch64-linux-android
#   armv7-linux-androideabi x86_64-linux-android i686-linux-android`), the Android SDK with platform
#   35 (ANDROID_HOME, or sdk.dir in local.properties), JDK 17 and Gradle 8.9 or newer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
mode="${1:-all}"
profile="${PROFILE:-mobile}"
abis="${ABIS:-arm64-v8a armeabi-v7a x86_64 x86}"
module="$here/crm"

die() { echo "build-aar.sh: $*" >&2; exit 1; }

sources() {
  local kt="$root/generated/kotlin/uniffi/crm_mobile/crm_mobile.kt"
  if [ "$mode" != --sources ] || [ ! -s "$kt" ]; then
    bash "$root/bindings/mobile/generate.sh" "$profile"
  fi
  rm -rf "$module/src/main/uniffi"
  mkdir -p "$module/src/main/uniffi"
  cp -R "$root/generated/kotlin/uniffi" "$module/src/main/uniffi/"
  echo "Kotlin bindings in ${module#"$root"/}/src/main/uniffi"
}

libs() {
  command -v cargo-ndk >/dev/null || die "cargo-ndk is missing: cargo install cargo-ndk"
  local ndk="${ANDROID_NDK_HOME:-}"
  if [ -z "$ndk" ]; then
    ndk="$(ls -d "${ANDROID_HOME:-/nonexistent}"/ndk/* 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$ndk" ] || die "no Android NDK: set ANDROID_NDK_HOME (NDK r26 or newer), or install one under \$ANDROID_HOME/ndk"
    export ANDROID_NDK_HOME="$ndk"
  fi
  local target="${CARGO_TARGET_DIR:-$root/target}" dir abi triple
  case "$profile" in dev) dir=debug ;; release) dir=release ;; *) dir="$profile" ;; esac
  local strip
  strip="$(ls "$ndk"/toolchains/llvm/prebuilt/*/bin/llvm-strip 2>/dev/null | head -n 1)"
  rm -rf "$module/src/main/jniLibs"
  for abi in $abis; do
    case "$abi" in
      arm64-v8a) triple=aarch64-linux-android ;;
      armeabi-v7a) triple=armv7-linux-androideabi ;;
      x86_64) triple=x86_64-linux-android ;;
      x86) triple=i686-linux-android ;;
      *) die "unknown ABI '$abi' (arm64-v8a, armeabi-v7a, x86_64, x86)" ;;
    esac
    # cargo-ndk sets the NDK's clang as linker and C compiler for the target (rusqlite compiles
    # SQLite with it); the library is then placed (and stripped) here, per ABI.
    (cd "$root" && cargo ndk -t "$abi" build -p crm-mobile --profile "$profile")
    mkdir -p "$module/src/main/jniLibs/$abi"
    cp "$target/$triple/$dir/libcrm_mobile.so" "$module/src/main/jniLibs/$abi/"
    if [ -n "$strip" ]; then "$strip" --strip-unneeded "$module/src/main/jniLibs/$abi/libcrm_mobile.so"; fi
  done
  echo "libraries: $(cd "$module/src/main" && ls -l jniLibs/*/libcrm_mobile.so)"
}

aar() {
  local gradle="${GRADLE:-}"
  if [ -z "$gradle" ]; then
    if [ -x "$here/gradlew" ]; then gradle="$here/gradlew"; else gradle=gradle; fi
  fi
  command -v "$gradle" >/dev/null || die "no Gradle: install Gradle 8.9+ or run 'gradle wrapper' in ${here#"$root"/}"
  (cd "$here" && "$gradle" --no-daemon :crm:assembleRelease)
  ls -l "$module/build/outputs/aar/crm-release.aar"
}

case "$mode" in
  --sources) sources ;;
  --libs) sources; libs ;;
  all) sources; libs; aar ;;
  *) die "usage: build-aar.sh [--sources | --libs]" ;;
esac
