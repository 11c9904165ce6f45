//! Follow-ups: a record that opts in (leads and contacts today; jobs when they land) carries a next
//! follow-up time and the user who owes it, and gets a computed `followup` field — `none`,
//! `overdue`, `due_today` or `upcoming` as of the tenant's today (its day in the organization's
//! `timezone`, [`ComputeCtx::local_day`]) — that filters on every store
//! (`followup:overdue`) because it expands into ranges on the stored time, like a membership's
//! status ([`crate::computed`]). It is never a stored flag: tomorrow's `overdue` needs no batch job.
//! The record also falls due ([`crate::due`]) when its follow-up time has come: a
//! `<entity>.followup_due` event, once per follow-up time.
//!
//! To opt an entity type in, pass its declaration through [`declare`] and, so activities logged
//! against it can set its next follow-up, name the activity's reference to it in
//! [`crate::entity::activity::FOLLOWUP_LINKS`]. See docs/followups.md.

use crate::computed::{ComputeCtx, ComputedDef};
use crate::due::DueDef;
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Id, Timestamp, Value};
use serde_json::{Map, Value as Json};

/// The schema version that added follow-ups.
pub const SINCE: u32 = 9;

/// Field names of a record with follow-ups (and of an activity, which may set them).
pub mod fields {
    /// When the record is to be followed up next.
    pub const NEXT_FOLLOWUP_AT: &str = "next_followup_at";
    /// Who owes the follow-up (none: the record's owner).
    pub const FOLLOWUP_OWNER_ID: &str = "followup_owner_id";
    /// Computed: see [`super::FollowupStatus`].
    pub const FOLLOWUP: &str = "followup";
}
use fields::*;

super::keyed_enum!(
    /// Where a record's next follow-up stands on the tenant's today (in its time zone).
    FollowupStatus {
        /// No follow-up set.
        None = "none",
        /// Its time was on an earlier day.
        Overdue = "overdue",
        /// Its time is today.
        DueToday = "due_today",
        /// Its time is on a later day.
        Upcoming = "upcoming",
    }
);

/// The due kind raised when a follow-up's time has come.
pub const DUE_KIND: &str = "followup_due";

/// Adds the follow-up fields, the computed `followup` field and the `followup_due` due item to a
/// declaration (the opt-in).
pub fn declare(mut e: EntityDef) -> EntityDef {
    e = e
        .field(F::new(NEXT_FOLLOWUP_AT, T::Timestamp).since(SINCE))
        .field(F::new(FOLLOWUP_OWNER_ID, T::Ref("user")).since(SINCE));
    e.indexes.push(&[NEXT_FOLLOWUP_AT]);
    e.computed.push(ComputedDef {
        name: FOLLOWUP,
        options: FollowupStatus::KEYS,
        eval: |r, cx| eval(r, cx).key(),
        expand: |option, cx| match FollowupStatus::from_key(option) {
            Some(s) => expand(s, cx),
            None => Filter::Not(Box::new(Filter::All)),
        },
        sort_by: &[NEXT_FOLLOWUP_AT],
    });
    e.due.push(DueDef {
        kind: DUE_KIND,
        select: |cx| {
            Filter::and([
                Filter::Not(Box::new(Filter::IsNull {
                    field: NEXT_FOLLOWUP_AT.into(),
                })),
                Filter::cmp(NEXT_FOLLOWUP_AT, Op::Le, cx.now),
                Filter::cmp(NEXT_FOLLOWUP_AT, Op::Gt, cx.now.plus_days(-crate::due::LOOKBACK_DAYS)),
            ])
        },
        occurrence: |r, cx| at(r).filter(|t| *t <= cx.now).map(|t| t.0.to_string()),
    });
    e
}

/// Whether an entity type carries follow-ups.
pub fn carries(def: &EntityDef) -> bool {
    def.computed_def(FOLLOWUP).is_some()
}

/// The follow-up a new record (an activity) plans on the record it is logged against: which
/// record, and the time and owner to set on it. The one rule, used by a single create and by an
/// import alike (`Service::create`, `Service::import_csv`).
#[derive(Clone, Debug)]
pub struct Planned {
    /// The record's type (one that [`carries`] follow-ups).
    pub target: &'static EntityDef,
    pub id: Id,
    /// `next_followup_at` to set.
    pub at: Value,
    /// `followup_owner_id` to set, when the new record names one.
    pub owner: Option<Value>,
}

impl Planned {
    /// The update of the target record, as a patch.
    pub fn patch(&self) -> Map<String, Json> {
        let mut patch = Map::new();
        patch.insert(NEXT_FOLLOWUP_AT.into(), self.at.to_json());
        if let Some(o) = &self.owner {
            patch.insert(FOLLOWUP_OWNER_ID.into(), o.to_json());
        }
        patch
    }

    /// Sets the planned fields on a record written in the same change set (created with it).
    pub fn apply(&self, target: &mut Record) {
        target.set(NEXT_FOLLOWUP_AT, self.at.clone());
        if let Some(o) = &self.owner {
            target.set(FOLLOWUP_OWNER_ID, o.clone());
        }
    }
}

/// What a new record plans: when it carries `next_followup_at` and its type names follow-up links
/// (`EntityRules::followup_links`, an activity's [`crate::entity::activity::FOLLOWUP_LINKS`]),
/// the first record it references through them whose type carries follow-ups, with that time and
/// the `followup_owner_id` it gives, if any. `None`: it plans nothing.
pub fn planned(rec: &Record) -> Option<Planned> {
    let def = rec.entity;
    let at = rec.get(NEXT_FOLLOWUP_AT).filter(|v| !v.is_null())?.clone();
    let owner = rec.get(FOLLOWUP_OWNER_ID).filter(|v| !v.is_null()).cloned();
    def.rules.followup_links().iter().find_map(|link| {
        let id = rec.id_of(link)?;
        let Some(T::Ref(target)) = def.def(link).map(|f| f.spec.ty.clone()) else {
            return None;
        };
        let target = crate::entity::entity(target).filter(|t| carries(t))?;
        Some(Planned {
            target,
            id,
            at: at.clone(),
            owner: owner.clone(),
        })
    })
}

/// The records whose follow-up `user` owes, as a predicate on stored fields: the follow-up owner
/// is `user`, or none is set and the record's owner is `user` (`followup_owner_id` defaults to
/// the owner).
pub fn owed_by(def: &EntityDef, user: Id) -> Filter {
    let mut parts = vec![Filter::and([
        Filter::Not(Box::new(Filter::IsNull {
            field: FOLLOWUP_OWNER_ID.into(),
        })),
        Filter::eq(FOLLOWUP_OWNER_ID, user),
    ])];
    if let Some(owner) = def.owner_field {
        parts.push(Filter::and([
            Filter::IsNull {
                field: FOLLOWUP_OWNER_ID.into(),
            },
            Filter::Not(Box::new(Filter::IsNull { field: owner.into() })),
            Filter::eq(owner, user),
        ]));
    }
    Filter::Or(parts)
}

/// Who owes a record's follow-up: its `followup_owner_id`, else its owner ([`owed_by`]).
pub fn owner(r: &Record) -> Option<Id> {
    r.id_of(FOLLOWUP_OWNER_ID)
        .or_else(|| r.entity.owner_field.and_then(|f| r.id_of(f)))
}

/// The statuses "my follow-ups today" lists: overdue, then due today.
pub const TODAY: [FollowupStatus; 2] = [FollowupStatus::Overdue, FollowupStatus::DueToday];

/// A stored record's status as evaluated at read (its computed `followup`), if it carries follow-ups.
pub fn status_of(r: &Record) -> Option<FollowupStatus> {
    let (i, _) = r.entity.computed_def(FOLLOWUP)?;
    match r.computed.get(i)? {
        Value::Text(s) => FollowupStatus::from_key(s),
        _ => None,
    }
}

fn at(r: &Record) -> Option<Timestamp> {
    r.get(NEXT_FOLLOWUP_AT).and_then(Value::as_timestamp)
}

/// The start of the tenant's today and tomorrow, in its time zone, as of the context's time.
fn day(cx: &ComputeCtx) -> (Timestamp, Timestamp) {
    cx.local_day()
}

/// The status as of the context's day.
pub fn eval(r: &Record, cx: &ComputeCtx) -> FollowupStatus {
    let (today, tomorrow) = day(cx);
    match at(r) {
        None => FollowupStatus::None,
        Some(t) if t < today => FollowupStatus::Overdue,
        Some(t) if t < tomorrow => FollowupStatus::DueToday,
        Some(_) => FollowupStatus::Upcoming,
    }
}

/// The predicate on the stored time that holds exactly when [`eval`] gives `status` (two-valued:
/// every comparison is guarded by a not-null test, so a negation selects exactly the rest).
pub fn expand(status: FollowupStatus, cx: &ComputeCtx) -> Filter {
    let (today, tomorrow) = day(cx);
    let is_null = Filter::IsNull {
        field: NEXT_FOLLOWUP_AT.into(),
    };
    let set = |parts: Vec<Filter>| {
        let mut all = vec![Filter::Not(Box::new(is_null.clone()))];
        all.extend(parts);
        Filter::and(all)
    };
    match status {
        FollowupStatus::None => is_null.clone(),
        FollowupStatus::Overdue => set(vec![Filter::cmp(NEXT_FOLLOWUP_AT, Op::Lt, today)]),
        FollowupStatus::DueToday => set(vec![
            Filter::cmp(NEXT_FOLLOWUP_AT, Op::Ge, today),
            Filter::cmp(NEXT_FOLLOWUP_AT, Op::Lt, tomorrow),
        ]),
        FollowupStatus::Upcoming => set(vec![Filter::cmp(NEXT_FOLLOWUP_AT, Op::Ge, tomorrow)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::LEAD;
    use crate::query::Compiled;

    /// Around the day's edges (nulls included), exactly one option's expansion holds, it is the
    /// evaluated one, and every negation holds on the rest.
    #[test]
    fn every_expansion_selects_exactly_what_evaluates() {
        let now = Timestamp::parse("2025-06-01T15:30:00Z").unwrap();
        let cx = ComputeCtx::new(now, None);
        let day = Timestamp::from_date(cx.today());
        let times = [
            None,
            Some(Timestamp(day.0 - 1)),
            Some(day),
            Some(now),
            Some(Timestamp(day.plus_days(1).0 - 1)),
            Some(day.plus_days(1)),
            Some(day.plus_days(-30)),
            Some(day.plus_days(30)),
        ];
        let want = [
            "none",
            "overdue",
            "due_today",
            "due_today",
            "due_today",
            "upcoming",
            "overdue",
            "upcoming",
        ];
        for (t, want) in times.iter().zip(want) {
            let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
            r.set(NEXT_FOLLOWUP_AT, *t);
            assert_eq!(eval(&r, &cx).key(), want, "{t:?}");
            for s in FollowupStatus::ALL {
                let f = Compiled::compile(&expand(*s, &cx), &LEAD).unwrap();
                assert_eq!(f.eval(&r), Some(s.key() == want), "{s:?} at {t:?}");
                let not = Compiled::compile(&Filter::Not(Box::new(expand(*s, &cx))), &LEAD).unwrap();
                assert_eq!(not.eval(&r), Some(s.key() != want));
            }
        }
    }

    fn in_zone(now: &str, zone: &str) -> ComputeCtx {
        let mut org = Record::empty(&crate::entity::ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
        org.set(crate::entity::people::org_fields::TIMEZONE, zone);
        ComputeCtx::new(Timestamp::parse(now).unwrap(), Some(org))
    }

    fn status_at(cx: &ComputeCtx, t: &str) -> &'static str {
        let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
        r.set(NEXT_FOLLOWUP_AT, Timestamp::parse(t).unwrap());
        let want = eval(&r, cx);
        // The filter selects what evaluates, in the zone too.
        for s in FollowupStatus::ALL {
            let f = Compiled::compile(&expand(*s, cx), &LEAD).unwrap();
            assert_eq!(f.eval(&r), Some(s == &want), "{s:?} at {t}");
        }
        want.key()
    }

    /// "Today" is the tenant's day in its time zone: at 21:00 in Denver (03:00 UTC the next day)
    /// a follow-up at 14:00 Denver time is due today, not overdue, and one at midnight Denver
    /// time is upcoming; the edges are the zone's midnights.
    #[test]
    fn due_today_and_overdue_follow_the_tenants_time_zone() {
        let denver = in_zone("2025-06-02T03:00:00Z", "America/Denver");
        let utc = in_zone("2025-06-02T03:00:00Z", "UTC");
        assert_eq!(
            denver.local_day(),
            (
                Timestamp::parse("2025-06-01T06:00:00Z").unwrap(),
                Timestamp::parse("2025-06-02T06:00:00Z").unwrap()
            )
        );
        for (t, in_denver, in_utc) in [
            ("2025-06-01T05:59:59.999999Z", "overdue", "overdue"),
            ("2025-06-01T06:00:00Z", "due_today", "overdue"),
            ("2025-06-01T20:00:00Z", "due_today", "overdue"),
            ("2025-06-02T00:30:00Z", "due_today", "due_today"),
            ("2025-06-02T05:59:59.999999Z", "due_today", "due_today"),
            ("2025-06-02T06:00:00Z", "upcoming", "due_today"),
            ("2025-06-03T00:00:00Z", "upcoming", "upcoming"),
        ] {
            assert_eq!(status_at(&denver, t), in_denver, "{t} in Denver");
            assert_eq!(status_at(&utc, t), in_utc, "{t} in UTC");
        }
        // East of UTC: at 23:30 UTC it is already tomorrow in Berlin (01:30 CEST).
        let berlin = in_zone("2025-06-01T23:30:00Z", "Europe/Berlin");
        assert_eq!(status_at(&berlin, "2025-06-01T21:00:00Z"), "overdue");
        assert_eq!(status_at(&berlin, "2025-06-01T22:00:00Z"), "due_today");
        // No zone set, or one the database does not know: UTC.
        let none = ComputeCtx::new(Timestamp::parse("2025-06-02T03:00:00Z").unwrap(), None);
        assert_eq!(status_at(&none, "2025-06-01T20:00:00Z"), "overdue");
        assert_eq!(
            in_zone("2025-06-02T03:00:00Z", "Mars/Olympus").local_day(),
            utc.local_day()
        );
    }

    /// The follow-up owner owes it; without one, the record's owner does.
    #[test]
    fn the_follow_up_owner_owes_it_else_the_records_owner() {
        let (me, other) = (Id::from_u128(1), Id::from_u128(2));
        let f = Compiled::compile(&owed_by(&LEAD, me), &LEAD).unwrap();
        for (owner_id, followup_owner, owed) in [
            (Some(me), None, true),
            (Some(me), Some(other), false),
            (Some(other), Some(me), true),
            (Some(other), None, false),
            (None, None, false),
            (None, Some(me), true),
        ] {
            let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
            r.set("owner_id", owner_id);
            r.set(FOLLOWUP_OWNER_ID, followup_owner);
            assert_eq!(f.eval(&r), Some(owed), "{owner_id:?} {followup_owner:?}");
            assert_eq!(owner(&r) == Some(me), owed);
        }
    }

    /// On the days the clocks change the tenant's day is 23 or 25 hours long.
    #[test]
    fn the_tenants_day_is_short_or_long_when_the_clocks_change() {
        let hours = |cx: &ComputeCtx| {
            let (a, b) = cx.local_day();
            (b.0 - a.0) / 3_600_000_000
        };
        // Denver springs forward on 2025-03-09 and falls back on 2025-11-02.
        let spring = in_zone("2025-03-09T18:00:00Z", "America/Denver");
        assert_eq!(hours(&spring), 23);
        assert_eq!(spring.local_day().1, Timestamp::parse("2025-03-10T06:00:00Z").unwrap());
        assert_eq!(status_at(&spring, "2025-03-10T05:30:00Z"), "due_today");
        assert_eq!(status_at(&spring, "2025-03-10T06:00:00Z"), "upcoming");
        let autumn = in_zone("2025-11-02T18:00:00Z", "America/Denver");
        assert_eq!(hours(&autumn), 25);
        assert_eq!(autumn.local_day().0, Timestamp::parse("2025-11-02T06:00:00Z").unwrap());
        assert_eq!(status_at(&autumn, "2025-11-03T06:30:00Z"), "due_today");
        assert_eq!(status_at(&autumn, "2025-11-03T07:00:00Z"), "upcoming");
    }

    #[test]
    fn a_follow_up_falls_due_once_its_time_has_come_and_anew_when_set_again() {
        let now = Timestamp::parse("2025-06-01T15:30:00Z").unwrap();
        let cx = ComputeCtx::new(now, None);
        let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
        let due = |r: &Record| crate::due::due_items(&LEAD, std::slice::from_ref(r), &cx);
        assert!(due(&r).is_empty(), "none set");
        r.set(NEXT_FOLLOWUP_AT, Timestamp(now.0 + 1));
        assert!(due(&r).is_empty(), "not yet");
        r.set(NEXT_FOLLOWUP_AT, now);
        let first = due(&r);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].event_kind(), "lead.followup_due");
        r.set(NEXT_FOLLOWUP_AT, Timestamp(now.0 - 3600 * 1_000_000));
        let again = due(&r);
        assert_ne!(
            first[0].key, again[0].key,
            "another follow-up time is another occurrence"
        );
    }
}
