//! Pipelines: the ordered stages a lead's `status` moves through, configurable per tenant.

use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::value::Value;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub key: String,
    #[serde(default)]
    pub label: String,
    #[serde(default = "open")]
    pub kind: StageKind,
}

fn open() -> StageKind {
    StageKind::Open
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The keys of the stages of one kind, in pipeline order.
    pub fn stage_keys(&self, kind: StageKind) -> impl Iterator<Item = &str> {
        self.stages
            .iter()
            .filter(move |s| s.kind == kind)
            .map(|s| s.key.as_str())
    }

    /// The keys of the open stages: a lead whose status is one of them is still being worked.
    pub fn open_stage_keys(&self) -> Vec<String> {
        self.stage_keys(StageKind::Open).map(str::to_owned).collect()
    }

    pub fn from_record(r: &Record) -> Option<Pipeline> {
        let stages = serde_json::from_value(r.get("stages")?.to_json()).ok()?;
        Some(Pipeline { stages })
    }
}

/// The lead pipeline every tenant starts with (fits roofing and moving sales alike).
pub fn default_pipeline() -> Pipeline {
    let s = |key: &str, label: &str, kind| Stage {
        key: key.into(),
        label: label.into(),
        kind,
    };
    Pipeline {
        stages: vec![
            s("new", "New", StageKind::Open),
            s("contacted", "Contacted", StageKind::Open),
            s("qualified", "Qualified", StageKind::Open),
            s("appointment_set", "Appointment set", StageKind::Open),
            s("proposal_sent", "Proposal sent", StageKind::Open),
            s("negotiation", "Negotiation", StageKind::Open),
            s("won", "Won", StageKind::Won),
            s("lost", "Lost", StageKind::Lost),
        ],
    }
}

/// Cross-field check of a `pipeline` record: stages parse, keys are unique, and there is an open,
/// a won and a lost stage.
pub fn check_pipeline(r: &Record, errs: &mut Vec<FieldError>) {
    let Some(v) = r.get("stages").filter(|v| !v.is_null()) else {
        return;
    };
    let stages: Vec<Stage> = match serde_json::from_value(Value::to_json(v)) {
        Ok(s) => s,
        Err(e) => {
            return errs.push(FieldError::new("stages", codes::INVALID_FORMAT, e.to_string()));
        }
    };
    for (i, s) in stages.iter().enumerate() {
        let ok = !s.key.is_empty()
            && s.key.len() <= 64
            && s.key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            errs.push(FieldError::new(
                format!("stages[{i}].key"),
                codes::INVALID_FORMAT,
                "lower-case letters, digits and _",
            ));
        }
        if stages[..i].iter().any(|p| p.key == s.key) {
            errs.push(FieldError::new(
                format!("stages[{i}].key"),
                codes::DUPLICATE,
                "stage keys must be unique",
            ));
        }
    }
    for kind in [StageKind::Open, StageKind::Won, StageKind::Lost] {
        if !stages.iter().any(|s| s.kind == kind) {
            errs.push(FieldError::new(
                "stages",
                codes::REQUIRED,
                format!("needs a {kind:?} stage").to_lowercase(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_keys_follow_the_stage_kinds() {
        let mut p = default_pipeline();
        assert_eq!(
            p.open_stage_keys(),
            [
                "new",
                "contacted",
                "qualified",
                "appointment_set",
                "proposal_sent",
                "negotiation"
            ]
        );
        assert_eq!(p.stage_keys(StageKind::Won).collect::<Vec<_>>(), ["won"]);
        p.stages.push(Stage {
            key: "signed".into(),
            label: "Signed".into(),
            kind: StageKind::Won,
        });
        assert_eq!(p.stage_keys(StageKind::Won).collect::<Vec<_>>(), ["won", "signed"]);
        assert!(!p.open_stage_keys().contains(&"signed".to_owned()));
    }
}
