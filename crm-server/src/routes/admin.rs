//! Tenants. The platform super-admin creates organizations and their first admin users; a tenant's
//! own users read and (admins) edit their organization at `/api/v1/organization`.

use crate::api::{Api, Op, Security, schema_ref};
use crate::auth::{Auth, Platform};
use crate::error::ApiResult;
use crate::extract::{Body, IfMatch, PathId};
use crate::routes::records::record_response;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crm_core::access::Actor;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    name: String,
    password: String,
    /// Defaults to the core's role for users the platform creates (admin).
    role: Option<String>,
}

async fn create_org<S: ServerStore>(
    State(app): State<AppState<S>>,
    _: Platform,
    Body(input): Body<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    let org = app
        .write(move |svc| async move { svc.create_organization(&input).await })
        .await?;
    Ok(record_response(
        StatusCode::CREATED,
        &org,
        Some(format!("/api/v1/organizations/{}", org.id)),
    ))
}

async fn list_orgs<S: ServerStore>(State(app): State<AppState<S>>, _: Platform) -> ApiResult<impl IntoResponse> {
    let orgs = app
        .run(move |svc| async move {
            let mut out = Vec::new();
            for t in svc.tenants().await? {
                out.push(svc.get(&Actor::system(t), "organization", t).await?.to_json());
            }
            Ok(out)
        })
        .await?;
    Ok(axum::Json(json!({ "items": orgs })))
}

async fn add_user<S: ServerStore>(
    State(app): State<AppState<S>>,
    _: Platform,
    PathId(tenant): PathId,
    Body(req): Body<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let hasher = app.hashing.clone();
    let user = app
        .write(move |svc| async move {
            let mut input = Map::new();
            input.insert("email".into(), Json::String(req.email));
            input.insert("name".into(), Json::String(req.name));
            if let Some(role) = req.role {
                input.insert("role".into(), Json::String(role));
            }
            svc.create_user_with_password(&Actor::system(tenant), &input, &req.password, &hasher)
                .await
        })
        .await?;
    Ok(record_response(
        StatusCode::CREATED,
        &user,
        Some(format!("/api/v1/users/{}", user.id)),
    ))
}

async fn own_org<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let t = actor.tenant;
    let org = app
        .read_by_key(move |svc| async move { svc.get(&actor, "organization", t).await })
        .await?;
    Ok(record_response(StatusCode::OK, &org, None))
}

async fn update_own_org<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    IfMatch(v): IfMatch,
    Body(patch): Body<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let t = actor.tenant;
    let org = app
        .write(move |svc| async move { svc.update(&actor, "organization", t, v, &patch).await })
        .await?;
    Ok(record_response(StatusCode::OK, &org, None))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "post",
            "/api/v1/organizations",
            "create_organization",
            "organizations",
            "Create a tenant (platform super-admin)",
        )
        .security(Security::Platform)
        .json_body(schema_ref("OrganizationInput"))
        .ok_record(
            201,
            "The organization; its id is the tenant id",
            schema_ref("Organization"),
        )
        .errors(&[422]),
        post(create_org::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/organizations",
            "list_organizations",
            "organizations",
            "Every tenant (platform super-admin)",
        )
        .security(Security::Platform)
        .ok(
            200,
            "The organizations",
            json!({
                "type": "object", "additionalProperties": false, "required": ["items"],
                "properties": { "items": { "type": "array", "items": schema_ref("Organization") } }
            }),
        ),
        get(list_orgs::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/organizations/{id}/users",
            "create_organization_user",
            "organizations",
            "Add a user with a password to a tenant, by default an admin (platform super-admin)",
        )
        .security(Security::Platform)
        .path_id("Organization id")
        .json_body(schema_ref("NewUser"))
        .ok_record(201, "The user", schema_ref("User"))
        .errors(&[404, 422]),
        post(add_user::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/organization",
            "get_own_organization",
            "organizations",
            "The caller's organization",
        )
        .ok_record(200, "The organization", schema_ref("Organization"))
        .errors(&[403, 404]),
        get(own_org::<S>),
    )
    .add(
        Op::new(
            "patch",
            "/api/v1/organization",
            "update_own_organization",
            "organizations",
            "Update the caller's organization (admins)",
        )
        .if_match("The organization's ETag")
        .json_body(schema_ref("OrganizationPatch"))
        .ok_record(200, "The new state", schema_ref("Organization"))
        .errors(&[403, 404, 409, 422, 428]),
        axum::routing::patch(update_own_org::<S>),
    )
}
