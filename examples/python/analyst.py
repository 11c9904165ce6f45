"""An analyst's session with the CRM: open the demo database, look at the funnel by stage and source,
back-test the default scoring model against a tweaked one, and plot conversion by tier to a PNG.

    pip install crm pandas pyarrow matplotlib      # crm: the wheel built from bindings/python
    python examples/python/analyst.py --db crm.db --out conversion_by_tier.png

The database is created with the demo roofing tenant if the file has none (``crm demo`` makes the
same one).
"""

from __future__ import annotations

import argparse
import copy

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt

import crm


def tweaked_model(base: dict) -> dict:
    """The default model with more weight on meetings and site visits and on big-ticket projects."""
    m = copy.deepcopy(base)
    m["name"] = "Roofing, engagement-heavy"
    for group in m["groups"]:
        for rule in group["rules"]:
            if rule["name"] == "meeting_or_visit":
                rule["points"] = 25
            if rule["name"] == "value_15k_plus":
                rule["points"] = 20
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description="Funnel, back-test and conversion-by-tier plot.")
    ap.add_argument("--db", default="crm.db", help="SQLite file (created with demo data if empty)")
    ap.add_argument("--leads", type=int, default=3000, help="demo size when the file is created")
    ap.add_argument("--as-user", default="morgan@summit-roofing.example", help="act as this user (a manager)")
    ap.add_argument("--out", default="conversion_by_tier.png")
    a = ap.parse_args()

    crm.load_demo(a.db, leads=a.leads)
    db = crm.open(a.db, as_user=a.as_user)
    print(f"opened {a.db} as {a.as_user} ({db.role})")

    # The funnel: every lead the manager may read, as a DataFrame built in Rust.
    leads = db.leads.list().to_pandas()
    print(f"\n{len(leads)} leads")
    stages = [s.key for s in db.pipeline()]
    funnel = leads.pivot_table(index="source", columns="status", values="id", aggfunc="count", fill_value=0)
    funnel = funnel.reindex(columns=[s for s in stages if s in funnel.columns])
    print("\nLeads by source and stage:")
    print(funnel.to_string())
    closed = leads[leads["status"].isin(["won", "lost"])]
    rate = closed.groupby("source")["status"].apply(lambda s: (s == "won").mean()).sort_values(ascending=False)
    print("\nWin rate of closed leads by source:")
    print(rate.map("{:.0%}".format).to_string())

    # Back-tests: how well each model separates won from lost leads in history.
    base = db.scoring.default_model()
    reports = [db.scoring.backtest(base), db.scoring.backtest(tweaked_model(base))]
    for r in reports:
        auc = "n/a" if r.auc is None else f"{r.auc:.3f}"
        print(f"\n{r.model}: {r.evaluated} closed leads ({r.won} won, {r.lost} lost), AUC {auc}")
        for t in r.tiers:
            wr = "-" if t.win_rate is None else f"{t.win_rate:.0%}"
            lift = "-" if t.lift is None else f"{t.lift:.2f}"
            print(f"  tier {t.tier:<3} {t.temperature:<5} {t.leads:>5} leads  win rate {wr:>4}  lift {lift}")

    # Conversion by tier, one bar group per model.
    fig, ax = plt.subplots(figsize=(7, 4))
    tiers = [t.tier for t in reports[0].tiers]
    width = 0.8 / len(reports)
    for i, r in enumerate(reports):
        rates = [(t.win_rate or 0.0) * 100 for t in r.tiers]
        xs = [x + i * width for x in range(len(tiers))]
        bars = ax.bar(xs, rates, width, label=f"{r.model} (AUC {r.auc or 0:.2f})")
        for b, t in zip(bars, r.tiers):
            ax.annotate(f"n={t.leads}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_xticks([x + width * (len(reports) - 1) / 2 for x in range(len(tiers))])
    ax.set_xticklabels([f"tier {t}" for t in tiers])
    ax.set_ylabel("won / closed leads (%)")
    ax.set_title("Conversion by scoring tier, back-tested on closed leads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
