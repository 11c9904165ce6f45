"""The exception hierarchy carries the core's stable codes and field errors."""

import os
import subprocess
import sys
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
    for cls, code in [
        (crm.UnavailableError, "unavailable"),
        (crm.CorruptError, "corrupt"),
        (crm.DiskFullError, "disk_full"),
        (crm.InternalError, "internal"),
    ]:
        assert issubclass(cls, crm.StorageError) and cls.code == code


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


# Holds the write lock until stdin closes. Another process: POSIX locks do not conflict within one.
_HOLD_LOCK = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
con.execute("ROLLBACK")
"""


def test_a_locked_database_is_unavailable(tmp_path):
    path = str(tmp_path / "locked.db")
    crm.load_demo(path, leads=10)
    db = crm.open(path)
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(crm.UnavailableError) as e:
            db.leads.create(first_name="Ann")
    finally:
        other.communicate(timeout=30)
    err = e.value
    assert isinstance(err, crm.StorageError) and err.code == "unavailable"
    assert err.retry_after >= 1 and "sqlite" not in str(err) and "locked" not in str(err)
    assert db.leads.create(first_name="Ann").first_name == "Ann"


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(crm.CorruptError) as e:
        crm.open(str(path))
    assert isinstance(e.value, crm.StorageError) and e.value.code == "corrupt" and e.value.details == {}
