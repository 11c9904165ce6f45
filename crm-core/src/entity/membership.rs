//! Memberships: a client's (contact's) paid period at the esports centre. Its status is computed, never
//! stored: it is always right as of today, with no batch job to refresh it, and still filterable
//! (`status:expiring`) and sortable because it expands into date ranges on the stored columns.

use super::{EntityRules, declare, keyed_enum, people::org_fields};
use crate::computed::{ComputeCtx, ComputedDef};
use crate::error::{FieldError, codes};
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};

declare!(MEMBERSHIP, membership);
declare!(MEMBERSHIP_FREEZE, membership_freeze);

keyed_enum!(
    /// Where a membership stands today.
    MembershipStatus {
        /// Starts after today.
        Upcoming = "upcoming",
        /// Running, and ends more than the tenant's `membership_expiring_days` from today.
        Active = "active",
        /// Running, and ends within `membership_expiring_days` (the front desk offers a renewal).
        Expiring = "expiring",
        /// Ended before today.
        Expired = "expired",
        /// Cancelled, whatever its dates.
        Cancelled = "cancelled",
    }
);

/// Field names of a membership.
pub mod fields {
    pub const CONTACT_ID: &str = "contact_id";
    pub const STARTS_ON: &str = "starts_on";
    pub const ENDS_ON: &str = "ends_on";
    pub const CANCELLED: &str = "cancelled";
    /// Derived: the days covered by the membership's freezes.
    pub const FROZEN_DAYS: &str = "frozen_days";
    /// A freeze's parent.
    pub const MEMBERSHIP_ID: &str = "membership_id";
    /// Computed: see [`super::MembershipStatus`].
    pub const STATUS: &str = "status";
}
use fields::*;

/// Days before the end date a membership counts as expiring, when the tenant has not set it.
pub const DEFAULT_EXPIRING_DAYS: i64 = 14;

fn membership() -> EntityDef {
    let mut e = EntityDef::new("membership", "memberships")
        .field(F::new(CONTACT_ID, T::Ref("contact")).required())
        .field(F::new("plan_name", T::Text).max_len(100))
        .field(F::new(STARTS_ON, T::Date).required())
        .field(F::new(ENDS_ON, T::Date).required())
        .field(F::new(CANCELLED, T::Bool).required().default(false))
        .field(F::new("price_paid", T::Money).range(Some(0), None))
        .field(F::new("notes", T::Text).max_len(10_000))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(FROZEN_DAYS, T::Integer).derived().default(0i64));
    e.since = 4;
    e.rules = &MembershipRules;
    e.external_key = Some("external_id");
    e.custom_fields = true;
    e.check = Some(dates_in_order);
    e.indexes = vec![&[CONTACT_ID, ENDS_ON], &[ENDS_ON]];
    e.computed = vec![ComputedDef {
        name: STATUS,
        options: MembershipStatus::KEYS,
        eval: |r, cx| status(r, cx).key(),
        expand: |option, cx| {
            MembershipStatus::from_key(option).map_or(Filter::Not(Box::new(Filter::All)), |s| expand(s, cx))
        },
        sort_by: &[ENDS_ON],
    }];
    e
}

/// A pause of a membership (a date range), a child of the membership: written in its change set, gone
/// with it.
fn membership_freeze() -> EntityDef {
    let mut e = EntityDef::new("membership_freeze", "membership_freezes")
        .field(F::new(MEMBERSHIP_ID, T::Ref("membership")).required())
        .field(F::new(STARTS_ON, T::Date).required())
        .field(F::new(ENDS_ON, T::Date).required())
        .field(F::new("reason", T::Text).max_len(500));
    e.since = 4;
    e.child_of = Some(ChildOf {
        parent: "membership",
        field: MEMBERSHIP_ID,
        order_by: &[STARTS_ON],
    });
    e.check = Some(dates_in_order);
    e.indexes = vec![&[MEMBERSHIP_ID, STARTS_ON]];
    e
}

/// A membership's frozen days are the days its freezes cover (overlaps counted once).
#[derive(Debug)]
pub struct MembershipRules;

impl EntityRules for MembershipRules {
    fn derive_from_children(
        &self,
        parent: &mut Record,
        children: &mut [(&'static EntityDef, Vec<Record>)],
        _cx: &ComputeCtx,
    ) -> crate::error::Result<()> {
        let mut spans: Vec<(time::Date, time::Date)> = children
            .iter()
            .filter(|(d, _)| d.name == MEMBERSHIP_FREEZE.name)
            .flat_map(|(_, freezes)| freezes)
            .filter_map(|f| match (f.get(STARTS_ON), f.get(ENDS_ON)) {
                (Some(Value::Date(s)), Some(Value::Date(e))) if s <= e => Some((*s, *e)),
                _ => None,
            })
            .collect();
        spans.sort();
        let mut days = 0i64;
        let mut covered_to: Option<time::Date> = None;
        for (s, e) in spans {
            let from = match covered_to {
                Some(c) if c >= e => continue,
                Some(c) if c >= s => c.next_day().unwrap_or(e),
                _ => s,
            };
            days += (e - from).whole_days() + 1;
            covered_to = Some(e);
        }
        parent.set(FROZEN_DAYS, days);
        Ok(())
    }
}

fn dates_in_order(r: &Record, errs: &mut Vec<FieldError>) {
    if let (Some(Value::Date(s)), Some(Value::Date(e))) = (r.get(STARTS_ON), r.get(ENDS_ON))
        && e < s
    {
        errs.push(FieldError::new(
            ENDS_ON,
            codes::TOO_SMALL,
            "a membership ends on or after it starts",
        ));
    }
}

/// The last day of the expiring window: today plus the tenant's `membership_expiring_days`.
fn window(cx: &ComputeCtx) -> (time::Date, time::Date) {
    let today = cx.today();
    let days = cx.setting_i64(org_fields::MEMBERSHIP_EXPIRING_DAYS, DEFAULT_EXPIRING_DAYS);
    (today, today.saturating_add(time::Duration::days(days)))
}

/// A membership's status as of the context's day.
pub fn status(r: &Record, cx: &ComputeCtx) -> MembershipStatus {
    let (today, last) = window(cx);
    let date = |f| match r.get(f) {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    };
    if r.get(CANCELLED) == Some(&Value::Bool(true)) {
        return MembershipStatus::Cancelled;
    }
    match (date(STARTS_ON), date(ENDS_ON)) {
        (Some(s), _) if s > today => MembershipStatus::Upcoming,
        (_, Some(e)) if e < today => MembershipStatus::Expired,
        (_, Some(e)) if e <= last => MembershipStatus::Expiring,
        _ => MembershipStatus::Active,
    }
}

/// The stored-column predicate that holds exactly when [`status`] gives `s` (both fields are required,
/// so no null cases arise).
fn expand(s: MembershipStatus, cx: &ComputeCtx) -> Filter {
    let (today, last) = window(cx);
    let on = |f: &str, op, d: time::Date| Filter::cmp(f, op, Value::Date(d));
    let live = Filter::eq(CANCELLED, false);
    let started = on(STARTS_ON, Op::Le, today);
    match s {
        MembershipStatus::Cancelled => Filter::eq(CANCELLED, true),
        MembershipStatus::Upcoming => Filter::and([live, on(STARTS_ON, Op::Gt, today)]),
        MembershipStatus::Expired => Filter::and([live, started, on(ENDS_ON, Op::Lt, today)]),
        MembershipStatus::Expiring => {
            Filter::and([live, started, on(ENDS_ON, Op::Ge, today), on(ENDS_ON, Op::Le, last)])
        }
        MembershipStatus::Active => Filter::and([live, started, on(ENDS_ON, Op::Gt, last)]),
    }
}
