//! Configuration as data, per tenant: custom field definitions, pipelines, scoring models (with their
//! draft → published → retired workflow) and custom roles.

use super::{EntityRules, Need, declare, keyed_enum};
use crate::access::Action;
use crate::error::codes;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::FieldType as T;
use crate::workflow::{Effect, GuardCtx, Refusal, Stamp, Transition, Workflow};

declare!(CUSTOM_FIELD, custom_field);
declare!(PIPELINE, pipeline);
declare!(SCORING_MODEL, scoring_model);
declare!(ROLE, role);

fn custom_field() -> EntityDef {
    let mut e = EntityDef::new("custom_field", "custom_fields")
        .field(F::new("entity", T::Text).required().max_len(64))
        .field(F::new("key", T::Text).required().max_len(40))
        .field(F::new("label", T::Text).max_len(200))
        .field(F::new("spec", T::Json).required());
    e.check = Some(crate::validate::check_custom_field_def);
    e
}

/// A custom field definition's entity type, key and spec, as the tenant declared them (`None` for a
/// row whose spec does not decode).
pub fn custom_field_spec(r: &crate::record::Record) -> Option<(&str, &str, crate::schema::FieldSpec)> {
    let spec = r
        .get("spec")
        .map(crate::value::Value::to_json)
        .and_then(|j| serde_json::from_value(j).ok())?;
    Some((r.str("entity")?, r.str("key")?, spec))
}

fn pipeline() -> EntityDef {
    let mut e = EntityDef::new("pipeline", "pipelines")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("entity", T::Enum).required().options(&["lead"]).default("lead"))
        .field(F::new("stages", T::Json).required())
        .field(F::new("is_default", T::Bool).default(false));
    e.check = Some(crate::pipeline::check_pipeline);
    e
}

keyed_enum!(
    /// Where a scoring model is in its lifecycle. One model per tenant is published at a time.
    ModelStatus {
        Draft = "draft",
        Published = "published",
        Retired = "retired",
    }
);

/// Field names of a scoring model.
pub mod model_fields {
    pub const STATUS: &str = "status";
    pub const MODEL_VERSION: &str = "model_version";
    pub const DEFINITION: &str = "definition";
    pub const PUBLISHED_AT: &str = "published_at";
}
use model_fields::*;

/// The scoring model lifecycle: a draft (or a retired model) is published by someone who may approve
/// scoring models; it gets the next model version and retires the model published before it, and
/// then every lead is re-scored with it.
/// Published and retired models are not edited (their scores would no longer match their definition):
/// a change is a new draft.
pub static MODEL_WORKFLOW: Workflow = Workflow {
    field: STATUS,
    locked: &["published", "retired"],
    reenter_on_edit: None,
    create_stamps: &[],
    transitions: &[Transition {
        stamps: &[(PUBLISHED_AT, Stamp::Now), (MODEL_VERSION, Stamp::NextSequence)],
        displaces_to: Some("retired"),
        guard: Some(definition_compiles),
        then: Some(Effect::RescoreAll),
        ..Transition::new(
            "publish",
            Action::Approve,
            &["draft", "retired"],
            Some("published"),
            "scoring_model.published",
        )
    }],
};

/// A model is published only if its definition compiles against the tenant's lead fields today
/// (custom fields may have changed since the draft was written).
fn definition_compiles(cx: &GuardCtx<'_>) -> Result<(), Refusal> {
    let j = cx
        .record
        .get(DEFINITION)
        .map(crate::value::Value::to_json)
        .unwrap_or_default();
    let model: crate::scoring::ScoringModel =
        serde_json::from_value(j).map_err(|e| Refusal::new(DEFINITION, codes::INVALID_FORMAT, e.to_string()))?;
    let lead_custom = cx.ctx.related_custom.get("lead").cloned().unwrap_or_default();
    model.compile(&lead_custom).map(|_| ()).map_err(|errs| {
        let first = errs.into_iter().next();
        match first {
            Some(e) => Refusal::new(format!("{DEFINITION}.{}", e.path), &e.code, e.message),
            None => Refusal::new(DEFINITION, codes::INVALID_FORMAT, "does not compile"),
        }
    })
}

fn scoring_model() -> EntityDef {
    let mut e = EntityDef::new("scoring_model", "scoring_models")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(
            F::new(STATUS, T::Enum)
                .options(ModelStatus::KEYS)
                .read_only()
                .default(ModelStatus::Draft.key()),
        )
        .field(F::new(MODEL_VERSION, T::Integer).read_only())
        .field(F::new(DEFINITION, T::Json).required())
        .field(F::new(PUBLISHED_AT, T::Timestamp).read_only());
    e.check = Some(crate::scoring::check_model_record);
    e.workflow = Some(&MODEL_WORKFLOW);
    e.rules = &ScoringModelRules;
    e
}

/// A model's definition is checked against the lead's custom fields when it is published.
#[derive(Debug)]
pub struct ScoringModelRules;

impl EntityRules for ScoringModelRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::CustomFieldsOf("lead")]
    }
}

fn role() -> EntityDef {
    let mut e = EntityDef::new("role", "roles")
        .field(F::new("name", T::Text).required().max_len(64).unique())
        .field(F::new("grants", T::Json).required());
    e.resolves_callers = true;
    e.check = Some(crate::access::check_role_record);
    e
}
