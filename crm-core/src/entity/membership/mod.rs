//! Memberships: a client's (contact's) paid period at the esports centre, sold from a plan
//! ([`crate::entity::plan`]). Its status is computed, never stored: it is always right as of today, with
//! no batch job to refresh it, and still filterable (`status:expiring`) and sortable because it
//! expands into date ranges on the stored columns ([`mod@status`]). Freezes are children; the freeze
//! that has not ended is mirrored on the membership (`frozen_from`, `frozen_to`) so `status:frozen`
//! is a predicate too, and a freeze extends the end date when the tenant's policy says so.
//!
//! The client's own status (the contact's computed `membership`) reads what [`client`] mirrors on
//! the contact in the change set of every membership write. See ADR 0006.

pub mod client;
pub mod status;

use super::{EntityRules, Need, declare, keyed_enum, people::org_fields};
use crate::computed::{ComputeCtx, ComputedDef};
use crate::error::{Error, FieldError, Result, codes};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, FieldDef as F, Fold, Rollup};
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
        /// Running, and a freeze covers today.
        Frozen = "frozen",
        /// Cancelled, whatever its dates.
        Cancelled = "cancelled",
    }
);

/// Field names of a membership.
pub mod fields {
    pub const CONTACT_ID: &str = "contact_id";
    pub const PLAN_ID: &str = "plan_id";
    pub const PLAN_NAME: &str = "plan_name";
    pub const STARTS_ON: &str = "starts_on";
    pub const ENDS_ON: &str = "ends_on";
    pub const CANCELLED: &str = "cancelled";
    pub const PRICE_PAID: &str = "price_paid";
    pub const NOTES: &str = "notes";
    /// Derived: the days covered by the membership's freezes.
    pub const FROZEN_DAYS: &str = "frozen_days";
    /// Derived: the freeze that has not ended (else the last one).
    pub const FROZEN_FROM: &str = "frozen_from";
    pub const FROZEN_TO: &str = "frozen_to";
    /// Derived: check-ins counted against the plan's visit allowance (allowed and warned ones).
    pub const VISITS_USED: &str = "visits_used";
    /// The membership this one renews (set by the renewal).
    pub const RENEWS_ID: &str = "renews_id";
    /// A freeze's parent.
    pub const MEMBERSHIP_ID: &str = "membership_id";
    pub const REASON: &str = "reason";
    /// Computed: see [`super::MembershipStatus`].
    pub const STATUS: &str = "status";
}
use fields::*;

/// The due kind raised when a membership starts expiring (`membership.expiring`).
pub const EXPIRING_DUE_KIND: &str = "expiring";

/// Days before the end date a membership counts as expiring, when the tenant has not set it.
pub const DEFAULT_EXPIRING_DAYS: i64 = 14;

/// The columns a membership's status reads.
pub const COLUMNS: status::Columns = status::Columns {
    starts_on: STARTS_ON,
    ends_on: ENDS_ON,
    cancelled: CANCELLED,
    frozen_from: FROZEN_FROM,
    frozen_to: FROZEN_TO,
};

fn membership() -> EntityDef {
    let mut e = EntityDef::new("membership", "memberships")
        .field(F::new(CONTACT_ID, T::Ref("contact")).required())
        .field(F::new(PLAN_NAME, T::Text).max_len(100))
        .field(F::new(STARTS_ON, T::Date).required())
        .field(F::new(ENDS_ON, T::Date).required())
        .field(F::new(CANCELLED, T::Bool).required().default(false))
        .field(F::new(PRICE_PAID, T::Money).range(Some(0), None))
        .field(F::new(NOTES, T::Text).max_len(10_000))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(FROZEN_DAYS, T::Integer).derived().default(0i64))
        .field(F::new(PLAN_ID, T::Ref("plan")).since(7))
        .field(F::new(FROZEN_FROM, T::Date).derived().since(7))
        .field(F::new(FROZEN_TO, T::Date).derived().since(7))
        .field(F::new(VISITS_USED, T::Integer).derived().default(0i64).since(7))
        .field(F::new(RENEWS_ID, T::Ref("membership")).read_only().since(7));
    e.since = 4;
    e.rules = &MembershipRules;
    e.external_key = Some("external_id");
    e.custom_fields = true;
    e.check = Some(dates_in_order);
    e.indexes = vec![&[CONTACT_ID, ENDS_ON], &[ENDS_ON]];
    e.computed = vec![ComputedDef {
        name: STATUS,
        options: MembershipStatus::KEYS,
        eval: |r, cx| status::eval_key(r, &COLUMNS, cx),
        expand: |option, cx| status::expand_key(option, &COLUMNS, cx),
        sort_by: &[ENDS_ON],
    }];
    // A membership falls due for a renewal offer when it starts expiring: once per end date (a
    // renewal or a freeze that moves the end date makes a new occurrence).
    e.due.push(crate::due::DueDef {
        kind: EXPIRING_DUE_KIND,
        select: |cx| status::expand(Some(MembershipStatus::Expiring), &COLUMNS, cx),
        occurrence: |r, cx| {
            (status::eval(r, &COLUMNS, cx) == Some(MembershipStatus::Expiring))
                .then(|| r.get(ENDS_ON).map(|v| v.to_json().to_string()))
                .flatten()
        },
    });
    e.rollups = vec![Rollup::Fold(Fold {
        via: CONTACT_ID,
        fields: client::MIRRORED,
        fold: client::fold,
    })];
    e
}

/// A pause of a membership (a date range), a child of the membership: written in its change set, gone
/// with it.
fn membership_freeze() -> EntityDef {
    let mut e = EntityDef::new("membership_freeze", "membership_freezes")
        .field(F::new(MEMBERSHIP_ID, T::Ref("membership")).required())
        .field(F::new(STARTS_ON, T::Date).required())
        .field(F::new(ENDS_ON, T::Date).required())
        .field(F::new(REASON, T::Text).max_len(500));
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

/// Whether a freeze extends the membership's end date (the tenant's `membership_freeze_extends`;
/// default: it does, so a frozen member keeps the days they paid for).
pub fn freeze_extends(org: Option<&Record>) -> bool {
    org.and_then(|o| o.get(org_fields::MEMBERSHIP_FREEZE_EXTENDS)) != Some(&Value::Bool(false))
}

/// Date spans merged where they overlap or touch (sorted by start).
pub(crate) fn merge_spans(mut spans: Vec<(time::Date, time::Date)>) -> Vec<(time::Date, time::Date)> {
    spans.sort();
    let mut out: Vec<(time::Date, time::Date)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1.next_day().unwrap_or(last.1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// A membership derives from its freezes: the days they cover (overlaps counted once), the freeze
/// that has not ended (at most one: see ADR 0006), and, by the tenant's policy, an end date moved by
/// the frozen days each freeze change adds or removes.
#[derive(Debug)]
pub struct MembershipRules;

impl EntityRules for MembershipRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::Settings]
    }

    fn derive_from_children(
        &self,
        parent: &mut Record,
        children: &mut [(&'static EntityDef, Vec<Record>)],
        cx: &ComputeCtx,
    ) -> Result<()> {
        let spans: Vec<(time::Date, time::Date)> = children
            .iter()
            .filter(|(d, _)| d.name == MEMBERSHIP_FREEZE.name)
            .flat_map(|(_, freezes)| freezes)
            .filter_map(|f| match (f.get(STARTS_ON), f.get(ENDS_ON)) {
                (Some(Value::Date(s)), Some(Value::Date(e))) if s <= e => Some((*s, *e)),
                _ => None,
            })
            .collect();
        let merged = merge_spans(spans);
        let days: i64 = merged.iter().map(|(s, e)| (*e - *s).whole_days() + 1).sum();
        let today = cx.today();
        let open: Vec<_> = merged.iter().filter(|(_, e)| *e >= today).collect();
        if open.len() > 1 {
            return Err(Error::field(
                "membership_freezes",
                codes::PENDING_FREEZE,
                "a membership has at most one freeze that has not ended",
            ));
        }
        let shown = open.first().copied().or(merged.last()).copied();
        parent.set(FROZEN_FROM, shown.map(|s| s.0));
        parent.set(FROZEN_TO, shown.map(|s| s.1));
        let before = parent.get(FROZEN_DAYS).and_then(Value::as_i64).unwrap_or(0);
        if days != before
            && freeze_extends(cx.org.as_deref())
            && let Some(Value::Date(end)) = parent.get(ENDS_ON).cloned()
        {
            parent.set(ENDS_ON, end.saturating_add(time::Duration::days(days - before)));
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

/// A membership's status as of the context's day.
pub fn status(r: &Record, cx: &ComputeCtx) -> MembershipStatus {
    status::eval(r, &COLUMNS, cx).unwrap_or(MembershipStatus::Expired)
}

/// The first and last day of a renewal of `m` on `today`: it continues from the end date (or starts
/// today when that lies in the past) for the plan's `duration_days`, else for as many days as `m`
/// ran without its freezes.
pub fn renewal_dates(m: &Record, duration_days: Option<i64>, today: time::Date) -> Option<(time::Date, time::Date)> {
    let (Some(Value::Date(s)), Some(Value::Date(e))) = (m.get(STARTS_ON), m.get(ENDS_ON)) else {
        return None;
    };
    let frozen = m.get(FROZEN_DAYS).and_then(Value::as_i64).unwrap_or(0);
    let days = duration_days.unwrap_or_else(|| ((*e - *s).whole_days() + 1 - frozen).max(1));
    let start = e.next_day()?.max(today);
    Some((start, start.saturating_add(time::Duration::days(days - 1))))
}
