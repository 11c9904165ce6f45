//! Rollups (see [`crate::schema::Rollup`]): sums and folds kept in derived fields of the referenced
//! record, recomputed in the change set of every write that may change them.

use super::Service;
use super::exclusive::{Reads, StoreReads};
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::computed::ComputeCtx;
use crate::entity;
use crate::error::{Error, FieldError, Result};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, Fold, Rollup, Sum};
use crate::store::Store;
use crate::value::{FieldType, Id, Value};
use std::collections::HashMap;

/// Most records one rollup reads (a customer's accepted quotes, a client's memberships).
const MAX_ROLLED_UP: u32 = 100_000;

impl<S: Store> Service<S> {
    /// Adds the re-derived targets of a write (`old` → `new` of one record; `None` for an insert or
    /// a delete) to the change set: every record either state references through a rollup gets the
    /// value of everything that now feeds it.
    pub(crate) async fn rollups_into(
        &self,
        actor: &Actor,
        old: Option<&Record>,
        new: Option<&Record>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(written) = new.or(old) else {
            return Ok(());
        };
        let def = written.entity;
        let mut cx: Option<ComputeCtx> = None;
        for r in &def.rollups {
            // A record that counts neither before nor after the write leaves every sum as it was
            // (a draft quote's edits): no read, no write.
            if let Rollup::Sum(s) = r
                && ![old, new].into_iter().flatten().any(|x| s.counts(x))
            {
                continue;
            }
            let Some(tdef) = target_type(def, r) else { continue };
            let mut targets: Vec<Id> = [old, new]
                .into_iter()
                .flatten()
                .filter_map(|x| x.id_of(r.via()))
                .collect();
            targets.dedup();
            for target in targets {
                match r {
                    Rollup::Sum(s) => self.sum_target(actor, tdef, s.field, target, written, new, cs).await?,
                    Rollup::Fold(f) => {
                        if cx.is_none() {
                            cx = Some(ComputeCtx::new(self.clock.now(), Some(self.org(actor.tenant).await?)));
                        }
                        let cx = cx.as_ref().ok_or_else(|| crate::error::Error::internal("no context"))?;
                        self.fold_target(actor, tdef, f, target, written, new, cx, cs).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Recomputes one summed target field: the sum over every rollup feeding it, with the record
    /// being `written` counted as it will be (`new`; `None` when it is deleted).
    #[allow(clippy::too_many_arguments)]
    async fn sum_target(
        &self,
        actor: &Actor,
        tdef: &'static EntityDef,
        field: &'static str,
        target: Id,
        written: &Record,
        new: Option<&Record>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(idx) = tdef.index_of(field) else { return Ok(()) };
        let Some(cur) = self.target(actor, tdef, target, cs).await? else {
            return Ok(());
        };
        // Collected first: an iterator of closures held across `.await` keeps futures from being `Send`.
        let feeds: Vec<(&'static EntityDef, Sum)> = feeds_of(tdef)
            .into_iter()
            .filter_map(|(d, r)| match r {
                Rollup::Sum(s) if s.field == field => Some((d, s)),
                _ => None,
            })
            .collect();
        let mut total: i64 = 0;
        for (d, r) in feeds {
            let q = StoreQuery::by_ref(
                d,
                r.via,
                Filter::and([Filter::eq(r.via, target), Filter::eq(r.when.0, r.when.1)]),
                MAX_ROLLED_UP,
            );
            let rows = self.store.query(actor.tenant, d, &q).await?;
            let skip = std::ptr::eq(written.entity, d).then_some(written.id);
            total += rows
                .iter()
                .filter(|x| Some(x.id) != skip)
                .map(|x| amount(x, &r))
                .sum::<i64>();
            if let Some(w) = new.filter(|w| std::ptr::eq(w.entity, d))
                && w.id_of(r.via) == Some(target)
                && r.counts(w)
            {
                total += amount(w, &r);
            }
        }
        let value = match tdef.fields[idx].spec.ty {
            FieldType::Money => Value::Money(crate::value::Money(total)),
            _ => Value::Int(total),
        };
        if !(cur.values[idx].is_null() && total == 0) {
            push_derived(cs, &cur, vec![(idx, value)]);
        }
        Ok(())
    }

    /// A rollup's target: the stored record, or one inserted earlier in the change set (a client
    /// created with their first membership).
    async fn target(
        &self,
        actor: &Actor,
        tdef: &'static EntityDef,
        id: Id,
        cs: &mut ChangeSet,
    ) -> Result<Option<Record>> {
        Ok(match self.store.get(actor.tenant, tdef, id).await? {
            Some(r) => Some(r),
            None => cs.staged_mut(tdef, id).map(|r| r.clone()),
        })
    }

    /// Recomputes the fields of one fold target from every record referencing it, with the record
    /// being `written` as it will be (`new`; `None` when it is deleted).
    #[allow(clippy::too_many_arguments)]
    async fn fold_target(
        &self,
        actor: &Actor,
        tdef: &'static EntityDef,
        fold: &Fold,
        target: Id,
        written: &Record,
        new: Option<&Record>,
        cx: &ComputeCtx,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(cur) = self.target(actor, tdef, target, cs).await? else {
            return Ok(());
        };
        let q = StoreQuery::by_ref(written.entity, fold.via, Filter::eq(fold.via, target), MAX_ROLLED_UP);
        let mut rows = self.store.query(actor.tenant, written.entity, &q).await?;
        // A fold sees its records in id order, however the store walked them.
        rows.sort_by_key(|x| x.id);
        rows.retain(|x| x.id != written.id);
        if let Some(w) = new.filter(|w| w.id_of(fold.via) == Some(target)) {
            rows.push(w.clone());
        }
        let values = (fold.fold)(&rows, cx)?;
        // The same target may already be re-derived in this change set (a child write and its
        // parent): the later value replaces the earlier one.
        let all: Vec<(usize, Value)> = fold
            .fields
            .iter()
            .zip(values)
            .filter_map(|(f, v)| Some((tdef.index_of(f)?, v)))
            .collect();
        push_derived(cs, &cur, all);
        Ok(())
    }
}

/// Most records one [`Service::refresh_rollups`] call re-derives.
pub const MAX_REFRESH: usize = 1000;

/// Rows of a feed read per query by [`Service::refresh_rollups`] (then the next page after the last):
/// a few pages per call of [`MAX_REFRESH`] clients with a membership or two each.
pub const REFRESH_PAGE: u32 = 500;

impl<S: Store> Service<S> {
    /// Re-derives every rollup field (sums and folds) of the records `ids` of `entity` from the
    /// records that reference them now, in one change set: the repair after writes that skip
    /// rollups (CSV imports of memberships leave the client's standing as it was). Needs `update` on
    /// the type with a scope reaching every record (else `NotFound` / `Forbidden`); a fold's refusal
    /// (a client's memberships with a gap) refuses the whole call and writes nothing. Returns how
    /// many records changed.
    ///
    /// Set-based: the targets are read in one query and each feeding type in one query over all of
    /// them (`via IN (ids)`, in pages of [`REFRESH_PAGE`] rows along the index on the reference), grouped by
    /// target here; each target's rows are folded or summed exactly as a single write does.
    pub async fn refresh_rollups(&self, actor: &Actor, entity: &str, ids: &[Id]) -> Result<u64> {
        let tdef = self.entity(entity)?;
        if ids.len() > MAX_REFRESH {
            return Err(crate::error::Error::LimitExceeded {
                what: "records per refresh".into(),
                limit: MAX_REFRESH as u64,
            });
        }
        let scope = actor.authorize(tdef, crate::access::Action::Update)?;
        let feeds = feeds_of(tdef);
        // Each once, in the caller's order (a fold's refusal names the first such record's rows).
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<Id> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let read = actor.authorize(tdef, crate::access::Action::Read)?;
        let reads = &mut StoreReads(&self.store, actor.tenant);
        let found = by_id(reads, tdef, &wanted).await?;
        // In the caller's order, as one by one: the first record out of reach decides the error.
        for id in ids {
            let cur = match found.get(id) {
                Some(r) if self.in_scope_of(actor, r, read).await? => r,
                _ => return Err(crate::error::Error::not_found(tdef.name, *id)),
            };
            if !actor.in_scope(cur, scope) {
                return Err(crate::error::Error::forbidden(
                    crate::access::Action::Update,
                    tdef.name,
                    vec![],
                ));
            }
        }
        let cx = ComputeCtx::new(self.clock.now(), Some(self.org(actor.tenant).await?));
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let mut by_feed = Vec::new();
        for (d, r) in &feeds {
            by_feed.push(referencing(reads, d, r, &wanted).await?);
        }
        for id in &wanted {
            let Some(cur) = found.get(id) else { continue };
            let rows: Vec<Vec<Record>> = by_feed.iter_mut().map(|m| m.remove(id).unwrap_or_default()).collect();
            push_derived(&mut cs, cur, rolled_up(cur, &feeds, &rows, &cx)?);
        }
        let changed = cs.writes.len() as u64;
        if changed > 0 {
            self.apply(cs).await?;
        }
        Ok(changed)
    }

    /// The rollups of an import chunk's `rows` (`(i, old, new)` of one type, the ones not refused
    /// yet), read through the import's session before the chunk is written: every target a row
    /// references before or after is derived once, from the records feeding it as stored with the
    /// chunk's rows laid over them, as a single write derives it. Where a fold refuses, the rows
    /// feeding that target are taken in row order and the one that makes it refuse is refused (into
    /// `bad`), as one write after another would be. Returns the targets as read with their derived
    /// fields, for [`push_rollups`] once the chunk's change set holds its writes.
    pub(super) async fn rollups_batch<R: Reads>(
        &self,
        reads: &mut R,
        tenant: Id,
        rows: &[(usize, Option<&Record>, &Record)],
        bad: &mut HashMap<usize, Vec<FieldError>>,
    ) -> Result<Vec<(Record, Vec<(usize, Value)>)>> {
        let Some(def) = rows.first().map(|(_, _, r)| r.entity) else {
            return Ok(Vec::new());
        };
        // The targets the rows reference, by type, in first-met order.
        let mut targets: Vec<(&'static EntityDef, Vec<Id>)> = Vec::new();
        for r in &def.rollups {
            let Some(tdef) = target_type(def, r) else { continue };
            for (_, old, new) in rows {
                if let Rollup::Sum(s) = r
                    && !old.is_some_and(|o| s.counts(o))
                    && !s.counts(new)
                {
                    continue;
                }
                for t in [*old, Some(*new)]
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.id_of(r.via()))
                {
                    let slot = match targets.iter().position(|(d, _)| std::ptr::eq(*d, tdef)) {
                        Some(k) => &mut targets[k].1,
                        None => {
                            targets.push((tdef, Vec::new()));
                            &mut targets.last_mut().expect("pushed").1
                        }
                    };
                    if !slot.contains(&t) {
                        slot.push(t);
                    }
                }
            }
        }
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let cx = ComputeCtx::new(self.clock.now(), Some(self.org(tenant).await?));
        let mut out = Vec::new();
        for (tdef, ids) in targets {
            let feeds = feeds_of(tdef);
            let found = by_id(reads, tdef, &ids).await?;
            let mut stored = Vec::new();
            for (d, r) in &feeds {
                stored.push(referencing(reads, d, r, &ids).await?);
            }
            // A target whose fold refuses takes the rows feeding it one at a time, in row order,
            // as single writes would: the row that makes it refuse is refused. Then all targets
            // again without the refused rows (one may have moved off another target).
            loop {
                let mut derived = Vec::new();
                let mut more = false;
                for id in &ids {
                    let Some(cur) = found.get(id) else { continue };
                    let all = |i: &usize| !bad.contains_key(i);
                    let lists = overlay(def, &feeds, &stored, rows, *id, all);
                    match rolled_up(cur, &feeds, &lists, &cx) {
                        Ok(fields) => {
                            derived.push((cur.clone(), fields));
                            continue;
                        }
                        Err(Error::Validation(_)) => {}
                        Err(e) => return Err(e),
                    }
                    let feeders: Vec<usize> = rows
                        .iter()
                        .filter(|(i, old, new)| {
                            !bad.contains_key(i)
                                && [*old, Some(*new)]
                                    .into_iter()
                                    .flatten()
                                    .any(|x| def.rollups.iter().any(|r| x.id_of(r.via()) == Some(*id)))
                        })
                        .map(|(i, _, _)| *i)
                        .collect();
                    let mut accepted: Vec<usize> = Vec::new();
                    for k in feeders {
                        let upto = |i: &usize| accepted.contains(i) || *i == k;
                        let lists = overlay(def, &feeds, &stored, rows, *id, upto);
                        match rolled_up(cur, &feeds, &lists, &cx) {
                            Ok(_) => accepted.push(k),
                            Err(Error::Validation(errs)) => {
                                bad.insert(k, errs);
                                more = true;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                if !more {
                    out.extend(derived);
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The records feeding target `id`, per feed of `feeds`: as `stored`, with the chunk's `rows` of
/// type `def` that `written` accepts laid over them (each replaces its stored state, and counts
/// where it now references the target).
fn overlay(
    def: &'static EntityDef,
    feeds: &[(&'static EntityDef, Rollup)],
    stored: &[HashMap<Id, Vec<Record>>],
    rows: &[(usize, Option<&Record>, &Record)],
    id: Id,
    written: impl Fn(&usize) -> bool,
) -> Vec<Vec<Record>> {
    let mut lists = Vec::with_capacity(feeds.len());
    for ((d, r), stored) in feeds.iter().zip(stored) {
        let mut v = stored.get(&id).cloned().unwrap_or_default();
        if std::ptr::eq(*d, def) {
            let mine: Vec<&Record> = rows.iter().filter(|(i, _, _)| written(i)).map(|(_, _, n)| *n).collect();
            v.retain(|x| !mine.iter().any(|n| n.id == x.id));
            let counts = |n: &Record| !matches!(r, Rollup::Sum(s) if !s.counts(n));
            v.extend(
                mine.into_iter()
                    .filter(|n| n.id_of(r.via()) == Some(id) && counts(n))
                    .cloned(),
            );
            v.sort_by_key(|x| x.id);
        }
        lists.push(v);
    }
    lists
}

/// Adds the derived fields [`Service::rollups_batch`] gave to `cs`, after its writes.
pub(super) fn push_rollups(cs: &mut ChangeSet, derived: Vec<(Record, Vec<(usize, Value)>)>) {
    for (cur, fields) in derived {
        push_derived(cs, &cur, fields);
    }
}

/// The type a rollup of `def` derives onto: its reference field's target.
fn target_type(def: &EntityDef, r: &Rollup) -> Option<&'static EntityDef> {
    match def.def(r.via()).map(|f| f.spec.ty.clone()) {
        Some(FieldType::Ref(t)) => entity::entity(t),
        _ => None,
    }
}

/// Every type's rollup whose reference names `tdef`: what feeds `tdef`'s derived fields.
fn feeds_of(tdef: &EntityDef) -> Vec<(&'static EntityDef, Rollup)> {
    let mut feeds = Vec::new();
    for d in entity::all() {
        for r in &d.rollups {
            if d.def(r.via()).is_some_and(|f| f.spec.ty == FieldType::Ref(tdef.name)) {
                feeds.push((d, *r));
            }
        }
    }
    feeds
}

/// What the rollup fields of `cur` come to: `rows[k]` are the records of `feeds[k]` that feed it (a
/// sum's only those that count), in id order. A fold may refuse.
fn rolled_up(
    cur: &Record,
    feeds: &[(&'static EntityDef, Rollup)],
    rows: &[Vec<Record>],
    cx: &ComputeCtx,
) -> Result<Vec<(usize, Value)>> {
    let tdef = cur.entity;
    let mut out = Vec::new();
    let mut sums: Vec<(usize, i64)> = Vec::new();
    for ((_, r), rows) in feeds.iter().zip(rows) {
        match r {
            Rollup::Sum(s) => {
                let Some(idx) = tdef.index_of(s.field) else { continue };
                let total: i64 = rows.iter().map(|x| amount(x, s)).sum();
                match sums.iter_mut().find(|(i, _)| *i == idx) {
                    Some(slot) => slot.1 += total,
                    None => sums.push((idx, total)),
                }
            }
            Rollup::Fold(f) => {
                let values = (f.fold)(rows, cx)?;
                out.extend(
                    f.fields
                        .iter()
                        .zip(values)
                        .filter_map(|(name, v)| Some((tdef.index_of(name)?, v))),
                );
            }
        }
    }
    out.extend(
        sums.into_iter()
            .filter(|(i, total)| !(cur.values[*i].is_null() && *total == 0))
            .map(|(i, total)| (i, sum_value(tdef, i, total))),
    );
    Ok(out)
}

/// A summed total as the target field's type holds it.
fn sum_value(tdef: &EntityDef, i: usize, total: i64) -> Value {
    match tdef.fields[i].spec.ty {
        FieldType::Money => Value::Money(crate::value::Money(total)),
        _ => Value::Int(total),
    }
}

/// The records `ids` of `def`, by id.
async fn by_id<R: Reads>(reads: &mut R, def: &'static EntityDef, ids: &[Id]) -> Result<HashMap<Id, Record>> {
    let q = StoreQuery::by_id(
        Filter::In {
            field: "id".into(),
            values: ids.iter().map(|&id| Value::Id(id)).collect(),
        },
        ids.len() as u32,
    );
    Ok(reads.read(def, &q).await?.into_iter().map(|r| (r.id, r)).collect())
}

/// The records of `def` that feed rollup `r` of one of `targets` (a sum's only those that count),
/// by target, each target's in id order and at most [`MAX_ROLLED_UP`] of them (what a single
/// write's rollup reads). One query per [`REFRESH_PAGE`] rows, walking the index on the reference.
async fn referencing<R: Reads>(
    reads: &mut R,
    def: &'static EntityDef,
    r: &Rollup,
    targets: &[Id],
) -> Result<HashMap<Id, Vec<Record>>> {
    let via = r.via();
    let when = match r {
        Rollup::Sum(s) => Filter::eq(s.when.0, s.when.1),
        Rollup::Fold(_) => Filter::All,
    };
    let base = Filter::and([
        Filter::In {
            field: via.into(),
            values: targets.iter().map(|&id| Value::Id(id)).collect(),
        },
        when,
    ]);
    let mut q = StoreQuery::by_ref(def, via, base.clone(), REFRESH_PAGE);
    let mut out: HashMap<Id, Vec<Record>> = HashMap::new();
    loop {
        let rows = reads.read(def, &q).await?;
        let last: Option<Vec<Value>> = match rows.len() == REFRESH_PAGE as usize {
            true => rows.last().map(|r| {
                q.sort
                    .iter()
                    .map(|k| def.resolve(&k.field).map(|f| r.value(&f)).unwrap_or_default())
                    .collect()
            }),
            false => None,
        };
        for r in rows {
            if let Some(t) = r.id_of(via) {
                out.entry(t).or_default().push(r);
            }
        }
        let Some(last) = last else { break };
        q.filter = Filter::and([base.clone(), crate::query::keyset_after(&q.sort, &last)]);
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.id);
        rows.truncate(MAX_ROLLED_UP as usize);
    }
    Ok(out)
}

/// Adds a derived write of those of `fields` that differ from `cur` (the stored record), or merges
/// all of them into an earlier derived write of the same record in the change set (the later value
/// wins; one row is written once per change set). A record the change set inserts or updates gets
/// them in that write (a derived write expecting the stored version would find the row moved on).
fn push_derived(cs: &mut ChangeSet, cur: &Record, fields: Vec<(usize, Value)>) {
    if let Some(staged) = cs.staged_mut(cur.entity, cur.id) {
        for (i, v) in fields {
            staged.values[i] = v;
        }
        return;
    }
    for w in &mut cs.writes {
        if let Write::Derived {
            entity,
            id,
            fields: have,
            ..
        } = w
            && std::ptr::eq(*entity, cur.entity)
            && *id == cur.id
        {
            for (i, v) in fields {
                match have.iter_mut().find(|(j, _)| *j == i) {
                    Some(slot) => slot.1 = v,
                    None => have.push((i, v)),
                }
            }
            return;
        }
    }
    let fields: Vec<(usize, Value)> = fields.into_iter().filter(|(i, v)| cur.values[*i] != *v).collect();
    if fields.is_empty() {
        return;
    }
    cs.writes.push(Write::Derived {
        entity: cur.entity,
        id: cur.id,
        expected_version: cur.version,
        fields,
    });
}

fn amount(r: &Record, rollup: &Sum) -> i64 {
    r.get(rollup.sum).and_then(Value::as_i64).unwrap_or(0)
}
