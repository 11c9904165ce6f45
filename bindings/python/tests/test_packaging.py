"""The installed package is typed (PEP 561) and documented."""

import importlib.resources as res
import inspect

import crm


def test_ships_stubs_and_py_typed():
    files = {p.name for p in res.files("crm").iterdir()}
    assert {"py.typed", "_crm.pyi", "__init__.py", "errors.py"} <= files


def test_everything_public_has_a_docstring():
    for name in crm.__all__:
        obj = getattr(crm, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member):
                    assert inspect.getdoc(member), f"{name}.{attr}"


def test_installed_from_the_wheel():
    """In CI the suite runs against the wheel installed into a fresh venv, not the source tree."""
    import os

    import pytest

    if os.environ.get("CRM_EXPECT_INSTALLED") != "1":
        pytest.skip("set by .ci/python.sh")
    assert "site-packages" in crm.__file__
    assert crm._crm.__file__.endswith((".abi3.so", ".pyd"))
