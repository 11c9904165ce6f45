"""The esports centre's front desk from Python: members and check-ins as DataFrames, check-in by
card, the owner's numbers and the point-of-sale import. One esports demo database per module."""

import datetime as dt
import os
import pathlib
import shutil
import tempfile

import pytest

import crm

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "data" / "pos_clients.csv"
STATUSES = ["none", "upcoming", "active", "expiring", "expired", "frozen", "cancelled"]


@pytest.fixture(scope="module")
def centre():
    d = tempfile.mkdtemp(prefix="crm-py-esports-")
    path = os.path.join(d, "esports.db")
    info = crm.load_demo(path, vertical="esports", clients=60)
    emails = {}
    for role, _id, email in info["users"]:
        emails.setdefault(role, email)
    yield path, emails
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def owner(centre):
    return crm.open(centre[0])


@pytest.fixture(scope="module")
def desk(centre):
    return crm.open(centre[0], as_user=centre[1]["staff"])


def test_members_by_status_as_dataframes(owner):
    pd = pytest.importorskip("pandas")
    frame = owner.members().to_pandas()
    assert len(frame) == 60
    assert set(frame["membership"]) == set(STATUSES)
    expiring = owner.members("expiring").to_pandas()
    assert len(expiring) == (frame["membership"] == "expiring").sum() > 0
    assert set(expiring["membership"]) == {"expiring"}
    assert isinstance(frame, pd.DataFrame) and "external_id" in frame.columns


def test_memberships_and_check_ins_as_dataframes(owner):
    pytest.importorskip("pandas")
    memberships = owner.memberships.list(q="status:expiring").to_pandas()
    assert len(memberships) > 0 and set(memberships["status"]) == {"expiring"}
    visits = owner.check_ins.list().to_pandas()
    assert len(visits) > 500
    assert set(visits["outcome"]) <= {"allowed", "warned", "refused"}
    per_day = visits.groupby(visits["at"].dt.date).size()
    assert len(per_day) >= 80, "about 90 days of visits"
    assert set(owner.plans.list().to_pandas()["name"]) == {"Monthly", "Quarterly", "Yearly", "10 Visits"}


def test_check_in_by_card_at_the_desk(desk, owner):
    # Card 500001 is an active member; 500007 starts later (refused by the default policy).
    before = owner.check_ins.list(q="outcome:allowed").to_arrow().num_rows
    ok = desk.check_in("500001")
    assert (ok.outcome, ok.status, ok.allowed) == ("allowed", "active", True)
    assert isinstance(ok.ends_on, dt.date) and ok.check_in_id is not None
    assert owner.check_ins.get(ok.check_in_id).outcome == "allowed"
    assert owner.check_ins.list(q="outcome:allowed").to_arrow().num_rows == before + 1
    no = desk.check_in("500007")
    assert (no.outcome, no.status, no.allowed) == ("refused", "upcoming", False) and no.reason
    same = desk.check_in(contact=ok.contact_id)
    assert same.name == ok.name
    with pytest.raises(crm.NotFoundError):
        desk.check_in("no-such-card")
    with pytest.raises(crm.ValidationError):
        desk.check_in()


def test_membership_numbers(owner):
    pd = pytest.importorskip("pandas")
    n = owner.membership_numbers()
    assert n["active_members"] > 0 and n["expiring_30_days"] >= n["expiring_7_days"]
    months = pd.DataFrame(n["months"])
    assert list(months.columns) == ["month", "renewals", "churn"] and len(months) == 12
    assert len(n["check_ins_by_hour"]) == 7 and all(len(h) == 24 for h in n["check_ins_by_hour"])
    earlier = owner.membership_numbers(dt.date.today() - dt.timedelta(days=400))
    assert earlier["as_of"] != n["as_of"]


def test_import_members_dry_run_then_import(owner, desk):
    dry = owner.import_members(SAMPLE)
    assert (dry.rows, dry.valid, dry.applied) == (8, 8, False)
    assert dry.clients == {"created": 8, "updated": 0, "unchanged": 0}
    assert owner.contacts.list(q="external_id:100001").first() is None
    done = owner.import_members(SAMPLE, dry_run=False)
    assert done.applied and done.memberships["created"] == 7
    alex = owner.contacts.list(q="external_id:100001").first()
    assert (alex.first_name, alex.last_name) == ("Alex", "Kim")
    again = owner.import_members(SAMPLE, dry_run=False)
    assert again.clients["unchanged"] == 8 and not again.applied
    with pytest.raises(crm.ForbiddenError):
        desk.import_members(SAMPLE)


def test_the_front_desk_guide_runs(tmp_path, monkeypatch, capsys):
    """docs/front-desk.md's Python block runs as written (from a directory with the sample file), and
    every `print` with a trailing comment prints exactly what the comment says."""
    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "front-desk.md").read_text()
    section = doc.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    expected = [
        line.split("  # ", 1)[1].strip()
        for line in block.splitlines()
        if line.lstrip().startswith("print(") and "  # " in line
    ]
    assert len(expected) >= 5
    (tmp_path / "examples" / "data").mkdir(parents=True)
    shutil.copy(SAMPLE, tmp_path / "examples" / "data" / "pos_clients.csv")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/front-desk.md#from-python", "exec"), {"__name__": "docs_front_desk"})
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert printed == expected
