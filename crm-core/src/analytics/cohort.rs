//! Cohort retention: leads grouped by the month they were created in, and for that month and each
//! later one (up to the month the report is as of), how many of the cohort had been won by then and
//! how many were still active (not yet won or lost).
//!
//! A lead's state is its current status: a lead that is open now counts as active in every month,
//! even if it was closed once and reopened. A lead in a won or lost stage now closed in the month of
//! its latest change into a won or lost stage (from the stage history); without one (or with one
//! before the cohort's month), in its cohort's month. A status that is no stage of the pipeline
//! counts as open, as in the funnel's breakdown.

use super::{month_key, percent};
use crate::decimal::Decimal;
use crate::pipeline::{Pipeline, StageKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Leads created in one month that are in one stage now (from an aggregate by creation month and
/// status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CohortCell {
    /// The first day of the month of creation.
    pub month: time::Date,
    pub stage: Option<String>,
    pub leads: u64,
}

/// A lead in a won or lost stage now: its cohort and the month it closed in (first days).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedLead {
    pub cohort: time::Date,
    pub closed: Option<time::Date>,
    pub won: bool,
}

/// One month of a cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Months since the cohort's month (0: the month itself).
    pub offset: u32,
    /// Won by the end of the month, in total.
    pub won: u64,
    /// Neither won nor lost by the end of the month.
    pub active: u64,
    /// Out of the cohort, in percent.
    pub won_percent: Option<Decimal>,
    pub active_percent: Option<Decimal>,
}

/// One cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohort {
    /// The month of creation, `YYYY-MM`.
    pub cohort: String,
    pub leads: u64,
    /// The cohort's month and every later one up to the report's month.
    pub months: Vec<CohortMonth>,
}

/// The cohort report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohorts {
    /// The last month reported, `YYYY-MM`.
    pub as_of: String,
    /// Oldest first.
    pub cohorts: Vec<Cohort>,
}

/// Folds cohort sizes and the closed leads into the retention table up to the month of `as_of`.
/// Cohorts after `as_of` are left out.
pub fn cohorts(cells: &[CohortCell], closed: &[ClosedLead], as_of: time::Date) -> Cohorts {
    let last = first_of_month(as_of);
    let mut size: BTreeMap<time::Date, u64> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.month <= last) {
        *size.entry(first_of_month(c.month)).or_default() += c.leads;
    }
    // Per cohort: leads won and closed (won or lost) in each month.
    let mut won_in: BTreeMap<(time::Date, time::Date), u64> = BTreeMap::new();
    let mut closed_in: BTreeMap<(time::Date, time::Date), u64> = BTreeMap::new();
    for c in closed {
        let cohort = first_of_month(c.cohort);
        let month = c.closed.map(first_of_month).filter(|m| *m >= cohort).unwrap_or(cohort);
        *closed_in.entry((cohort, month)).or_default() += 1;
        if c.won {
            *won_in.entry((cohort, month)).or_default() += 1;
        }
    }
    let cohorts = size
        .into_iter()
        .map(|(cohort, leads)| {
            let (mut won, mut closed) = (0u64, 0u64);
            let mut months = Vec::new();
            let mut m = cohort;
            let mut offset = 0;
            while m <= last {
                won += won_in.get(&(cohort, m)).copied().unwrap_or(0);
                closed += closed_in.get(&(cohort, m)).copied().unwrap_or(0);
                let active = leads.saturating_sub(closed);
                months.push(CohortMonth {
                    month: month_key(m),
                    offset,
                    won,
                    active,
                    won_percent: percent(won, leads),
                    active_percent: percent(active, leads),
                });
                m = next_month(m);
                offset += 1;
            }
            Cohort {
                cohort: month_key(cohort),
                leads,
                months,
            }
        })
        .collect();
    Cohorts {
        as_of: month_key(last),
        cohorts,
    }
}

/// Whether `stage` is a won (`Some(true)`) or lost (`Some(false)`) stage of `pipeline`.
pub fn closed_kind(pipeline: &Pipeline, stage: &str) -> Option<bool> {
    match pipeline.stage(stage).map(|s| s.kind) {
        Some(StageKind::Won) => Some(true),
        Some(StageKind::Lost) => Some(false),
        _ => None,
    }
}

fn first_of_month(d: time::Date) -> time::Date {
    d.replace_day(1).unwrap_or(d)
}

fn next_month(d: time::Date) -> time::Date {
    let (y, m) = match d.month() {
        time::Month::December => (d.year() + 1, time::Month::January),
        m => (d.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1).unwrap_or(time::Date::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::default_pipeline;

    fn d(y: i32, m: u8) -> time::Date {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap_or(time::Month::January), 1)
            .unwrap_or(time::Date::MIN)
    }

    #[test]
    fn cohorts_count_won_and_active_per_later_month() {
        let p = default_pipeline();
        let cells = [
            CohortCell {
                month: d(2024, 11),
                stage: Some("won".into()),
                leads: 2,
            },
            CohortCell {
                month: d(2024, 11),
                stage: Some("new".into()),
                leads: 1,
            },
            CohortCell {
                month: d(2024, 11),
                stage: Some("lost".into()),
                leads: 1,
            },
            CohortCell {
                month: d(2025, 1),
                stage: Some("qualified".into()),
                leads: 3,
            },
            CohortCell {
                month: d(2025, 3),
                stage: Some("new".into()),
                leads: 9,
            },
        ];
        let closed = [
            ClosedLead {
                cohort: d(2024, 11),
                closed: Some(d(2024, 12)),
                won: true,
            },
            ClosedLead {
                cohort: d(2024, 11),
                closed: Some(d(2025, 1)),
                won: true,
            },
            // Closed before its cohort (an imported history): counts in the cohort's month.
            ClosedLead {
                cohort: d(2024, 11),
                closed: Some(d(2024, 1)),
                won: false,
            },
        ];
        let c = cohorts(&cells, &closed, d(2025, 1).replace_day(17).unwrap_or(time::Date::MIN));
        assert_eq!(c.as_of, "2025-01");
        assert_eq!(c.cohorts.len(), 2, "the March cohort is after the report's month");
        let nov: Vec<_> = c.cohorts[0]
            .months
            .iter()
            .map(|m| (m.month.as_str(), m.offset, m.won, m.active))
            .collect();
        assert_eq!(nov, [("2024-11", 0, 0, 3), ("2024-12", 1, 1, 2), ("2025-01", 2, 2, 1)]);
        assert_eq!(c.cohorts[0].leads, 4);
        assert_eq!(c.cohorts[0].months[2].won_percent, Some(Decimal::from(50)));
        assert_eq!(c.cohorts[1].months.len(), 1);
        assert_eq!((c.cohorts[1].months[0].won, c.cohorts[1].months[0].active), (0, 3));
        assert_eq!(closed_kind(&p, "won"), Some(true));
        assert_eq!(closed_kind(&p, "elsewhere"), None);
        assert_eq!(next_month(d(2024, 12)), d(2025, 1));
    }
}
