"""Access control is the core's: the binding only surfaces it."""

import pytest

import crm


def test_staff_cannot_read_leads(staff_db):
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.leads.list().first()
    assert e.value.code == "forbidden" and e.value.entity == "lead"
    assert isinstance(e.value, PermissionError)


def test_staff_filtering_on_a_hidden_field_names_it(staff_db):
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.list(q="lifetime_value>0").first()
    assert e.value.fields == ["lifetime_value"]


def test_staff_writing_a_field_names_it(staff_db):
    contact = staff_db.contacts.list(limit=1).first()
    with pytest.raises(crm.ForbiddenError) as e:
        staff_db.contacts.update(contact, email="new@example.com")
    assert e.value.fields == ["email"] and e.value.action == "update"
    updated = staff_db.contacts.update(contact, notes="left a voicemail")
    assert updated.notes == "left a voicemail"


def test_hidden_fields_are_absent_from_records_and_frames(staff_db, db):
    contact = staff_db.contacts.list(limit=1).first()
    assert "lifetime_value" not in contact
    assert "lifetime_value" in db.contacts.get(contact.id)
    table = staff_db.contacts.list().to_arrow()
    assert "lifetime_value" not in table.column_names and "email" in table.column_names


def test_sales_sees_only_own_or_team_leads(sales_db, db):
    mine = sales_db.leads.list(page_size=500).to_list()
    everyone = sum(1 for _ in db.leads.list(page_size=500))
    assert 0 < len(mine) < everyone
    assert sales_db.leads.list().to_arrow().num_rows == len(mine)


def test_staff_cannot_backtest(staff_db):
    with pytest.raises(crm.ForbiddenError):
        staff_db.scoring.backtest()
