//! The unit of every write: one change set of row writes, audit entries and outbox events, applied by
//! a store in one transaction or not at all.

use crate::record::Record;
use crate::schema::EntityDef;
use crate::value::{Id, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// One row write.
#[derive(Clone, Debug)]
pub enum Write {
    Insert(Record),
    /// Replace the row with `record` (whose `version` is `expected_version + 1`) if the stored row is
    /// still at `expected_version`; otherwise the whole change set fails with `Conflict`.
    Update {
        record: Record,
        expected_version: u64,
    },
    Delete {
        entity: &'static EntityDef,
        id: Id,
        expected_version: u64,
    },
    /// Set derived fields (score, temperature) without bumping the version, if the row is still at
    /// `expected_version`; a row that moved on is skipped silently (its own write re-derived it).
    Derived {
        entity: &'static EntityDef,
        id: Id,
        expected_version: u64,
        fields: Vec<(usize, Value)>,
    },
}

impl Write {
    pub fn entity(&self) -> &'static EntityDef {
        match self {
            Write::Insert(r) | Write::Update { record: r, .. } => r.entity,
            Write::Delete { entity, .. } | Write::Derived { entity, .. } => entity,
        }
    }
}

/// A field's old and new value in an audit entry (JSON forms; `null` is "not set").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Json,
    pub new: Json,
}

/// An entry of the append-only, hash-chained audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: Id,
    pub tenant: Id,
    /// Position in the tenant's chain, assigned by the store (1, 2, ...).
    pub seq: u64,
    pub at: Timestamp,
    /// The user who acted (`None` for the system: imports run by the CLI, scheduled rescoring).
    pub actor: Option<Id>,
    /// `create`, `update`, `delete`, `convert`, `publish`, `rescore`, `import`.
    pub action: String,
    pub entity: String,
    pub entity_id: Option<Id>,
    pub changes: Vec<FieldChange>,
    /// Hex SHA-256 of the previous entry (`""` for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this entry's content.
    pub hash: String,
}

impl AuditEntry {
    /// Assigns the chain position and hashes; called by stores inside the write transaction.
    pub fn seal(&mut self, seq: u64, prev_hash: &str) {
        self.seq = seq;
        self.prev_hash = prev_hash.to_owned();
        self.hash = self.compute_hash();
    }

    /// The hash this entry should carry given its content and `prev_hash`.
    ///
    /// SHA-256 over `prev_hash`, a line break and the JSON array `[tenant, seq, at, actor, action,
    /// entity, entity_id, changes, id]`, each change an object with its keys in sorted order
    /// (`field`, `new`, `old`). Serialised straight into the hasher: an import hashes one entry per
    /// row, and building a JSON tree first cost a fifth of its writes.
    pub fn compute_hash(&self) -> String {
        use serde::ser::{SerializeMap, SerializeTuple};
        struct Sorted<'a>(&'a FieldChange);
        impl Serialize for Sorted<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("field", &self.0.field)?;
                m.serialize_entry("new", &self.0.new)?;
                m.serialize_entry("old", &self.0.old)?;
                m.end()
            }
        }
        struct Content<'a>(&'a AuditEntry);
        impl Serialize for Content<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let e = self.0;
                let mut t = s.serialize_tuple(9)?;
                t.serialize_element(&e.tenant)?;
                t.serialize_element(&e.seq)?;
                t.serialize_element(&e.at.0)?;
                t.serialize_element(&e.actor)?;
                t.serialize_element(&e.action)?;
                t.serialize_element(&e.entity)?;
                t.serialize_element(&e.entity_id)?;
                t.serialize_element(&e.changes.iter().map(Sorted).collect::<Vec<_>>())?;
                t.serialize_element(&e.id)?;
                t.end()
            }
        }
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        // Writing into a hasher cannot fail, nor can serialising these types.
        serde_json::to_writer(&mut h, &Content(self)).expect("an audit entry serialises");
        format!("{:x}", h.finalize())
    }
}

/// Checks that entries (in sequence order, starting anywhere) are untampered and linked.
/// Returns the sequence number of the first bad entry.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), u64> {
    let mut prev: Option<&AuditEntry> = None;
    for e in entries {
        let linked = prev.is_none_or(|p| p.hash == e.prev_hash && p.seq + 1 == e.seq);
        if !linked || e.compute_hash() != e.hash {
            return Err(e.seq);
        }
        prev = Some(e);
    }
    Ok(())
}

/// A domain event in the tenant's outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonically increasing per tenant, in commit order; assigned by the store.
    pub seq: u64,
    pub tenant: Id,
    pub id: Id,
    pub at: Timestamp,
    /// `lead.created`, `lead.updated`, `lead.converted`, `activity.created`, `scoring_model.published`, ...
    pub kind: String,
    pub entity: String,
    pub entity_id: Option<Id>,
    /// The record as the system sees it after the change (readers filter it by their permissions).
    pub payload: Json,
}

/// Everything one use case writes.
#[derive(Clone, Debug)]
pub struct ChangeSet {
    pub tenant: Id,
    /// Identifies the change set wherever it travels (a UUIDv7 from the service's id generator; the
    /// sync log's key for replay and de-duplication). Nil for change sets built without an origin
    /// (tests, maintenance tools writing to a store directly).
    pub id: Id,
    /// The user whose use case built it (`None` for the system).
    pub actor: Option<Id>,
    /// When the use case ran (the service's clock).
    pub at: Timestamp,
    pub writes: Vec<Write>,
    pub audit: Vec<AuditEntry>,
    pub events: Vec<Event>,
    /// The use case and input that built it, when a server can replay it
    /// ([`crate::sync::Intent`]; set by the replayable use cases, logged with the change set).
    pub intent: Option<crate::sync::Intent>,
    /// An idempotency answer to store in the same transaction (a sync replay's: see
    /// [`crate::idempotency::Settle`]). Never logged, never in a bulk session.
    pub settle: Option<crate::idempotency::Settle>,
    /// Rows as a server sent them, applied on a device ([`crate::service::Service::apply_pull`],
    /// and the rows a refused push entry puts back): written as they are, with the server's
    /// versions, and never logged for upload (they came from the server).
    pub received: bool,
}

impl ChangeSet {
    /// An empty change set without an origin (nil id, no actor, time 0); see [`ChangeSet::with_origin`].
    pub fn new(tenant: Id) -> Self {
        ChangeSet {
            tenant,
            id: Id::nil(),
            actor: None,
            at: Timestamp::default(),
            writes: Vec::new(),
            audit: Vec::new(),
            events: Vec::new(),
            intent: None,
            settle: None,
            received: false,
        }
    }

    /// Sets who built the change set, when, and its id (the service does this for every use case).
    pub fn with_origin(mut self, id: Id, actor: Option<Id>, at: Timestamp) -> Self {
        self.id = id;
        self.actor = actor;
        self.at = at;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.audit.is_empty() && self.events.is_empty()
    }

    /// The state an earlier insert or update of this change set gives a row, if it writes one: a
    /// later step of the same use case finds the row there (the store does not have it yet, or has
    /// an older version).
    pub fn staged_mut(&mut self, entity: &EntityDef, id: Id) -> Option<&mut Record> {
        self.writes.iter_mut().rev().find_map(|w| match w {
            Write::Insert(r) | Write::Update { record: r, .. } if r.entity.name == entity.name && r.id == id => Some(r),
            _ => None,
        })
    }

    /// Whether this change set inserts the row.
    pub fn inserts(&self, entity: &EntityDef, id: Id) -> bool {
        self.writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.entity.name == entity.name && r.id == id))
    }
}

/// What a store reports after applying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Sequence of the last event written (0 if none).
    pub last_event_seq: u64,
    /// Rows written (derived writes to rows that moved on are not counted).
    pub rows: u64,
}

/// What an audit entry shows instead of a secret field's value.
pub const REDACTED: &str = "[redacted]";

/// Field-level differences between two states of a record (all fields on create and delete).
pub fn diff(old: Option<&Record>, new: Option<&Record>) -> Vec<FieldChange> {
    let Some(r) = new.or(old) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, f) in r.entity.fields.iter().enumerate() {
        let o = old.map_or(&Value::Null, |r| &r.values[i]);
        let n = new.map_or(&Value::Null, |r| &r.values[i]);
        if o != n {
            // A secret's change is recorded, never its value.
            let shown = |v: &Value| match (f.secret, v.is_null()) {
                (true, false) => Json::String(REDACTED.into()),
                _ => v.to_json(),
            };
            out.push(FieldChange {
                field: f.name.to_owned(),
                old: shown(o),
                new: shown(n),
            });
        }
    }
    let mut keys: Vec<&String> = old.iter().chain(new.iter()).flat_map(|r| r.custom.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let o = old.and_then(|r| r.custom.get(k)).unwrap_or(&Value::Null);
        let n = new.and_then(|r| r.custom.get(k)).unwrap_or(&Value::Null);
        if o != n {
            out.push(FieldChange {
                field: format!("custom.{k}"),
                old: o.to_json(),
                new: n.to_json(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hash as first defined: over a JSON tree of the content (a tree's objects sort their keys).
    fn tree_hash(e: &AuditEntry) -> String {
        let content = json!([
            e.tenant,
            e.seq,
            e.at.0,
            e.actor,
            e.action,
            e.entity,
            e.entity_id,
            e.changes,
            e.id
        ]);
        let mut h = Sha256::new();
        h.update(e.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(content.to_string().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn entry(actor: Option<Id>, changes: Vec<FieldChange>) -> AuditEntry {
        AuditEntry {
            id: Id::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
            tenant: Id::from_u128(7),
            seq: 42,
            at: Timestamp(1_764_000_000_123),
            actor,
            action: "import".into(),
            entity: "lead".into(),
            entity_id: Some(Id::from_u128(9)),
            changes,
            prev_hash: "ab".repeat(32),
            hash: String::new(),
        }
    }

    /// Entries stored before the hash was streamed must still verify: the same bytes are hashed.
    #[test]
    fn the_streamed_hash_equals_the_tree_hash() {
        let change = |field: &str, old: Json, new: Json| FieldChange {
            field: field.into(),
            old,
            new,
        };
        let cases = [
            entry(None, vec![]),
            entry(
                Some(Id::from_u128(3)),
                vec![
                    change("name", Json::Null, json!("Zoë \"Q\" <b>\n\t\u{1}")),
                    change("score", json!(40), json!(-7)),
                    change("value", json!(12.5), json!(1e300)),
                    change(
                        "custom",
                        json!({"z": [1, {"b": 2, "a": null}], "a": true}),
                        json!({"é": "x", "A": []}),
                    ),
                ],
            ),
        ];
        for e in &cases {
            assert_eq!(e.compute_hash(), tree_hash(e));
        }
        let mut sealed = cases[1].clone();
        sealed.seal(43, &cases[0].compute_hash());
        assert_eq!(verify_chain(&[sealed.clone()]), Ok(()));
        sealed.changes[0].new = json!("other");
        assert_eq!(verify_chain(&[sealed]), Err(43));
    }
}
