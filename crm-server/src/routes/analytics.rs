//! `GET /api/v1/analytics/{report}`: the reports of [`crm_core::analytics`] over the leads the
//! caller may read that match `q` ([`crm_core::service::Service::report`]).

use crate::api::{Api, Op};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::state::{AppState, ServerStore};
use axum::extract::{Path, State};
use axum::routing::get;
use crm_core::service::{ReportKind, ReportRequest};
use serde_json::{Value as Json, json};

fn obj(props: &[(&str, Json)]) -> Json {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    let props: serde_json::Map<String, Json> = props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({"type": "object", "required": required, "properties": props})
}

fn count() -> Json {
    json!({"type": "integer", "minimum": 0})
}

fn money(desc: &str) -> Json {
    json!({"type": "string", "description": format!("{desc} (a decimal string)")})
}

fn percent(desc: &str) -> Json {
    json!({"type": ["string", "null"], "description": format!("{desc}, in percent with one decimal (a decimal string); null when there is nothing to divide by")})
}

fn days(desc: &str) -> Json {
    json!({"type": ["string", "null"], "description": format!("{desc}, in days with two decimals (a decimal string); null without any")})
}

fn funnel() -> Json {
    let step = obj(&[
        ("stage", json!({"type": "string"})),
        ("label", json!({"type": "string"})),
        ("kind", json!({"type": "string", "enum": ["open", "won", "lost"]})),
        ("current", count()),
        ("current_value", money("Estimated value of the leads now in the stage")),
        ("reached", count()),
        (
            "conversion_percent",
            percent("Reached this step out of those that reached the open step before"),
        ),
        ("drop_off", count()),
    ]);
    obj(&[
        ("total", count()),
        ("steps", json!({"type": "array", "items": step})),
        ("won", count()),
        ("won_value", money("Estimated value of the won leads")),
        ("lost", count()),
        ("other", count()),
        ("win_rate_percent", percent("Won out of won and lost")),
        (
            "overall_conversion_percent",
            percent("Won out of every lead in the pipeline"),
        ),
    ])
}

fn velocity() -> Json {
    let stage = obj(&[
        ("stage", json!({"type": "string"})),
        ("stays", count()),
        ("average_days", days("Average length of the stays that ended")),
        ("median_days", days("Median length of the stays that ended")),
        ("in_stage_now", count()),
    ]);
    obj(&[
        ("stages", json!({"type": "array", "items": stage})),
        ("won", count()),
        ("lost", count()),
        ("win_rate_percent", percent("Won out of closed")),
        ("average_days_to_close", days("Average time from creation to winning")),
        ("median_days_to_close", days("Median time from creation to winning")),
    ])
}

fn forecast() -> Json {
    let month = obj(&[
        (
            "month",
            json!({"type": ["string", "null"], "description": "YYYY-MM; null: no expected close date"}),
        ),
        ("open_leads", count()),
        ("pipeline_value", money("Estimated value of the open leads")),
        ("weighted_value", money("Their value times their stage's probability")),
        ("won_leads", count()),
        ("won_value", money("Value won in the month")),
    ]);
    obj(&[
        (
            "probabilities",
            json!({"type": "array", "items": obj(&[("stage", json!({"type": "string"})), ("percent", json!({"type": "integer", "minimum": 0, "maximum": 100}))])}),
        ),
        ("months", json!({"type": "array", "items": month})),
        ("pipeline_value", money("Total open value")),
        ("weighted_value", money("Total weighted value")),
        ("won_value", money("Total won value")),
    ])
}

fn breakdown() -> Json {
    let row = obj(&[
        (
            "key",
            json!({"type": ["string", "null"], "description": "The source, or the owner's or team's id; null: none"}),
        ),
        ("leads", count()),
        ("open", count()),
        ("won", count()),
        ("lost", count()),
        ("conversion_percent", percent("Won out of every lead of the group")),
        ("win_rate_percent", percent("Won out of won and lost")),
        ("won_value", money("Revenue: the value of the won leads")),
        ("open_value", money("The value of the open leads")),
    ]);
    obj(&[
        ("by", json!({"type": "string", "enum": ["source", "owner", "team"]})),
        ("rows", json!({"type": "array", "items": row})),
    ])
}

/// Adds the analytics route.
pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let names: Vec<&str> = ReportKind::ALL.iter().map(|(n, _)| *n).collect();
    let op = Op::new(
        "get",
        "/api/v1/analytics/{report}",
        "analytics_report",
        "analytics",
        "A report over the leads the caller may read: the funnel, velocity (time in stage, win rate, time to close), the weighted forecast against what was won, or conversion and revenue by source, owner or team",
    )
    .path_param("report", json!({"type": "string", "enum": names}), "Which report; another name is 404")
    .query(
        "q",
        json!({"type": "string", "maxLength": 4096}),
        "Text filter over leads, e.g. `source:referral owner:me`",
    )
    .query(
        "by",
        json!({"type": "string", "enum": ["source", "owner", "team"], "default": "source"}),
        "The breakdown's groups (only the breakdown takes it)",
    )
    .ok(
        200,
        "The report: the funnel, velocity, forecast or breakdown, by the report asked for",
        json!({"oneOf": [funnel(), velocity(), forecast(), breakdown()]}),
    )
    .errors(&[400, 403, 404, 422]);
    api.add(
        op,
        get(
            move |State(app): State<AppState<S>>, auth: Auth, Path(report): Path<String>, p: Params| async move {
                let kind: ReportKind = report.parse()?;
                let req = ReportRequest::from_params(|k| p.get(k))?;
                let actor = auth.actor;
                let answer = app
                    .run(move |svc| async move { svc.report(&actor, kind, &req).await })
                    .await?;
                ApiResult::Ok(axum::Json(answer))
            },
        ),
    )
}
