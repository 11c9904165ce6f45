"""Benchmark of the Python module against Python's own sqlite3 module on the same database file.

    python bench/bench.py --leads 1000000 --db /tmp/crm-bench.db

Seeds the file once (the demo tenant, then generated leads through ``db.import_csv``, i.e. through
the core's validation and scoring), then measures, each beside a raw ``sqlite3`` baseline doing the
same reads on the same file:

- ``to_arrow``: every lead as a ``pyarrow.Table`` (crm: Rust-built Arrow arrays; sqlite3:
  ``SELECT`` every column, ``fetchall``, ``pyarrow.table`` from the column lists, no type conversion);
- ``to_arrow_by_score``: the same ordered by score, highest first (ties by id);
- ``list_page``: the first page of 50 of ``status:new score>=20`` sorted by score (crm: ``Record``
  objects with datetime/Decimal/UUID values, access control applied; sqlite3: the same SQL, tuples);
- ``score``: scoring every lead (crm: ``db.scoring.rescore()``, the full model with activities, writes
  changed scores; sqlite3: reading the lead columns the default model's fit rules need and applying
  those rules in Python, no activities, no writes) — the baseline does strictly less work.

Prints one JSON object per line: name, rows, crm seconds (wall clock, and CPU of every thread of
the process), sqlite3 seconds, and their ratio. ``--only to_arrow --no-baseline`` measures just
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
import tempfile
import time

import pyarrow as pa

import crm


def seed(path: str, n: int) -> None:
    info = crm.load_demo(path, leads=200, contacts=100)
    if not info["users"]:
        return  # already seeded
    db = crm.open(path)
    rng = random.Random(7)
    sources = ["referral", "website", "door_knock", "google_ads", "storm_canvass", "phone_in", "partner"]
    statuses = ["new", "contacted", "qualified", "proposal_sent", "won", "lost"]
    todo = n - 200
    chunk = 200_000
    done = 0
    with tempfile.TemporaryDirectory() as d:
        while done < todo:
            size = min(chunk, todo - done)
            p = os.path.join(d, "leads.csv")
            with open(p, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["first_name", "last_name", "phone", "source", "status", "estimated_value", "priority", "external_id"])
                for i in range(done, done + size):
                    w.writerow([
                        f"First{i}", f"Last{i}", f"+1720555{i % 10000:04d}", rng.choice(sources), rng.choice(statuses),
                        str(rng.randrange(500, 60000)), rng.choice(["low", "medium", "high", "urgent"]), f"B{i:08d}",
                    ])
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


def line(name: str, rows: int, ours: float, base: float, ours_cpu: float) -> None:
    print(json.dumps({"name": name, "rows": rows, "crm_s": round(ours, 6), "crm_cpu_s": round(ours_cpu, 3),
                      "sqlite3_s": round(base, 6), "ratio": round(ours / base, 2) if base else None}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "crm-bench.db"))
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["to_arrow"], help="measure just this figure")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the sqlite3 side")
    a = ap.parse_args()
    seed(a.db, a.leads)
    db = crm.open(a.db)
    conn = sqlite3.connect(a.db)
    org = db.tenant.bytes
    cols = [r[1] for r in conn.execute('PRAGMA table_info("leads")') if r[1] not in ("org_id", "custom")]
    n = conn.execute("SELECT count(*) FROM leads WHERE org_id = ?", (org,)).fetchone()[0]

    # 1. the whole table to Arrow
    table = db.leads.list().to_arrow()
    assert table.num_rows == n
    ours = best(lambda: db.leads.list().to_arrow(), a.repeat)
    ours_cpu = last_cpu

    def raw_arrow():
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM leads WHERE org_id = ? ORDER BY id", (org,)).fetchall()
        return pa.table({c: list(v) for c, v in zip(cols, zip(*rows))})

    base = best(raw_arrow, a.repeat) if a.baseline else 0.0
    line("to_arrow", n, ours, base, ours_cpu)
    if a.only == "to_arrow":
        return

    # 1b. the same in another order (one reader thread ahead of the Arrow builder)
    by_score = db.leads.list(order_by="-score")
    assert by_score.to_arrow().num_rows == n
    ours = best(lambda: by_score.to_arrow(), a.repeat)
    ours_cpu = last_cpu

    def raw_arrow_by_score():
        rows = conn.execute(
            f"SELECT {', '.join(cols)} FROM leads WHERE org_id = ? ORDER BY score DESC, id", (org,)
        ).fetchall()
        return pa.table({c: list(v) for c, v in zip(cols, zip(*rows))})

    base = best(raw_arrow_by_score, a.repeat) if a.baseline else 0.0
    line("to_arrow_by_score", n, ours, base, ours_cpu)

    # 2. a filtered, sorted page of 50
    q = db.leads.list(q="status:new score>=20", order_by="-score", limit=50)
    page = q.to_list()
    sql = (f"SELECT {', '.join(cols)} FROM leads WHERE org_id = ? AND status = 'new' AND score >= 20 "
           "ORDER BY score DESC, id DESC LIMIT 51")
    assert len(conn.execute(sql, (org,)).fetchall()[:50]) == len(page)
    ours = best(lambda: q.to_list(), 200)
    ours_cpu = last_cpu
    base = best(lambda: conn.execute(sql, (org,)).fetchall(), 200)
    line("list_page_50", len(page), ours, base, ours_cpu)

    # 3. scoring every lead
    model = db.scoring.default_model()
    fit = next(g for g in model["groups"] if g["kind"] == "fit")

    def raw_score():
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
            out += min(s, fit["cap"])
        return out

    ours = best(lambda: db.scoring.rescore(), 1)
    ours_cpu = last_cpu
    base = best(raw_score, 1)
    line("score_all_leads", n, ours, base, ours_cpu)


if __name__ == "__main__":
    main()
