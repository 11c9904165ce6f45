"""The Pythonic API over the service: lists, records, writes, conversion, activities, audit, events,
import and export."""

import csv
import datetime as dt
import uuid
from decimal import Decimal

import pytest

import crm


def test_open_and_identity(db, demo_path, users):
    assert isinstance(db.tenant, str) and str(uuid.UUID(db.tenant)) == db.tenant
    assert db.tenant == demo_path[1]["tenant"]
    assert db.role == "admin" and db.user_id is None
    sales = crm.open(demo_path[0], as_user=users["sales"].upper())
    assert sales.role == "sales" and isinstance(sales.user_id, str)
    assert "role=sales" in repr(sales)


def test_open_unknown_user_is_not_found(demo_path):
    with pytest.raises(crm.NotFoundError):
        crm.open(demo_path[0], as_user="nobody@nowhere.example")


def test_postgres_url_goes_to_the_store_dispatch():
    # This wheel is built without PostgreSQL support: the store's own URL dispatch refuses it.
    with pytest.raises(crm.ValidationError) as e:
        crm.open("postgres://localhost/crm")
    assert e.value.fields[0].path == "database"
    assert "PostgreSQL" in e.value.fields[0].message


def test_list_is_lazy_paginated_and_limited(db):
    result = db.leads.list(q="score>=20", order_by="-score", limit=25, page_size=7)
    assert isinstance(result, crm.RecordList)
    pages = list(result.pages())
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    records = [r for p in pages for r in p]
    assert len({r.id for r in records}) == 25
    scores = [r.score for r in records]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 20
    # iterating again runs the query again with the same result
    assert list(result) == records


def test_list_without_limit_reaches_every_record(db):
    n = sum(1 for _ in db.leads.list(page_size=500))
    assert n == sum(s.count for s in db.pipeline())


def test_typed_filter_and_text_query_agree(db):
    by_text = [r.id for r in db.leads.list(q="status:won", order_by="id")]
    by_filter = [
        r.id
        for r in db.leads.list(filter={"cmp": {"field": "status", "op": "eq", "value": "won"}}, order_by="id")
    ]
    assert by_text == by_filter and by_text


def test_record_types(db):
    r = db.leads.list(q="estimated_value>0", limit=1).first()
    assert isinstance(r, crm.Record) and r.entity == "lead"
    # Ids are strings (hyphenated, lower case), the same values as the DataFrames' id columns.
    assert isinstance(r.id, str) and str(uuid.UUID(r.id)) == r.id
    assert isinstance(r.version, int)
    assert isinstance(r.created_at, dt.datetime) and r.created_at.tzinfo is not None
    assert isinstance(r.estimated_value, Decimal)
    assert isinstance(r.owner_id, str) and str(uuid.UUID(r.owner_id)) == r.owner_id
    assert isinstance(r.scored_at, dt.datetime)
    assert r["status"] == r.status == r.get("status")
    assert r.get("no_such_field", 42) == 42
    with pytest.raises(AttributeError):
        r.no_such_field
    with pytest.raises(AttributeError):
        r.status = "won"


def test_get_equals_list_and_repr(db):
    r = db.leads.list(limit=1).first()
    again = db.leads.get(r.id)
    assert again == r and hash(again) == hash(r)
    assert db.leads.get(uuid.UUID(r.id)) == r, "a uuid.UUID is taken as an id too"
    text = repr(r)
    assert text.startswith("Lead(\n    id=") and repr(r.id) in text
    assert r.to_dict()["id"] == r.id


def test_create_normalises_scores_and_round_trips_python_types(db):
    lead = db.leads.create(
        first_name="  Ann ",
        last_name="Lee",
        email="ANN.LEE@Example.COM",
        phone="(303) 555-0123",
        source="referral",
        estimated_value=Decimal("18500.50"),
        tags=["Storm", "vip"],
    )
    assert lead.first_name == "Ann"
    assert lead.email == "ann.lee@example.com"
    assert lead.phone == "+13035550123"
    assert lead.estimated_value == Decimal("18500.50")
    assert lead.status == "new" and lead.version == 1
    assert isinstance(lead.score, int) and lead.score > 0
    assert db.leads.get(lead) == lead


#: The lead fields an edit form shows and saves.
EDITABLE = ("first_name", "last_name", "company_name", "email", "phone", "city", "source", "status", "owner_id",
            "project_type", "priority", "estimated_value", "notes", "tags", "expected_close_date")


def test_a_record_read_and_written_back_unchanged_is_stored_unchanged(db):
    created = db.leads.create(
        first_name="Ann", last_name="O'Hara", email="Ann@Example.com", phone="(303) 555-0199",
        estimated_value="18500", project_type="roof_replacement", tags=["Storm", "vip"],
        expected_close_date=dt.date(2026, 3, 31), notes='Tear-off\nand "re-roof"',
    )
    read = db.leads.get(created.id)
    assert read.estimated_value == Decimal("18500.00")
    form = {f: v for f, v in read.fields.items() if f in EDITABLE}
    assert {"estimated_value", "tags", "expected_close_date", "notes"} <= form.keys()
    same = db.leads.update(read, form)
    assert same == read, "the answer is the record as it was (same version, same updated_at)"
    assert db.leads.get(read.id) == read, "stored unchanged"
    # Money as pandas hands it over (a float) is the same amount in the same unit.
    assert db.leads.update(read, form, estimated_value=float(read.estimated_value)) == read
    edited = db.leads.update(read, dict(form, notes="ladder needed"))
    assert (edited.version, edited.notes, edited.estimated_value) == (read.version + 1, "ladder needed", Decimal("18500.00"))
    assert {f: edited.get(f) for f in form if f != "notes"} == {f: v for f, v in form.items() if f != "notes"}


def test_update_delete_and_conflict(db):
    lead = db.leads.create({"first_name": "Bo", "source": "website"})
    updated = db.leads.update(lead, priority="urgent", notes="call back")
    assert updated.version == lead.version + 1 and updated.priority == "urgent"
    with pytest.raises(crm.ConflictError) as e:
        db.leads.update(lead, notes="stale")  # lead holds version 1
    assert e.value.code == "conflict" and e.value.expected == 1 and e.value.actual == 2
    db.leads.delete(updated)
    with pytest.raises(crm.NotFoundError):
        db.leads.get(updated.id)


def test_convert_lead(db):
    lead = db.leads.create(first_name="Cy", last_name="Doe", company_name="Doe Builders", source="partner")
    with pytest.raises(TypeError):
        db.leads.convert(lead.id)  # no version: it would write blindly
    stale = db.leads.update(lead, notes="changed meanwhile")
    with pytest.raises(crm.ConflictError):
        db.leads.convert(lead)
    conv = db.leads.convert(lead.id, version=stale.version, create_company=True)
    assert isinstance(conv, crm.Conversion)
    assert conv.lead.status == "won"
    assert conv.contact.entity == "contact" and conv.contact.first_name == "Cy"
    assert conv.company is not None and conv.company.name == "Doe Builders"


def test_log_activity_rescores_lead(db):
    lead = db.leads.create(first_name="Di", source="door_knock")
    before = db.scoring.explain(lead).score
    act = db.activities.log(lead, kind="meeting", subject="roof walk")
    assert act.entity == "activity" and act.lead_id == lead.id
    assert act.occurred_at is not None, "the core defaults it to now"
    with pytest.raises(crm.ValidationError) as e:
        db.activities.log(lead, subject="what happened?")
    assert [f.path for f in e.value.fields] == ["kind"], "no kind is invented"
    after = db.leads.get(lead.id)
    assert after.score > before
    assert db.scoring.explain(lead).score == after.score


def test_explain_adds_up(db):
    lead = db.leads.list(q="score>=30", limit=1).first()
    e = db.scoring.explain(lead)
    assert isinstance(e, crm.Explanation)
    assert e.score == lead.score
    assert sum(c.points for c in e.contributions) == e.score
    assert all(isinstance(c.points, int) for c in e.contributions)
    draft = db.scoring.default_model()
    draft["groups"][0]["cap"] = 0
    assert db.scoring.explain(lead, draft).score <= e.score


def test_pipeline_summary(db):
    stages = db.pipeline()
    assert [s.key for s in stages][:2] == ["new", "contacted"]
    assert any(s.kind == "won" for s in stages)
    assert all(isinstance(s.value, Decimal) for s in stages)


def test_audit_and_events(db):
    lead = db.leads.create(first_name="Ed", source="website")
    trail = db.audit(record=lead)
    assert [e.action for e in trail] == ["create"]
    assert trail[0].entity_id == lead.id and isinstance(trail[0].at, dt.datetime)
    assert any(c.field == "first_name" and c.new == "Ed" for c in trail[0].changes)
    last = db.events(0, limit=1)[0].seq
    evs = []
    after = last
    while True:
        page = db.events(after, limit=500)
        if not page:
            break
        evs += page
        after = page[-1].seq
    assert any(e.kind == "lead.created" and e.entity_id == lead.id for e in evs)
    seqs = [e.seq for e in evs]
    assert seqs == sorted(seqs)


def test_import_dry_run_reports_rows_and_fields(db, tmp_path):
    path = tmp_path / "leads.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["First Name", "Email", "Source", "Estimated Value", "Shoe Size"])
        w.writerow(["Fay", "fay@example.com", "referral", "1200", "9"])
        w.writerow(["Gus", "not-an-email", "referral", "12.345", "10"])
        w.writerow(["Hal", "hal@example.com", "nonsense_source", "", "11"])
    before = sum(1 for _ in db.leads.list(page_size=500))
    report = db.import_csv(str(path))
    assert isinstance(report, crm.ImportReport)
    assert (report.rows, report.valid, report.invalid, report.applied) == (3, 1, 2, False)
    assert report.ignored_columns == ["Shoe Size"]
    bad = {e.row: {fe.path: fe.code for fe in e.errors} for e in report.errors}
    assert bad[2]["email"] == "invalid_email" and bad[2]["estimated_value"] == "invalid_money"
    assert bad[3]["source"] == "invalid_option"
    assert sum(1 for _ in db.leads.list(page_size=500)) == before
    partial = db.import_csv(str(path), dry_run=False, mode="valid_rows_only")
    assert partial.applied and partial.created == 1


def test_export_csv(db, tmp_path):
    out = tmp_path / "hot.csv"
    n = db.export_csv(str(out), q="score>=40", fields=["first_name", "score"], order_by="-score")
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["first_name", "score"]
    assert len(rows) - 1 == n == sum(1 for _ in db.leads.list(q="score>=40", page_size=500))


def test_integrity_check(db):
    report = db.integrity_check()
    assert report["audit_broken_at"] is None and report["audit_entries"] > 0


def test_other_entities(db):
    users = db.users.list().to_list()
    assert {u.role for u in users} >= {"admin", "sales", "staff"}
    assert {l.city for l in db.entity("location").list()} == {"Denver", "Boulder"}
