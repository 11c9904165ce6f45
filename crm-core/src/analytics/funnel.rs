//! The pipeline funnel: how many leads reached each stage, the conversion from each stage to the
//! next and the drop-off between them, from the leads' current stages (one aggregate grouped by
//! status).
//!
//! A lead in an open stage has reached that stage and every open stage before it; a won lead has
//! reached every open stage and its won stage. A lost lead is counted as having entered the funnel
//! (the first step) and no further: its current stage does not say how far it got (the stage history
//! does; see [`super::velocity`]). Statuses that are not stages of the pipeline (a lead moved to
//! another pipeline) are counted apart, in [`Funnel::other`].

use super::percent;
use crate::decimal::Decimal;
use crate::pipeline::{Pipeline, StageKind};
use crate::value::Money;
use serde::{Deserialize, Serialize};

/// The leads now in one stage (`None`: no status) and their estimated value: one group of an
/// aggregate of leads by status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageTotal {
    pub stage: Option<String>,
    pub leads: u64,
    pub value: Money,
}

/// One step of the funnel: an open or a won stage, in pipeline order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The stage's key (`qualified`).
    pub stage: String,
    pub label: String,
    /// `open` or `won`.
    pub kind: StageKind,
    /// Leads now in this stage.
    pub current: u64,
    /// Their estimated value.
    pub current_value: Money,
    /// Leads that reached this stage (now in it, in a later open stage, or won).
    pub reached: u64,
    /// Reached this stage out of those that reached the step before, in percent (one decimal);
    /// `None` for the first step, or when nothing reached the step before.
    pub conversion_percent: Option<Decimal>,
    /// Reached the step before but not this one (0 for the first step).
    pub drop_off: u64,
}

/// The funnel of a set of leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// Every lead counted, in a stage of the pipeline or not.
    pub total: u64,
    pub steps: Vec<FunnelStep>,
    /// Leads in a won stage, and their value.
    pub won: u64,
    pub won_value: Money,
    /// Leads in a lost stage.
    pub lost: u64,
    /// Leads whose status is not a stage of the pipeline (or who have none).
    pub other: u64,
    /// Won out of won and lost, in percent; `None` when none is closed.
    pub win_rate_percent: Option<Decimal>,
    /// Won out of every lead in the pipeline, in percent; `None` when there is none.
    pub overall_conversion_percent: Option<Decimal>,
}

/// Folds the leads per stage into the funnel of `pipeline`.
pub fn funnel(pipeline: &Pipeline, totals: &[StageTotal]) -> Funnel {
    let in_stage = |key: &str| {
        totals
            .iter()
            .filter(|t| t.stage.as_deref() == Some(key))
            .fold((0u64, 0i64), |(n, v), t| (n + t.leads, v + t.value.0))
    };
    let sum_kind = |kind: StageKind| {
        pipeline
            .stage_keys(kind)
            .map(&in_stage)
            .fold((0u64, 0i64), |(n, v), (m, w)| (n + m, v + w))
    };
    let (won, won_value) = sum_kind(StageKind::Won);
    let (lost, _) = sum_kind(StageKind::Lost);
    let total: u64 = totals.iter().map(|t| t.leads).sum();
    let in_pipeline: u64 = pipeline.stages.iter().map(|s| in_stage(&s.key).0).sum();
    let open: Vec<_> = pipeline.stages.iter().filter(|s| s.kind == StageKind::Open).collect();
    let mut steps = Vec::new();
    // Leads in this open stage or a later one.
    let mut later_open: u64 = open.iter().map(|s| in_stage(&s.key).0).sum();
    for (i, s) in open.iter().enumerate() {
        let (current, value) = in_stage(&s.key);
        let reached = if i == 0 { in_pipeline } else { later_open + won };
        later_open -= current;
        steps.push(step(&s.key, &s.label, StageKind::Open, current, value, reached));
    }
    for s in pipeline.stages.iter().filter(|s| s.kind == StageKind::Won) {
        let (current, value) = in_stage(&s.key);
        let reached = if steps.is_empty() { in_pipeline } else { current };
        steps.push(step(&s.key, &s.label, StageKind::Won, current, value, reached));
    }
    for i in 1..steps.len() {
        // Every won step follows the last open one.
        let before = steps[..i]
            .iter()
            .rev()
            .find(|p| p.kind == StageKind::Open)
            .map_or(steps[i - 1].reached, |p| p.reached);
        steps[i].conversion_percent = percent(steps[i].reached, before);
        steps[i].drop_off = before.saturating_sub(steps[i].reached);
    }
    Funnel {
        total,
        steps,
        won,
        won_value: Money(won_value),
        lost,
        other: total - in_pipeline,
        win_rate_percent: percent(won, won + lost),
        overall_conversion_percent: percent(won, in_pipeline),
    }
}

fn step(key: &str, label: &str, kind: StageKind, current: u64, value: i64, reached: u64) -> FunnelStep {
    FunnelStep {
        stage: key.to_owned(),
        label: label.to_owned(),
        kind,
        current,
        current_value: Money(value),
        reached,
        conversion_percent: None,
        drop_off: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Stage, default_pipeline};

    fn t(stage: Option<&str>, leads: u64, value: i64) -> StageTotal {
        StageTotal {
            stage: stage.map(str::to_owned),
            leads,
            value: Money(value),
        }
    }

    #[test]
    fn reached_counts_later_stages_and_won_and_lost_only_enter() {
        let totals = [
            t(Some("new"), 40, 4000),
            t(Some("contacted"), 20, 0),
            t(Some("qualified"), 10, 100),
            t(Some("negotiation"), 5, 500),
            t(Some("won"), 5, 9000),
            t(Some("lost"), 20, 0),
            t(Some("moved_elsewhere"), 3, 0),
            t(None, 1, 0),
        ];
        let f = funnel(&default_pipeline(), &totals);
        let reached: Vec<_> = f
            .steps
            .iter()
            .map(|s| (s.stage.as_str(), s.reached, s.drop_off))
            .collect();
        assert_eq!(
            reached,
            [
                ("new", 100, 0),
                ("contacted", 40, 60),
                ("qualified", 20, 20),
                ("appointment_set", 10, 10),
                ("proposal_sent", 10, 0),
                ("negotiation", 10, 0),
                ("won", 5, 5),
            ]
        );
        assert_eq!(f.steps[0].conversion_percent, None);
        assert_eq!(f.steps[1].conversion_percent, Some(Decimal::from(40)));
        assert_eq!(f.steps[6].conversion_percent, Some(Decimal::from(50)));
        assert_eq!(f.steps[0].current_value, Money(4000));
        assert_eq!((f.total, f.won, f.lost, f.other), (104, 5, 20, 4));
        assert_eq!(f.won_value, Money(9000));
        assert_eq!(f.win_rate_percent, Some(Decimal::from(20)));
        assert_eq!(f.overall_conversion_percent, Some(Decimal::from(5)));
    }

    #[test]
    fn several_won_stages_each_follow_the_last_open_one() {
        let mut p = default_pipeline();
        p.stages.insert(
            7,
            Stage {
                key: "signed".into(),
                label: "Signed".into(),
                kind: StageKind::Won,
            },
        );
        let f = funnel(
            &p,
            &[
                t(Some("negotiation"), 6, 0),
                t(Some("won"), 3, 0),
                t(Some("signed"), 1, 0),
            ],
        );
        let last: Vec<_> = f.steps[5..]
            .iter()
            .map(|s| (s.stage.as_str(), s.reached, s.conversion_percent, s.drop_off))
            .collect();
        assert_eq!(
            last,
            [
                ("negotiation", 10, Some(Decimal::from(100)), 0),
                ("won", 3, Some(Decimal::from(30)), 7),
                ("signed", 1, Some(Decimal::from(10)), 9),
            ]
        );
        assert_eq!(f.win_rate_percent, Some(Decimal::from(100)));
    }

    #[test]
    fn an_empty_funnel_has_no_rates() {
        let f = funnel(&default_pipeline(), &[]);
        assert_eq!(f.total, 0);
        assert!(f.steps.iter().all(|s| s.reached == 0 && s.conversion_percent.is_none()));
        assert_eq!((f.win_rate_percent, f.overall_conversion_percent), (None, None));
    }
}
