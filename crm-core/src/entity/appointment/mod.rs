//! Appointments: a time range in a time zone, attendees (users and contacts, [`attendee`]), a place
//! or a meeting link, links to a lead, contact or job, and an optional RFC 5545 recurrence
//! ([`recurrence`]). A roofing inspection, a moving survey, a sales call.
//!
//! States: `scheduled` → confirm → `confirmed`; complete → `completed`; cancel (with a reason) →
//! `cancelled`; no show → `no_show`. Completed, cancelled and no-show appointments are locked. A
//! series' state is the series' (one occurrence is not cancelled alone).
//!
//! **Overlap.** A user attendee's time is exclusive with their other appointments and their crew
//! assignments ([`crate::schema::Exclusive`], one per user, safe against concurrent writers). A clash
//! is refused (`overlap` on `attendee_user_ids`) or, when the tenant's `appointment_overlap` policy is
//! `warn`, written with the clash described in `overlap_warning` (as of that write). Cancelled and
//! no-show appointments and declined attendees hold no time.
//!
//! **Derived** in the change set of every write: `attendee_user_ids` (whose own scope the appointment
//! is in, [`crate::schema::EntityDef::assignees_field`]), `series_ends_at` (the end of the last
//! occurrence; far in the future for an unbounded series), and `time_zone`, fixed to the tenant's
//! zone when the appointment is created without one.

pub mod attendee;
pub mod feed;
pub mod recurrence;

use super::{EntityRules, declare, keyed_enum};
use crate::access::Action;
use crate::computed::ComputeCtx;
use crate::error::{FieldError, Result, codes};
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::schema::{EntityDef, Exclusive, FieldDef as F, Overlaps};
use crate::value::{FieldType as T, Timestamp, Value};
use crate::workflow::{GuardCtx, Refusal, Stamp, Transition, Workflow};

pub use attendee::APPOINTMENT_ATTENDEE;
pub use feed::CALENDAR_FEED;

declare!(APPOINTMENT, appointment);

/// The schema version that added appointments, their attendees and calendar feeds.
pub const SINCE: u32 = 12;

keyed_enum!(
    /// An appointment's state (see the module docs).
    AppointmentStatus {
        Scheduled = "scheduled",
        Confirmed = "confirmed",
        Completed = "completed",
        Cancelled = "cancelled",
        NoShow = "no_show",
    }
);

keyed_enum!(
    /// The tenant's overlap policy for user attendees (organization `appointment_overlap`).
    OverlapPolicy {
        Refuse = "refuse",
        Warn = "warn",
    }
);

/// The organization setting holding the [`OverlapPolicy`].
pub const OVERLAP_POLICY: &str = "appointment_overlap";

/// The organization setting: how many minutes before an occurrence starts it falls due
/// (`appointment.approaching`, for reminders through SSE and webhooks).
pub const REMINDER_MINUTES: &str = "appointment_reminder_minutes";
pub const DEFAULT_REMINDER_MINUTES: i64 = 60;

/// The due kind of an approaching occurrence.
pub const APPROACHING_DUE_KIND: &str = "approaching";

/// Field names of an appointment.
pub mod fields {
    pub const TITLE: &str = "title";
    pub const STARTS_AT: &str = "starts_at";
    pub const ENDS_AT: &str = "ends_at";
    /// IANA zone the appointment (and its recurrence) runs in; the tenant's when not given.
    pub const TIME_ZONE: &str = "time_zone";
    pub const PLACE: &str = "place";
    pub const MEETING_URL: &str = "meeting_url";
    pub const LEAD_ID: &str = "lead_id";
    pub const CONTACT_ID: &str = "contact_id";
    pub const JOB_ID: &str = "job_id";
    pub const NOTES: &str = "notes";
    /// An RFC 5545 `RRULE` value (`FREQ=WEEKLY;COUNT=10`), see [`super::recurrence`].
    pub const RECURRENCE: &str = "recurrence";
    pub const STATUS: &str = "status";
    pub const CONFIRMED_AT: &str = "confirmed_at";
    pub const COMPLETED_AT: &str = "completed_at";
    pub const CANCELLED_AT: &str = "cancelled_at";
    pub const CANCEL_REASON: &str = "cancel_reason";
    /// Derived: the users attending (not declined).
    pub const ATTENDEE_USER_IDS: &str = "attendee_user_ids";
    /// Derived: the end of the last occurrence.
    pub const SERIES_ENDS_AT: &str = "series_ends_at";
    /// Set by the overlap check under the `warn` policy: the clash found at the last write.
    pub const OVERLAP_WARNING: &str = "overlap_warning";
}
use fields::*;

/// States that hold no time.
pub const FREE_STATES: &[&str] = &["cancelled", "no_show"];

fn appointment() -> EntityDef {
    let e = EntityDef::new("appointment", "appointments")
        .field(F::new(TITLE, T::Text).required().max_len(200))
        .field(F::new(STARTS_AT, T::Timestamp).required())
        .field(F::new(ENDS_AT, T::Timestamp).required())
        .field(F::new(TIME_ZONE, T::Text).max_len(64))
        .field(F::new(PLACE, T::Text).max_len(500))
        .field(F::new(MEETING_URL, T::Url))
        .field(F::new(LEAD_ID, T::Ref("lead")))
        .field(F::new(CONTACT_ID, T::Ref("contact")))
        .field(F::new(JOB_ID, T::Ref("job")))
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(NOTES, T::Text).max_len(10_000))
        .field(F::new(RECURRENCE, T::Text).max_len(500))
        .field(
            F::new(STATUS, T::Enum)
                .options(AppointmentStatus::KEYS)
                .read_only()
                .default(AppointmentStatus::Scheduled.key()),
        )
        .field(F::new(CONFIRMED_AT, T::Timestamp).read_only())
        .field(F::new(COMPLETED_AT, T::Timestamp).read_only())
        .field(F::new(CANCELLED_AT, T::Timestamp).read_only())
        .field(F::new(CANCEL_REASON, T::Text).max_len(2000).read_only())
        .field(F::new(ATTENDEE_USER_IDS, T::Tags).derived())
        .field(F::new(SERIES_ENDS_AT, T::Timestamp).derived())
        .field(F::new(OVERLAP_WARNING, T::Text).derived());
    let mut e = e;
    super::scoped(&mut e);
    e.assignees_field = Some(ATTENDEE_USER_IDS);
    e.since = SINCE;
    e.rules = &AppointmentRules;
    e.search_fields = &[TITLE, PLACE];
    e.check = Some(check_appointment);
    e.indexes = vec![&[STARTS_AT], &[SERIES_ENDS_AT], &[LEAD_ID], &[CONTACT_ID], &[JOB_ID]];
    e.workflow = Some(&APPOINTMENT_WORKFLOW);
    // Each occurrence falls due once, `appointment_reminder_minutes` before it starts.
    e.due.push(crate::due::DueDef {
        kind: APPROACHING_DUE_KIND,
        select: |cx| {
            let soon = Timestamp(cx.now.0 + reminder_micros(cx));
            holding_time(cx.now, Timestamp(soon.0 + 1))
        },
        occurrence: |r, cx| next_start_within(r, cx.now, Timestamp(cx.now.0 + reminder_micros(cx))),
    });
    e.exclusive = Some(Exclusive {
        key: ATTENDEE_USER_IDS,
        start: STARTS_AT,
        end: SERIES_ENDS_AT,
        of: "user",
        free_when: Some((STATUS, FREE_STATES)),
        occurrences: Some(occurrences),
        warn: Some(Overlaps {
            setting: OVERLAP_POLICY,
            when: OverlapPolicy::Warn.key(),
            field: OVERLAP_WARNING,
        }),
    });
    e
}

/// The appointment lifecycle (see the module docs).
pub static APPOINTMENT_WORKFLOW: Workflow = Workflow {
    field: STATUS,
    locked: &["completed", "cancelled", "no_show"],
    reenter_on_edit: None,
    create_stamps: &[],
    transitions: &[
        Transition {
            stamps: &[(CONFIRMED_AT, Stamp::Now)],
            ..Transition::new(
                "confirm",
                Action::Update,
                &["scheduled"],
                Some("confirmed"),
                "appointment.confirmed",
            )
        },
        Transition {
            stamps: &[(COMPLETED_AT, Stamp::Now)],
            ..Transition::new(
                "complete",
                Action::Update,
                &["scheduled", "confirmed"],
                Some("completed"),
                "appointment.completed",
            )
        },
        Transition {
            stamps: &[(CANCELLED_AT, Stamp::Now)],
            accepts: &[CANCEL_REASON],
            guard: Some(reason_given),
            ..Transition::new(
                "cancel",
                Action::Update,
                &["scheduled", "confirmed"],
                Some("cancelled"),
                "appointment.cancelled",
            )
        },
        Transition::new(
            "no_show",
            Action::Update,
            &["scheduled", "confirmed"],
            Some("no_show"),
            "appointment.no_show",
        ),
    ],
};

/// A cancellation says why.
fn reason_given(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.record.str(CANCEL_REASON).is_none_or(|s| s.trim().is_empty()) {
        return Err(Refusal::new(
            CANCEL_REASON,
            codes::REQUIRED,
            "say why the appointment is cancelled",
        ));
    }
    Ok(())
}

fn at(r: &Record, f: &str) -> Option<Timestamp> {
    r.get(f).and_then(Value::as_timestamp)
}

/// The appointment's series, when it recurs and its rule parses in its zone.
pub fn series(r: &Record) -> Option<std::result::Result<recurrence::Series, String>> {
    let rule = r.str(RECURRENCE).filter(|s| !s.trim().is_empty())?;
    let (s, e) = (at(r, STARTS_AT)?, at(r, ENDS_AT)?);
    Some(recurrence::parse(rule, s, e, r.str(TIME_ZONE).unwrap_or("UTC")))
}

/// The occurrences of an appointment overlapping `[from, to)`, in time order: its one range, or its
/// series' occurrences.
pub fn occurrences(r: &Record, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    match series(r) {
        Some(Ok(s)) => s.between(from, to),
        Some(Err(_)) => Vec::new(),
        None => match (at(r, STARTS_AT), at(r, ENDS_AT)) {
            (Some(s), Some(e)) if s < to && e > from => vec![(s, e)],
            _ => Vec::new(),
        },
    }
}

/// The appointments holding time in `[from, to)` (spans overlapping, not cancelled or missed), as a
/// filter every store runs.
pub fn holding_time(from: Timestamp, to: Timestamp) -> Filter {
    let free = FREE_STATES.iter().map(|s| Filter::eq(STATUS, Value::from(*s)));
    Filter::and([
        Filter::cmp(STARTS_AT, Op::Lt, Value::Timestamp(to)),
        Filter::cmp(SERIES_ENDS_AT, Op::Gt, Value::Timestamp(from)),
        Filter::Not(Box::new(Filter::Or(free.collect()))),
    ])
}

/// Not confirmed yet (a calendar shows it as tentative).
pub fn is_tentative(r: &Record) -> bool {
    r.str(STATUS) == Some(AppointmentStatus::Scheduled.key())
}

fn reminder_micros(cx: &ComputeCtx) -> i64 {
    cx.setting_i64(REMINDER_MINUTES, DEFAULT_REMINDER_MINUTES).max(0) * 60_000_000
}

/// The first occurrence starting in `[now, until]`, as the key of its reminder (its start).
fn next_start_within(r: &Record, now: Timestamp, until: Timestamp) -> Option<String> {
    if r.str(STATUS).is_some_and(|s| FREE_STATES.contains(&s)) {
        return None;
    }
    occurrences(r, now, Timestamp(until.0 + 1))
        .into_iter()
        .map(|(s, _)| s)
        .find(|s| *s >= now && *s <= until)
        .map(Timestamp::to_rfc3339)
}

/// It ends after it starts, its zone exists and its recurrence parses.
fn check_appointment(r: &Record, errs: &mut Vec<FieldError>) {
    if let (Some(s), Some(e)) = (at(r, STARTS_AT), at(r, ENDS_AT))
        && e <= s
    {
        errs.push(FieldError::new(
            ENDS_AT,
            codes::TOO_SMALL,
            "an appointment ends after it starts",
        ));
    }
    if let Some(z) = r.str(TIME_ZONE)
        && crate::computed::time_zone(z).is_none()
    {
        errs.push(FieldError::new(
            TIME_ZONE,
            codes::INVALID_OPTION,
            format!("{z} is not an IANA time zone name"),
        ));
    }
    if let Some(Err(why)) = series(r) {
        errs.push(FieldError::new(RECURRENCE, codes::INVALID_FORMAT, why));
    }
}

/// Derives the attendees' user ids, the series' end and a missing zone.
#[derive(Debug)]
pub struct AppointmentRules;

impl EntityRules for AppointmentRules {
    fn derive_from_children(
        &self,
        appt: &mut Record,
        children: &mut [(&'static EntityDef, Vec<Record>)],
        cx: &ComputeCtx,
    ) -> Result<()> {
        if appt.get(TIME_ZONE).is_none_or(Value::is_null) {
            let zone = cx.time_zone();
            appt.set(TIME_ZONE, zone.iana_name().unwrap_or("UTC"));
        }
        let mut users: Vec<String> = children
            .iter()
            .filter(|(d, _)| d.name == APPOINTMENT_ATTENDEE.name)
            .flat_map(|(_, rows)| rows.iter())
            .filter(|a| attendee::holds_time(a))
            .filter_map(|a| a.id_of(attendee::fields::USER_ID))
            .map(|u| u.to_string())
            .collect();
        users.sort();
        users.dedup();
        appt.set(
            ATTENDEE_USER_IDS,
            if users.is_empty() {
                Value::Null
            } else {
                Value::List(users)
            },
        );
        let end = match series(appt) {
            Some(Ok(s)) => Some(s.last_end()),
            Some(Err(_)) => None,
            None => at(appt, ENDS_AT),
        };
        appt.set(SERIES_ENDS_AT, end.map_or(Value::Null, Value::Timestamp));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Id;

    fn rec(def: &'static EntityDef, n: u128) -> Record {
        Record::empty(def, Id::nil(), Id::from_u128(n), Default::default())
    }

    #[test]
    fn attendees_series_end_and_zone_are_derived() {
        let mut a = rec(&APPOINTMENT, 1);
        a.set(STARTS_AT, Timestamp::parse("2026-10-20T07:00:00Z").unwrap());
        a.set(ENDS_AT, Timestamp::parse("2026-10-20T08:00:00Z").unwrap());
        a.set(RECURRENCE, "FREQ=WEEKLY;COUNT=2");
        let mut yes = rec(&APPOINTMENT_ATTENDEE, 2);
        yes.set(attendee::fields::USER_ID, Id::from_u128(7));
        let mut no = rec(&APPOINTMENT_ATTENDEE, 3);
        no.set(attendee::fields::USER_ID, Id::from_u128(8));
        no.set(attendee::fields::RESPONSE, "declined");
        let mut guest = rec(&APPOINTMENT_ATTENDEE, 4);
        guest.set(attendee::fields::CONTACT_ID, Id::from_u128(9));
        let mut children = vec![(&*APPOINTMENT_ATTENDEE, vec![yes, no, guest])];
        let cx = ComputeCtx::new(Default::default(), None);
        AppointmentRules
            .derive_from_children(&mut a, &mut children, &cx)
            .unwrap();
        assert_eq!(
            a.get(ATTENDEE_USER_IDS),
            Some(&Value::List(vec![Id::from_u128(7).to_string()]))
        );
        assert_eq!(a.str(TIME_ZONE), Some("UTC"));
        assert_eq!(at(&a, SERIES_ENDS_AT), Timestamp::parse("2026-10-27T08:00:00Z"));
        assert_eq!(occurrences(&a, Timestamp(0), recurrence::FOREVER).len(), 2);
    }

    #[test]
    fn each_occurrence_falls_due_once_before_it_starts() {
        let mut a = rec(&APPOINTMENT, 1);
        a.set(STARTS_AT, Timestamp::parse("2026-03-02T09:00:00Z").unwrap());
        a.set(ENDS_AT, Timestamp::parse("2026-03-02T10:00:00Z").unwrap());
        a.set(RECURRENCE, "FREQ=DAILY;COUNT=3");
        a.set(TIME_ZONE, "UTC");
        a.set(STATUS, "scheduled");
        let cx = ComputeCtx::new(Timestamp::parse("2026-03-03T08:15:00Z").unwrap(), None);
        let key = (APPOINTMENT.due[0].occurrence)(&a, &cx);
        assert_eq!(
            key.as_deref(),
            Some("2026-03-03T09:00:00Z"),
            "the second day's, 45 minutes ahead"
        );
        let early = ComputeCtx::new(Timestamp::parse("2026-03-03T07:30:00Z").unwrap(), None);
        assert_eq!(
            (APPOINTMENT.due[0].occurrence)(&a, &early),
            None,
            "not within the hour yet"
        );
        a.set(STATUS, "cancelled");
        assert_eq!((APPOINTMENT.due[0].occurrence)(&a, &cx), None);
    }

    #[test]
    fn a_bad_range_zone_or_rule_is_refused_all_at_once() {
        let mut a = rec(&APPOINTMENT, 1);
        a.set(STARTS_AT, Timestamp::parse("2026-10-20T08:00:00Z").unwrap());
        a.set(ENDS_AT, Timestamp::parse("2026-10-20T07:00:00Z").unwrap());
        a.set(TIME_ZONE, "Nowhere/Land");
        a.set(RECURRENCE, "FREQ=MINUTELY");
        let mut errs = Vec::new();
        check_appointment(&a, &mut errs);
        let fields: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(fields, [ENDS_AT, TIME_ZONE, RECURRENCE]);
    }
}
