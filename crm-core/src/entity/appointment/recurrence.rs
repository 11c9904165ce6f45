//! An appointment's recurrence: an RFC 5545 `RRULE` value (`FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`)
//! repeating its first range. The rule runs in the appointment's time zone, so a 09:00 meeting stays
//! at 09:00 local time across a daylight-saving change; expansion is the `rrule` crate's (its zone
//! names are chrono-tz's, the same IANA database the core bundles through jiff).
//!
//! Series are daily or coarser (a `SECONDLY`, `MINUTELY` or `HOURLY` appointment is refused), and
//! expanding one reads at most [`MAX_OCCURRENCES`] occurrences from its start: a bounded series
//! (`COUNT` or `UNTIL`) may have no more, an unbounded one is read that far.

use crate::value::Timestamp;
use rrule::RRuleSet;

/// Most occurrences one series expands to (a daily series for 27 years).
pub const MAX_OCCURRENCES: usize = 10_000;

/// The end of an unbounded series.
pub const FOREVER: Timestamp = Timestamp(253_402_300_799_000_000); // 9999-12-31T23:59:59Z

/// A parsed series: the rule from the first start in its zone, and each occurrence's length.
#[derive(Debug)]
pub struct Series {
    set: RRuleSet,
    /// The rule as given (upper case, without the `RRULE:` prefix).
    rule: String,
    length: i64,
    bounded: bool,
}

/// Parses `rule` (an `RRULE` value, with or without the `RRULE:` prefix) for an appointment that
/// first runs from `starts_at` to `ends_at` in `zone` (an IANA name). The error says what is wrong.
pub fn parse(rule: &str, starts_at: Timestamp, ends_at: Timestamp, zone: &str) -> Result<Series, String> {
    let rule = rule.trim();
    let rule = rule.strip_prefix("RRULE:").unwrap_or(rule);
    if rule.is_empty() || rule.contains(['\n', '\r', ':']) {
        return Err("expected one RRULE value such as FREQ=WEEKLY;COUNT=10".into());
    }
    let parts: Vec<(String, String)> = rule
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_ascii_uppercase()))
        .collect();
    let part = |k: &str| parts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if matches!(part("FREQ"), Some("SECONDLY" | "MINUTELY" | "HOURLY")) {
        return Err("a series repeats daily or less often".into());
    }
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| format!("unknown time zone {zone}"))?;
    let local = jiff::Timestamp::from_microsecond(starts_at.0)
        .map(|t| t.to_zoned_datetime(tz).datetime().strftime("%Y%m%dT%H%M%S").to_string())
        .map_err(|_| "a series starts within the years 0001 to 9999".to_owned())?;
    let text = format!("DTSTART;TZID={zone}:{local}\nRRULE:{rule}");
    let set: RRuleSet = text.parse().map_err(|e: rrule::RRuleError| e.to_string())?;
    let bounded = part("COUNT").is_some() || part("UNTIL").is_some();
    let series = Series {
        set,
        rule: rule.to_ascii_uppercase(),
        length: (ends_at.0 - starts_at.0).max(0),
        bounded,
    };
    if bounded && (&series.set).into_iter().nth(MAX_OCCURRENCES).is_some() {
        return Err(format!("a series has at most {MAX_OCCURRENCES} occurrences"));
    }
    Ok(series)
}

impl Series {
    /// The occurrences' starts, in order, at most [`MAX_OCCURRENCES`], none after [`FOREVER`].
    fn starts(&self) -> impl Iterator<Item = Timestamp> + '_ {
        (&self.set)
            .into_iter()
            .take(MAX_OCCURRENCES)
            .map(|d| Timestamp(d.timestamp() * 1_000_000 + i64::from(d.timestamp_subsec_micros())))
            .take_while(|s| *s < FOREVER)
    }

    /// The end of the last occurrence ([`FOREVER`] for a series without `COUNT` or `UNTIL`, and
    /// at the latest: timestamps end with the year 9999).
    pub fn last_end(&self) -> Timestamp {
        if !self.bounded {
            return FOREVER;
        }
        self.starts()
            .last()
            .map_or(FOREVER, |s| Timestamp(s.0 + self.length).min(FOREVER))
    }

    /// The occurrences overlapping `[from, to)`, as `[start, end)` ranges in time order.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        self.starts()
            .take_while(|s| *s < to)
            .map(|s| (s, Timestamp(s.0 + self.length)))
            .filter(|(_, e)| *e > from)
            .collect()
    }

    /// The rule as an iCalendar `RRULE` value (as given, in upper case).
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn a_weekly_meeting_keeps_its_local_hour_across_the_autumn_change() {
        // 09:00 in Berlin: 07:00 UTC in summer time, 08:00 UTC after 25 October 2026.
        let s = parse(
            "FREQ=WEEKLY;COUNT=3",
            at("2026-10-20T07:00:00Z"),
            at("2026-10-20T08:00:00Z"),
            "Europe/Berlin",
        )
        .unwrap();
        let got = s.between(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        assert_eq!(
            got,
            [
                (at("2026-10-20T07:00:00Z"), at("2026-10-20T08:00:00Z")),
                (at("2026-10-27T08:00:00Z"), at("2026-10-27T09:00:00Z")),
                (at("2026-11-03T08:00:00Z"), at("2026-11-03T09:00:00Z")),
            ]
        );
        assert_eq!(s.last_end(), at("2026-11-03T09:00:00Z"));
        assert!(s.rule().contains("FREQ=WEEKLY"), "{}", s.rule());
    }

    #[test]
    fn between_keeps_only_overlapping_occurrences() {
        let s = parse(
            "RRULE:FREQ=DAILY",
            at("2026-03-01T10:00:00Z"),
            at("2026-03-01T11:00:00Z"),
            "UTC",
        )
        .unwrap();
        let got = s.between(at("2026-03-03T10:30:00Z"), at("2026-03-05T10:00:00Z"));
        assert_eq!(got.len(), 2, "the 3rd (running at 10:30) and the 4th: {got:?}");
        assert_eq!(s.last_end(), FOREVER);
    }

    #[test]
    fn a_series_ends_with_the_last_representable_year() {
        let s = parse(
            "FREQ=DAILY;COUNT=5",
            at("9999-12-29T22:00:00Z"),
            at("9999-12-29T23:00:00Z"),
            "UTC",
        )
        .unwrap();
        assert_eq!(
            s.last_end(),
            at("9999-12-31T23:00:00Z"),
            "the 3rd; the 4th would be in 10000"
        );
        assert_eq!(s.between(at("9999-01-01T00:00:00Z"), FOREVER).len(), 3);
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let (s, e) = (at("2026-03-01T10:00:00Z"), at("2026-03-01T11:00:00Z"));
        assert!(parse("FREQ=HOURLY", s, e, "UTC").unwrap_err().contains("daily"));
        assert!(parse("FREQ=SOMETIMES", s, e, "UTC").is_err());
        assert!(parse("FREQ=DAILY\nX-INJECT:1", s, e, "UTC").is_err());
        assert!(parse("FREQ=DAILY;COUNT=20000", s, e, "UTC").is_err());
        assert!(parse("FREQ=DAILY", s, e, "Mars/Olympus").unwrap_err().contains("zone"));
    }
}
