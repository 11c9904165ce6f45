#!/usr/bin/env bash
# Builds the Swift package of the CRM (this directory) for iOS:
#
#   1. the Swift bindings, generated from a host build of the same commit (the same for every
#      target), into Sources/CrmMobile/crm_mobile.swift, and the C header and module map of the FFI
#      into build/headers/crm_mobileFFI/;
#   2. libcrm_mobile.a for the device (aarch64-apple-ios) and the simulators (aarch64-apple-ios-sim
#      and x86_64-apple-ios, joined with lipo), debug info stripped;
#   3. crm_mobileFFI.xcframework (xcodebuild -create-xcframework), which Package.swift names.
#
# Usage (from anywhere):
#   bindings/mobile/swift/build-xcframework.sh            # all three steps (macOS with Xcode)
#   bindings/mobile/swift/build-xcframework.sh --sources  # step 1 only, from generated/ (any host);
#                                                         # runs generate.sh first when generated/ has no Swift
# Environment: PROFILE (default mobile; dev for a quick unoptimised build), CARGO_TARGET_DIR (honoured).
#
# Needs, for steps 2 and 3 (macOS only: there is no Swift or Xcode on the Linux CI machine, so CI
# runs --sources only): Xcode 15 or newer (xcodebuild, lipo, strip) and the Rust targets
# (`rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
mode="${1:-all}"
profile="${PROFILE:-mobile}"
headers="$here/build/headers"

die() { echo "build-xcframework.sh: $*" >&2; exit 1; }

sources() {
  local gen="$root/generated/swift"
  if [ "$mode" != --sources ] || [ ! -s "$gen/crm_mobile.swift" ]; then
    bash "$root/bindings/mobile/generate.sh" "$profile"
  fi
  cp "$gen/crm_mobile.swift" "$here/Sources/CrmMobile/crm_mobile.swift"
  # The module map sits in a directory of its own: Xcode merges every XCFramework's headers into
  # one include directory, where two top-level module.modulemap files would collide.
  rm -rf "$headers" && mkdir -p "$headers/crm_mobileFFI"
  cp "$gen/crm_mobileFFI.h" "$headers/crm_mobileFFI/"
  cp "$gen/crm_mobileFFI.modulemap" "$headers/crm_mobileFFI/module.modulemap"
  echo "Swift bindings in ${here#"$root"/}/Sources/CrmMobile, FFI headers in ${headers#"$root"/}"
}

libs() {
  [ "$(uname -s)" = Darwin ] || die "the iOS libraries and the XCFramework need macOS with Xcode (this is $(uname -s))"
  command -v xcodebuild >/dev/null || die "xcodebuild is missing: install Xcode 15 or newer"
  local target="${CARGO_TARGET_DIR:-$root/target}" dir t
  case "$profile" in dev) dir=debug ;; release) dir=release ;; *) dir="$profile" ;; esac
  for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    (cd "$root" && cargo build -p crm-mobile --profile "$profile" --target "$t")
  done
  mkdir -p "$here/build/device" "$here/build/simulator"
  cp "$target/aarch64-apple-ios/$dir/libcrm_mobile.a" "$here/build/device/"
  lipo -create "$target/aarch64-apple-ios-sim/$dir/libcrm_mobile.a" "$target/x86_64-apple-ios/$dir/libcrm_mobile.a" \
    -output "$here/build/simulator/libcrm_mobile.a"
  strip -S "$here/build/device/libcrm_mobile.a" "$here/build/simulator/libcrm_mobile.a"
  rm -rf "$here/crm_mobileFFI.xcframework"
  xcodebuild -create-xcframework \
    -library "$here/build/device/libcrm_mobile.a" -headers "$headers" \
    -library "$here/build/simulator/libcrm_mobile.a" -headers "$headers" \
    -output "$here/crm_mobileFFI.xcframework"
  echo "built ${here#"$root"/}/crm_mobileFFI.xcframework"
}

case "$mode" in
  --sources) sources ;;
  all) sources; libs ;;
  *) die "usage: build-xcframework.sh [--sources]" ;;
esac
