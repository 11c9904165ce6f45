//! Field work beyond CRUD: a crew member's day and a dispatcher's board for a date (the views are the
//! core's `Service::my_day` and `Service::board`; jobs, steps and crews themselves are generic CRUD
//! and transitions).

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::routes::records::list_request;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use crm_core::record::Record;
use crm_core::service::{Board, DayItem};
use serde_json::{Value as Json, json};

/// The `date` parameter, `YYYY-MM-DD` (absent: `None`).
fn date_param(p: &Params) -> ApiResult<Option<time::Date>> {
    date_param_named(p, "date")
}

/// A date parameter the operation needs.
fn required_date(p: &Params, name: &str) -> ApiResult<time::Date> {
    date_param_named(p, name)?.ok_or_else(|| ApiError::BadRequest(format!("`{name}` is required")))
}

/// A date parameter, `YYYY-MM-DD` (absent: `None`).
fn date_param_named(p: &Params, name: &str) -> ApiResult<Option<time::Date>> {
    p.0.get(name)
        .map(|s| {
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| ApiError::BadRequest(format!("`{name}` is a date, YYYY-MM-DD")))
        })
        .transpose()
}

fn rows(rs: &[Record]) -> Json {
    Json::Array(rs.iter().map(Record::to_json).collect())
}

fn day_json(date: Option<time::Date>, items: &[DayItem]) -> Json {
    let items: Vec<Json> = items
        .iter()
        .map(|i| {
            let one = |r: &Option<Record>| r.as_ref().map_or(Json::Null, Record::to_json);
            json!({"starts_at": i.starts_at, "ends_at": i.ends_at, "assignment": one(&i.assignment),
                "job": one(&i.job), "open_steps": rows(&i.open_steps), "appointment": one(&i.appointment)})
        })
        .collect();
    json!({"date": date.map(|d| d.to_string()), "items": items})
}

fn board_json(b: &Board) -> Json {
    let jobs: Vec<Json> = b
        .jobs
        .iter()
        .map(|j| json!({"job": j.job.to_json(), "crew": rows(&j.crew)}))
        .collect();
    json!({"date": b.date.to_string(), "jobs": jobs, "by_vehicle": b.by_vehicle, "by_user": b.by_user,
        "next_cursor": b.next_cursor})
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let date = |what: &str| json!({"type": "string", "format": "date", "description": what});
    api.add(
        Op::new(
            "get",
            "/api/v1/field/report",
            "field_work_report",
            "field_work",
            "How the jobs scheduled in a period that the caller may read went: completed, on time (by the \
             end of the window, or of the scheduled day), cancelled, and minutes per kind of step",
        )
        .required_query("from", date("The first day"), "The first scheduled day")
        .required_query("to", date("The last day"), "The last scheduled day")
        .ok(200, "The report", schema_ref("FieldWorkReport"))
        .errors(&[400, 403, 422]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                let (from, to) = (required_date(&p, "from")?, required_date(&p, "to")?);
                let actor = auth.actor;
                let r = app
                    .run(move |svc| async move { svc.field_work_report(&actor, Some(from), Some(to)).await })
                    .await?;
                Ok::<_, ApiError>(axum::Json(r).into_response())
            },
        ),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/field/my-day",
            "my_day",
            "field_work",
            "The caller's day in time order: their crew assignments, each with its job and the job's open \
             steps, and the occurrences of their appointments (jobs cancelled since, and cancelled or \
             missed appointments, are left out)",
        )
        .query(
            "date",
            date("The day"),
            "The day (default the tenant's today, in its time zone)",
        )
        .ok(200, "The day", schema_ref("MyDay"))
        .errors(&[400, 403]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                let day = date_param(&p)?;
                let actor = auth.actor;
                let items = app.run(move |svc| async move { svc.my_day(&actor, day).await }).await?;
                Ok::<_, ApiError>(axum::Json(day_json(day, &items)).into_response())
            },
        ),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/field/board",
            "dispatch_board",
            "field_work",
            "The jobs scheduled on a day that the caller may read, each with its crew, one keyset page at \
             a time, with the page's jobs per truck and per crew member (default order: truck, then \
             window start)",
        )
        .required_query("date", date("The day"), "The day the jobs are scheduled on")
        .page_params()
        .ok(200, "One page of the board", schema_ref("Board"))
        .errors(&[400, 403, 422]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                let day = required_date(&p, "date")?;
                let req = list_request(&p)?;
                let actor = auth.actor;
                let board = app
                    .run(move |svc| async move { svc.board(&actor, day, &req).await })
                    .await?;
                Ok::<_, ApiError>(axum::Json(board_json(&board)).into_response())
            },
        ),
    )
}
