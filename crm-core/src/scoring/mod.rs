//! PLACEHOLDER interface while the engine is written (see the helper task). Replaced wholesale.

use crate::error::FieldError;
use crate::record::Record;
use crate::validate::CustomSpecs;
use crate::value::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoringModel {
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct CompiledModel {
    pub model: ScoringModel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub group: String,
    pub rule: String,
    pub count: u32,
    pub points: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    pub score: i64,
    pub tier: String,
    pub temperature: String,
    pub reset: bool,
    pub contributions: Vec<Contribution>,
}

impl ScoringModel {
    pub fn compile(&self, _custom: &CustomSpecs) -> Result<CompiledModel, Vec<FieldError>> {
        Ok(CompiledModel {
            model: self.clone(),
        })
    }
}

impl CompiledModel {
    pub fn evaluate(
        &self,
        _lead: &Record,
        _activities: &[Record],
        _as_of: Timestamp,
    ) -> ScoreResult {
        ScoreResult {
            score: 0,
            tier: "cold".into(),
            temperature: "cold".into(),
            reset: false,
            contributions: vec![],
        }
    }
    pub fn score(&self, _lead: &Record, _activities: &[Record], _as_of: Timestamp) -> (i64, &str) {
        (0, "cold")
    }
    /// The longest engagement timeframe in days: activities older than this never count.
    pub fn lookback_days(&self) -> Option<i64> {
        None
    }
}

pub fn default_model() -> ScoringModel {
    ScoringModel {
        name: "default".into(),
    }
}

pub fn check_model_record(_r: &Record, _errs: &mut Vec<FieldError>) {}
