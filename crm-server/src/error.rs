//! Errors as `application/problem+json` (RFC 9457). The core's error kinds are mapped here, once;
//! transport failures (authentication, limits, malformed requests) are added. Bodies carry the
//! stable `code`, never SQL, stack traces or row contents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::error::{Error, FieldError};
use serde::Serialize;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// A use case failed; the core's kind decides the status.
    Core(Error),
    /// No valid credentials (missing, malformed, expired or revoked token, wrong password).
    Unauthenticated,
    /// Too many requests (rate limit, sign-in throttling); retry after this many seconds.
    TooMany(u64),
    /// The server is at capacity or the request took too long; retry after this many seconds.
    Unavailable(u64),
    /// The request body is over the limit (bytes).
    TooLarge(usize),
    /// The request could not be read (malformed JSON, wrong content type, bad parameter).
    BadRequest(String),
    /// The request's `If-Match` is missing where an update needs one.
    PreconditionRequired,
    /// The route exists but not with this method.
    MethodNotAllowed,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Core(e)
    }
}

/// The problem document. `type` is a stable URI per code.
#[derive(Serialize, Debug)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Human-readable, safe to show.
    pub detail: String,
    /// The stable machine code (`validation`, `not_found`, `forbidden`, `conflict`, ...).
    pub code: String,
    /// Validation: every failing field with its rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Forbidden: the fields the actor may not read or write.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Forbidden: the action that was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => match e {
                Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Error::NotFound { .. } => StatusCode::NOT_FOUND,
                Error::Forbidden { .. } => StatusCode::FORBIDDEN,
                Error::Conflict { .. } => StatusCode::CONFLICT,
                Error::LimitExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                Error::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
                Error::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Core(e) => e.code(),
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::TooMany(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooLarge(_) => "too_large",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::MethodNotAllowed => "method_not_allowed",
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Core(Error::Storage(_)) => "the database is unavailable; try again".to_owned(),
            ApiError::Core(e) => e.to_string(),
            ApiError::Unauthenticated => "missing, invalid or expired credentials".to_owned(),
            ApiError::TooMany(s) => format!("too many requests; retry in {s} s"),
            ApiError::Unavailable(s) => format!("the server is busy; retry in {s} s"),
            ApiError::TooLarge(n) => format!("the request body is over {n} bytes"),
            ApiError::BadRequest(m) => m.clone(),
            ApiError::PreconditionRequired => "updates and deletes need If-Match with the record's ETag".to_owned(),
            ApiError::MethodNotAllowed => "this route does not take this method".to_owned(),
        };
        let (errors, fields, action) = match self {
            ApiError::Core(Error::Validation(f)) => (f.clone(), Vec::new(), None),
            ApiError::Core(Error::Forbidden { action, fields, .. }) => {
                (Vec::new(), fields.clone(), Some(action.clone()))
            }
            _ => (Vec::new(), Vec::new(), None),
        };
        let code = self.code();
        Problem {
            type_: format!("https://crm.invalid/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
            fields,
            action,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Core(Error::Storage(m)) = &self {
            // The message is safe (stores never put SQL or rows in it) but is for operators only.
            tracing::error!(error = %m, "storage error");
        }
        let problem = self.problem();
        let mut res = (self.status(), axum::Json(problem)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::TooMany(s) | ApiError::Unavailable(s) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
            }
            ApiError::Unauthenticated => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
