"""Runs the generated uniffi Python bindings (generated/python) against a real SQLite file.

Every call that touches the database is a coroutine (the library runs it on a worker thread):
each test is an ``async def`` run by ``asyncio.run`` (``run_async``), so plain pytest runs them.

Run with `bindings/mobile/generate.sh && python3 -m pytest bindings/mobile/tests/python`.
Set CRM_MOBILE_GENERATED to use another directory of generated Python bindings.
"""

import asyncio
import datetime as dt
import functools
import json
import os
import pathlib
import sys

import pytest

GENERATED = pathlib.Path(
    os.environ.get("CRM_MOBILE_GENERATED", pathlib.Path(__file__).resolve().parents[4] / "generated" / "python")
)
sys.path.insert(0, str(GENERATED))

import crm_mobile as crm  # noqa: E402


def run_async(test):
    """Runs an ``async def`` test in a fresh event loop (no pytest plugin needed); fixtures pass through."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("crm") / "crm.db")
    tenant = asyncio.run(crm.load_demo(path, 20, 40, 1))
    emails = {}
    for u in tenant.users:
        emails.setdefault(u.role, u.email)
    return path, emails


@run_async
async def test_open_as_field_tech(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    assert (await tech.role()) == "field_tech"
    assert len(tech.user_id()) == 36


@run_async
async def test_open_unknown_user_is_not_found(demo):
    path, _ = demo
    with pytest.raises(crm.CrmError.NotFound) as e:
        await crm.Crm.open(path, "nobody@example.invalid")
    assert e.value.code == "not_found"


@run_async
async def test_field_tech_lists_only_assigned_leads(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    mine = await tech.my_leads(crm.ListQuery())
    everything = await tech.list_leads(crm.ListQuery(limit=500))
    assert mine.items, "the demo assigns leads to field techs"
    assert {l.id for l in everything.items} == {l.id for l in mine.items}
    assert all(l.owner_id == tech.user_id() for l in everything.items)
    # an admin sees more than the field tech
    admin = await crm.Crm.open(path, emails["admin"])
    assert len((await admin.list_leads(crm.ListQuery(limit=500))).items) > len(everything.items)


@run_async
async def test_filter_language_and_score_explanation(demo):
    path, emails = demo
    admin = await crm.Crm.open(path, emails["admin"])
    page = await admin.list_leads(crm.ListQuery(q="score>=0", sort="-score", limit=5))
    assert page.items and all(l.score is not None for l in page.items)
    scores = [l.score for l in page.items]
    assert scores == sorted(scores, reverse=True)
    why = await admin.explain_score(page.items[0].id)
    assert why.score == page.items[0].score
    assert sum(line.points for line in why.lines) == why.score
    assert all(isinstance(line.points, int) for line in why.lines)
    assert why.temperature == page.items[0].temperature and isinstance(why.temperature, crm.Temperature)
    with pytest.raises(crm.CrmError.InvalidQuery) as e:
        await admin.list_leads(crm.ListQuery(q="score>>"))
    assert e.value.code == "invalid_query"


@run_async
async def test_log_activity_and_check_in(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    lead = (await tech.my_leads(crm.ListQuery(limit=1))).items[0]
    act = (await tech.log_activity(crm.ActivityInput(kind=crm.ActivityKind.VISIT, lead_id=lead.id, subject="Roof inspection",
                                              direction=crm.Direction.OUTBOUND, duration_minutes=30)))
    assert act.kind == crm.ActivityKind.VISIT and act.lead_id == lead.id and act.owner_id == tech.user_id()
    check = await tech.check_in(lead.id, "arrived on site")
    assert check.kind == crm.ActivityKind.CHECK_IN and check.body == "arrived on site"
    feed = await tech.changes_since(0, 1000)
    assert any(e.kind == "activity.created" and e.entity_id == check.id for e in feed)
    trail = await tech.audit_trail(crm.AuditQuery(entity="lead", entity_id=lead.id))
    assert trail and trail[0].action == "create"


@run_async
async def test_my_followups_today_offline(demo):
    path, emails = demo
    sales = await crm.Crm.open(path, emails["sales"])
    me = sales.user_id()
    lead = await sales.create("lead", json.dumps({"first_name": "Due", "owner_id": me}))
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (await sales.log_activity(crm.ActivityInput(kind=crm.ActivityKind.CALL, lead_id=lead.id, direction=crm.Direction.OUTBOUND,
                                         extra_json=json.dumps({"next_followup_at": when}))))
    mine = await sales.my_followups(None)
    assert lead.id in [f.id for f in mine]
    assert all(f.status in ("overdue", "due_today") for f in mine)
    assert [f.next_followup_at for f in mine] == sorted(f.next_followup_at for f in mine)
    for f in mine:
        rec = json.loads(f.record.json)
        assert (rec.get("followup_owner_id") or rec.get("owner_id")) == me, f
        assert f.entity in ("lead", "contact") and f.record.id == f.id
    assert len((await sales.my_followups(1))) == 1
    # Someone else owes none of them.
    tech = await crm.Crm.open(path, emails["field_tech"])
    assert lead.id not in [f.id for f in (await tech.my_followups(None))]


@run_async
async def test_invalid_activity_is_a_validation_error_with_fields(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    lead = (await tech.my_leads(crm.ListQuery(limit=1))).items[0]
    with pytest.raises(crm.CrmError.Validation) as e:
        await tech.log_activity(crm.ActivityInput(kind=crm.ActivityKind.CALL, lead_id=lead.id, occurred_at="2999-01-01T00:00:00Z"))
    assert e.value.code == "validation"
    assert [(f.path, f.code) for f in e.value.fields] == [("occurred_at", "in_future")]


@run_async
async def test_staff_forbidden_write_names_the_field(demo):
    path, emails = demo
    staff = await crm.Crm.open(path, emails["staff"])
    contact = (await staff.list("contact", crm.ListQuery(limit=1))).items[0]
    with pytest.raises(crm.CrmError.Forbidden) as e:
        await staff.update("contact", contact.id, contact.version, json.dumps({"email": "new@mail.example"}))
    assert e.value.code == "forbidden"
    assert e.value.fields == ["email"]
    # notes are allowed
    updated = await staff.update("contact", contact.id, contact.version, json.dumps({"notes": "called back"}))
    assert updated.version == contact.version + 1
    assert json.loads(updated.json)["notes"] == "called back"


STAFF_REFUSED = {
    "first_name": "Mallory",
    "last_name": "Changed",
    "email": "new@mail.example",
    "phone": "+13035550199",
    "external_id": "CARD-1",
    "segment": "gold",
    "tags": ["vip"],
}


@pytest.mark.parametrize("field", sorted(STAFF_REFUSED))
@run_async
async def test_staff_may_change_only_a_clients_notes(demo, field):
    path, emails = demo
    admin = await crm.Crm.open(path, emails["admin"])
    staff = await crm.Crm.open(path, emails["staff"])
    client = await admin.create("contact", json.dumps({"first_name": "Front", "last_name": "Desk"}))
    with pytest.raises(crm.CrmError.Forbidden) as e:
        await staff.update("contact", client.id, client.version, json.dumps({field: STAFF_REFUSED[field], "notes": "no"}))
    assert (e.value.code, e.value.action, e.value.entity, e.value.fields) == ("forbidden", "update", "contact", [field])
    assert (await admin.get("contact", client.id)).version == client.version
    with pytest.raises(crm.CrmError.Forbidden) as e:
        await staff.create("contact", json.dumps({"first_name": "Walk"}))
    assert e.value.action == "create"
    ok = await staff.update("contact", client.id, client.version, json.dumps({"notes": "asked about the yearly plan"}))
    assert json.loads((await admin.get("contact", client.id)).json)["notes"] == "asked about the yearly plan"
    assert ok.version == client.version + 1


@run_async
async def test_stale_version_is_a_conflict(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    lead = (await tech.my_leads(crm.ListQuery(limit=1))).items[0]
    v = lead.version
    fresh = await tech.update_lead(lead.id, v, json.dumps({"notes": "ladder needed"}))
    assert fresh.version == v + 1 and fresh.notes == "ladder needed"
    with pytest.raises(crm.CrmError.Conflict) as e:
        await tech.update_lead(lead.id, v, json.dumps({"notes": "stale"}))
    assert (e.value.code, e.value.expected, e.value.actual) == ("conflict", v, v + 1)


@run_async
async def test_offline_changes_are_pending_until_marked_synced(demo):
    path, emails = demo
    tech = await crm.Crm.open(path, emails["field_tech"])
    earlier = (await tech.pending_changes(1000))  # other tests in this module wrote too: acknowledge them
    if earlier:
        assert (await tech.mark_synced(earlier[-1].seq)) == len(earlier)
    assert (await tech.pending_changes(1000)) == []
    lead = (await tech.my_leads(crm.ListQuery(limit=1))).items[0]
    act = (await tech.log_activity(crm.ActivityInput(kind=crm.ActivityKind.CALL, lead_id=lead.id,
                                              subject="Quote follow-up", direction=crm.Direction.OUTBOUND)))
    pending = await tech.pending_changes(1000)
    assert len(pending) == 1
    entry = pending[0]
    assert entry.actor == tech.user_id() and len(entry.change_set_id) == 36
    [write] = entry.writes  # the lead's re-score is derived: not logged
    assert (write.entity, write.id, write.op, write.expected_version) == ("activity", act.id, crm.SyncOp.INSERT, 0)
    patch = json.loads(write.patch_json)
    assert (patch["kind"], patch["subject"], patch["lead_id"]) == ("call", "Quote follow-up", lead.id)
    assert entry.audit_ids and entry.event_ids
    assert (await tech.mark_synced(entry.seq)) == 1
    assert (await tech.pending_changes(1000)) == []
    assert (await tech.mark_synced(entry.seq)) == 0


@run_async
async def test_an_estimator_builds_and_submits_a_quote_offline(demo):
    path, emails = demo
    est = await crm.Crm.open(path, emails["sales"])
    earlier = (await est.pending_changes(1000))  # other tests in this module wrote too: acknowledge them
    if earlier:
        await est.mark_synced(earlier[-1].seq)
    contact = await est.create("contact", json.dumps({"first_name": "Carla"}))
    quote = (await est.create("quote", json.dumps({
        "contact_id": contact.id, "valid_until": "2099-12-31",
        "quote_lines": [{"description": "Truck and crew", "quantity": "6.5", "unit_price": "145.00", "tax_rate": "8.875"},
                        {"description": "Packing boxes", "quantity": "40", "unit_price": "2.49", "discount_percent": "10"}],
    })))
    q = json.loads(quote.json)
    assert (q["status"], q["total"], q["line_count"]) == ("draft", "1115.79", 2)
    [lines] = await est.children("quote", quote.id)
    assert (lines.table, lines.entity) == ("quote_lines", "quote_line")
    assert [json.loads(r.json)["amount"] for r in lines.items] == ["942.50", "89.64"]
    with pytest.raises(crm.CrmError.Validation) as e:
        await est.transition("quote", quote.id, quote.version, "send", None)
    assert [f.code for f in e.value.fields] == ["invalid_transition"]
    submitted = await est.transition("quote", quote.id, quote.version, "submit", None)
    assert json.loads(submitted.json)["status"] == "approved"
    pending = await est.pending_changes(1000)
    assert [[(w.entity, w.op) for w in p.writes] for p in pending] == [
        [("contact", crm.SyncOp.INSERT)],
        [("quote", crm.SyncOp.INSERT), ("quote_line", crm.SyncOp.INSERT), ("quote_line", crm.SyncOp.INSERT)],
        [("quote", crm.SyncOp.UPDATE)],
    ]
    assert json.loads(pending[2].writes[0].patch_json)["status"] == "approved"


@run_async
async def test_a_file_that_is_not_a_database_is_a_corrupt_storage_error(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database" * 500)
    with pytest.raises(crm.CrmError.Storage) as e:
        await crm.Crm.open(str(path), "a@b.example")
    assert e.value.code == "corrupt"


@run_async
async def test_front_desk_checks_in_offline(tmp_path):
    path = str(tmp_path / "desk.db")
    centre = await crm.load_esports_demo(path, 30)
    staff = await crm.Crm.open(path, next(u.email for u in centre.users if u.role == "staff"))
    assert (await staff.pending_changes(1000)) == []
    ok = await staff.check_in_client("500001", None, None)
    assert (ok.outcome, ok.status) == ("allowed", "active") and ok.check_in_id
    [entry] = await staff.pending_changes(1000)
    assert any(w.entity == "check_in" and w.id == ok.check_in_id for w in entry.writes)
    no = await staff.check_in_client("500007", None, None)
    assert (no.outcome, no.status) == ("refused", "upcoming")
    with pytest.raises(crm.CrmError.NotFound):
        await staff.check_in_client("no-such-card", None, None)
    n = await staff.membership_numbers(None)
    assert n.active_members > 0 and len(n.check_ins_by_hour) == 7
    with pytest.raises(crm.CrmError.Validation):
        await staff.membership_numbers("March")


def _lead_patch(lead, **changes):
    """Every writable typed field of a lead, as read, as a patch: what an edit screen saves."""
    fields = ("first_name", "last_name", "company_name", "email", "phone", "city", "source", "status",
              "owner_id", "project_type", "priority", "estimated_value", "notes")
    patch = {f: getattr(lead, f) for f in fields}
    patch.update(changes)
    return json.dumps(patch)


@run_async
async def test_a_lead_read_and_written_back_unchanged_is_stored_unchanged(demo):
    path, emails = demo
    admin = await crm.Crm.open(path, emails["admin"])
    lead_id = (await admin.list_leads(crm.ListQuery(limit=1))).items[0].id
    start = await admin.get_lead(lead_id)
    await admin.update_lead(lead_id, start.version, json.dumps({"estimated_value": "18500.00", "notes": "Tear-off\nand \"re-roof\""}))
    read = await admin.get_lead(lead_id)
    assert read.estimated_value == "18500.00"
    pending = await admin.pending_changes(1000)
    if pending:
        await admin.mark_synced(pending[-1].seq)
    same = await admin.update_lead(lead_id, read.version, _lead_patch(read))
    assert same == read
    assert (await admin.get_lead(lead_id)) == read
    assert (await admin.pending_changes(1000)) == []
    edited = await admin.update_lead(lead_id, read.version, _lead_patch(read, notes="ladder needed"))
    assert (edited.version, edited.notes, edited.estimated_value) == (read.version + 1, "ladder needed", "18500.00")
    [write] = [w for w in (await admin.pending_changes(1000))[0].writes if w.entity == "lead"]
    assert json.loads(write.patch_json) == {"notes": "ladder needed"}


@run_async
async def test_field_errors_say_message(demo):
    path, emails = demo
    admin = await crm.Crm.open(path, emails["admin"])
    lead = (await admin.list_leads(crm.ListQuery(limit=1))).items[0]
    with pytest.raises(crm.CrmError.Validation) as e:
        await admin.update_lead(lead.id, lead.version, json.dumps({"estimated_value": "12.345", "email": "nope"}))
    assert sorted(f.path for f in e.value.fields) == ["email", "estimated_value"]
    assert all(f.message for f in e.value.fields)


@run_async
async def test_a_call_does_not_block_the_event_loop(tmp_path):
    # The library runs the call on a worker thread: the loop keeps turning while a demo loads. Were
    # the work done inside the poll, the loop could not turn until it ended (a handful of turns).
    load = asyncio.ensure_future(crm.load_demo(str(tmp_path / "busy.db"), 10, 40, 1))
    turns = 0
    while not load.done():
        turns += 1
        await asyncio.sleep(0)
    assert (await load).users
    assert turns > 10, turns
