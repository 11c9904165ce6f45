//! `GET /api/v1/{table}/aggregate`: records grouped and measured in the store, within the caller's
//! read scope ([`crm_core::service::Service::aggregate`]).

use crate::api::{Api, Op};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::routes::records::collection_path;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::routing::get;
use crm_core::schema::EntityDef;
use crm_core::service::AggregateRequest;
use serde_json::json;

/// A comma-separated list of field names (`custom.<key>` included); empty is like absent.
const FIELDS: &str = "^([A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*)?$";
/// One or two group keys, each a field name with an optional time bucket; empty is like absent.
const KEYS: &str = "^([A-Za-z0-9_.]+(:(day|week|month))?(,[A-Za-z0-9_.]+(:(day|week|month))?)?)?$";

/// The answer's schema: what [`crm_core::service::Aggregate::to_json`] writes.
fn answer() -> serde_json::Value {
    let any = json!({"description": "A field value in its JSON form (money as a decimal string, dates as YYYY-MM-DD), or null"});
    json!({
        "type": "object",
        "required": ["by", "measures", "groups"],
        "properties": {
            "by": {"description": "The group keys, as asked (`owner_id`, `created_at:month`)", "type": "array", "items": {"type": "string"}},
            "measures": {"description": "The measures, in order (`count`, `sum(estimated_value)`, `avg(score)`)", "type": "array", "items": {"type": "string"}},
            "groups": {
                "description": "One entry per group, ordered by its keys (nulls first)",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["keys", "count", "values"],
                    "properties": {
                        "keys": {"description": "One value per group key: a bucket as its first day", "type": "array", "items": any},
                        "count": {"description": "Rows in the group", "type": "integer", "minimum": 0},
                        "values": {"description": "One value per measure; null when every value measured is null", "type": "array", "items": any}
                    }
                }
            }
        }
    })
}

/// Adds the aggregate route of one entity type.
pub fn routes<S: ServerStore>(api: Api<S>, def: &'static EntityDef) -> Api<S> {
    let fields = |desc: &str| (json!({"type": "string", "pattern": FIELDS}), desc.to_owned());
    let mut op = Op::new(
        "get",
        format!("{}/aggregate", collection_path(def)),
        format!("aggregate_{}", def.table),
        def.table,
        format!("Group and measure {} (counts, sums, averages, minimums, maximums)", def.table),
    )
    .query(
        "q",
        json!({"type": "string", "maxLength": 4096}),
        "Text filter, e.g. `status:new owner:me`",
    )
    .query(
        "by",
        json!({"type": "string", "pattern": KEYS}),
        "Up to two group keys, comma-separated; a date or timestamp field may take a time bucket: `source,created_at:month` (`day`, `week` (ISO, from Monday), `month`)",
    )
    .query(
        "count",
        json!({"type": "string"}),
        "Present (with no value, or any but `false`, `0`, `no`): count the rows of each group as a measure. Without any measure the count is the one measure",
    );
    for (name, what) in [
        ("sum", "Sum"),
        (
            "avg",
            "Average (money rounded half-even to the cent, integers and decimals to 6 places)",
        ),
        ("min", "Minimum"),
        ("max", "Maximum"),
    ] {
        let (schema, desc) = fields(&format!(
            "{what} of these fields, comma-separated (integer, money, decimal or number fields{})",
            if matches!(name, "min" | "max") {
                "; dates and timestamps too"
            } else {
                ""
            }
        ));
        op = op.query(name, schema, &desc);
    }
    let op = op
        .query(
            "tz",
            crate::openapi::utc_offset(),
            "The fixed UTC offset time buckets are computed at (`+02:00`; default UTC)",
        )
        .ok(200, "The groups and their measures", answer())
        .errors(&[400, 403, 422]);
    api.add(
        op,
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                // `count` counts when present, even without a value.
                let req = AggregateRequest::from_params(|k| match k {
                    "count" => p.0.get(k).map(String::as_str),
                    k => p.get(k),
                })?;
                let actor = auth.actor;
                let a = app
                    .run(move |svc| async move { svc.aggregate(&actor, def.name, &req).await })
                    .await?;
                ApiResult::Ok(axum::Json(a.to_json()))
            },
        ),
    )
}
