//! Operations: liveness, readiness, metrics, the OpenAPI document and its reference page.

use crate::api::{Api, Op, Security, schema_ref};
use crate::error::ApiResult;
use crate::state::{AppState, ServerStore};
use axum::extract::{Path, State};
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
    if let Some(n) = app.svc.store().connections_opened() {
        app.metrics.store_connections(n);
    }
    let mut res = app.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// The reference page: RapiDoc (vendored, `crm-server/assets/rapidoc/README.md`) rendering the
/// served document. Everything it loads comes from this server.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <title>CRM API reference</title>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <script type="module" src="/docs/assets/rapidoc-9.3.8.min.js"></script>
</head>
<body>
  <noscript>The interactive reference needs JavaScript; the document itself is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript>
  <rapi-doc spec-url="/api/v1/openapi.json" load-fonts="false" render-style="read" show-header="false"
    allow-server-selection="false" allow-authentication="true" persist-auth="false"></rapi-doc>
</body>
</html>
"#;

/// The page may load nothing but this server's own files: no CDN, no fonts or scripts from elsewhere.
/// (RapiDoc's web components set their styles inline.)
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The reference UI's files, embedded in the binary: (name, content type, bytes). Names carry the
/// version, so they are cached for good.
const DOCS_ASSETS: &[(&str, &str, &[u8])] = &[(
    "rapidoc-9.3.8.min.js",
    "text/javascript; charset=utf-8",
    include_bytes!("../../assets/rapidoc/rapidoc-min.js"),
)];

async fn docs_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(DOCS_PAGE),
    )
}

async fn docs_asset(Path(file): Path<String>) -> ApiResult<impl IntoResponse> {
    // Versioned file names: cached for good.
    embedded(DOCS_ASSETS, &file, "public, max-age=31536000, immutable")
}

/// One of a page's files embedded in the binary (`(name, content type, body)`), served with its
/// type, `cache` and `nosniff`; a name not among them is not found.
pub(crate) fn embedded<B: IntoResponse + Copy>(
    assets: &[(&str, &'static str, B)],
    file: &str,
    cache: &'static str,
) -> ApiResult<impl IntoResponse + use<B>> {
    let (_, content_type, body) = assets
        .iter()
        .find(|(name, ..)| *name == file)
        .ok_or_else(|| crm_core::Error::not_found("asset", file))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *body,
    ))
}

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
        get(docs_page),
    )
    .add(
        Op::new(
            "get",
            "/docs/assets/{file}",
            "docs_asset",
            "operations",
            "A file of the interactive API reference (served from the binary)",
        )
        .security(Security::None)
        .path_param("file", json!({"type": "string"}), "File name, with its version")
        .ok_raw(200, text("The file, cached for good", "text/javascript"))
        .errors(&[404]),
        get(docs_asset),
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
