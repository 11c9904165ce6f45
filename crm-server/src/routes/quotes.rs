//! Quote reports beyond CRUD and transitions: conversion.

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use crm_core::analytics::conversion::ConversionBy;
use serde_json::json;

async fn conversion<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    // A malformed query parameter is 400, as for every other parameter.
    let by: ConversionBy = match p.raw("by") {
        Some(s) => s
            .parse()
            .map_err(|e: crm_core::error::Error| ApiError::BadRequest(e.to_string()))?,
        None => ConversionBy::default(),
    };
    let actor = auth.actor;
    let rows = app
        .run(move |svc| async move { svc.quote_conversion(&actor, by).await })
        .await?;
    Ok(axum::Json(rows))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "get",
            "/api/v1/quotes/conversion",
            "quote_conversion",
            "quotes",
            "Quote conversion (sent → accepted) by owner, lead source or month, over the quotes the caller may read",
        )
        .query(
            "by",
            json!({"type": "string", "enum": ["owner", "source", "month"], "default": "month"}),
            "How quotes are grouped",
        )
        .ok(
            200,
            "One row per group, ordered by key",
            json!({"type": "array", "items": schema_ref("ConversionRow")}),
        )
        .errors(&[400, 403]),
        get(conversion::<S>),
    )
}
