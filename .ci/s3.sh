#!/usr/bin/env bash
# The S3 blob store (crm-store feature `s3`) against a real S3-compatible server: moto_server from
# PyPI (its own venv, .ci/.venv-moto, ignored by git) on a free loopback port, a bucket made with a
# plain PUT, the AWS environment pointed at it, then the S3 tests (the store's own and the attachment
# conformance cases over it, which skip with a note when CRM_S3_TEST_URL is unset), then the server
# is stopped. Run from the repo root; .ci/run runs it after the workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
pid=""
log=$(mktemp)
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

if [ ! -x .ci/.venv-moto/bin/moto_server ]; then
  rm -rf .ci/.venv-moto
  python3 -m venv .ci/.venv-moto
  .ci/.venv-moto/bin/pip install -q --disable-pip-version-check 'moto[server]>=5.2,<5.3'
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.ci/.venv-moto/bin/moto_server -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/" > /dev/null 2>&1 && break
  sleep 0.2
done
curl -fs -X PUT "http://127.0.0.1:$port/crm-test" > /dev/null || { cat "$log"; echo "moto_server did not start"; exit 1; }
echo "moto_server on 127.0.0.1:$port, bucket crm-test"

export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test CRM_S3_TEST_URL=s3://crm-test
# Under .ci/run (CRM_PREBUILT=1) the workspace's test build has the feature on (crm-cli enables it):
# run those binaries rather than resolve crm-store's features alone, which rebuilds its tree.
if [ "${CRM_PREBUILT:-}" = 1 ]; then sel=(--workspace); else sel=(-p crm-store --features s3); fi
cargo test "${sel[@]}" --lib blob::s3 -- --nocapture 2>&1 | tee "$log.tests"
cargo test "${sel[@]}" --test sqlite_conformance in_s3 -- --nocapture 2>&1 | tee -a "$log.tests"
# Skipped tests pass too: here none may skip.
if grep -q "^skipped:" "$log.tests"; then echo "an S3 test skipped with the server up"; rm -f "$log.tests"; exit 1; fi
rm -f "$log.tests"
