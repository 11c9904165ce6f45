//! Quote use cases beyond CRUD and transitions: conversion, and a job made from an accepted quote.

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, PathId};
use crate::routes::records::with_children;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crm_core::analytics::conversion::ConversionBy;
use serde_json::{Map, Value as Json, json};

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

async fn job_from_quote<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(id): PathId,
    raw: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    // The body is optional: no body makes the job from the quote alone.
    let overrides: Map<String, Json> = if raw.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("unexpected JSON shape: {e}")))?
    };
    let actor = auth.actor;
    let (job, kids) = app
        .write(move |svc| async move {
            let job = svc.job_from_quote(&actor, id, &overrides).await?;
            let kids = svc.children_of(&actor, &job).await?;
            Ok((job, kids))
        })
        .await?;
    let loc = format!("/api/v1/jobs/{}", job.id);
    Ok(with_children(StatusCode::CREATED, &job, kids, Some(loc)))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "post",
            "/api/v1/quotes/{id}/job",
            "job_from_quote",
            "quotes",
            "Make a job from an accepted quote: for the quote's customer at the customer's address, with \
             the quote's title, total as budget, owner and team, under the body's overrides (any job input \
             but the quote and the customer; the body may be empty). A quote that is not accepted is \
             refused (`not_accepted`), and so is a quote that already has a job that is not cancelled \
             (`already_has_job`)",
        )
        .path_id("Quote id")
        .json_body(schema_ref("JobFromQuote"))
        .ok_record(201, "The job, with its steps and crew", schema_ref("Job"))
        .errors(&[400, 403, 404, 409, 413, 422]),
        post(job_from_quote::<S>),
    )
    .add(
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
