//! The dashboard page at `/`: static HTML, CSS and one JavaScript module embedded in the binary
//! (`crm-server/assets/dashboard/`). The page signs in through `/api/v1/auth/login` and draws what
//! `/api/v1/analytics/{report}` answers; it computes no number of its own.

use crate::api::{Api, Op, Security};
use crate::error::ApiResult;
use crate::state::ServerStore;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::json;

/// The page itself.
pub const PAGE: &str = include_str!("../../assets/dashboard/index.html");

/// The page's files: (name, content type, bytes). Served with `no-cache`: a new binary's files are
/// picked up on the next load.
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard/dashboard.css"),
    ),
];

/// Only this server's own files, and calls to this server's API: no inline script or style, no
/// other origin, no framing, and a form that cannot be submitted anywhere (the script sends it).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(PAGE),
    )
}

async fn asset(Path(file): Path<String>) -> ApiResult<impl IntoResponse> {
    super::ops::embedded(ASSETS, &file, "no-cache")
}

/// Adds the page and its files.
pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let text =
        |desc: &str, ct: &str| json!({ "description": desc, "content": { ct: { "schema": { "type": "string" } } } });
    api.add(
        Op::new(
            "get",
            "/",
            "dashboard",
            "operations",
            "The dashboard page: sign in, then the funnel, forecast, productivity and map of what you may read",
        )
        .security(Security::None)
        .ok_raw(
            200,
            text("An HTML page drawing /api/v1/analytics/{report}", "text/html"),
        ),
        get(page),
    )
    .add(
        Op::new(
            "get",
            "/dashboard/{file}",
            "dashboard_asset",
            "operations",
            "A file of the dashboard page (served from the binary)",
        )
        .security(Security::None)
        .path_param(
            "file",
            json!({"type": "string"}),
            "File name: dashboard.js or dashboard.css",
        )
        .ok_raw(
            200,
            json!({ "description": "The file", "content": {
                "text/javascript": { "schema": { "type": "string" } },
                "text/css": { "schema": { "type": "string" } },
            } }),
        )
        .errors(&[404]),
        get(asset),
    )
}
