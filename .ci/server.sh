#!/usr/bin/env bash
# The HTTP server as users run it: `crm serve --demo` on a fresh SQLite file, sign in and call the API
# with curl, then SIGTERM (graceful shutdown must exit 0). Also validates the committed OpenAPI
# document against the OpenAPI 3.1 schema, and screenshots /docs in headless Chromium with the
# network cut (installs chromium if missing; needs root for the network namespace). Run from the
# repo root.
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
cargo build -q -p crm-cli
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CRM_DEMO_PASSWORD=ci-demo-password-123 CRM_JWT_SECRET=ci-secret-ci-secret-ci-secret-ci-secret \
  "$CARGO_TARGET_DIR/debug/crm" --database "$tmp/crm.db" serve --demo --listen "127.0.0.1:$port" > "$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
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
kill -TERM "$pid"
wait "$pid"
pid=""
grep -q "shutting down" "$tmp/serve.log"
echo "graceful shutdown: exit 0"

echo "-- /docs renders with the network cut (headless Chromium and the server in a network namespace)"
# The reference UI is served from the binary: with only loopback reachable, the page must still
# render (a CDN script would leave it blank).
if ! command -v chromium > /dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "pillow>=10,<13"
cat > "$tmp/docs-shot.sh" <<SH
set -euo pipefail
ip link set lo up
"$CARGO_TARGET_DIR/debug/crm" --database "$tmp/docs.db" serve --listen 127.0.0.1:8089 > "$tmp/docs-serve.log" 2>&1 &
spid=\$!
for _ in \$(seq 1 120); do curl -fs http://127.0.0.1:8089/readyz > /dev/null 2>&1 && break; sleep 0.5; done
if curl -fsI -m 5 https://deb.debian.org/ > /dev/null 2>&1; then echo "the network is not cut"; exit 1; fi
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,900 \
  --virtual-time-budget=10000 --screenshot="$tmp/docs.png" http://127.0.0.1:8089/docs > "$tmp/chromium.log" 2>&1
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
