//! The one error type of the bindings: the core's [`crm_core::Error`] kinds, one variant each, every
//! variant carrying the core's stable `code`. Kotlin sees `CrmException.Forbidden`, Swift
//! `CrmError.Forbidden`, Python `CrmError.Forbidden`.

use crm_core::Error;

/// A problem with one input field, as the core reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldError {
    /// Dotted path: `email`, `custom.roof_type`.
    pub path: String,
    /// Stable code of the broken rule (`required`, `invalid_email`, `read_only`, ...).
    pub code: String,
    /// Human-readable; wording may change, the code does not.
    pub detail: String,
}

/// Every failure of a call. `code` is the core's stable error code (`validation`, `not_found`,
/// `forbidden`, `conflict`, `limit_exceeded`, `invalid_query`, `storage`); `detail` is the core's
/// message. (Fields are not named `message`: that clashes with Kotlin's `Throwable.message`.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum CrmError {
    /// Input broke one or more rules; every failing field is listed.
    #[error("{detail}")]
    Validation {
        code: String,
        detail: String,
        fields: Vec<FieldError>,
    },
    /// Missing, in another tenant, or outside the user's read scope (deliberately indistinguishable).
    #[error("{detail}")]
    NotFound {
        code: String,
        detail: String,
        entity: String,
        id: String,
    },
    /// The user may not take `action` on `entity`, or may not write the named `fields`.
    #[error("{detail}")]
    Forbidden {
        code: String,
        detail: String,
        action: String,
        entity: String,
        fields: Vec<String>,
    },
    /// The record changed since it was read: reload it and retry with its current `version`.
    #[error("{detail}")]
    Conflict {
        code: String,
        detail: String,
        entity: String,
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("{detail}")]
    LimitExceeded {
        code: String,
        detail: String,
        what: String,
        limit: u64,
    },
    /// A filter, sort or cursor could not be understood; `position` is a byte offset in the query text.
    #[error("{detail}")]
    InvalidQuery {
        code: String,
        detail: String,
        position: u64,
    },
    /// The database failed (never carries SQL or row data).
    #[error("{detail}")]
    Storage { code: String, detail: String },
}

impl From<Error> for CrmError {
    fn from(e: Error) -> Self {
        let code = e.code().to_owned();
        let detail = e.to_string();
        match e {
            Error::Validation(fields) => CrmError::Validation {
                code,
                detail,
                fields: fields
                    .into_iter()
                    .map(|f| FieldError {
                        path: f.path,
                        code: f.code,
                        detail: f.message,
                    })
                    .collect(),
            },
            Error::NotFound { entity, id } => CrmError::NotFound {
                code,
                detail,
                entity,
                id,
            },
            Error::Forbidden { action, entity, fields } => CrmError::Forbidden {
                code,
                detail,
                action,
                entity,
                fields,
            },
            Error::Conflict {
                entity,
                id,
                expected,
                actual,
            } => CrmError::Conflict {
                code,
                detail,
                entity,
                id,
                expected,
                actual,
            },
            Error::LimitExceeded { what, limit } => CrmError::LimitExceeded {
                code,
                detail,
                what,
                limit,
            },
            Error::InvalidQuery { message: _, position } => CrmError::InvalidQuery {
                code,
                detail,
                position: position as u64,
            },
            Error::Storage(_) => CrmError::Storage { code, detail },
        }
    }
}

impl CrmError {
    /// The stable code, whatever the variant.
    pub fn code(&self) -> &str {
        match self {
            CrmError::Validation { code, .. }
            | CrmError::NotFound { code, .. }
            | CrmError::Forbidden { code, .. }
            | CrmError::Conflict { code, .. }
            | CrmError::LimitExceeded { code, .. }
            | CrmError::InvalidQuery { code, .. }
            | CrmError::Storage { code, .. } => code,
        }
    }
}

/// A malformed argument the core never sees: an id that is not a UUID is reported as the core
/// reports an unknown id (`not_found`); bad JSON text as a validation error on the argument.
pub(crate) fn bad_id(entity: &str, id: &str) -> CrmError {
    Error::not_found(entity, id).into()
}

pub(crate) fn bad_json(arg: &str, why: impl std::fmt::Display) -> CrmError {
    Error::field(
        arg,
        crm_core::error::codes::INVALID_FORMAT,
        format!("not a JSON object: {why}"),
    )
    .into()
}
