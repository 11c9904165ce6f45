#!/usr/bin/env bash
# The code blocks of README.md and docs/: every block has a runner or a stated reason
# (.ci/doc_blocks.py check: Rust blocks are doc tests, Python blocks run under .ci/python.sh's
# pytest, JS blocks under .ci/wasm.sh's node:test, the Kotlin quote block under .ci/mobile.sh), then
# the shell blocks run here, file by file, with `crm` on PATH ($CRM_BIN, else a debug build). A
# failure names the file and line of the block. Run from anywhere; extra arguments pick files
# (e.g. docs/cli.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
python3 .ci/doc_blocks.py check
python3 .ci/doc_blocks.py shell "$@"
