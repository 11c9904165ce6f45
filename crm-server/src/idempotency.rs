//! `Idempotency-Key` on writes: the transport half of [`crm_core::idempotency`]. The core decides
//! what is remembered, for whom and for how long; this layer reads the key, fingerprints the
//! request, and runs it or replays the remembered answer.

use crate::auth;
use crate::error::ApiError;
use crate::state::{AppState, ServerStore};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::idempotency::{Answer, Begin, fingerprint};
use tracing::Instrument;

/// The request header naming a write (IETF draft `draft-ietf-httpapi-idempotency-key-header`).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response headers a replay gives again (with the status and the body).
const KEPT: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// Runs a write carrying `Idempotency-Key` at most once per caller and key: the first request runs
/// (to its end even if its client goes away, so its answer is there for the retry) and its final
/// answer is remembered; a repeat gets that answer. Requests without the key, reads, and requests
/// that do not authenticate as a user or API key pass through untouched (their handler answers).
pub async fn idempotency<S: ServerStore>(State(app): State<AppState<S>>, req: Request, next: Next) -> Response {
    let write = matches!(
        *req.method(),
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).filter(|_| write) else {
        return next.run(req).await;
    };
    // Not text: the core's check refuses it with its own error.
    let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
    let Some(token) = auth::bearer(req.headers()).map(str::to_owned) else {
        return next.run(req).await;
    };
    let Ok(caller) = auth::resolve(&app, &token).await else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    // The route's own cap, so a keyed request buffers no more than its handler would take.
    let limit = if parts.uri.path().ends_with("/import") {
        app.cfg.max_import
    } else {
        app.cfg.max_body
    };
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::TooLarge(limit).into_response();
    };
    let fp = request_fingerprint(&parts.method, &parts.uri, &parts.headers, &bytes);
    let req = Request::from_parts(parts, Body::from(bytes));
    // Spawned from the claim on, so a client that hangs up cancels nothing in between: not a claim
    // without its request, nor a committed write without its settled key (either would leave the
    // key claimed, and every retry refused, until it expires).
    let run = async move {
        let begin = {
            let actor = caller.actor.clone();
            let api_key = caller.api_key;
            app.run(move |svc| async move { svc.idempotency_begin(&actor, api_key, &key, &fp).await })
                .await
        };
        let claim = match begin {
            Err(e) => return e.into_response(),
            Ok(Begin::Replay(answer)) => return replay(answer),
            Ok(Begin::Run(claim)) => claim,
        };
        let (parts, body) = next.run(req).await.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let answer = Answer {
            status: parts.status.as_u16(),
            headers: KEPT
                .iter()
                .filter_map(|h| Some((h.as_str().to_owned(), parts.headers.get(h)?.to_str().ok()?.to_owned())))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let settled = app
            .run(move |svc| async move { svc.idempotency_settle(&claim, answer).await })
            .await;
        if let Err(e) = settled {
            // The key stays claimed until it expires: a repeat is refused, never run twice.
            tracing::warn!(error = ?e, "idempotency key not settled");
        }
        Response::from_parts(parts, Body::from(body))
    };
    match tokio::spawn(run.instrument(tracing::Span::current())).await {
        Ok(res) => res,
        Err(_) => ApiError::Unavailable(1).into_response(),
    }
}

/// What makes two requests the same: method, path and query, `If-Match`, and the body (a
/// multipart body without its boundary, which clients choose anew for every request).
fn request_fingerprint(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let if_match = headers.get(header::IF_MATCH).map_or(&b""[..], HeaderValue::as_bytes);
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.to_ascii_lowercase().starts_with("multipart/"))
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty());
    let body = match boundary {
        Some(b) => without(body, b.as_bytes()),
        None => body.to_vec(),
    };
    fingerprint(&[method.as_str().as_bytes(), path.as_bytes(), if_match, &body])
}

/// `haystack` with every occurrence of `needle` removed.
fn without(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, answer.body).into_response();
    res.headers_mut().remove(header::CONTENT_TYPE);
    for (k, v) in &answer.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v.as_str())) {
            res.headers_mut().insert(k, v);
        }
    }
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn multipart_boundaries_do_not_change_the_fingerprint() {
        let uri: axum::http::Uri = "/api/v1/leads/import?mode=all_or_nothing".parse().unwrap();
        let fp = |boundary: &str, csv: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::try_from(format!("multipart/form-data; boundary={boundary}")).unwrap(),
            );
            let body =
                format!("--{boundary}\r\ncontent-disposition: form-data; name=file\r\n\r\n{csv}\r\n--{boundary}--\r\n");
            request_fingerprint(&Method::POST, &uri, &h, body.as_bytes())
        };
        assert_eq!(fp("abc123", "first_name\nDana\n"), fp("zz9", "first_name\nDana\n"));
        assert_ne!(fp("abc123", "first_name\nDana\n"), fp("abc123", "first_name\nDan\n"));
        assert_eq!(without(b"xaaybaa", b"aa"), b"xyb");
    }
}
