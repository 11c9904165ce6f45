//! # crm-server
//!
//! The CRM's HTTP API: a thin axum face over [`crm_core::service::Service`]. It adds transport
//! concerns only (authentication, limits, OpenAPI, the event stream, metrics, logs) and never
//! decides a business rule. Started by `crm serve` (the `crm` binary); embeddable with [`spawn`].
//!
//! ```text
//! /  (the dashboard page)  /dashboard/{dashboard.js,dashboard.css}
//! /healthz /readyz /metrics /docs /api/v1/openapi.json
//! /api/v1/auth/{login,refresh,logout,password,me}
//! /api/v1/{leads,contacts,companies,activities,users,teams,locations,pipelines,custom_fields,
//!          scoring_models,roles,api_keys,webhooks}[/{id}]   (+ /import, /export)
//! /api/v1/leads/{id}/convert  /api/v1/leads/{id}/score  /api/v1/leads/rescore  /api/v1/leads/pipeline
//! /api/v1/scoring_models/{id}/{backtest,publish}  /api/v1/audit  /api/v1/integrity  /api/v1/events
//! /api/v1/{leads,contacts,companies,quotes,jobs,job_steps}/{id}/attachments
//! /api/v1/attachments/{id}[/content]
//! /api/v1/organizations (platform super-admin)  /api/v1/organization (the caller's)
//! ```

pub mod api;
pub mod auth;
pub mod config;
mod conn;
pub mod error;
pub mod extract;
mod ics;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod scheduler;
pub mod state;
pub mod webhooks;

pub use config::{Config, ServeArgs};
pub use state::{App, AppState, ServerStore};

use api::Api;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method};
use crm_core::entity;
use crm_core::schema::Exposure;
use crm_core::service::Service;
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};
use tower_http::cors::CorsLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: &str = "x-request-id";

/// Every route with its documentation.
pub fn api<S: ServerStore>(cfg: &Config) -> (Api<S>, Arc<Json>) {
    let mut api = Api::new();
    api = routes::ops::routes(api);
    api = routes::dashboard::routes(api);
    api = routes::auth::routes(api);
    api = routes::admin::routes(api);
    // Specific lead and model routes before the generic `/{id}` ones (axum matches static segments
    // first either way; the order keeps the document readable).
    api = routes::leads::routes(api);
    api = routes::routing::routes(api);
    api = routes::quotes::routes(api);
    api = routes::memberships::routes(api);
    api = routes::field_work::routes(api);
    api = routes::calendar::routes(api);
    api = routes::analytics::routes(api);
    api = routes::sync::routes(api);
    for def in entity::all() {
        if def.exposure == Exposure::Internal || def.name == "organization" {
            continue;
        }
        api = routes::transfer::routes(api, def, cfg.max_import);
        api = routes::aggregates::routes(api, def);
        api = routes::records::routes(api, def);
        api = routes::attachments::owner_routes(api, def);
    }
    api = routes::attachments::routes(api);
    api = routes::compliance::routes(api);
    routes::ops::openapi_route(api)
}

/// The complete application: routes, guards and their state.
pub fn router<S: ServerStore>(app: AppState<S>) -> Router {
    let (api, _) = api::<S>(&app.cfg);
    let cors = if app.cfg.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<HeaderValue> = app
            .cfg
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::IF_MATCH,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static(idempotency::IDEMPOTENCY_KEY),
            ])
            .expose_headers([axum::http::header::ETAG, axum::http::header::LOCATION])
    };
    let limiter = middleware::limiter(app.cfg.rate_limit, app.cfg.rate_burst);
    let shed = middleware::Shed(Arc::new(Semaphore::new(app.cfg.max_in_flight)));
    let request_id = HeaderName::from_static(REQUEST_ID);
    api.router
        .layer(axum::extract::DefaultBodyLimit::max(app.cfg.max_body))
        .layer(axum::middleware::from_fn_with_state(
            (app.clone(), limiter),
            middleware::rate_limit::<S>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (app.clone(), shed),
            middleware::shed::<S>,
        ))
        // Outside the timeout and the rate limit, so their 503 and 429 are seen (and not
        // remembered), and a started write settles its key even past the timeout.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            idempotency::idempotency::<S>,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn(middleware::problems))
        .layer(axum::middleware::from_fn(middleware::head_limit))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::track::<S>,
        ))
        .with_state(app)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                // One line per request: a 5xx is the access line's status, not a second line.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The access log's span, one per request: method, route template, request id, and the caller's
/// tenant and user (recorded by authentication). Never the path's values, the query, headers or
/// bodies.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The matched template (`/api/v1/leads/{id}`), never the path itself.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %id,
        tenant = tracing::field::Empty,
        user = tracing::field::Empty,
    )
}

/// The access log line: one `INFO` event (target `crm_server::access`) in the request's span when
/// its response head is ready, with the status and duration. A request dropped before its answer is
/// logged by [`middleware::track`].
fn log_response(res: &axum::http::Response<axum::body::Body>, latency: std::time::Duration, _: &tracing::Span) {
    tracing::info!(
        target: "crm_server::access",
        status = res.status().as_u16(),
        duration_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// A server running in the background (tests, embedding).
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, ends event streams, drains in-flight requests for up to the shutdown
    /// timeout (then closes the remaining connections), and waits.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `cfg.listen` and serves in the background.
pub async fn spawn<S: ServerStore>(svc: Service<S>, cfg: Config) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    // Registration (the core's rule) and delivery (the worker) follow the same operator setting.
    let svc = svc.with_webhook_addresses(cfg.webhook_addresses);
    let (stop, stopped) = watch::channel(false);
    let app = Arc::new(App::new(svc, cfg, stopped.clone()));
    let worker = webhooks::spawn(app.clone());
    let scheduler = scheduler::spawn(app.clone());
    let limits = conn::Limits {
        header: app.cfg.header_timeout,
        shutdown: app.cfg.shutdown_timeout,
    };
    let router = router(app);
    let task = tokio::spawn(async move {
        conn::serve(listener, router, stopped, limits).await;
        let _ = worker.await;
        let _ = scheduler.await;
        Ok(())
    });
    Ok(Running { addr, stop, task })
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests (for up to the shutdown timeout)
/// and returns.
pub async fn serve<S: ServerStore>(svc: Service<S>, cfg: Config) -> std::io::Result<()> {
    let running = spawn(svc, cfg).await?;
    tracing::info!(addr = %running.addr, "listening");
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Sets up logging to standard output: text or JSON lines, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    // Colours only on a terminal, not in files and log shippers.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing::subscriber::set_global_default(logger(json, ansi, std::io::stdout));
}

/// The log subscriber `crm serve` installs, writing to `writer` (tests capture it): text or JSON
/// lines (each with its request span's fields), filtered by `RUST_LOG` (default `info`).
pub fn logger<W>(json: bool, ansi: bool, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    if json {
        Box::new(b.json().finish())
    } else {
        Box::new(b.finish())
    }
}

/// The Rust code blocks of the README and of every guide under `docs/`, run by `cargo test` as doc
/// tests: each must compile and run as written. Blocks in other languages are not Rust to rustdoc;
/// they run elsewhere (`bindings/python/tests/test_doc_blocks.py`, `.ci/doc_blocks.sh`, `.ci/mobile.sh`,
/// `bindings/wasm/js/test/docs.test.mjs`). This crate hosts them because it depends on every crate
/// the blocks use (crm-core, crm-store, crm-server, pollster, serde_json, tokio).
#[cfg(doctest)]
pub mod doc_blocks {
    #[doc = include_str!("../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../docs/ARCHITECTURE.md")]
    pub struct Architecture;
    #[doc = include_str!("../../docs/analytics.md")]
    pub struct Analytics;
    #[doc = include_str!("../../docs/attachments.md")]
    pub struct Attachments;
    #[doc = include_str!("../../docs/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../../docs/front-desk.md")]
    pub struct FrontDesk;
    #[doc = include_str!("../../docs/field-work.md")]
    pub struct FieldWork;
    #[doc = include_str!("../../docs/followups.md")]
    pub struct Followups;
    #[doc = include_str!("../../docs/integration.md")]
    pub struct Integration;
    #[doc = include_str!("../../docs/mobile.md")]
    pub struct Mobile;
    #[doc = include_str!("../../docs/python.md")]
    pub struct Python;
    #[doc = include_str!("../../docs/quotes.md")]
    pub struct Quotes;
    #[doc = include_str!("../../docs/routing.md")]
    pub struct Routing;
    #[doc = include_str!("../../docs/scaling.md")]
    pub struct Scaling;
    #[doc = include_str!("../../docs/server.md")]
    pub struct Server;
    #[doc = include_str!("../../docs/sync.md")]
    pub struct Sync;
    #[doc = include_str!("../../docs/wasm.md")]
    pub struct Wasm;
    #[doc = include_str!("../../docs/api/reference.md")]
    pub struct ApiReference;
    #[doc = include_str!("../../docs/adr/0001-entities-are-declarations.md")]
    pub struct Adr0001;
    #[doc = include_str!("../../docs/adr/0002-derived-and-computed-fields.md")]
    pub struct Adr0002;
    #[doc = include_str!("../../docs/adr/0003-workflows.md")]
    pub struct Adr0003;
    #[doc = include_str!("../../docs/adr/0004-children.md")]
    pub struct Adr0004;
    #[doc = include_str!("../../docs/adr/0005-quotes-decided-targets-copies-rollups.md")]
    pub struct Adr0005;
    #[doc = include_str!("../../docs/adr/0006-membership-status-frozen-and-the-clients-standing.md")]
    pub struct Adr0006;
    #[doc = include_str!("../../docs/adr/0007-stage-history.md")]
    pub struct Adr0007;
    #[doc = include_str!("../../docs/adr/0008-routing-cursor-in-the-store.md")]
    pub struct Adr0008;
    #[doc = include_str!("../../docs/adr/0009-due-events-fire-once-by-a-mark-in-their-change-set.md")]
    pub struct Adr0009;
    #[doc = include_str!("../../docs/adr/0010-mobile-calls-are-async-on-a-worker-thread.md")]
    pub struct Adr0010;
    #[doc = include_str!("../../docs/adr/0011-exclusive-ranges-by-a-booking-row.md")]
    pub struct Adr0011;
    #[doc = include_str!("../../docs/adr/0012-calendar-feeds-by-a-revocable-token.md")]
    pub struct Adr0012;
    #[doc = include_str!("../../docs/adr/0013-attachment-bytes-through-a-blob-store.md")]
    pub struct Adr0013;
    #[doc = include_str!("../../docs/adr/0014-external-bindings.md")]
    pub struct Adr0014;
    #[doc = include_str!("../../docs/adr/0015-sync-replays-intents.md")]
    pub struct Adr0015;
    #[doc = include_str!("../../docs/adr/0016-s3-blob-store-on-its-own-runtime.md")]
    pub struct Adr0016;
    #[doc = include_str!("../../docs/adr/0017-pull-cursor.md")]
    pub struct Adr0017;
    #[doc = include_str!("../../docs/adr/0018-devices-keep-the-servers-rows.md")]
    pub struct Adr0018;
    #[doc = include_str!("../../docs/adr/0019-browser-devices-start-from-a-provision-and-save-changes.md")]
    pub struct Adr0019;
    #[doc = include_str!("../../docs/adr/0020-children-nested-in-upsert-rows.md")]
    pub struct Adr0020;
    #[doc = include_str!("../../docs/adr/0021-round-trips-on-postgresql.md")]
    pub struct Adr0021;
    #[doc = include_str!("../../docs/adr/0022-binaries-allocate-with-mimalloc.md")]
    pub struct Adr0022;
    #[doc = include_str!("../../docs/adr/0023-point-reads-run-on-the-async-worker.md")]
    pub struct Adr0023;
    #[doc = include_str!("../../docs/adr/0024-short-reads-use-the-idle-writer-connection.md")]
    pub struct Adr0024;
    #[doc = include_str!("../../docs/adr/0025-each-sqlite-connection-keeps-its-own-page-cache.md")]
    pub struct Adr0025;
    #[doc = include_str!("../../docs/adr/0026-commits-checkpoint-every-64-mib-of-log.md")]
    pub struct Adr0026;
}

#[cfg(test)]
mod doc_blocks_cover_every_guide {
    /// A guide added under `docs/` without a line in [`doc_blocks`] would have its Rust blocks go
    /// untested: name every Markdown file there.
    #[test]
    fn every_markdown_file_is_included() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lib = std::fs::read_to_string(root.join("crm-server/src/lib.rs")).unwrap();
        let mut dirs = vec![root.join("docs")];
        let mut missing = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    if !lib.contains(&format!("include_str!(\"../../{rel}\")")) {
                        missing.push(rel);
                    }
                }
            }
        }
        assert!(missing.is_empty(), "add to crm-server's doc_blocks: {missing:?}");
    }
}
