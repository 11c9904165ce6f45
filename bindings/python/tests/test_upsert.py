"""Upserts from an external system: rows as a list or a DataFrame, the per-row report (and as a
DataFrame), the same rows twice writing nothing, the modes refused per row, all-or-nothing raising
with the report."""

import pandas as pd
import pytest

import crm


def _rows(prefix, n, title="Lead"):
    return [{"external_id": f"{prefix}{i}", "first_name": f"{title} {i}", "source": "referral"} for i in range(n)]


def test_rows_are_upserted_and_the_same_rows_again_write_nothing(own_demo):
    db = crm.open(own_demo[0])
    report = db.leads.upsert(_rows("W", 3), system="website")
    assert isinstance(report, crm.UpsertReport)
    assert (report.created, report.rejected, report.applied) == (3, 0, True)
    assert [r.outcome for r in report.results] == ["created"] * 3
    lead = db.leads.get(report.results[0].id)
    assert lead["first_name"] == "Lead 0"
    ids = [r.id for r in report.results]
    before = [(db.leads.get(i).version, len(db.audit("lead", i))) for i in ids]
    again = db.leads.upsert(_rows("W", 3), system="website")
    assert (again.unchanged, again.created, again.applied) == (3, 0, False)
    after = [(db.leads.get(i).version, len(db.audit("lead", i))) for i in ids]
    assert after == before, "no record write, no audit entry"
    # A DataFrame works as rows, and the report reads as one.
    frame = pd.DataFrame(_rows("W", 3, title="Renamed"))
    changed = db.leads.upsert(frame, system="website", mode="update_only")
    assert changed.updated == 3
    table = changed.to_pandas()
    assert list(table.columns) == ["row", "external_id", "outcome", "id", "errors"]
    assert list(table["outcome"]) == ["updated"] * 3


def test_modes_and_bad_rows_are_refused_per_row(own_demo):
    db = crm.open(own_demo[0])
    db.leads.upsert(_rows("M", 1), system="erp")
    report = db.leads.upsert(
        _rows("M", 2) + [{"external_id": 7, "first_name": "Seven"}, {"external_id": "M9", "first_name": "Nine", "tags": "a,b", "estimated_value": "a lot"}],
        system="erp",
        mode="create_only",
    )
    codes = {r.row: [(e.path, e.code) for e in r.errors] for r in report.results}
    assert codes[1] == [("external_id", "already_bound")]
    assert codes[2] == []
    assert codes[3] == [("external_id", "invalid_type")]
    assert sorted(codes[4]) == [("estimated_value", "invalid_money"), ("tags", "invalid_type")]
    update = db.leads.upsert([{"external_id": "M404", "first_name": "X"}], system="erp", mode="update_only")
    assert update.results[0].errors[0].code == "not_bound"
    with pytest.raises(ValueError):
        db.leads.upsert([], system="erp", mode="merge")
    with pytest.raises(crm.ValidationError):
        db.leads.upsert([], system="Not A System")


def test_all_or_nothing_raises_with_the_report_and_writes_nothing(own_demo):
    db = crm.open(own_demo[0])
    rows = _rows("A", 2) + [{"external_id": "A9", "first_name": ""}]
    with pytest.raises(crm.ImportRejectedError) as e:
        db.leads.upsert(rows, system="ads", all_or_nothing=True)
    assert e.value.report.rejected == 1 and not e.value.report.applied
    assert "all_or_nothing=False" in str(e.value)
    assert [f["code"] for f in e.value.details["errors"]] == ["required"]
    dry = db.leads.upsert(_rows("A", 2), system="ads", dry_run=True)
    assert dry.created == 2, "nothing was bound by the refused run"


def test_a_job_comes_with_its_steps_as_nested_dicts(own_demo):
    db = crm.open(own_demo[0])
    contact = db.contacts.create(first_name="Gil")
    jobs = db.entity("job")

    def journey(steps):
        return [{"external_id": "J-7", "kind": "journey", "title": "Gil to Ash Ct", "contact_id": contact.id, "job_steps": steps}]

    steps = [{"external_id": f"J-7-{i}", "name": name, "position": i} for i, name in enumerate(["Load", "Drive", "Unload"], 1)]
    report = jobs.upsert(journey(steps), system="scheduler")
    assert (report.created, report.rejected) == (1, 0)
    job_id = report.results[0].id
    assert [s["name"] for s in jobs.children(job_id, "job_steps")] == ["Load", "Drive", "Unload"]
    assert jobs.upsert(journey(steps), system="scheduler").unchanged == 1
    # The scheduler drops a step: the job is updated and the step deleted with it.
    report = jobs.upsert(journey([steps[0], steps[2]]), system="scheduler")
    assert report.updated == 1
    assert [s["name"] for s in jobs.children(job_id, "job_steps")] == ["Load", "Unload"]
    assert jobs.get(job_id)["step_count"] == 2
    # A bad step refuses the whole row, with the step's path.
    bad = jobs.upsert(journey([{"external_id": "J-7-1", "name": ""}]), system="scheduler")
    assert [(e.path, e.code) for e in bad.results[0].errors] == [("job_steps[0].name", "required")]
