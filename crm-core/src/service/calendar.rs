//! Calendars: a user's appointments over a range (each with its occurrences in the range), and the
//! per-user calendar feed behind a revocable token (see [`crate::entity::appointment::feed`]): what
//! an iCalendar face renders, read as the feed's user may read it today.

use super::Service;
use crate::access::{Action, Actor};
use crate::change::Write;
use crate::computed::{self, org_zone};
use crate::entity::appointment::{self as appt, feed, fields as af};
use crate::entity::{APPOINTMENT, CALENDAR_FEED, JOB};
use crate::error::{Error, Result, codes};
use crate::query::{Filter, ListRequest, Op, Page, SortKey, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};

/// Longest range one appointment list or feed expands series over.
pub const MAX_RANGE_DAYS: i64 = 400;

/// Most appointments and most assignments one feed holds.
pub const MAX_FEED_ITEMS: u32 = 2_000;

/// An appointment with its occurrences in the range asked for.
#[derive(Clone, Debug)]
pub struct AppointmentItem {
    pub appointment: Record,
    /// `[start, end)` of each occurrence overlapping the range, in time order.
    pub occurrences: Vec<(Timestamp, Timestamp)>,
}

/// A page of a user's appointments.
#[derive(Clone, Debug)]
pub struct AppointmentPage {
    pub items: Vec<AppointmentItem>,
    pub next_cursor: Option<String>,
}

/// What a calendar feed holds: its user's appointments (series whole, with their rules) and crew
/// assignments (each with its job) from [`feed::DAYS_BACK`] days ago to [`feed::DAYS_AHEAD`] days on.
#[derive(Clone, Debug)]
pub struct CalendarFeed {
    pub user: Record,
    /// The tenant's IANA zone (the feed's default).
    pub zone: String,
    /// The span the feed covers, `[from, to)`.
    pub from: Timestamp,
    pub to: Timestamp,
    pub appointments: Vec<Record>,
    pub assignments: Vec<(Record, Record)>,
}

/// The filter of a user's appointments holding time in `[from, to)`: attended or owned.
fn users_appointments(user: Id, from: Timestamp, to: Timestamp) -> Filter {
    Filter::and([
        Filter::Or(vec![
            Filter::cmp(af::ATTENDEE_USER_IDS, Op::Contains, user.to_string()),
            Filter::eq("owner_id", user),
        ]),
        appt::holding_time(from, to),
    ])
}

fn range_checked(from: Timestamp, to: Timestamp) -> Result<()> {
    if to <= from {
        return Err(Error::field("to", codes::TOO_SMALL, "the range ends after it starts"));
    }
    if to.0 - from.0 > MAX_RANGE_DAYS * Timestamp::MICROS_PER_DAY {
        return Err(Error::field(
            "to",
            codes::TOO_LARGE,
            format!("a range spans at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(())
}

impl<S: Store> Service<S> {
    /// One page of the appointments of `user` (the actor when `None`) holding time in `[from, to)`
    /// that the actor may read, narrowed by the request's filter, in start order unless the request
    /// names one, each with its occurrences in the range.
    pub async fn appointments(
        &self,
        actor: &Actor,
        user: Option<Id>,
        from: Timestamp,
        to: Timestamp,
        req: &ListRequest,
    ) -> Result<AppointmentPage> {
        range_checked(from, to)?;
        let Some(user) = user.or(actor.user_id) else {
            return Err(Error::field(
                "user_id",
                codes::REQUIRED,
                "name whose appointments to list",
            ));
        };
        let mut req = req.clone();
        if req.sort.is_empty() {
            req.sort = vec![SortKey::asc(af::STARTS_AT)];
        }
        let Page { items, next_cursor } = self
            .page(actor, &APPOINTMENT, &req, users_appointments(user, from, to))
            .await?;
        let items = items
            .into_iter()
            .map(|a| AppointmentItem {
                occurrences: appt::occurrences(&a, from, to),
                appointment: a,
            })
            .filter(|i| !i.occurrences.is_empty())
            .collect();
        Ok(AppointmentPage { items, next_cursor })
    }

    /// The actor's appointment occurrences in `[from, to)`, each with the appointment as they may
    /// see it, in time order (for "my day").
    pub(crate) async fn my_appointments(
        &self,
        actor: &Actor,
        me: Id,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Timestamp, Timestamp, Record)>> {
        let Ok(scope) = actor.authorize(&APPOINTMENT, Action::Read) else {
            return Ok(Vec::new());
        };
        let filter = Filter::and([
            actor.scope_filter(&APPOINTMENT, scope),
            users_appointments(me, from, to),
        ]);
        let q = StoreQuery {
            filter,
            sort: vec![SortKey::asc(af::STARTS_AT), SortKey::asc("id")],
            limit,
        };
        let mut out = Vec::new();
        for a in self.store.query(actor.tenant, &APPOINTMENT, &q).await? {
            for (s, e) in appt::occurrences(&a, from, to) {
                out.push((s, e, a.clone()));
            }
        }
        let mut shown = Vec::with_capacity(out.len());
        for (s, e, a) in out {
            shown.push((s, e, self.present(actor, a).await?));
        }
        Ok(shown)
    }

    /// Issues the actor's calendar feed: `token_hash` is the hash of the token the face generated
    /// and shows once. Any earlier feed of theirs is revoked in the same change set.
    pub async fn create_calendar_feed(&self, actor: &Actor, token_hash: &str) -> Result<Record> {
        let def = &CALENDAR_FEED;
        actor.authorize(def, Action::Create)?;
        let Some(me) = actor.user_id else {
            return Err(Error::forbidden(
                Action::Create,
                def.name,
                vec![feed::fields::USER_ID.into()],
            ));
        };
        let now = self.clock.now();
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let old = self
            .store
            .query(
                actor.tenant,
                def,
                &StoreQuery::by_id(Filter::eq(feed::fields::USER_ID, me), super::MAX_CHILDREN),
            )
            .await?;
        for o in old {
            cs.audit
                .push(self.audit_entry(actor, "delete", &o, crate::change::diff(Some(&o), None)));
            cs.events.push(self.event("calendar_feed.deleted", &o));
            cs.writes.push(Write::Delete {
                entity: def,
                id: o.id,
                expected_version: o.version,
            });
        }
        let mut rec = Record::empty(def, actor.tenant, self.ids.new_id(now), now);
        rec.set(feed::fields::USER_ID, me);
        rec.set(feed::fields::TOKEN_HASH, Value::Text(token_hash.to_owned()));
        self.push_change(actor, "create", "calendar_feed.created", None, &rec, &mut cs);
        self.apply(cs).await?;
        Ok(actor.redact(rec))
    }

    /// The feed `feed_id` of `tenant` if `presented_hash` is its token's hash: its user's
    /// appointments and assignments as that user may read them now. `NotFound` for a wrong,
    /// revoked or deactivated user's token (nothing tells them apart).
    pub async fn calendar_feed(&self, tenant: Id, feed_id: Id, presented_hash: &str) -> Result<CalendarFeed> {
        let not_found = || Error::not_found(CALENDAR_FEED.name, feed_id);
        let f = self
            .store
            .get(tenant, &CALENDAR_FEED, feed_id)
            .await?
            .ok_or_else(not_found)?;
        if !super::auth::same_hash(f.str(feed::fields::TOKEN_HASH).unwrap_or_default(), presented_hash) {
            return Err(not_found());
        }
        let user_id = f.id_of(feed::fields::USER_ID).ok_or_else(not_found)?;
        let actor = self.actor(tenant, user_id).await.map_err(|_| not_found())?;
        let user = self
            .store
            .get(tenant, &crate::entity::USER, user_id)
            .await?
            .ok_or_else(not_found)?;
        let org = self.org(tenant).await?;
        let zone = org_zone(Some(&org));
        let today = computed::day_start(computed::local_date(self.clock.now(), &zone), &zone);
        let (from, to) = (today.plus_days(-feed::DAYS_BACK), today.plus_days(feed::DAYS_AHEAD));
        let mut appointments = Vec::new();
        if let Ok(scope) = actor.authorize(&APPOINTMENT, Action::Read) {
            let q = StoreQuery {
                filter: Filter::and([
                    actor.scope_filter(&APPOINTMENT, scope),
                    users_appointments(user_id, from, to),
                ]),
                sort: vec![SortKey::asc(af::STARTS_AT), SortKey::asc("id")],
                limit: MAX_FEED_ITEMS,
            };
            for a in self.store.query(tenant, &APPOINTMENT, &q).await? {
                appointments.push(self.present(&actor, a).await?);
            }
        }
        let assignments = if actor.authorize(&JOB, Action::Read).is_ok() {
            self.assignments_with_jobs(&actor, user_id, from, to, MAX_FEED_ITEMS)
                .await?
                .into_iter()
                .map(|(a, j)| (actor.redact(a), j))
                .collect()
        } else {
            Vec::new()
        };
        Ok(CalendarFeed {
            user: actor.redact(user),
            zone: zone.iana_name().unwrap_or("UTC").to_owned(),
            from,
            to,
            appointments,
            assignments,
        })
    }
}
