//! Velocity: how long leads stay in each stage, how many of the closed ones were won, and how long
//! winning takes, from the stage history (`stage_changes`: one row per change of a lead's status,
//! see [`crate::entity::stage`]).
//!
//! A stay in a stage runs from the change that entered it to the next change of the same record;
//! stays that have not ended yet (the record's current stage) are counted in
//! [`StageTime::in_stage_now`], not in the averages. A record is closed when its latest change
//! entered a won or lost stage; its time to close runs from its first recorded change (its creation)
//! to that change.

use super::percent;
use crate::decimal::Decimal;
use crate::pipeline::{Pipeline, StageKind};
use crate::value::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One stage change: which record entered which stage, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageEvent {
    pub record: String,
    pub to: String,
    pub at: Timestamp,
}

/// Time spent in one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    pub stage: String,
    /// Stays that ended (the record moved on).
    pub stays: u64,
    /// Their average and median length in days (two decimals); `None` without stays.
    pub average_days: Option<Decimal>,
    pub median_days: Option<Decimal>,
    /// Records in this stage now (their stay has not ended).
    pub in_stage_now: u64,
}

/// The velocity of a set of records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Velocity {
    /// One entry per stage of the pipeline (in order), then any other stage seen in the history.
    pub stages: Vec<StageTime>,
    /// Records whose latest change entered a won stage, a lost stage.
    pub won: u64,
    pub lost: u64,
    /// Won out of closed, in percent; `None` when none is closed.
    pub win_rate_percent: Option<Decimal>,
    /// Days from creation to winning, over the won records (two decimals).
    pub average_days_to_close: Option<Decimal>,
    pub median_days_to_close: Option<Decimal>,
}

/// Folds stage changes (of any records, in any order) into the velocity over `pipeline`'s stages.
pub fn velocity(pipeline: &Pipeline, events: &[StageEvent]) -> Velocity {
    let mut by_record: BTreeMap<&str, Vec<&StageEvent>> = BTreeMap::new();
    for e in events {
        by_record.entry(&e.record).or_default().push(e);
    }
    let mut stays: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut now_in: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut won, mut lost, mut to_close) = (0u64, 0u64, Vec::new());
    for list in by_record.values_mut() {
        list.sort_by_key(|e| e.at);
        for pair in list.windows(2) {
            stays.entry(&pair[0].to).or_default().push(pair[1].at.0 - pair[0].at.0);
        }
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            continue;
        };
        *now_in.entry(&last.to).or_default() += 1;
        match pipeline.stage(&last.to).map(|s| s.kind) {
            Some(StageKind::Won) => {
                won += 1;
                to_close.push(last.at.0 - first.at.0);
            }
            Some(StageKind::Lost) => lost += 1,
            _ => {}
        }
    }
    let mut keys: Vec<&str> = pipeline.stages.iter().map(|s| s.key.as_str()).collect();
    let seen: Vec<&str> = stays.keys().chain(now_in.keys()).copied().collect();
    for k in seen {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let stages = keys
        .into_iter()
        .map(|k| {
            let mut d = stays.get(k).cloned().unwrap_or_default();
            StageTime {
                stage: k.to_owned(),
                stays: d.len() as u64,
                average_days: average_days(&d),
                median_days: median_days(&mut d),
                in_stage_now: now_in.get(k).copied().unwrap_or(0),
            }
        })
        .collect();
    Velocity {
        stages,
        won,
        lost,
        win_rate_percent: percent(won, won + lost),
        average_days_to_close: average_days(&to_close),
        median_days_to_close: median_days(&mut to_close),
    }
}

/// Microseconds as days with two decimals (half away from zero).
fn days(micros: Decimal) -> Decimal {
    (micros / Decimal::from(Timestamp::MICROS_PER_DAY))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn average_days(d: &[i64]) -> Option<Decimal> {
    (!d.is_empty()).then(|| days(d.iter().map(|&x| Decimal::from(x)).sum::<Decimal>() / Decimal::from(d.len())))
}

/// The middle length (the mean of the two middle ones for an even count).
fn median_days(d: &mut [i64]) -> Option<Decimal> {
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    let n = d.len();
    let mid = if n % 2 == 1 {
        Decimal::from(d[n / 2])
    } else {
        (Decimal::from(d[n / 2 - 1]) + Decimal::from(d[n / 2])) / Decimal::TWO
    };
    Some(days(mid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::default_pipeline;

    fn ev(record: &str, to: &str, day: i64) -> StageEvent {
        StageEvent {
            record: record.into(),
            to: to.into(),
            at: Timestamp(0).plus_days(day),
        }
    }

    #[test]
    fn stays_close_times_and_win_rate() {
        // Out of order on purpose: the fold sorts each record's changes by time.
        let events = [
            ev("a", "contacted", 2),
            ev("a", "new", 0),
            ev("a", "won", 10),
            ev("b", "new", 0),
            ev("b", "contacted", 4),
            ev("b", "lost", 5),
            ev("c", "new", 1),
            ev("c", "contacted", 2),
            ev("d", "new", 0),
            ev("d", "won", 3),
            ev("e", "archived", 0),
        ];
        let v = velocity(&default_pipeline(), &events);
        let get = |k: &str| v.stages.iter().find(|s| s.stage == k).unwrap_or_else(|| panic!("{k}"));
        let new = get("new");
        // a: 2 days, b: 4, c: 1, d: 3.
        assert_eq!((new.stays, new.in_stage_now), (4, 0));
        assert_eq!(new.average_days, Some(Decimal::new(25, 1)));
        assert_eq!(new.median_days, Some(Decimal::new(25, 1)));
        let contacted = get("contacted");
        // a: 8 days, b: 1; c is still there.
        assert_eq!((contacted.stays, contacted.in_stage_now), (2, 1));
        assert_eq!(contacted.average_days, Some(Decimal::new(45, 1)));
        assert_eq!(get("qualified").average_days, None);
        assert_eq!(get("won").in_stage_now, 2);
        assert_eq!(v.stages.last().map(|s| s.stage.as_str()), Some("archived"));
        assert_eq!((v.won, v.lost), (2, 1));
        assert_eq!(v.win_rate_percent, Some(Decimal::new(667, 1)));
        // a: 10 days, d: 3.
        assert_eq!(v.average_days_to_close, Some(Decimal::new(65, 1)));
        assert_eq!(v.median_days_to_close, Some(Decimal::new(65, 1)));
    }

    #[test]
    fn odd_medians_take_the_middle_and_lengths_round_to_hundredths() {
        let hour = Timestamp::MICROS_PER_DAY / 24;
        let mut d = vec![hour, 5 * hour, 48 * hour];
        assert_eq!(median_days(&mut d), Some(Decimal::new(21, 2)));
        assert_eq!(average_days(&d), Some(Decimal::new(75, 2)));
        assert_eq!(average_days(&[]), None);
        let v = velocity(&default_pipeline(), &[]);
        assert_eq!((v.won, v.win_rate_percent, v.median_days_to_close), (0, None, None));
    }
}
