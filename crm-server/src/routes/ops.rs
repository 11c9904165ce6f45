//! Operations: liveness, readiness, metrics, the OpenAPI document and its reference page.

use crate::api::{Api, Op, Security, schema_ref};
use crate::error::ApiResult;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value as Json, json};
use std::sync::Arc;

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready when the database answers (migrations ran when the store was opened).
async fn readyz<S: ServerStore>(State(app): State<AppState<S>>) -> ApiResult<impl IntoResponse> {
    app.run(|svc| async move { svc.tenants().await.map(|_| ()) }).await?;
    Ok(axum::Json(json!({ "status": "ready" })))
}

async fn metrics<S: ServerStore>(State(app): State<AppState<S>>) -> impl IntoResponse {
    let mut res = app.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html>
<head>
  <title>CRM API reference</title>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
  <noscript>The interactive reference needs JavaScript; the document itself is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript>
  <script id="api-reference" data-url="/api/v1/openapi.json"></script>
  <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>
</body>
</html>
"#;

/// Adds the operations routes. `doc` is the finished OpenAPI document (it lists these routes too).
pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let text =
        |desc: &str, ct: &str| json!({ "description": desc, "content": { ct: { "schema": { "type": "string" } } } });
    api.add(
        Op::new(
            "get",
            "/healthz",
            "healthz",
            "operations",
            "Liveness: the process answers",
        )
        .security(Security::None)
        .ok(200, "Alive", schema_ref("Health")),
        get(healthz),
    )
    .add(
        Op::new(
            "get",
            "/readyz",
            "readyz",
            "operations",
            "Readiness: the database answers",
        )
        .security(Security::None)
        .ok(200, "Ready", schema_ref("Health")),
        get(readyz::<S>),
    )
    .add(
        Op::new(
            "get",
            "/metrics",
            "metrics",
            "operations",
            "Prometheus metrics (OpenMetrics text)",
        )
        .security(Security::None)
        .ok_raw(
            200,
            text(
                "Request counts and latency histograms by route and status",
                "application/openmetrics-text",
            ),
        ),
        get(metrics::<S>),
    )
    .add(
        Op::new("get", "/docs", "docs", "operations", "Interactive API reference")
            .security(Security::None)
            .ok_raw(200, text("An HTML page rendering /api/v1/openapi.json", "text/html")),
        get(|| async { Html(DOCS_PAGE) }),
    )
}

/// The route serving the document itself (added last, once the document is complete).
pub fn openapi_route<S: ServerStore>(api: Api<S>) -> (Api<S>, Arc<Json>) {
    let op = Op::new(
        "get",
        "/api/v1/openapi.json",
        "openapi",
        "operations",
        "This OpenAPI 3.1 document",
    )
    .security(Security::None)
    .ok(200, "The document", json!({ "type": "object" }));
    let mut ops = api.ops.clone();
    ops.push(op.clone());
    let doc = Arc::new(crate::openapi::document(&ops));
    let served = doc.clone();
    let api = api.add(op, get(move || async move { axum::Json((*served).clone()) }));
    (api, doc)
}
