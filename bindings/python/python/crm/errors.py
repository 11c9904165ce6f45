"""The exception hierarchy. Every error the engine reports is a :class:`CrmError` whose ``code`` is
the core's stable code (``validation``, ``not_found``, ``forbidden``, ``conflict``,
``limit_exceeded``, ``invalid_query``, and for failures underneath: ``unavailable``, ``corrupt``,
``internal``, all three :class:`StorageError`); match on classes or codes, not on messages.
``details`` is the core's description of the error's kind, as is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

__all__ = [
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


@dataclass(frozen=True)
class FieldError:
    """One failing input field: where (``path``, e.g. ``email`` or ``custom.roof_type``), which rule
    (``code``: ``required``, ``invalid_email``, ``too_long``, ...) and a human message."""

    path: str
    code: str
    message: str


class CrmError(Exception):
    """Base class of every engine error. ``code`` is the core's stable error code; ``details`` holds
    the kind-specific data as a dict."""

    code: str = "crm_error"

    def __init__(self, message: str, details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: Dict[str, Any] = dict(details or {})


class ValidationError(CrmError, ValueError):
    """Input broke one or more rules. ``fields`` lists every failing field at once."""

    code = "validation"

    @property
    def fields(self) -> List[FieldError]:
        """The failing fields, each with its path, stable code and message."""
        return [FieldError(f["path"], f["code"], f["message"]) for f in self.details.get("errors", [])]


class NotFoundError(CrmError, LookupError):
    """No such record for this user: missing, in another tenant, or outside the user's read scope
    (deliberately indistinguishable)."""

    code = "not_found"

    @property
    def entity(self) -> str:
        """The entity type looked up."""
        return str(self.details.get("entity", ""))


class ForbiddenError(CrmError, PermissionError):
    """The user may not take ``action`` on ``entity``, or may not read/write the named ``fields``."""

    code = "forbidden"

    @property
    def action(self) -> str:
        """The refused action (``read``, ``update``, ``export``, ...)."""
        return str(self.details.get("action", ""))

    @property
    def entity(self) -> str:
        """The entity type."""
        return str(self.details.get("entity", ""))

    @property
    def fields(self) -> List[str]:
        """The fields the user may not read or write (empty when the whole action is refused)."""
        return list(self.details.get("fields", []))


class ConflictError(CrmError):
    """The record changed since it was read (optimistic concurrency): re-read and retry."""

    code = "conflict"

    @property
    def expected(self) -> int:
        """The version the caller expected."""
        return int(self.details.get("expected", 0))

    @property
    def actual(self) -> int:
        """The record's current version."""
        return int(self.details.get("actual", 0))


class LimitExceededError(CrmError):
    """A size, count or rate limit was exceeded."""

    code = "limit_exceeded"


class InvalidQueryError(CrmError, ValueError):
    """A filter, sort or cursor could not be understood: a syntax error in the text query, a field
    the entity does not have, a value that does not read as the field's type, or one that is not
    among an enum's options or the pipeline's stages (the message names the allowed ones). For the
    text query ``q``, ``position`` is where the problem is, as an index into ``q``
    (``q[err.position:]`` starts at the bad field or value); 0 for typed filters, whose message
    names the bad key (``filter.and[1].cmp.op: gte is not one of: eq, ne, ...``)."""

    code = "invalid_query"

    @property
    def position(self) -> int:
        """Index (in characters) of the problem in the text query."""
        return int(self.details.get("position", 0))


class ImportRejectedError(ValidationError):
    """An import that writes all rows or none (``dry_run=False``), or an all-or-nothing upsert,
    found invalid rows, so it wrote nothing. ``report`` is the full import report; ``fields`` lists the listed rows' field errors
    with paths like ``rows[3].email`` (row numbers count data rows from 1)."""

    def __init__(self, report: Any) -> None:
        retry = "all_or_nothing=False" if hasattr(report, "all_or_nothing") else "mode='valid_rows_only'"
        super().__init__(
            f"{report.invalid} of {report.rows} rows are invalid: nothing was imported "
            f"(see .report, or run again with {retry})",
            {
                "errors": [
                    {"path": f"rows[{r.row}].{f.path}", "code": f.code, "message": f.message}
                    for r in report.errors
                    for f in r.errors
                ]
            },
        )
        self.report = report


class StorageError(CrmError):
    """The storage underneath failed: base class of :class:`UnavailableError`,
    :class:`CorruptError`, :class:`DiskFullError` and :class:`InternalError`. The message never
    contains SQL or row data."""

    code = "storage"


class UnavailableError(StorageError):
    """The database is busy or out of reach (locked by another process, no free connection): the
    same call may succeed after ``retry_after`` seconds."""

    code = "unavailable"

    @property
    def retry_after(self) -> int:
        """Seconds to wait before trying again."""
        return int(self.details.get("retry_after", 1))


class CorruptError(StorageError):
    """The database cannot be read: a damaged file, one written by a newer version, or a stored
    value that does not decode. Retrying does not help."""

    code = "corrupt"


class DiskFullError(StorageError):
    """The database's disk (or its size limit) is full: the write was rolled back and nothing of it
    was stored. Retrying helps once space is freed."""

    code = "disk_full"


class InternalError(StorageError):
    """Any other failure underneath (a statement the database rejected, an I/O error)."""

    code = "internal"


_BY_CODE = {
    c.code: c
    for c in (
        ValidationError,
        NotFoundError,
        ForbiddenError,
        ConflictError,
        LimitExceededError,
        InvalidQueryError,
        StorageError,
        UnavailableError,
        CorruptError,
        DiskFullError,
        InternalError,
    )
}


def _from_core(code: str, message: str, details: str) -> CrmError:
    """Builds the exception for a core error (called by the native module)."""
    cls = _BY_CODE.get(code, CrmError)
    err = cls(message, json.loads(details))
    if cls is CrmError:
        err.code = code
    return err
