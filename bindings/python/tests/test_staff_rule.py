"""The front desk's rule through Python: a staff user may change a client's notes and nothing else.
Every other field is forbidden by name, and a refused write changes nothing (same version, same notes).
The rule is the core's (crm_core::access::builtin::staff); this proves it reaches Python intact."""

import pytest

import crm

# One value per writable-by-admin contact field the staff role may not write.
OTHER_FIELDS = [
    ("first_name", "Mallory"),
    ("last_name", "Changed"),
    ("email", "new@example.com"),
    ("phone", "+13035550199"),
    ("external_id", "CARD-STAFF-1"),
    ("segment", "gold"),
    ("tags", ["vip"]),
]


@pytest.fixture()
def client(db):
    """A fresh client (created by the admin) for each test, so versions start known."""
    return db.contacts.create(first_name="Front", last_name="Desk", email="front.desk@example.com")


@pytest.mark.parametrize("field,value", OTHER_FIELDS, ids=[f for f, _ in OTHER_FIELDS])
def test_staff_writing_any_other_field_is_forbidden_by_name(staff_db, db, client, field, value):
    mine = staff_db.contacts.get(client.id)
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.update(mine, {field: value, "notes": "must not land"})
    assert (e.value.code, e.value.action, e.value.entity) == ("forbidden", "update", "contact")
    assert e.value.fields == [field]
    after = db.contacts.get(client.id)
    assert after.version == client.version and after.get("notes") is None
    assert after.get(field) == client.get(field)


def test_staff_forbidden_names_every_refused_field(staff_db, client):
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.update(client, email="x@example.com", phone="+13035550100", notes="hi")
    assert sorted(e.value.fields) == ["email", "phone"]


def test_staff_may_write_notes(staff_db, db, client):
    updated = staff_db.contacts.update(client, notes="checked in, asked about the yearly plan")
    assert updated.notes == "checked in, asked about the yearly plan"
    assert updated.version == client.version + 1
    assert db.contacts.get(client.id).notes == updated.notes
    # The stale version the staff user read before is now a conflict, as everywhere.
    with pytest.raises(crm.ConflictError):
        staff_db.contacts.update(client, notes="again")


def test_staff_may_neither_create_nor_delete_clients(staff_db, db, client):
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.create(first_name="Walk", last_name="In")
    assert e.value.action == "create"
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.delete(client)
    assert e.value.action == "delete"
    assert db.contacts.get(client.id).version == client.version
