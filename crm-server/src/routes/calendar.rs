//! Calendars over HTTP: a user's appointments in a range (the core's `Service::appointments`), and
//! the per-user calendar feed: issued with its token shown once (`POST /api/v1/calendar/feeds`),
//! revoked by deleting it (`DELETE /api/v1/calendar_feeds/{id}`), and served as iCalendar at
//! `GET /api/v1/calendar/{token}.ics`, where the token (never a session) is the credential.

use crate::api::{Api, Op, Security, schema_ref};
use crate::auth::Auth;
use crate::auth::tokens::{opaque, parse_opaque, random_secret, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::routes::records::list_request;
use crate::state::{AppState, ServerStore};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crm_core::entity::appointment::feed;
use crm_core::error::Error;
use crm_core::service::AppointmentPage;
use crm_core::value::{Id, Timestamp, parse_id};
use serde_json::{Value as Json, json};

/// `crmc_<tenant>_<feed id>_<secret>`.
pub const FEED_PREFIX: &str = "crmc_";

fn required_time(p: &Params, name: &str) -> ApiResult<Timestamp> {
    let s =
        p.0.get(name)
            .ok_or_else(|| ApiError::BadRequest(format!("`{name}` is required")))?;
    Timestamp::parse(s).ok_or_else(|| ApiError::BadRequest(format!("`{name}` is an RFC 3339 time")))
}

fn page_json(p: &AppointmentPage) -> Json {
    let items: Vec<Json> = p
        .items
        .iter()
        .map(|i| {
            let occ: Vec<Json> = i
                .occurrences
                .iter()
                .map(|(s, e)| json!({"starts_at": s, "ends_at": e}))
                .collect();
            json!({"appointment": i.appointment.to_json(), "occurrences": occ})
        })
        .collect();
    json!({"items": items, "next_cursor": p.next_cursor})
}

/// `<token>.ics`, the token's tenant, feed id and the hash of its secret.
fn feed_token(file: &str) -> Option<(Id, Id, String)> {
    let token = file.strip_suffix(".ics")?;
    let (tenant, id, secret) = parse_opaque(FEED_PREFIX, token)?;
    Some((tenant, id, sha256_hex(&secret)))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let time = |what: &str| json!({"type": "string", "format": "date-time", "description": what});
    api.add(
        Op::new(
            "get",
            "/api/v1/calendar/appointments",
            "list_calendar_appointments",
            "calendar",
            "The appointments of a user (default: the caller) holding time in a range, that the caller may \
             read, one keyset page at a time (default order: start), each with its occurrences in the \
             range (a series expanded in its zone)",
        )
        .required_query("from", time("Start of the range"), "Start of the range")
        .required_query(
            "to",
            time("End of the range"),
            "End of the range (at most 400 days after its start)",
        )
        .query(
            "user_id",
            json!({"type": "string", "format": "uuid"}),
            "Whose appointments (attended or owned)",
        )
        .page_params()
        .ok(200, "One page of appointments", schema_ref("AppointmentOccurrences"))
        .errors(&[400, 403, 422]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                let (from, to) = (required_time(&p, "from")?, required_time(&p, "to")?);
                let user =
                    p.0.get("user_id")
                        .map(|s| parse_id(s).ok_or_else(|| ApiError::BadRequest("`user_id` is a UUID".into())))
                        .transpose()?;
                let req = list_request(&p)?;
                let actor = auth.actor;
                let page = app
                    .run(move |svc| async move { svc.appointments(&actor, user, from, to, &req).await })
                    .await?;
                Ok::<_, ApiError>(axum::Json(page_json(&page)).into_response())
            },
        ),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/calendar/feeds",
            "create_calendar_feed",
            "calendar",
            "Issue the caller's calendar feed (revoking any earlier one): its URL carries a token shown \
             only now; subscribe to it from a calendar app",
        )
        .ok(
            201,
            "The feed's URL and token (store them now: only the token's hash is kept)",
            schema_ref("CreatedCalendarFeed"),
        )
        .errors(&[403]),
        post(move |State(app): State<AppState<S>>, auth: Auth| async move {
            let secret = random_secret();
            let hash = sha256_hex(&secret);
            let actor = auth.actor;
            let tenant = actor.tenant;
            let rec = app
                .write(move |svc| async move { svc.create_calendar_feed(&actor, &hash).await })
                .await?;
            let token = opaque(FEED_PREFIX, tenant, rec.id, &secret);
            let body = json!({"token": token, "url": format!("/api/v1/calendar/{token}.ics"),
                "calendar_feed": rec.to_json()});
            Ok::<_, ApiError>((StatusCode::CREATED, axum::Json(body)).into_response())
        }),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/calendar/{file}",
            "calendar_feed",
            "calendar",
            "A user's calendar feed as iCalendar (RFC 5545): their appointments (with their zones and \
             recurrence) and crew assignments from 30 days ago to a year ahead, as they may read them \
             now. The token in the name is the credential; a revoked token is not found",
        )
        .security(Security::None)
        .path_param(
            "file",
            json!({"type": "string", "pattern": "^crmc_[0-9a-f]{32}_[0-9a-f]{32}_[A-Za-z0-9_-]{32,}\\.ics$"}),
            "`<token>.ics`",
        )
        .ok_raw(
            200,
            json!({
                "description": "The feed",
                "content": { "text/calendar": { "schema": { "type": "string" } } }
            }),
        )
        .errors(&[404]),
        get(
            move |State(app): State<AppState<S>>, Path(file): Path<String>| async move {
                let (tenant, id, hash) = feed_token(&file)
                    .ok_or_else(|| ApiError::Core(Error::not_found(feed::CALENDAR_FEED.name, Id::nil())))?;
                let cal = app
                    .run(move |svc| async move {
                        let cal = svc.calendar_feed(tenant, id, &hash).await?;
                        Ok(crate::ics::render(&cal))
                    })
                    .await?;
                Ok::<_, ApiError>(
                    (
                        [
                            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                            (header::CACHE_CONTROL, "private, max-age=300"),
                        ],
                        cal,
                    )
                        .into_response(),
                )
            },
        ),
    )
}
