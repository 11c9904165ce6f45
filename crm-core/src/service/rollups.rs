//! Rollups (see [`crate::schema::Rollup`]): sums kept in a derived field of the referenced record,
//! recomputed in the change set of every write that may change them.

use super::Service;
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::entity;
use crate::error::Result;
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, Rollup};
use crate::store::Store;
use crate::value::{FieldType, Id, Value};

/// Most records one rollup sums (a customer's accepted quotes).
const MAX_ROLLED_UP: u32 = 100_000;

impl<S: Store> Service<S> {
    /// Adds the re-derived targets of a write (`old` → `new` of one record; `None` for an insert or
    /// a delete) to the change set: every record either state references through a rollup gets the
    /// sum of everything that now counts towards it.
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
        for r in &def.rollups {
            // A record that counts neither before nor after the write leaves every sum as it was
            // (a draft quote's edits): no read, no write.
            if ![old, new].into_iter().flatten().any(|x| r.counts(x)) {
                continue;
            }
            let FieldType::Ref(target_type) = def.def(r.via).map(|f| f.spec.ty.clone()).unwrap_or(FieldType::Text)
            else {
                continue;
            };
            let Some(tdef) = entity::entity(target_type) else {
                continue;
            };
            let mut targets: Vec<Id> = [old, new]
                .into_iter()
                .flatten()
                .filter_map(|x| x.id_of(r.via))
                .collect();
            targets.dedup();
            for target in targets {
                self.rollup_target(actor, tdef, r.field, target, written, new, cs)
                    .await?;
            }
        }
        Ok(())
    }

    /// Recomputes one target field: the sum over every rollup feeding it, with the record being
    /// `written` counted as it will be (`new`; `None` when it is deleted).
    #[allow(clippy::too_many_arguments)]
    async fn rollup_target(
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
        let Some(cur) = self.store.get(actor.tenant, tdef, target).await? else {
            return Ok(());
        };
        // Collected first: an iterator of closures held across `.await` keeps futures from being `Send`.
        let mut feeds: Vec<(&'static EntityDef, Rollup)> = Vec::new();
        for d in entity::all() {
            for r in &d.rollups {
                if r.field == field && d.def(r.via).is_some_and(|f| f.spec.ty == FieldType::Ref(tdef.name)) {
                    feeds.push((d, *r));
                }
            }
        }
        let mut total: i64 = 0;
        for (d, r) in feeds {
            let q = StoreQuery::by_id(
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
        if cur.values[idx] != value && !(cur.values[idx].is_null() && total == 0) {
            cs.writes.push(Write::Derived {
                entity: tdef,
                id: cur.id,
                expected_version: cur.version,
                fields: vec![(idx, value)],
            });
        }
        Ok(())
    }
}

fn amount(r: &Record, rollup: &Rollup) -> i64 {
    r.get(rollup.sum).and_then(Value::as_i64).unwrap_or(0)
}
