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

fn hours(desc: &str) -> Json {
    json!({"type": ["string", "null"], "description": format!("{desc}, in hours with one decimal (a decimal string); null without any")})
}

fn user() -> Json {
    json!({"type": ["string", "null"], "format": "uuid", "description": "The user's id; null: activities without an owner"})
}

fn by_kind() -> Json {
    json!({"type": "object", "additionalProperties": count(), "description": "Activities per kind (call, email, ...); kinds without any are left out"})
}

fn productivity() -> Json {
    let response = obj(&[
        ("leads", count()),
        (
            "average_hours",
            hours("Average time from a lead's creation to its first counted activity"),
        ),
        (
            "median_hours",
            hours("Median time from a lead's creation to its first counted activity"),
        ),
    ]);
    let week = obj(&[
        ("user", user()),
        (
            "week",
            json!({"type": ["string", "null"], "format": "date", "description": "The week's Monday"}),
        ),
        ("activities", count()),
        ("by_kind", by_kind()),
    ]);
    let user_row = obj(&[
        ("user", user()),
        ("activities", count()),
        ("by_kind", by_kind()),
        ("leads_touched", count()),
        ("response", response.clone()),
    ]);
    obj(&[
        ("weeks", json!({"type": "array", "items": week})),
        ("users", json!({"type": "array", "items": user_row})),
        ("activities", count()),
        ("response", response),
    ])
}

fn cohort() -> Json {
    let month = obj(&[
        ("month", json!({"type": "string", "description": "YYYY-MM"})),
        (
            "offset",
            json!({"type": "integer", "minimum": 0, "description": "Months since the cohort's month"}),
        ),
        ("won", count()),
        ("active", count()),
        ("won_percent", percent("Won by then out of the cohort")),
        ("active_percent", percent("Still open then out of the cohort")),
    ]);
    let c = obj(&[
        (
            "cohort",
            json!({"type": "string", "description": "The month of creation, YYYY-MM"}),
        ),
        ("leads", count()),
        ("months", json!({"type": "array", "items": month})),
    ]);
    obj(&[
        (
            "as_of",
            json!({"type": "string", "description": "The last month reported, YYYY-MM"}),
        ),
        ("cohorts", json!({"type": "array", "items": c})),
    ])
}

fn geo() -> Json {
    let position = json!({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[longitude, latitude]"});
    let properties = obj(&[
        ("row", json!({"type": "integer"})),
        ("column", json!({"type": "integer"})),
        ("center", position.clone()),
        ("records", count()),
        (
            "value",
            json!({"type": ["string", "null"], "description": "The leads' summed estimated value (a decimal string); null for contacts and companies"}),
        ),
    ]);
    let polygon = obj(&[
        ("type", json!({"type": "string", "enum": ["Polygon"]})),
        (
            "coordinates",
            json!({"type": "array", "items": {"type": "array", "items": position}}),
        ),
    ]);
    let feature = obj(&[
        ("type", json!({"type": "string", "enum": ["Feature"]})),
        ("geometry", polygon),
        ("properties", properties),
    ]);
    obj(&[
        ("type", json!({"type": "string", "enum": ["FeatureCollection"]})),
        ("features", json!({"type": "array", "items": feature})),
        (
            "entity",
            json!({"type": "string", "enum": ["lead", "contact", "company"]}),
        ),
        (
            "cell",
            json!({"type": "string", "description": "The cell size in degrees (a decimal string)"}),
        ),
        ("records", count()),
    ])
}

fn lifetime_value() -> Json {
    let optional = |d: &str| json!({"type": ["string", "null"], "description": format!("{d} (a decimal string); null without customers")});
    let p = obj(&[
        ("percentile", json!({"type": "integer", "minimum": 1, "maximum": 99})),
        ("value", money("The value at that percentile (nearest rank)")),
    ]);
    let bin = obj(&[
        ("from", money("Lower bound, included")),
        ("to", money("Upper bound, excluded but for the last bin")),
        ("customers", count()),
        ("value", money("Their summed value")),
    ]);
    obj(&[
        ("entity", json!({"type": "string", "enum": ["contact", "company"]})),
        ("customers", count()),
        ("total", money("Every customer's value")),
        ("from_leads", money("The part from won leads")),
        ("from_quotes", money("The part from accepted quotes")),
        ("average", optional("Average value")),
        ("minimum", optional("Smallest value")),
        ("maximum", optional("Largest value")),
        ("percentiles", json!({"type": "array", "items": p})),
        ("histogram", json!({"type": "array", "items": bin})),
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
        "A report over what the caller may read: the funnel, velocity (time in stage, win rate, time to close), the weighted forecast against what was won, conversion and revenue by source, owner or team, team productivity (activities per user and week by kind, leads touched, response time), cohort retention by month of creation, a geographic grid of records with coordinates (GeoJSON), or the lifetime value distribution of contacts or companies",
    )
    .path_param("report", json!({"type": "string", "enum": names}), "Which report; another name is 404")
    .query(
        "q",
        json!({"type": "string", "maxLength": 4096}),
        "Text filter over what the report counts: leads, but activities for productivity and the `entity` for geo and lifetime_value, e.g. `source:referral owner:me`",
    )
    .query(
        "by",
        json!({"type": "string", "enum": ["source", "owner", "team"], "default": "source"}),
        "The breakdown's groups (only the breakdown takes it)",
    )
    .query(
        "tz",
        crate::openapi::utc_offset(),
        "The offset weeks and months are cut at (productivity and cohort only; default UTC)",
    )
    .query(
        "entity",
        json!({"type": "string", "enum": ["lead", "contact", "company"]}),
        "What geo counts (default lead) or whose lifetime_value is distributed (contact, the default, or company)",
    )
    .query(
        "cell",
        json!({"type": "number", "minimum": 0.0001, "maximum": 90, "default": 0.1}),
        "The geo grid's cell size in degrees (geo only)",
    )
    .query(
        "bins",
        json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
        "The lifetime value histogram's bins (lifetime_value only)",
    )
    .ok(
        200,
        "The report asked for: the funnel, velocity, forecast, breakdown, productivity, cohort, geo (a GeoJSON FeatureCollection) or lifetime_value",
        json!({"oneOf": [funnel(), velocity(), forecast(), breakdown(), productivity(), cohort(), geo(), lifetime_value()]}),
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
