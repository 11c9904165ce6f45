//! Field work: how many of the jobs scheduled in a period were completed, how many on time, and how
//! long each kind of step takes (see `Service::field_work_report`). A completed job is on time when
//! it completed by the end of its window, or, without a window, by the end of its scheduled day
//! (before the next day starts in the tenant's zone). A step's duration runs from when it started to
//! when it was done (steps done without being started count from when they were done: 0).

use super::{median, percent};
use crate::decimal::Decimal;
use crate::entity::job::{fields as job, step};
use crate::record::Record;
use crate::value::{Timestamp, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report over one period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWorkReport {
    /// Jobs scheduled in the period (any state).
    pub jobs: u64,
    pub completed: u64,
    pub cancelled: u64,
    /// Completed jobs that completed within their window (or scheduled day).
    pub on_time: u64,
    /// `on_time` over `completed`, in percent with one decimal; `None` without completed jobs.
    pub on_time_rate: Option<Decimal>,
    /// Per step name, in name order.
    pub steps: Vec<StepDurations>,
}

/// How long the steps of one name took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDurations {
    pub name: String,
    pub done: u64,
    pub skipped: u64,
    /// Minutes from start to done, with one decimal.
    pub average_minutes: Option<Decimal>,
    pub median_minutes: Option<Decimal>,
}

fn at(r: &Record, f: &str) -> Option<Timestamp> {
    r.get(f).and_then(Value::as_timestamp)
}

/// Micros as minutes with one decimal.
fn minutes(micros: i64) -> Decimal {
    (Decimal::from(micros) / Decimal::from(60_000_000))
        .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Folds the jobs of a period and their steps; `day_end` gives the instant a scheduled day ends in
/// the tenant's zone.
pub fn report(jobs: &[Record], steps: &[Record], day_end: impl Fn(time::Date) -> Timestamp) -> FieldWorkReport {
    let mut out = FieldWorkReport {
        jobs: jobs.len() as u64,
        ..Default::default()
    };
    for j in jobs {
        match j.str(job::STATUS) {
            Some("completed") => {
                out.completed += 1;
                let due = at(j, job::WINDOW_END).or_else(|| match j.get(job::SCHEDULED_ON) {
                    Some(Value::Date(d)) => Some(day_end(*d)),
                    _ => None,
                });
                if let (Some(done), Some(due)) = (at(j, job::COMPLETED_AT), due)
                    && done <= due
                {
                    out.on_time += 1;
                }
            }
            Some("cancelled") => out.cancelled += 1,
            _ => {}
        }
    }
    out.on_time_rate = percent(out.on_time, out.completed);
    let mut by_name: BTreeMap<&str, (u64, u64, Vec<i64>)> = BTreeMap::new();
    for s in steps {
        let Some(name) = s.str(step::fields::NAME) else {
            continue;
        };
        let e = by_name.entry(name).or_default();
        match s.str(step::fields::STATUS) {
            Some("done") => {
                e.0 += 1;
                if let (Some(a), Some(b)) = (at(s, step::fields::STARTED_AT), at(s, step::fields::COMPLETED_AT)) {
                    e.2.push((b.0 - a.0).max(0));
                }
            }
            Some("skipped") => e.1 += 1,
            _ => {}
        }
    }
    out.steps = by_name
        .into_iter()
        .map(|(name, (done, skipped, mut d))| StepDurations {
            name: name.to_owned(),
            done,
            skipped,
            average_minutes: (!d.is_empty()).then(|| minutes(d.iter().sum::<i64>() / d.len() as i64)),
            median_minutes: median(&mut d).map(minutes),
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{JOB, JOB_STEP};
    use crate::value::Id;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn on_time_by_window_or_day_and_step_minutes() {
        let n = std::cell::Cell::new(0u128);
        let rec = |def| {
            n.set(n.get() + 1);
            Record::empty(def, Id::nil(), Id::from_u128(n.get()), Timestamp::default())
        };
        let day = time::macros::date!(2025 - 06 - 02);
        let mut windowed = rec(&JOB);
        windowed.set(job::STATUS, "completed");
        windowed.set(job::WINDOW_END, ts("2025-06-02T12:00:00Z"));
        windowed.set(job::COMPLETED_AT, ts("2025-06-02T12:30:00Z"));
        let mut by_day = rec(&JOB);
        by_day.set(job::STATUS, "completed");
        by_day.set(job::SCHEDULED_ON, day);
        by_day.set(job::COMPLETED_AT, ts("2025-06-02T23:00:00Z"));
        let mut cancelled = rec(&JOB);
        cancelled.set(job::STATUS, "cancelled");
        let step = |name: &str, status: &str, mins: Option<i64>| {
            let mut s = rec(&JOB_STEP);
            s.set(step::fields::NAME, name);
            s.set(step::fields::STATUS, status);
            if let Some(m) = mins {
                s.set(step::fields::STARTED_AT, ts("2025-06-02T08:00:00Z"));
                s.set(
                    step::fields::COMPLETED_AT,
                    Timestamp(ts("2025-06-02T08:00:00Z").0 + m * 60_000_000),
                );
            }
            s
        };
        let steps = [
            step("Load", "done", Some(30)),
            step("Load", "done", Some(50)),
            step("Load", "done", Some(100)),
            step("Photos", "skipped", None),
            step("Drive", "pending", None),
        ];
        let r = report(&[windowed, by_day, cancelled], &steps, |d| {
            Timestamp::from_date(d.next_day().unwrap())
        });
        assert_eq!((r.jobs, r.completed, r.cancelled, r.on_time), (3, 2, 1, 1));
        assert_eq!(r.on_time_rate, Some(Decimal::from(50)));
        let load = r.steps.iter().find(|s| s.name == "Load").unwrap();
        assert_eq!(
            (load.done, load.median_minutes, load.average_minutes),
            (3, Some(Decimal::from(50)), Some(Decimal::from(60)))
        );
        let photos = r.steps.iter().find(|s| s.name == "Photos").unwrap();
        assert_eq!((photos.done, photos.skipped, photos.median_minutes), (0, 1, None));
    }
}
