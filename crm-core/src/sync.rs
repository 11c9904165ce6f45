//! The local change-set log ("sync log"): what an offline device must later send to a server.
//!
//! A store with the log enabled (opt-in per store: `MemoryStore::with_sync_log`,
//! `crm_store::SqliteStore::with_sync_log`; a server does not need it, a phone does) writes one
//! [`SyncEntry`] per applied [`ChangeSet`], in the same transaction as the change set, so the log
//! holds exactly the committed change sets, in commit order. A change set that fails (conflict,
//! validation, a rolled-back bulk session) logs nothing.
//!
//! An entry carries what a server needs to replay the change set with optimistic concurrency:
//!
//! - a per-tenant sequence (`seq`, assigned by the store, never reused), the change set's id (a
//!   UUIDv7, for de-duplication when an upload is retried), the acting user and the time;
//! - the row writes, each with the entity type, the row id, the operation, the version the row had
//!   before (`expected_version`, 0 for an insert) and the field patch: the new values of the fields
//!   the write changed, in the core's JSON form (`Value::to_json`; custom fields under `"custom"`).
//!   An insert's patch holds every non-null field; an update's the fields whose value changed
//!   (`null` when cleared); a delete's is empty;
//! - the ids of the audit entries and events the change set produced, so the server can relate the
//!   device's audit trail and outbox to the replayed change.
//!
//! What is deliberately left out:
//!
//! - **Derived data.** Derived writes ([`Write::Derived`]: score recomputation) are not logged, and
//!   neither are the derived fields a use case computed into a row it inserts or updates (a scored
//!   record's fields declared [`derived`](crate::schema::FieldDef::derived): score, temperature, lifetime value). They depend on data
//!   the device may not have (other users' activities, the server's published model), so whoever
//!   applies a change set re-derives them. A change set with no other row write (a batch of
//!   re-scores, a rescore summary) logs no entry at all. An update that changed only derived fields
//!   is still logged, with an empty patch, so the row's version advances the same way on replay.
//!   Stage changes ([`crate::entity::stage`]) are derived rows too, left out for the same reason,
//!   and so are routing cursors ([`crate::entity::routing`]: a store's own round-robin turns).
//! - **Secret fields** (credential hashes) never appear in a patch, as in [`Record::to_json`]:
//!   credentials change through their own use case, online.
//!
//! Entries stay until [`crate::store::Store::mark_synced`] removes them (the server acknowledged
//! them); the audit log, not the sync log, is the history. Bulk sessions (imports) log one entry per
//! change set they apply (an import applies one per chunk of rows), each in the session's
//! transaction: a session that is rolled back logs nothing.

use crate::change::{ChangeSet, Write};
use crate::error::Result;
use crate::record::Record;
use crate::schema::EntityDef;
use crate::value::{Id, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// What a logged row write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOp {
    Insert,
    Update,
    Delete,
}

impl SyncOp {
    /// `insert`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOp::Insert => "insert",
            SyncOp::Update => "update",
            SyncOp::Delete => "delete",
        }
    }
}

/// One row write of a logged change set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncWrite {
    /// The entity type (`lead`, `activity`, ...).
    pub entity: String,
    pub id: Id,
    pub op: SyncOp,
    /// The version the row had before the write (0 for an insert); the row's new version is this
    /// plus one. A server whose row is at another version reports a conflict.
    pub expected_version: u64,
    /// The new values of the fields the write changed (empty for a delete). See the module docs.
    pub patch: Map<String, Json>,
}

/// One logged change set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// Position in the tenant's log: 1, 2, ... in commit order, assigned by the store, never reused
    /// (not even after [`crate::store::Store::mark_synced`] removed the entries before it).
    pub seq: u64,
    pub tenant: Id,
    /// The change set's id ([`ChangeSet::id`]).
    pub change_set: Id,
    /// The acting user (`None` for the system).
    pub actor: Option<Id>,
    /// When the use case ran.
    pub at: Timestamp,
    /// The row writes in the order they were applied (derived writes omitted).
    pub writes: Vec<SyncWrite>,
    /// Ids of the audit entries the change set produced.
    pub audit: Vec<Id>,
    /// Ids of the outbox events the change set produced.
    pub events: Vec<Id>,
}

impl SyncEntry {
    /// The entry a store logs for a change set it is about to apply (with `seq` 0: the store
    /// assigns it), or `None` when the change set has nothing to replay (only derived writes, audit
    /// entries or events).
    ///
    /// `stored` returns a row as stored before the change set; it is called for updates only (to
    /// diff the patch), inside the store's write transaction. A row written earlier in the same
    /// change set is diffed against that earlier write instead.
    pub fn for_change_set(
        cs: &ChangeSet,
        mut stored: impl FnMut(&'static EntityDef, Id) -> Result<Option<Record>>,
    ) -> Result<Option<SyncEntry>> {
        let mut writes = Vec::new();
        for (k, w) in cs.writes.iter().enumerate() {
            let e = w.entity();
            if e.name == crate::entity::STAGE_CHANGE.name || e.name == crate::entity::ROUTING_CURSOR.name {
                // Derived rows: whoever applies the change set records its own stage changes, and
                // round-robin turns are the applying store's own.
                continue;
            }
            let write = match w {
                Write::Insert(r) => SyncWrite {
                    entity: e.name.to_owned(),
                    id: r.id,
                    op: SyncOp::Insert,
                    expected_version: 0,
                    patch: patch(None, r),
                },
                Write::Update {
                    record,
                    expected_version,
                } => {
                    let old = match staged(&cs.writes[..k], e, record.id) {
                        Some(r) => Some(r.clone()),
                        None => stored(e, record.id)?,
                    };
                    SyncWrite {
                        entity: e.name.to_owned(),
                        id: record.id,
                        op: SyncOp::Update,
                        expected_version: *expected_version,
                        patch: patch(old.as_ref(), record),
                    }
                }
                Write::Delete {
                    id, expected_version, ..
                } => SyncWrite {
                    entity: e.name.to_owned(),
                    id: *id,
                    op: SyncOp::Delete,
                    expected_version: *expected_version,
                    patch: Map::new(),
                },
                Write::Derived { .. } => continue,
            };

            writes.push(write);
        }
        if writes.is_empty() {
            return Ok(None);
        }
        Ok(Some(SyncEntry {
            seq: 0,
            tenant: cs.tenant,
            change_set: cs.id,
            actor: cs.actor,
            at: cs.at,
            writes,
            audit: cs.audit.iter().map(|a| a.id).collect(),
            events: cs.events.iter().map(|e| e.id).collect(),
        }))
    }
}

/// The latest state an earlier write of the same change set gave a row.
fn staged<'a>(earlier: &'a [Write], entity: &EntityDef, id: Id) -> Option<&'a Record> {
    earlier.iter().rev().find_map(|w| match w {
        Write::Insert(r) | Write::Update { record: r, .. } if r.entity.name == entity.name && r.id == id => Some(r),
        _ => None,
    })
}

/// The new values of the fields that differ between `old` and `new` (every non-null field when there
/// is no `old`), custom fields under `"custom"`; secret and derived fields left out.
pub fn patch(old: Option<&Record>, new: &Record) -> Map<String, Json> {
    let mut out = Map::new();
    for (i, f) in new.entity.fields.iter().enumerate() {
        if f.derived {
            continue;
        }
        let n = &new.values[i];
        let changed = match old {
            None => !n.is_null(),
            Some(o) => o.values.get(i).unwrap_or(&Value::Null) != n,
        };
        if changed && !f.secret {
            out.insert(f.name.to_owned(), n.to_json());
        }
    }
    let mut custom = Map::new();
    for (k, n) in &new.custom {
        let changed = match old {
            None => !n.is_null(),
            Some(o) => o.custom.get(k).unwrap_or(&Value::Null) != n,
        };
        if changed {
            custom.insert(k.clone(), n.to_json());
        }
    }
    for k in old.iter().flat_map(|o| o.custom.keys()) {
        if !new.custom.contains_key(k) {
            custom.insert(k.clone(), Json::Null);
        }
    }
    if !custom.is_empty() {
        out.insert("custom".into(), Json::Object(custom));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entity::LEAD;
    use serde_json::json;

    fn lead() -> Record {
        let mut r = Record::empty(&LEAD, Id::from_u128(1), Id::from_u128(2), Timestamp(5));
        r.set("first_name", "Ann");
        r.set("status", "new");
        r.set("score", 40i64);
        r.custom.insert("roof".into(), Value::Text("tile".into()));
        r
    }

    #[test]
    fn patches_hold_new_values_of_changed_fields() {
        let old = lead();
        assert_eq!(
            Json::Object(patch(None, &old)),
            json!({"first_name": "Ann", "status": "new", "custom": {"roof": "tile"}}),
            "no derived score"
        );
        let mut new = old.clone();
        new.set("first_name", Value::Null);
        new.set("notes", "gate");
        new.custom.clear();
        new.custom.insert("storeys".into(), Value::Int(2));
        assert_eq!(
            Json::Object(patch(Some(&old), &new)),
            json!({"first_name": null, "notes": "gate", "custom": {"storeys": 2, "roof": null}})
        );
        assert!(patch(Some(&old), &old).is_empty());
    }

    #[test]
    fn derived_only_change_sets_log_nothing_and_updates_diff_against_earlier_writes() {
        let r = lead();
        let mut cs = ChangeSet::new(r.tenant).with_origin(Id::from_u128(9), None, Timestamp(7));
        cs.writes.push(Write::Derived {
            entity: &LEAD,
            id: r.id,
            expected_version: 1,
            fields: vec![],
        });
        assert_eq!(SyncEntry::for_change_set(&cs, |_, _| Ok(None)).unwrap(), None);
        cs.writes.push(Write::Insert(r.clone()));
        let mut r2 = r.clone();
        r2.version = 2;
        r2.set("notes", "x");
        cs.writes.push(Write::Update {
            record: r2,
            expected_version: 1,
        });
        let e = SyncEntry::for_change_set(&cs, |_, _| panic!("not stored"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.change_set, e.at, e.writes.len()),
            (Id::from_u128(9), Timestamp(7), 2)
        );
        assert_eq!(e.writes[1].op, SyncOp::Update);
        assert_eq!(Json::Object(e.writes[1].patch.clone()), json!({"notes": "x"}));
        assert_eq!(
            serde_json::to_value(&e.writes[1]).unwrap()["op"],
            json!("update"),
            "ops serialise in snake case"
        );
    }
}
