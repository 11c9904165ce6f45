//! The calendar feed as iCalendar (RFC 5545), rendered with the `icalendar` crate from what the core
//! decided belongs in it ([`CalendarFeed`]). Appointments keep their zone (`DTSTART;TZID=...` in
//! local time, with their `RRULE`, so a calendar app expands a weekly 09:00 meeting at 09:00 across
//! a daylight-saving change) and each zone used gets a `VTIMEZONE` built from the zone database's
//! transitions over the feed's span; crew assignments are plain UTC times.

use crm_core::entity::appointment::{self, fields as af, recurrence};
use crm_core::entity::job::{crew, fields as job};
use crm_core::record::Record;
use crm_core::service::CalendarFeed;
use crm_core::value::{Timestamp, Value};
use icalendar::{Calendar, Component, EventLike, Property};
use std::collections::BTreeMap;

/// The feed's product identifier.
const PRODID: &str = "-//crm//calendar feed//EN";

fn at(r: &Record, f: &str) -> Option<Timestamp> {
    r.get(f).and_then(Value::as_timestamp)
}

fn utc(t: Timestamp) -> String {
    jiff::Timestamp::from_microsecond(t.0)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn local(t: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_microsecond(t.0)
        .map(|t| t.to_zoned_datetime(zone.clone()).strftime("%Y%m%dT%H%M%S").to_string())
        .unwrap_or_default()
}

/// `DTSTART`/`DTEND` in a zone's local time.
fn zoned(key: &str, t: Timestamp, name: &str, zone: &jiff::tz::TimeZone) -> Property {
    Property::new(key, local(t, zone)).add_parameter("TZID", name).done()
}

/// The feed; the zones' definitions cover its span and its earliest appointment.
pub fn render(feed: &CalendarFeed) -> String {
    let (from, to) = (feed.from, feed.to);
    let mut cal = Calendar::empty();
    cal.append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", PRODID))
        .append_property(Property::new("CALSCALE", "GREGORIAN"));
    cal.name(feed.user.str("name").unwrap_or("Calendar"));
    cal.timezone(feed.zone.as_str());
    let mut zones: BTreeMap<String, (jiff::tz::TimeZone, Timestamp)> = BTreeMap::new();
    for a in &feed.appointments {
        let (Some(s), Some(e)) = (at(a, af::STARTS_AT), at(a, af::ENDS_AT)) else {
            continue;
        };
        let name = a.str(af::TIME_ZONE).unwrap_or(&feed.zone);
        let Ok(zone) = jiff::tz::TimeZone::get(name) else {
            continue;
        };
        let earliest = zones.entry(name.to_owned()).or_insert((zone.clone(), s));
        earliest.1 = earliest.1.min(s);
        let mut ev = icalendar::Event::new();
        ev.uid(&format!("{}@crm", a.id))
            .summary(a.str(af::TITLE).unwrap_or_default())
            .add_property("DTSTAMP", utc(a.updated_at))
            .add_property("LAST-MODIFIED", utc(a.updated_at))
            .sequence(u32::try_from(a.version).unwrap_or(u32::MAX))
            .append_property(zoned("DTSTART", s, name, &zone))
            .append_property(zoned("DTEND", e, name, &zone))
            .add_property(
                "STATUS",
                if appointment::is_tentative(a) {
                    "TENTATIVE"
                } else {
                    "CONFIRMED"
                },
            );
        if let Some(Ok(series)) = appointment::series(a) {
            ev.add_property("RRULE", series.rule());
        }
        if let Some(p) = a.str(af::PLACE) {
            ev.location(p);
        }
        if let Some(u) = a.str(af::MEETING_URL) {
            ev.url(u);
        }
        if let Some(n) = a.str(af::NOTES) {
            ev.description(n);
        }
        cal.push(ev.done());
    }
    for (a, j) in &feed.assignments {
        let (Some(s), Some(e)) = (at(a, crew::fields::STARTS_AT), at(a, crew::fields::ENDS_AT)) else {
            continue;
        };
        let title = j.str(job::TITLE).unwrap_or("Job");
        let role = a.str(crew::fields::ROLE).unwrap_or_default();
        let place: Vec<&str> = ["address_line", "postal_code", "city"]
            .iter()
            .filter_map(|f| j.str(f))
            .collect();
        let mut ev = icalendar::Event::new();
        ev.uid(&format!("{}@crm", a.id))
            .summary(&format!("{title} ({role})"))
            .add_property("DTSTAMP", utc(a.updated_at.max(j.updated_at)))
            .add_property("DTSTART", utc(s))
            .add_property("DTEND", utc(e))
            .add_property("STATUS", "CONFIRMED");
        if !place.is_empty() {
            ev.location(&place.join(", "));
        }
        if let Some(n) = j.str(job::NOTES) {
            ev.description(n);
        }
        cal.push(ev.done());
    }
    let mut text = cal.done().to_string();
    // The zones' definitions go before the events that name them (the crate has no VTIMEZONE).
    let defs: String = zones
        .iter()
        .map(|(name, (zone, earliest))| vtimezone(name, zone, (*earliest).min(from), to))
        .collect();
    if let Some(i) = text.find("BEGIN:VEVENT") {
        text.insert_str(i, &defs);
    } else if let Some(i) = text.find("END:VCALENDAR") {
        text.insert_str(i, &defs);
    }
    text
}

/// A `VTIMEZONE` for `name` with every offset change from before `from` to `to` (one `STANDARD`
/// part for a zone without changes), each as the local time it happens at.
fn vtimezone(name: &str, zone: &jiff::tz::TimeZone, from: Timestamp, to: Timestamp) -> String {
    let start = jiff::Timestamp::from_microsecond(from.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let end = jiff::Timestamp::from_microsecond(to.0.min(recurrence::FOREVER.0)).unwrap_or(start);
    let mut out = format!("BEGIN:VTIMEZONE\r\nTZID:{name}\r\n");
    let hhmm = |o: jiff::tz::Offset| {
        let s = o.seconds();
        format!(
            "{}{:02}{:02}",
            if s < 0 { '-' } else { '+' },
            s.abs() / 3600,
            s.abs() / 60 % 60
        )
    };
    // The change in effect at the start, then each one up to the end.
    let first = zone.preceding(start).next();
    let changes: Vec<_> = first
        .into_iter()
        .chain(zone.following(start).take_while(|t| t.timestamp() <= end))
        .collect();
    if changes.is_empty() {
        let o = zone.to_offset(start);
        out += &format!(
            "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:{0}\r\nTZOFFSETTO:{0}\r\nEND:STANDARD\r\n",
            hhmm(o)
        );
    }
    for t in changes {
        let before = zone.to_offset(t.timestamp() - jiff::SignedDuration::from_secs(1));
        let kind = if t.dst().is_dst() { "DAYLIGHT" } else { "STANDARD" };
        let onset = t.timestamp().to_zoned_datetime(jiff::tz::TimeZone::fixed(before));
        out += &format!(
            "BEGIN:{kind}\r\nDTSTART:{}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\nTZNAME:{}\r\nEND:{kind}\r\n",
            onset.strftime("%Y%m%dT%H%M%S"),
            hhmm(before),
            hhmm(t.offset()),
            t.abbreviation()
        );
    }
    out + "END:VTIMEZONE\r\n"
}
