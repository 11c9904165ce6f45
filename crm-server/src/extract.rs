//! Request extractors whose failures are problem documents (axum's own answer in plain text).

use crate::error::{ApiError, ApiResult};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::IF_MATCH;
use axum::http::request::Parts;
use crm_core::value::Id;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A JSON body; malformed JSON is 400, an oversized body 413.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(0);
    }
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected Content-Type: application/json".into())
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest("the body is not valid JSON".into()),
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(format!("unexpected JSON shape: {}", e.body_text())),
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// The `{id}` path segment as a UUID.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let axum::extract::Path(params) =
            axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::BadRequest("bad path".into()))?;
        let raw = params.get("id").map(String::as_str).unwrap_or_default();
        // An unparseable id names no record: 404, like any other unknown id.
        crm_core::value::parse_id(raw)
            .map(PathId)
            .ok_or_else(|| ApiError::Core(crm_core::error::Error::not_found("record", raw)))
    }
}

/// Query parameters, as strings.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        // Refuse what would otherwise be decoded lossily (`q=%FF%FE` searching for U+FFFD).
        let raw = parts.uri.query().unwrap_or_default();
        if raw
            .split('&')
            .any(|pair| percent_encoding::percent_decode_str(pair).decode_utf8().is_err())
        {
            return Err(ApiError::BadRequest("the query string is not valid UTF-8".into()));
        }
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|_| ApiError::BadRequest("malformed query string".into()))
    }
}

impl Params {
    /// A parameter's value; an empty value counts as absent (`q=` is no filter).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// A typed parameter as sent: present but empty (`as_of=`) is a malformed value, not an
    /// absent one, so typed parameters (numbers, ids, enums) are parsed from this.
    pub fn raw(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// An id parameter (`format: uuid`): present but empty, or in another form than the
    /// hyphenated one, is a malformed parameter (400).
    pub fn id(&self, k: &str) -> ApiResult<Option<Id>> {
        self.raw(k)
            .map(|v| crm_core::value::parse_id(v).ok_or_else(|| ApiError::BadRequest(format!("`{k}` must be a UUID"))))
            .transpose()
    }

    pub fn number<T: std::str::FromStr>(&self, k: &str) -> ApiResult<Option<T>> {
        self.raw(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::BadRequest(format!("`{k}` must be a number")))
            })
            .transpose()
    }

    /// A number the document bounds (`limit` in 1..=500): out of range is a malformed
    /// parameter (400), as the document's `minimum` / `maximum` say, never silently clamped.
    pub fn bounded<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
        &self,
        k: &str,
        min: T,
        max: T,
    ) -> ApiResult<Option<T>> {
        match self.number::<T>(k)? {
            Some(v) if v < min || v > max => {
                Err(ApiError::BadRequest(format!("`{k}` must be between {min} and {max}")))
            }
            other => Ok(other),
        }
    }

    /// A boolean parameter: `true` or `false` (absent: false); anything else is 400.
    pub fn flag(&self, k: &str) -> ApiResult<bool> {
        match self.raw(k) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::BadRequest(format!("`{k}` must be true or false"))),
        }
    }

    pub fn timestamp(&self, k: &str) -> ApiResult<Option<crm_core::value::Timestamp>> {
        self.raw(k)
            .map(|v| {
                crm_core::value::Timestamp::parse(v)
                    .ok_or_else(|| ApiError::BadRequest(format!("`{k}` must be an RFC 3339 time or a date")))
            })
            .transpose()
    }
}

/// The version an update or delete expects, from `If-Match` (`"3"`, `W/"3"` or `3`).
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let v = parts.headers.get(IF_MATCH).ok_or(ApiError::PreconditionRequired)?;
        // Exactly an ETag this server gave (`"3"`, or weak `W/"3"`); `*` is refused on purpose:
        // every write names the version it was based on.
        let s = v.to_str().unwrap_or_default().trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        s.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .map(IfMatch)
            .ok_or_else(|| ApiError::BadRequest("If-Match must be the record's ETag, like \"3\"".into()))
    }
}

/// The ETag of a record version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}
