#!/usr/bin/env bash
# The HTTP server as users run it: `crm serve --demo` on a fresh SQLite file, sign in and call the API
# with curl (and run the guides' curl blocks against it), then SIGTERM (graceful shutdown must exit 0). Also validates the committed OpenAPI
# document against the OpenAPI 3.1 schema, screenshots /docs in headless Chromium with the
# network cut (installs chromium if missing; needs root for the network namespace), and drives the
# dashboard at / the same way (sign in, the funnel against the API, a phone-sized screenshot). Run
# from the repo root. CRM_ST_SECONDS bounds the schemathesis phase (default 150 s).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

echo "-- the OpenAPI document validates (openapi-spec-validator, OpenAPI 3.1)"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator>=0.7,<0.9"
"$tmp/venv/bin/python" - docs/api/openapi.json <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
doc = json.load(open(sys.argv[1]))
validate(doc, cls=OpenAPIV31SpecValidator)
ops = sum(len(v) for v in doc["paths"].values())
print(f"valid OpenAPI {doc['openapi']}: {len(doc['paths'])} paths, {ops} operations")
PY

echo "-- crm serve --demo, sign in, call, shut down"
# $CRM_BIN when the caller built it (.ci/run builds every target once), else a debug build.
if [ -n "${CRM_BIN:-}" ]; then crm=$CRM_BIN; else cargo build -q -p crm-cli; crm="${CARGO_TARGET_DIR:-$PWD/target}/debug/crm"; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CRM_DEMO_PASSWORD=ci-demo-password-123 CRM_JWT_SECRET=ci-secret-ci-secret-ci-secret-ci-secret \
  "$crm" --database "$tmp/crm.db" serve --demo --listen "127.0.0.1:$port" > "$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "http://127.0.0.1:$port/readyz"; echo
org=$(grep -o 'organization [0-9a-f-]*' "$tmp/serve.log" | awk '{print $2}')
email=$(grep -A1 'demo users' "$tmp/serve.log" | tail -1 | awk '{print $2}')
token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"organization\":\"$org\",\"email\":\"$email\",\"password\":\"ci-demo-password-123\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fs -G "http://127.0.0.1:$port/api/v1/leads" -H "authorization: Bearer $token" \
  --data-urlencode 'q=score>=60' --data-urlencode 'sort=-score' -d limit=3 -d fields=first_name,score \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["items"]) == 3, d; print("top leads:", [(i["first_name"], i["score"]) for i in d["items"]])'
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/leads")
[ "$status" = 401 ] || { echo "unauthenticated list answered $status"; exit 1; }

echo "-- the guides' blocks that call a server (.ci/doc_blocks.py SERVER), against this one"
command -v jq > /dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq; }
CRM_DOC_BASE="http://127.0.0.1:$port" ORG="$org" PASSWORD=ci-demo-password-123 TOKEN="$token" \
  python3 .ci/doc_blocks.py server
kill -TERM "$pid"
wait "$pid"
pid=""
grep -q "shutting down" "$tmp/serve.log"
echo "graceful shutdown: exit 0"

echo "-- schemathesis: every phase against the served document"
# Schemathesis 4.x (its own venv, .ci/.venv, ignored by git) runs the examples, coverage, fuzzing
# and stateful phases with every check against `crm serve --demo`, signed in as the demo admin
# (.ci/schemathesis_hooks.py keeps the session alive). Any failure fails the step: a server error,
# an undocumented status, a response that breaks its schema, a refused valid request (outside the
# few kinds the hooks name), an accepted invalid one. Bounded: a few examples per operation and a
# time budget (CRM_ST_SECONDS). Generic over the served document: every operation is tested but
# those that would end the session or the tenant (sign-out, password change, token refresh: the
# hooks' own session) and webhook registration (deliveries go to the addresses it is given).
# Python 3.12 or later: on 3.11, Hypothesis's reading of lambda sources (when it reports a
# failing draw) can die with CPython's "SystemError: AST constructor recursion depth mismatch".
# CRM_ST_PYTHON picks the interpreter; else the first of python3.13 / python3.12 that runs
# (with pyenv, its installed 3.12), else python3.
st_python="${CRM_ST_PYTHON:-}"
if [ -z "$st_python" ]; then
  for candidate in python3.13 python3.12 $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3 2>/dev/null) python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12) and "python3" != sys.argv[1])' "$candidate" > /dev/null 2>&1; then
      st_python=$candidate
      break
    fi
  done
fi
if [ ! -x .ci/.venv/bin/schemathesis ] || ! .ci/.venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  rm -rf .ci/.venv
  "$st_python" -m venv .ci/.venv
fi
.ci/.venv/bin/pip install -q --disable-pip-version-check "schemathesis>=4.1,<5"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Rate limits far above what two workers send: a 429 would hide the answer being tested. The
# idle time allowed between requests on a kept-alive connection (CRM_HEADER_TIMEOUT, 10 s by
# default) is raised: schemathesis's HTTP client keeps idle connections pooled past it and does
# not retry a request written just as the server closes one (RFC 9112 section 9.3.1 lets a
# client retry only idempotent requests), which showed as "Remote end closed connection without
# response" on a loaded machine: the client's race, not an answer of the API.
CRM_DEMO_PASSWORD=ci-demo-password-123 CRM_JWT_SECRET=ci-secret-ci-secret-ci-secret-ci-secret \
  CRM_RATE_LIMIT=100000 CRM_RATE_BURST=100000 CRM_HEADER_TIMEOUT=300 \
  "$crm" --database "$tmp/st.db" serve --demo --listen "127.0.0.1:$port" > "$tmp/st-serve.log" 2>&1 &
pid=$!
# Loading the demo tenant takes a minute or more in a debug build on a busy machine.
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.5
done
st_started=$(date +%s)
status=0
CRM_ST_BASE_URL="http://127.0.0.1:$port" \
  CRM_ST_ORG=$(grep -o 'organization [0-9a-f-]*' "$tmp/st-serve.log" | awk '{print $2}') \
  CRM_ST_EMAIL=$(grep -A1 'demo users' "$tmp/st-serve.log" | tail -1 | awk '{print $2}') \
  CRM_ST_PASSWORD=ci-demo-password-123 SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py \
  .ci/.venv/bin/schemathesis --no-color --config-file .ci/schemathesis.toml run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --phases examples,coverage,fuzzing,stateful --checks all --max-examples "${CRM_ST_EXAMPLES:-5}" \
  --max-time "${CRM_ST_SECONDS:-150}" --workers 2 --seed "${CRM_ST_SEED:-1}" \
  --exclude-path-regex '/auth/(logout|password|refresh)|/organizations' --exclude-operation-id create_webhook \
  > "$tmp/st.log" 2>&1 || status=$?
rm -rf .schemathesis  # its example database, of no use between CI runs
tail -n 40 "$tmp/st.log"
echo "schemathesis: exit $status after $(( $(date +%s) - st_started )) s"
if [ "$status" != 0 ]; then
  # The failing cases themselves (each with its reproducing curl) last, where a truncated CI
  # report still shows them; the summary above only counts them.
  echo "-- schemathesis: the failing cases"
  sed -n '/= FAILURES =/,/= SUMMARY =/p' "$tmp/st.log" | head -n 200
fi
panicked=0
if grep -q "panicked" "$tmp/st-serve.log"; then echo "the server panicked:"; grep -A3 panicked "$tmp/st-serve.log"; panicked=1; fi
kill -TERM "$pid"; wait "$pid" || true
pid=""
if [ "$status" != 0 ] || [ "$panicked" = 1 ]; then
  cp "$tmp/st.log" "$CARGO_TARGET_DIR/schemathesis.log"; echo "full log: $CARGO_TARGET_DIR/schemathesis.log"
  cp "$tmp/st-serve.log" "$CARGO_TARGET_DIR/schemathesis-serve.log"; echo "server log: $CARGO_TARGET_DIR/schemathesis-serve.log"
fi
# Any failure fails the step: a server panic, and every schemathesis failure. Set CRM_ST_STRICT=0
# to have schemathesis's failures printed without failing (while exploring a new document).
# On 2026-12-01 seeds 1, 2 and 3 ran clean (2038, 2114 and 1310 cases).
[ "$panicked" = 0 ] || exit 1
if [ "$status" != 0 ]; then
  if [ "${CRM_ST_STRICT:-1}" != 0 ]; then exit 1; fi
  echo "schemathesis: failures reported above, not failing the step (CRM_ST_STRICT=0)"
fi

echo "-- /docs renders with the network cut (headless Chromium and the server in a network namespace)"
# The reference UI is served from the binary: with only loopback reachable, the page must still
# render (a CDN script would leave it blank).
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "pillow>=10,<13"
cat > "$tmp/docs-shot.sh" <<SH
set -euo pipefail
ip link set lo up
"$crm" --database "$tmp/docs.db" serve --listen 127.0.0.1:8089 > "$tmp/docs-serve.log" 2>&1 &
spid=\$!
trap 'kill -TERM \$spid 2>/dev/null || true' EXIT
for _ in \$(seq 1 120); do curl -fs http://127.0.0.1:8089/readyz > /dev/null 2>&1 && break; sleep 0.5; done
if curl -fsI -m 5 https://deb.debian.org/ > /dev/null 2>&1; then echo "the network is not cut"; exit 1; fi
timeout 300 "$tmp/venv/bin/python" "$PWD/.ci/docs_shot.py" http://127.0.0.1:8089/docs "$tmp/docs.png"
kill -TERM \$spid
wait \$spid
SH
unshare -n bash "$tmp/docs-shot.sh"
mkdir -p "$CARGO_TARGET_DIR/server-screenshots"
cp "$tmp/docs.png" "$CARGO_TARGET_DIR/server-screenshots/docs.png"
"$tmp/venv/bin/python" - "$tmp/docs.png" <<'PY'
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
counts = img.getcolors(img.width * img.height)
inked = sum(n for n, rgb in counts if min(rgb) < 200) / (img.width * img.height)
colours = len(counts)
print(f"/docs screenshot: {inked:.0%} of pixels inked, {colours} colours")
assert inked > 0.05 and colours > 50, "the reference page did not render (blank)"
PY
echo "screenshot: $CARGO_TARGET_DIR/server-screenshots/docs.png"

echo "-- the dashboard at / with the network cut: sign in with Enter, the funnel's numbers as the API answers them, a phone-sized screenshot"
# Over the demo database of the first server (its tenant, org id and password), served again with
# only loopback reachable: the page's files come from the binary or it does not work. Signed in as
# a sales user, so the numbers compared are that user's scope (.ci/dashboard_probe.py).
sales=$(grep -m1 '^  sales ' "$tmp/serve.log" | awk '{print $2}')
cat > "$tmp/dash.sh" <<SH
set -euo pipefail
ip link set lo up
"$crm" --database "$tmp/crm.db" serve --listen 127.0.0.1:8089 > "$tmp/dash-serve.log" 2>&1 &
spid=\$!
trap 'kill -TERM \$spid 2>/dev/null || true' EXIT
for _ in \$(seq 1 120); do curl -fs http://127.0.0.1:8089/readyz > /dev/null 2>&1 && break; sleep 0.5; done
timeout 300 python3 "$PWD/.ci/dashboard_probe.py" http://127.0.0.1:8089 "$org" "$sales" ci-demo-password-123 "$tmp/dashboard.png"
kill -TERM \$spid
wait \$spid
SH
unshare -n bash "$tmp/dash.sh"
cp "$tmp/dashboard.png" "$tmp/dashboard-wide.png" "$CARGO_TARGET_DIR/server-screenshots/"
echo "screenshots: $CARGO_TARGET_DIR/server-screenshots/dashboard.png (375 px wide), dashboard-wide.png"
