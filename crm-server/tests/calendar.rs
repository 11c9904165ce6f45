//! Calendars over HTTP: appointments with attendees and a weekly recurrence across a daylight-saving
//! change, a user's appointment list in a range, "my day", and the iCalendar feed: parsed back with
//! the `icalendar` crate, its recurrence expanded by the crate matching the core's occurrences, its
//! zone defined, and its token revoked.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use icalendar::{Calendar, Component, EventLike};
use serde_json::{Value as Json, json};

fn secs(j: &Json) -> i64 {
    let s = j.as_str().unwrap();
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_appointment_from_booking_to_a_revoked_feed() {
    let env = Env::start().await;
    let (manager, tech) = (env.a.token("manager"), env.a.token("field_tech"));
    let tom = env.a.user("field_tech").to_string();
    // 09:00 in Berlin on Tuesdays: 07:00 UTC in summer time, 08:00 UTC after 25 October 2026. The
    // series has no end: the feed below covers 30 days back from the real today, which a series
    // ending in November 2026 left on 4 December 2026.
    let body = json!({"title": "Site survey", "starts_at": "2026-10-13T07:00:00Z", "ends_at": "2026-10-13T08:30:00Z",
        "time_zone": "Europe/Berlin", "recurrence": "FREQ=WEEKLY", "place": "12 Elm St",
        "appointment_attendees": [{"user_id": tom}]});
    let a = env.post("/api/v1/appointments", manager, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["attendee_user_ids"], json!([tom]));
    assert_eq!(a.body["series_ends_at"], json!("9999-12-31T23:59:59Z"));

    // A bad rule and a bad zone are one 422 naming both fields.
    let bad = env
        .post(
            "/api/v1/appointments",
            manager,
            json!({"title": "x", "starts_at": "2026-10-13T07:00:00Z", "ends_at": "2026-10-13T08:00:00Z",
                "time_zone": "Mars/Base", "recurrence": "FREQ=MINUTELY"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(
        bad.text.contains("time_zone") && bad.text.contains("recurrence"),
        "{}",
        bad.text
    );
    // Tom is booked: a second appointment over the third occurrence is refused.
    let clash = env
        .post(
            "/api/v1/appointments",
            manager,
            json!({"title": "Call", "starts_at": "2026-10-27T08:00:00Z", "ends_at": "2026-10-27T08:15:00Z",
                "appointment_attendees": [{"user_id": tom}]}),
        )
        .await;
    assert_eq!(clash.status, 422, "{}", clash.text);
    assert!(clash.text.contains("overlap"), "{}", clash.text);

    // The tech's list of the range: the occurrences in UTC, moving an hour with the clocks.
    let list = env
        .get(
            "/api/v1/calendar/appointments?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            tech,
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let occ: Vec<i64> = list.body["items"][0]["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| secs(&o["starts_at"]))
        .collect();
    let core_starts: Vec<&str> = list.body["items"][0]["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        core_starts,
        [
            "2026-10-13T07:00:00Z",
            "2026-10-20T07:00:00Z",
            "2026-10-27T08:00:00Z",
            "2026-11-03T08:00:00Z",
            "2026-11-10T08:00:00Z",
            "2026-11-17T08:00:00Z",
            "2026-11-24T08:00:00Z"
        ]
    );
    let day = env.get("/api/v1/field/my-day?date=2026-10-27", tech).await;
    assert_eq!(day.status, 200, "{}", day.text);
    assert_eq!(day.body["items"][0]["appointment"]["title"], json!("Site survey"));
    assert_eq!(day.body["items"][0]["starts_at"], json!("2026-10-27T08:00:00Z"));
    assert_eq!(day.body["items"][0]["job"], Json::Null);

    // The feed: issued once, read without a session.
    let feed = env.post("/api/v1/calendar/feeds", tech, json!({})).await;
    assert_eq!(feed.status, 201, "{}", feed.text);
    let url = feed.body["url"].as_str().unwrap().to_owned();
    assert!(feed.body["calendar_feed"].get("token_hash").is_none(), "{}", feed.text);
    let ics = env.call("GET", &url, None, None, &[]).await;
    assert_eq!(ics.status, 200, "{}", ics.text);
    assert!(
        ics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar"),
        "{:?}",
        ics.headers
    );
    let cal: Calendar = ics.text.parse().unwrap();
    let ev = cal
        .calendar_events()
        .find(|e| e.event().get_summary() == Some("Site survey"))
        .unwrap_or_else(|| panic!("no survey in {}", ics.text));
    assert_eq!(ev.event().get_location(), Some("12 Elm St"));
    assert!(
        ics.text.contains("DTSTART;TZID=Europe/Berlin:20261013T090000"),
        "{}",
        ics.text
    );
    assert!(
        ics.text.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin"),
        "{}",
        ics.text
    );
    assert!(
        ics.text.contains("TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100"),
        "{}",
        ics.text
    );
    // The crate expands the feed's rule in the feed's zone to the core's occurrences (the first
    // ones: the series has no end).
    let expanded: Vec<i64> = ev
        .get_recurrence()
        .unwrap()
        .all(occ.len() as u16)
        .dates
        .iter()
        .map(|d| d.timestamp())
        .collect();
    assert_eq!(expanded, occ);

    // Revoked: the same URL is not found.
    let id = feed.body["calendar_feed"]["id"].as_str().unwrap();
    let del = env
        .call(
            "DELETE",
            &format!("/api/v1/calendar_feeds/{id}"),
            Some(tech),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    let gone = env.call("GET", &url, None, None, &[]).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let forged = env.call("GET", &url.replace(".ics", "x.ics"), None, None, &[]).await;
    assert_eq!(forged.status, 404, "{}", forged.text);
}
