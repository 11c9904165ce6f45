"""Back-tests on the demo data (the core computes AUC and lift; the binding only passes models)."""

import copy
import datetime as dt

import pytest

import crm


def test_backtest_default_model_on_demo_data(db):
    report = db.scoring.backtest()
    assert isinstance(report, crm.BacktestReport)
    assert report.evaluated == report.won + report.lost > 0
    assert report.won > 0 and report.lost > 0
    assert report.auc is not None and 0.0 <= report.auc <= 1.0
    assert [t.tier for t in report.tiers] == ["A", "B", "C"]
    assert sum(t.leads for t in report.tiers) == report.evaluated
    for t in report.tiers:
        assert t.won + t.lost == t.leads
        if t.leads:
            assert t.lift is not None and abs(t.lift - (t.won / t.leads) / (report.won / report.evaluated)) < 1e-9


def test_backtest_tweaked_model_and_since(db):
    base = db.scoring.default_model()
    tweaked = copy.deepcopy(base)
    tweaked["name"] = "no engagement"
    tweaked["groups"] = [g for g in tweaked["groups"] if g["kind"] != "engagement"]
    a = db.scoring.backtest(base)
    b = db.scoring.backtest(tweaked)
    assert b.model == "no engagement" and b.evaluated == a.evaluated
    future = db.scoring.backtest(base, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    assert future.evaluated == 0 and future.auc is None


def test_invalid_model_is_a_validation_error(db):
    bad = db.scoring.default_model()
    bad["tiers"] = []
    try:
        db.scoring.backtest(bad)
    except crm.ValidationError as e:
        assert e.fields
    else:
        raise AssertionError("an empty tier list must be refused")


def test_backtest_without_model_uses_the_published_one(tmp_path):
    path = str(tmp_path / "published.db")
    crm.load_demo(path, leads=120)
    db = crm.open(path)
    default = db.scoring.default_model()
    assert db.scoring.published_model() == default, "nothing published yet: the built-in model"
    assert db.scoring.backtest().model == default["name"]

    draft = copy.deepcopy(default)
    draft["name"] = "no engagement"
    draft["groups"] = [g for g in draft["groups"] if g["kind"] != "engagement"]
    record = db.entity("scoring_model").create(name="no engagement", definition=draft)
    assert db.scoring.backtest().model == default["name"], "a draft is not published"
    db.scoring.publish(record)
    assert db.scoring.published_model() == draft
    report = db.scoring.backtest()
    assert report.model == "no engagement"
    assert report == db.scoring.backtest(draft)


def test_published_model_needs_read_access(staff_db):
    with pytest.raises(crm.ForbiddenError):
        staff_db.scoring.published_model()
