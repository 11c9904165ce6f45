//! Errors as `application/problem+json` (RFC 9457). A core error's body is the core's own
//! description ([`crm_core::error::ErrorDetails`]) with the HTTP status this module picks per kind;
//! transport failures (authentication, limits, malformed requests) are added. Bodies carry the
//! stable `code`, never SQL, stack traces or row contents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::error::{Details, Error};
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
    /// The request line and headers are over the limit (bytes).
    HeadTooLarge(usize),
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
    /// A core error's own members, as the core describes them: `errors` (validation), `entity` and
    /// `id`, `action` and `fields` (forbidden), `expected` and `actual` (conflict), `what` and
    /// `limit`, `position` (invalid query), `retry_after` (unavailable).
    #[serde(flatten)]
    pub members: Option<Details>,
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
                Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Error::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                Error::Corrupt { .. } | Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
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
            ApiError::TooLarge(_) | ApiError::HeadTooLarge(_) => "too_large",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The server, not the caller, failed (a 5xx status): callers that hide why a request failed
    /// (authentication) still pass these on.
    pub fn is_server_failure(&self) -> bool {
        self.status().is_server_error()
    }

    /// Seconds to send as `Retry-After`, for errors worth retrying.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooMany(s) | ApiError::Unavailable(s) => Some(*s),
            ApiError::Core(Error::Unavailable { retry_after, .. }) => Some(*retry_after),
            _ => None,
        }
    }

    /// The problem document as JSON bytes (for answers written below the router).
    pub(crate) fn problem_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.problem()).unwrap_or_default()
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let (detail, members) = match self {
            ApiError::Core(e) => {
                let d = e.details();
                (d.message, Some(d.kind))
            }
            ApiError::Unauthenticated => ("missing, invalid or expired credentials".to_owned(), None),
            ApiError::TooMany(s) => (format!("too many requests; retry in {s} s"), None),
            ApiError::Unavailable(s) => (format!("the server is busy; retry in {s} s"), None),
            ApiError::TooLarge(n) => (format!("the request body is over {n} bytes"), None),
            ApiError::HeadTooLarge(n) => (format!("the request line and headers are over {n} bytes"), None),
            ApiError::BadRequest(m) => (m.clone(), None),
            ApiError::PreconditionRequired => (
                "updates and deletes need If-Match with the record's ETag".to_owned(),
                None,
            ),
            ApiError::MethodNotAllowed => ("this route does not take this method".to_owned(), None),
        };
        let code = self.code();
        Problem {
            type_: format!("https://crm.invalid/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            members,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Core(e) = &self
            && let Some(cause) = e.internal_cause()
        {
            // The cause is for operators only; the body has the kind's fixed message.
            if matches!(e, Error::Unavailable { .. }) {
                tracing::warn!(code = e.code(), cause, "storage unavailable");
            } else {
                tracing::error!(code = e.code(), cause, "storage failure");
            }
        }
        let problem = self.problem();
        let mut res = (self.status(), axum::Json(problem)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        if let ApiError::Unauthenticated = self {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(e: &ApiError) -> serde_json::Value {
        serde_json::to_value(e.problem()).unwrap()
    }

    #[test]
    fn unavailable_storage_is_503_with_retry_after() {
        let e = ApiError::Core(Error::unavailable(3, "sqlite: database is locked"));
        let b = body(&e);
        assert_eq!(b["status"], json!(503));
        assert_eq!(
            (b["code"].clone(), b["retry_after"].clone()),
            (json!("unavailable"), json!(3))
        );
        assert!(!b.to_string().contains("sqlite"), "{b}");
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json");
    }

    #[test]
    fn corrupt_and_internal_are_500_without_their_cause() {
        for (e, code) in [
            (Error::corrupt("sqlite: file is not a database"), "corrupt"),
            (Error::internal("sqlite: no such column: secret"), "internal"),
        ] {
            let e = ApiError::Core(e);
            let b = body(&e);
            assert_eq!((b["status"].clone(), b["code"].clone()), (json!(500), json!(code)));
            assert!(!b.to_string().contains("sqlite"), "{b}");
            assert!(e.is_server_failure());
            assert!(e.into_response().headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn a_full_disk_is_507_without_its_cause() {
        let e = ApiError::Core(Error::disk_full("sqlite: database or disk is full"));
        let b = body(&e);
        assert_eq!(
            (b["status"].clone(), b["code"].clone()),
            (json!(507), json!("disk_full"))
        );
        assert_eq!(b["detail"], json!("the database's disk is full; nothing was written"));
        assert!(!b.to_string().contains("sqlite"), "{b}");
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn the_body_is_the_cores_description() {
        let core = Error::forbidden("update", "lead", vec!["score".into()]);
        let mut want = serde_json::to_value(core.details()).unwrap();
        let b = body(&ApiError::Core(core));
        want["detail"] = want.as_object_mut().unwrap().remove("message").unwrap();
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&b[k], v, "{k}");
        }
        assert_eq!(b["type"], json!("https://crm.invalid/problems/forbidden"));
        // Transport errors have no core members.
        let b = body(&ApiError::TooMany(2));
        assert_eq!(b.as_object().unwrap().len(), 5, "{b}");
    }
}
