"""Reports as DataFrames, ad-hoc aggregates and counts: computed by the core in the store, within
the user's scope, agreeing with what a list reads."""

from decimal import Decimal
import datetime as dt

import pytest

import crm

pd = pytest.importorskip("pandas")


def test_count_matches_the_list_and_takes_q_filter_and_limit(db):
    leads = db.leads.list().to_list()
    assert db.leads.list().count() == len(leads) == db.leads.count()
    won = [r for r in leads if r.status == "won"]
    assert db.leads.count("status:won") == len(won)
    typed = {"cmp": {"field": "status", "op": "eq", "value": "won"}}
    assert db.leads.list(filter=typed).count() == len(won)
    assert db.leads.list(limit=5).count() == 5
    with pytest.raises(crm.InvalidQueryError):
        db.leads.count("status:")


def test_aggregate_groups_in_the_store_as_pandas_would(db):
    df = db.leads.list().to_pandas(money="decimal")  # exact sums to compare with the store's
    by_status = db.leads.aggregate(by="status", sum="estimated_value", avg="score")
    assert list(by_status.columns) == ["status", "count", "sum(estimated_value)", "avg(score)"]
    expected = df.groupby("status").agg(count=("id", "size"), total=("estimated_value", "sum"))
    got = by_status.set_index("status")
    assert got["count"].to_dict() == expected["count"].to_dict()
    for status, total in expected["total"].items():
        assert got.loc[status, "sum(estimated_value)"] == Decimal(total)
    monthly = db.leads.aggregate(by=["source", "created_at:month"], q="status:won", max="estimated_value")
    assert all(isinstance(d, dt.date) and d.day == 1 for d in monthly["created_at:month"])
    assert monthly["count"].sum() == db.leads.count("status:won")
    with pytest.raises(crm.InvalidQueryError):
        db.leads.aggregate(by="created_at:year")


def test_reports_are_frames_within_the_users_scope(db, sales_db):
    funnel = db.reports.funnel()
    assert {"stage", "current", "reached", "conversion_percent"} <= set(funnel.columns)
    assert funnel.attrs["total"] == db.leads.count()
    assert funnel["current"].sum() + funnel.attrs["lost"] + funnel.attrs["other"] == funnel.attrs["total"]
    mine = sales_db.reports.funnel()
    assert mine.attrs["total"] == sales_db.leads.count() < funnel.attrs["total"]
    referral = db.reports.breakdown("source", q="source:referral")
    assert list(referral["key"]) == ["referral"]
    assert db.reports.forecast()["weighted_value"].map(lambda v: isinstance(v, Decimal)).all()


def test_productivity_counts_activities_per_user_week_and_kind(db, sales_db):
    p = db.reports.productivity()
    kinds = [c for c in p.columns if c not in ("user", "week", "activities")]
    assert kinds and (p[kinds].sum(axis=1) == p["activities"]).all()
    assert p["activities"].sum() == p.attrs["activities"] == db.activities.count()
    assert all(w.weekday() == 0 for w in p["week"])
    users = p.attrs["users"]
    assert users["activities"].sum() == p.attrs["activities"]
    assert p.attrs["response"]["leads"] <= db.leads.count()
    calls = db.reports.productivity(q="kind:call", tz="+02:00")
    assert calls.attrs["activities"] == db.activities.count("kind:call")
    assert sales_db.reports.productivity().attrs["activities"] == sales_db.activities.count()


def test_cohort_geo_and_lifetime_value(db, sales_db):
    c = db.reports.cohort()
    sizes = c.drop_duplicates("cohort")["leads"]
    assert sizes.sum() == db.leads.count()
    first = c[c["offset"] == 0]
    assert (first["active"] + first["won"] <= first["leads"]).all()
    triangle = c.pivot(index="cohort", columns="offset", values="active")
    assert len(triangle) == len(sizes)

    g = db.reports.geo(cell="0.5")
    assert g["records"].sum() == g.attrs["records"] == db.leads.count("latitude>=-90")
    assert g.attrs["geojson"]["type"] == "FeatureCollection"
    assert ((g["south"] <= g["center_lat"]) & (g["center_lat"] <= g["north"])).all()
    assert sales_db.reports.geo(cell=0.5)["records"].sum() == sales_db.leads.count("latitude>=-90")

    ltv = db.reports.lifetime_value(bins=4)
    assert list(ltv.columns) == ["from", "to", "customers", "value"]
    assert ltv["customers"].sum() == ltv.attrs["customers"] == db.contacts.count()
    assert ltv.attrs["total"] == ltv["value"].sum() == ltv.attrs["from_leads"] + ltv.attrs["from_quotes"]
    ps = ltv.attrs["percentiles"]
    assert list(ps) == [25, 50, 75, 90, 95, 99] and ps[25] <= ps[50] <= ps[99]


def test_bad_report_parameters_raise_every_field_at_once(db):
    with pytest.raises(crm.ValidationError) as e:
        db.reports.raw("geo", cell="0", bins="x")
    assert sorted(f.path for f in e.value.fields) == ["bins", "cell"]
    with pytest.raises(crm.ValidationError) as e:
        db.reports.lifetime_value(entity="lead")
    assert [f.path for f in e.value.fields] == ["entity"]
    with pytest.raises(crm.NotFoundError):
        db.reports.raw("nope")
    with pytest.raises(crm.InvalidQueryError):
        db.reports.funnel(q="status:")


def test_the_analytics_guide_runs(capsys):
    """docs/analytics.md's Python block runs as written, and every `print` with a trailing comment
    prints exactly what the comment says."""
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "analytics.md").read_text()
    section = doc.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    expected = [
        line.split("  # ", 1)[1].strip()
        for line in block.splitlines()
        if line.lstrip().startswith("print(") and "  # " in line
    ]
    assert len(expected) >= 8
    exec(compile(block, "docs/analytics.md#from-python", "exec"), {"__name__": "docs_analytics"})
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert printed == expected
