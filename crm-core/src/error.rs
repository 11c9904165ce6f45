//! The one error type every frontend maps: few kinds, each with a stable string code.

use serde::Serialize;

/// A problem with one input field: where (`path`), which rule (`code`), and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Dotted path of the field: `email`, `custom.roof_type`, `stages[2].key`.
    pub path: String,
    /// Stable machine code of the broken rule (see [`codes`]).
    pub code: String,
    /// Human-readable explanation; wording may change between releases, the code does not.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Stable field-error codes. Adapters and clients may match on these strings.
pub mod codes {
    pub const REQUIRED: &str = "required";
    pub const TOO_LONG: &str = "too_long";
    pub const TOO_SHORT: &str = "too_short";
    pub const TOO_SMALL: &str = "too_small";
    pub const TOO_LARGE: &str = "too_large";
    /// A document past its validity date (a quote cannot be sent or accepted).
    pub const EXPIRED: &str = "expired";
    /// The submitter of a document may not approve or reject it.
    pub const SELF_APPROVAL: &str = "self_approval";
    /// The approver's role is below the approval level the document needs.
    pub const APPROVAL_LEVEL: &str = "approval_level";
    pub const INVALID_TYPE: &str = "invalid_type";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const INVALID_PHONE: &str = "invalid_phone";
    pub const INVALID_URL: &str = "invalid_url";
    pub const INVALID_DATE: &str = "invalid_date";
    pub const INVALID_MONEY: &str = "invalid_money";
    pub const INVALID_OPTION: &str = "invalid_option";
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// A text value holds a control character other than tab, line feed or carriage return.
    pub const CONTROL_CHARACTER: &str = "control_character";
    pub const IN_FUTURE: &str = "in_future";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const READ_ONLY: &str = "read_only";
    pub const UNKNOWN_REFERENCE: &str = "unknown_reference";
    /// A reference to a deactivated user where an active one is needed (a routing rule's user).
    pub const INACTIVE_USER: &str = "inactive_user";
    pub const DUPLICATE: &str = "duplicate";
    pub const IN_USE: &str = "in_use";
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    /// The record is in a workflow state that allows no edits (a published scoring model, a sent quote).
    pub const LOCKED: &str = "locked";
    /// The write would leave the tenant without an active admin.
    pub const LAST_ADMIN: &str = "last_admin";
    /// A webhook URL names an address that is not a public internet address (loopback, private,
    /// link-local, metadata, ...; see [`crate::address`]).
    pub const ADDRESS_NOT_ALLOWED: &str = "address_not_allowed";
    pub const NOT_NULL: &str = "not_null";
    /// A client's memberships that have not ended would leave a gap between them (the next one
    /// continues from the current one's end).
    pub const MEMBERSHIP_GAP: &str = "membership_gap";
    /// A membership (or a client) would have more than one freeze that has not ended.
    pub const PENDING_FREEZE: &str = "pending_freeze";
    /// A time range overlaps another of the same key (a crew member booked twice at once).
    pub const OVERLAP: &str = "overlap";
    /// A job cannot start without a crew.
    pub const NO_CREW: &str = "no_crew";
    /// A job cannot complete while a required step is open.
    pub const OPEN_STEPS: &str = "open_steps";
    /// A job whose type requires the customer's signature cannot complete without it.
    pub const UNSIGNED: &str = "unsigned";
    /// A declared size or hash of an attachment differs from its content's.
    pub const MISMATCH: &str = "mismatch";
    /// A job is made only from an accepted quote.
    pub const NOT_ACCEPTED: &str = "not_accepted";
    /// A quote has at most one job that is not cancelled.
    pub const ALREADY_HAS_JOB: &str = "already_has_job";
    /// A create-only upsert row whose (system, external id) is bound to a record already.
    pub const ALREADY_BOUND: &str = "already_bound";
    /// An update-only upsert row whose (system, external id) is bound to no record.
    pub const NOT_BOUND: &str = "not_bound";
}

/// Every failure of a use case. `code()` is the stable contract with adapters; [`Error::details`] is
/// the one description of it that every adapter shows, as is.
///
/// The storage kinds ([`Error::Unavailable`], [`Error::Corrupt`], [`Error::DiskFull`],
/// [`Error::Internal`]) keep their [`Cause`] for operators' logs; their message and details are fixed
/// per kind, so no SQL, row value or driver text can reach a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Input broke one or more rules; all failing fields are listed at once.
    #[error("validation failed: {}", summary(.0))]
    Validation(Vec<FieldError>),
    /// No such record for this actor: it does not exist, belongs to another tenant, or is outside the
    /// actor's read scope. Deliberately indistinguishable.
    #[error("{entity} {id} not found")]
    NotFound { entity: String, id: String },
    /// The actor may not take `action` on `entity`, or may not read/write the named `fields`.
    #[error("forbidden: {action} on {entity}{}", fields_suffix(.fields))]
    Forbidden {
        action: String,
        entity: String,
        fields: Vec<String>,
    },
    /// The record changed since the caller read it (optimistic concurrency).
    #[error("conflict: {entity} {id} is at version {actual}, expected {expected}")]
    Conflict {
        entity: String,
        id: String,
        expected: u64,
        actual: u64,
    },
    /// A size, count or rate limit was exceeded.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded { what: String, limit: u64 },
    /// A filter, sort or cursor could not be understood. `position` is a byte offset in the text query.
    #[error("invalid query at {position}: {message}")]
    InvalidQuery { message: String, position: usize },
    /// The storage is busy or out of reach (a locked database, no free connection, a server down or
    /// refusing connections); the same call may succeed after `retry_after` seconds.
    #[error("the database is unavailable; try again")]
    Unavailable { retry_after: u64, cause: Cause },
    /// Stored data cannot be read: a damaged file, a database written by a newer version, a row that
    /// does not decode. Retrying does not help.
    #[error("the database is damaged or was written by a newer version")]
    Corrupt { cause: Cause },
    /// The database's disk (or its configured size limit) is full: the write was rolled back as a
    /// whole and nothing of it was stored. Retrying helps once space is freed.
    #[error("the database's disk is full; nothing was written")]
    DiskFull { cause: Cause },
    /// Any other failure underneath the use case (a statement the database rejected, an I/O error).
    #[error("internal error")]
    Internal { cause: Cause },
}

/// Why a storage kind failed, for operators (logs, `Debug`) only: never in the error's message or
/// [`ErrorDetails`]. Stores still keep SQL and row values out of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Cause(String);

impl Cause {
    /// Wraps a description of what failed (for logs; keep SQL and row values out of it).
    pub fn new(cause: impl Into<String>) -> Self {
        Cause(cause.into())
    }

    /// The description, for logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// The one serialisable description of an [`Error`]: its stable `code`, its human `message` and the
/// members of its kind, flattened beside them. Adapters convert it to their transport (a problem
/// document, an exception's attributes, a JS error's properties) without choosing what to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetails {
    /// The stable code ([`Error::code`]).
    pub code: &'static str,
    /// Human-readable, safe to show; wording may change, the code does not.
    pub message: String,
    /// The kind's own members.
    #[serde(flatten)]
    pub kind: Details,
}

/// The members of each error kind, as [`ErrorDetails`] shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    /// `validation`: every failing field with its rule.
    Validation { errors: Vec<FieldError> },
    /// `not_found`: what was looked up.
    NotFound { entity: String, id: String },
    /// `forbidden`: the refused action and the fields the actor may not read or write (empty when the
    /// whole action is refused).
    Forbidden {
        action: String,
        entity: String,
        fields: Vec<String>,
    },
    /// `conflict`: the version the caller expected and the record's current one.
    Conflict {
        entity: String,
        id: String,
        expected: u64,
        actual: u64,
    },
    /// `limit_exceeded`: which limit, and its value.
    LimitExceeded { what: String, limit: u64 },
    /// `invalid_query`: byte offset of the problem in the text query.
    InvalidQuery { position: usize },
    /// `unavailable`: seconds to wait before trying again.
    Unavailable { retry_after: u64 },
    /// `corrupt`: nothing beyond the code.
    Corrupt {},
    /// `disk_full`: nothing beyond the code.
    DiskFull {},
    /// `internal`: nothing beyond the code.
    Internal {},
}

fn summary(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{} ({})", f.path, f.code))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fields_suffix(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(" (fields: {})", fields.join(", "))
    }
}

impl Error {
    /// The stable code of this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation",
            Error::NotFound { .. } => "not_found",
            Error::Forbidden { .. } => "forbidden",
            Error::Conflict { .. } => "conflict",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::InvalidQuery { .. } => "invalid_query",
            Error::Unavailable { .. } => "unavailable",
            Error::Corrupt { .. } => "corrupt",
            Error::DiskFull { .. } => "disk_full",
            Error::Internal { .. } => "internal",
        }
    }

    /// The description every adapter shows: code, message and the kind's members.
    pub fn details(&self) -> ErrorDetails {
        let kind = match self.clone() {
            Error::Validation(errors) => Details::Validation { errors },
            Error::NotFound { entity, id } => Details::NotFound { entity, id },
            Error::Forbidden { action, entity, fields } => Details::Forbidden { action, entity, fields },
            Error::Conflict {
                entity,
                id,
                expected,
                actual,
            } => Details::Conflict {
                entity,
                id,
                expected,
                actual,
            },
            Error::LimitExceeded { what, limit } => Details::LimitExceeded { what, limit },
            Error::InvalidQuery { position, .. } => Details::InvalidQuery { position },
            Error::Unavailable { retry_after, .. } => Details::Unavailable { retry_after },
            Error::Corrupt { .. } => Details::Corrupt {},
            Error::DiskFull { .. } => Details::DiskFull {},
            Error::Internal { .. } => Details::Internal {},
        };
        ErrorDetails {
            code: self.code(),
            message: self.to_string(),
            kind,
        }
    }

    /// Why a storage kind failed, for logs only (`None` for the other kinds).
    pub fn internal_cause(&self) -> Option<&str> {
        match self {
            Error::Unavailable { cause, .. }
            | Error::Corrupt { cause }
            | Error::DiskFull { cause }
            | Error::Internal { cause } => Some(cause.as_str()),
            _ => None,
        }
    }

    /// One of the storage kinds (unavailable, corrupt, disk full, internal): what failed is underneath the use
    /// case, not the caller's input.
    pub fn is_storage_failure(&self) -> bool {
        self.internal_cause().is_some()
    }

    /// The storage is busy or out of reach; worth trying again after `retry_after` seconds.
    pub fn unavailable(retry_after: u64, cause: impl Into<String>) -> Self {
        Error::Unavailable {
            retry_after,
            cause: Cause::new(cause),
        }
    }

    /// Stored data cannot be read (damaged, from a newer version, undecodable).
    pub fn corrupt(cause: impl Into<String>) -> Self {
        Error::Corrupt {
            cause: Cause::new(cause),
        }
    }

    /// The storage is out of space; the write was rolled back.
    pub fn disk_full(cause: impl Into<String>) -> Self {
        Error::DiskFull {
            cause: Cause::new(cause),
        }
    }

    /// Any other failure underneath a use case.
    pub fn internal(cause: impl Into<String>) -> Self {
        Error::Internal {
            cause: Cause::new(cause),
        }
    }

    pub fn not_found(entity: &str, id: impl ToString) -> Self {
        Error::NotFound {
            entity: entity.to_owned(),
            id: id.to_string(),
        }
    }

    pub fn forbidden(action: impl ToString, entity: &str, fields: Vec<String>) -> Self {
        Error::Forbidden {
            action: action.to_string(),
            entity: entity.to_owned(),
            fields,
        }
    }

    pub fn invalid_query(message: impl Into<String>, position: usize) -> Self {
        Error::InvalidQuery {
            message: message.into(),
            position,
        }
    }

    pub fn field(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(path, code, message)])
    }

    /// The field errors of a validation error (empty for other kinds).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(f) => f,
            _ => &[],
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn described(e: &Error) -> Value {
        serde_json::to_value(e.details()).unwrap()
    }

    #[test]
    fn every_kind_has_its_code_and_members() {
        let cases = [
            (
                Error::field("email", codes::INVALID_EMAIL, "not an email"),
                json!({"code": "validation", "message": "validation failed: email (invalid_email)",
                       "errors": [{"path": "email", "code": "invalid_email", "message": "not an email"}]}),
            ),
            (
                Error::not_found("lead", "42"),
                json!({"code": "not_found", "message": "lead 42 not found", "entity": "lead", "id": "42"}),
            ),
            (
                Error::forbidden("update", "lead", vec!["score".into()]),
                json!({"code": "forbidden", "message": "forbidden: update on lead (fields: score)",
                       "action": "update", "entity": "lead", "fields": ["score"]}),
            ),
            (
                Error::forbidden("delete", "lead", vec![]),
                json!({"code": "forbidden", "message": "forbidden: delete on lead",
                       "action": "delete", "entity": "lead", "fields": []}),
            ),
            (
                Error::Conflict {
                    entity: "lead".into(),
                    id: "42".into(),
                    expected: 1,
                    actual: 3,
                },
                json!({"code": "conflict", "message": "conflict: lead 42 is at version 3, expected 1",
                       "entity": "lead", "id": "42", "expected": 1, "actual": 3}),
            ),
            (
                Error::LimitExceeded {
                    what: "page size".into(),
                    limit: 500,
                },
                json!({"code": "limit_exceeded", "message": "limit exceeded: page size (limit 500)",
                       "what": "page size", "limit": 500}),
            ),
            (
                Error::invalid_query("expected a value", 6),
                json!({"code": "invalid_query", "message": "invalid query at 6: expected a value", "position": 6}),
            ),
            (
                Error::unavailable(2, "sqlite: database is locked"),
                json!({"code": "unavailable", "message": "the database is unavailable; try again", "retry_after": 2}),
            ),
            (
                Error::corrupt("sqlite: file is not a database"),
                json!({"code": "corrupt", "message": "the database is damaged or was written by a newer version"}),
            ),
            (
                Error::disk_full("sqlite: database or disk is full"),
                json!({"code": "disk_full", "message": "the database's disk is full; nothing was written"}),
            ),
            (
                Error::internal("sqlite: no such table: leads"),
                json!({"code": "internal", "message": "internal error"}),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(described(&e), want, "{e:?}");
            assert_eq!(e.details().code, e.code());
            assert_eq!(e.details().message, e.to_string());
        }
    }

    #[test]
    fn storage_causes_stay_out_of_messages_and_details() {
        let cause = "near \"SELEC\": syntax error in SELECC * FROM leads WHERE email = 'ann@x.io'";
        for e in [
            Error::unavailable(1, cause),
            Error::corrupt(cause),
            Error::disk_full(cause),
            Error::internal(cause),
        ] {
            assert_eq!(e.internal_cause(), Some(cause));
            assert!(format!("{e:?}").contains("ann@x.io"), "Debug keeps the cause for logs");
            let shown = format!("{e} {}", described(&e));
            for leak in ["SELEC", "leads", "ann@x.io", "syntax"] {
                assert!(!shown.contains(leak), "{shown}");
            }
        }
        assert_eq!(Error::not_found("lead", 1).internal_cause(), None);
        assert!(Error::corrupt("x").is_storage_failure() && !Error::not_found("lead", 1).is_storage_failure());
    }
}
