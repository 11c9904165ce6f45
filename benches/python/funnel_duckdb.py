"""The funnel from Python (``db.reports.funnel()``, the core's report over store aggregates) beside
DuckDB reading the same SQLite file (its ``sqlite_scanner`` extension) doing the same grouping, in
one run: JSON lines like the harness's (``value`` the Python face, ``baseline`` DuckDB, ``ratio``).

    python benches/python/funnel_duckdb.py DB [--as maria@bench.test] [--rounds 5]

DB is any CRM SQLite file, e.g. one the harness kept (``harness --database FILE``). DuckDB needs
``pip install duckdb==1.4.4 duckdb-ext-sqlite`` (TOOLCHAIN.md: DuckDB 2's ``INSTALL sqlite``
downloads, which this machine cannot); without it the baseline is Python's ``sqlite3`` running
the same SQL, and the line says so. Both sides must count the same leads or the script fails.
"""

import argparse
import json
import os
import sqlite3
import sys
import time

import crm


def best(f, rounds):
    """The fastest of `rounds` calls (seconds) and the last answer."""
    out, times = None, []
    for _ in range(rounds):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def duckdb_funnel(path, org_hex):
    try:
        import duckdb
        import duckdb_ext  # noqa: F401  (the namespace the extension wheel installs into)
    except ImportError:
        return None
    ext = os.path.join(
        os.path.dirname(duckdb_ext.__path__[0]) if hasattr(duckdb_ext, "__path__") else "",
        "duckdb_ext", "extensions", f"v{duckdb.__version__}", "linux_amd64", "sqlite_scanner.duckdb_extension",
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH '{path}' AS crm (TYPE sqlite, READ_ONLY)")
    sql = (
        "SELECT status, count(*), sum(estimated_value) FROM crm.leads "
        f"WHERE org_id = from_hex('{org_hex}') GROUP BY status"
    )
    return "duckdb " + duckdb.__version__, lambda: con.execute(sql).fetchall()


def sqlite_funnel(path, org_hex):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = "SELECT status, count(*), sum(estimated_value) FROM leads WHERE org_id = ? GROUP BY status"
    org = bytes.fromhex(org_hex)
    return "python sqlite3 " + sqlite3.sqlite_version, lambda: con.execute(sql, (org,)).fetchall()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--as", dest="user", default="maria@bench.test", help="a user who may read every lead")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    db = crm.open(a.db, a.user)
    org_hex = str(db.tenant).replace("-", "")
    py_s, frame = best(lambda: db.reports.funnel(), a.rounds)
    counted = int(frame.attrs["total"])
    base = duckdb_funnel(a.db, org_hex) or sqlite_funnel(a.db, org_hex)
    label, run = base
    base_s, rows = best(run, a.rounds)
    if sum(int(r[1]) for r in rows) != counted:
        sys.exit(f"the funnel counted {counted} leads, {label} {sum(int(r[1]) for r in rows)}")
    print(json.dumps({
        "name": "python_funnel", "value": round(py_s * 1e6, 1), "unit": "us/op",
        "baseline": round(base_s * 1e6, 1), "baseline_unit": "us/op", "ratio": round(py_s / base_s, 3),
        "n": counted, "baseline_is": label,
    }))


if __name__ == "__main__":
    main()
