//! Scoring a lead that is not saved: the lead and its activities are validated and normalised as a
//! create would, then scored. Used by forms (score as you type) and by what-if tools.

use super::{CompiledModel, ScoreResult, ScoringModel};
use crate::entity::{ACTIVITY, LEAD};
use crate::error::{Error, FieldError, Result, codes};
use crate::record::Record;
use crate::validate::{self, CustomSpecs, Mode};
use crate::value::{Id, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// An unsaved lead (field values as for a create) and its activities (each as for a create; an
/// activity linked to nothing belongs to this lead).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsavedLead {
    pub lead: Json,
    #[serde(default)]
    pub activities: Vec<Json>,
}

/// Scores an unsaved lead with `model` (`None`: the built-in default model, which scores the leads
/// of a tenant that published none) as of `as_of`, with the explanation. `vctx` is the tenant's
/// validation context (see [`crate::tenant::validation_ctx`]) and `custom` its custom lead fields.
/// Errors on the lead, the activities and the model come back at once, with paths (`lead.email`,
/// `activities[1].kind`, `model.groups[0].rules[2].condition`).
pub fn preview_score(
    model: Option<&ScoringModel>,
    input: &UnsavedLead,
    custom: &CustomSpecs,
    vctx: &validate::Ctx,
    as_of: Timestamp,
) -> Result<ScoreResult> {
    let default;
    let model = match model {
        Some(m) => m,
        None => {
            default = super::default_model();
            &default
        }
    };
    let compiled = model.compile(custom).map_err(|e| prefixed("model", e));
    preview_with(compiled.as_ref().map_err(Clone::clone), input, custom, vctx, as_of)
}

/// [`preview_score`] with a model compiled already (or its errors).
pub(crate) fn preview_with(
    model: std::result::Result<&CompiledModel, Vec<FieldError>>,
    input: &UnsavedLead,
    custom: &CustomSpecs,
    vctx: &validate::Ctx,
    as_of: Timestamp,
) -> Result<ScoreResult> {
    let (lead, acts, mut errs) = unsaved_records(input, custom, vctx);
    let model = match model {
        Ok(m) => Some(m),
        Err(e) => {
            errs.extend(e);
            None
        }
    };
    match model {
        Some(m) if errs.is_empty() => Ok(m.evaluate(&lead, &acts, as_of)),
        _ => {
            errs.sort_by(|a, b| a.path.cmp(&b.path));
            Err(Error::Validation(errs))
        }
    }
}

/// The lead and activity records of an unsaved lead, and every field error.
fn unsaved_records(
    input: &UnsavedLead,
    custom: &CustomSpecs,
    vctx: &validate::Ctx,
) -> (Record, Vec<Record>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut lead = Record::empty(&LEAD, Id::nil(), Id::nil(), vctx.now);
    match input.lead.as_object() {
        Some(m) => {
            if let Err(e) = validate::apply_input(&mut lead, m, custom, vctx, Mode::Create) {
                errs.extend(prefixed("lead", e));
            }
        }
        None => errs.push(FieldError::new("lead", codes::INVALID_TYPE, "lead must be an object")),
    }
    let mut acts = Vec::new();
    for (i, a) in input.activities.iter().enumerate() {
        let path = format!("activities[{i}]");
        let mut rec = Record::empty(&ACTIVITY, Id::nil(), Id::nil(), vctx.now);
        match a.as_object() {
            Some(m) => match validate::apply_input(&mut rec, &of_lead(m), &CustomSpecs::new(), vctx, Mode::Create) {
                Ok(_) => acts.push(rec),
                Err(e) => errs.extend(prefixed(&path, e)),
            },
            None => errs.push(FieldError::new(
                path,
                codes::INVALID_TYPE,
                "an activity must be an object",
            )),
        }
    }
    // The engine expects activities newest first.
    let at = |r: &Record| r.get("occurred_at").and_then(crate::value::Value::as_timestamp);
    acts.sort_by_key(|a| std::cmp::Reverse(at(a)));
    (lead, acts, errs)
}

/// An activity linked to nothing belongs to the unsaved lead (whose id is nil).
fn of_lead(m: &Map<String, Json>) -> Map<String, Json> {
    let mut m = m.clone();
    let unlinked = ["lead_id", "contact_id", "company_id"]
        .iter()
        .all(|k| m.get(*k).is_none_or(Json::is_null));
    if unlinked {
        m.insert("lead_id".into(), Json::String(Id::nil().to_string()));
    }
    m
}

fn prefixed(prefix: &str, errs: Vec<FieldError>) -> Vec<FieldError> {
    errs.into_iter()
        .map(|mut e| {
            e.path = format!("{prefix}.{}", e.path);
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::default_model;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_750_000_000_000_000);

    fn input(j: Json) -> UnsavedLead {
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn an_unsaved_lead_is_normalised_like_a_create_and_scored() {
        let vctx = crate::tenant::validation_ctx(NOW, None);
        let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-15).to_rfc3339()});
        let lead = input(json!({"lead": {"first_name": "Ann"}, "activities": [call]}));
        let r = preview_score(None, &lead, &CustomSpecs::new(), &vctx, NOW).unwrap();
        assert_eq!(r.score, 5);
        let same = preview_score(Some(&default_model()), &lead, &CustomSpecs::new(), &vctx, NOW).unwrap();
        assert_eq!(same, r, "no model: the built-in default");

        let bad = input(json!({"lead": {"email": "x@"}, "activities": [{"kind": "x"}]}));
        let e = preview_score(None, &bad, &CustomSpecs::new(), &vctx, NOW).unwrap_err();
        let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["activities[0].kind", "lead.email"],
            "occurred_at defaults to now, as on create"
        );

        let mut broken = default_model();
        broken.tiers.clear();
        let e = preview_score(Some(&broken), &lead, &CustomSpecs::new(), &vctx, NOW).unwrap_err();
        assert!(e.field_errors().iter().all(|f| f.path.starts_with("model.")), "{e:?}");
    }
}
