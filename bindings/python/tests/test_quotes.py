"""Quotes from Python: created with their lines, lines as a nested list and as a DataFrame, the
workflow's transitions as methods (refusals as the package's exceptions with the guard's code), and
the shared totals fixture set (crm-core/testdata/quote_totals.json) through the service."""

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest

import crm

FIXTURES = Path(__file__).resolve().parents[3] / "crm-core" / "testdata" / "quote_totals.json"
VALID = datetime.date.today() + datetime.timedelta(days=30)


@pytest.fixture(scope="module")
def quote_db(own_demo):
    """A demo tenant of its own (the tests change the organization's quote settings)."""
    return own_demo


def set_org(db, **fields):
    orgs = db.entity("organization")
    orgs.update(orgs.get(db.tenant), **fields)


def customer(db):
    return db.contacts.create(first_name="Carla", last_name="Client")


def writes(db):
    """Everything the system can see was written: event count, audit count."""
    return len(db.events(0, limit=100_000)), len(db.audit(after=0, limit=100_000))


def test_the_fixture_set_gives_identical_totals(quote_db):
    path, emails = quote_db
    admin, sales = crm.open(path), crm.open(path, as_user=emails["sales"])
    c = customer(sales)
    fixtures = json.loads(FIXTURES.read_text())
    assert len(fixtures) >= 8
    for fx in fixtures:
        name, p = fx["name"], fx["policy"]
        set_org(
            admin,
            quote_rounding=p["rounding"],
            quote_rounding_mode=p["mode"],
            prices_include_tax=p["prices_include_tax"],
        )
        extra = {}
        d = fx.get("discount")
        if isinstance(d, dict) and "percent" in d:
            extra["discount_percent"] = d["percent"]
        elif isinstance(d, dict):
            extra["discount_amount"] = d["amount"]
        lines = [dict(line, description=f"Line {i}") for i, line in enumerate(fx["lines"])]
        created = sales.quotes.create(contact_id=c, valid_until=VALID, quote_lines=lines, **extra)
        q = sales.quotes.get(created.id)
        assert q == created, f"{name}: read back as created"
        e = fx["expected"]
        for f in ("subtotal", "discount_total", "tax_total", "total"):
            assert isinstance(q[f], Decimal)
            assert str(q[f]) == e[f], f"{name}: {f}"
        norm = lambda taxes: [(Decimal(t["rate"]).normalize(), t["base"], t["tax"]) for t in taxes]
        assert norm(q.taxes) == norm(e["taxes"]), f"{name}: taxes"
        assert len(q.quote_lines) == len(e["lines"]), name
        for i, (line, want) in enumerate(zip(q.quote_lines, e["lines"])):
            assert line.position == i + 1, f"{name}: order kept"
            for f in ("amount", "discount_share", "tax", "total"):
                assert str(line[f]) == want[f], f"{name}: line {i} {f}"
        # The same numbers in the DataFrame of the lines.
        df = q.quote_lines.to_pandas(money="decimal")
        for f in ("amount", "discount_share", "tax", "total"):
            assert [str(v) for v in df[f]] == [w[f] for w in e["lines"]], f"{name}: frame {f}"


def test_lines_nested_and_as_a_dataframe(quote_db):
    pa = pytest.importorskip("pyarrow")
    path, emails = quote_db
    sales = crm.open(path, as_user=emails["sales"])
    set_org(crm.open(path), quote_rounding="per_line", quote_rounding_mode="half_up", prices_include_tax=False)
    q = sales.quotes.create(
        contact_id=customer(sales),
        valid_until=VALID,
        title="Two-bedroom move",
        quote_lines=[
            {"description": "Truck and crew", "quantity": Decimal("6.5"), "unit": "h", "unit_price": "145.00",
             "tax_rate": "8.875"},
            {"description": "Packing boxes", "quantity": 40, "unit_price": "2.49", "discount_percent": "10"},
        ],
    )
    assert q.status == "draft" and q.state == "draft" and q.line_count == 2
    assert isinstance(q.quote_lines, list) and all(isinstance(l, crm.Record) for l in q.quote_lines)
    assert [l.description for l in q.quote_lines] == ["Truck and crew", "Packing boxes"]
    assert q.quote_lines[0].quantity == Decimal("6.5")
    assert sales.quotes.lines(q) == q.quote_lines

    table = q.quote_lines.to_arrow()
    assert table.num_rows == 2
    assert table.schema.field("quantity").type == pa.decimal128(18, 6)
    assert table.schema.field("unit_price").type == pa.decimal128(18, 2)
    df = q.quote_lines.to_pandas(money="decimal")
    assert list(df["description"]) == ["Truck and crew", "Packing boxes"]
    assert all(isinstance(v, Decimal) for v in df["quantity"]), "decimals, not strings or floats"
    assert list(df["quantity"]) == [Decimal("6.5"), Decimal("40")]
    assert sum(df["total"]) == q.total, "the lines add up to the total"
    pl = pytest.importorskip("polars")
    assert q.quote_lines.to_polars(money="decimal")["quantity"].dtype == pl.Decimal(18, 6)
    # By default, frames give money and decimals as floats (numeric in describe()).
    floats = q.quote_lines.to_pandas()
    assert floats["quantity"].dtype == "float64" and list(floats["quantity"]) == [6.5, 40.0]
    assert "total" in floats.describe().columns
    assert q.quote_lines.to_arrow(money="float").schema.field("unit_price").type == pa.float64()

    # Bad lines change nothing and name every failing field at its path.
    before = writes(crm.open(path))
    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.create(contact_id=customer(sales), valid_until=VALID,
                            quote_lines=[{"description": "x", "quantity": "lots", "unit_price": "1"},
                                         {"quantity": "1"}])
    assert [(f.path, f.code) for f in e.value.fields] == [
        ("quote_lines[0].quantity", "invalid_type"),
        ("quote_lines[1].description", "required"),
        ("quote_lines[1].unit_price", "required"),
    ]
    after = writes(crm.open(path))
    assert after[0] == before[0] + 1, "only the contact created for the attempt was written"


def test_transitions_as_methods_and_the_guards_refusals(quote_db):
    path, emails = quote_db
    admin = crm.open(path)
    sales = crm.open(path, as_user=emails["sales"])
    manager = crm.open(path, as_user=emails["manager"])
    set_org(admin, quote_approval_rules=[{"role": "manager", "total_above": "10000"},
                                         {"role": "admin", "total_above": "50000"}])
    big = [{"description": "Long-distance move", "quantity": "1", "unit_price": "12500.00"}]
    q = sales.quotes.create(contact_id=customer(sales), valid_until=VALID, quote_lines=big)

    submitted = sales.quotes.submit(q)
    assert (submitted.status, submitted.approval_level) == ("pending_approval", "manager")
    assert submitted.submitted_by == sales.user_id
    assert len(submitted.quote_lines) == 1

    before = writes(admin)
    with pytest.raises(crm.ForbiddenError):
        sales.quotes.approve(submitted)  # a sales user has no approve action
    with pytest.raises(crm.ConflictError):
        manager.quotes.approve(q)  # the version read before the submission
    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.send(submitted)  # not approved yet
    assert [f.code for f in e.value.fields] == ["invalid_transition"]
    with pytest.raises(crm.ValidationError) as e:
        manager.quotes.reject(submitted)  # a rejection says why
    assert [(f.path, f.code) for f in e.value.fields] == [("rejection_reason", "required")]
    assert writes(admin) == before, "refusals write nothing"

    # Self-approval: a manager's own large quote waits for another manager (or an admin).
    own = manager.quotes.submit(manager.quotes.create(contact_id=customer(manager), valid_until=VALID,
                                                      quote_lines=big))
    with pytest.raises(crm.ValidationError) as e:
        manager.quotes.approve(own)
    assert [(f.path, f.code) for f in e.value.fields] == [("submitted_by", "self_approval")]
    assert "submitter" in e.value.fields[0].message

    # A level above the approver's role.
    huge = [{"description": "International move", "quantity": "1", "unit_price": "60000.00"}]
    top = sales.quotes.submit(sales.quotes.create(contact_id=customer(sales), valid_until=VALID,
                                                  quote_lines=huge))
    with pytest.raises(crm.ValidationError) as e:
        manager.quotes.approve(top)
    assert [f.code for f in e.value.fields] == ["approval_level"]
    assert manager.quotes.get(top.id).version == top.version

    # Rejected with a reason, back to draft; resubmitted, approved, sent, locked, revised.
    rejected = manager.quotes.reject(submitted, "price too low for the distance")
    assert (rejected.status, rejected.rejection_reason) == ("draft", "price too low for the distance")
    approved = manager.quotes.approve(sales.quotes.submit(rejected))
    assert (approved.status, approved.approved_by) == ("approved", manager.user_id)
    sent = sales.quotes.send(approved)
    assert sent.state == "sent"
    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.update(sent, notes="change in place")
    assert [f.code for f in e.value.fields] == ["locked"]
    rev = sales.quotes.revise(sent)
    assert (rev.status, rev.revision, rev.number) == ("draft", 2, sent.number)
    assert rev.supersedes_id == sent.id and len(rev.quote_lines) == 1
    assert sales.quotes.get(sent.id).status == "superseded"
    copy = sales.quotes.duplicate(rev)
    assert copy.status == "draft" and copy.number != rev.number

    # Accepting rolls the total up into the customer's lifetime value.
    small = [{"description": "Local move", "quantity": "3", "unit_price": "150.00"}]
    c = customer(sales)
    done = sales.quotes.accept(sales.quotes.send(sales.quotes.submit(
        sales.quotes.create(contact_id=c, valid_until=VALID, quote_lines=small))))
    assert done.status == "accepted"
    assert sales.contacts.get(c.id).lifetime_value == Decimal("450.00")

    # Conversion: each quote number once; the accepted one carries its value.
    rows = sales.quotes.conversion("month")
    assert sum(r["sent"] for r in rows) >= 1
    assert sum(r["accepted_value"] for r in rows) >= Decimal("450.00")
    with pytest.raises(ValueError):
        sales.quotes.conversion("team")

    # The document the customer reads: self-contained HTML with the lines and the total.
    page = sales.quotes.document(done)
    assert page.startswith("<!doctype html>") and "Local move" in page and "450.00" in page
    assert "<script" not in page

    # The generic form, for any entity with a workflow; unknown transitions are refused.
    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.transition(done, "teleport")
    assert [f.code for f in e.value.fields] == ["invalid_transition"]


def test_the_quotes_guide_in_the_docs_runs(tmp_path, monkeypatch, capsys):
    """The code block of docs/python.md's "Quotes" section runs as written, and every `print` with a
    trailing comment prints exactly what the comment says."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "python.md").read_text()
    section = doc.split("\n## Quotes\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    expected = [
        line.split("  # ", 1)[1].strip()
        for line in block.splitlines()
        if line.lstrip().startswith("print(") and "  # " in line
    ]
    assert len(expected) >= 4
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/python.md#quotes", "exec"), {"__name__": "docs_quotes"})
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert printed == expected
