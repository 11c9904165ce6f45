//! Job templates: a tenant's standard step list per job type (`moving_local`, `roof_replacement`),
//! as data an admin edits. A job created with a `job_type` and no steps starts with its template's
//! steps, validated like steps the client sent.

use super::{SINCE, declare};
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};
use serde_json::{Value as Json, json};

declare!(JOB_TEMPLATE, job_template);

/// Most steps of one template.
pub const MAX_STEPS: usize = 200;

/// Field names of a job template.
pub mod fields {
    /// The job type it applies to (a job's `job_type`), unique per tenant.
    pub const JOB_TYPE: &str = "job_type";
    pub const NAME: &str = "name";
    /// `[{"name": "Load the truck", "required": true}, ...]` in order.
    pub const STEPS: &str = "steps";
}
use fields::*;

fn job_template() -> EntityDef {
    let mut e = EntityDef::new("job_template", "job_templates")
        .field(F::new(JOB_TYPE, T::Text).required().max_len(64).unique())
        .field(F::new(NAME, T::Text).max_len(200))
        .field(F::new(STEPS, T::Json).required());
    e.since = SINCE;
    e.check = Some(check_steps);
    e
}

fn check_steps(r: &Record, errs: &mut Vec<FieldError>) {
    let Some(Value::Json(j)) = r.get(STEPS) else { return };
    let Some(steps) = j.as_array().filter(|a| !a.is_empty() && a.len() <= MAX_STEPS) else {
        errs.push(FieldError::new(
            STEPS,
            codes::INVALID_FORMAT,
            format!("a list of 1 to {MAX_STEPS} steps"),
        ));
        return;
    };
    for (i, s) in steps.iter().enumerate() {
        let ok = s.as_object().is_some_and(|o| {
            o.keys().all(|k| k == "name" || k == "required")
                && o.get("name")
                    .and_then(Json::as_str)
                    .is_some_and(|n| !n.trim().is_empty() && n.len() <= 200)
                && o.get("required").is_none_or(Json::is_boolean)
        });
        if !ok {
            errs.push(FieldError::new(
                format!("{STEPS}[{i}]"),
                codes::INVALID_FORMAT,
                "a step is {\"name\": text of at most 200 bytes, \"required\": true or false (default true)}",
            ));
        }
    }
}

/// The template's steps as step inputs, numbered in order.
pub fn step_inputs(t: &Record) -> Vec<Json> {
    let Some(Value::Json(Json::Array(steps))) = t.get(STEPS) else {
        return Vec::new();
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "position": i + 1,
                "name": s.get("name").cloned().unwrap_or(Json::Null),
                "required": s.get("required").cloned().unwrap_or(Json::Bool(true)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Id;

    #[test]
    fn steps_are_checked_and_become_numbered_inputs() {
        let mut t = Record::empty(&JOB_TEMPLATE, Id::nil(), Id::nil(), Default::default());
        t.set(
            STEPS,
            Value::Json(json!([{"name": "Load"}, {"name": "Drive", "required": false}])),
        );
        let mut errs = Vec::new();
        check_steps(&t, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let inputs = step_inputs(&t);
        assert_eq!(inputs[1], json!({"position": 2, "name": "Drive", "required": false}));
        t.set(
            STEPS,
            Value::Json(json!([{"name": "Load", "colour": "red"}, {"name": ""}])),
        );
        check_steps(&t, &mut errs);
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["steps[0]", "steps[1]"]);
    }
}
