//! The stored form of a scoring model: plain serde types, kept as JSON in a `scoring_model` record's
//! `definition` field. Unknown keys are rejected (a misspelt `within_day` must not silently score).

use crate::entity::Temperature;
use crate::query::FilterSpec;
use serde::{Deserialize, Serialize};

/// A rule-based scoring model: groups of rules add points, caps bound them, tiers name the result.
///
/// ```json
/// {
///   "name": "Roofing",
///   "total_cap": 100,
///   "groups": [
///     {"name": "fit", "kind": "fit", "cap": 50, "rules": [
///       {"name": "referral", "points": 20,
///        "condition": {"cmp": {"field": "source", "op": "eq", "value": "referral"}}}]},
///     {"name": "engagement", "kind": "engagement", "cap": 50, "floor": -10, "rules": [
///       {"name": "inbound_call", "points": 10, "kind": "call", "direction": "inbound",
///        "limit": 3, "within_days": 30, "decay_days": 30}]}
///   ],
///   "tiers": [{"name": "A", "min_score": 70, "temperature": "hot"},
///             {"name": "C", "min_score": 0, "temperature": "cold"}],
///   "reset_when": [{"name": "lost",
///                   "condition": {"cmp": {"field": "status", "op": "eq", "value": "lost"}}}]
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringModel {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The highest score (1 to 100: a lead's `score` field holds 0 to 100). Scores are also floored at 0.
    #[serde(default = "default_total_cap")]
    pub total_cap: i64,
    pub groups: Vec<Group>,
    /// Ordered from the highest `min_score` down; the last one has `min_score` 0.
    pub tiers: Vec<Tier>,
    /// Conditions on the lead that zero its score (e.g. status `lost`); the first that matches wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_when: Vec<ResetRule>,
}

fn default_total_cap() -> i64 {
    100
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Rules are conditions on the lead's own fields; each matching rule adds its points once.
    Fit,
    /// Rules match the lead's activities; each matching activity adds points.
    Engagement,
}

/// A group of rules whose points are summed, then bounded by `cap` (from above) and `floor` (from below).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    /// Most points the group can give (at least 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<i64>,
    /// Most points negative rules can take away in total (at most 0). Without one, negative points are
    /// only bounded by the score's own floor of 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<i64>,
    pub rules: Vec<Rule>,
}

/// One rule. Fit rules have a `condition` on the lead. Engagement rules match activities by `kind`,
/// `direction`, `outcome` and an optional `condition` on activity fields; every key is optional there
/// (an engagement rule with none matches every activity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// Points per match (per activity for engagement rules); negative takes points away.
    pub points: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Activity kind or kinds (`call`, `email`, `meeting`, `note`, `sms`, `visit`, `check_in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OneOrMany>,
    /// `inbound` or `outbound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Activity outcome or outcomes (compared ignoring ASCII case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OneOrMany>,
    /// At most this many activities count, the most recent first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The rule gives nothing unless at least this many activities match (within its timeframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// Only activities at most this many days old count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<i64>,
    /// An activity's points shrink linearly with its age: full at age 0, nothing at `decay_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay_days: Option<i64>,
}

impl Rule {
    /// A fit rule.
    pub fn fit(name: &str, points: i64, condition: FilterSpec) -> Rule {
        Rule {
            condition: Some(Condition::Filter(condition)),
            ..Rule::engagement(name, points)
        }
    }

    /// An engagement rule matching every activity; narrow it with the struct fields.
    pub fn engagement(name: &str, points: i64) -> Rule {
        Rule {
            name: name.to_owned(),
            points,
            condition: None,
            kind: None,
            direction: None,
            outcome: None,
            limit: None,
            min_count: None,
            within_days: None,
            decay_days: None,
        }
    }
}

/// A filter: canonically the typed JSON form ([`FilterSpec`]), or the text filter language
/// (`status:lost`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Filter(FilterSpec),
    Text(String),
}

/// One string or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    pub min_score: i64,
    /// `hot`, `warm` or `cold` (the lead's `temperature`).
    pub temperature: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRule {
    pub name: String,
    pub condition: Condition,
}

/// What an explanation entry is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributionKind {
    /// A rule's points.
    #[default]
    Rule,
    /// A group's or the total's cap cut points (negative).
    Cap,
    /// A group's floor or the score's floor of 0 gave points back (positive).
    Floor,
    /// A reset condition zeroed the score.
    Reset,
}

/// One line of a score's explanation. The `points` of all lines add up to the score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The group's name; `total` for the model's cap and floor, `reset` for a reset.
    pub group: String,
    /// The rule's name; `cap` or `floor` for bounds; the reset condition's name.
    pub rule: String,
    /// Activities counted (engagement rules); 1 for a matching fit rule or reset; 0 for bounds.
    pub count: u32,
    /// Whole points (decay is summed per rule, then rounded half away from zero): the lines add up
    /// to the score exactly.
    pub points: i64,
    #[serde(default)]
    pub kind: ContributionKind,
}

/// A lead's score with its explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    pub score: i64,
    pub tier: String,
    /// The tier's temperature: what the lead's `temperature` field holds.
    pub temperature: Temperature,
    /// A reset condition matched (its name is in `contributions`).
    pub reset: bool,
    pub contributions: Vec<Contribution>,
}
