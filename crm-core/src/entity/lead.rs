//! Leads: a prospect moving through a pipeline, scored by the tenant's model (score and temperature are
//! derived by the core), converted to a customer when won.

use super::{EntityRules, Need, WriteCtx, address, declare, keyed_enum, scoped};
use crate::error::{Error, FieldError, Result, codes};
use crate::pipeline::default_pipeline;
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Timestamp};

declare!(LEAD, lead);

pub const LEAD_SOURCES: &[&str] = &[
    "website",
    "referral",
    "google_ads",
    "facebook",
    "door_knock",
    "storm_canvass",
    "home_show",
    "phone_in",
    "yard_sign",
    "partner",
    "walk_in",
    "other",
];
pub const PROJECT_TYPES: &[&str] = &[
    "roof_replacement",
    "roof_repair",
    "roof_inspection",
    "storm_damage",
    "gutters",
    "siding",
    "windows",
    "commercial_roofing",
    "local_move",
    "long_distance_move",
    "packing",
    "storage",
    "membership",
    "other",
];

keyed_enum!(
    /// How close a lead is to buying, from its score and the model's tiers.
    Temperature {
        Hot = "hot",
        Warm = "warm",
        Cold = "cold",
    }
);

pub const TEMPERATURES: &[&str] = Temperature::KEYS;

/// Field names of a lead that code reads.
pub mod fields {
    pub const STATUS: &str = "status";
    pub const PIPELINE_ID: &str = "pipeline_id";
    pub const SCORE: &str = "score";
    pub const TEMPERATURE: &str = "temperature";
    pub const SCORE_MODEL_VERSION: &str = "score_model_version";
    pub const SCORED_AT: &str = "scored_at";
    pub const ESTIMATED_VALUE: &str = "estimated_value";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
    pub const CONVERTED_AT: &str = "converted_at";
    pub const SOURCE: &str = "source";
    /// The day the lead is expected to close (won or lost): what the forecast groups by.
    pub const EXPECTED_CLOSE_DATE: &str = "expected_close_date";
}
use fields::*;

fn lead() -> EntityDef {
    let mut e = address(
        EntityDef::new("lead", "leads")
            .field(F::new("first_name", T::Text).max_len(100))
            .field(F::new("last_name", T::Text).max_len(100))
            .field(F::new("company_name", T::Text).max_len(200))
            .field(F::new("email", T::Email))
            .field(F::new("phone", T::Phone)),
    )
    .field(F::new(SOURCE, T::Enum).options(LEAD_SOURCES).default("other"))
    .field(F::new(STATUS, T::Text).required().max_len(64).default("new"))
    .field(F::new(PIPELINE_ID, T::Ref("pipeline")))
    .field(
        F::new(SCORE, T::Integer)
            .derived()
            .range(Some(0), Some(100))
            .default(0i64),
    )
    .field(
        F::new(TEMPERATURE, T::Enum)
            .required()
            .derived()
            .options(TEMPERATURES)
            .default(Temperature::Cold.key()),
    )
    .field(F::new(SCORE_MODEL_VERSION, T::Integer).derived())
    .field(F::new(SCORED_AT, T::Timestamp).derived())
    .field(F::new("owner_id", T::Ref("user")))
    .field(F::new("team_id", T::Ref("team")))
    .field(F::new("location_id", T::Ref("location")))
    .field(F::new("project_type", T::Enum).options(PROJECT_TYPES))
    .field(F::new(ESTIMATED_VALUE, T::Money).range(Some(0), None))
    .field(
        F::new("priority", T::Enum)
            .options(&["low", "medium", "high", "urgent"])
            .default("medium"),
    )
    .field(F::new("notes", T::Text).max_len(10_000))
    .field(F::new("tags", T::Tags))
    .field(F::new("external_id", T::Text).max_len(100).unique())
    .field(F::new("lost_reason", T::Text).max_len(500))
    .field(F::new(CONTACT_ID, T::Ref("contact")).read_only())
    .field(F::new(COMPANY_ID, T::Ref("company")).read_only())
    .field(F::new(CONVERTED_AT, T::Timestamp).read_only())
    .field(F::new(EXPECTED_CLOSE_DATE, T::Date).since(8));
    scoped(&mut e);
    e.scored = true;
    e.search_fields = &["first_name", "last_name", "company_name", "email", "phone"];
    e.check = Some(lead_check);
    e.rules = &LeadRules;
    e.stage_field = Some(STATUS);
    // Serve the common pages (by status, an owner's or a team's leads by status) in score order.
    e.indexes = vec![
        &["status", "score"],
        &["owner_id", "status", "score"],
        &["team_id", "status", "score"],
        &["score"],
    ];
    e
}

/// The chance (in percent) that a lead in each stage of the built-in pipeline is won, which the
/// weighted forecast multiplies its value by ([`crate::analytics::forecast`]). A tenant overrides
/// any of them, or gives its own stages one, in the organization's `stage_probabilities`.
pub const DEFAULT_STAGE_PROBABILITIES: &[(&str, u8)] = &[
    ("new", 10),
    ("contacted", 20),
    ("qualified", 40),
    ("appointment_set", 50),
    ("proposal_sent", 60),
    ("negotiation", 80),
];

/// The probability of a stage: the tenant's override, else the declared default, else 100 for a
/// won stage of `pipeline` and 0 for any other.
pub fn stage_probability(
    pipeline: &crate::pipeline::Pipeline,
    overrides: &std::collections::BTreeMap<String, u8>,
    stage: &str,
) -> u8 {
    use crate::pipeline::StageKind;
    if let Some(p) = overrides.get(stage) {
        return *p;
    }
    if let Some((_, p)) = DEFAULT_STAGE_PROBABILITIES.iter().find(|(k, _)| *k == stage) {
        return *p;
    }
    match pipeline.stage(stage).map(|s| s.kind) {
        Some(StageKind::Won) => 100,
        _ => 0,
    }
}

/// The organization setting holding the tenant's stage probabilities: a JSON object from stage
/// key to a whole percent (`{"proposal_sent": 55}`).
pub const STAGE_PROBABILITIES: &str = "stage_probabilities";

/// Reads the tenant's stage probabilities from the organization record (none set: empty). What
/// [`check_stage_probabilities`] would refuse is left out.
pub fn stage_probabilities(org: &Record) -> std::collections::BTreeMap<String, u8> {
    org.get(STAGE_PROBABILITIES)
        .map(|v| v.to_json())
        .and_then(|j| parse_probabilities(&j).ok())
        .unwrap_or_default()
}

fn parse_probabilities(
    j: &serde_json::Value,
) -> std::result::Result<std::collections::BTreeMap<String, u8>, Vec<FieldError>> {
    let mut out = std::collections::BTreeMap::new();
    let mut errs = Vec::new();
    match j {
        serde_json::Value::Null => {}
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v.as_u64() {
                    Some(p) if p <= 100 => {
                        out.insert(k.clone(), p as u8);
                    }
                    p => errs.push(FieldError::new(
                        format!("{STAGE_PROBABILITIES}.{k}"),
                        if p.is_some() {
                            codes::TOO_LARGE
                        } else {
                            codes::INVALID_FORMAT
                        },
                        "a whole percent from 0 to 100",
                    )),
                }
            }
        }
        _ => errs.push(FieldError::new(
            STAGE_PROBABILITIES,
            codes::INVALID_FORMAT,
            "an object from stage key to a whole percent",
        )),
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Cross-field check of the organization's stage probabilities (every value a whole 0..=100).
pub fn check_stage_probabilities(org: &Record, errs: &mut Vec<FieldError>) {
    if let Some(v) = org.get(STAGE_PROBABILITIES)
        && let Err(e) = parse_probabilities(&v.to_json())
    {
        errs.extend(e);
    }
}

/// A lead needs something to call it by.
fn lead_check(r: &Record, errs: &mut Vec<FieldError>) {
    let named = ["first_name", "last_name", "company_name", "email", "phone"]
        .iter()
        .any(|f| r.get(f).is_some_and(|v| !v.is_null()));
    if !named {
        errs.push(FieldError::new(
            "first_name",
            codes::REQUIRED,
            "a lead needs a name, a company, an email or a phone",
        ));
    }
}

/// A lead's status is a stage of its pipeline (its own, the tenant's default, or the built-in one).
#[derive(Debug)]
pub struct LeadRules;

impl EntityRules for LeadRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::Pipelines]
    }

    fn routed(&self) -> bool {
        true
    }

    fn check_tenant_rules(&self, rec: &Record, touched: &dyn Fn(&str) -> bool, ctx: &WriteCtx) -> Result<()> {
        if !touched(STATUS) && !touched(PIPELINE_ID) {
            return Ok(());
        }
        let chosen = rec
            .id_of(PIPELINE_ID)
            .and_then(|id| ctx.pipelines.iter().find(|(pid, _)| *pid == id).map(|(_, p)| p));
        let fallback;
        let pipeline = match chosen.or(ctx.default_pipeline.as_ref()) {
            Some(p) => p,
            None => {
                fallback = default_pipeline();
                &fallback
            }
        };
        let status = rec.str(STATUS).unwrap_or_default();
        if pipeline.stage(status).is_none() {
            let keys: Vec<&str> = pipeline.stages.iter().map(|s| s.key.as_str()).collect();
            return Err(Error::field(
                STATUS,
                codes::INVALID_OPTION,
                format!("must be one of: {}", keys.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Sets a lead's derived score fields.
pub(crate) fn set_score(rec: &mut Record, score: i64, temperature: &str, model_version: i64, now: Timestamp) {
    rec.set(SCORE, score);
    rec.set(TEMPERATURE, temperature);
    rec.set(SCORE_MODEL_VERSION, model_version);
    rec.set(SCORED_AT, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::ORGANIZATION;
    use crate::pipeline::{Stage, StageKind, default_pipeline};
    use crate::value::{Id, Value};
    use std::collections::BTreeMap;

    #[test]
    fn stage_probabilities_take_the_override_then_the_default_then_the_kind() {
        let mut p = default_pipeline();
        p.stages.push(Stage {
            key: "signed".into(),
            label: "Signed".into(),
            kind: StageKind::Won,
        });
        p.stages.push(Stage {
            key: "site_visit".into(),
            label: "Site visit".into(),
            kind: StageKind::Open,
        });
        let overrides = BTreeMap::from([("qualified".to_owned(), 35u8), ("site_visit".to_owned(), 45)]);
        let got: Vec<u8> = [
            "qualified",
            "negotiation",
            "won",
            "signed",
            "lost",
            "site_visit",
            "elsewhere",
        ]
        .iter()
        .map(|s| stage_probability(&p, &overrides, s))
        .collect();
        assert_eq!(got, [35, 80, 100, 100, 0, 45, 0]);
    }

    #[test]
    fn the_organization_setting_is_checked_and_read() {
        let mut org = Record::empty(&ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
        let json = Value::Json;
        org.set(
            STAGE_PROBABILITIES,
            json(serde_json::json!({"new": 15, "won": 101, "lost": -1})),
        );
        let mut errs = Vec::new();
        check_stage_probabilities(&org, &mut errs);
        let paths: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            paths,
            [
                ("stage_probabilities.lost", codes::INVALID_FORMAT),
                ("stage_probabilities.won", codes::TOO_LARGE)
            ]
        );
        assert!(stage_probabilities(&org).is_empty(), "a refused setting is not used");
        org.set(STAGE_PROBABILITIES, json(serde_json::json!({"new": 15})));
        let mut errs = Vec::new();
        check_stage_probabilities(&org, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(stage_probabilities(&org), BTreeMap::from([("new".to_owned(), 15)]));
        org.set(STAGE_PROBABILITIES, json(serde_json::json!([15])));
        check_stage_probabilities(&org, &mut errs);
        assert_eq!(errs[0].path, STAGE_PROBABILITIES);
    }
}
