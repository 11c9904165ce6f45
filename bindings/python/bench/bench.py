"""Benchmark of the Python module against Python's own sqlite3 module on the same database file.

    python bench/bench.py --leads 1000000 --db /tmp/crm-bench.db

Seeds the file once (the demo tenant, then generated leads through ``db.import_csv``, i.e. through
the core's validation and scoring), then measures, each beside a raw ``sqlite3`` baseline doing the
same reads on the same file:

- ``to_arrow``: every lead as a ``pyarrow.Table`` (crm: Rust-built Arrow arrays; sqlite3:
  ``SELECT`` every column, ``fetchall``, ``pyarrow.table`` from the column lists, no type conversion;
  and, where DuckDB and its SQLite reader are installed, DuckDB's Arrow result of the same ``SELECT``
  on the attached file: ``duckdb_s``);
- ``to_arrow_by_score``: the same ordered by score, highest first (ties by id);
- ``list_page``: the first page of 50 of ``status:new score>=20`` sorted by score (crm: ``Record``
  objects with datetime/Decimal/UUID values, access control applied; sqlite3: the same SQL, tuples);
- ``import_csv``: ``--import-rows`` more leads from a CSV file (crm: ``db.import_csv``, all or
  nothing: parsing, validation, scoring, audit entries, events; sqlite3: the ``csv`` module reading
  the same file and ``executemany`` inserting its rows, with ids and timestamps, in one transaction,
  into a copy of the ``leads`` table holding its rows and the same indexes, made before the clock
  starts and dropped afterwards);
- ``score``: scoring every lead (crm: ``db.scoring.rescore()``, the full model with activities, writes
  changed scores; sqlite3: reading the lead columns the default model's fit rules need and applying
  those rules in Python, no activities, no writes) — the baseline does strictly less work.

Every baseline runs in a child process of its own (see ``baseline``). Prints one JSON object per
line: name, rows, crm seconds (wall clock, and CPU of every thread of the process), sqlite3 seconds,
and their ratio. ``--only to_arrow --no-baseline`` measures just
the export.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import pyarrow as pa

import crm


SOURCES = ["referral", "website", "door_knock", "google_ads", "storm_canvass", "phone_in", "partner"]
STATUSES = ["new", "contacted", "qualified", "proposal_sent", "won", "lost"]
CSV_COLUMNS = ["first_name", "last_name", "phone", "source", "status", "estimated_value", "priority", "external_id"]


def write_leads(path: str, rng: random.Random, start: int, size: int, prefix: str) -> None:
    """A CSV of `size` generated leads numbered from `start`, external ids `<prefix><number>`."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for i in range(start, start + size):
            w.writerow([
                f"First{i}", f"Last{i}", f"+1720555{i % 10000:04d}", rng.choice(SOURCES), rng.choice(STATUSES),
                str(rng.randrange(500, 60000)), rng.choice(["low", "medium", "high", "urgent"]), f"{prefix}{i:08d}",
            ])


def copy_leads(conn: sqlite3.Connection) -> None:
    """``bench_py_leads``: a copy of ``leads`` with its rows and the same indexes (built after the rows)."""
    ddl = conn.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'leads' AND sql IS NOT NULL").fetchall()
    conn.execute('DROP TABLE IF EXISTS "bench_py_leads"')
    for kind, sql in sorted(ddl, key=lambda r: r[0] != "table"):
        sql = sql.replace('"leads"', '"bench_py_leads"')
        if kind == "index":
            sql = sql.replace('INDEX "', 'INDEX "bench_py_', 1)
        else:
            conn.execute(sql)
            conn.execute('INSERT INTO "bench_py_leads" SELECT * FROM "leads"')
            conn.commit()
            continue
        conn.execute(sql)


def raw_import(conn: sqlite3.Connection, org: bytes, path: str) -> int:
    """The sqlite3 side of ``import_csv``: the file's rows into ``bench_py_leads`` ([`copy_leads`])."""
    info = conn.execute('PRAGMA table_info("bench_py_leads")').fetchall()
    required = {r[1]: r[4] for r in info if r[3] and r[4] is not None}  # NOT NULL with a default
    names = CSV_COLUMNS + ["id", "org_id", "version", "created_at", "updated_at"] + [
        c for c in required if c not in CSV_COLUMNS]
    sql = f'INSERT INTO "bench_py_leads" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})'
    extra = [required[c].strip("'") for c in names[len(CSV_COLUMNS) + 5:]]
    now = int(time.time() * 1_000_000)
    # Time-ordered ids, as the core's UUIDv7s are (random ones would scatter the key's inserts).
    first_id = (now // 1000) << 80
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        conn.execute("BEGIN")
        n = 0
        for chunk in iter(lambda: [r for _, r in zip(range(2000), rows)], []):
            conn.executemany(sql, [
                r[:5] + [int(r[5]) * 100] + r[6:] + [(first_id + n + i).to_bytes(16, "big"), org, 1, now, now] + extra
                for i, r in enumerate(chunk)])
            n += len(chunk)
        conn.execute("COMMIT")
    return n


def seed(path: str, n: int) -> None:
    info = crm.load_demo(path, leads=200, contacts=100)
    if not info["users"]:
        return  # already seeded
    db = crm.open(path)
    rng = random.Random(7)
    todo = n - 200
    chunk = 200_000
    done = 0
    with tempfile.TemporaryDirectory() as d:
        while done < todo:
            size = min(chunk, todo - done)
            p = os.path.join(d, "leads.csv")
            write_leads(p, rng, done, size, "B")
            t = time.perf_counter()
            rep = db.import_csv(p, dry_run=False)
            print(json.dumps({"seed_import_rows": rep.created, "seconds": round(time.perf_counter() - t, 2)}), flush=True)
            done += size


#: CPU seconds (user + system, every thread of the process) of the run `best` picked last.
last_cpu = 0.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best(f, repeat: int) -> float:
    global last_cpu
    runs = []
    for _ in range(repeat):
        c, t = _cpu(), time.perf_counter()
        f()
        runs.append((time.perf_counter() - t, _cpu() - c))
    if repeat <= 3:
        wall, last_cpu = min(runs)
    else:
        wall, last_cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
    return wall


def line(name: str, rows: int, ours: float, base: float, ours_cpu: float, duck: float | None = None) -> None:
    out = {"name": name, "rows": rows, "crm_s": round(ours, 6), "crm_cpu_s": round(ours_cpu, 3),
           "sqlite3_s": round(base, 6), "ratio": round(ours / base, 2) if base else None}
    if duck:
        out.update({"duckdb_s": round(duck, 6), "ratio_duckdb": round(ours / duck, 2)})
    print(json.dumps(out), flush=True)


def duckdb_reader(path: str):
    """DuckDB with its SQLite reader attached to the file, or None where either is not installed
    (``pip install duckdb==1.4.4 duckdb-ext-sqlite``, as benches/python/funnel_duckdb.py)."""
    try:
        import duckdb
        import duckdb_ext
    except ImportError:
        return None
    ext = os.path.join(os.path.dirname(duckdb_ext.__path__[0]), "duckdb_ext", "extensions",
                       f"v{duckdb.__version__}", "linux_amd64", "sqlite_scanner.duckdb_extension")
    if not os.path.exists(ext):
        return None
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH '{path}' AS crm (TYPE sqlite, READ_ONLY)")
    return con


def baseline(name: str, db: str, org: bytes, repeat: int, *extra: str) -> dict:
    """Runs the baseline `name` in a child process (see [`child_main`]) and answers what it prints."""
    out = subprocess.run(
        [sys.executable, __file__, "--baseline", name, db, org.hex(), str(repeat), *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


# The baselines. Each runs in a child process: Python's sqlite3 (and DuckDB's SQLite reader) is a
# second copy of SQLite beside the one linked into crm, and SQLite's locks are POSIX locks, which
# belong to the process; two copies in one process take each other's locks for their own (docs/
# python.md, "Other SQLite libraries on the same file"). Run in this process, the sqlite3 side read
# "disk I/O error" and a write from it ended in a bus error.

def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute('PRAGMA table_info("leads")') if r[1] not in ("org_id", "custom")]


def base_to_arrow(db: str, org: bytes, repeat: int, order: str) -> dict:
    conn = sqlite3.connect(db)
    cols = _columns(conn)
    sql = f"SELECT {', '.join(cols)} FROM leads WHERE org_id = ? ORDER BY {order}"

    def run():
        rows = conn.execute(sql, (org,)).fetchall()
        return pa.table({c: list(v) for c, v in zip(cols, zip(*rows))})

    rows = run().num_rows
    return {"seconds": best(run, repeat), "rows": rows}


def base_duckdb_to_arrow(db: str, org: bytes, repeat: int) -> dict:
    duck = duckdb_reader(db)
    if duck is None:
        return {"seconds": None}
    cols = _columns(sqlite3.connect(f"file:{db}?mode=ro", uri=True))
    sql = f"SELECT {', '.join(cols)} FROM crm.leads WHERE org_id = ? ORDER BY id"
    rows = duck.execute(sql, [org]).arrow().read_all().num_rows
    return {"seconds": best(lambda: duck.execute(sql, [org]).arrow().read_all(), repeat), "rows": rows}


def base_list_page(db: str, org: bytes, repeat: int) -> dict:
    conn = sqlite3.connect(db)
    sql = (f"SELECT {', '.join(_columns(conn))} FROM leads WHERE org_id = ? AND status = 'new' AND score >= 20 "
           "ORDER BY score DESC, id DESC LIMIT 51")
    rows = len(conn.execute(sql, (org,)).fetchall()[:50])
    return {"seconds": best(lambda: conn.execute(sql, (org,)).fetchall(), repeat), "rows": rows}


def base_score(db: str, org: bytes, repeat: int, cap: str) -> dict:
    conn = sqlite3.connect(db)

    def run():
        out = 0
        for source, value, project, phone, email, priority in conn.execute(
            "SELECT source, estimated_value, project_type, phone, email, priority FROM leads WHERE org_id = ?", (org,)
        ):
            s = 0
            s += 20 if source == "referral" else 0
            s += 10 if source in ("storm_canvass", "website", "phone_in", "partner") else 0
            s += 5 if source == "door_knock" else 0
            v = value or 0
            s += 15 if v >= 1_500_000 else (8 if v >= 500_000 else 0)
            s += 10 if project in ("roof_replacement", "storm_damage") else 0
            s += 5 if phone is not None else 0
            s += 3 if email is not None else 0
            s += 5 if priority == "urgent" else 0
            out += min(s, int(cap))
        return out

    return {"seconds": best(run, repeat)}


def base_import(db: str, org: bytes, repeat: int, path: str) -> dict:
    conn = sqlite3.connect(db)
    copy_leads(conn)  # not timed: the raw side inserts into a table as large as crm's
    t = time.perf_counter()
    rows = raw_import(conn, org, path)
    seconds = time.perf_counter() - t
    conn.execute('DROP TABLE "bench_py_leads"')
    conn.commit()
    return {"seconds": seconds, "rows": rows}


BASELINES = {
    "to_arrow": lambda db, org, r: base_to_arrow(db, org, r, "id"),
    "to_arrow_by_score": lambda db, org, r: base_to_arrow(db, org, r, "score DESC, id"),
    "duckdb_to_arrow": base_duckdb_to_arrow,
    "list_page_50": base_list_page,
    "score_all_leads": base_score,
    "import_csv": base_import,
}


def child_main(name: str, db: str, org_hex: str, repeat: str, *extra: str) -> None:
    print(json.dumps(BASELINES[name](db, bytes.fromhex(org_hex), int(repeat), *extra)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "crm-bench.db"))
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--import-rows", type=int, default=100_000, help="rows of the import figure (0: skip it)")
    ap.add_argument("--only", choices=["to_arrow"], help="measure just this figure")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the sqlite3 side")
    a = ap.parse_args()
    seed(a.db, a.leads)
    db = crm.open(a.db)
    org = uuid.UUID(str(db.tenant)).bytes
    n = db.leads.count()

    def base(name: str, *extra: str, repeat: int = a.repeat, rows: int | None = None) -> dict:
        if not a.baseline:
            return {"seconds": 0.0}
        got = baseline(name, a.db, org, repeat, *extra)
        assert rows is None or got.get("rows") in (None, rows), (name, got, rows)
        return got

    # 1. the whole table to Arrow
    table = db.leads.list().to_arrow()
    assert table.num_rows == n
    ours = best(lambda: db.leads.list().to_arrow(), a.repeat)
    ours_cpu = last_cpu
    duck = base("duckdb_to_arrow", rows=n)["seconds"]
    line("to_arrow", n, ours, base("to_arrow", rows=n)["seconds"], ours_cpu, duck)
    if a.only == "to_arrow":
        return

    # 1b. the same in another order (one reader thread ahead of the Arrow builder)
    by_score = db.leads.list(order_by="-score")
    assert by_score.to_arrow().num_rows == n
    ours = best(lambda: by_score.to_arrow(), a.repeat)
    ours_cpu = last_cpu
    line("to_arrow_by_score", n, ours, base("to_arrow_by_score", rows=n)["seconds"], ours_cpu)

    # 2. a filtered, sorted page of 50
    q = db.leads.list(q="status:new score>=20", order_by="-score", limit=50)
    page = q.to_list()
    ours = best(lambda: q.to_list(), 200)
    ours_cpu = last_cpu
    line("list_page_50", len(page), ours, base("list_page_50", repeat=200, rows=len(page))["seconds"], ours_cpu)

    # 3. an import of new leads from a CSV file
    if a.import_rows > 0:
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "import.csv")
            write_leads(p, random.Random(11), 0, a.import_rows, f"I{time.time_ns()}-")
            raw = base("import_csv", p, rows=a.import_rows)["seconds"]
            rep = None

            def ours_import():
                nonlocal rep
                rep = db.import_csv(p, dry_run=False)

            ours = best(ours_import, 1)
            assert rep.created == a.import_rows, rep
            line("import_csv", a.import_rows, ours, raw, last_cpu)
        n += a.import_rows

    # 4. scoring every lead
    model = db.scoring.default_model()
    fit = next(g for g in model["groups"] if g["kind"] == "fit")
    ours = best(lambda: db.scoring.rescore(), 1)
    ours_cpu = last_cpu
    line("score_all_leads", n, ours, base("score_all_leads", str(fit["cap"]), repeat=1)["seconds"], ours_cpu)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--baseline"]:
        child_main(*sys.argv[2:])
    else:
        main()
