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
//!   device's audit trail and outbox to the replayed change;
//! - the change set's [`Intent`]: the use case that built it and its input, which a server replays
//!   as that use case (authorization, validation, workflows, derived fields) rather than writing
//!   the rows; `None` for change sets of use cases that are not replayable (yet), which a server
//!   refuses with [`NOT_REPLAYABLE`];
//! - for each update, the base values of the fields it changed (the values before the write), so
//!   a server whose row moved on merges field by field against them ([`merge`]).
//!
//! The push protocol ([`PushRequest`], [`PushAnswer`]) carries entries from the device's log to a
//! server and the server's answer back; see `docs/sync.md` and `docs/adr/0015-sync-replays-intents.md`.
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
use crate::error::{Error, FieldError, Result};
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
    /// For an update, the values the fields of `patch` had before the write (same keys, custom
    /// fields under `"custom"`): the base a server merges against. Empty for inserts and deletes.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub base: Map<String, Json>,
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
    /// The use case and input a server replays ([`ChangeSet::intent`]); `None` when the use case
    /// is not replayable.
    #[serde(default)]
    pub intent: Option<Intent>,
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
        if cs.received {
            return Ok(None); // the server's own rows, on a device: nothing to send back
        }
        let mut writes = Vec::new();
        for (k, w) in cs.writes.iter().enumerate() {
            let e = w.entity();
            if e.stays_local {
                continue; // derived or kept by whoever applies the change set (EntityDef::stays_local)
            }
            let write = match w {
                Write::Insert(r) => SyncWrite {
                    entity: e.name.to_owned(),
                    id: r.id,
                    op: SyncOp::Insert,
                    expected_version: 0,
                    patch: patch(None, r),
                    base: Map::new(),
                },
                Write::Update {
                    record,
                    expected_version,
                } => {
                    let old = match staged(&cs.writes[..k], e, record.id) {
                        Some(r) => Some(r.clone()),
                        None => stored(e, record.id)?,
                    };
                    let patch = patch(old.as_ref(), record);
                    let base = base_of(&patch, old.as_ref());
                    SyncWrite {
                        entity: e.name.to_owned(),
                        id: record.id,
                        op: SyncOp::Update,
                        expected_version: *expected_version,
                        patch,
                        base,
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
                    base: Map::new(),
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
            intent: cs.intent.clone(),
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

/// The values `old` had for the fields of `patch` (custom fields under `"custom"`).
fn base_of(patch: &Map<String, Json>, old: Option<&Record>) -> Map<String, Json> {
    let Some(old) = old else {
        return Map::new();
    };
    let mut out = Map::new();
    for (k, v) in patch {
        if k == "custom" {
            let keys = v.as_object().into_iter().flat_map(|o| o.keys());
            let custom: Map<String, Json> = keys
                .map(|c| (c.clone(), old.custom.get(c).map_or(Json::Null, Value::to_json)))
                .collect();
            out.insert(k.clone(), Json::Object(custom));
        } else {
            out.insert(k.clone(), old.get(k).map_or(Json::Null, Value::to_json));
        }
    }
    out
}

/// What a logged change set replays as: the use case that built it and its input, as the caller
/// gave it (a server validates it again). Serialised with a `use_case` tag (`create`, `update`,
/// `delete`, `transition`, `convert`). New use cases become replayable by adding a variant here and a branch
/// in [`crate::service::Service::replay_push`]; a server that does not know a device's variant
/// refuses the entry ([`NOT_REPLAYABLE`]) and goes on with the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "use_case", rename_all = "snake_case")]
pub enum Intent {
    /// [`crate::service::Service::create`], of the record with id `id` (a server creates it with
    /// the same id, so the device's later writes of the record find it).
    Create {
        entity: String,
        id: Id,
        input: Map<String, Json>,
    },
    /// [`crate::service::Service::update`].
    Update {
        entity: String,
        id: Id,
        expected_version: u64,
        patch: Map<String, Json>,
    },
    /// [`crate::service::Service::delete`].
    Delete {
        entity: String,
        id: Id,
        expected_version: u64,
    },
    /// [`crate::service::Service::transition`].
    Transition {
        entity: String,
        id: Id,
        expected_version: u64,
        name: String,
        input: Map<String, Json>,
    },
    /// [`crate::service::Service::convert_lead`], with the ids the new contact (and company) got
    /// (a server creates them under the same ids).
    Convert {
        lead: Id,
        expected_version: u64,
        #[serde(default)]
        create_company: bool,
        contact: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        company: Option<Id>,
    },
    /// [`crate::service::Service::attach`] of the attachment `attachment` to the record
    /// `entity`/`id`; `input` carries the content's `sha256` and `size`. The bytes go up before
    /// the push (`PUT /api/v1/sync/blobs/{sha256}`, [`crate::service::SyncTransport::upload`]); a
    /// server without them answers the entry pending.
    Attach {
        entity: String,
        id: Id,
        attachment: Id,
        input: crate::service::AttachInput,
    },
    /// [`crate::service::Service::delete_attachment`].
    Detach { attachment: Id },
    /// A use case this build does not know (a newer device's): decoded so that the rest of the
    /// push is replayed, refused as [`NOT_REPLAYABLE`]. Never logged by this build.
    #[serde(other)]
    Unknown,
}

impl Intent {
    /// The use case's name (`create`, `update`, `delete`, `transition`, `convert`).
    pub fn use_case(&self) -> &'static str {
        match self {
            Intent::Create { .. } => "create",
            Intent::Update { .. } => "update",
            Intent::Delete { .. } => "delete",
            Intent::Transition { .. } => "transition",
            Intent::Convert { .. } => "convert",
            Intent::Attach { .. } => "attach",
            Intent::Detach { .. } => "detach",
            Intent::Unknown => "unknown",
        }
    }
}

/// The version of the push protocol's messages this build speaks.
pub const PROTOCOL: u32 = 1;

/// The schema version change sets are written under by this build (the highest `since` of the
/// entity declarations; a store's `SCHEMA_VERSION` is the same number).
pub const SCHEMA_VERSION: u32 = 17;

/// The oldest schema version whose change sets a server of this build replays: logs written
/// before version 16 carry no [`Intent`], so they cannot be replayed as use cases.
pub const OLDEST_REPLAYABLE: u32 = 16;

/// Most entries one push carries.
pub const MAX_PUSH_ENTRIES: usize = 1000;

/// The longest device id.
pub const MAX_DEVICE_ID: usize = 128;

/// Field error code of an entry whose change set carries no intent a server can replay.
pub const NOT_REPLAYABLE: &str = "not_replayable";

/// Field error code (on `intent.input.sha256`) of an attach whose bytes the server does not have
/// yet: the entry is answered pending, not refused, so the device uploads them and pushes again.
pub const BYTES_MISSING: &str = "bytes_missing";

/// Field error code of a change-set id pushed again with other content.
pub const CHANGE_SET_REUSED: &str = "change_set_reused";

/// A device's upload: change sets from its log, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The protocol version ([`PROTOCOL`]).
    pub protocol: u32,
    /// Which device sends (the app's own stable id for the installation; 1 to
    /// [`MAX_DEVICE_ID`] characters).
    pub device: String,
    /// The schema version the change sets were written under ([`SCHEMA_VERSION`] of the device's
    /// build).
    pub schema_version: u32,
    /// Entries of the device's log, in `seq` order (at most [`MAX_PUSH_ENTRIES`]).
    pub entries: Vec<SyncEntry>,
}

impl PushRequest {
    /// Checks the request's own form (not its entries, which are answered one by one): the device
    /// id and the number of entries. Every failing field at once.
    pub fn check(&self) -> Result<()> {
        let mut errs = Vec::new();
        if self.device.is_empty() || self.device.chars().count() > MAX_DEVICE_ID {
            errs.push(FieldError::new(
                "device",
                crate::error::codes::TOO_LONG,
                format!("a device id is 1 to {MAX_DEVICE_ID} characters"),
            ));
        }
        if self.entries.len() > MAX_PUSH_ENTRIES {
            errs.push(FieldError::new(
                "entries",
                crate::error::codes::TOO_LONG,
                format!("at most {MAX_PUSH_ENTRIES} entries per push"),
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errs))
        }
    }
}

/// A server's answer to a push.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum PushAnswer {
    /// One result per entry of the request, in its order.
    Results { results: Vec<PushResult> },
    /// The server does not replay change sets of the request's schema version or protocol: the
    /// device must upgrade (or the server is older than the device). Nothing was touched; the
    /// device keeps its pending log.
    Upgrade {
        protocol: u32,
        oldest_schema_version: u32,
        newest_schema_version: u32,
    },
}

/// The answer for one change set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    pub change_set: Id,
    /// The entry's `seq` in the device's log.
    pub seq: u64,
    pub outcome: Outcome,
    /// For an answered change set (not `pending`): the server's current state of the records it
    /// wrote, as the device's user may read them, which the device takes
    /// ([`crate::service::Service::apply_push_answer`]): a refused change is undone, an accepted
    /// one gets the server's stamps and derived fields. Read after the whole push and when the
    /// answer is sent (a retried push gets the state of that moment, not of the first answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upserts: Vec<Pulled>,
    /// For an answered change set: the records it wrote that the user cannot read on the server
    /// (never created there, deleted, out of scope), which the device forgets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removals: Vec<Removed>,
}

/// What the server did with one change set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Replayed as the device ran it: the rows were where the device left them.
    Accepted,
    /// Replayed onto rows the server had changed since the device's base: the device's changes
    /// were merged field by field; `kept_server` names the fields both sides changed, which kept
    /// the server's value (empty when no field collided).
    Merged { kept_server: Vec<KeptField> },
    /// Refused with the use case's error; nothing of the change set was written.
    Rejected { error: Refusal },
    /// The same change set is being replayed by another request (or a replay was interrupted
    /// before its answer was stored): push it again later. The device keeps it and every later
    /// entry pending.
    Pending,
}

/// A field both the device and the server changed: the server's value stayed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptField {
    pub entity: String,
    pub id: Id,
    /// The field (`custom.x` for a custom field).
    pub field: String,
    /// The value the device wrote.
    pub device: Json,
    /// The server's value, which stays.
    pub server: Json,
}

/// Why a server refused a change set: the use case's error as every face shows it
/// ([`Error::details`]): its `code`, `message`, and the kind's members (`errors` for validation,
/// `action`, `entity`, `fields` for forbidden, `expected`, `actual` for conflict, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    #[serde(flatten)]
    pub details: Map<String, Json>,
}

impl Refusal {
    /// The refusal of an error.
    pub fn of(e: &Error) -> Refusal {
        let mut details = match serde_json::to_value(e.details()) {
            Ok(Json::Object(m)) => m,
            _ => Map::new(),
        };
        let code = details.remove("code").and_then(|c| c.as_str().map(str::to_owned));
        let message = details.remove("message").and_then(|c| c.as_str().map(str::to_owned));
        Refusal {
            code: code.unwrap_or_else(|| e.code().to_owned()),
            message: message.unwrap_or_else(|| e.to_string()),
            details,
        }
    }

    /// The field errors of a validation refusal (a workflow guard's reason is one of them).
    pub fn field_errors(&self) -> Vec<FieldError> {
        self.details
            .get("errors")
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default()
    }
}

/// Does a device pull records of this type? The types the generic use cases create, read, update
/// and delete under a role ([`Exposure::Public`]): the ones a device's change sets replay. Types
/// written only by their own use cases (organizations, API keys, webhooks, check-ins, stage
/// history) and internal ones (credentials, sessions, attachments, the device's own refusals) do
/// not sync.
pub fn syncable(def: &EntityDef) -> bool {
    def.exposure == crate::schema::Exposure::Public
}

/// Every syncable type, in declaration order.
pub fn syncable_types() -> Vec<&'static EntityDef> {
    crate::entity::all().into_iter().filter(|d| syncable(d)).collect()
}

/// Most changes (records walked or audit entries read) one [`PullPage`] covers.
pub const MAX_PULL_LIMIT: u32 = 1000;

/// Changes per pull page when the device names no limit.
pub const DEFAULT_PULL_LIMIT: u32 = 200;

/// Field error code of a pull cursor that does not decode (on the field `cursor`).
pub const INVALID_CURSOR: &str = "invalid_cursor";

/// One page of what changed on the server for a device's user ([`crate::service::Service::pull`]):
/// records to write (upserts) and records to forget (removals), the cursor to ask with next, and
/// whether more is waiting. See `docs/sync.md` and `docs/adr/0017-pull-cursor.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullPage {
    /// The protocol version ([`PROTOCOL`]).
    pub protocol: u32,
    /// This page starts a snapshot: the device forgets every record it pulled before (not its
    /// pending log), then applies the page. Set on the first pull (no cursor) and when the
    /// cursor's user has other roles, teams or scope than when it was issued.
    pub reset: bool,
    /// Records the user may read, each as a get returns it to that user (redacted to the fields
    /// they may read), in their current state.
    pub upserts: Vec<Pulled>,
    /// Records the device must forget: deleted, or no longer readable by the user (moved out of
    /// their scope). Also the children of a record that left the scope.
    pub removals: Vec<Removed>,
    /// The cursor to pull with next (opaque).
    pub next: String,
    /// More is waiting: pull again with `next` right away. `false`: the device is up to date
    /// (pull with `next` later).
    pub more: bool,
}

/// A record of a [`PullPage`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pulled {
    pub entity: String,
    /// The record's JSON ([`Record::to_json`] of what a get returns to the user).
    pub record: Json,
}

/// The types a [`Provision`] carries, referenced ones first.
pub fn provisioned_types() -> [&'static EntityDef; 6] {
    use crate::entity::{CUSTOM_FIELD, LOCATION, ORGANIZATION, ROLE, TEAM, USER};
    [&ORGANIZATION, &LOCATION, &TEAM, &ROLE, &USER, &CUSTOM_FIELD]
}

/// What a new device needs before its first pull ([`crate::service::Service::provision`]): the
/// organization, the user (with its team, location and custom role) and the tenant's custom
/// field definitions, as the server has them. A device writes it into its empty store with
/// [`crate::service::Service::apply_provision`], then pulls as [`Provision::user`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provision {
    /// The protocol version ([`PROTOCOL`]).
    pub protocol: u32,
    /// The server's schema version ([`SCHEMA_VERSION`] of its build): a device of an older one
    /// should upgrade before it syncs.
    pub schema_version: u32,
    /// The organization's id.
    pub tenant: Id,
    /// The signed-in user the device acts as.
    pub user: Id,
    /// The records, referenced ones first.
    pub records: Vec<Pulled>,
}

/// A record the device forgets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub entity: String,
    pub id: Id,
}

/// The three-way merge of an update's input onto the server's row (see `docs/sync.md`).
///
/// `input` is the patch the device's use case was given, `write` the row write it logged (its
/// `patch` and `base`), `server` the row as the server has it now. For each field of `input`:
/// - the device did not change it (not in `write.patch`): left out (the device's write was a
///   no-op there; the server's value stays);
/// - the server's value still equals the base: kept (the device's change applies);
/// - the server's value equals the device's new value: left out (both agree);
/// - otherwise both changed it: left out, and named in the returned list (the server's value
///   stays).
///
/// Derived fields are left out (the replayed use case recomputes them). Fields the row does not
/// declare are kept, so the use case reports them. Returns the patch to replay and the fields
/// that kept the server's value.
pub fn merge(input: &Map<String, Json>, write: &SyncWrite, server: &Record) -> (Map<String, Json>, Vec<KeptField>) {
    let mut out = Map::new();
    let mut kept = Vec::new();
    let mut decide = |path: String, device_new: Option<&Json>, base: Option<&Json>, server_now: Json| -> bool {
        let (Some(new), Some(base)) = (device_new, base) else {
            return false;
        };
        if server_now == *base {
            return true;
        }
        if server_now != *new {
            kept.push(KeptField {
                entity: server.entity.name.to_owned(),
                id: server.id,
                field: path,
                device: new.clone(),
                server: server_now,
            });
        }
        false
    };
    for (k, v) in input {
        if k == "custom" {
            let Some(obj) = v.as_object() else {
                out.insert(k.clone(), v.clone());
                continue;
            };
            let mut custom = Map::new();
            for (c, cv) in obj {
                let new = write.patch.get("custom").and_then(|p| p.get(c));
                let base = write.base.get("custom").and_then(|p| p.get(c));
                let now = server.custom.get(c).map_or(Json::Null, Value::to_json);
                if decide(format!("custom.{c}"), new, base, now) {
                    custom.insert(c.clone(), cv.clone());
                }
            }
            if !custom.is_empty() {
                out.insert(k.clone(), Json::Object(custom));
            }
            continue;
        }
        match server.entity.def(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(f) if f.derived => {}
            Some(_) => {
                let now = server.get(k).map_or(Json::Null, Value::to_json);
                if decide(k.clone(), write.patch.get(k), write.base.get(k), now) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    (out, kept)
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
    fn a_use_case_this_build_does_not_know_decodes_as_unknown() {
        let known: Intent = serde_json::from_value(json!({"use_case": "convert", "lead": Id::from_u128(3),
            "expected_version": 2, "contact": Id::from_u128(4)}))
        .unwrap();
        assert_eq!(known.use_case(), "convert");
        let newer: Intent = serde_json::from_value(json!({"use_case": "book_crew", "job": 7})).unwrap();
        assert_eq!(newer, Intent::Unknown);
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

    #[test]
    fn rows_that_stay_local_travel_in_no_entry() {
        let r = lead();
        let mut cs = ChangeSet::new(r.tenant).with_origin(Id::from_u128(9), None, Timestamp(7));
        for def in crate::entity::all().into_iter().filter(|d| d.stays_local) {
            cs.writes.push(Write::Insert(Record::empty(
                def,
                r.tenant,
                Id::from_u128(3),
                Timestamp(7),
            )));
        }
        let local: Vec<_> = cs.writes.iter().map(|w| w.entity().name).collect();
        assert_eq!(local, ["stage_change", "routing_cursor", "sync_rejection"]);
        assert_eq!(SyncEntry::for_change_set(&cs, |_, _| Ok(None)).unwrap(), None);
        cs.writes.push(Write::Insert(r));
        let e = SyncEntry::for_change_set(&cs, |_, _| Ok(None)).unwrap().unwrap();
        assert_eq!(e.writes.iter().map(|w| w.entity.as_str()).collect::<Vec<_>>(), ["lead"]);
    }

    fn write_of(old: &Record, new: &Record) -> SyncWrite {
        let patch = patch(Some(old), new);
        let base = base_of(&patch, Some(old));
        SyncWrite {
            entity: "lead".into(),
            id: old.id,
            op: SyncOp::Update,
            expected_version: 1,
            patch,
            base,
        }
    }

    #[test]
    fn updates_log_the_base_values_of_what_they_changed() {
        let old = lead();
        let mut new = old.clone();
        new.set("first_name", "Anne");
        new.set("notes", "gate");
        new.custom.insert("roof".into(), Value::Text("slate".into()));
        let w = write_of(&old, &new);
        assert_eq!(
            Json::Object(w.base.clone()),
            json!({"first_name": "Ann", "notes": null, "custom": {"roof": "tile"}})
        );
        let mut r = Record::empty(&LEAD, Id::from_u128(1), Id::from_u128(2), Timestamp(5));
        r.set("first_name", "x");
        let mut cs = ChangeSet::new(r.tenant);
        cs.writes.push(Write::Insert(r));
        let e = SyncEntry::for_change_set(&cs, |_, _| Ok(None)).unwrap().unwrap();
        assert!(e.writes[0].base.is_empty(), "inserts have no base");
        let j = serde_json::to_value(&e).unwrap();
        assert!(j["writes"][0].get("base").is_none(), "an empty base is not serialised");
        let back: SyncEntry = serde_json::from_value(j).unwrap();
        assert_eq!(back, e, "entries without intent or base read back (older logs)");
    }

    #[test]
    fn merge_takes_the_devices_fields_where_the_server_kept_the_base() {
        let old = lead();
        let mut dev = old.clone();
        dev.set("first_name", "Anne");
        dev.set("notes", "device");
        dev.set("city", "York");
        dev.custom.insert("roof".into(), Value::Text("slate".into()));
        let w = write_of(&old, &dev);
        let mut server = old.clone();
        server.set("notes", "server");
        server.set("city", "York");
        server.set("phone", "+15550001");
        server.custom.insert("roof".into(), Value::Text("metal".into()));
        let input = obj(json!({"first_name": " Anne ", "notes": "device", "city": "York",
            "last_name": "Same", "score": 99, "bogus": 1, "custom": {"roof": "slate"}}));
        let (patch, kept) = merge(&input, &w, &server);
        assert_eq!(
            Json::Object(patch),
            json!({"first_name": " Anne ", "bogus": 1}),
            "device-only change kept as input; same-on-both, unchanged-on-device and derived dropped; unknown left for the use case"
        );
        let kept: Vec<_> = kept
            .iter()
            .map(|k| (k.field.as_str(), k.device.clone(), k.server.clone()))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("custom.roof", json!("slate"), json!("metal")),
                ("notes", json!("device"), json!("server"))
            ]
        );
    }

    fn obj(j: Json) -> Map<String, Json> {
        j.as_object().cloned().unwrap()
    }

    #[test]
    fn refusals_carry_the_errors_details_both_ways() {
        let e = Error::Validation(vec![FieldError::new("status", "invalid_transition", "cannot cancel")]);
        let r = Refusal::of(&e);
        assert_eq!(
            (r.code.as_str(), r.field_errors()),
            ("validation", e.field_errors().to_vec())
        );
        let c = Refusal::of(&Error::Conflict {
            entity: "lead".into(),
            id: "x".into(),
            expected: 1,
            actual: 3,
        });
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!((j["code"].clone(), j["actual"].clone()), (json!("conflict"), json!(3)));
        assert_eq!(serde_json::from_value::<Refusal>(j).unwrap(), c);
        let a = PushAnswer::Results {
            results: vec![PushResult {
                change_set: Id::from_u128(4),
                seq: 2,
                outcome: Outcome::Rejected { error: c },
                upserts: Vec::new(),
                removals: vec![Removed {
                    entity: "lead".into(),
                    id: Id::from_u128(9),
                }],
            }],
        };
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(
            (j["answer"].clone(), j["results"][0]["outcome"]["outcome"].clone()),
            (json!("results"), json!("rejected"))
        );
        assert_eq!(serde_json::from_value::<PushAnswer>(j).unwrap(), a);
    }

    #[test]
    fn push_requests_check_their_form() {
        let mut r = PushRequest {
            protocol: PROTOCOL,
            device: String::new(),
            schema_version: SCHEMA_VERSION,
            entries: Vec::new(),
        };
        let e = r.check().unwrap_err();
        assert_eq!(e.field_errors()[0].path, "device");
        r.device = "d".repeat(MAX_DEVICE_ID);
        assert!(r.check().is_ok());
        r.device.push('x');
        assert!(r.check().is_err());
    }

    #[test]
    fn the_schema_version_is_the_declarations() {
        let declared = crate::entity::all()
            .iter()
            .flat_map(|d| std::iter::once(d.since).chain(d.fields.iter().map(|f| f.since)))
            .max();
        assert_eq!(declared, Some(SCHEMA_VERSION));
    }
}
