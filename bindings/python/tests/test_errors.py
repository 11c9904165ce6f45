"""The exception hierarchy carries the core's stable codes and field errors."""

import uuid

import pytest

import crm


def test_hierarchy():
    for cls, code in [
        (crm.ValidationError, "validation"),
        (crm.NotFoundError, "not_found"),
        (crm.ForbiddenError, "forbidden"),
        (crm.ConflictError, "conflict"),
        (crm.LimitExceededError, "limit_exceeded"),
        (crm.InvalidQueryError, "invalid_query"),
        (crm.StorageError, "storage"),
    ]:
        assert issubclass(cls, crm.CrmError) and cls.code == code


def test_validation_error_lists_every_field(db):
    with pytest.raises(crm.ValidationError) as e:
        db.leads.create(email="nope", source="bogus", estimated_value="1.234", score=99)
    err = e.value
    assert err.code == "validation" and isinstance(err, ValueError)
    codes = {f.path: f.code for f in err.fields}
    assert codes["email"] == "invalid_email"
    assert codes["source"] == "invalid_option"
    assert codes["estimated_value"] == "invalid_money"
    assert codes["score"] == "read_only"
    assert all(isinstance(f, crm.FieldError) and f.message for f in err.fields)


def test_not_found(db):
    with pytest.raises(crm.NotFoundError) as e:
        db.leads.get(uuid.uuid4())
    assert e.value.code == "not_found" and e.value.entity == "lead"
    assert isinstance(e.value, LookupError)


def test_unknown_entity_is_not_found(db):
    with pytest.raises(crm.NotFoundError):
        db.entity("spaceship").list().first()


def test_invalid_query_has_position(db):
    with pytest.raises(crm.InvalidQueryError) as e:
        db.leads.list(q="score>=abc").first()
    assert e.value.code == "invalid_query" and e.value.position >= 0


def test_bad_ids_and_types_are_python_errors(db):
    with pytest.raises(ValueError):
        db.leads.get("not-a-uuid")
    with pytest.raises(TypeError):
        db.leads.create(first_name=object())
