"""crm — the embeddable CRM engine for analysts.

Open a CRM database as one of its users, query it in the text filter language, score and back-test
scoring models, import and export CSV, and get the data as Arrow, pandas or polars DataFrames. Every
rule (validation, permissions, scoring, audit) runs in the Rust core; this package converts types
and errors. Calls release the GIL, and objects are safe to share between threads.

>>> import crm
>>> db = crm.open("crm.db", as_user="sasha@summit-roofing.example")
>>> hot = db.leads.list(q="status:new score>=60", order_by="-score")
>>> df = hot.to_pandas()
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import math as _math
import numbers as _numbers
import os as _os
import uuid as _uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _crm
from .errors import (
    ImportRejectedError,
    ConflictError,
    CrmError,
    FieldError,
    ForbiddenError,
    InvalidQueryError,
    LimitExceededError,
    NotFoundError,
    CorruptError,
    DiskFullError,
    InternalError,
    StorageError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "open",
    "load_demo",
    "Database",
    "Collection",
    "Leads",
    "Activities",
    "Quotes",
    "Memberships",
    "CheckInAnswer",
    "PosImportReport",
    "ChildList",
    "Scoring",
    "Reports",
    "Record",
    "RecordList",
    "Conversion",
    "Contribution",
    "Explanation",
    "TierStats",
    "BacktestReport",
    "RowError",
    "ImportReport",
    "UpsertReport",
    "UpsertRow",
    "FieldChange",
    "AuditEntry",
    "Event",
    "StageSummary",
    "RescoreReport",
    "FieldError",
    "CrmError",
    "ValidationError",
    "NotFoundError",
    "ForbiddenError",
    "ConflictError",
    "LimitExceededError",
    "InvalidQueryError",
    "ImportRejectedError",
    "StorageError",
    "UnavailableError",
    "CorruptError",
    "DiskFullError",
    "InternalError",
]

__version__ = "0.1.0"

IdLike = Union[str, _uuid.UUID, "Record"]
"""A record id: a string, a :class:`uuid.UUID`, or a :class:`Record` (its id). Ids the package
returns are strings (hyphenated, lower case), in records and DataFrames alike."""

ModelLike = Union[Mapping[str, Any], str, "Record"]
"""A scoring model: its JSON as a dict or string, or a ``scoring_model`` record."""

# ---------------------------------------------------------------------------------------------
# conversions


def _id(x: IdLike) -> str:
    if isinstance(x, Record):
        return str(x.id)
    return str(x)


def _missing(v: Any) -> bool:
    """pandas' and numpy's markers of a missing value: a float (or Decimal) NaN, ``pd.NA``, ``pd.NaT``."""
    if isinstance(v, float):
        return _math.isnan(v)
    if isinstance(v, Decimal):
        return v.is_nan()
    return type(v).__name__ in ("NAType", "NaTType")


def _jsonable(v: Any) -> Any:
    """Python values to the JSON the core's validation reads (money as decimal strings, floats as
    numbers). A missing value as pandas marks it (NaN, ``pd.NA``, ``pd.NaT``) is ``None``: "not set",
    so a DataFrame row with empty cells can be sent as is. numpy scalars are sent as the Python
    number they hold."""
    if v is None or _missing(v):
        return None
    if isinstance(v, float) and _math.isinf(v):
        raise ValueError("infinity cannot be stored: send a finite number")
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, _numbers.Integral) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, _numbers.Real) and not isinstance(v, Decimal):
        return _jsonable(float(v))
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        return v.isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, _uuid.UUID):
        return str(v)
    if isinstance(v, Record):
        return str(v.id)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    raise TypeError(f"cannot send a {type(v).__name__} to the CRM")


def _dumps(data: Mapping[str, Any]) -> str:
    return _json.dumps(_jsonable(dict(data)), allow_nan=False)


def _micros(t: Union[_dt.datetime, _dt.date, None]) -> Optional[int]:
    if t is None:
        return None
    if not isinstance(t, _dt.datetime):
        t = _dt.datetime(t.year, t.month, t.day, tzinfo=_dt.timezone.utc)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    delta = t - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(s: Optional[str]) -> Optional[_dt.datetime]:
    if s is None:
        return None
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _id_or_none(s: Optional[str]) -> Optional[str]:
    return None if s is None else str(s)


def _model_json(model: Optional[ModelLike]) -> Optional[str]:
    if model is None:
        return None
    if isinstance(model, Record):
        model = model["definition"]
    if isinstance(model, str):
        return model
    return _json.dumps(_jsonable(model))


# ---------------------------------------------------------------------------------------------
# records


class Record:
    """One record, as the acting user may see it: system fields (``entity``, ``id``, ``version``,
    ``created_at``, ``updated_at``), the declared fields it may read (attributes and ``rec["name"]``)
    and custom fields (``custom``, also as ``rec["custom.<key>"]``). Values are Python types:
    ``datetime`` (UTC), ``date``, ``Decimal`` (money), ``str`` (ids and references: the same strings
    as the DataFrames' id columns), ``list``, ``dict``. Fields the user may not read are absent.
    Records compare equal when every visible value is equal."""

    __slots__ = ("entity", "id", "version", "created_at", "updated_at", "_fields", "custom", "_db")

    entity: str
    id: str
    version: int
    created_at: _dt.datetime
    updated_at: _dt.datetime
    custom: Dict[str, Any]

    def __init__(
        self,
        entity: str,
        id: str,
        version: int,
        created_at: _dt.datetime,
        updated_at: _dt.datetime,
        fields: Dict[str, Any],
        custom: Optional[Dict[str, Any]] = None,
    ) -> None:
        object.__setattr__(self, "entity", entity)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "created_at", created_at)
        object.__setattr__(self, "updated_at", updated_at)
        object.__setattr__(self, "_fields", dict(fields))
        object.__setattr__(self, "custom", dict(custom or {}))
        # The database it was read from (records a collection returns), for :meth:`attach`.
        object.__setattr__(self, "_db", None)

    def attach(
        self,
        path: Union[str, "_os.PathLike[str]"],
        kind: Optional[str] = None,
        *,
        signer_name: Optional[str] = None,
        file_name: Optional[str] = None,
    ) -> "Record":
        """Attaches the file at ``path`` to this record: ``kind`` is ``"photo"``, ``"document"`` (the
        core's default) or ``"signature"`` (with ``signer_name``). The file is streamed; the core sniffs its media type
        (a photo or signature must be an image), counts and hashes it, enforces the tenant's size
        limit and stamps who and when. Returns the attachment record; the bytes go to the blob
        directory next to the database (``crm.db`` -> ``crm.blobs``). A signature on a job signs it
        (its ``customer_signed``; read the job again to see it)."""
        db = object.__getattribute__(self, "_db")
        if db is None:
            raise TypeError(f"this record was not read from a database: use db.entity({self.entity!r}).attach(record, path)")
        return db.entity(self.entity).attach(self, path, kind, signer_name=signer_name, file_name=file_name)

    @classmethod
    def _from_raw(cls, raw: Tuple[Any, ...]) -> "Record":
        return cls(*raw)

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        try:
            return fields[name]
        except KeyError:
            raise AttributeError(f"{self.entity} has no readable field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("records are read-only: use the collection's update()")

    def __getitem__(self, name: str) -> Any:
        if name.startswith("custom."):
            return self.custom[name[len("custom.") :]]
        return self._fields[name]

    def __contains__(self, name: object) -> bool:
        """Whether ``rec[name]`` gives a value: a readable field, or ``"custom.<key>"``."""
        if not isinstance(name, str):
            return False
        if name.startswith("custom."):
            return name[len("custom.") :] in self.custom
        return name in self._fields

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when it is absent (unknown or not readable)."""
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def fields(self) -> Dict[str, Any]:
        """The readable declared fields (a copy)."""
        return dict(self._fields)

    def to_dict(self) -> Dict[str, Any]:
        """System fields, readable fields and (when present) ``custom``, as one dict."""
        d: Dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        d.update(self._fields)
        if self.custom:
            d["custom"] = dict(self.custom)
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.entity, self.id, self.version, self.created_at, self.updated_at, self._fields, self.custom) == (
            other.entity,
            other.id,
            other.version,
            other.created_at,
            other.updated_at,
            other._fields,
            other.custom,
        )

    def __hash__(self) -> int:
        return hash((self.entity, self.id, self.version))

    def _shown(self) -> List[Tuple[str, Any]]:
        """``(name, value)`` of the id, version, set fields and custom fields, in order."""
        shown: List[Tuple[str, Any]] = [("id", self.id), ("version", self.version)]
        shown += [(k, v) for k, v in self._fields.items() if v is not None]
        shown += [(f"custom.{k}", v) for k, v in self.custom.items() if v is not None]
        return shown

    @staticmethod
    def _value_repr(v: Any) -> str:
        if isinstance(v, ChildList):
            return f"<{len(v)} {v.entity} records>"
        return repr(v)

    def __repr__(self) -> str:
        """One field a line: ``Lead(\n    id='…',\n    first_name='Ann',\n    …\n)`` (set fields only)."""
        lines = [f"    {k}={self._value_repr(v)}," for k, v in self._shown()]
        return f"{_class_name(self.entity)}(\n" + "\n".join(lines) + "\n)"

    def _summary(self, width: int = 110) -> str:
        """One short line: the type, the end of the id (a UUIDv7 starts with its creation time,
        alike in records made together) and the first set fields."""
        parts = [f"id=…{self.id[-8:]}"] + [f"{k}={self._value_repr(v)}" for k, v in self._shown()[2:]]
        text = f"{_class_name(self.entity)}({', '.join(parts)})"
        return text if len(text) <= width else text[: width - 2] + "…)"

    def _repr_html_(self) -> str:
        """A two-column table of the set fields (Jupyter)."""
        rows = "".join(
            f"<tr><th>{_html(k)}</th><td>{_html(v if isinstance(v, str) else self._value_repr(v))}</td></tr>"
            for k, v in self._shown()
        )
        return f"<div><b>{_html(_class_name(self.entity))}</b><table>{rows}</table></div>"

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._fields))


def _records(raw: Sequence[Tuple[Any, ...]]) -> List[Record]:
    return [Record(*r) for r in raw]


def _class_name(entity: str) -> str:
    return "".join(p.title() for p in entity.split("_"))


def _html(v: Any, width: int = 60) -> str:
    import html

    text = str(v)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return html.escape(text)


#: Records shown by a :class:`RecordList`'s ``repr``.
_PREVIEW = 5

#: How :meth:`RecordList.to_arrow` and friends take ``money=``.
_MONEY = ("decimal", "float")


def _money(money: str) -> str:
    if money not in _MONEY:
        raise ValueError(f'money must be "decimal" or "float", not {money!r}')
    return money


class RecordList:
    """A lazily paginated query result: nothing runs until you iterate it (pages are fetched one at
    a time, keyset-paginated) or convert it (``to_arrow``/``to_pandas``/``to_polars`` stream every
    page into Arrow arrays built in Rust). Re-iterating runs the query again. ``len(result)`` and
    :meth:`count` count the matching records in the store; its ``repr`` (and ``_repr_html_`` in
    Jupyter) shows the count and the first records. Implements the Arrow PyCapsule interface
    (``__arrow_c_stream__``), so ``pyarrow.table(result)`` works too."""

    def __init__(
        self,
        db: "Database",
        entity: str,
        q: Optional[str],
        filter: Optional[Mapping[str, Any]],
        order_by: Optional[str],
        limit: Optional[int],
        page_size: int,
    ) -> None:
        self._db = db
        self.entity = entity
        self.q = q
        self._filter = None if filter is None else _json.dumps(_jsonable(filter))
        self.order_by = order_by
        self.limit = limit
        self.page_size = page_size

    def pages(self) -> Iterator[List[Record]]:
        """Yields one page (a list of records) at a time."""
        cursor: Optional[str] = None
        left = self.limit
        while left is None or left > 0:
            size = self.page_size if left is None else min(self.page_size, left)
            raw, cursor = self._db._native.list_page(
                self.entity, self.q, self._filter, self.order_by, size, cursor
            )
            page = _records(raw)
            if left is not None:
                page = page[:left]
                left -= len(page)
            if page:
                yield page
            if cursor is None or not page:
                return

    def __iter__(self) -> Iterator[Record]:
        for page in self.pages():
            yield from page

    def first(self) -> Optional[Record]:
        """The first record, or ``None`` (fetches a single one)."""
        raw, _ = self._db._native.list_page(self.entity, self.q, self._filter, self.order_by, 1, None)
        return Record(*raw[0]) if raw else None

    def to_list(self) -> List[Record]:
        """Every record (all pages) as a list."""
        out: List[Record] = []
        for page in self.pages():  # not list(self): that would ask len() first, one more query
            out.extend(page)
        return out

    def __len__(self) -> int:
        """How many records the query matches (at most ``limit``): :meth:`count`, one query."""
        return self.count()

    def __bool__(self) -> bool:
        """Whether any record matches (reads at most one)."""
        return self.first() is not None

    def count(self) -> int:
        """How many records the query matches (at most ``limit``), counted by the store in one
        aggregate, without reading them."""
        raw = _json.loads(self._db._native.aggregate(self.entity, self.q, self._filter, [], [("count", None)], None))
        n = int(raw["groups"][0]["count"]) if raw["groups"] else 0
        return n if self.limit is None else min(n, self.limit)

    def _stream(self, page_size: Optional[int] = None, money: str = "decimal") -> Any:
        return self._db._native.to_arrow(
            self.entity, self.q, self._filter, self.order_by, self.limit, page_size, _money(money)
        )

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream interface: the whole result as Arrow record batches (money
        as exact decimals)."""
        return self._stream().__arrow_c_stream__(requested_schema)

    def to_arrow(self, page_size: Optional[int] = None, *, money: str = "decimal") -> Any:
        """The whole result as a ``pyarrow.Table``: columns ``id``, ``version``, ``created_at``,
        ``updated_at``, then every declared field the user may read, then the computed fields,
        then the tenant's custom fields the user may read as ``custom.<key>`` (sorted by key,
        typed from their definitions). Timestamps are ``timestamp[us, UTC]``, money
        ``decimal128(18, 2)`` (``money="float"``: ``float64``), dates ``date32``, ids strings,
        enums ``dictionary<int32, string>`` whose dictionary holds every declared option,
        multi-valued fields lists. Each field's metadata carries its ``label`` and (enums,
        multi-enums) its ``options`` as a JSON array. Built from Arrow arrays in Rust, one record
        batch per bulk page, on two threads; Ctrl-C stops it. Rows come in the list's
        ``order_by``, or in id (creation) order when none was given. ``page_size`` (at most
        10,000) is for tests and tuning. Needs ``pyarrow``."""
        import pyarrow as pa

        stream = self._stream(page_size, money)
        return pa.RecordBatchReader.from_stream(stream).read_all()

    def to_pandas(self, *, money: str = "float", **options: Any) -> Any:
        """The whole result as a ``pandas.DataFrame`` (via :meth:`to_arrow`): money as ``float64``
        by default, so ``describe()``, ``mean()`` and ``select_dtypes("number")`` count it
        (``money="decimal"``: exact :class:`decimal.Decimal` objects); enums as categoricals with
        every declared option; ids as strings, equal to the records' ``id``. ``options`` go to
        ``pyarrow.Table.to_pandas`` (``types_mapper=pd.ArrowDtype``, ...). Needs ``pandas`` and
        ``pyarrow``, imported only when called."""
        return self.to_arrow(money=money).to_pandas(**options)

    def to_polars(self, *, money: str = "float", **options: Any) -> Any:
        """The whole result as a ``polars.DataFrame``, read through the Arrow C stream interface:
        money ``Float64`` by default (``money="decimal"``: ``Decimal(18, 2)``), enums
        ``Categorical``. ``options`` go to ``polars.DataFrame`` (``schema_overrides=``, ...).
        Needs ``polars``, imported only when called."""
        import polars as pl

        return pl.DataFrame(self._stream(money=money), **options)

    def _describe(self) -> str:
        shown = [f"{k}={v!r}" for k, v in (("q", self.q), ("order_by", self.order_by), ("limit", self.limit)) if v is not None]
        return " ".join([self.entity] + shown)

    def _preview(self) -> Tuple[int, List[Record]]:
        """The count and the first records (at most :data:`_PREVIEW`): two queries."""
        n = self.count()
        size = _PREVIEW if self.limit is None else min(_PREVIEW, self.limit)
        if n == 0 or size == 0:
            return n, []
        raw, _ = self._db._native.list_page(self.entity, self.q, self._filter, self.order_by, size, None)
        return n, _records(raw)

    def __repr__(self) -> str:
        """The query, its count and the first records (runs the count and one page)."""
        head = f"<RecordList {self._describe()}"
        try:
            n, rows = self._preview()
        except CrmError as e:
            return f"{head}: {type(e).__name__}: {e}>"
        noun = "record" if n == 1 else "records"
        lines = [f"{head}: {n} {noun}>"] + [f"  {r._summary()}" for r in rows]
        if n > len(rows):
            lines.append(f"  … {n - len(rows)} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter: the count and the first records as a table."""
        try:
            n, rows = self._preview()
        except CrmError as e:
            return f"<p>RecordList {_html(self._describe(), 200)}: {_html(type(e).__name__)}: {_html(e, 200)}</p>"
        columns: List[str] = []
        for r in rows:
            for k, v in r._shown()[2:]:
                if k not in columns and not isinstance(v, ChildList):
                    columns.append(k)
        columns = columns[:8]
        head = "".join(f"<th>{_html(c)}</th>" for c in ["id"] + columns)
        def cell(r: Record, c: str) -> str:
            v = r.id if c == "id" else r.get(c)
            return "" if v is None else _html(v)

        body = "".join("<tr>" + "".join(f"<td>{cell(r, c)}</td>" for c in ["id"] + columns) + "</tr>" for r in rows)
        more = f"<p>… {n - len(rows)} more</p>" if n > len(rows) else ""
        return (
            f"<div><p><b>RecordList</b> {_html(self._describe(), 200)}: {n} {'record' if n == 1 else 'records'}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>"
        )


class ChildList(List[Record]):
    """A record's children of one type (a quote's lines), in their declared order: a list of
    :class:`Record` as read with their parent, plus ``to_arrow``/``to_pandas``/``to_polars``, which
    read the parent's children of this type again and build the table in Rust (the columns of
    :meth:`RecordList.to_arrow` for the child type: money ``decimal128(18, 2)``, decimal quantities
    and rates ``decimal128(18, 6)``)."""

    def __init__(self, db: "Database", parent: str, parent_id: str, entity: str, rows: Sequence[Record]) -> None:
        super().__init__(rows)
        self._db = db
        self._parent = parent
        self._parent_id = parent_id
        self.entity = entity

    def _stream(self, money: str = "decimal") -> Any:
        return self._db._native.children_arrow(self._parent, str(self._parent_id), self.entity, _money(money))

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream interface (decimals exact)."""
        return self._stream().__arrow_c_stream__(requested_schema)

    def to_arrow(self, *, money: str = "decimal") -> Any:
        """The rows as a ``pyarrow.Table`` (``money="float"``: money and decimals as ``float64``).
        Needs ``pyarrow``."""
        import pyarrow as pa

        return pa.RecordBatchReader.from_stream(self._stream(money)).read_all()

    def to_pandas(self, *, money: str = "float", **options: Any) -> Any:
        """The rows as a ``pandas.DataFrame`` (via :meth:`to_arrow`): money and decimals as
        ``float64`` by default, as exact :class:`decimal.Decimal` with ``money="decimal"``;
        ``options`` go to ``pyarrow.Table.to_pandas``."""
        return self.to_arrow(money=money).to_pandas(**options)

    def to_polars(self, *, money: str = "float", **options: Any) -> Any:
        """The rows as a ``polars.DataFrame`` (``money="decimal"``: ``Decimal`` columns);
        ``options`` go to ``polars.DataFrame``."""
        import polars as pl

        return pl.DataFrame(self._stream(money), **options)


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Conversion:
    """The result of converting a lead: the updated lead, the new contact, the company if created."""

    lead: Record
    contact: Record
    company: Optional[Record]


@dataclass(frozen=True)
class Contribution:
    """One line of a score's explanation: which rule of which group gave how many points."""

    group: str
    rule: str
    count: int
    #: Whole points, as the core computes them.
    points: int
    kind: str


@dataclass(frozen=True)
class Explanation:
    """A lead's score with its explanation; the ``points`` of all contributions add up to ``score``."""

    score: int
    tier: str
    temperature: str
    reset: bool
    contributions: List[Contribution]

    def to_pandas(self) -> Any:
        """The contributions as a ``pandas.DataFrame`` (group, rule, count, points, kind; the
        points add up to the score); ``attrs``: score, tier, temperature, reset. Needs pandas."""
        import pandas as pd

        df = pd.DataFrame([vars(c) for c in self.contributions], columns=_CONTRIBUTION_COLUMNS)
        df.attrs.update(score=self.score, tier=self.tier, temperature=self.temperature, reset=self.reset)
        return df


_CONTRIBUTION_COLUMNS = ["group", "rule", "count", "points", "kind"]


@dataclass(frozen=True)
class TierStats:
    """The outcomes of the closed leads a back-tested model put in one tier."""

    tier: str
    temperature: str
    leads: int
    won: int
    lost: int
    win_rate: Optional[float]
    lift: Optional[float]


@dataclass(frozen=True)
class BacktestReport:
    """How well a model separates won from lost leads: ``auc`` (0.5 is chance) and lift per tier."""

    model: str
    evaluated: int
    won: int
    lost: int
    auc: Optional[float]
    tiers: List[TierStats]

    def to_pandas(self) -> Any:
        """The tiers as a ``pandas.DataFrame`` (tier, temperature, leads, won, lost, win_rate,
        lift; ``NaN`` where a tier has no closed lead); ``attrs``: model, evaluated, won, lost,
        auc. Needs pandas."""
        import pandas as pd

        columns = ["tier", "temperature", "leads", "won", "lost", "win_rate", "lift"]
        df = pd.DataFrame([vars(t) for t in self.tiers], columns=columns)
        for c in ("win_rate", "lift"):
            df[c] = df[c].astype("float64")
        df.attrs.update(model=self.model, evaluated=self.evaluated, won=self.won, lost=self.lost, auc=self.auc)
        return df


@dataclass(frozen=True)
class RowError:
    """The failing fields of one CSV row (``row``: 1-based data row; ``line``: line in the file)."""

    row: int
    line: int
    errors: List[FieldError]


@dataclass(frozen=True)
class ImportReport:
    """The per-row, per-field outcome of an import. ``applied``: whether anything was written.
    ``errors`` lists the first 10,000 invalid rows; ``errors_omitted`` counts the rest;
    ``error_counts`` counts every invalid row by field and error code."""

    mode: str
    rows: int
    valid: int
    invalid: int
    created: int
    updated: int
    unchanged: int
    applied: bool
    columns: Dict[str, str]
    ignored_columns: List[str]
    errors: List[RowError]
    errors_omitted: int
    error_counts: Dict[str, Dict[str, int]]


@dataclass(frozen=True)
class UpsertRow:
    """One row of an :class:`UpsertReport`: its 1-based position, its external id, ``outcome``
    (``created``, ``updated``, ``unchanged``, ``rejected``), the bound record's ``id`` and every
    error of a refused row."""

    row: int
    external_id: Optional[str]
    outcome: str
    id: Optional[str]
    errors: List[FieldError]


@dataclass(frozen=True)
class UpsertReport:
    """The outcome of :meth:`Collection.upsert`: counts over every row, and the rows created,
    updated or refused (unchanged rows are only counted; the first 10,000 are listed, the rest
    counted in ``results_omitted``). ``applied``: whether records were written.
    :meth:`to_pandas` gives the listed rows as a DataFrame."""

    system: str
    mode: str
    dry_run: bool
    all_or_nothing: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    applied: bool
    results: List[UpsertRow]
    results_omitted: int

    @property
    def invalid(self) -> int:
        """The refused rows (as :class:`ImportReport` names them)."""
        return self.rejected

    @property
    def errors(self) -> List[RowError]:
        """The refused rows' errors (``line`` is the row's position)."""
        return [RowError(row=r.row, line=r.row, errors=r.errors) for r in self.results if r.outcome == "rejected"]

    def to_pandas(self) -> Any:
        """The listed rows as a DataFrame: ``row``, ``external_id``, ``outcome``, ``id`` and
        ``errors`` (``"path: code"`` joined by ``"; "``)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "row": r.row,
                    "external_id": r.external_id,
                    "outcome": r.outcome,
                    "id": r.id,
                    "errors": "; ".join(f"{e.path}: {e.code}" for e in r.errors),
                }
                for r in self.results
            ],
            columns=["row", "external_id", "outcome", "id", "errors"],
        )


@dataclass(frozen=True)
class PosImportReport:
    """The outcome of a point-of-sale import (:meth:`Database.import_members`): rows, valid and
    invalid rows, ``clients`` and ``memberships`` as ``{"created", "updated", "unchanged"}``,
    ``applied`` (whether anything was written), columns used and ignored, and per-row errors named
    by the file's columns."""

    mode: str
    rows: int
    valid: int
    invalid: int
    clients: Dict[str, int]
    memberships: Dict[str, int]
    applied: bool
    columns: Dict[str, str]
    ignored_columns: List[str]
    errors: List[RowError]


@dataclass(frozen=True)
class CheckInAnswer:
    """What the front desk is told (:meth:`Database.check_in`): ``outcome`` (``allowed``,
    ``warned``, ``refused``), ``reason``, the client, their membership ``status`` and ``ends_on``,
    ``visits_left`` after this visit (``None``: unlimited), and the check-in recorded (if any)."""

    outcome: str
    reason: Optional[str]
    contact_id: str
    name: str
    membership_id: Optional[str]
    status: str
    ends_on: Optional[_dt.date]
    visits_left: Optional[int]
    check_in_id: Optional[str]
    at: _dt.datetime

    @property
    def allowed(self) -> bool:
        """Whether the client may come in (allowed, or allowed with a warning)."""
        return self.outcome != "refused"


@dataclass(frozen=True)
class FieldChange:
    """One field's old and new value in an audit entry (JSON forms)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class AuditEntry:
    """An entry of the hash-chained, append-only audit log."""

    seq: int
    id: str
    at: _dt.datetime
    actor: Optional[str]
    action: str
    entity: str
    entity_id: Optional[str]
    changes: List[FieldChange]
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Event:
    """A domain event of the outbox (``lead.created``, ...), with the tenant's sequence number."""

    seq: int
    id: str
    at: _dt.datetime
    kind: str
    entity: str
    entity_id: Optional[str]
    payload: Dict[str, Any]


@dataclass(frozen=True)
class StageSummary:
    """Leads in one pipeline stage and the sum of their estimated values (``None`` when hidden)."""

    key: str
    label: str
    kind: str
    count: int
    value: Optional[Decimal]


@dataclass(frozen=True)
class RescoreReport:
    """What a re-scoring run did."""

    scanned: int
    changed: int
    model_version: int


# ---------------------------------------------------------------------------------------------
# collections


class Collection:
    """The records of one entity type, as the database's user may see and change them."""

    def __init__(self, db: "Database", entity: str) -> None:
        self._db = db
        self.entity = entity
        self._kids: Optional[List[Tuple[str, str]]] = None

    @property
    def _child_types(self) -> List[Tuple[str, str]]:
        """``[(table, child entity), ...]`` of this type (from its declaration)."""
        if self._kids is None:
            self._kids = list(_crm.Database.child_types(self.entity))
        return self._kids

    def _version(self, record: IdLike, version: Optional[int]) -> int:
        if version is not None:
            return version
        if not isinstance(record, Record):
            raise TypeError("pass the Record you read, or version=")
        return record.version

    def _full(self, raw: Tuple[Any, ...]) -> Record:
        """A record, with its children under their table names when its type has any."""
        rec = Record(*raw)
        if self._child_types:
            fields = rec.fields
            for (table, rows), (_, child) in zip(self._db._native.children(self.entity, str(rec.id)), self._child_types):
                fields[table] = ChildList(self._db, self.entity, rec.id, child, _records(rows))
            rec = Record(rec.entity, rec.id, rec.version, rec.created_at, rec.updated_at, fields, rec.custom)
        object.__setattr__(rec, "_db", self._db)
        return rec

    def attach(
        self,
        record: IdLike,
        path: Union[str, "_os.PathLike[str]"],
        kind: Optional[str] = None,
        *,
        signer_name: Optional[str] = None,
        file_name: Optional[str] = None,
    ) -> Record:
        """Attaches the file at ``path`` to a record of this type (see :meth:`Record.attach`)."""
        raw = self._db._native.attach(self.entity, _id(record), _os.fspath(path), kind or "", file_name, signer_name)
        return Record(*raw)

    def attachments(self, record: IdLike) -> List[Record]:
        """A record's attachments (``kind``, ``file_name``, ``media_type``, ``size``, ``sha256``,
        who uploaded them and when), oldest first; :class:`NotFoundError` if the user may not read
        the record."""
        return _records(self._db._native.attachments(self.entity, _id(record)))

    def attachment_content(self, attachment: IdLike) -> bytes:
        """An attachment's bytes (the user must be able to read the record it is on)."""
        return bytes(self._db._native.attachment_content(_id(attachment)))

    def children(self, record: IdLike, table: Optional[str] = None) -> ChildList:
        """A record's children of one type (``table``: e.g. ``"quote_lines"``; the only child type
        when ``None``), in their declared order, as the user may read them."""
        kids = self._db._native.children(self.entity, _id(record))
        types = dict(self._child_types)
        if table is None:
            if len(self._child_types) != 1:
                raise ValueError(f"{self.entity} has child types {sorted(types)}: name one")
            table = self._child_types[0][0]
        if table not in types:
            raise ValueError(f"{self.entity} has no child type {table!r} (it has {sorted(types)})")
        rows = next(r for t, r in kids if t == table)
        rid = record.id if isinstance(record, Record) else str(_uuid.UUID(_id(record)))
        return ChildList(self._db, self.entity, rid, types[table], _records(rows))

    def transition(
        self,
        record: IdLike,
        name: str,
        data: Optional[Mapping[str, Any]] = None,
        *,
        version: Optional[int] = None,
        **fields: Any,
    ) -> Record:
        """Runs the workflow transition ``name`` on a record at the version you read (the core
        checks the action, the state, the input the transition accepts and its guard; nothing is
        written when any refuses). Returns the record after it (for a transition that makes a copy,
        the copy). A guard's refusal is a :class:`ValidationError` whose ``fields`` carry the
        guard's code (``self_approval``, ``approval_level``, ``expired``, ``invalid_transition``,
        ...) and reason; a stale version is a :class:`ConflictError`."""
        v = self._version(record, version)
        merged = dict(data or {}, **fields)
        return self._full(self._db._native.transition(self.entity, _id(record), v, name, _dumps(merged)))

    def list(
        self,
        q: Optional[str] = None,
        *,
        filter: Optional[Mapping[str, Any]] = None,
        order_by: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 200,
    ) -> RecordList:
        """A lazily paginated list. ``q``: the text filter language (``status:new score>=60
        owner:me "free text"``); ``filter``: a typed filter as JSON (``{"cmp": {"field": "score",
        "op": "ge", "value": 60}}``), ANDed with ``q``; ``order_by``: ``"-score,created_at"``
        (``-`` descending; default newest first); ``limit``: at most this many records in total;
        ``page_size``: records per round trip (the core caps it)."""
        return RecordList(self._db, self.entity, q, filter, order_by, limit, page_size)

    def count(self, q: Optional[str] = None, *, filter: Optional[Mapping[str, Any]] = None) -> int:
        """Shortcut for ``list(q, filter=...).count()``."""
        return self.list(q, filter=filter).count()

    def aggregate(
        self,
        by: Union[str, Sequence[str], None] = None,
        *,
        q: Optional[str] = None,
        filter: Optional[Mapping[str, Any]] = None,
        sum: Union[str, Sequence[str], None] = None,
        avg: Union[str, Sequence[str], None] = None,
        min: Union[str, Sequence[str], None] = None,
        max: Union[str, Sequence[str], None] = None,
        tz: Optional[str] = None,
    ) -> Any:
        """Groups and measures the records the user may read, in the store (SQL ``GROUP BY``), as
        a ``pandas.DataFrame``: one row per group, ordered by the keys (nulls first). ``by``: up
        to two keys, each a field (``"status"``) or a date or timestamp field's time bucket
        (``"created_at:month"``, ``:week``, ``:day``; bucket columns hold :class:`datetime.date`
        of the bucket's first day, cut at the UTC offset ``tz``, e.g. ``"+02:00"``); ``sum``,
        ``avg``, ``min``, ``max``: a field or a list of fields each. Columns: the keys (named as
        given), ``count``, then ``sum(estimated_value)`` and so on; money and decimals arrive as
        :class:`decimal.Decimal`. ``q`` and ``filter`` narrow the records as in :meth:`list`.
        More than 10,000 groups raise :class:`LimitExceededError`. Needs ``pandas``."""
        import pandas as pd

        def names(v: Union[str, Sequence[str], None]) -> List[str]:
            return [] if v is None else [v] if isinstance(v, str) else list(v)

        keys = names(by)
        measures: List[Tuple[str, Optional[str]]] = [("count", None)]
        for fold, fields in (("sum", sum), ("avg", avg), ("min", min), ("max", max)):
            measures += [(fold, f) for f in names(fields)]
        flt = None if filter is None else _json.dumps(_jsonable(filter))
        raw = _json.loads(self._db._native.aggregate(self.entity, q, flt, keys, measures, tz))
        labels: List[str] = raw["measures"][1:]
        rows = []
        for g in raw["groups"]:
            row: Dict[str, Any] = {}
            for k, v in zip(keys, g["keys"]):
                row[k] = _date_or(v) if ":" in k else v
            row["count"] = int(g["count"])
            for label, v in zip(labels, g["values"][1:]):
                row[label] = _number(v)
            rows.append(row)
        return pd.DataFrame(rows, columns=keys + ["count"] + labels)

    def to_arrow(
        self, q: Optional[str] = None, *, order_by: Optional[str] = None, limit: Optional[int] = None, money: str = "decimal"
    ) -> Any:
        """Shortcut for ``list(q, ...).to_arrow(money=money)``."""
        return self.list(q, order_by=order_by, limit=limit).to_arrow(money=money)

    def get(self, id: IdLike) -> Record:
        """One record by id; :class:`NotFoundError` if it does not exist or the user may not see it."""
        return self._full(self._db._native.get(self.entity, _id(id)))

    def upsert(
        self,
        rows: Any,
        *,
        system: str,
        mode: str = "upsert",
        all_or_nothing: bool = False,
        dry_run: bool = False,
    ) -> UpsertReport:
        """Creates or updates records from an external ``system``'s rows: a list of mappings or a
        pandas DataFrame, each row with its id in that system under ``external_id``. The pair
        (system, external id) binds a row to its record; a row equal to the one last received is
        ``unchanged`` and writes nothing. ``mode``: ``"upsert"``, ``"create_only"`` (a bound row
        is refused: ``already_bound``) or ``"update_only"`` (an unbound one is: ``not_bound``).
        Refused rows are reported with every error; the others are written unless
        ``all_or_nothing`` (then nothing is, and :class:`ImportRejectedError` carries the report)
        or ``dry_run``. Returns the :class:`UpsertReport` (``.to_pandas()`` for a DataFrame)."""
        if mode not in _UPSERT_MODES:
            raise ValueError(f"mode must be one of {_UPSERT_MODES}")
        if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
            rows = rows.to_dict("records")
        payload = _json.dumps([_jsonable(r) for r in rows], allow_nan=False)
        raw = _json.loads(self._db._native.upsert(self.entity, system, mode, payload, all_or_nothing, dry_run))
        raw["results"] = [
            UpsertRow(
                row=r["row"],
                external_id=r.get("external_id"),
                outcome=r["outcome"],
                id=r.get("id"),
                errors=[FieldError(**f) for f in r.get("errors", [])],
            )
            for r in raw["results"]
        ]
        report = UpsertReport(**raw)
        if report.all_or_nothing and not report.dry_run and report.rejected > 0:
            raise ImportRejectedError(report)
        return report

    def create(self, data: Optional[Mapping[str, Any]] = None, **fields: Any) -> Record:
        """Creates a record from ``data`` and/or keyword fields; returns it as stored (normalised,
        defaulted, scored). :class:`ValidationError` lists every failing field."""
        merged = dict(data or {}, **fields)
        return self._full(self._db._native.create(self.entity, _dumps(merged)))

    def update(
        self, record: IdLike, data: Optional[Mapping[str, Any]] = None, *, version: Optional[int] = None, **fields: Any
    ) -> Record:
        """Patches a record. Pass the :class:`Record` you read (its version is expected), or an id
        and ``version``. A stale version raises :class:`ConflictError`; nothing is written."""
        if version is None:
            if not isinstance(record, Record):
                raise TypeError("pass the Record you read, or version=")
            version = record.version
        merged = dict(data or {}, **fields)
        return self._full(self._db._native.update(self.entity, _id(record), version, _dumps(merged)))

    def delete(self, record: IdLike, *, version: Optional[int] = None) -> None:
        """Deletes a record (at the version read; see :meth:`update`)."""
        if version is None:
            if not isinstance(record, Record):
                raise TypeError("pass the Record you read, or version=")
            version = record.version
        self._db._native.delete(self.entity, _id(record), version)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.list())

    def __repr__(self) -> str:
        return f"<crm.Collection {self.entity}>"


class Leads(Collection):
    """Leads: everything a collection does, plus conversion to a customer."""

    def convert(self, lead: IdLike, *, version: Optional[int] = None, create_company: bool = False) -> Conversion:
        """Converts a lead into a contact (and a company from its ``company_name`` if
        ``create_company``) in one atomic change; the lead moves to the won stage. Pass the
        :class:`Record` you read (its version is expected), or an id and ``version``: a lead changed
        since raises :class:`ConflictError` and nothing is written."""
        if version is None:
            if not isinstance(lead, Record):
                raise TypeError("pass the Record you read, or version=")
            version = lead.version
        lead_r, contact, company = self._db._native.convert_lead(_id(lead), version, create_company)
        return Conversion(Record(*lead_r), Record(*contact), None if company is None else Record(*company))


class Activities(Collection):
    """Activities (call, email, meeting, note, sms, visit, check_in); logging one re-scores its lead."""

    def log(
        self,
        lead: Optional[IdLike] = None,
        kind: Optional[str] = None,
        *,
        occurred_at: Optional[_dt.datetime] = None,
        **fields: Any,
    ) -> Record:
        """Logs an activity of ``kind`` (required: ``call``, ``email``, ``meeting``, ``note``,
        ``sms``, ``visit``, ``check_in``) on ``lead`` (or on ``contact_id=``/``company_id=``).
        ``occurred_at`` defaults to now (the core's clock)."""
        data: Dict[str, Any] = dict(fields)
        if kind is not None:
            data["kind"] = kind
        if lead is not None:
            data["lead_id"] = _id(lead)
        if occurred_at is not None:
            data["occurred_at"] = occurred_at
        return Record(*self._db._native.log_activity(_dumps(data)))


class Quotes(Collection):
    """Quotes: records with their lines (``quote.quote_lines``, a :class:`ChildList`), created with
    their first lines inline (``create(..., quote_lines=[{...}, ...])``: one atomic change, every
    field error of the quote and its lines at once, at paths like ``quote_lines[1].quantity``), and
    the workflow's transitions as methods. Totals, taxes, the approval level and the ``state``
    (``expired`` for a sent quote past ``valid_until``) are decided by the core; each method passes
    the version you read (or ``version=``) and returns the quote after the transition."""

    def lines(self, quote: IdLike) -> ChildList:
        """The quote's lines in order (``to_pandas()`` gives them as a DataFrame)."""
        return self.children(quote, "quote_lines")

    def submit(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """draft → approved (no approval rule applies) or pending_approval (the level it needs)."""
        return self.transition(quote, "submit", version=version)

    def approve(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """pending_approval → approved; never by the submitter, only by the level's role or above."""
        return self.transition(quote, "approve", version=version)

    def reject(self, quote: IdLike, reason: Optional[str] = None, *, version: Optional[int] = None) -> Record:
        """pending_approval → draft, with the reason (``rejection_reason``)."""
        data = {} if reason is None else {"rejection_reason": reason}
        return self.transition(quote, "reject", data, version=version)

    def send(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """approved → sent (refused once the quote expired); a sent quote is locked."""
        return self.transition(quote, "send", version=version)

    def accept(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """sent → accepted (refused when expired); the customer's lifetime value is recomputed."""
        return self.transition(quote, "accept", version=version)

    def decline(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """sent → declined."""
        return self.transition(quote, "decline", version=version)

    def revise(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """A sent quote → superseded; returns its next revision (a draft, same number)."""
        return self.transition(quote, "revise", version=version)

    def duplicate(self, quote: IdLike, *, version: Optional[int] = None) -> Record:
        """A copy of the quote as a new draft (new number); returns the copy."""
        return self.transition(quote, "duplicate", version=version)

    def make_job(self, quote: IdLike, data: Optional[Mapping[str, Any]] = None, **fields: Any) -> Record:
        """Makes a job from an accepted quote: for the quote's customer at the customer's address,
        with the quote's title, its total as ``budget``, its owner and team, under your overrides
        (``scheduled_on=``, ``window_start=``, ``kind=``, ``job_type=`` (its template's steps),
        ...; not the quote or the customer). Returns the job with its ``job_steps``. A quote that is
        not accepted raises :class:`ValidationError` with code ``not_accepted``, a quote that
        already has a job that is not cancelled ``already_has_job``; nothing is written."""
        merged = dict(data or {}, **fields)
        raw = self._db._native.job_from_quote(_id(quote), _dumps(merged))
        return self._db.entity("job")._full(raw)

    def conversion(self, by: Optional[str] = None) -> List[Dict[str, Any]]:
        """Quote conversion (sent → accepted, each quote once whatever its revisions) per owner,
        lead ``source`` or ``month`` (the default), over the quotes you may read: rows of ``key``, ``sent``,
        ``accepted``, ``declined``, ``open``, ``rate_percent`` and ``accepted_value`` (Decimals).
        ``pandas.DataFrame(db.quotes.conversion("owner"))`` makes a frame of it."""
        rows = _json.loads(self._db._native.quote_conversion(by))
        for r in rows:
            r["rate_percent"] = Decimal(r["rate_percent"])
            r["accepted_value"] = Decimal(r["accepted_value"])
        return rows

    def document(self, quote: IdLike) -> str:
        """The quote as the customer reads it: a self-contained, printable HTML page (tenant,
        customer, lines, totals, validity, revision), showing only what you may read."""
        return self._db._native.document(self.entity, _id(quote))


class Memberships(Collection):
    """Memberships: a client's paid periods. Each record carries its computed ``status``
    (``upcoming``, ``active``, ``expiring``, ``expired``, ``frozen``, ``cancelled``, as of today);
    ``list(q="status:expiring").to_pandas()`` is the renewals list."""


class Scoring:
    """Lead scoring: explanations, back-tests of draft models, re-scoring, publishing."""

    def __init__(self, db: "Database") -> None:
        self._db = db

    def explain(
        self, lead: IdLike, model: Optional[ModelLike] = None, *, as_of: Optional[_dt.datetime] = None
    ) -> Explanation:
        """Why a lead has its score (which rule gave how many points), as of ``as_of`` (now by
        default), under the published model or the draft ``model`` given."""
        raw = _json.loads(self._db._native.explain(_id(lead), _model_json(model), _micros(as_of)))
        return Explanation(
            score=raw["score"],
            tier=raw["tier"],
            temperature=raw["temperature"],
            reset=raw["reset"],
            contributions=[Contribution(**c) for c in raw["contributions"]],
        )

    def explain_top(
        self,
        n: int = 10,
        q: Optional[str] = None,
        *,
        model: Optional[ModelLike] = None,
        as_of: Optional[_dt.datetime] = None,
    ) -> Any:
        """The explanations of the ``n`` highest-scored leads matching ``q`` (their stored score,
        highest first), as one ``pandas.DataFrame``: a row per lead and contribution (lead_id,
        score, tier, temperature, group, rule, count, points, kind; a lead without contributions
        has one row with empty group and rule). ``lead_id`` joins the leads' frame
        (``top.merge(db.leads.list().to_pandas(), left_on="lead_id", right_on="id")``).
        ``model`` and ``as_of`` as for :meth:`explain`. Needs pandas."""
        import pandas as pd

        if n < 0:
            raise ValueError("n must be at least 0")
        rows: List[Dict[str, Any]] = []
        for lead in self._db.leads.list(q=q, order_by="-score", limit=n, page_size=max(1, min(n, 500))):
            why = self.explain(lead, model, as_of=as_of)
            head = {"lead_id": lead.id, "score": why.score, "tier": why.tier, "temperature": why.temperature}
            if not why.contributions:
                rows.append(dict(head))
            rows += [dict(head, **vars(c)) for c in why.contributions]
        columns = ["lead_id", "score", "tier", "temperature"] + _CONTRIBUTION_COLUMNS
        return pd.DataFrame(rows, columns=columns)

    def backtest(
        self, model: Optional[ModelLike] = None, *, since: Optional[Union[_dt.datetime, _dt.date]] = None
    ) -> BacktestReport:
        """Scores the closed (won or lost) leads created since ``since`` with ``model`` (when
        ``None``: the tenant's published model, see :meth:`published_model`) and reports AUC and
        win rate and lift per tier."""
        raw = _json.loads(self._db._native.backtest(_model_json(model), _micros(since)))
        return BacktestReport(
            model=raw["model"],
            evaluated=raw["evaluated"],
            won=raw["won"],
            lost=raw["lost"],
            auc=raw["auc"],
            tiers=[TierStats(**t) for t in raw["tiers"]],
        )

    def default_model(self) -> Dict[str, Any]:
        """The built-in default model's definition (a dict to copy and tweak)."""
        return _json.loads(_crm.Database.default_model())

    def published_model(self) -> Dict[str, Any]:
        """The definition of the model that scores the tenant's leads: the published
        ``scoring_model``, or the built-in default model when none is published (a dict to copy
        and tweak). Needs read access to scoring models."""
        return dict(_json.loads(self._db._native.published_model()))

    def rescore(self, *, progress: ProgressArg = None) -> RescoreReport:
        """Re-scores every lead as of now (scores decay); needs tenant-wide lead update rights.
        ``progress``: ``True`` for a tqdm bar, or a callable ``progress(done, total, unit)`` called
        after each batch with the leads scanned of the tenant's leads."""
        with _Progress(progress, "rescore") as cb:
            return RescoreReport(**_json.loads(self._db._native.rescore(cb)))

    def publish(self, model: Record) -> Tuple[Record, RescoreReport]:
        """Publishes a draft ``scoring_model`` record (retiring the current one) and re-scores every
        lead with it."""
        rec, rep = self._db._native.publish_model(str(model.id), model.version)
        return Record(*rec), RescoreReport(**_json.loads(rep))


# ---------------------------------------------------------------------------------------------
# progress of long work

#: What ``progress=`` takes: ``None`` (quiet), ``True`` (a tqdm bar; needs ``pip install tqdm``),
#: or a callable ``progress(done, total, unit)``.
ProgressArg = Union[None, bool, Callable[[int, Optional[int], str], Any]]


class _TqdmProgress:
    """A tqdm bar fed by the core's progress reports; closed when the operation returns."""

    def __init__(self, desc: str) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError("progress=True draws a tqdm bar: pip install tqdm (or pass a callable)") from None
        self._tqdm = tqdm
        self._desc = desc
        self._bar: Any = None

    def __call__(self, done: int, total: Optional[int], unit: str) -> None:
        if self._bar is None:
            byte = unit == "bytes"
            self._bar = self._tqdm(
                total=total, desc=self._desc, unit="B" if byte else " records", unit_scale=byte, unit_divisor=1024
            )
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Progress:
    """``with _Progress(progress, "import") as cb:`` gives the native layer its callback (or None)."""

    def __init__(self, progress: ProgressArg, desc: str) -> None:
        if progress is None or progress is False:
            self.callback: Any = None
        elif progress is True:
            self.callback = _TqdmProgress(desc)
        elif callable(progress):
            self.callback = progress
        else:
            raise TypeError("progress must be None, True (a tqdm bar) or a callable progress(done, total, unit)")

    def __enter__(self) -> Any:
        return self.callback

    def __exit__(self, *exc: Any) -> None:
        if isinstance(self.callback, _TqdmProgress):
            self.callback.close()


# ---------------------------------------------------------------------------------------------
# the database


_IMPORT_MODES = ("dry_run", "all_or_nothing", "valid_rows_only")
_UPSERT_MODES = ("upsert", "create_only", "update_only")


def _reject_if_refused(report: Any) -> None:
    """An all-or-nothing import with invalid rows wrote nothing: say so by raising."""
    if report.mode == "all_or_nothing" and report.invalid > 0 and not report.applied:
        raise ImportRejectedError(report)


def _number(v: Any) -> Any:
    """A JSON value of an aggregate or report: decimal strings (money, decimals, percents) as
    :class:`decimal.Decimal`, other strings (dates, timestamps) as they are."""
    if isinstance(v, str):
        try:
            return Decimal(v)
        except ArithmeticError:
            return v
    return v


def _date_or(v: Any) -> Any:
    if isinstance(v, str) and len(v) == 10:
        try:
            return _dt.date.fromisoformat(v)
        except ValueError:
            return v
    return v


class Reports:
    """The analytics reports over what the database's user may read, each computed by the core from
    store aggregates (``db.reports.funnel(q="source:referral")``). Each method returns a
    ``pandas.DataFrame`` of the report's rows with the rest of the report (totals, rates) in the
    frame's ``attrs``; money, percents and durations arrive as :class:`decimal.Decimal`, ids as
    strings. :meth:`raw` gives any report as the dict the HTTP API answers. ``q`` is a filter in
    the text filter language over what the report counts (leads; activities for
    :meth:`productivity`; the ``entity`` for :meth:`geo` and :meth:`lifetime_value`). Needs
    ``pandas``."""

    def __init__(self, db: "Database") -> None:
        self._db = db

    def raw(self, name: str, q: Optional[str] = None, **params: Any) -> Dict[str, Any]:
        """The report ``name`` (``funnel``, ``velocity``, ``forecast``, ``breakdown``,
        ``productivity``, ``cohort``, ``geo``, ``lifetime_value``) as a dict; ``params``: ``by``,
        ``tz``, ``entity``, ``cell``, ``bins`` as the report takes them (others raise
        :class:`ValidationError`)."""
        text = {k: str(v) for k, v in params.items() if v is not None}
        if q is not None:
            text["q"] = q
        return _json.loads(self._db._native.report(name, text))

    @staticmethod
    def _frame(rows: List[Dict[str, Any]], attrs: Dict[str, Any], columns: Optional[List[str]] = None) -> Any:
        import pandas as pd

        df = pd.DataFrame([{k: _number(v) if k not in _TEXT_COLUMNS else v for k, v in r.items()} for r in rows], columns=columns)
        df.attrs.update(attrs)
        return df

    def funnel(self, q: Optional[str] = None) -> Any:
        """One row per step of the pipeline (stage, label, kind, current, current_value, reached,
        conversion_percent, drop_off); ``attrs``: total, won, won_value, lost, other,
        win_rate_percent, overall_conversion_percent."""
        r = self.raw("funnel", q)
        return self._frame(r.pop("steps"), r)

    def velocity(self, q: Optional[str] = None) -> Any:
        """One row per stage (stays, average_days, median_days, in_stage_now); ``attrs``: won,
        lost, win_rate_percent, average_days_to_close, median_days_to_close."""
        r = self.raw("velocity", q)
        return self._frame(r.pop("stages"), r)

    def forecast(self, q: Optional[str] = None) -> Any:
        """One row per expected close month (open_leads, pipeline_value, weighted_value, won_leads,
        won_value); ``attrs``: probabilities and the totals."""
        r = self.raw("forecast", q)
        return self._frame(r.pop("months"), r)

    def breakdown(self, by: str = "source", q: Optional[str] = None) -> Any:
        """Conversion and revenue per ``source``, ``owner`` or ``team``: one row per key (leads,
        open, won, lost, conversion_percent, win_rate_percent, won_value, open_value)."""
        r = self.raw("breakdown", q, by=by)
        return self._frame(r.pop("rows"), r)

    def productivity(self, q: Optional[str] = None, *, tz: Optional[str] = None) -> Any:
        """Activities per user per week: one row per (user, week) with ``activities`` and one
        column per activity kind (0 where none); ``q`` filters activities. ``attrs["users"]``: a
        frame per user (activities, leads_touched, responses, response_average_hours,
        response_median_hours); ``attrs["response"]``: the team's response time to new leads."""
        import pandas as pd

        r = self.raw("productivity", q, tz=tz)
        kinds = sorted({k for w in r["weeks"] for k in w["by_kind"]})
        weeks = [
            dict({"user": w["user"], "week": _date_or(w["week"]), "activities": w["activities"]},
                 **{k: w["by_kind"].get(k, 0) for k in kinds})
            for w in r["weeks"]
        ]
        users = pd.DataFrame(
            [
                {
                    "user": u["user"],
                    "activities": u["activities"],
                    "leads_touched": u["leads_touched"],
                    "responses": u["response"]["leads"],
                    "response_average_hours": _number(u["response"]["average_hours"]),
                    "response_median_hours": _number(u["response"]["median_hours"]),
                }
                for u in r["users"]
            ],
            columns=["user", "activities", "leads_touched", "responses", "response_average_hours", "response_median_hours"],
        )
        response = {k: _number(v) for k, v in r["response"].items()}
        df = pd.DataFrame(weeks, columns=["user", "week", "activities"] + kinds)
        df.attrs.update({"users": users, "response": response, "activities": r["activities"]})
        return df

    def cohort(self, q: Optional[str] = None, *, tz: Optional[str] = None) -> Any:
        """Cohort retention in long form: one row per cohort (month of creation) and later month
        (cohort, leads, month, offset, won, active, won_percent, active_percent);
        ``df.pivot(index="cohort", columns="offset", values="active_percent")`` is the classic
        triangle. ``attrs["as_of"]``: the last month."""
        r = self.raw("cohort", q, tz=tz)
        rows = [dict({"cohort": c["cohort"], "leads": c["leads"]}, **m) for c in r["cohorts"] for m in c["months"]]
        columns = ["cohort", "leads", "month", "offset", "won", "active", "won_percent", "active_percent"]
        return self._frame(rows, {"as_of": r["as_of"]}, columns)

    def geo(self, q: Optional[str] = None, *, entity: str = "lead", cell: Any = None) -> Any:
        """Records with coordinates in a grid of ``cell`` degrees (default 0.1): one row per
        non-empty cell (row, column, south, west, north, east, center_lat, center_lon, records,
        value); ``attrs["geojson"]``: the GeoJSON FeatureCollection (``json.dumps`` it for a map)."""
        r = self.raw("geo", q, entity=entity, cell=cell)
        rows = []
        for f in r["features"]:
            ring = f["geometry"]["coordinates"][0]
            p = f["properties"]
            rows.append(
                {
                    "row": p["row"],
                    "column": p["column"],
                    "south": ring[0][1],
                    "west": ring[0][0],
                    "north": ring[2][1],
                    "east": ring[2][0],
                    "center_lat": p["center"][1],
                    "center_lon": p["center"][0],
                    "records": p["records"],
                    "value": p["value"],
                }
            )
        columns = ["row", "column", "south", "west", "north", "east", "center_lat", "center_lon", "records", "value"]
        return self._frame(rows, {"geojson": r, "entity": r["entity"], "cell": Decimal(r["cell"]), "records": r["records"]}, columns)

    def lifetime_value(self, q: Optional[str] = None, *, entity: str = "contact", bins: Optional[int] = None) -> Any:
        """The lifetime value distribution of contacts (or companies, ``entity="company"``): one row
        per histogram bin (from, to, customers, value); ``attrs``: customers, total, from_leads,
        from_quotes, average, minimum, maximum and ``percentiles`` (``{25: Decimal, 50: ...}``)."""
        r = self.raw("lifetime_value", q, entity=entity, bins=bins)
        hist = r.pop("histogram")
        attrs = {k: _number(v) if k != "entity" else v for k, v in r.items() if k != "percentiles"}
        attrs["percentiles"] = {p["percentile"]: Decimal(p["value"]) for p in r["percentiles"]}
        return self._frame(hist, attrs, ["from", "to", "customers", "value"])


_TEXT_COLUMNS = {"stage", "label", "kind", "key", "month", "cohort", "user", "week", "by"}


class Database:
    """An open CRM database, acting as one user of one tenant. Get one with :func:`open`.
    Thread-safe: share it between threads; calls release the GIL."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.leads = Leads(self, "lead")
        """Leads (:class:`Leads`)."""
        self.contacts = Collection(self, "contact")
        """Contacts."""
        self.companies = Collection(self, "company")
        """Companies."""
        self.activities = Activities(self, "activity")
        """Activities (:class:`Activities`)."""
        self.users = Collection(self, "user")
        """Users."""
        self.quotes = Quotes(self, "quote")
        """Quotes (:class:`Quotes`), with their lines and workflow."""
        self.plans = Collection(self, "plan")
        """Membership plans (name, ``duration_days``, price, ``visit_allowance``)."""
        self.memberships = Memberships(self, "membership")
        """Memberships (:class:`Memberships`), with their computed ``status``."""
        self.check_ins = Collection(self, "check_in")
        """Check-ins at the front desk (when, who, outcome, the membership status then)."""
        self.scoring = Scoring(self)
        """Scoring (:class:`Scoring`)."""
        self.reports = Reports(self)
        """The analytics reports as DataFrames (:class:`Reports`)."""

    @property
    def tenant(self) -> str:
        """The tenant (organization) id."""
        return str(self._native.tenant)

    @property
    def user_id(self) -> Optional[str]:
        """The acting user's id (``None``: the system, with the admin role)."""
        return _id_or_none(self._native.user_id)

    @property
    def role(self) -> str:
        """The acting user's role name."""
        return str(self._native.role)

    @property
    def path(self) -> str:
        """Where the database is."""
        return str(self._native.path)

    def entity(self, name: str) -> Collection:
        """The collection of any entity type by name (``location``, ``team``, ``pipeline``,
        ``scoring_model``, ...)."""
        kinds = {"lead": Leads, "activity": Activities, "quote": Quotes, "membership": Memberships}
        return kinds.get(name, Collection)(self, name)

    def routing_backtest(self, q: Optional[str] = None) -> Any:
        """How today's routing rules would have spread past leads, as a pandas DataFrame: the
        leads you may read that match ``q`` (the filter language; all when ``None``), oldest
        first, each routed as if it arrived now, from zero open leads and the first round-robin
        turn (nothing is written). Columns: ``lead_id``, ``created_at``, ``actual_owner_id``,
        ``routed_owner_id``, ``routed_team_id``, ``rule``, ``strategy`` (``None`` where no rule
        decides); ``df.groupby("routed_owner_id").size()`` is the load per owner. Needs pandas."""
        import pandas as pd

        rows = _json.loads(self._native.routing_backtest(q))
        columns = [
            "lead_id",
            "created_at",
            "actual_owner_id",
            "routed_owner_id",
            "routed_team_id",
            "rule",
            "strategy",
        ]
        for r in rows:
            r["created_at"] = _time(r["created_at"])
        return pd.DataFrame(rows, columns=columns)

    def import_csv(
        self,
        path: str,
        entity: str = "lead",
        *,
        dry_run: bool = True,
        mode: Optional[str] = None,
        upsert: bool = False,
        mapping: Optional[Mapping[str, str]] = None,
        progress: ProgressArg = None,
    ) -> ImportReport:
        """Imports a CSV file. ``dry_run=True`` (default) validates every row and writes nothing;
        ``dry_run=False`` writes all rows or none (``mode="valid_rows_only"`` writes the valid
        ones). ``upsert`` updates records whose ``external_id`` matches; ``mapping``: CSV header ->
        field path (``""`` ignores the column), for the columns whose headers do not match field
        names by themselves (the others still do). Returns the per-row, per-field report; an
        all-or-nothing import that finds invalid rows writes nothing and raises
        :class:`ImportRejectedError` carrying it. ``progress``: ``True`` for a tqdm bar, or a
        callable ``progress(done, total, unit)`` called after each batch of rows with the bytes of
        the file read (``unit == "bytes"``), the last call at the file's size."""
        if mode is None:
            mode = "dry_run" if dry_run else "all_or_nothing"
        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode must be one of {_IMPORT_MODES}")
        with _Progress(progress, "import") as cb:
            raw = _json.loads(
                self._native.import_csv(entity, str(path), mode, upsert, None if mapping is None else dict(mapping), cb)
            )
        raw["errors"] = [
            RowError(row=e["row"], line=e["line"], errors=[FieldError(**f) for f in e["errors"]])
            for e in raw["errors"]
        ]
        report = ImportReport(**raw)
        _reject_if_refused(report)
        return report

    def members(self, status: Optional[str] = None, *, order_by: Optional[str] = None) -> RecordList:
        """The centre's clients with their membership standing (the contact's computed
        ``membership``: ``none``, ``upcoming``, ``active``, ``expiring``, ``expired``, ``frozen``,
        ``cancelled``), optionally only those with ``status``: ``db.members("expiring").to_pandas()``."""
        return self.contacts.list(q=None if status is None else f"membership:{status}", order_by=order_by)

    def check_in(
        self,
        card: Optional[str] = None,
        *,
        contact: Optional[IdLike] = None,
        location: Optional[IdLike] = None,
    ) -> CheckInAnswer:
        """Checks a client in by ``card`` number or ``contact`` (id or record). The tenant's policy
        decides; a refusal is an answer (``outcome == "refused"`` with its ``reason``), not an error.
        An unknown card raises :class:`NotFoundError`."""
        raw = _json.loads(
            self._native.check_in(
                card, None if contact is None else _id(contact), None if location is None else _id(location)
            )
        )
        return CheckInAnswer(
            outcome=raw["outcome"],
            reason=raw.get("reason"),
            contact_id=str(raw["contact_id"]),
            name=raw["name"],
            membership_id=_id_or_none(raw.get("membership_id")),
            status=raw["status"],
            ends_on=None if raw.get("ends_on") is None else _dt.date.fromisoformat(raw["ends_on"]),
            visits_left=raw.get("visits_left"),
            check_in_id=_id_or_none(raw.get("check_in_id")),
            at=_time(raw["at"]),  # type: ignore[arg-type]
        )

    def membership_numbers(self, as_of: Optional[_dt.date] = None) -> Dict[str, Any]:
        """The owner's numbers as of a day (default today): ``active_members``, ``expiring_7_days``,
        ``expiring_30_days``, ``months`` (rows of ``month``, ``renewals``, ``churn``),
        ``check_ins_per_day`` (rows of ``day``, ``check_ins``) and ``check_ins_by_hour`` (7 rows,
        Monday first, of 24 counts, UTC). The row lists make DataFrames as they are:
        ``pandas.DataFrame(n["months"])``."""
        return dict(_json.loads(self._native.membership_numbers(None if as_of is None else as_of.isoformat())))

    def field_work_report(self, start: _dt.date, end: _dt.date) -> Dict[str, Any]:
        """How the jobs scheduled from ``start`` to ``end`` (inclusive) that you may read went:
        ``jobs``, ``completed``, ``cancelled``, ``on_time`` and ``on_time_rate`` (percent, a
        ``Decimal``), and ``steps``: per step name ``done``, ``skipped``, ``average_minutes`` and
        ``median_minutes``. ``pandas.DataFrame(r["steps"])`` is the duration per step type."""
        raw = _json.loads(self._native.field_work_report(start.isoformat(), end.isoformat()))
        raw["on_time_rate"] = None if raw["on_time_rate"] is None else Decimal(raw["on_time_rate"])
        for s in raw["steps"]:
            s["average_minutes"] = None if s["average_minutes"] is None else float(s["average_minutes"])
            s["median_minutes"] = None if s["median_minutes"] is None else float(s["median_minutes"])
        return dict(raw)

    def my_day(self, date: Optional[_dt.date] = None) -> List[Dict[str, Any]]:
        """Your crew assignments of a day (default the tenant's today), in time order: each a dict
        with ``starts_at``, ``ends_at``, the ``assignment``, the ``job`` and its ``open_steps``
        (records as dicts)."""
        return list(_json.loads(self._native.my_day(None if date is None else date.isoformat())))

    def import_members(self, path: str, *, dry_run: bool = True, mode: Optional[str] = None) -> PosImportReport:
        """Imports the point of sale's client list (one row per client: card number, name, email,
        phone, language, notes, plan, start and end dates): clients are created or updated by card
        number with their current membership. ``dry_run``/``mode`` as for :meth:`import_csv`."""
        if mode is None:
            mode = "dry_run" if dry_run else "all_or_nothing"
        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode must be one of {_IMPORT_MODES}")
        raw = _json.loads(self._native.import_point_of_sale(str(path), mode))
        raw["errors"] = [
            RowError(row=e["row"], line=e["line"], errors=[FieldError(**f) for f in e["errors"]])
            for e in raw["errors"]
        ]
        report = PosImportReport(**raw)
        _reject_if_refused(report)
        return report

    def export_csv(
        self,
        path: str,
        entity: str = "lead",
        *,
        q: Optional[str] = None,
        fields: Optional[Sequence[str]] = None,
        order_by: Optional[str] = None,
        raw: bool = False,
        progress: ProgressArg = None,
    ) -> int:
        """Exports the records matching ``q`` to a CSV file (only fields and rows the user may
        export; formula-safe unless ``raw``). Returns the number of rows written. ``progress``:
        ``True`` for a tqdm bar, or a callable ``progress(done, total, unit)`` called after each
        page with the rows written of the rows matching."""
        with _Progress(progress, "export") as cb:
            return int(
                self._native.export_csv(
                    entity, str(path), q, None if fields is None else list(fields), order_by, raw, cb
                )
            )

    def audit(
        self,
        entity: Optional[str] = None,
        record: Optional[IdLike] = None,
        *,
        after: int = 0,
        limit: int = 100,
    ) -> List[AuditEntry]:
        """Audit entries, oldest first: of one ``record``, of one ``entity`` type, or all the user
        may read; ``after``: a sequence number to continue from."""
        if isinstance(record, Record) and entity is None:
            entity = record.entity
        raw = _json.loads(self._native.audit(entity, None if record is None else _id(record), after, limit))
        return [
            AuditEntry(
                seq=e["seq"],
                id=str(e["id"]),
                at=_time(e["at"]),  # type: ignore[arg-type]
                actor=_id_or_none(e.get("actor")),
                action=e["action"],
                entity=e["entity"],
                entity_id=_id_or_none(e.get("entity_id")),
                changes=[FieldChange(**c) for c in e["changes"]],
                hash=e["hash"],
                prev_hash=e["prev_hash"],
            )
            for e in raw
        ]

    def events(self, since: int = 0, *, limit: int = 100) -> List[Event]:
        """Outbox events with a sequence number above ``since`` (redacted for the user)."""
        return [
            Event(
                seq=e["seq"],
                id=str(e["id"]),
                at=_time(e["at"]),  # type: ignore[arg-type]
                kind=e["kind"],
                entity=e["entity"],
                entity_id=_id_or_none(e.get("entity_id")),
                payload=e["payload"],
            )
            for e in _json.loads(self._native.events(since, limit))
        ]

    def pipeline(self) -> List[StageSummary]:
        """Leads per pipeline stage with the sum of their estimated values."""
        return [
            StageSummary(
                key=s["key"],
                label=s["label"],
                kind=s["kind"],
                count=s["count"],
                value=None if s.get("value") is None else Decimal(s["value"]),
            )
            for s in _json.loads(self._native.pipeline_summary())
        ]

    def integrity_check(self) -> Dict[str, Any]:
        """Rows that break today's rules and the audit chain's state (the core's report as a dict)."""
        return dict(_json.loads(self._native.integrity_check()))

    def __repr__(self) -> str:
        return f"<crm.Database {self.path!r} tenant={self._native.tenant} role={self.role}>"


def open(
    path_or_url: str,
    as_user: Optional[str] = None,
    *,
    tenant: Optional[IdLike] = None,
    create: bool = False,
    organization: Optional[str] = None,
    blob_dir: Optional[str] = None,
    blob_url: Optional[str] = None,
) -> Database:
    """Opens a CRM database (a SQLite file path, or a PostgreSQL URL in builds with PostgreSQL
    support; otherwise such a URL raises :class:`StorageError`) as the user
    with email ``as_user`` (the system, with the admin role, when ``None``). ``tenant`` is needed
    only when the database holds several tenants. A SQLite file must exist
    (:class:`FileNotFoundError` otherwise, and nothing is created) unless ``create=True``, which
    makes a new database with an organization named ``organization``.

    Attachment bytes live where ``crm serve`` keeps them: in the S3-compatible bucket ``blob_url``
    (``"s3://bucket/prefix"``, configured by the ``AWS_*`` environment: ``AWS_ENDPOINT``,
    ``AWS_REGION``, credentials), else in the directory ``blob_dir``, else next to the database
    (``crm.db`` -> ``crm.blobs``); giving both raises :class:`ValidationError` on ``blob_url``."""
    native = _crm.Database.open(
        str(path_or_url),
        as_user,
        None if tenant is None else _id(tenant),
        create,
        organization,
        None if blob_dir is None else str(blob_dir),
        blob_url,
    )
    return Database(native)


def load_demo(
    path: str,
    *,
    leads: int = 3000,
    contacts: Optional[int] = None,
    vertical: str = "roofing",
    clients: int = 2000,
    progress: ProgressArg = None,
) -> Dict[str, Any]:
    """Creates a demo tenant in the SQLite file at ``path`` unless it already has a tenant: the
    roofing company (users of every role, contacts, scored leads with activities), or with
    ``vertical="esports"`` the esports centre (plans, ``clients`` clients with card numbers from
    500001 and memberships in every status, 90 days of check-ins), or with ``vertical="moving"`` the
    moving company (quotes in every state, a crew of five, journeys of ordered steps from three days
    ago to four days ahead, a weekly crew briefing and daily surveys). Returns ``{"tenant": id,
    "users": [(role, id, email), ...]}`` (ids as strings; no users when nothing was loaded). The default
    roofing demo takes about half a minute: ``progress=True`` shows a tqdm bar, or pass a callable
    ``progress(done, total, unit)`` (contacts and leads created of the planned number; roofing
    only)."""
    with _Progress(progress, "demo") as cb:
        raw = _json.loads(_crm.load_demo(str(path), leads, contacts, 3, vertical, clients, cb))
    return {
        "tenant": str(raw["tenant"]),
        "users": [(r, str(i), e) for r, i, e in raw["users"]],
    }
