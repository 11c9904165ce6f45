"""Schemathesis hooks for `.ci/server.sh`.

- Keeps an admin session alive: signs in once (credentials from the environment that
  `.ci/server.sh` sets) and renews the access token with the refresh token before it expires, so a
  run longer than the token's lifetime keeps testing as the admin instead of collecting 401s.
- Gives every write its own `Idempotency-Key`, so two generated requests never replay each other.
- Excuses a few NAMED kinds of refusal of document-valid input, each because the document cannot
  express the rule (see EXCUSED_REFUSALS and EXCUSED_FIELD_ERRORS below). Nothing broader is excused: any other refusal of valid
  input, any server error, undocumented status, schema violation or accepted invalid request fails.
"""

import json
import os
import re
import threading
import time
import uuid

import requests
import schemathesis

BASE = os.environ["CRM_ST_BASE_URL"]
_lock = threading.Lock()
_session = {"access": None, "refresh": None, "renew_at": 0.0}


def _store(tokens):
    _session["access"] = tokens["access_token"]
    _session["refresh"] = tokens["refresh_token"]
    # Renew at half the lifetime: a slow request started now still carries a valid token.
    _session["renew_at"] = time.monotonic() + tokens["expires_in"] / 2


def _access_token():
    with _lock:
        if _session["access"] is None:
            r = requests.post(
                f"{BASE}/api/v1/auth/login",
                json={
                    "organization": os.environ["CRM_ST_ORG"],
                    "email": os.environ["CRM_ST_EMAIL"],
                    "password": os.environ["CRM_ST_PASSWORD"],
                },
                timeout=30,
            )
            r.raise_for_status()
            _store(r.json())
        elif time.monotonic() >= _session["renew_at"]:
            r = requests.post(
                f"{BASE}/api/v1/auth/refresh", json={"refresh_token": _session["refresh"]}, timeout=30
            )
            r.raise_for_status()
            _store(r.json())
        return _session["access"]


@schemathesis.auth(refresh_interval=None, retry_on=[])
class AdminSession:
    """The admin's bearer token on every request. A schemathesis auth provider (not a header set
    by a hook), so its `ignored_auth` check can still remove or spoil it to see the refusal."""

    def get(self, case, ctx):
        return _access_token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# What the document allows as an Idempotency-Key (1 to 255 visible ASCII characters).
_VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """A unique Idempotency-Key on every write. Generated keys repeat ("0", "a"), and the server
    rightly answers a reused key with another request as 422 `idempotency_key_reused`; a key that
    breaks the document (a negative test of the header) is left as generated."""
    if case.method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
        if case.headers is None:
            case.headers = {}
        key = case.headers.get("Idempotency-Key")
        if key is None or (isinstance(key, str) and _VALID_KEY.match(key)):
            case.headers["Idempotency-Key"] = str(uuid.uuid4())


def _problem(response):
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors(problem):
    return [e for e in problem.get("errors") or [] if isinstance(e, dict)]


def _field(e):
    """The field an error names, without a child prefix (`membership_freezes[1].ends_on`)."""
    path = e.get("path", "")
    return path if path.startswith("custom.") else path.split(".")[-1]


def _sent(case, e):
    """The JSON value the request sent at the error's path (`field`, or a child's
    `quote_lines[2].quantity`), or None."""
    node = case.body if isinstance(case.body, dict) else {}
    for part in re.split(r"\.", e.get("path", "")):
        m = re.fullmatch(r"(.+)\[(\d+)\]", part)
        key, index = (m.group(1), int(m.group(2))) if m else (part, None)
        node = node.get(key) if isinstance(node, dict) else None
        if index is not None:
            node = node[index] if isinstance(node, list) and index < len(node) else None
    return node


_CONFIG_MARK = "Structured configuration"
_config_fields = None


def _configuration_fields():
    """Names of the properties the served document marks as structured configuration."""
    global _config_fields
    if _config_fields is None:
        doc = requests.get(f"{BASE}/api/v1/openapi.json", timeout=30).json()
        names = set()

        def walk(node):
            if isinstance(node, dict):
                for name, prop in (node.get("properties") or {}).items():
                    if isinstance(prop, dict) and _CONFIG_MARK in prop.get("description", ""):
                        names.add(name)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(doc.get("components", {}))
        _config_fields = names
    return _config_fields


# Field-error codes that judge a value against stored records, not against its own shape.
_STORED_STATE = {
    "duplicate",  # a unique value another record holds
    "in_use",  # a record others still refer to
    "unknown_reference",  # an id (or role name) that names no record of the tenant
    "invalid_transition",  # a workflow step the record's current state does not allow
    "locked",  # a record in a state that allows no edits (published model, sent quote)
    "last_admin",  # the write would leave the tenant without an active admin
    "membership_gap",  # memberships of a client must follow each other
    "pending_freeze",  # one freeze that has not ended per membership
    "self_approval",  # the submitter of a quote may not approve it
    "approval_level",  # the approver's role is below the quote's approval level
    "overlap",  # a user already booked for those hours (a crew assignment, an appointment)
    "no_crew",  # a job starts with a stored crew
    "open_steps",  # a job completes with its stored required steps done
    "unsigned",  # a job that needs the customer's signature completes with it
    "not_accepted",  # a job is made from a stored quote that is accepted
    "already_has_job",  # a quote has at most one stored job that is not cancelled
}

# Whole refusals excused because JSON Schema cannot state the rule: (name, predicate over the
# operation path and the problem document).
EXCUSED_REFUSALS = [
    (
        # `q` and `filter` are small query languages (`score>=60 status:new`, a JSON filter tree),
        # parsed by the core against the entity's fields, and `cursor` is an opaque token; the
        # document gives their type and length, not their grammar. Limits the core counts in
        # bytes or terms (not characters) are the same grammar's.
        "filter and cursor grammars",
        lambda path, p: p.get("code") == "invalid_query"
        # The sync pull's cursor: an opaque token the server issued (crm_core::sync::INVALID_CURSOR).
        or any(e.get("code") == "invalid_cursor" for e in p.get("errors") or [])
        or (
            p.get("code") == "limit_exceeded"
            and p.get("what") in ("query length", "filter terms", "filter nodes", "filter depth", "sort keys")
        ),
    ),
    (
        # An attachment's size limit is the tenant's setting (`attachment_max_bytes`, stored
        # state), enforced on a declared `size` and while the file streams (a form's, or a
        # device's bytes sent ahead of its push).
        "attachment size limit",
        lambda path, p: ("/attachments" in path or path.startswith("/api/v1/sync/blobs/"))
        and p.get("code") == "limit_exceeded"
        and p.get("what") == "attachment bytes",
    ),
    (
        # JSON Schema counts 3.0 as an integer; the typed decoding of child operations wants a
        # version spelt as an integer.
        "integral floats (child operations)",
        lambda path, p: p.get("code") == "bad_request"
        and re.search(r"invalid type: floating point `-?[0-9]+\.0`, expected u64", p.get("detail", "")) is not None,
    ),
]

# Field errors excused because JSON Schema cannot state the rule: (name, predicate over the
# operation path, the case and one field error). A validation refusal is excused only when
# every one of its field errors is.
EXCUSED_FIELD_ERRORS = [
    (
        # Each report takes its own parameters (`by` the breakdown, `tz` productivity and cohorts,
        # `entity` and `cell` the map, `entity` and `bins` lifetime value): a rule between the path's
        # report name and a query parameter, which one operation's parameter list cannot state.
        "report parameters",
        lambda path, case, e: "/analytics/" in path
        and (
            e.get("path") == "by"
            or (e.get("path") in ("tz", "entity", "cell", "bins") and e.get("code") == "unknown_field")
            # lifetime value is per customer: of the documented entities it takes contact and company
            or (e.get("path") == "entity" and e.get("code") == "invalid_option")
        ),
    ),
    (
        # Uniqueness, references, workflow states, the last admin: rules over what is stored.
        "rules over stored state",
        lambda path, case, e: e.get("code") in _STORED_STATE,
    ),
    (
        # A lead's `status` is a stage of its pipeline (stored configuration, per tenant), a
        # quote is submitted only with at least one stored line, and a job is dispatched only with
        # a stored scheduled day (the transition's body does not carry it).
        "stored pipeline stages, quote lines and a job's day",
        lambda path, case, e: (_field(e), e.get("code")) in (("status", "invalid_option"), ("line_count", "required"))
        or (path.endswith("/dispatch") and (_field(e), e.get("code")) == ("scheduled_on", "required")),
    ),
    (
        # An organization's `timezone` and an appointment's `time_zone` are names of the IANA zone
        # database the core bundles (`America/Denver`); the document types them as text rather
        # than listing ~600 names.
        "IANA time-zone names",
        lambda path, case, e: (_field(e), e.get("code")) in (("timezone", "invalid_option"), ("time_zone", "invalid_option")),
    ),
    (
        # An appointment's `recurrence` is an RFC 5545 RRULE value (`FREQ=WEEKLY;COUNT=10`), a
        # grammar of its own; the document types it as text.
        "RFC 5545 recurrence rules",
        lambda path, case, e: (_field(e), e.get("code")) == ("recurrence", "invalid_format"),
    ),
    (
        # A routing rule's `condition` is a query in the text filter language
        # (`source:referral score>=60`), a grammar of its own; the document types it as text.
        "routing rule conditions",
        lambda path, case, e: "/routing_rules" in path and (_field(e), e.get("code")) == ("condition", "invalid_format"),
    ),
    (
        # An appointment list's range ends after it starts and spans at most 400 days: a rule
        # between two query parameters.
        "appointment list ranges",
        lambda path, case, e: path.endswith("/calendar/appointments") and _field(e) == "to",
    ),
    (
        # An attachment is judged against its content, a part of the form JSON Schema cannot
        # look into: a declared size or SHA-256 that differs from the content's (`mismatch`), a
        # photo or signature that is no raster image, or a claimed image type the bytes are not
        # (`invalid_format` on `media_type`); and between parts: a signature names its signer and
        # nothing else has one (`signer_name`), and the file name comes from the `file_name` part
        # or the file part's own name (`required` on `file_name`).
        "attachment content and form parts",
        lambda path, case, e: "/attachments" in path
        and (
            e.get("code") == "mismatch"
            or (_field(e), e.get("code")) in (("media_type", "invalid_format"), ("file_name", "required"))
            or _field(e) == "signer_name"
        ),
    ),
    (
        # A device's attachment bytes are kept under their SHA-256, named in the path: bytes whose
        # hash is another (`mismatch` on `sha256`) are a relation between the path and the body.
        "sync blob named by its content",
        lambda path, case, e: path.startswith("/api/v1/sync/blobs/") and (_field(e), e.get("code")) == ("sha256", "mismatch"),
    ),
    (
        # Tenant-defined custom fields (`custom.KEY`) exist per tenant, in stored state.
        "tenant custom fields",
        lambda path, case, e: e.get("path", "").startswith("custom."),
    ),
    (
        # Dates judged against today (a birth date in the future, an expired quote, an API key
        # that would expire in the past).
        "the clock",
        lambda path, case, e: e.get("code") in ("in_future", "expired")
        or (e.get("code") == "invalid_date" and "in the future" in e.get("message", "")),
    ),
    (
        # Rules that relate fields of one record, which JSON Schema cannot compare: a membership
        # ends on or after it starts, an activity belongs to a lead, a contact or a company, a
        # lead needs a name, a company, an email or a phone, a discount is a percent or an
        # amount but not both, a routing rule's strategy needs its own parameter (a user, a
        # team or territories).
        "rules between fields",
        lambda path, case, e: (_field(e), e.get("code"))
        in (
            ("ends_on", "too_small"),
            ("lead_id", "required"),
            ("first_name", "required"),
            ("discount_amount", "invalid_format"),
            # a line's (a quote's) discount is at most what the line (its lines) is worth
            ("discount_amount", "too_large"),
            # a quote or a job is for a contact or a company; time ranges end after they start
            ("contact_id", "required"),
            ("window_end", "too_small"),
            ("ends_at", "too_small"),
            # a follow-up's owner comes with its time
            ("next_followup_at", "required"),
            # a step activity carries what its kind records (a note's text, a measurement's name
            # and amount, a checklist's items)
            ("note", "required"),
            ("measure", "required"),
            ("amount", "required"),
            ("checklist", "required"),
            # a cancellation (of a job, an appointment) and a skipped step say why: in the body or
            # already on the record (the guard reads the record as the transition leaves it)
            ("cancel_reason", "required"),
            ("skip_reason", "required"),
        )
        # an appointment's attendee is a user or a contact, not both
        or ("appointment" in path and (_field(e), e.get("code")) in (("user_id", "required"), ("contact_id", "invalid_format")))
        or ("/routing_rules" in path and _field(e) in ("user_id", "team_id", "territories") and e.get("code") == "required"),
    ),
    (
        # Structured configuration (scoring model definitions, pipeline stages, role grants,
        # custom field specs, quote approval rules) is checked by the entity's rules; the
        # document types it as JSON. Which fields these are is read from the document.
        "JSON configuration content",
        lambda path, case, e: e.get("path", "").split(".")[0].split("[")[0] in _configuration_fields(),
    ),
    (
        # An import's `mapping` names headers of the uploaded CSV and `upsert` needs the key
        # column mapped: rules between two parts of a form, one of them a CSV file.
        "import mapping against the CSV",
        lambda path, case, e: path.endswith("/import") and e.get("path", "").split(".")[0] in ("mapping", "csv"),
    ),
    (
        # Exact decimals: the document gives the number form its bounds but cannot bound a
        # decimal string (`"250.5"`) or limit a number to 6 decimals.
        "decimal strings and precision",
        lambda path, case, e: (e.get("code") in ("too_large", "too_small") and isinstance(_sent(case, e), str))
        or (e.get("code") == "invalid_type" and e.get("message", "").startswith("expected a decimal"))
        # Money: its range (a 64-bit count of cents) and, for a JSON number, at most 2 decimals
        # judged on its shortest decimal form.
        or e.get("code") == "invalid_money",
    ),
    (
        # JSON Schema counts 5.0 as an integer; the core's typed decoding wants a whole number
        # spelt as one.
        "integral floats",
        lambda path, case, e: e.get("code") == "invalid_type"
        and e.get("message") == "expected a whole number"
        and isinstance(_sent(case, e), float),
    ),
]


def _excused(case, problem):
    path = case.operation.path
    if any(pred(path, problem) for _name, pred in EXCUSED_REFUSALS):
        return True
    errors = _errors(problem)
    return (
        problem.get("code") == "validation"
        and bool(errors)
        and all(any(pred(path, case, e) for _name, pred in EXCUSED_FIELD_ERRORS) for e in errors)
    )


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure but a refusal of valid data of one of the excused kinds."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    return not _excused(case, _problem(response))
