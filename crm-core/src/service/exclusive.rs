//! Exclusive time ranges (see [`crate::schema::Exclusive`]): before a change set is applied, every
//! range it inserts or updates is checked against the stored ranges of the same key and against the
//! others it writes, and the key's booking row moves on in the same change set, so two concurrent
//! writers for one key cannot both pass the check (the second conflicts on the booking row and its
//! use case runs again: see [`Service::commit`]).

use super::Service;
use crate::change::{Applied, ChangeSet, Write};
use crate::entity::{BOOKING, booking};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, Op, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How often a use case runs again after losing a race for a serialising row (a round-robin turn,
/// a booking) to a concurrent write.
pub(crate) const ATTEMPTS: usize = 32;

/// Whether a failed write lost a race for a serialising row to a concurrent one: then the use case
/// is decided again on what the other write left.
pub(crate) fn lost_race(e: &Error) -> bool {
    matches!(e, Error::Conflict { entity, .. }
        if entity == crate::entity::ROUTING_CURSOR.name || entity == BOOKING.name)
}

/// Runs a use case (its reads, decisions and its one change set) and runs it again when it lost a
/// race for a serialising row ([`lost_race`]), at most [`ATTEMPTS`] times.
pub(crate) async fn retrying<T, F, Fut>(mut run: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Err(e) if lost_race(&e) && attempt < ATTEMPTS => attempt += 1,
            r => return r,
        }
    }
}

/// Most stored ranges one check reads back for a key and period (one clash is enough to refuse).
const CLASHES_READ: u32 = 5;

/// A range of an exclusive type as written: its key and `[start, end)`.
fn range(r: &Record) -> Option<(Id, Timestamp, Timestamp)> {
    let ex = r.entity.exclusive?;
    match (r.id_of(ex.key), r.get(ex.start), r.get(ex.end)) {
        (Some(k), Some(Value::Timestamp(s)), Some(Value::Timestamp(e))) => Some((k, *s, *e)),
        _ => None,
    }
}

impl<S: Store> Service<S> {
    /// Applies a use case's change set after checking the exclusive ranges it writes.
    pub(crate) async fn commit(&self, mut cs: ChangeSet) -> Result<Applied> {
        self.exclusive_into(&mut cs).await?;
        self.store.apply(cs).await
    }

    /// Refuses a change set whose ranges overlap another of the same key (every clash at once, on
    /// the key field), else adds the booking row writes of every key it touches.
    pub(crate) async fn exclusive_into(&self, cs: &mut ChangeSet) -> Result<()> {
        // The rows of exclusive types as the change set leaves them, and the ones it deletes.
        let mut written: BTreeMap<Id, &Record> = BTreeMap::new();
        let mut gone: BTreeSet<Id> = BTreeSet::new();
        for w in &cs.writes {
            match w {
                Write::Insert(r) | Write::Update { record: r, .. } if r.entity.exclusive.is_some() => {
                    written.insert(r.id, r);
                }
                Write::Delete { entity, id, .. } if entity.exclusive.is_some() => {
                    gone.insert(*id);
                }
                _ => {}
            }
        }
        if written.is_empty() {
            return Ok(());
        }
        let rows: Vec<&Record> = written.values().copied().collect();
        // The booking rows are read before the ranges: a writer that commits in between has moved
        // them on, so this change set conflicts instead of missing that writer's range.
        let mut bookings = BTreeMap::new();
        for key in rows.iter().filter_map(|r| range(r)).map(|(k, _, _)| k) {
            if let std::collections::btree_map::Entry::Vacant(v) = bookings.entry(key) {
                v.insert(self.store.get(cs.tenant, &BOOKING, key).await?);
            }
        }
        let mut errs = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let (Some(ex), Some((key, start, end))) = (r.entity.exclusive, range(r)) else {
                continue;
            };
            let overlaps = |o: &Record| {
                o.entity.name == r.entity.name && range(o).is_some_and(|(k, s, e)| k == key && s < end && start < e)
            };
            let mut clash = rows[..i].iter().find(|o| overlaps(o)).map(|o| (*o).clone());
            if clash.is_none() {
                let f = Filter::and([
                    Filter::eq(ex.key, key),
                    Filter::cmp(ex.start, Op::Lt, Value::Timestamp(end)),
                    Filter::cmp(ex.end, Op::Gt, Value::Timestamp(start)),
                ]);
                let stored = self
                    .store
                    .query(cs.tenant, r.entity, &StoreQuery::by_id(f, CLASHES_READ + 1))
                    .await?;
                // A stored row this change set rewrites or deletes is judged as written.
                clash = stored
                    .into_iter()
                    .find(|o| o.id != r.id && !gone.contains(&o.id) && !written.contains_key(&o.id));
            }
            if let Some(o) = clash {
                let (_, s, e) = range(&o).unwrap_or((key, start, end));
                errs.push(FieldError::new(
                    ex.key,
                    codes::OVERLAP,
                    format!("already booked from {s} to {e} ({} {})", o.entity.name, o.id),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        for (key, cur) in bookings {
            cs.writes.push(booking::bump(cs.tenant, key, cur.as_ref(), cs.at));
        }
        Ok(())
    }
}
