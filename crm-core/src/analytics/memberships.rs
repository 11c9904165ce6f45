//! The numbers the owner of a membership business asks for: renewals and churn per month, and
//! check-ins per day and per hour of the week, as pure folds over the memberships and check-ins the
//! reader may read (the head counts come from store counts, see `Service::membership_numbers`).
//!
//! A client's memberships that overlap or touch form a run (a renewal continues from the end date);
//! a **renewal** is a membership that starts inside or right after an earlier one of its run, counted
//! in the month it starts; **churn** is a run that ended (before the day the numbers are as of)
//! without a continuation, counted in the month it ended. Cancelled memberships belong to no run.
//! Days and hours are UTC.

use crate::entity::check_in::{self, fields as c};
use crate::entity::membership::fields as m;
use crate::record::Record;
use crate::value::{Id, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Months reported by [`MembershipNumbers::months`].
pub const MONTHS: usize = 12;
/// Days reported by [`MembershipNumbers::check_ins_per_day`].
pub const DAYS: i64 = 30;
/// Weeks [`MembershipNumbers::check_ins_by_hour`] covers.
pub const WEEKS: i64 = 4;

/// The answer of `Service::membership_numbers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipNumbers {
    /// The day the numbers are as of (`YYYY-MM-DD`).
    pub as_of: String,
    /// Clients whose status is active, expiring or frozen.
    pub active_members: u64,
    /// Clients whose running membership ends within 7 days (today included).
    pub expiring_7_days: u64,
    /// ... within 30 days.
    pub expiring_30_days: u64,
    /// The last [`MONTHS`] months, oldest first, the month of `as_of` last.
    pub months: Vec<MonthNumbers>,
    /// The last [`DAYS`] days, oldest first, `as_of` last: check-ins let in (allowed or warned).
    pub check_ins_per_day: Vec<DayCount>,
    /// Check-ins let in over the last [`WEEKS`] weeks by weekday (Monday first) and hour (0–23).
    pub check_ins_by_hour: Vec<Vec<u64>>,
}

/// One month's renewals and churn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthNumbers {
    /// `YYYY-MM`.
    pub month: String,
    pub renewals: u64,
    pub churn: u64,
}

/// Check-ins on one day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub check_ins: u64,
}

fn month_key(d: time::Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn date(r: &Record, f: &str) -> Option<time::Date> {
    match r.get(f) {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    }
}

/// The month keys of the [`MONTHS`] months ending with `as_of`'s, oldest first.
fn months_until(as_of: time::Date) -> Vec<String> {
    let (mut y, mut mo) = (as_of.year(), u8::from(as_of.month()));
    let mut out = Vec::with_capacity(MONTHS);
    for _ in 0..MONTHS {
        out.push(format!("{y:04}-{mo:02}"));
        if mo == 1 {
            y -= 1;
            mo = 12;
        } else {
            mo -= 1;
        }
    }
    out.reverse();
    out
}

/// Renewals and churn per month (see the module docs).
pub fn months(memberships: &[Record], as_of: time::Date) -> Vec<MonthNumbers> {
    let mut by_client: BTreeMap<Id, Vec<(time::Date, time::Date)>> = BTreeMap::new();
    for r in memberships {
        if r.get(m::CANCELLED) == Some(&Value::Bool(true)) {
            continue;
        }
        if let (Some(client), Some(s), Some(e)) = (r.id_of(m::CONTACT_ID), date(r, m::STARTS_ON), date(r, m::ENDS_ON)) {
            by_client.entry(client).or_default().push((s, e));
        }
    }
    let mut rows: BTreeMap<String, MonthNumbers> = months_until(as_of)
        .into_iter()
        .map(|k| {
            (
                k.clone(),
                MonthNumbers {
                    month: k,
                    ..Default::default()
                },
            )
        })
        .collect();
    for spans in by_client.values_mut() {
        spans.sort();
        let mut run_end: Option<time::Date> = None;
        for &(s, e) in spans.iter() {
            match run_end {
                Some(end) if s <= end.next_day().unwrap_or(end) => {
                    if let Some(row) = rows.get_mut(&month_key(s)) {
                        row.renewals += 1;
                    }
                    run_end = Some(end.max(e));
                }
                _ => {
                    if let Some(end) = run_end {
                        churned(&mut rows, end, as_of);
                    }
                    run_end = Some(e);
                }
            }
        }
        if let Some(end) = run_end {
            churned(&mut rows, end, as_of);
        }
    }
    rows.into_values().collect()
}

fn churned(rows: &mut BTreeMap<String, MonthNumbers>, end: time::Date, as_of: time::Date) {
    if end < as_of
        && let Some(row) = rows.get_mut(&month_key(end))
    {
        row.churn += 1;
    }
}

/// Check-ins let in per day over the [`DAYS`] days ending with `as_of`, and by weekday and hour over
/// the [`WEEKS`] weeks ending with it.
pub fn check_ins(check_ins: &[Record], as_of: time::Date, zone: &jiff::tz::TimeZone) -> (Vec<DayCount>, Vec<Vec<u64>>) {
    let first_day = as_of.saturating_sub(time::Duration::days(DAYS - 1));
    let first_hour_day = as_of.saturating_sub(time::Duration::days(WEEKS * 7 - 1));
    let mut days = vec![0u64; DAYS as usize];
    let mut hours = vec![vec![0u64; 24]; 7];
    for r in check_ins.iter().filter(|r| check_in::counts_as_visit(r)) {
        let Some(at) = r.get(c::AT).and_then(Value::as_timestamp) else {
            continue;
        };
        let (day, hour) = crate::computed::local_date_hour(at, zone);
        if day > as_of {
            continue;
        }
        if day >= first_day {
            days[(day - first_day).whole_days() as usize] += 1;
        }
        if day >= first_hour_day {
            hours[day.weekday().number_days_from_monday() as usize][hour as usize] += 1;
        }
    }
    let per_day = days
        .into_iter()
        .enumerate()
        .map(|(i, n)| DayCount {
            day: first_day.saturating_add(time::Duration::days(i as i64)).to_string(),
            check_ins: n,
        })
        .collect();
    (per_day, hours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::MEMBERSHIP;
    use time::macros::date;

    fn membership(client: u128, s: time::Date, e: time::Date, cancelled: bool) -> Record {
        let mut r = Record::empty(
            &MEMBERSHIP,
            Id::nil(),
            Id::from_u128(s.to_julian_day() as u128 + client * 100_000),
            crate::value::Timestamp(0),
        );
        r.set(m::CONTACT_ID, Id::from_u128(client));
        r.set(m::STARTS_ON, s);
        r.set(m::ENDS_ON, e);
        r.set(m::CANCELLED, cancelled);
        r
    }

    #[test]
    fn renewals_continue_a_run_and_churn_is_a_run_that_ended() {
        let as_of = date!(2025 - 06 - 15);
        let ms = [
            // Client 1 renewed on time in May, then left at the end of May... and is still running.
            membership(1, date!(2025 - 04 - 01), date!(2025 - 04 - 30), false),
            membership(1, date!(2025 - 05 - 01), date!(2025 - 05 - 31), false),
            membership(1, date!(2025 - 06 - 01), date!(2025 - 06 - 30), false),
            // Client 2 ended in April, came back in June after a gap (not a renewal).
            membership(2, date!(2025 - 03 - 01), date!(2025 - 04 - 10), false),
            membership(2, date!(2025 - 06 - 05), date!(2025 - 07 - 04), false),
            // Client 3 cancelled: counts nowhere.
            membership(3, date!(2025 - 05 - 01), date!(2025 - 05 - 20), true),
        ];
        let rows = months(&ms, as_of);
        assert_eq!(rows.len(), MONTHS);
        let get = |k: &str| rows.iter().find(|r| r.month == k).unwrap().clone();
        assert_eq!((get("2025-05").renewals, get("2025-06").renewals), (1, 1));
        assert_eq!(
            (get("2025-04").churn, get("2025-05").churn, get("2025-06").churn),
            (1, 0, 0)
        );
        assert_eq!(rows.last().unwrap().month, "2025-06");
    }
}
