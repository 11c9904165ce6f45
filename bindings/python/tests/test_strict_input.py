"""Input is typed strictly: a value of the wrong type, or text holding a control character, raises the
core's ValidationError naming the field and writes nothing. CSV cells are still read by type."""

import pytest

import crm


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("strict") / "strict.db")
    crm.load_demo(path, leads=10)
    return crm.open(path)


def field_codes(excinfo):
    assert excinfo.value.code == "validation"
    return {f.path: f.code for f in excinfo.value.fields}


def test_wrong_types_and_control_characters_raise_and_change_nothing(db):
    lead = db.leads.create(first_name="Ann", tags=["vip"])
    users = db.entity("user")
    user = next(u for u in users.list() if u.active)
    leads_before = len(db.leads.list().to_list())
    audit_before = (len(db.audit(record=lead)), len(db.audit(record=user)))

    cases = [
        (lambda: db.leads.create(first_name="Bo", tags="a,b"), {"tags": "invalid_type"}),
        (lambda: db.leads.create(first_name="Bo", owner_id="user-7"), {"owner_id": "invalid_format"}),
        (lambda: db.leads.create(first_name="B\x00o"), {"first_name": "control_character"}),
        (lambda: db.leads.update(lead, tags="a,b"), {"tags": "invalid_type"}),
        (lambda: db.leads.update(lead, owner_id="user-7"), {"owner_id": "invalid_format"}),
        (lambda: db.leads.update(lead, first_name="A\x00nn"), {"first_name": "control_character"}),
        (lambda: users.update(user, active="no"), {"active": "invalid_type"}),
        (
            lambda: db.leads.update(lead, tags="a,b", owner_id="user-7", first_name="A\x00nn", latitude="45.5"),
            {
                "tags": "invalid_type",
                "owner_id": "invalid_format",
                "first_name": "control_character",
                "latitude": "invalid_type",
            },
        ),
    ]
    for call, expected in cases:
        with pytest.raises(crm.ValidationError) as e:
            call()
        assert field_codes(e) == expected

    assert db.leads.get(lead.id) == lead
    assert users.get(user.id) == user and user.active is True
    assert len(db.leads.list().to_list()) == leads_before
    assert (len(db.audit(record=lead)), len(db.audit(record=user))) == audit_before

    # The same changes, typed, are accepted.
    assert db.leads.update(lead, tags=["a", "b"], first_name="Ann\tMarie").tags == ["a", "b"]
    assert users.update(user, active=False).active is False


def test_csv_cells_are_read_by_type(db, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text('first_name,tags,estimated_value,latitude\nAda,"Storm; vip","18,500",45.5\nB\x00b,vip,1,1\n')
    report = db.import_csv(str(path), "lead", mode="valid_rows_only")
    assert (report.created, report.invalid) == (1, 1)
    assert [(e.path, e.code) for e in report.errors[0].errors] == [("first_name", "control_character")]
    ada = db.leads.list(q="first_name:Ada").first()
    assert (ada.tags, str(ada.estimated_value), ada.latitude) == (["storm", "vip"], "18500.00", 45.5)
