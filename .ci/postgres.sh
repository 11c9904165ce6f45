#!/usr/bin/env bash
# The PostgreSQL store's tests against a real server: starts a throwaway PostgreSQL cluster (as a
# non-root user) on 127.0.0.1:$CRM_PG_PORT (default 55432) with fsync off, exports CRM_TEST_POSTGRES,
# runs `cargo test -p crm-store --features postgres` and the CLI demo against it, and stops and removes
# the cluster on exit. Works in CI and on a developer machine (needs PostgreSQL's server binaries:
# /usr/lib/postgresql/<version>/bin, or PGBIN=...; installed with apt when missing and running as root).
#
#   bash .ci/postgres.sh                            # everything
#   bash .ci/postgres.sh -- --test postgres_store   # extra arguments go to `cargo test`
#   bash .ci/postgres.sh --cli-only                 # only the CLI demo (.ci/run: its `cargo test
#                                                   # --workspace` already ran these tests on the server)
#   eval "$(bash .ci/postgres.sh --start $$)"       # only start a server for the calling shell: prints
#                                                   # `export CRM_TEST_POSTGRES=...`; the server stops
#                                                   # and is removed when process $$ exits (.ci/run)
#
# With CRM_TEST_POSTGRES already set (a server started with --start, or your own), the full run uses
# that database instead of starting one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

port=${CRM_PG_PORT:-55432}
step() { printf '\n== postgres: %s (%s)\n' "$1" "$(date +%T)" >&2; }

mode=full
owner=""
if [ "${1:-}" = "--start" ]; then
  mode=start
  owner=${2:?usage: postgres.sh --start PID}
  shift 2
fi
if [ "${1:-}" = "--cli-only" ]; then
  mode=cli
  shift
fi
extra=()
if [ "${1:-}" = "--" ]; then
  shift
  extra=("$@")
fi

find_pgbin() {
  if [ -n "${PGBIN:-}" ]; then echo "$PGBIN"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
pgbin=$(find_pgbin)
if { [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  step "installing the PostgreSQL server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pgbin=$(find_pgbin)
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "postgres: no PostgreSQL server binaries (set PGBIN to the directory holding initdb and pg_ctl)" >&2
  exit 1
fi

# The server refuses to run as root: run it as `postgres` (created if missing) when we are root.
if [ "$(id -u)" = 0 ]; then
  if ! id -u postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

dir=""
out=$(mktemp -d)
started=""
cleanup() {
  if [ -n "$started" ]; then
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$dir" ] && rm -rf "$dir"
  rm -rf "$out"
}
trap cleanup EXIT

if [ "$mode" != start ] && [ -n "${CRM_TEST_POSTGRES:-}" ]; then
  step "using the server at CRM_TEST_POSTGRES"
else
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "postgres: something already listens on 127.0.0.1:$port (set CRM_PG_PORT to use another port)" >&2
    exit 1
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/crm-pg.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  step "starting a throwaway cluster on 127.0.0.1:$port ($("$pgbin/postgres" --version))"
  as_pg "$pgbin/initdb" -D "$dir/data" -U crm --auth=trust --encoding=UTF8 --locale=C >/dev/null
  started=1
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U crm crm
  export CRM_TEST_POSTGRES="postgres://crm@127.0.0.1:$port/crm"
  echo "CRM_TEST_POSTGRES=$CRM_TEST_POSTGRES" >&2

  if [ "$mode" = start ]; then
    # Hand the server to a watchdog that stops and removes it once the owner process has exited.
    stop_cmd="$(declare -f as_pg); as_pg '$pgbin/pg_ctl' -D '$dir/data' -m immediate -w stop; rm -rf '$dir'"
    nohup bash -c "while kill -0 $owner 2>/dev/null; do sleep 2; done; $stop_cmd" </dev/null >/dev/null 2>&1 &
    started=""
    dir=""
    echo "export CRM_TEST_POSTGRES=$CRM_TEST_POSTGRES"
    exit 0
  fi
fi

if [ "$mode" = full ]; then
  step "cargo test -p crm-store --features postgres"
  cargo test -p crm-store --features postgres ${extra[@]+"${extra[@]}"}
fi

step "the CLI over PostgreSQL: demo, check, export"
# $CRM_BIN when the caller built it (.ci/run builds every target once), else a debug build.
if [ -n "${CRM_BIN:-}" ]; then crm=$CRM_BIN; else cargo build -q -p crm-cli; crm="${CARGO_TARGET_DIR:-target}/debug/crm"; fi
# A database of its own, so whatever else a reused server holds does not matter.
demo_db="crm_demo_$$"
"$pgbin/psql" -q "$CRM_TEST_POSTGRES" -c "DROP DATABASE IF EXISTS $demo_db" -c "CREATE DATABASE $demo_db"
db="${CRM_TEST_POSTGRES%/*}/$demo_db"
"$crm" --database "$db" demo --leads 400 | tee "$out/summary.txt"
grep -q "Pipeline" "$out/summary.txt"
"$crm" --database "$db" check > "$out/check.json"
"$crm" --database "$db" export --q "score>=40" --fields first_name,score --out "$out/hot.csv"
head -3 "$out/hot.csv"
# The data stays: the next command finds the tenant.
"$crm" --database "$db" summary --top 1 > /dev/null
"$pgbin/psql" -q "$CRM_TEST_POSTGRES" -c "DROP DATABASE $demo_db"
echo "postgres: done"
