//! A client's standing: what the contact mirrors of their memberships (derived fields, rewritten in
//! the change set of every membership write by the [`fold`] rollup), which membership is their
//! current one, and the client's computed `membership` status read from the mirror.
//!
//! The mirror is exact for every future day without a write because of two rules the fold enforces:
//! a client's memberships that have not ended form one unbroken run (merged where they overlap or
//! touch: a renewal continues from the end date), and that run has at most one freeze that has not
//! ended. Past memberships and freezes can't change what a later day's status is. See ADR 0006.

use super::fields::*;
use super::{MembershipStatus, merge_spans, status};
use crate::computed::ComputeCtx;
use crate::error::{Error, Result, codes};
use crate::record::Record;
use crate::value::Value;

/// Field names the contact mirrors (derived).
pub mod mirror {
    /// The first day of the client's current run of memberships (or of the last one).
    pub const STARTS_ON: &str = "membership_starts_on";
    /// Its last day.
    pub const ENDS_ON: &str = "membership_ends_on";
    /// The client's last membership was cancelled and none runs or follows.
    pub const CANCELLED: &str = "membership_cancelled";
    /// The run's freeze that has not ended.
    pub const FROZEN_FROM: &str = "membership_frozen_from";
    pub const FROZEN_TO: &str = "membership_frozen_to";
    /// Computed on the contact: see [`super::status::CLIENT_STATUSES`].
    pub const STATUS: &str = "membership";
}

/// The mirrored fields, in the order [`fold`] answers them.
pub const MIRRORED: &[&str] = &[
    mirror::STARTS_ON,
    mirror::ENDS_ON,
    mirror::CANCELLED,
    mirror::FROZEN_FROM,
    mirror::FROZEN_TO,
];

/// The columns the client's status reads.
pub const COLUMNS: status::Columns = status::Columns {
    starts_on: mirror::STARTS_ON,
    ends_on: mirror::ENDS_ON,
    cancelled: mirror::CANCELLED,
    frozen_from: mirror::FROZEN_FROM,
    frozen_to: mirror::FROZEN_TO,
};

fn date(r: &Record, f: &str) -> Option<time::Date> {
    match r.get(f) {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    }
}

fn cancelled(r: &Record) -> bool {
    r.get(CANCELLED) == Some(&Value::Bool(true))
}

fn span(r: &Record) -> Option<(time::Date, time::Date)> {
    Some((date(r, STARTS_ON)?, date(r, ENDS_ON)?))
}

/// The contact's mirror of a client's memberships as of the context's day (see the module docs):
/// the run that has not ended, else whichever ended last of the last run and the last cancelled
/// membership; nothing when there are no memberships. Refuses memberships that leave a gap between
/// runs that have not ended, or a second pending freeze in the run.
pub fn fold(memberships: &[Record], cx: &ComputeCtx) -> Result<Vec<Value>> {
    let today = cx.today();
    let runs = merge_spans(memberships.iter().filter(|m| !cancelled(m)).filter_map(span).collect());
    let open: Vec<_> = runs.iter().filter(|(_, e)| *e >= today).collect();
    if open.len() > 1 {
        return Err(Error::field(
            STARTS_ON,
            codes::MEMBERSHIP_GAP,
            format!(
                "a client's next membership continues from the current one: it starts on or before {}",
                open[0].1.next_day().unwrap_or(open[0].1)
            ),
        ));
    }
    if let Some((s, e)) = open.first().copied().copied() {
        let mut freezes: Vec<(time::Date, time::Date)> = memberships
            .iter()
            .filter(|m| !cancelled(m) && span(m).is_some_and(|(ms, me)| ms >= s && me <= e))
            .filter_map(|m| Some((date(m, FROZEN_FROM)?, date(m, FROZEN_TO)?)))
            .filter(|(_, to)| *to >= today)
            .collect();
        freezes.dedup();
        if freezes.len() > 1 {
            return Err(Error::field(
                "membership_freezes",
                codes::PENDING_FREEZE,
                "a client has at most one freeze that has not ended",
            ));
        }
        let f = freezes.first();
        return Ok(vec![
            s.into(),
            e.into(),
            false.into(),
            f.map(|f| f.0).into(),
            f.map(|f| f.1).into(),
        ]);
    }
    let last_run = runs.last().copied();
    let last_cancelled = memberships
        .iter()
        .filter(|m| cancelled(m))
        .filter_map(span)
        .max_by_key(|(_, e)| *e);
    Ok(match (last_run, last_cancelled) {
        (None, None) => vec![Value::Null; MIRRORED.len()],
        (run, Some(c)) if run.is_none_or(|r| c.1 >= r.1) => {
            vec![c.0.into(), c.1.into(), true.into(), Value::Null, Value::Null]
        }
        (Some(r), _) => vec![r.0.into(), r.1.into(), false.into(), Value::Null, Value::Null],
        (None, Some(c)) => vec![c.0.into(), c.1.into(), true.into(), Value::Null, Value::Null],
    })
}

/// A client's current membership among theirs as of the context's day: the running one (not
/// cancelled; the latest started), else the next upcoming one, else the one that ended last.
pub fn current<'a>(memberships: &'a [Record], cx: &ComputeCtx) -> Option<&'a Record> {
    let today = cx.today();
    let live = || memberships.iter().filter(|m| !cancelled(m));
    let running = live()
        .filter(|m| span(m).is_some_and(|(s, e)| s <= today && today <= e))
        .max_by_key(|m| date(m, STARTS_ON));
    let upcoming = || {
        live()
            .filter(|m| date(m, STARTS_ON).is_some_and(|s| s > today))
            .min_by_key(|m| date(m, STARTS_ON))
    };
    running
        .or_else(upcoming)
        .or_else(|| memberships.iter().max_by_key(|m| (date(m, ENDS_ON), !cancelled(m))))
}

/// A client's status as of the context's day, from the contact's mirror.
pub fn status_of(contact: &Record, cx: &ComputeCtx) -> Option<MembershipStatus> {
    status::eval(contact, &COLUMNS, cx)
}

/// A client's status as its option key ([`super::status::NONE`] for no membership).
pub fn status_name(s: Option<MembershipStatus>) -> &'static str {
    s.map_or(status::NONE, MembershipStatus::key)
}
