//! Lead routing beyond the routing rules' generated CRUD routes: re-route a lead now, and a dry run
//! ("who would get this lead?"). The core decides both (`Service::route_lead`,
//! `Service::route_dry_run`).

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, PathId};
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use crm_core::error::{Error, codes};
use serde_json::{Value as Json, json};

/// The JSON schema of a routing answer (`crm_core::service::Routed`).
fn routed_schema() -> Json {
    let uuid = json!({"type": "string", "format": "uuid"});
    let nullable_uuid = json!({"oneOf": [uuid, {"type": "null"}]});
    let decision = json!({
        "type": "object",
        "description": "The rule that decided",
        "required": ["rule_id", "rule", "rule_version", "strategy", "owner_id", "team_id"],
        "properties": {
            "rule_id": uuid,
            "rule": {"type": "string"},
            "rule_version": {"type": "integer"},
            "strategy": {"type": "string", "enum": crm_core::entity::routing::Strategy::KEYS},
            "owner_id": uuid,
            "team_id": nullable_uuid,
            "turn": {"type": "integer", "description": "The round-robin turn taken"}
        }
    });
    json!({
        "type": "object",
        "required": ["owner_id", "team_id", "decision"],
        "properties": {
            "owner_id": nullable_uuid,
            "team_id": nullable_uuid,
            "decision": {"oneOf": [decision, {"type": "null"}], "description": "null: no rule decided"}
        }
    })
}

async fn route<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(id): PathId,
) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let (lead, routed) = app
        .write(move |svc| async move { svc.route_lead(&actor, id).await })
        .await?;
    Ok(axum::Json(json!({ "lead": lead.to_json(), "routing": routed })))
}

async fn dry_run<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(body): Body<Json>,
) -> ApiResult<impl IntoResponse> {
    let Json::Object(lead) = body else {
        return Err(ApiError::Core(Error::field(
            "body",
            codes::INVALID_TYPE,
            "expected a lead object",
        )));
    };
    let actor = auth.actor;
    let mut answers = app
        .run(move |svc| async move { svc.route_dry_run(&actor, std::slice::from_ref(&lead)).await })
        .await?;
    let routed = answers
        .pop()
        .ok_or_else(|| ApiError::Core(Error::internal("a dry run gave no answer")))?
        .map_err(ApiError::Core)?;
    Ok(axum::Json(routed))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "post",
            "/api/v1/leads/{id}/route",
            "route_lead",
            "leads",
            "Route a lead again by the tenant's routing rules now",
        )
        .path_id("Lead id")
        .ok(
            200,
            "The lead as routed (unchanged when no rule decides) and the decision",
            json!({"type": "object", "required": ["lead", "routing"], "properties": {
                "lead": schema_ref("Lead"), "routing": routed_schema()}}),
        )
        .errors(&[403, 404, 409]),
        post(route::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/routing_rules/dry_run",
            "routing_dry_run",
            "routing_rules",
            "Who would get this lead? Validates and routes a lead without writing anything",
        )
        .json_body(schema_ref("LeadInput"))
        .ok(200, "Who would get the lead and which rule decided", routed_schema())
        .errors(&[400, 403, 413, 422]),
        post(dry_run::<S>),
    )
}
