//! Rollups (see [`crate::schema::Rollup`]): sums and folds kept in derived fields of the referenced
//! record, recomputed in the change set of every write that may change them.

use super::Service;
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::computed::ComputeCtx;
use crate::entity;
use crate::error::Result;
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
            let FieldType::Ref(target_type) = def.def(r.via()).map(|f| f.spec.ty.clone()).unwrap_or(FieldType::Text)
            else {
                continue;
            };
            let Some(tdef) = entity::entity(target_type) else {
                continue;
            };
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
        let mut feeds: Vec<(&'static EntityDef, Sum)> = Vec::new();
        for d in entity::all() {
            for r in &d.rollups {
                if let Rollup::Sum(s) = r
                    && s.field == field
                    && d.def(s.via).is_some_and(|f| f.spec.ty == FieldType::Ref(tdef.name))
                {
                    feeds.push((d, *s));
                }
            }
        }
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
        let mut feeds: Vec<(&'static EntityDef, Rollup)> = Vec::new();
        for d in entity::all() {
            for r in &d.rollups {
                if d.def(r.via()).is_some_and(|f| f.spec.ty == FieldType::Ref(tdef.name)) {
                    feeds.push((d, *r));
                }
            }
        }
        // Each once, in the caller's order (a fold's refusal names the first such record's rows).
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<Id> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let read = actor.authorize(tdef, crate::access::Action::Read)?;
        let q = StoreQuery::by_id(
            Filter::In {
                field: "id".into(),
                values: wanted.iter().map(|&id| Value::Id(id)).collect(),
            },
            wanted.len() as u32,
        );
        let found: HashMap<Id, Record> = self
            .store
            .query(actor.tenant, tdef, &q)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
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
        let mut sums: HashMap<Id, Vec<(usize, i64)>> = HashMap::new();
        for (d, r) in &feeds {
            let when = match r {
                Rollup::Sum(s) => Filter::eq(s.when.0, s.when.1),
                Rollup::Fold(_) => Filter::All,
            };
            let mut rows = self.referencing(actor.tenant, d, r.via(), when, &wanted).await?;
            for id in &wanted {
                let Some(cur) = found.get(id) else { continue };
                let rows = rows.remove(id).unwrap_or_default();
                match r {
                    Rollup::Sum(s) => {
                        let Some(idx) = tdef.index_of(s.field) else { continue };
                        let total: i64 = rows.iter().map(|x| amount(x, s)).sum();
                        let slots = sums.entry(*id).or_default();
                        match slots.iter_mut().find(|(i, _)| *i == idx) {
                            Some(slot) => slot.1 += total,
                            None => slots.push((idx, total)),
                        }
                    }
                    Rollup::Fold(f) => {
                        let values = (f.fold)(&rows, &cx)?;
                        let all = f
                            .fields
                            .iter()
                            .zip(values)
                            .filter_map(|(name, v)| Some((tdef.index_of(name)?, v)))
                            .collect();
                        push_derived(&mut cs, cur, all);
                    }
                }
            }
        }
        for id in &wanted {
            let Some(cur) = found.get(id) else { continue };
            let sums: Vec<(usize, Value)> = sums
                .remove(id)
                .unwrap_or_default()
                .into_iter()
                .filter(|(i, total)| !(cur.values[*i].is_null() && *total == 0))
                .map(|(i, total)| {
                    let v = match tdef.fields[i].spec.ty {
                        FieldType::Money => Value::Money(crate::value::Money(total)),
                        _ => Value::Int(total),
                    };
                    (i, v)
                })
                .collect();
            push_derived(&mut cs, cur, sums);
        }
        let changed = cs.writes.len() as u64;
        if changed > 0 {
            self.apply(cs).await?;
        }
        Ok(changed)
    }

    /// The records of `def` whose reference `via` names one of `targets` (and that match `when`),
    /// by target, each target's in id order and at most [`MAX_ROLLED_UP`] of them (what a single
    /// write's rollup reads). One query per [`REFRESH_PAGE`] rows, walking the index on `via`.
    async fn referencing(
        &self,
        tenant: Id,
        def: &'static EntityDef,
        via: &str,
        when: Filter,
        targets: &[Id],
    ) -> Result<HashMap<Id, Vec<Record>>> {
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
            let rows = self.store.query(tenant, def, &q).await?;
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
