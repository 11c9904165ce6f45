//! Feeds arbitrary text to an appointment's recurrence rule (an RFC 5545 `RRULE` value a user
//! types), with a start and a zone from the input: parsing must never panic, and a rule that parses
//! must expand within its bounds (occurrences in time order, inside the window, no more than the
//! core's cap).
#![no_main]

use crm_core::entity::appointment::recurrence::{self, MAX_OCCURRENCES};
use crm_core::value::Timestamp;
use libfuzzer_sys::fuzz_target;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/Denver",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
];

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Ok(rule) = std::str::from_utf8(rest) else {
        return;
    };
    // A start between 1970 and about 2100, an hour long, in one of a few zones with odd offsets.
    let start = Timestamp(i64::from(head) * 16_000_000 * 1_000_000 + i64::from(head % 7) * 3_600_000_000);
    let end = start.plus_hours(1);
    let zone = ZONES[usize::from(head) % ZONES.len()];
    let Ok(series) = recurrence::parse(rule, start, end, zone) else {
        return;
    };
    let (from, to) = (start, start.plus_days(400));
    let got = series.between(from, to);
    assert!(got.len() <= MAX_OCCURRENCES);
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
    assert!(got.iter().all(|(s, e)| *s < to && *e > from), "inside the window");
    assert!(series.last_end() >= end || got.is_empty());
});
