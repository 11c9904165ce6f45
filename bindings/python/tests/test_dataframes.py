"""Arrow, pandas and polars round trips: counts and values equal to the list API."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa

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
