//! Appointments: recurrence in their zone, overlap with a user's other appointments and crew
//! assignments (refused or warned by policy, safe between racing writers), and the per-user
//! calendar feed behind a revocable token (see [`crate::entity::appointment`]).

use super::*;
use crate::value::Value;

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// An appointment by the admin with the given users attending.
fn appointment<S: Store>(f: &Fixture<S>, users: &[Id], extra: Json) -> crate::error::Result<Record> {
    let attendees: Vec<_> = users.iter().map(|u| json!({"user_id": u.to_string()})).collect();
    let mut input = obj(json!({"title": "Roof inspection", "starts_at": "2025-06-02T09:00:00Z",
        "ends_at": "2025-06-02T10:00:00Z", "appointment_attendees": attendees}));
    input.extend(obj(extra));
    block(f.svc.create(&f.admin, "appointment", &input))
}

fn a_job_with_crew<S: Store>(f: &Fixture<S>, user: Id, from: &str, to: &str) -> Record {
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Cleo"})))).unwrap();
    block(f.svc.create(
        &f.admin,
        "job",
        &obj(
            json!({"kind": "project", "title": "Reroof", "contact_id": contact.id.to_string(),
            "scheduled_on": &from[..10], "crew_assignments": [{"user_id": user.to_string(), "role": "roofer",
            "starts_at": from, "ends_at": to}]}),
        ),
    ))
    .unwrap()
}

fn starts(items: &[crate::service::AppointmentItem]) -> Vec<Timestamp> {
    items
        .iter()
        .flat_map(|i| i.occurrences.iter().map(|(s, _)| *s))
        .collect()
}

/// A weekly series keeps its local hour across a daylight-saving change, its zone defaults to the
/// tenant's, its attendees see it (and nobody else in their scope), and "my day" shows its
/// occurrence beside the day's crew assignment, in time order.
pub fn appointments_recur_in_their_zone_and_show_in_my_day<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    f.set_org(json!({"timezone": "Europe/Berlin"}));
    // 09:00 in Berlin on Tuesdays: 07:00 UTC in summer time, 08:00 UTC from 26 October 2025.
    let weekly = appointment(
        &f,
        &[tom],
        json!({"starts_at": "2025-10-21T07:00:00Z", "ends_at": "2025-10-21T08:00:00Z",
            "recurrence": "FREQ=WEEKLY;COUNT=3"}),
    )
    .unwrap();
    assert_eq!(weekly.str("time_zone"), Some("Europe/Berlin"), "the tenant's zone");
    assert_eq!(
        weekly.get("series_ends_at"),
        Some(&Value::Timestamp(at("2025-11-04T09:00:00Z")))
    );
    let page = block(f.svc.appointments(
        &f.tech,
        None,
        at("2025-10-01T00:00:00Z"),
        at("2025-12-01T00:00:00Z"),
        &ListRequest::default(),
    ))
    .unwrap();
    assert_eq!(
        starts(&page.items),
        [
            at("2025-10-21T07:00:00Z"),
            at("2025-10-28T08:00:00Z"),
            at("2025-11-04T08:00:00Z")
        ]
    );
    // Only attendees (and the owner's scope) see it: another technician lists nothing.
    let other = block(f.svc.create(
        &f.admin,
        "user",
        &obj(json!({"name": "tina", "email": "tina@acme.test", "role": "field_tech"})),
    ))
    .unwrap();
    let tina = block(f.svc.actor(f.tenant, other.id)).unwrap();
    assert!(block(f.svc.get(&tina, "appointment", weekly.id)).is_err());
    assert!(block(f.svc.get(&f.tech, "appointment", weekly.id)).is_ok());
    let theirs = block(f.svc.appointments(
        &tina,
        Some(tom),
        at("2025-10-01T00:00:00Z"),
        at("2025-12-01T00:00:00Z"),
        &ListRequest::default(),
    ))
    .unwrap();
    assert!(theirs.items.is_empty(), "tina may not read tom's appointment");

    // My day: a crew assignment 10:00-14:00 Berlin and the series' occurrence at 09:00 Berlin.
    a_job_with_crew(&f, tom, "2025-10-28T09:00:00Z", "2025-10-28T13:00:00Z");
    let day = block(f.svc.my_day(&f.tech, Some(time::macros::date!(2025 - 10 - 28)))).unwrap();
    let kinds: Vec<_> = day
        .iter()
        .map(|i| (i.starts_at, i.appointment.is_some(), i.job.is_some()))
        .collect();
    assert_eq!(
        kinds,
        [
            (at("2025-10-28T08:00:00Z"), true, false),
            (at("2025-10-28T09:00:00Z"), false, true)
        ]
    );
    // Half an hour before that occurrence it falls due (a reminder), once.
    f.clock.set(at("2025-10-28T07:30:00Z"));
    let fired = block(f.svc.fire_due(f.tenant)).unwrap();
    let reminders: Vec<_> = fired.iter().filter(|i| i.entity == "appointment").collect();
    assert_eq!(reminders.len(), 1, "{fired:?}");
    assert!(reminders[0].key.ends_with("2025-10-28T08:00:00Z"), "{:?}", reminders[0]);
    assert!(
        block(f.svc.fire_due(f.tenant))
            .unwrap()
            .iter()
            .all(|i| i.entity != "appointment")
    );
    f.clock.set(NOW);
    // A cancelled appointment leaves the day.
    block(f.svc.transition(
        &f.admin,
        "appointment",
        weekly.id,
        weekly.version,
        "cancel",
        &obj(json!({"cancel_reason": "client moved"})),
    ))
    .unwrap();
    let day = block(f.svc.my_day(&f.tech, Some(time::macros::date!(2025 - 10 - 28)))).unwrap();
    assert_eq!(day.len(), 1);
}

/// A user attendee's time is exclusive with their crew assignments and other appointments
/// (occurrences of a series included): refused with nothing written, or under the `warn` policy
/// written with the clash described; cancelled appointments and declined attendees hold no time;
/// of two racing writers for one user, exactly one wins.
pub fn appointment_overlaps_are_refused_or_warned_by_policy<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    a_job_with_crew(&f, tom, "2025-06-02T08:00:00Z", "2025-06-02T12:00:00Z");
    let seen = (f.writes_seen(), f.count("appointment"));
    let err = appointment(&f, &[tom], json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("attendee_user_ids".into(), "overlap".into())]);
    assert_eq!((f.writes_seen(), f.count("appointment")), seen, "nothing written");
    // The crew assignment clashes back: a job's crew can't be booked over an appointment.
    let first = appointment(
        &f,
        &[tom],
        json!({"starts_at": "2025-06-03T09:00:00Z", "ends_at": "2025-06-03T10:00:00Z"}),
    )
    .unwrap();
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Cleo"})))).unwrap();
    let err = block(f.svc.create(
        &f.admin,
        "job",
        &obj(
            json!({"kind": "project", "title": "Gutter", "contact_id": contact.id.to_string(),
            "crew_assignments": [{"user_id": tom.to_string(), "role": "roofer",
            "starts_at": "2025-06-03T09:30:00Z", "ends_at": "2025-06-03T11:00:00Z"}]}),
        ),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), [("user_id".into(), "overlap".into())]);
    // A daily series from the 1st clashes on its 3rd occurrence; a declined attendee holds no time.
    let err = appointment(
        &f,
        &[tom],
        json!({"starts_at": "2025-06-01T09:15:00Z", "ends_at": "2025-06-01T09:45:00Z",
            "recurrence": "FREQ=DAILY;COUNT=5"}),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), [("attendee_user_ids".into(), "overlap".into())]);
    let declined = block(f.svc.create(
        &f.admin,
        "appointment",
        &obj(
            json!({"title": "Optional", "starts_at": "2025-06-03T09:00:00Z", "ends_at": "2025-06-03T10:00:00Z",
            "appointment_attendees": [{"user_id": tom.to_string(), "response": "declined"}]}),
        ),
    ));
    assert!(declined.is_ok(), "{declined:?}");
    // Cancelling the first frees its hour.
    block(f.svc.transition(
        &f.admin,
        "appointment",
        first.id,
        first.version,
        "cancel",
        &obj(json!({"cancel_reason": "rain"})),
    ))
    .unwrap();
    appointment(
        &f,
        &[tom],
        json!({"starts_at": "2025-06-03T09:00:00Z", "ends_at": "2025-06-03T10:00:00Z"}),
    )
    .unwrap();

    // Under the warn policy the clash is written and described.
    f.set_org(json!({"appointment_overlap": "warn"}));
    let warned = appointment(&f, &[tom], json!({})).unwrap();
    let w = warned.str("overlap_warning").unwrap_or_default().to_owned();
    assert!(w.contains("crew_assignment"), "{w}");
    let stored = block(f.svc.get(&f.admin, "appointment", warned.id)).unwrap();
    assert_eq!(stored.str("overlap_warning"), Some(w.as_str()));
    // Moved clear of the clash, the warning goes.
    let moved = block(f.svc.update(
        &f.admin,
        "appointment",
        warned.id,
        warned.version,
        &obj(json!({"starts_at": "2025-06-02T15:00:00Z", "ends_at": "2025-06-02T16:00:00Z"})),
    ))
    .unwrap();
    assert_eq!(moved.get("overlap_warning"), Some(&Value::Null));
    f.set_org(json!({"appointment_overlap": "refuse"}));

    // Racing writers: each round, two threads book one new user into two appointments at once.
    for round in 0..4 {
        let user = block(f.svc.create(
            &f.admin,
            "user",
            &obj(json!({"name": format!("racer{round}"), "email": format!("racer{round}@acme.test"), "role": "sales"})),
        ))
        .unwrap()
        .id;
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let f = &f;
                    s.spawn(move || appointment(f, &[user], json!({})))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        let lost = results.into_iter().find_map(Result::err).unwrap();
        assert_eq!(
            codes_of(&lost),
            [("attendee_user_ids".into(), "overlap".into())],
            "round {round}"
        );
    }
}

/// A calendar feed reads its user's appointments and assignments as that user may read them, only
/// with its token; issuing a new feed revokes the old one, and so do deleting it and deactivating
/// its user.
pub fn calendar_feeds_are_revocable_and_read_as_their_user<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    let sam = f.sales_a.user_id.unwrap();
    appointment(&f, &[tom], json!({"title": "Tom's inspection"})).unwrap();
    appointment(&f, &[sam], json!({"title": "Sam's call"})).unwrap();
    a_job_with_crew(&f, tom, "2025-06-04T08:00:00Z", "2025-06-04T12:00:00Z");

    let feed = block(f.svc.create_calendar_feed(&f.tech, "hash-1")).unwrap();
    assert!(
        feed.get("token_hash").is_none_or(Value::is_null),
        "the hash is never shown"
    );
    let cal = block(f.svc.calendar_feed(f.tenant, feed.id, "hash-1")).unwrap();
    let titles: Vec<_> = cal.appointments.iter().filter_map(|a| a.str("title")).collect();
    assert_eq!(titles, ["Tom's inspection"]);
    assert_eq!(cal.assignments.len(), 1);
    assert_eq!(cal.assignments[0].1.str("title"), Some("Reroof"));
    assert_eq!(cal.zone, "UTC");
    assert!(
        block(f.svc.calendar_feed(f.tenant, feed.id, "hash-2")).is_err(),
        "wrong token"
    );

    // A new feed revokes the old; deleting it revokes it too.
    let second = block(f.svc.create_calendar_feed(&f.tech, "hash-2")).unwrap();
    assert!(block(f.svc.calendar_feed(f.tenant, feed.id, "hash-1")).is_err());
    assert!(block(f.svc.calendar_feed(f.tenant, second.id, "hash-2")).is_ok());
    assert_eq!(f.ids(&f.tech, "calendar_feed", "").len(), 1);
    assert!(
        f.ids(&f.sales_a, "calendar_feed", "").is_empty(),
        "another user's feed is not theirs"
    );
    block(f.svc.delete(&f.tech, "calendar_feed", second.id, second.version)).unwrap();
    assert!(block(f.svc.calendar_feed(f.tenant, second.id, "hash-2")).is_err());

    // A deactivated user's feed answers nothing.
    let third = block(f.svc.create_calendar_feed(&f.tech, "hash-3")).unwrap();
    let u = block(f.svc.get(&f.admin, "user", tom)).unwrap();
    block(
        f.svc
            .update(&f.admin, "user", tom, u.version, &obj(json!({"active": false}))),
    )
    .unwrap();
    assert!(block(f.svc.calendar_feed(f.tenant, third.id, "hash-3")).is_err());
}
