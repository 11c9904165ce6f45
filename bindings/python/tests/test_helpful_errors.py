"""Errors that help (issue 20, item 4): every failing field at once, query errors at their place
(an index into ``q``) naming what is allowed, typed-filter typos named, float money read exactly,
pandas' missing values as "not set", files that must exist (``OSError``s), imports that refuse
loudly, and a column mapping that adds to the automatic one."""

import csv
import os
from decimal import Decimal

import pytest

import crm


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("errors") / "errors.db")
    return crm.open(path, create=True, organization="Errors Inc")


def paths(excinfo):
    return {f.path: f.code for f in excinfo.value.fields}


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def test_a_create_reports_every_failing_field_at_once(fresh):
    with pytest.raises(crm.ValidationError) as e:
        fresh.leads.create(first_name="Ann", email="nope", estimated_value="12.345", status="neww")
    assert paths(e) == {"email": "invalid_email", "estimated_value": "invalid_money", "status": "invalid_option"}
    status = next(f for f in e.value.fields if f.path == "status")
    assert "new" in status.message and "contacted" in status.message


def test_a_dry_run_row_lists_every_failing_field(fresh, tmp_path):
    path = write_csv(
        tmp_path / "rows.csv",
        [["first_name", "email", "estimated_value", "status"], ["Bob", "nope", "1.234", "neww"]],
    )
    report = fresh.import_csv(path)
    assert {f.path: f.code for f in report.errors[0].errors} == {
        "email": "invalid_email",
        "estimated_value": "invalid_money",
        "status": "invalid_option",
    }


def test_query_errors_are_at_their_place_in_q(fresh):
    q = '"été" score>=abc'
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(q=q).first()
    assert e.value.position == q.index("abc"), "a Python string index, not a byte offset"
    for q, at in [("score>=60 status:neww", "neww"), ("source:referral,pigeon", "pigeon"), ("bogus:1", "bogus")]:
        with pytest.raises(crm.InvalidQueryError) as e:
            fresh.leads.list(q=q).first()
        assert e.value.position == q.index(at), (q, e.value)
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.to_arrow(q="x status:neww")
    assert e.value.position == 9


def test_an_unknown_option_is_an_error_naming_the_options(fresh):
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(q="status:neww").first()
    assert "neww is not one of: new, contacted" in str(e.value)
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(filter={"cmp": {"field": "source", "op": "eq", "value": "pigeon"}}).first()
    assert "referral" in str(e.value)
    fresh.leads.create(first_name="Cat", status="contacted", source="referral")
    assert len(fresh.leads.list(q="status:Contacted source:Referral").to_list()) == 1


def test_a_typed_filter_typo_names_the_key_and_the_allowed_ones(fresh):
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(filter={"cmp": {"field": "score", "op": "gte", "value": 60}}).first()
    assert "filter.cmp.op: gte is not one of: eq, ne, lt, le, gt, ge" in str(e.value)
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(filter={"cmpp": {"field": "score", "op": "ge", "value": 60}}).first()
    assert "unknown key cmpp" in str(e.value) and "cmp, in, is_null" in str(e.value)
    with pytest.raises(crm.InvalidQueryError) as e:
        fresh.leads.list(filter={"and": [{"search": "x"}, {"cmp": {"feild": "score"}}]}).first()
    assert "filter.and[1].cmp: unknown key feild; expected field, op, value" in str(e.value)


def test_float_money_is_read_exactly(fresh):
    assert fresh.leads.create(first_name="Dee", estimated_value=1234.5).estimated_value == Decimal("1234.50")
    assert fresh.leads.create(first_name="Dee", estimated_value=0.07).estimated_value == Decimal("0.07")
    for amount in (1.005, 0.1 + 0.2):
        with pytest.raises(crm.ValidationError) as e:
            fresh.leads.create(first_name="Dee", estimated_value=amount)
        assert paths(e) == {"estimated_value": "invalid_money"}
        assert "2 decimals" in e.value.fields[0].message


def test_pandas_missing_values_are_not_set(fresh):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {"first_name": ["Eve", "Flo"], "company_name": [None, "Acme"], "estimated_value": [1200.5, None]}
    )
    rows = df.to_dict("records")
    # pandas marks the empty cells NaN (the text column's too, with its string dtype).
    assert not isinstance(rows[0]["company_name"], str) and rows[1]["estimated_value"] != rows[1]["estimated_value"]
    made = [fresh.leads.create(**row) for row in rows]
    assert made[0].company_name is None and made[0].estimated_value == Decimal("1200.50")
    assert made[1].estimated_value is None
    lead = fresh.leads.create(first_name="Gil", notes=float("nan"), company_name=pd.NA)
    assert lead.notes is None and lead.company_name is None
    with pytest.raises(ValueError):
        fresh.leads.create(first_name="Gil", estimated_value=float("inf"))


def test_open_needs_an_existing_database_unless_asked_to_create(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        crm.open(str(tmp_path / "does-not-exist.db"))
    assert e.value.filename == str(tmp_path / "does-not-exist.db")
    with pytest.raises(crm.ValidationError) as v:
        crm.open(str(tmp_path / "new.db"), create=True)
    assert paths(v) == {"organization": "required"}
    assert os.listdir(tmp_path) == [], "nothing is created"
    db = crm.open(str(tmp_path / "new.db"), create=True, organization="Acme Roofing")
    lead = db.leads.create(first_name="Ann")
    again = crm.open(str(tmp_path / "new.db"))
    assert again.tenant == db.tenant and again.leads.get(lead.id).first_name == "Ann"
    assert crm.open(str(tmp_path / "new.db"), create=True, organization="Other").tenant == db.tenant


def test_file_errors_are_os_errors(fresh, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        fresh.import_csv(str(tmp_path / "missing.csv"))
    assert not isinstance(e.value, ValueError) and e.value.filename == str(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError):
        fresh.export_csv(str(tmp_path / "no-such-dir" / "out.csv"))


def test_an_all_or_nothing_import_with_invalid_rows_raises(fresh, tmp_path):
    path = write_csv(
        tmp_path / "some-bad.csv",
        [["first_name", "email"], ["Hal", "hal@example.com"], ["Ida", "nope"]],
    )
    before = len(fresh.leads.list(order_by="id").to_list())
    with pytest.raises(crm.ImportRejectedError) as e:
        fresh.import_csv(path, dry_run=False)
    err = e.value
    assert isinstance(err, crm.ValidationError) and err.code == "validation"
    assert (err.report.invalid, err.report.applied) == (1, False)
    assert paths(e) == {"rows[2].email": "invalid_email"}
    assert "nothing was imported" in str(err)
    assert len(fresh.leads.list(order_by="id").to_list()) == before
    assert fresh.import_csv(path).invalid == 1, "a dry run reports, it does not raise"


def test_a_mapping_adds_to_the_automatic_one(fresh, tmp_path):
    path = write_csv(
        tmp_path / "mapped.csv",
        [["E-mail", "First Name", "Email", "Shoe Size"], ["jo@example.com", "Jo", "x@example.com", "9"]],
    )
    report = fresh.import_csv(path, mapping={"E-mail": "email", "Shoe Size": ""})
    assert report.columns == {"E-mail": "email", "First Name": "first_name"}
    assert report.ignored_columns == ["Email", "Shoe Size"]
    assert (report.valid, report.invalid) == (1, 0)
