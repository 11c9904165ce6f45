"""Arrow, pandas and polars round trips: counts and values equal to the list API."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

import crm


def test_to_arrow_matches_list(db):
    q = "score>=30"
    records = db.leads.list(q=q, order_by="-score", page_size=500).to_list()
    table = db.leads.list(q=q, order_by="-score").to_arrow()
    assert isinstance(table, pa.Table)
    assert table.num_rows == len(records) > 0
    assert table.column_names[:4] == ["id", "version", "created_at", "updated_at"]
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("estimated_value").type == pa.decimal128(18, 2)
    assert table.column("id").to_pylist() == [str(r.id) for r in records]
    assert table.column("score").to_pylist() == [r.score for r in records]
    assert table.column("estimated_value").to_pylist() == [r.estimated_value for r in records]
    assert table.column("created_at").to_pylist() == [r.created_at for r in records]
    assert table.column("tags").to_pylist() == [r.tags for r in records]
    assert table.column("status").to_pylist() == [r.status for r in records]


def test_to_arrow_small_pages_and_limit(db):
    full = db.leads.list(order_by="id").to_arrow()
    paged = db.leads.list(order_by="id").to_arrow(page_size=37)
    assert paged.equals(full)
    limited = db.leads.list(order_by="id", limit=50).to_arrow(page_size=20)
    assert limited.num_rows == 50
    assert limited.column("id").to_pylist() == full.column("id").to_pylist()[:50]


def test_empty_result_has_schema(db):
    table = db.leads.list(q="score>1000").to_arrow()
    assert table.num_rows == 0 and "score" in table.column_names


def test_arrow_pycapsule_interface(db):
    result = db.leads.list(q="status:new")
    table = pa.table(result)
    assert table.num_rows == sum(1 for _ in result)


def test_to_pandas(db):
    records = db.leads.list(q="status:won", order_by="id", page_size=500).to_list()
    df = db.leads.list(q="status:won", order_by="id").to_pandas()
    assert len(df) == len(records)
    assert list(df["score"]) == [r.score for r in records]
    assert list(df["estimated_value"]) == [r.estimated_value for r in records]
    assert isinstance(df["estimated_value"].dropna().iloc[0], Decimal)
    assert df["created_at"].iloc[0].to_pydatetime() == records[0].created_at


def test_to_polars(db):
    import polars as pl

    records = db.leads.list(q="status:lost", order_by="id", page_size=500).to_list()
    df = db.leads.list(q="status:lost", order_by="id").to_polars()
    assert isinstance(df, pl.DataFrame)
    assert df.height == len(records)
    assert df["score"].to_list() == [r.score for r in records]
    assert df["id"].to_list() == [str(r.id) for r in records]
    assert df["created_at"].to_list()[0] == records[0].created_at.replace(tzinfo=None) or df[
        "created_at"
    ].to_list()[0] == records[0].created_at
    assert isinstance(df["created_at"].to_list()[0], dt.datetime)


def test_to_arrow_in_every_order_matches_list(db):
    # Id order is read from both ends by two threads; other orders by a reader thread ahead of
    # the Arrow builder. Small pages make both go through many pages.
    for order in (None, "id", "-id", "-score", "status,-estimated_value"):
        for q in (None, "status:new"):
            listed = [str(r.id) for r in db.leads.list(q=q, order_by=order or "id", page_size=500)]
            table = db.leads.list(q=q, order_by=order).to_arrow(page_size=23)
            assert table.column("id").to_pylist() == listed, (order, q)
    assert db.leads.list(order_by="-id", limit=30).to_arrow(page_size=7).column("id").to_pylist() == [
        str(r.id) for r in db.leads.list(order_by="-id", limit=30)
    ]


CUSTOM_SPECS = {
    "budget": ({"type": "money"}, pa.decimal128(18, 2)),
    "inspected_on": ({"type": "date"}, pa.date32()),
    "insured": ({"type": "bool"}, pa.bool_()),
    "roof_type": ({"type": "enum", "options": ["shingle", "metal", "tile"]}, pa.string()),
    "storeys": ({"type": "number"}, pa.float64()),
    "trades": ({"type": "multi_enum", "options": ["gutters", "siding", "solar"]}, pa.list_(pa.string())),
}


@pytest.fixture(scope="module")
def custom_db(tmp_path_factory):
    """A small demo tenant whose leads have custom fields of every DataFrame-relevant type."""
    path = str(tmp_path_factory.mktemp("custom") / "custom.db")
    crm.load_demo(path, leads=80)
    db = crm.open(path)
    for key, (spec, _) in CUSTOM_SPECS.items():
        db.entity("custom_field").create(entity="lead", key=key, label=key.title(), spec=spec)
    for i, lead in enumerate(db.leads.list(order_by="id", limit=40)):
        custom = {
            "budget": f"{1000 + i}.50",
            "inspected_on": dt.date(2025, 1, 1 + i % 28),
            "insured": i % 2 == 0,
            "roof_type": ["shingle", "metal", "tile"][i % 3],
            "storeys": 1 + i % 3,
            "trades": [["gutters"], ["siding", "solar"], []][i % 3],
        }
        if i % 5 == 4:
            del custom["budget"]  # some values unset
        db.leads.update(lead, custom=custom)
    return path, db


def test_custom_fields_are_dataframe_columns(custom_db):
    _, db = custom_db
    records = db.leads.list(order_by="id", page_size=500).to_list()
    assert any(r.custom for r in records) and any(not r.custom for r in records)
    table = db.leads.list(order_by="id").to_arrow(page_size=9)
    names = table.column_names
    assert names[-len(CUSTOM_SPECS):] == [f"custom.{k}" for k in sorted(CUSTOM_SPECS)]
    for key, (_, arrow_type) in CUSTOM_SPECS.items():
        column = f"custom.{key}"
        assert table.schema.field(column).type == arrow_type, key
        assert table.column(column).to_pylist() == [r.custom.get(key) for r in records], key
    assert Decimal("1000.50") in table.column("custom.budget").to_pylist()

    df = db.leads.list(order_by="id").to_pandas()
    assert [v if isinstance(v, str) else None for v in df["custom.roof_type"]] == [
        r.custom.get("roof_type") for r in records
    ]
    assert [v for v in df["custom.budget"] if v is not None and v == v] == [
        r.custom["budget"] for r in records if "budget" in r.custom
    ]

    import polars as pl

    pdf = db.leads.list(order_by="id").to_polars()
    assert isinstance(pdf, pl.DataFrame)
    assert pdf["custom.inspected_on"].to_list() == [r.custom.get("inspected_on") for r in records]
    assert pdf["custom.storeys"].to_list() == [r.custom.get("storeys") for r in records]


def test_custom_fields_follow_field_permissions(custom_db):
    path, db = custom_db
    grants = {
        "lead": {
            "actions": {"read": "tenant"},
            "read": {"except": ["custom.budget", "estimated_value"]},
        }
    }
    db.entity("role").create(name="analyst", grants=grants)
    db.users.create(name="Ana Lyst", email="ana@analyst.example", role="analyst")
    analyst = crm.open(path, as_user="ana@analyst.example")
    records = analyst.leads.list(order_by="id", page_size=500).to_list()
    assert all("budget" not in r.custom for r in records)
    table = analyst.leads.list(order_by="id").to_arrow()
    assert "custom.budget" not in table.column_names and "estimated_value" not in table.column_names
    assert "custom.roof_type" in table.column_names
    assert table.column("custom.roof_type").to_pylist() == [r.custom.get("roof_type") for r in records]
    assert table.num_rows == len(records) == db.leads.list().to_arrow().num_rows
