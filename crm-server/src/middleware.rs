//! Transport guards around every route: metrics, load shedding, timeouts, rate limits, and turning
//! the framework's own error answers (unknown route, wrong method, oversized body) into problem
//! documents.

use crate::error::ApiError;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::{AppState, ServerStore};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Counts and times every request by route template and status, and logs a request dropped before
/// its answer (the access log layer logs answered ones).
pub async fn track<S: ServerStore>(State(app): State<AppState<S>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    app.metrics.in_flight.inc();
    let mut pending = Unanswered {
        span: tracing::Span::current(),
        start,
        in_flight: app.metrics.in_flight.clone(),
        answered: false,
    };
    let res = next.run(req).await;
    pending.answered = true;
    drop(pending);
    let status = res.status().as_u16();
    app.metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    app.metrics
        .requests
        .get_or_create(&RequestLabels { method, route, status })
        .inc();
    res
}

/// Dropped with the request's future, answered or not: leaves the in-flight count, and if no answer
/// came (the client closed the connection, or the server stopped) logs the access line the access log
/// layer cannot.
struct Unanswered {
    span: tracing::Span,
    start: Instant,
    in_flight: prometheus_client::metrics::gauge::Gauge,
    answered: bool,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        self.in_flight.dec();
        if !self.answered {
            self.span.in_scope(|| {
                tracing::info!(
                    target: "crm_server::access",
                    dropped = true,
                    duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
                    "request dropped before its answer"
                );
            });
        }
    }
}

/// Refuses work beyond the in-flight cap at once (503 + Retry-After) instead of queueing it.
#[derive(Clone, Debug)]
pub struct Shed(pub Arc<Semaphore>);

pub async fn shed<S: ServerStore>(
    State((app, permits)): State<(AppState<S>, Shed)>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = permits.0.clone().try_acquire_owned() else {
        app.metrics.shed.inc();
        return ApiError::Unavailable(1).into_response();
    };
    let deadline = Arc::new(AtomicU8::new(RUNNING));
    let run = DEADLINE.scope(deadline.clone(), next.run(req));
    tokio::pin!(run);
    match tokio::time::timeout(app.cfg.request_timeout, run.as_mut()).await {
        Ok(res) => res,
        // Nothing written yet, and `write_may_start` now refuses: the 503 is true.
        Err(_) if deadline.compare_exchange(RUNNING, TIMED_OUT, SeqCst, SeqCst).is_ok() => {
            ApiError::Unavailable(1).into_response()
        }
        // A write has started: answering 503 while it commits would invite a duplicate retry, so
        // it runs to its end and its own result is the answer.
        Err(_) => run.await,
    }
}

/// Where a request stands against its timeout. Only [`shed`] moves it to `TIMED_OUT` and only
/// [`write_may_start`] to `WRITING`, each from `RUNNING`, so exactly one of them wins.
const RUNNING: u8 = 0;
const WRITING: u8 = 1;
const TIMED_OUT: u8 = 2;

tokio::task_local! {
    static DEADLINE: Arc<AtomicU8>;
}

/// Called before a request's write starts ([`crate::App::write`]): `false` if the request already
/// timed out (and answered 503), so the write must not start. Once it returns `true` the request
/// timeout no longer cuts the request. Always `true` outside a request (background work).
pub(crate) fn write_may_start() -> bool {
    DEADLINE
        .try_with(|d| match d.compare_exchange(RUNNING, WRITING, SeqCst, SeqCst) {
            Ok(_) => true,
            Err(now) => now == WRITING,
        })
        .unwrap_or(true)
}

pub type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

pub fn limiter(rate: u32, burst: u32) -> Arc<Limiter> {
    let r = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let b = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_second(r).allow_burst(b)))
}

/// Per-caller rate limit: keyed by the bearer credential, or the client address without one.
pub async fn rate_limit<S: ServerStore>(
    State((app, limiter)): State<(AppState<S>, Arc<Limiter>)>,
    req: Request,
    next: Next,
) -> Response {
    let key = match crate::auth::bearer(req.headers()) {
        Some(t) => format!("t:{}", crate::auth::tokens::sha256_hex(t)),
        None => format!(
            "a:{}",
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(String::new, |c| c.0.ip().to_string())
        ),
    };
    if let Err(not_until) = limiter.check_key(&key) {
        app.metrics.rate_limited.inc();
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return ApiError::TooMany(wait.as_secs() + 1).into_response();
    }
    next.run(req).await
}

/// The largest request head (request line and headers, in bytes) the API takes.
pub const MAX_HEAD: usize = 32 << 10;

/// Refuses a request whose head is over [`MAX_HEAD`] (a megabyte of query string) with a problem
/// document, before anything reads it.
pub async fn head_limit(req: Request, next: Next) -> Response {
    let line = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if line + headers > MAX_HEAD {
        return ApiError::HeadTooLarge(MAX_HEAD).into_response();
    }
    next.run(req).await
}

/// Gives the framework's plain-text errors the problem+json shape the API promises.
pub async fn problems(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::Core(crm_core::error::Error::not_found("route", "for this path")),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(0),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest("unsupported content type".into()),
        // A framework failure (a handler's extractor missing its extension, say) is the server's
        // fault and retrying will not help: a 500 with the cause in the operator log, never a 503
        // "busy" that invites the retry and hides the cause.
        StatusCode::INTERNAL_SERVER_ERROR => {
            let body = res.into_body();
            let cause = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let err = ApiError::Core(crm_core::error::Error::internal(format!(
                "the framework answered 500: {}",
                String::from_utf8_lossy(&cause)
            )));
            return err.into_response();
        }
        s if s.is_server_error() => ApiError::Unavailable(1),
        _ => ApiError::BadRequest("the request could not be read".into()),
    };
    let mut out = err.into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = res.headers().get(header::ALLOW)
    {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    /// A plain-text 500 from the framework (here a handler needing `ConnectInfo` on a router
    /// served without it) is a 500 `internal` problem document, not a 503 "busy; retry".
    #[tokio::test]
    async fn a_framework_500_stays_a_500_problem_without_retry_after() {
        let app = Router::new()
            .route("/", get(|_: ConnectInfo<SocketAddr>| async { "unreachable" }))
            .layer(axum::middleware::from_fn(problems));
        let res = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(p["code"], "internal", "{p}");
        assert_eq!(p["status"], 500, "{p}");
    }
}
