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
    pub const DUPLICATE: &str = "duplicate";
    pub const IN_USE: &str = "in_use";
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    pub const NOT_NULL: &str = "not_null";
}

/// Every failure of a use case. `code()` is the stable contract with adapters.
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
    /// The storage backend failed. The message is safe to show: stores never put SQL or row data in it.
    #[error("storage error: {0}")]
    Storage(String),
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
            Error::Storage(_) => "storage",
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
