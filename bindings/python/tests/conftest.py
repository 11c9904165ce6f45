"""Shared fixtures: one demo database per test session (the demo roofing tenant, 600 leads)."""

import os
import shutil
import tempfile

import pytest

import crm


@pytest.fixture(scope="session")
def demo_path():
    d = tempfile.mkdtemp(prefix="crm-py-tests-")
    path = os.path.join(d, "demo.db")
    info = crm.load_demo(path, leads=600)
    assert info["users"], "a fresh file gets the demo tenant"
    yield path, info
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def own_demo():
    """A small demo database of the test module's own (for tests that change tenant settings or
    add data others would see): its path and the email of the first user of each role."""
    d = tempfile.mkdtemp(prefix="crm-py-own-")
    path = os.path.join(d, "demo.db")
    info = crm.load_demo(path, leads=20)
    emails = {}
    for role, _id, email in info["users"]:
        emails.setdefault(role, email)
    yield path, emails
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def users(demo_path):
    """Email of the first demo user of each role."""
    out = {}
    for role, _id, email in demo_path[1]["users"]:
        out.setdefault(role, email)
    return out


@pytest.fixture(scope="session")
def db(demo_path):
    """The demo database as the system (admin role)."""
    return crm.open(demo_path[0])


@pytest.fixture(scope="session")
def staff_db(demo_path, users):
    return crm.open(demo_path[0], as_user=users["staff"])


@pytest.fixture(scope="session")
def sales_db(demo_path, users):
    return crm.open(demo_path[0], as_user=users["sales"])
