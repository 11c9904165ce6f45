#!/usr/bin/env bash
# The Python frontend: build the abi3 wheel with maturin, install it into a fresh venv the way a user
# would (pip install of the wheel, with pytest, pyarrow, pandas, polars, matplotlib, tqdm, and moto's
# S3-compatible server for the attachments in a bucket), run the
# pytest suite (zero collected tests is a failure; it includes tests/test_doc_blocks.py, which runs
# every ```python block of README.md and docs/ as written) and the analyst example. Run from the repo
# root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
PYTHON="${PYTHON:-python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A dev build (bindings/python's dev profile matches the workspace's): under .ci/run it reuses the
# dependencies the workspace's test build compiled into the same target dir, where a release build
# compiled the whole tree again (minutes on 2 cores). Users build release wheels (docs/python.md).
echo "-- build the wheel (maturin, dev profile)"
"$PYTHON" -m venv "$tmp/build"
"$tmp/build/bin/pip" install -q --disable-pip-version-check "maturin>=1.7,<2"
"$tmp/build/bin/maturin" build --manifest-path bindings/python/Cargo.toml \
  --interpreter "$tmp/build/bin/python" --out "$tmp/wheels"
ls -l "$tmp"/wheels/

echo "-- install it into a fresh venv"
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "$tmp"/wheels/crm-*.whl \
  pytest pyarrow pandas polars matplotlib tqdm 'moto[server]>=5.2,<5.3'

echo "-- pytest (against the installed wheel, run outside the source tree)"
rc=0
(cd "$tmp" && CRM_EXPECT_INSTALLED=1 "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider \
  --rootdir "$root/bindings/python" "$root/bindings/python/tests") || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"

echo "-- the analyst example"
"$tmp/venv/bin/python" examples/python/analyst.py --db "$tmp/demo.db" --leads 600 --out "$tmp/conversion_by_tier.png"
test -s "$tmp/conversion_by_tier.png"
"$tmp/venv/bin/python" -c "import sys; sys.exit(open(sys.argv[1], 'rb').read(8) != b'\x89PNG\r\n\x1a\n')" "$tmp/conversion_by_tier.png"
echo "-- the benchmark, small (it runs; figures come from the documented command in bindings/python/README.md)"
"$tmp/venv/bin/python" bindings/python/bench/bench.py --leads 20000 --import-rows 2000 --repeat 1 --db "$tmp/bench.db" \
  | tee "$tmp/bench.out"
for figure in to_arrow to_arrow_by_score list_page_50 import_csv score_all_leads; do
  grep -q "\"name\": \"$figure\"" "$tmp/bench.out" || { echo "the benchmark printed no $figure line" >&2; exit 1; }
done
echo "python frontend OK"
