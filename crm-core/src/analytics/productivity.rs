//! Team productivity: activities per user per week by kind, how many distinct leads each user
//! touched, and how fast new leads got their first activity (response time), from three store
//! aggregates of activities and leads (see `Service::productivity`).
//!
//! A user is an activity's owner (`None`: activities without one). A lead's response time runs from
//! its creation to the earliest of its activities the report counts, and is credited to the owner
//! of that activity (who responded); an activity dated before its lead's creation (back-dated
//! imports) counts as an immediate response (0 hours).

use crate::decimal::Decimal;
use crate::value::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Activities of one kind by one user in one week (from an aggregate by owner and week).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindWeekCell {
    pub user: Option<String>,
    /// The Monday the week starts on; `None` for activities without a time (none are: the field is
    /// required, but the fold keeps them apart rather than dropping them).
    pub week: Option<time::Date>,
    pub kind: String,
    pub activities: u64,
}

/// A user's activities on one lead and the earliest of them (from an aggregate by owner and lead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchCell {
    pub user: Option<String>,
    pub lead: String,
    pub first_at: Timestamp,
}

/// When a lead was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadCreated {
    pub lead: String,
    pub created_at: Timestamp,
}

/// One user's activities in one week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWeek {
    /// The owner's user id; `None` for activities without an owner.
    pub user: Option<String>,
    /// The week's Monday, `YYYY-MM-DD`; `None` for activities without a time.
    pub week: Option<String>,
    pub activities: u64,
    /// Activities per kind (kinds without any are left out).
    pub by_kind: BTreeMap<String, u64>,
}

/// Response times to new leads, in hours with one decimal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseTime {
    /// Leads whose first activity is counted here.
    pub leads: u64,
    pub average_hours: Option<Decimal>,
    pub median_hours: Option<Decimal>,
}

/// One user's totals over the whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTotals {
    pub user: Option<String>,
    pub activities: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// Distinct leads the user has at least one counted activity on.
    pub leads_touched: u64,
    /// The leads this user answered first, and how fast.
    pub response: ResponseTime,
}

/// The productivity report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Productivity {
    /// Ordered by user (none first), then week.
    pub weeks: Vec<UserWeek>,
    /// Ordered by user (none first).
    pub users: Vec<UserTotals>,
    /// Every counted activity and every answered lead, whoever answered.
    pub activities: u64,
    pub response: ResponseTime,
}

/// Folds the activity and lead aggregates into the report. Touches of leads missing from `leads`
/// (the reader may not read the lead) count as touched but have no response time.
pub fn productivity(cells: &[KindWeekCell], touches: &[TouchCell], leads: &[LeadCreated]) -> Productivity {
    let mut weeks: BTreeMap<(Option<String>, Option<time::Date>), UserWeek> = BTreeMap::new();
    let mut users: BTreeMap<Option<String>, UserTotals> = BTreeMap::new();
    let user_row = |users: &mut BTreeMap<Option<String>, UserTotals>, u: &Option<String>| {
        users.entry(u.clone()).or_insert_with(|| UserTotals {
            user: u.clone(),
            activities: 0,
            by_kind: BTreeMap::new(),
            leads_touched: 0,
            response: ResponseTime::default(),
        });
    };
    let mut total = 0;
    for c in cells {
        let w = weeks.entry((c.user.clone(), c.week)).or_insert_with(|| UserWeek {
            user: c.user.clone(),
            week: c.week.map(|d| d.to_string()),
            activities: 0,
            by_kind: BTreeMap::new(),
        });
        w.activities += c.activities;
        *w.by_kind.entry(c.kind.clone()).or_default() += c.activities;
        user_row(&mut users, &c.user);
        if let Some(u) = users.get_mut(&c.user) {
            u.activities += c.activities;
            *u.by_kind.entry(c.kind.clone()).or_default() += c.activities;
        }
        total += c.activities;
    }
    // The first counted activity of each lead, and whose it was (ties: the smaller user key).
    let mut first: HashMap<&str, (Timestamp, &Option<String>)> = HashMap::new();
    for t in touches {
        user_row(&mut users, &t.user);
        if let Some(u) = users.get_mut(&t.user) {
            u.leads_touched += 1;
        }
        let e = first.entry(&t.lead).or_insert((t.first_at, &t.user));
        if (t.first_at, &t.user) < (e.0, e.1) {
            *e = (t.first_at, &t.user);
        }
    }
    let created: HashMap<&str, Timestamp> = leads.iter().map(|l| (l.lead.as_str(), l.created_at)).collect();
    let mut per_user: BTreeMap<&Option<String>, Vec<i64>> = BTreeMap::new();
    let mut all = Vec::new();
    for (lead, (at, user)) in &first {
        let Some(c) = created.get(lead) else { continue };
        let wait = (at.0 - c.0).max(0);
        per_user.entry(user).or_default().push(wait);
        all.push(wait);
    }
    for (user, mut waits) in per_user {
        if let Some(u) = users.get_mut(user) {
            u.response = response(&mut waits);
        }
    }
    Productivity {
        weeks: weeks.into_values().collect(),
        users: users.into_values().collect(),
        activities: total,
        response: response(&mut all),
    }
}

fn response(waits: &mut [i64]) -> ResponseTime {
    let sum: i128 = waits.iter().map(|w| i128::from(*w)).sum();
    let n = waits.len();
    ResponseTime {
        leads: n as u64,
        average_hours: (n > 0).then(|| hours(Decimal::from_i128_with_scale(sum, 0) / Decimal::from(n))),
        median_hours: super::median(waits).map(|m| hours(Decimal::from(m))),
    }
}

fn hours(micros: Decimal) -> Decimal {
    (micros / Decimal::from(3_600_000_000i64))
        .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn cell(user: &str, week: u8, kind: &str, n: u64) -> KindWeekCell {
        KindWeekCell {
            user: Some(user.into()),
            week: time::Date::from_calendar_date(2025, time::Month::June, week).ok(),
            kind: kind.into(),
            activities: n,
        }
    }

    fn touch(user: Option<&str>, lead: &str, hour: i64) -> TouchCell {
        TouchCell {
            user: user.map(str::to_owned),
            lead: lead.into(),
            first_at: Timestamp(hour * H),
        }
    }

    fn lead(lead: &str, hour: i64) -> LeadCreated {
        LeadCreated {
            lead: lead.into(),
            created_at: Timestamp(hour * H),
        }
    }

    #[test]
    fn weeks_users_touches_and_first_responses() {
        let cells = [
            cell("u1", 2, "call", 3),
            cell("u1", 2, "email", 1),
            cell("u1", 9, "call", 2),
            cell("u2", 2, "visit", 4),
        ];
        let touches = [
            touch(Some("u1"), "L1", 5),
            touch(Some("u2"), "L1", 3),
            touch(Some("u1"), "L2", 10),
            touch(Some("u2"), "L3", 1),
            touch(None, "L4", 1),
        ];
        // L3 was answered before it was created (0 h); L4's lead is not readable.
        let leads = [lead("L1", 0), lead("L2", 6), lead("L3", 2), lead("L9", 0)];
        let p = productivity(&cells, &touches, &leads);
        let weeks: Vec<_> = p
            .weeks
            .iter()
            .map(|w| (w.user.as_deref(), w.week.as_deref(), w.activities, w.by_kind.len()))
            .collect();
        assert_eq!(
            weeks,
            [
                (Some("u1"), Some("2025-06-02"), 4, 2),
                (Some("u1"), Some("2025-06-09"), 2, 1),
                (Some("u2"), Some("2025-06-02"), 4, 1),
            ]
        );
        assert_eq!(p.activities, 10);
        let users: Vec<_> = p
            .users
            .iter()
            .map(|u| (u.user.as_deref(), u.activities, u.leads_touched, u.response.leads))
            .collect();
        assert_eq!(users, [(None, 0, 1, 0), (Some("u1"), 6, 2, 1), (Some("u2"), 4, 2, 2)]);
        assert_eq!(p.users[1].by_kind.get("call"), Some(&5));
        // u1 answered L2 after 4 h; u2 answered L1 after 3 h and L3 at once.
        assert_eq!(p.users[1].response.median_hours, Some(Decimal::from(4)));
        assert_eq!(
            (p.users[2].response.average_hours, p.users[2].response.median_hours),
            (Some(Decimal::new(15, 1)), Some(Decimal::new(15, 1)))
        );
        assert_eq!(
            (p.response.leads, p.response.average_hours, p.response.median_hours),
            (3, Some(Decimal::new(23, 1)), Some(Decimal::from(3)))
        );
        let empty = productivity(&[], &[], &[]);
        assert_eq!((empty.response.leads, empty.response.average_hours), (0, None));
    }
}
