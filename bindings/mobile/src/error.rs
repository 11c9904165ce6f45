//! The one error type of the bindings: the core's [`crm_core::Error`] kinds, one variant each, every
//! variant carrying the core's stable `code`. Kotlin sees `CrmException.Forbidden`, Swift
//! `CrmError.Forbidden`, Python `CrmError.Forbidden`.

use crm_core::Error;
use crm_core::error::Details;

/// A problem with one input field, as the core reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldError {
    /// Dotted path: `email`, `custom.roof_type`.
    pub path: String,
    /// Stable code of the broken rule (`required`, `invalid_email`, `read_only`, ...).
    pub code: String,
    /// Human-readable; wording may change, the code does not. Named as in the core and in WASM.
    pub message: String,
}

impl From<crm_core::error::FieldError> for FieldError {
    fn from(f: crm_core::error::FieldError) -> Self {
        FieldError {
            path: f.path,
            code: f.code,
            message: f.message,
        }
    }
}

/// Every failure of a call, built from the core's description of it ([`Error::details`]). `code` is
/// the core's stable error code (`validation`, `not_found`, `forbidden`, `conflict`,
/// `limit_exceeded`, `invalid_query`, `unavailable`, `corrupt`, `internal`); `detail` is the core's
/// message. (The variants' field is not named `message`: that clashes with Kotlin's
/// `Throwable.message`; a [`FieldError`] is a plain record and says `message`, as the core does.)
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
    /// The database is busy or out of reach (another process holds its lock): the same call may
    /// succeed after `retry_after` seconds.
    #[error("{detail}")]
    Unavailable {
        code: String,
        detail: String,
        retry_after: u64,
    },
    /// The database failed underneath: `code` is `corrupt` (damaged, written by a newer version),
    /// `disk_full` (out of space; nothing written) or `internal` (anything else). Never carries SQL
    /// or row data.
    #[error("{detail}")]
    Storage { code: String, detail: String },
    /// The sync server could not be reached or refused the request (`sync`): `status` is its HTTP
    /// status (0 when no answer came: offline, DNS, TLS, timeout), `code` its problem code
    /// (`unauthorized` for a refused token; `unreachable` when no answer came, `bad_answer` when the
    /// answer was not a sync message). The queued changes are kept: sync again later.
    #[error("{detail}")]
    Remote { code: String, detail: String, status: u16 },
}

impl From<Error> for CrmError {
    fn from(e: Error) -> Self {
        let d = e.details();
        let (code, detail) = (d.code.to_owned(), d.message);
        match d.kind {
            Details::Validation { errors } => CrmError::Validation {
                code,
                detail,
                fields: errors.into_iter().map(FieldError::from).collect(),
            },
            Details::NotFound { entity, id } => CrmError::NotFound {
                code,
                detail,
                entity,
                id,
            },
            Details::Forbidden { action, entity, fields } => CrmError::Forbidden {
                code,
                detail,
                action,
                entity,
                fields,
            },
            Details::Conflict {
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
            Details::LimitExceeded { what, limit } => CrmError::LimitExceeded {
                code,
                detail,
                what,
                limit,
            },
            Details::InvalidQuery { position } => CrmError::InvalidQuery {
                code,
                detail,
                position: position as u64,
            },
            Details::Unavailable { retry_after } => CrmError::Unavailable {
                code,
                detail,
                retry_after,
            },
            Details::Corrupt {} | Details::DiskFull {} | Details::Internal {} => CrmError::Storage { code, detail },
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
            | CrmError::Unavailable { code, .. }
            | CrmError::Storage { code, .. }
            | CrmError::Remote { code, .. } => code,
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

/// Upsert rows that are not a JSON array: a validation error on `rows_json`.
pub(crate) fn bad_rows(why: impl std::fmt::Display) -> CrmError {
    Error::field(
        "rows_json",
        crm_core::error::codes::INVALID_FORMAT,
        format!("not a JSON array of rows: {why}"),
    )
    .into()
}
