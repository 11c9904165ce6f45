//! Computed fields: never stored, evaluated at read "as of" the service clock (a membership is active,
//! expiring or expired today), and still filterable and sortable because the binder expands them into
//! predicates and sort keys on stored columns. The declaration carries both halves, and the conformance
//! suite checks on every store that a filter's expansion selects exactly the records whose evaluation
//! gives that value.

use crate::query::Filter;
use crate::record::Record;
use crate::value::{Timestamp, Value};

/// One computed field of an entity type: an enum-like value from a fixed list of options.
#[derive(Debug)]
pub struct ComputedDef {
    pub name: &'static str,
    /// Every value the evaluation may give, in a meaningful order (what clients may filter by).
    pub options: &'static [&'static str],
    /// The value of a stored record as of the context's time.
    pub eval: fn(&Record, &ComputeCtx) -> &'static str,
    /// The predicate on stored columns that holds exactly when `eval` gives `option`, as of the
    /// context's time. Called only with one of [`ComputedDef::options`].
    pub expand: fn(option: &str, &ComputeCtx) -> Filter,
    /// Sorting by the field sorts by these stored fields (in the requested direction).
    pub sort_by: &'static [&'static str],
}

/// What an evaluation or expansion may read besides the record: the time it is evaluated at and the
/// tenant's settings (the organization record).
#[derive(Clone, Debug)]
pub struct ComputeCtx {
    pub now: Timestamp,
    pub org: Option<Record>,
}

impl ComputeCtx {
    pub fn new(now: Timestamp, org: Option<Record>) -> Self {
        ComputeCtx { now, org }
    }

    /// Today's date (UTC) as of the context's time.
    pub fn today(&self) -> time::Date {
        self.now.date()
    }

    /// The tenant's time zone: the organization's `timezone` (an IANA name such as
    /// `America/Denver`), UTC when unset or not a known zone ([`time_zone`]).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.org
            .as_ref()
            .and_then(|o| o.str(crate::entity::people::org_fields::TIMEZONE))
            .and_then(time_zone)
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The tenant's today as of the context's time: the instants its day starts and the next one
    /// starts, in the tenant's [`Self::time_zone`] (a day is 23 or 25 hours long when the clocks
    /// change). Falls back to the UTC day only for times outside the zone database's range.
    pub fn local_day(&self) -> (Timestamp, Timestamp) {
        let utc = || {
            let today = Timestamp::from_date(self.today());
            (today, today.plus_days(1))
        };
        let Ok(now) = jiff::Timestamp::from_microsecond(self.now.0) else {
            return utc();
        };
        let tz = self.time_zone();
        let date = now.to_zoned_datetime(tz.clone()).date();
        let start = |d: jiff::civil::Date| {
            d.to_zoned_datetime(tz.clone())
                .ok()
                .map(|z| Timestamp(z.timestamp().as_microsecond()))
        };
        match (start(date), date.tomorrow().ok().and_then(start)) {
            (Some(a), Some(b)) => (a, b),
            _ => utc(),
        }
    }

    /// An integer setting of the tenant, or `default` when unset.
    pub fn setting_i64(&self, name: &str, default: i64) -> i64 {
        self.org
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_i64)
            .unwrap_or(default)
    }
}

/// The zone an IANA name (`America/Denver`, `Europe/Berlin`, `UTC`) names in the zone database
/// bundled with the core (the same on every platform), or `None`.
pub fn time_zone(name: &str) -> Option<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(name.trim()).ok()
}

/// Sets every computed field of a record as of the context's time.
pub fn evaluate(rec: &mut Record, cx: &ComputeCtx) {
    let def = rec.entity;
    if def.computed.is_empty() {
        return;
    }
    let values = def
        .computed
        .iter()
        .map(|c| Value::Text((c.eval)(rec, cx).to_owned()))
        .collect();
    rec.computed = values;
}
