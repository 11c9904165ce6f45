"""Notebook manners (issue 20, item 5): a result's length, count and preview; records one field a
line; explanations, back-tests and a bulk explain as DataFrames."""

import datetime as dt

import pandas as pd


def test_record_list_len_count_and_truthiness(db):
    result = db.leads.list(q="status:won")
    n = len(result)
    assert n == result.count() == len(result.to_list()) > 0
    assert result and not db.leads.list(q="score>1000")
    assert len(db.leads.list(limit=3)) == 3


def test_record_list_repr_shows_count_and_first_records(db):
    result = db.leads.list(q="status:won", order_by="-score")
    n = result.count()
    first = result.to_list()[:5]
    lines = repr(result).splitlines()
    assert lines[0] == f"<RecordList lead q='status:won' order_by='-score': {n} records>"
    assert len(lines) == 1 + len(first) + (n > 5)
    for line, r in zip(lines[1:], first):
        assert line.startswith(f"  Lead(id=…{r.id[-8:]}, ") and len(line) <= 112, line
    if n > 5:
        assert lines[-1] == f"  … {n - 5} more"
    assert repr(db.leads.list(q="score>1000")) == "<RecordList lead q='score>1000': 0 records>"
    assert len(repr(db.leads.list(limit=2)).splitlines()) == 3

    html = result._repr_html_()
    assert f"{n} records" in html and html.count("<tr>") == 1 + len(first)
    assert all(r.id in html for r in first)
    assert "&lt;script&gt;" in db.leads.list(q='"<script>"')._repr_html_()


def test_record_list_repr_does_not_raise_on_a_bad_query(db):
    result = db.leads.list(q="status:neww")
    assert "InvalidQueryError" in repr(result) and "InvalidQueryError" in result._repr_html_()


def test_record_repr_is_one_field_a_line(db):
    r = db.leads.list(q="estimated_value>0").first()
    lines = repr(r).splitlines()
    assert lines[0] == "Lead(" and lines[-1] == ")"
    assert lines[1] == f"    id={r.id!r}," and lines[2] == f"    version={r.version},"
    assert f"    estimated_value={r.estimated_value!r}," in lines
    set_fields = [k for k, v in r.fields.items() if v is not None]
    assert len(lines) == 2 + 2 + len(set_fields) + len(r.custom)
    html = r._repr_html_()
    assert html.count("<tr>") == 2 + len(set_fields) + len(r.custom) and r.id in html


def test_quote_repr_summarises_its_lines(db):
    contact = db.contacts.list().first()
    q = db.quotes.create(
        contact_id=contact,
        valid_until=dt.date.today() + dt.timedelta(days=30),
        title="Repr",
        quote_lines=[{"description": "Work", "quantity": 1, "unit_price": "10.00"}],
    )
    assert "    quote_lines=<1 quote_line records>," in repr(q).splitlines()


def test_explanation_and_backtest_as_dataframes(db):
    lead = db.leads.list(order_by="-score").first()
    why = db.scoring.explain(lead)
    df = why.to_pandas()
    assert list(df.columns) == ["group", "rule", "count", "points", "kind"]
    assert len(df) == len(why.contributions) and df["points"].sum() == why.score == df.attrs["score"]
    assert df.attrs["temperature"] == why.temperature
    # The explanation's temperature is the type records give (the option's key, a str).
    assert type(why.temperature) is type(lead.temperature) is str

    report = db.scoring.backtest()
    tiers = report.to_pandas()
    assert list(tiers["tier"]) == [t.tier for t in report.tiers]
    assert list(tiers["leads"]) == [t.leads for t in report.tiers]
    assert tiers["win_rate"].dtype == "float64" and tiers.attrs["auc"] == report.auc
    assert tiers.attrs["evaluated"] == report.evaluated


def test_explain_top_is_one_frame_of_the_best_leads(db):
    leads = db.leads.list(q="status:new", order_by="-score", limit=5).to_list()
    top = db.scoring.explain_top(5, q="status:new")
    assert list(top.columns) == [
        "lead_id", "score", "tier", "temperature", "group", "rule", "count", "points", "kind"
    ]
    assert list(dict.fromkeys(top["lead_id"])) == [r.id for r in leads]
    points = top.groupby("lead_id", sort=False)["points"].sum()
    for r in leads:
        why = db.scoring.explain(r)
        assert points[r.id] == why.score
        assert (top[top.lead_id == r.id]["rule"].dropna().tolist()) == [c.rule for c in why.contributions]
    frame = db.leads.list(q="status:new").to_pandas()
    joined = top.merge(frame[["id", "first_name"]], left_on="lead_id", right_on="id")
    assert len(joined) == len(top)
    assert db.scoring.explain_top(0).empty
    assert isinstance(db.scoring.explain_top(1), pd.DataFrame)
