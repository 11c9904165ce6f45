//! The status of a membership, and of a client (the contact's mirror of their current membership), as
//! of a day: one evaluation and one expansion into stored-column predicates, over the columns each
//! entity keeps (see [`Columns`]), so the two always agree.

use super::{DEFAULT_EXPIRING_DAYS, MembershipStatus};
use crate::computed::ComputeCtx;
use crate::entity::people::org_fields;
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::value::Value;

/// The stored columns a status is computed from.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    pub starts_on: &'static str,
    pub ends_on: &'static str,
    pub cancelled: &'static str,
    /// The freeze that has not ended (or the last one), mirrored from the freezes.
    pub frozen_from: &'static str,
    pub frozen_to: &'static str,
}

/// A client's status: no membership at all, or the status of their current one.
pub const NONE: &str = "none";

/// The options of a client's computed `membership`: [`NONE`], then every membership status.
pub const CLIENT_STATUSES: &[&str] = &[NONE, "upcoming", "active", "expiring", "expired", "frozen", "cancelled"];

/// Today and the last day of the expiring window (today plus the tenant's `membership_expiring_days`).
pub fn window(cx: &ComputeCtx) -> (time::Date, time::Date) {
    let today = cx.today();
    let days = cx.setting_i64(org_fields::MEMBERSHIP_EXPIRING_DAYS, DEFAULT_EXPIRING_DAYS);
    (today, today.saturating_add(time::Duration::days(days)))
}

fn date(r: &Record, f: &str) -> Option<time::Date> {
    match r.get(f) {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    }
}

/// The status as of the context's day; `None` when there is no membership (no start date and not
/// cancelled: a client without one). Precedence: cancelled, upcoming, expired, frozen (a freeze
/// covers today), expiring (ends within the window), active.
pub fn eval(r: &Record, c: &Columns, cx: &ComputeCtx) -> Option<MembershipStatus> {
    let (today, last) = window(cx);
    if r.get(c.cancelled) == Some(&Value::Bool(true)) {
        return Some(MembershipStatus::Cancelled);
    }
    let starts = date(r, c.starts_on)?;
    if starts > today {
        return Some(MembershipStatus::Upcoming);
    }
    let Some(ends) = date(r, c.ends_on).filter(|e| *e >= today) else {
        return Some(MembershipStatus::Expired);
    };
    if let (Some(ff), Some(ft)) = (date(r, c.frozen_from), date(r, c.frozen_to))
        && ff <= today
        && today <= ft
    {
        return Some(MembershipStatus::Frozen);
    }
    Some(if ends <= last {
        MembershipStatus::Expiring
    } else {
        MembershipStatus::Active
    })
}

/// The predicate on the stored columns that holds exactly when [`eval`] gives `status` (`None`: no
/// membership). Every part is two-valued (a comparison is guarded by a not-null test), so a negated
/// filter (`membership!=expired`) selects exactly the rest.
pub fn expand(status: Option<MembershipStatus>, c: &Columns, cx: &ComputeCtx) -> Filter {
    let (today, last) = window(cx);
    let is_null = |f: &str| Filter::IsNull { field: f.into() };
    let on = |f: &str, op, d: time::Date| Filter::and([Filter::Not(Box::new(is_null(f))), Filter::cmp(f, op, d)]);
    let live = Filter::Or(vec![is_null(c.cancelled), Filter::eq(c.cancelled, false)]);
    let started = on(c.starts_on, Op::Le, today);
    let running = Filter::and([live.clone(), started.clone(), on(c.ends_on, Op::Ge, today)]);
    let not_frozen = Filter::Or(vec![
        is_null(c.frozen_from),
        is_null(c.frozen_to),
        Filter::cmp(c.frozen_from, Op::Gt, today),
        Filter::cmp(c.frozen_to, Op::Lt, today),
    ]);
    use MembershipStatus as S;
    match status {
        None => Filter::and([live, is_null(c.starts_on)]),
        Some(S::Cancelled) => Filter::and([
            Filter::Not(Box::new(is_null(c.cancelled))),
            Filter::eq(c.cancelled, true),
        ]),
        Some(S::Upcoming) => Filter::and([live, on(c.starts_on, Op::Gt, today)]),
        Some(S::Expired) => Filter::and([
            live,
            started,
            Filter::Or(vec![is_null(c.ends_on), Filter::cmp(c.ends_on, Op::Lt, today)]),
        ]),
        Some(S::Frozen) => Filter::and([
            running,
            on(c.frozen_from, Op::Le, today),
            on(c.frozen_to, Op::Ge, today),
        ]),
        Some(S::Expiring) => Filter::and([running, on(c.ends_on, Op::Le, last), not_frozen]),
        Some(S::Active) => Filter::and([running, on(c.ends_on, Op::Gt, last), not_frozen]),
    }
}

/// [`expand`] by option key (`none` or a membership status); an unknown key selects nothing.
pub fn expand_key(option: &str, c: &Columns, cx: &ComputeCtx) -> Filter {
    match (option, MembershipStatus::from_key(option)) {
        (NONE, _) => expand(None, c, cx),
        (_, Some(s)) => expand(Some(s), c, cx),
        _ => Filter::Not(Box::new(Filter::All)),
    }
}

/// [`eval`] as an option key.
pub fn eval_key(r: &Record, c: &Columns, cx: &ComputeCtx) -> &'static str {
    eval(r, c, cx).map_or(NONE, MembershipStatus::key)
}

/// The predicate "running today (frozen or not) and ends within `days` from today".
pub fn ends_within(c: &Columns, cx: &ComputeCtx, days: i64) -> Filter {
    let today = cx.today();
    let last = today.saturating_add(time::Duration::days(days));
    let set = |f: &str| Filter::Not(Box::new(Filter::IsNull { field: f.into() }));
    Filter::and([
        Filter::Or(vec![
            Filter::IsNull {
                field: c.cancelled.into(),
            },
            Filter::eq(c.cancelled, false),
        ]),
        set(c.starts_on),
        set(c.ends_on),
        Filter::cmp(c.starts_on, Op::Le, today),
        Filter::cmp(c.ends_on, Op::Ge, today),
        Filter::cmp(c.ends_on, Op::Le, last),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::CONTACT;
    use crate::entity::membership::client;
    use crate::query::Compiled;
    use crate::value::{Id, Timestamp};

    /// On every combination of the mirrored columns around today (nulls included), exactly one
    /// option's expansion holds, it is the evaluated one, and every negation holds on the rest.
    #[test]
    fn every_expansion_selects_exactly_what_evaluates() {
        let cx = ComputeCtx::new(Timestamp::from_date(time::macros::date!(2025 - 06 - 01)), None);
        let today = cx.today();
        let days = [
            None,
            Some(-20),
            Some(-1),
            Some(0),
            Some(1),
            Some(14),
            Some(15),
            Some(40),
        ];
        let at = |d: Option<i64>| d.map(|d| today.saturating_add(time::Duration::days(d)));
        let compiled: Vec<(&str, Compiled)> = CLIENT_STATUSES
            .iter()
            .map(|o| {
                (
                    *o,
                    Compiled::compile(&expand_key(o, &client::COLUMNS, &cx), &CONTACT).unwrap(),
                )
            })
            .collect();
        let mut checked = 0;
        for s in days {
            for e in days {
                for ff in days {
                    for ft in days {
                        for cancelled in [None, Some(false), Some(true)] {
                            let mut r = Record::empty(&CONTACT, Id::nil(), Id::nil(), Timestamp(0));
                            r.set(client::mirror::STARTS_ON, at(s));
                            r.set(client::mirror::ENDS_ON, at(e));
                            r.set(client::mirror::FROZEN_FROM, at(ff));
                            r.set(client::mirror::FROZEN_TO, at(ft));
                            r.set(client::mirror::CANCELLED, cancelled);
                            let want = eval_key(&r, &client::COLUMNS, &cx);
                            for (option, f) in &compiled {
                                assert_eq!(f.eval(&r), Some(*option == want), "{option} vs {want}: {r:?}");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 8 * 8 * 8 * 3);
    }

    /// A membership that ends on a day is active until the tenant's midnight: in Denver, 03:00 UTC
    /// on 1 June is still 31 May; at UTC it is not.
    #[test]
    fn statuses_turn_at_the_tenants_midnight() {
        use crate::entity::{ORGANIZATION, people::org_fields};
        let mut r = Record::empty(&CONTACT, Id::nil(), Id::nil(), Timestamp(0));
        r.set(client::mirror::STARTS_ON, time::macros::date!(2025 - 05 - 01));
        r.set(client::mirror::ENDS_ON, time::macros::date!(2025 - 05 - 31));
        let org = |zone: &str| {
            let mut o = Record::empty(&ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
            o.set(org_fields::TIMEZONE, zone);
            Some(o)
        };
        let at = |t: &str, zone: &str| {
            let cx = ComputeCtx::new(Timestamp::parse(t).unwrap(), org(zone));
            eval_key(&r, &client::COLUMNS, &cx)
        };
        assert_eq!(at("2025-06-01T03:00:00Z", "America/Denver"), "expiring");
        assert_eq!(at("2025-06-01T05:59:59Z", "America/Denver"), "expiring");
        assert_eq!(at("2025-06-01T06:00:00Z", "America/Denver"), "expired");
        assert_eq!(at("2025-06-01T03:00:00Z", "UTC"), "expired");
        // Filters agree: the expansion is taken on the same local day.
        let cx = ComputeCtx::new(Timestamp::parse("2025-06-01T03:00:00Z").unwrap(), org("America/Denver"));
        let f = Compiled::compile(&expand_key("expiring", &client::COLUMNS, &cx), &CONTACT).unwrap();
        assert_eq!(f.eval(&r), Some(true));
    }
}
