//! Keeping a [`MemoryStore`] across restarts (the browser's local database across page loads):
//! the store tracks what changed since it was last saved, hands it out as [`Changes`] for the
//! host to write into its own storage (IndexedDB in a browser), and is rebuilt from what the host
//! kept with [`MemoryStore::restore`]. A save costs what changed, not the whole store: rows by
//! key, and the audit log, the event outbox and the sync log by sequence.

use super::{MemoryStore, Tenant};
use crate::change::{AuditEntry, Event};
use crate::entity::{self, CUSTOM_FIELD};
use crate::error::{Error, FieldError, Result, codes};
use crate::record::Record;
use crate::sync::SyncEntry;
use crate::validate::CustomSpecs;
use crate::value::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;

/// A row to keep (`record`) or to forget (`record: null`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedRow {
    pub entity: String,
    pub id: Id,
    /// [`Record::to_json`]; `None`: the row was deleted.
    pub record: Option<Json>,
}

/// What changed in one tenant since its last save ([`MemoryStore::changes`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub tenant: Id,
    pub rows: Vec<SavedRow>,
    /// Audit entries, events and sync log entries appended since (each keyed by its `seq`).
    pub audit: Vec<AuditEntry>,
    pub events: Vec<Event>,
    pub sync: Vec<SyncEntry>,
    /// Sync log entries before this sequence were marked synced: forget them.
    pub sync_from: u64,
    /// The last sequence the sync log assigned.
    pub sync_seq: u64,
    /// Hand back to [`MemoryStore::saved`] once these changes are stored.
    pub mark: SaveMark,
}

/// Where a [`Changes`] ends, so that only what was stored is marked saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveMark {
    pub generation: u64,
    pub audit: u64,
    pub events: u64,
    pub sync: u64,
    pub sync_from: u64,
}

/// Everything kept of one tenant, as [`MemoryStore::restore`] reads it back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub tenant: Id,
    /// Every kept row, any order.
    pub rows: Vec<SavedRow>,
    pub audit: Vec<AuditEntry>,
    pub events: Vec<Event>,
    pub sync: Vec<SyncEntry>,
    pub sync_seq: u64,
}

/// The save bookkeeping of a tenant: rows written since by generation, and the last sequences
/// saved.
#[derive(Clone, Debug, Default)]
pub(super) struct Dirty {
    generation: u64,
    rows: HashMap<(&'static str, Id), u64>,
    saved: SaveMark,
}

impl Dirty {
    /// A row was written (or deleted).
    pub(super) fn touch(&mut self, entity: &'static str, id: Id) {
        self.generation += 1;
        self.rows.insert((entity, id), self.generation);
    }
}

impl MemoryStore {
    /// What changed in each tenant since its last [`MemoryStore::saved`] (tenants without changes
    /// are left out). Reads only: a save that fails leaves everything to the next one.
    pub fn changes(&self) -> Result<Vec<Changes>> {
        let g = self
            .tenants
            .read()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let mut out: Vec<Changes> = g
            .iter()
            .map(|(id, t)| (changes_of(*id, t), t.dirty.saved.sync_from))
            .filter(|(c, from)| {
                !(c.rows.is_empty() && c.audit.is_empty() && c.events.is_empty() && c.sync.is_empty())
                    || c.sync_from != *from
            })
            .map(|(c, _)| c)
            .collect();
        out.sort_by_key(|c| c.tenant);
        Ok(out)
    }

    /// Marks a tenant's [`Changes`] as stored: rows not written again since are clean.
    pub fn saved(&self, tenant: Id, mark: SaveMark) -> Result<()> {
        let mut g = self
            .tenants
            .write()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        if let Some(t) = g.get_mut(&tenant) {
            t.dirty.rows.retain(|_, generation| *generation > mark.generation);
            t.dirty.saved = mark;
        }
        Ok(())
    }

    /// Rebuilds a tenant from what was kept of it, replacing what the store holds of it; the
    /// tenant is clean (nothing to save) afterwards. A row that does not decode refuses the whole
    /// restore (validation errors on `rows[i]`), changing nothing.
    pub fn restore(&self, saved: Saved) -> Result<()> {
        // Custom field definitions first: the other rows' custom values decode by them.
        let mut specs: HashMap<String, CustomSpecs> = HashMap::new();
        let mut tables: HashMap<&'static str, std::collections::BTreeMap<Id, Record>> = HashMap::new();
        let mut errs = Vec::new();
        let mut decode = |i: usize, row: &SavedRow, specs: &HashMap<String, CustomSpecs>| {
            let def = entity::entity(&row.entity);
            let rec = def.zip(row.record.as_ref()).and_then(|(d, j)| {
                let none = CustomSpecs::new();
                Record::from_json(d, saved.tenant, j, specs.get(d.name).unwrap_or(&none))
            });
            match rec {
                Some(r) if r.id == row.id => Some(r),
                _ => {
                    errs.push(FieldError::new(
                        format!("rows[{i}]"),
                        codes::INVALID_FORMAT,
                        format!("not a stored {} row", row.entity),
                    ));
                    None
                }
            }
        };
        let is_spec = |r: &SavedRow| r.entity == CUSTOM_FIELD.name;
        for (i, row) in saved.rows.iter().enumerate().filter(|(_, r)| is_spec(r)) {
            if let Some(r) = decode(i, row, &specs) {
                if let Some((entity, key, spec)) = entity::config::custom_field_spec(&r) {
                    specs.entry(entity.to_owned()).or_default().insert(key.to_owned(), spec);
                }
                tables.entry(r.entity.name).or_default().insert(r.id, r);
            }
        }
        for (i, row) in saved.rows.iter().enumerate().filter(|(_, r)| !is_spec(r)) {
            if let Some(r) = decode(i, row, &specs) {
                tables.entry(r.entity.name).or_default().insert(r.id, r);
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut t = Tenant {
            tables,
            audit: saved.audit,
            events: saved.events,
            sync: saved.sync,
            sync_seq: saved.sync_seq,
            dirty: Dirty::default(),
        };
        t.audit.sort_by_key(|a| a.seq);
        t.events.sort_by_key(|e| e.seq);
        t.sync.sort_by_key(|e| e.seq);
        t.dirty.saved = SaveMark {
            generation: 0,
            audit: t.audit.last().map_or(0, |a| a.seq),
            events: t.events.last().map_or(0, |e| e.seq),
            sync: t.sync_seq,
            sync_from: t.sync.first().map_or(t.sync_seq + 1, |e| e.seq),
        };
        let mut g = self
            .tenants
            .write()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        g.insert(saved.tenant, t);
        Ok(())
    }
}

fn changes_of(tenant: Id, t: &Tenant) -> Changes {
    let saved = t.dirty.saved;
    let rows = t
        .dirty
        .rows
        .keys()
        .map(|&(entity, id)| SavedRow {
            entity: entity.to_owned(),
            id,
            record: t.tables.get(entity).and_then(|tb| tb.get(&id)).map(Record::to_json),
        })
        .collect();
    let sync_from = t.sync.first().map_or(t.sync_seq + 1, |e| e.seq);
    Changes {
        tenant,
        rows,
        // The logs are in seq order: only their tails are new (a save costs what changed).
        audit: t.audit[t.audit.partition_point(|a| a.seq <= saved.audit)..].to_vec(),
        events: t.events[t.events.partition_point(|e| e.seq <= saved.events)..].to_vec(),
        sync: t.sync[t.sync.partition_point(|e| e.seq <= saved.sync)..].to_vec(),
        sync_from,
        sync_seq: t.sync_seq,
        mark: SaveMark {
            generation: t.dirty.generation,
            audit: t.audit.last().map_or(0, |a| a.seq),
            events: t.events.last().map_or(0, |e| e.seq),
            sync: t.sync_seq,
            sync_from,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{Fixture, block, obj};
    use crate::query::{Filter, StoreQuery};
    use crate::store::{AuditQuery, Store};
    use crate::value::Value;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A host's storage: rows by key, logs by sequence, as IndexedDB keeps them.
    #[derive(Default)]
    struct Host {
        rows: BTreeMap<(String, Id), Json>,
        audit: BTreeMap<u64, AuditEntry>,
        events: BTreeMap<u64, Event>,
        sync: BTreeMap<u64, SyncEntry>,
        sync_seq: u64,
    }

    impl Host {
        fn save(&mut self, store: &MemoryStore) -> usize {
            let mut n = 0;
            for c in store.changes().unwrap() {
                let (tenant, mark) = (c.tenant, c.mark);
                n += self.put(c);
                store.saved(tenant, mark).unwrap();
            }
            n
        }

        /// Stores one tenant's changes; the number of rows written.
        fn put(&mut self, c: Changes) -> usize {
            let n = c.rows.len();
            for r in c.rows {
                match r.record {
                    Some(j) => self.rows.insert((r.entity, r.id), j),
                    None => self.rows.remove(&(r.entity, r.id)),
                };
            }
            self.audit.extend(c.audit.into_iter().map(|a| (a.seq, a)));
            self.events.extend(c.events.into_iter().map(|e| (e.seq, e)));
            self.sync.extend(c.sync.into_iter().map(|e| (e.seq, e)));
            self.sync.retain(|seq, _| *seq >= c.sync_from);
            self.sync_seq = c.sync_seq;
            n
        }

        fn load(&self, tenant: Id) -> MemoryStore {
            let store = MemoryStore::new().with_sync_log(true);
            let rows = self
                .rows
                .iter()
                .map(|((entity, id), j)| SavedRow {
                    entity: entity.clone(),
                    id: *id,
                    record: Some(j.clone()),
                })
                .collect();
            store
                .restore(Saved {
                    tenant,
                    rows,
                    audit: self.audit.values().cloned().collect(),
                    events: self.events.values().cloned().collect(),
                    sync: self.sync.values().cloned().collect(),
                    sync_seq: self.sync_seq,
                })
                .unwrap();
            store
        }
    }

    /// Everything a tenant holds, as comparable JSON.
    fn contents(store: &MemoryStore, tenant: Id) -> Json {
        let mut rows = BTreeMap::new();
        for def in entity::all() {
            for r in block(store.query(tenant, def, &StoreQuery::by_id(Filter::All, 100_000))).unwrap() {
                rows.insert(format!("{}/{}", def.name, r.id), r.to_json());
            }
        }
        let audit = block(store.audit(tenant, &AuditQuery::default())).unwrap();
        let events = block(store.events(tenant, 0, u32::MAX)).unwrap();
        let sync = block(store.pending_changes(tenant, 0, u32::MAX)).unwrap();
        json!({"rows": rows, "audit": audit, "events": events, "sync": sync})
    }

    #[test]
    fn a_restored_store_holds_what_was_saved_and_saves_cost_what_changed() {
        let f = Fixture::new(MemoryStore::new().with_sync_log(true));
        let store = f.svc.store();
        block(f.svc.create(
            &f.admin,
            "custom_field",
            &obj(json!({"entity": "lead", "key": "roof_type",
            "spec": {"type": "text", "label": "Roof type"}})),
        ))
        .unwrap();
        let leads: Vec<_> = (0..5)
            .map(|i| {
                f.lead(
                    &f.sales_a,
                    json!({"first_name": format!("L{i}"), "custom": {"roof_type": "slate"}}),
                )
            })
            .collect();
        let mut host = Host::default();
        assert!(host.save(store) > 10, "the first save writes every row");
        assert!(store.changes().unwrap().is_empty(), "then nothing is left to save");
        let again = host.load(f.tenant);
        assert_eq!(contents(&again, f.tenant), contents(store, f.tenant));
        assert!(again.changes().unwrap().is_empty(), "a restored store starts clean");

        // Later: an update, a delete, the log partly synced. Only those rows are saved again.
        block(
            f.svc
                .update(&f.sales_a, "lead", leads[0].id, 1, &obj(json!({"notes": "n"}))),
        )
        .unwrap();
        block(f.svc.delete(&f.manager, "lead", leads[1].id, 1)).unwrap();
        let seq = block(store.pending_changes(f.tenant, 0, 3)).unwrap()[2].seq;
        block(store.mark_synced(f.tenant, seq)).unwrap();
        let saved_rows = host.save(store);
        assert!(
            (2..=4).contains(&saved_rows),
            "{saved_rows} rows saved for two changed leads"
        );
        let again = host.load(f.tenant);
        assert_eq!(contents(&again, f.tenant), contents(store, f.tenant));
        let lead = block(again.get(f.tenant, &entity::LEAD, leads[2].id)).unwrap().unwrap();
        assert_eq!(lead.custom.get("roof_type"), Some(&Value::Text("slate".into())));

        // A change made between a save's read and its mark is saved by the next one.
        block(
            f.svc
                .update(&f.sales_a, "lead", leads[0].id, 2, &obj(json!({"notes": "sooner"}))),
        )
        .unwrap();
        let pending = store.changes().unwrap().remove(0);
        let mark = pending.mark;
        host.put(pending);
        block(
            f.svc
                .update(&f.sales_a, "lead", leads[0].id, 3, &obj(json!({"notes": "later"}))),
        )
        .unwrap();
        store.saved(f.tenant, mark).unwrap();
        assert_eq!(host.save(store), 1, "the lead written after the read is still to save");
        assert_eq!(contents(&host.load(f.tenant), f.tenant), contents(store, f.tenant));
    }

    #[test]
    fn a_row_that_does_not_decode_refuses_the_restore() {
        let store = MemoryStore::new();
        let tenant = Id::from_u128(7);
        let err = store
            .restore(Saved {
                tenant,
                rows: vec![SavedRow {
                    entity: "lead".into(),
                    id: Id::from_u128(1),
                    record: Some(json!({"id": "nope"})),
                }],
                ..Saved::default()
            })
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e[0].path == "rows[0]"),
            "{err:?}"
        );
        assert!(block(store.tenants()).unwrap().is_empty(), "nothing was restored");
    }
}
