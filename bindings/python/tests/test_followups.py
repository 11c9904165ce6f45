"""Follow-ups and the routing back-test from Python: the views are filter terms, an activity sets its
lead's next follow-up, the demo has untouched hot leads, and the back-test is a DataFrame."""

import datetime as dt

import pandas as pd

import crm


def test_the_demo_has_follow_ups_due_and_hot_status_is_a_view(db):
    # The demo's unanswered storm-damage calls of the last days are hot leads nobody has touched.
    # Every listed lead evaluates as filtered.
    assert db.leads.list("hot_status:untouched", limit=50).to_list(), "the untouched view is empty"
    for status in ("not_hot", "touched", "waiting", "untouched"):
        assert all(r.hot_status == status for r in db.leads.list(f"hot_status:{status}", limit=50))
    for view in ("overdue", "due_today", "upcoming"):
        rows = db.leads.list(f"followup:{view}", limit=50).to_list()
        assert rows and all(r.followup == view for r in rows), view


def test_an_activity_sets_the_next_follow_up(tmp_path):
    path = str(tmp_path / "f.db")
    crm.load_demo(path, leads=40)
    db = crm.open(path)
    lead = db.leads.list("followup:none").first()
    assert lead is not None
    when = dt.datetime(2030, 1, 2, 9, 0, tzinfo=dt.timezone.utc)
    db.activities.log(lead, "call", direction="outbound", next_followup_at=when)
    again = db.leads.get(lead.id)
    assert again.next_followup_at == when
    assert again.followup == "upcoming"
    assert again.version == lead.version + 1
    assert lead.id in [r.id for r in db.leads.list("followup:upcoming")]


def test_routing_backtest_is_a_dataframe_of_past_leads(db):
    df = db.routing_backtest()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [
        "lead_id",
        "created_at",
        "actual_owner_id",
        "routed_owner_id",
        "routed_team_id",
        "rule",
        "strategy",
    ]
    assert len(df) == len(db.leads.list().to_list())
    assert df["created_at"].is_monotonic_increasing
    assert df["routed_owner_id"].notna().all(), "the demo's last rule takes every lead"
    load = df.groupby("routed_owner_id").size()
    assert load.sum() == len(df) and len(load) > 1
    referrals = db.routing_backtest("source:referral")
    assert set(referrals["rule"]) == {"Referrals to Sasha"}
