//! Lead and scoring use cases beyond CRUD: conversion, score explanations, re-scoring, the pipeline
//! summary, back-testing and publishing scoring models.

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, IfMatch, Params, PathId};
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crm_core::error::{Error, codes};
use crm_core::scoring::ScoringModel;
use crm_core::service::ConvertOptions;
use serde_json::{Value as Json, json};

async fn convert<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(id): PathId,
    IfMatch(v): IfMatch,
    raw: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    // The body is optional: no body converts with the defaults.
    let opts: ConvertOptions = if raw.iter().all(u8::is_ascii_whitespace) {
        ConvertOptions::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("unexpected JSON shape: {e}")))?
    };
    let actor = auth.actor;
    let c = app
        .write(move |svc| async move { svc.convert_lead(&actor, id, v, &opts).await })
        .await?;
    Ok(axum::Json(json!({
        "lead": c.lead.to_json(),
        "contact": c.contact.to_json(),
        "company": c.company.map(|r| r.to_json()),
    })))
}

async fn explain<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(id): PathId,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    let as_of = p.timestamp("as_of")?;
    let actor = auth.actor;
    let r = app
        .run(move |svc| async move { svc.explain_score(&actor, id, as_of).await })
        .await?;
    Ok(axum::Json(r))
}

async fn rescore<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let r = app
        .write(move |svc| async move { svc.rescore_all(&actor).await })
        .await?;
    Ok(axum::Json(r))
}

async fn pipeline<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let r = app
        .run(move |svc| async move { svc.pipeline_summary(&actor).await })
        .await?;
    Ok(axum::Json(r))
}

/// A model definition from JSON, or a validation error on `definition`.
fn model_of(j: Json) -> ApiResult<ScoringModel> {
    serde_json::from_value(j)
        .map_err(|e| ApiError::Core(Error::field("definition", codes::INVALID_FORMAT, e.to_string())))
}

async fn backtest_stored<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(id): PathId,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    let since = p.timestamp("since")?;
    let actor = auth.actor;
    let r = app
        .run(move |svc| async move {
            let model = svc.stored_model(&actor, id).await?;
            svc.backtest(&actor, Some(&model), since).await
        })
        .await?;
    Ok(axum::Json(r))
}

async fn backtest_draft<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    p: Params,
    Body(definition): Body<Json>,
) -> ApiResult<impl IntoResponse> {
    let since = p.timestamp("since")?;
    let model = model_of(definition)?;
    let actor = auth.actor;
    let r = app
        .run(move |svc| async move { svc.backtest(&actor, Some(&model), since).await })
        .await?;
    Ok(axum::Json(r))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "post",
            "/api/v1/leads/{id}/convert",
            "convert_lead",
            "leads",
            "Convert a lead into a contact (and company)",
        )
        .path_id("Lead id")
        .if_match("The lead's ETag")
        .json_body(schema_ref("ConvertOptions"))
        .ok(200, "The won lead and what it became", schema_ref("Conversion"))
        .errors(&[400, 403, 404, 409, 413, 422, 428]),
        post(convert::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/leads/{id}/score",
            "explain_score",
            "leads",
            "A lead's score with its explanation",
        )
        .path_id("Lead id")
        .query(
            "as_of",
            json!({"type": "string", "format": "date-time"}),
            "Score as of this time (default now)",
        )
        .ok(
            200,
            "Score, temperature, tier and the points of every rule",
            schema_ref("ScoreResult"),
        )
        .errors(&[400, 403, 404]),
        get(explain::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/leads/rescore",
            "rescore_leads",
            "leads",
            "Re-score every lead as of now",
        )
        .ok(
            200,
            "How many leads were scanned and changed",
            schema_ref("RescoreReport"),
        )
        .errors(&[403]),
        post(rescore::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/leads/pipeline",
            "pipeline_summary",
            "leads",
            "Leads by pipeline stage, with counts and values",
        )
        .ok(
            200,
            "One entry per stage",
            json!({"type": "array", "items": schema_ref("StageSummary")}),
        )
        .errors(&[403]),
        get(pipeline::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/scoring_models/backtest",
            "backtest_draft",
            "scoring_models",
            "Back-test an unsaved model definition against closed leads",
        )
        .query(
            "since",
            json!({"type": "string", "format": "date-time"}),
            "Only leads created since",
        )
        .json_body(schema_ref("ScoringModelDefinition"))
        .ok(200, "AUC and lift per tier", schema_ref("BacktestReport"))
        .errors(&[400, 403, 422]),
        post(backtest_draft::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/scoring_models/{id}/backtest",
            "backtest_model",
            "scoring_models",
            "Back-test a stored (draft) scoring model",
        )
        .path_id("Scoring model id")
        .query(
            "since",
            json!({"type": "string", "format": "date-time"}),
            "Only leads created since",
        )
        .ok(200, "AUC and lift per tier", schema_ref("BacktestReport"))
        .errors(&[400, 403, 404, 422]),
        post(backtest_stored::<S>),
    )
}
