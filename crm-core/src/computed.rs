//! Computed fields: never stored, evaluated at read "as of" the service clock (a membership is active,
//! expiring or expired today), and still filterable and sortable because the binder expands them into
//! predicates and sort keys on stored columns. The declaration carries both halves, and the conformance
//! suite checks on every store that a filter's expansion selects exactly the records whose evaluation
//! gives that value.

use crate::query::Filter;
use crate::record::Record;
use crate::value::{Timestamp, Value};
use std::sync::Arc;

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
/// tenant's settings (the organization record). The tenant's time zone and today's date in it are
/// worked out once, here.
#[derive(Clone, Debug)]
pub struct ComputeCtx {
    pub now: Timestamp,
    /// Shared: presenting records takes it from the service's organization cache.
    pub org: Option<Arc<Record>>,
    zone: jiff::tz::TimeZone,
    today: time::Date,
}

impl ComputeCtx {
    pub fn new(now: Timestamp, org: Option<Record>) -> Self {
        Self::shared(now, org.map(Arc::new))
    }

    /// [`ComputeCtx::new`] with an organization record shared with others.
    pub fn shared(now: Timestamp, org: Option<Arc<Record>>) -> Self {
        let zone = org_zone(org.as_deref());
        let today = local_date(now, &zone);
        ComputeCtx { now, org, zone, today }
    }

    /// A context at the first instant of `date` in the tenant's time zone, whose [`Self::today`] is
    /// `date` (reports "as of" a day).
    pub fn on_date(date: time::Date, org: Option<Record>) -> Self {
        let zone = org_zone(org.as_ref());
        ComputeCtx {
            now: day_start(date, &zone),
            org: org.map(Arc::new),
            zone,
            today: date,
        }
    }

    /// Today's date in the tenant's time zone as of the context's time: a membership that ends
    /// today is active until the tenant's midnight, not UTC's.
    pub fn today(&self) -> time::Date {
        self.today
    }

    /// The tenant's time zone: the organization's `timezone` (an IANA name such as
    /// `America/Denver`), UTC when unset or not a known zone ([`time_zone`]).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.zone.clone()
    }

    /// The tenant's today as of the context's time: the instants its day starts and the next one
    /// starts, in the tenant's [`Self::time_zone`] (a day is 23 or 25 hours long when the clocks
    /// change). Falls back to the UTC day only for times outside the zone database's range.
    pub fn local_day(&self) -> (Timestamp, Timestamp) {
        let next = self.today.next_day().unwrap_or(self.today);
        (day_start(self.today, &self.zone), day_start(next, &self.zone))
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

/// A tenant's time zone: its organization's `timezone`, UTC when unset or unknown.
pub fn org_zone(org: Option<&Record>) -> jiff::tz::TimeZone {
    org.and_then(|o| o.str(crate::entity::people::org_fields::TIMEZONE))
        .and_then(time_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The instant `date` starts in `zone` (its midnight, or the first instant after a gap at midnight;
/// UTC's midnight for dates outside the zone database's range).
pub fn day_start(date: time::Date, zone: &jiff::tz::TimeZone) -> Timestamp {
    i16::try_from(date.year())
        .ok()
        .and_then(|y| jiff::civil::Date::new(y, u8::from(date.month()) as i8, date.day() as i8).ok())
        .and_then(|d| d.to_zoned_datetime(zone.clone()).ok())
        .map_or_else(
            || Timestamp::from_date(date),
            |z| Timestamp(z.timestamp().as_microsecond()),
        )
}

/// The calendar date at `now` in `zone` (the UTC date for times outside the zone database's range).
pub fn local_date(now: Timestamp, zone: &jiff::tz::TimeZone) -> time::Date {
    local_date_hour(now, zone).0
}

/// The calendar date and the hour of the day (0-23) at `at` in `zone` (UTC's for times outside the
/// zone database's range).
pub fn local_date_hour(at: Timestamp, zone: &jiff::tz::TimeZone) -> (time::Date, u8) {
    jiff::Timestamp::from_microsecond(at.0)
        .ok()
        .map(|t| t.to_zoned_datetime(zone.clone()).datetime())
        .and_then(|d| {
            let month = time::Month::try_from(d.month() as u8).ok()?;
            let date = time::Date::from_calendar_date(i32::from(d.year()), month, d.day() as u8).ok()?;
            Some((date, d.hour() as u8))
        })
        .unwrap_or_else(|| {
            let dt = at.to_datetime();
            (dt.date(), dt.hour())
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{ORGANIZATION, people::org_fields};
    use crate::value::Id;
    use time::macros::date;

    fn org(zone: &str) -> Option<Record> {
        let mut o = Record::empty(&ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
        o.set(org_fields::TIMEZONE, zone);
        Some(o)
    }

    #[test]
    fn today_is_the_tenants_date() {
        let t = Timestamp::parse("2025-06-01T03:00:00Z").unwrap();
        assert_eq!(ComputeCtx::new(t, org("America/Denver")).today(), date!(2025 - 05 - 31));
        assert_eq!(ComputeCtx::new(t, org("Asia/Tokyo")).today(), date!(2025 - 06 - 01));
        assert_eq!(ComputeCtx::new(t, None).today(), date!(2025 - 06 - 01));
        assert_eq!(
            local_date_hour(t, &org_zone(org("Asia/Tokyo").as_ref())),
            (date!(2025 - 06 - 01), 12)
        );
    }

    #[test]
    fn a_context_on_a_date_starts_at_the_tenants_midnight() {
        let cx = ComputeCtx::on_date(date!(2025 - 03 - 09), org("America/Denver"));
        assert_eq!(cx.today(), date!(2025 - 03 - 09));
        assert_eq!(cx.now, Timestamp::parse("2025-03-09T07:00:00Z").unwrap());
        assert_eq!(cx.local_day().0, cx.now);
        // The clocks go forward that night: the day is 23 hours long.
        assert_eq!(cx.local_day().1.0 - cx.now.0, 23 * 3_600_000_000);
    }
}
