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
        let axum::Json(tree) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        let shape = |e: serde_path_to_error::Error<serde_json::Error>| {
            ApiError::BadRequest(format!("unexpected JSON shape: {e}"))
        };
        match serde_path_to_error::deserialize(&tree) {
            Ok(v) => Ok(Body(v)),
            // JSON Schema (the OpenAPI document) counts `8057.0` as an integer; serde does not.
            Err(first) => match integral(tree) {
                Some(tree) => serde_path_to_error::deserialize(&tree)
                    .map(Body)
                    .map_err(|_| shape(first)),
                None => Err(shape(first)),
            },
        }
    }
}

/// The tree with every integral float (`8057.0`) written as an integer; `None` when it has none.
fn integral(mut tree: serde_json::Value) -> Option<serde_json::Value> {
    fn walk(v: &mut serde_json::Value) -> bool {
        use serde_json::Value as J;
        match v {
            J::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let int = if f.fract() != 0.0 {
                    None
                } else if f >= 0.0 && f < u64::MAX as f64 {
                    Some(J::from(f as u64))
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    Some(J::from(f as i64))
                } else {
                    None
                };
                int.map(|i| *v = i).is_some()
            }
            J::Array(a) => a.iter_mut().fold(false, |any, x| walk(x) | any),
            J::Object(m) => m.values_mut().fold(false, |any, x| walk(x) | any),
            _ => false,
        }
    }
    walk(&mut tree).then_some(tree)
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

#[cfg(test)]
mod tests {
    #[test]
    fn integral_floats_become_integers_and_nothing_else_changes() {
        use serde_json::json;
        let t = json!({"protocol": 8057.0, "n": [-2.0, 1.5, 3], "s": "4.0", "o": {"x": 0.0}});
        let want = json!({"protocol": 8057, "n": [-2, 1.5, 3], "s": "4.0", "o": {"x": 0}});
        assert_eq!(super::integral(t), Some(want));
        assert_eq!(super::integral(json!({"a": 1, "b": 1.5})), None);
    }
}
