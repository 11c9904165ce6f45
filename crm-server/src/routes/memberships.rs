//! The front desk beyond CRUD: checking a client in, renewing and freezing a membership, and the
//! owner's membership numbers.

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, IfMatch, Params, PathId};
use crate::openapi::schema_name;
use crate::routes::records::record_response;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crm_core::entity::{MEMBERSHIP, MEMBERSHIP_FREEZE};
use crm_core::schema::EntityDef;
use crm_core::service::{CheckInInput, FREEZE_ACCEPTS, RENEW_ACCEPTS};
use serde_json::{Map, Value as Json, json};

async fn check_in<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(input): Body<CheckInInput>,
) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let answer = app
        .write(move |svc| async move { svc.check_in(&actor, &input).await })
        .await?;
    // A recorded check-in is a new resource; a refusal that wrote nothing is just an answer.
    let status = if answer.check_in_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(answer)))
}

async fn numbers<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    // Present but empty (`as_of=`) is not a date.
    let as_of =
        p.0.get("as_of")
            .map(|s| {
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|_| ApiError::BadRequest("`as_of` is a date, YYYY-MM-DD".into()))
            })
            .transpose()?;
    let actor = auth.actor;
    let n = app
        .run(move |svc| async move { svc.membership_numbers(&actor, as_of).await })
        .await?;
    Ok(axum::Json(n))
}

/// The body of a use case taking some of an entity type's fields, each typed by its declaration.
/// With `creates`, the body becomes a new record of `def`, so the fields it declares required are
/// required here too (a freeze's dates); otherwise every field is optional (a renewal keeps what
/// it is not given).
fn accepts(def: &EntityDef, fields: &[&str], creates: bool) -> Json {
    let props: Map<String, Json> = fields
        .iter()
        .map(|f| {
            let schema = def
                .def(f)
                .map_or(json!({"type": "string"}), crate::openapi::field_schema);
            ((*f).to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| creates && def.def(f).is_some_and(crate::openapi::required_on_create))
        .collect();
    let mut body = json!({"type": "object", "properties": props, "additionalProperties": false});
    if !required.is_empty() {
        body["required"] = json!(required);
    }
    body
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let membership = schema_ref(&schema_name(MEMBERSHIP.name));
    api.add(
        Op::new(
            "post",
            "/api/v1/check_ins",
            "check_in",
            "check_ins",
            "Check a client in by id or card number: the tenant's policy decides (allowed, warned, refused); \
             recorded unless refused and the policy does not log refusals (needs `create` on check_in)",
        )
        .json_body(schema_ref("CheckInInput"))
        .ok(201, "Recorded", schema_ref("CheckInAnswer"))
        .ok(200, "Refused, nothing recorded", schema_ref("CheckInAnswer"))
        .errors(&[400, 403, 404, 422]),
        post(check_in::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/memberships/numbers",
            "membership_numbers",
            "memberships",
            "Active members, memberships expiring within 7 and 30 days, renewals and churn per month, \
             check-ins per day and per hour of the week, over what the caller may read",
        )
        .query(
            "as_of",
            json!({"type": "string", "format": "date"}),
            "The day the numbers are as of (default the tenant's today, in its time zone)",
        )
        .ok(200, "The numbers", schema_ref("MembershipNumbers"))
        .errors(&[400, 403]),
        get(numbers::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/memberships/{id}/renew",
            "renew_membership",
            "memberships",
            "Renew a membership: a new one continuing from its end date for its plan's duration \
             (needs `create` on membership)",
        )
        .path_id("Record id")
        .if_match("The ETag of the membership's version being renewed")
        .json_body(accepts(&MEMBERSHIP, RENEW_ACCEPTS, false))
        .ok_record(201, "The new membership", membership.clone())
        .errors(&[403, 404, 409, 422, 428]),
        post(
            move |State(app): State<AppState<S>>,
                  auth: Auth,
                  PathId(id): PathId,
                  IfMatch(v): IfMatch,
                  Body(input): Body<Map<String, Json>>| async move {
                let actor = auth.actor;
                let r = app
                    .write(move |svc| async move { svc.renew_membership(&actor, id, v, &input).await })
                    .await?;
                let location = format!("/api/v1/memberships/{}", r.id);
                Ok::<_, ApiError>(record_response(StatusCode::CREATED, &r, Some(location)))
            },
        ),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/memberships/{id}/freeze",
            "freeze_membership",
            "memberships",
            "Freeze a membership for a date range (a freeze child; the end date moves when the tenant's \
             `membership_freeze_extends` says so; needs write access to the membership)",
        )
        .path_id("Record id")
        .if_match("The ETag of the membership's version being frozen")
        .json_body(accepts(&MEMBERSHIP_FREEZE, FREEZE_ACCEPTS, true))
        .ok_record(200, "The membership after the freeze", membership)
        .errors(&[403, 404, 409, 422, 428]),
        post(
            move |State(app): State<AppState<S>>,
                  auth: Auth,
                  PathId(id): PathId,
                  IfMatch(v): IfMatch,
                  Body(input): Body<Map<String, Json>>| async move {
                let actor = auth.actor;
                let r = app
                    .write(move |svc| async move { svc.freeze_membership(&actor, id, v, &input).await })
                    .await?;
                Ok::<_, ApiError>(record_response(StatusCode::OK, &r, None))
            },
        ),
    )
}
