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
use crate::schema::EntityDef;
use crate::store::{BulkWrite, Store};
use crate::value::{FieldType, Id, Timestamp, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Where the overlap check reads: the store (a single write) or a bulk session (an import, which
/// must see the rows its earlier chunks wrote).
pub(crate) trait Reads: Send {
    fn read(&mut self, def: &'static EntityDef, q: &StoreQuery) -> impl Future<Output = Result<Vec<Record>>> + Send;
}

/// The store's committed rows of one tenant.
pub(crate) struct StoreReads<'a, S>(pub &'a S, pub Id);

impl<S: Store> Reads for StoreReads<'_, S> {
    fn read(&mut self, def: &'static EntityDef, q: &StoreQuery) -> impl Future<Output = Result<Vec<Record>>> + Send {
        self.0.query(self.1, def, q)
    }
}

impl<B: BulkWrite> Reads for B {
    fn read(&mut self, def: &'static EntityDef, q: &StoreQuery) -> impl Future<Output = Result<Vec<Record>>> + Send {
        self.query(def, q)
    }
}

async fn read_one<R: Reads>(r: &mut R, def: &'static EntityDef, id: Id) -> Result<Option<Record>> {
    Ok(r.read(def, &StoreQuery::by_id(Filter::eq("id", id), 1)).await?.pop())
}

/// How often a use case runs again after losing a race for a serialising row (a round-robin turn,
/// a booking) to a concurrent write.
pub(crate) const ATTEMPTS: usize = 32;

/// Whether a failed write lost a race for a serialising row ([`EntityDef::serialises`]) to a
/// concurrent one: then the use case is decided again on what the other write left.
pub(crate) fn lost_race(e: &Error) -> bool {
    matches!(e, Error::Conflict { entity, .. }
        if crate::entity::entity(entity).is_some_and(|d| d.serialises))
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

/// Most stored series one check reads back for a key and period: their spans overlap, but only
/// their occurrences tell whether they clash.
const SERIES_READ: u32 = 500;

/// The keys a record of an exclusive type holds time for (its reference, or each id of its list);
/// none when its state holds no time.
fn keys(r: &Record) -> Vec<Id> {
    let Some(ex) = r.entity.exclusive else {
        return Vec::new();
    };
    if let Some((f, states)) = ex.free_when
        && r.str(f).is_some_and(|s| states.contains(&s))
    {
        return Vec::new();
    }
    match r.get(ex.key) {
        Some(Value::Id(k)) => vec![*k],
        Some(Value::List(ids)) => ids.iter().filter_map(|s| crate::value::parse_id(s)).collect(),
        _ => Vec::new(),
    }
}

/// The span `[start, end)` of a record of an exclusive type (a series' first start to last end).
fn span(r: &Record) -> Option<(Timestamp, Timestamp)> {
    let ex = r.entity.exclusive?;
    match (r.get(ex.start), r.get(ex.end)) {
        (Some(Value::Timestamp(s)), Some(Value::Timestamp(e))) => Some((*s, *e)),
        _ => None,
    }
}

/// The ranges a record holds within `[from, to)`, in time order.
fn periods(r: &Record, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    match r.entity.exclusive.and_then(|ex| ex.occurrences) {
        Some(occurrences) => occurrences(r, from, to),
        None => span(r).filter(|(s, e)| *s < to && *e > from).into_iter().collect(),
    }
}

/// The first range of `b` overlapping one of `a`'s.
fn clash(a: &Record, b: &Record) -> Option<(Timestamp, Timestamp)> {
    let ((sa, ea), (sb, eb)) = (span(a)?, span(b)?);
    let (from, to) = (sa.max(sb), ea.min(eb));
    if from >= to {
        return None;
    }
    let (pa, pb) = (periods(a, from, to), periods(b, from, to));
    let (mut i, mut j) = (0, 0);
    while let (Some(&(s1, e1)), Some(&(s2, e2))) = (pa.get(i), pb.get(j)) {
        if s1 < e2 && s2 < e1 {
            return Some((s2, e2));
        }
        if e1 <= e2 {
            i += 1;
        } else {
            j += 1;
        }
    }
    None
}

/// The stored records of `def` holding time for `key` within `[start, end)` (spans overlapping).
fn holding(def: &EntityDef, key: Id, start: Timestamp, end: Timestamp) -> Option<StoreQuery> {
    let ex = def.exclusive?;
    let by_key = match def.def(ex.key).map(|f| &f.spec.ty) {
        Some(FieldType::Tags) => Filter::cmp(ex.key, Op::Contains, key.to_string()),
        _ => Filter::eq(ex.key, key),
    };
    let mut parts = vec![
        by_key,
        Filter::cmp(ex.start, Op::Lt, Value::Timestamp(end)),
        Filter::cmp(ex.end, Op::Gt, Value::Timestamp(start)),
    ];
    if let Some((f, states)) = ex.free_when {
        let free = states.iter().map(|s| Filter::eq(f, Value::from(*s)));
        parts.push(Filter::Not(Box::new(Filter::Or(free.collect()))));
    }
    let read = if ex.occurrences.is_some() {
        SERIES_READ
    } else {
        CLASHES_READ + 1
    };
    Some(StoreQuery::by_id(Filter::and(parts), read))
}

impl<S: Store> Service<S> {
    /// Applies a use case's change set after checking the exclusive ranges it writes. `returned`
    /// (the record the use case answers with) gets the overlap warning written on it, if any.
    pub(crate) async fn commit(&self, mut cs: ChangeSet, returned: Option<&mut Record>) -> Result<Applied> {
        self.exclusive_into(&mut cs).await?;
        if let Some(rec) = returned
            && let Some(w) = rec.entity.exclusive.and_then(|ex| ex.warn)
            && let Some(Write::Insert(r) | Write::Update { record: r, .. }) = cs
                .writes
                .iter()
                .find(|w| matches!(w, Write::Insert(r) | Write::Update { record: r, .. } if r.id == rec.id))
        {
            rec.set(w.field, r.get(w.field).cloned().unwrap_or(Value::Null));
        }
        self.apply(cs).await
    }

    /// Refuses a change set whose ranges overlap another of the same key (every clash at once, on
    /// the key field), or under a `warn` policy describes the clash on the record; then adds the
    /// booking row writes of every key it touches.
    pub(crate) async fn exclusive_into(&self, cs: &mut ChangeSet) -> Result<()> {
        let tenant = cs.tenant;
        self.exclusive_with(&mut StoreReads(&self.store, tenant), cs).await
    }

    /// [`Self::exclusive_into`] reading through `reads` (an import's bulk session).
    pub(crate) async fn exclusive_with<R: Reads>(&self, reads: &mut R, cs: &mut ChangeSet) -> Result<()> {
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
        for key in rows.iter().flat_map(|r| keys(r)) {
            if let std::collections::btree_map::Entry::Vacant(v) = bookings.entry(key) {
                v.insert(read_one(reads, &BOOKING, key).await?);
            }
        }
        let warn_policy = match rows.iter().find_map(|r| r.entity.exclusive.and_then(|ex| ex.warn)) {
            Some(_) => Some(
                read_one(reads, &crate::entity::ORGANIZATION, cs.tenant)
                    .await?
                    .ok_or_else(|| Error::not_found("organization", cs.tenant))?,
            ),
            None => None,
        };
        let mut errs = Vec::new();
        let mut warnings: Vec<(Id, &'static str, Value)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let (Some(ex), Some((start, end))) = (r.entity.exclusive, span(r)) else {
                continue;
            };
            let mut found: Option<(Id, &'static str, Id, (Timestamp, Timestamp))> = None;
            'keys: for key in keys(r) {
                for o in &rows[..i] {
                    if keys(o).contains(&key)
                        && let Some(p) = clash(r, o)
                    {
                        found = Some((key, o.entity.name, o.id, p));
                        break 'keys;
                    }
                }
                for def in crate::entity::all()
                    .into_iter()
                    .filter(|d| d.exclusive.is_some_and(|x| x.of == ex.of))
                {
                    let Some(q) = holding(def, key, start, end) else {
                        continue;
                    };
                    for o in reads.read(def, &q).await? {
                        // A stored row this change set rewrites or deletes is judged as written.
                        if o.id == r.id || gone.contains(&o.id) || written.contains_key(&o.id) {
                            continue;
                        }
                        if let Some(p) = clash(r, &o) {
                            found = Some((key, o.entity.name, o.id, p));
                            break 'keys;
                        }
                    }
                }
            }
            let warn = ex.warn.filter(|w| {
                warn_policy
                    .as_ref()
                    .and_then(|org| org.str(w.setting))
                    .is_some_and(|v| v == w.when)
            });
            match (found, warn) {
                (Some((key, what, id, (s, e))), None) => errs.push(FieldError::new(
                    ex.key,
                    codes::OVERLAP,
                    format!("{key} is already booked from {s} to {e} ({what} {id})"),
                )),
                (Some((key, what, id, (s, e))), Some(w)) => warnings.push((
                    r.id,
                    w.field,
                    Value::Text(format!("{key} is also booked from {s} to {e} ({what} {id})")),
                )),
                (None, Some(w)) => warnings.push((r.id, w.field, Value::Null)),
                (None, None) => {}
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        for w in cs.writes.iter_mut() {
            if let Write::Insert(r) | Write::Update { record: r, .. } = w
                && let Some((_, field, v)) = warnings.iter().find(|(id, _, _)| *id == r.id)
            {
                r.set(field, v.clone());
            }
        }
        for (key, cur) in bookings {
            cs.writes.push(booking::bump(cs.tenant, key, cur.as_ref(), cs.at));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::lost_race;
    use crate::error::Error;

    #[test]
    fn a_conflict_on_a_serialising_row_is_a_lost_race_and_no_other_is() {
        let conflict = |entity: &str| Error::Conflict {
            entity: entity.into(),
            id: "x".into(),
            expected: 1,
            actual: 2,
        };
        assert!(lost_race(&conflict("booking")));
        assert!(lost_race(&conflict("routing_cursor")));
        assert!(!lost_race(&conflict("lead")));
        assert!(!lost_race(&conflict("no_such_type")));
    }
}
