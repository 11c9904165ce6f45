//! Rule-based lead scoring.
//!
//! A [`ScoringModel`] (stored as JSON in a `scoring_model` record's `definition`) has:
//! - groups of rules, each `fit` (conditions on the lead's fields, [`crate::query::FilterSpec`] JSON or
//!   the text filter language) or `engagement` (rules matching the lead's activities by kind,
//!   direction, outcome and an optional activity condition, with per-rule `limit` (most recent first),
//!   `min_count`, `within_days` timeframe and linear `decay_days`), each group bounded by an optional
//!   `cap` (at least 0) and `floor` (at most 0);
//! - a `total_cap` (at most 100); scores are floored at 0;
//! - tiers `{name, min_score, temperature}` from the highest down, the last at 0;
//! - `reset_when` conditions (e.g. status `lost`) that zero the score.
//!
//! [`ScoringModel::compile`] validates everything at once (errors carry paths such as
//! `groups[0].rules[2].condition`) and binds conditions once; [`CompiledModel::evaluate`] explains a
//! score (the contributions add up to it) and [`CompiledModel::score`] computes the same score and
//! temperature without allocating. Evaluation "as of" a time is replayable: activities after it never
//! count.

mod compile;
mod default;
mod engine;
mod model;
pub(crate) mod preview;
#[cfg(test)]
mod tests;

pub use compile::{MAX_DAYS, MAX_GROUPS, MAX_POINTS, MAX_RESETS, MAX_RULES_PER_GROUP, MAX_TIERS};
pub use default::default_model;
pub use engine::CompiledModel;
pub use model::{
    Condition, Contribution, ContributionKind, Group, GroupKind, OneOrMany, ResetRule, Rule, ScoreResult, ScoringModel,
    Tier,
};
pub use preview::{UnsavedLead, preview_score};

use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::value::Value;

/// Cross-field check of a `scoring_model` record: its `definition` parses as a [`ScoringModel`] and
/// compiles. Conditions on lead custom fields are checked as text here (this check does not know the
/// tenant's custom fields); publishing compiles against the real ones.
pub fn check_model_record(r: &Record, errs: &mut Vec<FieldError>) {
    let Some(def) = r.get("definition").filter(|v| !v.is_null()) else {
        return;
    };
    let model: ScoringModel = match serde_json::from_value(Value::to_json(def)) {
        Ok(m) => m,
        Err(e) => {
            return errs.push(FieldError::new("definition", codes::INVALID_FORMAT, e.to_string()));
        }
    };
    errs.extend(model.check().into_iter().map(|mut e| {
        e.path = format!("definition.{}", e.path);
        e
    }));
}
