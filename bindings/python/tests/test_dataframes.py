"""Arrow, pandas and polars round trips: counts and values equal to the list API; DataFrames with
native types (money numeric, enums categorical, ids joinable), labels and options in the schema."""

import datetime as dt
import json
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
    assert df["estimated_value"].dtype == "float64"
    assert [None if v != v else v for v in df["estimated_value"]] == [
        None if r.estimated_value is None else float(r.estimated_value) for r in records
    ]
    assert df["created_at"].iloc[0].to_pydatetime() == records[0].created_at
    exact = db.leads.list(q="status:won", order_by="id").to_pandas(money="decimal")
    assert isinstance(exact["estimated_value"].dropna().iloc[0], Decimal)
    assert [None if v != v else v for v in exact["estimated_value"]] == [r.estimated_value for r in records]


def test_to_polars(db):
    import polars as pl

    records = db.leads.list(q="status:lost", order_by="id", page_size=500).to_list()
    df = db.leads.list(q="status:lost", order_by="id").to_polars()
    assert isinstance(df, pl.DataFrame)
    assert df.height == len(records)
    assert df["score"].to_list() == [r.score for r in records]
    assert df["id"].to_list() == [r.id for r in records]
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
    "roof_type": ({"type": "enum", "options": ["shingle", "metal", "tile"]}, pa.dictionary(pa.int32(), pa.string())),
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


def test_custom_fields_carry_their_labels_and_options(custom_db):
    _, db = custom_db
    schema = db.leads.list(limit=0).to_arrow().schema
    for key, (spec, _) in CUSTOM_SPECS.items():
        meta = schema.field(f"custom.{key}").metadata
        assert meta[b"label"].decode() == key.title(), key  # the label the fixture declared
        assert json.loads(meta.get(b"options", b"[]")) == spec.get("options", []), key
    df = db.leads.list().to_pandas()
    assert list(df["custom.roof_type"].cat.categories) == ["shingle", "metal", "tile"]
    assert isinstance(df["custom.budget"].dtype, type(df["estimated_value"].dtype))


def test_custom_paths_are_in_records(custom_db):
    """``name in record`` exactly when ``record[name]`` gives a value."""
    _, db = custom_db
    records = db.leads.list(order_by="id").to_list()
    with_budget = next(r for r in records if "budget" in r.custom)
    without = next(r for r in records if "budget" not in r.custom)
    assert "custom.budget" in with_budget and with_budget["custom.budget"] == with_budget.custom["budget"]
    assert "custom.budget" not in without and without.get("custom.budget") is None
    missing = object()
    for r in (with_budget, without):
        for name in ("first_name", "custom.budget", "custom.roof_type", "custom.nope", "nope", "id"):
            assert (name in r) == (r.get(name, missing) is not missing), name
        assert 3 not in r


def test_first_hour_dtypes(db):
    """The analyst's first hour (issue 20): money numeric in describe(), enums categorical with every
    declared option, ids joinable between records and frames, in pandas and polars."""
    import pandas as pd

    df = db.leads.list().to_pandas()
    assert df["estimated_value"].dtype == "float64"
    assert "estimated_value" in df.describe().columns
    assert "estimated_value" in df.select_dtypes("number").columns
    records = db.leads.list(order_by="id", page_size=500).to_list()
    total = sum(r.estimated_value for r in records if r.estimated_value is not None)
    assert round(Decimal(df["estimated_value"].sum()), 2) == total

    # Enums: categoricals whose categories are the options the core declares (in the schema's
    # metadata), used or not, even in an empty result.
    schema = db.leads.list(limit=0).to_arrow().schema
    for column in ("source", "temperature", "priority", "project_type", "followup", "hot_status"):
        options = json.loads(schema.field(column).metadata[b"options"])
        assert isinstance(df[column].dtype, pd.CategoricalDtype), column
        assert list(df[column].cat.categories) == options, column
        assert set(df[column].dropna()) <= set(options), column
    assert "referral" in json.loads(schema.field("source").metadata[b"options"])
    referrals = db.leads.list(q="source:referral").to_pandas()
    assert set(referrals["source"]) == {"referral"} and "website" in referrals["source"].cat.categories
    empty = db.leads.list(q="score>1000").to_pandas()
    assert len(empty) == 0 and list(empty["source"].cat.categories) == list(df["source"].cat.categories)

    # Ids: the same strings in records and frames, references too.
    lead = db.leads.list(q="status:won estimated_value>0").first()
    row = df[df.id == lead.id]
    assert len(row) == 1 and row.iloc[0]["score"] == lead.score
    if lead.owner_id is not None:
        assert row.iloc[0]["owner_id"] == lead.owner_id
    won = pd.DataFrame([r.to_dict() for r in db.leads.list(q="status:won")])
    joined = won[["id", "version"]].merge(df[["id", "estimated_value"]], on="id", validate="one_to_one")
    assert len(joined) == len(won) > 0

    pl = pytest.importorskip("polars")
    pdf = db.leads.list().to_polars()
    assert pdf.schema["estimated_value"] == pl.Float64
    assert pdf.schema["source"] == pl.Categorical
    assert pdf.filter(pl.col("id") == lead.id).height == 1


def test_money_and_options_pass_through(db):
    import pandas as pd

    assert db.leads.list(limit=3).to_arrow().schema.field("estimated_value").type == pa.decimal128(18, 2)
    floats = db.leads.list(limit=3).to_arrow(money="float")
    assert floats.schema.field("estimated_value").type == pa.float64()
    assert pa.table(db.leads.list(limit=3)).schema.field("estimated_value").type == pa.decimal128(18, 2)
    with pytest.raises(ValueError, match="money"):
        db.leads.list().to_pandas(money="cents")
    arrow_backed = db.leads.list(limit=20).to_pandas(types_mapper=pd.ArrowDtype)
    assert arrow_backed["score"].dtype == pd.ArrowDtype(pa.int64())
    assert arrow_backed["estimated_value"].dtype == pd.ArrowDtype(pa.float64())
    pl = pytest.importorskip("polars")
    assert db.leads.list(limit=3).to_polars(money="decimal").schema["estimated_value"] == pl.Decimal(18, 2)
    over = db.leads.list(limit=3).to_polars(schema_overrides={"score": pl.Float64})
    assert over.schema["score"] == pl.Float64


def test_fields_carry_their_labels(db):
    schema = db.leads.list(limit=0).to_arrow().schema
    labels = {f.name: f.metadata[b"label"].decode() for f in schema}
    assert labels["id"] == "ID" and labels["first_name"] == "First name" and labels["owner_id"] == "Owner ID"
    assert labels["created_at"] == "Created at" and labels["hot_status"] == "Hot status"
    assert b"options" not in schema.field("first_name").metadata
