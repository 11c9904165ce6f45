//! Sync, both ends, sans I/O: the device reads and acknowledges its change-set log
//! ([`crate::sync`]), prepares a push and applies the server's answer; the server replays a push
//! through the real use cases (see `docs/sync.md` and `docs/adr/0015-sync-replays-intents.md`).

use super::Service;
use super::receive::Received;
use super::settling::Settling;
use crate::access::Actor;
use crate::blob::is_sha256;
use crate::change::ChangeSet;
use crate::entity::SYNC_REJECTION;
use crate::entity::attachment::ATTACHMENT;
use crate::entity::sync_rejection::fields as rej;
use crate::error::{Error, Result};
use crate::idempotency::{self, Answer, Settle};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::sync::{
    BYTES_MISSING, CHANGE_SET_REUSED, Intent, KeptField, NOT_REPLAYABLE, OLDEST_REPLAYABLE, Outcome, PROTOCOL,
    PushAnswer, PushRequest, PushResult, Refusal, SCHEMA_VERSION, SyncEntry, SyncOp, merge,
};
use crate::value::{Id, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Most entries one [`Service::pending_changes`] call returns.
pub const MAX_SYNC_BATCH: u32 = 1000;

/// How long a server remembers its answer to a change set (and so answers a retried push
/// without replaying it again): 30 days.
pub const SYNC_ANSWER_TTL_SECS: i64 = 30 * 24 * 3600;

/// How long a replay holds a change set's id before it has answered: a replay that died before
/// committing leaves its claim, which expires after this and the change set is replayed again
/// (ten minutes; one change set's replay takes milliseconds).
pub const SYNC_CLAIM_LEASE_SECS: i64 = 600;

/// Most rejections one [`Service::sync_rejections`] call returns.
pub const MAX_REJECTIONS: u32 = 1000;

/// How many times a replay re-reads a row that another write moved on between its read and its
/// write before it reports the conflict.
const REPLAY_ATTEMPTS: usize = 3;

/// What applying a push answer did on the device ([`Service::apply_push_answer`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushApplied {
    /// Entries the server accepted as they were.
    pub accepted: u32,
    /// Entries the server merged onto rows it had changed.
    pub merged: u32,
    /// Entries the server refused (now listed by [`Service::sync_rejections`]).
    pub rejected: u32,
    /// Entries still pending: answered `pending`, not answered, or after one of those.
    pub pending: u32,
    /// The server asked the device to upgrade; nothing was marked.
    pub upgrade: bool,
    /// Fields of merged entries that kept the server's value (for the app to show).
    pub kept_server: Vec<KeptField>,
    /// Log entries removed (marked synced).
    pub synced: u64,
}

/// A change set of this device that a server refused, as [`Service::sync_rejections`] lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncRejection {
    pub change_set: Id,
    /// Its position in the device's log.
    pub seq: u64,
    /// When the use case ran on the device.
    pub logged_at: Timestamp,
    pub error: Refusal,
    /// The refused entry: its use case, input and row writes.
    pub entry: SyncEntry,
}

impl<S: Store> Service<S> {
    /// The tenant's change sets logged on this device and not yet marked synced, with `seq >
    /// after_seq`, oldest first, at most `limit` (capped at [`MAX_SYNC_BATCH`]). Empty unless the
    /// store was opened with its sync log on.
    ///
    /// Any active user of the tenant may read and acknowledge the log: it is the device's outgoing
    /// queue, handed unredacted to the uploader because a server must replay it exactly, and the
    /// server authorizes each change set as its own actor when it replays it. (The redacted view of
    /// what changed is [`Service::events_since`].)
    pub async fn pending_changes(&self, actor: &Actor, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        self.store
            .pending_changes(actor.tenant, after_seq, limit.clamp(1, MAX_SYNC_BATCH))
            .await
    }

    /// Removes the entries with `seq <= up_to_seq` once a server has acknowledged them; returns how
    /// many were removed. Idempotent.
    pub async fn mark_synced(&self, actor: &Actor, up_to_seq: u64) -> Result<u64> {
        self.store.mark_synced(actor.tenant, up_to_seq).await
    }

    // ---- the device end ----

    /// The device's next push: its oldest pending log entries (at most `limit`, capped at
    /// [`MAX_SYNC_BATCH`]), under this build's protocol and schema version. `device` is the app's
    /// stable id for this installation. Reads only; a lost push is prepared again the same way.
    pub async fn prepare_push(&self, actor: &Actor, device: &str, limit: u32) -> Result<PushRequest> {
        let entries = self.pending_changes(actor, 0, limit).await?;
        let req = PushRequest {
            protocol: PROTOCOL,
            device: device.to_owned(),
            schema_version: SCHEMA_VERSION,
            entries,
        };
        req.check()?;
        Ok(req)
    }

    /// Applies a server's answer to `req` on the device: walking the request's entries in order,
    /// accepted and merged ones are done, rejected ones are recorded (listed by
    /// [`Service::sync_rejections`]) and done too, so one refusal never blocks the rest of the
    /// queue; the records the done ones wrote take the server's state (the answer carries it: see
    /// [`PushResult::upserts`]), so a refused change is undone; the first entry answered `pending` (or not answered) and every later one stay
    /// pending. The done prefix is then marked synced. Idempotent: applying the same answer again
    /// records nothing twice. An `upgrade` answer changes nothing.
    pub async fn apply_push_answer(
        &self,
        actor: &Actor,
        req: &PushRequest,
        answer: &PushAnswer,
    ) -> Result<PushApplied> {
        let mut out = PushApplied::default();
        let results = match answer {
            PushAnswer::Upgrade { .. } => {
                out.upgrade = true;
                out.pending = u32::try_from(req.entries.len()).unwrap_or(u32::MAX);
                return Ok(out);
            }
            PushAnswer::Results { results } => results,
        };
        let mut done_seq = None;
        let mut rejections = Vec::new();
        let (mut restore, mut forget) = (Vec::new(), Vec::new());
        for (i, entry) in req.entries.iter().enumerate() {
            let found = results
                .iter()
                .find(|r| r.change_set == entry.change_set && r.seq == entry.seq);
            if let Some(r) = found.filter(|r| !matches!(r.outcome, Outcome::Pending)) {
                restore.extend(r.upserts.iter().cloned());
                forget.extend(r.removals.iter().cloned());
            }
            match found.map(|r| &r.outcome) {
                None | Some(Outcome::Pending) => {
                    out.pending = u32::try_from(req.entries.len() - i).unwrap_or(u32::MAX);
                    break;
                }
                Some(Outcome::Accepted) => out.accepted += 1,
                Some(Outcome::Merged { kept_server }) => {
                    out.merged += 1;
                    out.kept_server.extend(kept_server.iter().cloned());
                }
                Some(Outcome::Rejected { error }) => {
                    out.rejected += 1;
                    rejections.push((entry, error));
                }
            }
            done_seq = Some(entry.seq);
        }
        let mut writes = Vec::new();
        let now = self.now();
        for (entry, error) in rejections {
            if self
                .store
                .get(actor.tenant, &SYNC_REJECTION, entry.change_set)
                .await?
                .is_some()
            {
                continue; // recorded by an earlier application of the same answer
            }
            let mut r = Record::empty(&SYNC_REJECTION, actor.tenant, entry.change_set, now);
            r.set(rej::SEQ, i64::try_from(entry.seq).unwrap_or(i64::MAX));
            r.set(rej::LOGGED_AT, entry.at);
            r.set(rej::CODE, error.code.as_str());
            r.set(rej::ERROR, Value::Json(to_json(error)?));
            r.set(rej::ENTRY, Value::Json(to_json(entry)?));
            writes.push(crate::change::Write::Insert(r));
        }
        // The answered change sets' rows take the server's state (a refused change is undone,
        // an accepted one gets the server's stamps and derived fields), with the records of
        // the refusals, in one change set: entries up to `done_seq` are done, their rows no
        // longer pending (a row a later, still queued entry changes stays as it is).
        let batch = Received {
            upserts: &restore,
            removals: &forget,
            reset: false,
            cursor: None,
            finished: done_seq.unwrap_or(0),
        };
        if !(writes.is_empty() && restore.is_empty() && forget.is_empty()) {
            self.receive(actor, &batch, writes).await?;
        }
        if let Some(seq) = done_seq {
            out.synced = self.mark_synced(actor, seq).await?;
        }
        Ok(out)
    }

    /// The change sets of this device that a server refused, oldest first (at most `limit`, capped
    /// at [`MAX_REJECTIONS`]), for the app to list and show with their reasons.
    pub async fn sync_rejections(&self, actor: &Actor, limit: u32) -> Result<Vec<SyncRejection>> {
        let q = StoreQuery::by_id(Filter::All, limit.clamp(1, MAX_REJECTIONS));
        let mut out = Vec::new();
        for r in self.store.query(actor.tenant, &SYNC_REJECTION, &q).await? {
            let bad = || Error::corrupt(format!("sync rejection {} does not decode", r.id));
            let json = |f: &str| r.get(f).map(Value::to_json).ok_or_else(bad);
            out.push(SyncRejection {
                change_set: r.id,
                seq: r.get(rej::SEQ).and_then(Value::as_i64).map_or(0, |s| s.max(0) as u64),
                logged_at: r.get(rej::LOGGED_AT).and_then(Value::as_timestamp).ok_or_else(bad)?,
                error: serde_json::from_value(json(rej::ERROR)?).map_err(|_| bad())?,
                entry: serde_json::from_value(json(rej::ENTRY)?).map_err(|_| bad())?,
            });
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    /// Forgets a listed rejection (the app showed it, the user dealt with it). Idempotent.
    pub async fn dismiss_sync_rejection(&self, actor: &Actor, change_set: Id) -> Result<()> {
        let Some(r) = self.store.get(actor.tenant, &SYNC_REJECTION, change_set).await? else {
            return Ok(());
        };
        let mut cs = ChangeSet::new(actor.tenant);
        cs.writes.push(crate::change::Write::Delete {
            entity: &SYNC_REJECTION,
            id: r.id,
            expected_version: r.version,
        });
        self.apply(cs).await?;
        Ok(())
    }

    // ---- the server end ----

    /// Replays a device's push as `actor` (the device's user, authenticated by the face): each
    /// change set through the use case that built it on the device ([`Intent`]), in order, each in
    /// its own transaction, answered accepted, merged or rejected (see `docs/sync.md` for the
    /// conflict table). A change set answered before (by its id) is answered the same way again
    /// without being replayed. A protocol or schema version this build does not replay is answered
    /// [`PushAnswer::Upgrade`] with nothing touched. A malformed request (device id, too many
    /// entries) is a validation error. A failure underneath (the store) stops the push with that
    /// error; the change sets answered before it keep their answers, so a retry continues.
    pub async fn replay_push(&self, actor: &Actor, req: &PushRequest) -> Result<PushAnswer> {
        // The request's own form first: a malformed push is refused whatever its version.
        req.check()?;
        if req.protocol != PROTOCOL || !(OLDEST_REPLAYABLE..=SCHEMA_VERSION).contains(&req.schema_version) {
            return Ok(PushAnswer::Upgrade {
                protocol: PROTOCOL,
                oldest_schema_version: OLDEST_REPLAYABLE,
                newest_schema_version: SCHEMA_VERSION,
            });
        }
        let caller = match actor.user_id {
            Some(u) => format!("sync:{u}"),
            None => "sync:system".to_owned(),
        };
        let mut results = Vec::with_capacity(req.entries.len());
        // After an entry answered pending the rest wait too, unreplayed: the device keeps them
        // queued behind it, and a later change set may build on the one that waits (a photo
        // deleted after the attach whose bytes have not arrived).
        let mut waiting = false;
        for entry in &req.entries {
            let outcome = match waiting {
                true => Outcome::Pending,
                false => self.replay_remembered(actor, &caller, entry).await?,
            };
            waiting |= matches!(outcome, Outcome::Pending);
            results.push(PushResult {
                change_set: entry.change_set,
                seq: entry.seq,
                outcome,
                upserts: Vec::new(),
                removals: Vec::new(),
            });
        }
        // The rows of every answered change set as they are after the whole push (a later entry
        // may have changed them), for the device to hold the server's state of what it changed.
        for (r, entry) in results.iter_mut().zip(&req.entries) {
            if !matches!(r.outcome, Outcome::Pending) {
                (r.upserts, r.removals) = self.current_rows(actor, entry).await?;
            }
        }
        Ok(PushAnswer::Results { results })
    }

    /// One entry, answered once: the remembered answer if there is one, else the replay's, stored
    /// by the replay's own transaction (see [`Settling`]). The claim on the change set's id lasts
    /// [`SYNC_CLAIM_LEASE_SECS`] until answered: a replay that died before committing leaves a claim
    /// without an answer, which expires, and a later push replays the change set again.
    async fn replay_remembered(&self, actor: &Actor, caller: &str, entry: &SyncEntry) -> Result<Outcome> {
        let body = to_json(entry)?.to_string();
        let fingerprint = idempotency::fingerprint(&[body.as_bytes()]);
        let key = entry.change_set.to_string();
        let now = self.now();
        let lease = Timestamp(now.0.saturating_add(SYNC_CLAIM_LEASE_SECS * 1_000_000));
        let found = self
            .store
            .idempotency_claim(actor.tenant, caller, &key, &fingerprint, now, lease)
            .await?;
        if let Some(found) = found {
            if found.fingerprint != fingerprint {
                return Ok(rejected(&Error::field(
                    "change_set",
                    CHANGE_SET_REUSED,
                    "this change set id was pushed before with other content",
                )));
            }
            return match found.answer {
                Some(a) => decode_answer(&a, &key),
                None => Ok(Outcome::Pending),
            };
        }
        let answering = Answering {
            caller: caller.to_owned(),
            key: key.clone(),
            expires_at: Timestamp(now.0.saturating_add(SYNC_ANSWER_TTL_SECS * 1_000_000)),
        };
        let replayer = self.over(Settling::new(&self.store));
        let result = replayer.replay_entry(actor, entry, &answering).await;
        if let Some(stored) = replayer.store.settled()? {
            // The writes committed with their answer: that answer is the outcome, whatever came after.
            return decode_answer(&stored.answer, &key);
        }
        let outcome = match result {
            Ok(o) => o,
            // Another run holds the claim now (this one outlived its lease): its answer counts.
            Err(e) if idempotency::is_claim_lost(&e) => return Ok(Outcome::Pending),
            // An attach whose bytes have not arrived: nothing written, the id released, pending.
            Err(e) if waiting_for_bytes(&e) => {
                self.store.idempotency_settle(actor.tenant, caller, &key, None).await?;
                return Ok(Outcome::Pending);
            }
            Err(e) if e.is_storage_failure() => {
                // Nothing was written: release the id so a retry replays it.
                self.store.idempotency_settle(actor.tenant, caller, &key, None).await?;
                return Err(e);
            }
            Err(e) => rejected(&e),
        };
        // Nothing written (a refusal, nothing left to change): the answer alone.
        let mut cs = ChangeSet::new(actor.tenant);
        cs.settle = Some(answering.settle(&outcome)?);
        match self.apply(cs).await {
            Err(e) if idempotency::is_claim_lost(&e) => return Ok(Outcome::Pending),
            other => {
                other?;
            }
        }
        Ok(outcome)
    }
}

/// Where a replay's answer goes: the claimed change-set id, and how long the answer is kept.
struct Answering {
    caller: String,
    key: String,
    expires_at: Timestamp,
}

impl Answering {
    fn settle(&self, outcome: &Outcome) -> Result<Settle> {
        Ok(Settle {
            caller: self.caller.clone(),
            key: self.key.clone(),
            answer: Answer {
                status: 200,
                headers: Vec::new(),
                body: to_json(outcome)?.to_string(),
            },
            expires_at: self.expires_at,
        })
    }
}

impl<S: Store> Service<Settling<'_, S>> {
    /// The answer the use case's change set stores if it commits.
    fn answer_with(&self, answering: &Answering, outcome: &Outcome) -> Result<()> {
        self.store.expect(answering.settle(outcome)?)
    }

    /// Replays one entry as its use case; an error is the entry's refusal. Before running the use
    /// case it names the answer its change set stores (the outcome is known once the server's row is
    /// read).
    async fn replay_entry(&self, actor: &Actor, entry: &SyncEntry, answering: &Answering) -> Result<Outcome> {
        if entry.tenant != actor.tenant || entry.actor != actor.user_id {
            // A device pushes its own user's change sets only.
            return Err(Error::forbidden("replay", "change_set", vec!["actor".into()]));
        }
        let not_replayable = || {
            Error::field(
                "intent",
                NOT_REPLAYABLE,
                "this change set's use case cannot be replayed on the server",
            )
        };
        let Some(intent) = &entry.intent else {
            return Err(not_replayable());
        };
        match intent {
            // A newer device's use case: the rest of the push goes on.
            Intent::Unknown => Err(not_replayable()),
            Intent::Create { entity, id, input } => {
                let def = self.entity(entity)?;
                if let Some(cur) = self.store.get(actor.tenant, def, *id).await? {
                    // The id is taken (the same record created twice, or a clash of ids).
                    return Err(Error::Conflict {
                        entity: def.name.into(),
                        id: id.to_string(),
                        expected: 0,
                        actual: cur.version,
                    });
                }
                self.answer_with(answering, &Outcome::Accepted)?;
                self.create_as(actor, def, Some(*id), input).await?;
                Ok(Outcome::Accepted)
            }
            Intent::Update {
                entity,
                id,
                expected_version,
                patch,
            } => {
                let def = self.entity(entity)?;
                // Also when the merge leaves nothing to write: the answer is the user's to get.
                actor.authorize(def, crate::access::Action::Update)?;
                let write = entry
                    .writes
                    .iter()
                    .find(|w| w.op == SyncOp::Update && w.entity == def.name && w.id == *id);
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    // Deleted on the server (or out of the user's sight): not found.
                    let cur = self.visible(actor, def, *id).await?;
                    let result = if cur.version == *expected_version {
                        self.answer_with(answering, &Outcome::Accepted)?;
                        self.update(actor, entity, *id, *expected_version, patch)
                            .await
                            .map(|_| Outcome::Accepted)
                    } else {
                        let empty = crate::sync::SyncWrite {
                            entity: def.name.to_owned(),
                            id: *id,
                            op: SyncOp::Update,
                            expected_version: *expected_version,
                            patch: Default::default(),
                            base: Default::default(),
                        };
                        let (narrowed, mut kept) = merge(patch, write.unwrap_or(&empty), &cur);
                        let shown = actor.redact(cur.clone());
                        for k in &mut kept {
                            k.server = shown_value(&shown, &k.field);
                        }
                        let outcome = Outcome::Merged { kept_server: kept };
                        self.answer_with(answering, &outcome)?;
                        let done = match narrowed.is_empty() {
                            true => Ok(()),
                            false => self
                                .update(actor, entity, *id, cur.version, &narrowed)
                                .await
                                .map(|_| ()),
                        };
                        done.map(|()| outcome)
                    };
                    match result {
                        Err(e) if retry(&e, attempt) => continue,
                        other => return other,
                    }
                }
            }
            Intent::Delete {
                entity,
                id,
                expected_version,
            } => {
                let def = self.entity(entity)?;
                if self.store.get(actor.tenant, def, *id).await?.is_none() {
                    // Deleted on the server too: the outcome the device wanted.
                    return Ok(Outcome::Accepted);
                }
                // At another version: the server's edit wins and the deletion is refused.
                self.answer_with(answering, &Outcome::Accepted)?;
                self.delete(actor, entity, *id, *expected_version).await?;
                Ok(Outcome::Accepted)
            }
            Intent::Transition {
                entity,
                id,
                expected_version,
                name,
                input,
            } => {
                let def = self.entity(entity)?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let cur = self.visible(actor, def, *id).await?;
                    let outcome = match cur.version == *expected_version {
                        true => Outcome::Accepted,
                        false => Outcome::Merged {
                            kept_server: Vec::new(),
                        },
                    };
                    self.answer_with(answering, &outcome)?;
                    // The transition runs on the server's state: its `from` states and guard decide.
                    let result = self.transition(actor, entity, *id, cur.version, name, input).await;
                    match result {
                        Err(e) if retry(&e, attempt) => continue,
                        Err(e) => return Err(e),
                        Ok(_) => return Ok(outcome),
                    }
                }
            }
            Intent::Convert {
                lead,
                expected_version,
                create_company,
                contact,
                company,
            } => {
                // The new records' ids taken: the same conversion twice, or a clash of ids.
                let made = [
                    (&crate::entity::CONTACT, Some(*contact)),
                    (&crate::entity::COMPANY, *company),
                ];
                for (def, id) in made {
                    let Some(id) = id else { continue };
                    if let Some(cur) = self.store.get(actor.tenant, def, id).await? {
                        return Err(Error::Conflict {
                            entity: def.name.into(),
                            id: id.to_string(),
                            expected: 0,
                            actual: cur.version,
                        });
                    }
                }
                let opts = super::ConvertOptions {
                    create_company: *create_company,
                };
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    // Like a transition: converted from the server's state (an edit meanwhile is
                    // kept); a lead converted on the server already is refused.
                    let cur = self.visible(actor, &crate::entity::LEAD, *lead).await?;
                    let outcome = match cur.version == *expected_version {
                        true => Outcome::Accepted,
                        false => Outcome::Merged {
                            kept_server: Vec::new(),
                        },
                    };
                    self.answer_with(answering, &outcome)?;
                    let result = self
                        .convert_lead_as(actor, *lead, cur.version, &opts, Some((*contact, *company)))
                        .await;
                    match result {
                        Err(e) if retry(&e, attempt) => continue,
                        Err(e) => return Err(e),
                        Ok(_) => return Ok(outcome),
                    }
                }
            }
            Intent::Attach {
                entity,
                id,
                attachment,
                input,
            } => {
                if let Some(cur) = self.store.get(actor.tenant, &ATTACHMENT, *attachment).await? {
                    return Err(Error::Conflict {
                        entity: ATTACHMENT.name.into(),
                        id: attachment.to_string(),
                        expected: 0,
                        actual: cur.version,
                    });
                }
                // The bytes came ahead of the push; without them the entry waits (pending).
                let sha = input.sha256.as_deref().unwrap_or_default();
                let content = match is_sha256(sha) {
                    true => self.blobs()?.open(actor.tenant, sha)?,
                    false => None,
                };
                let Some(mut content) = content else {
                    return Err(Error::field(
                        "intent.input.sha256",
                        BYTES_MISSING,
                        "the attachment's bytes were not uploaded before the push",
                    ));
                };
                self.answer_with(answering, &Outcome::Accepted)?;
                self.attach_as(actor, entity, *id, input, &mut content, Some(*attachment))
                    .await?;
                Ok(Outcome::Accepted)
            }
            Intent::Detach { attachment } => {
                self.answer_with(answering, &Outcome::Accepted)?;
                self.delete_attachment(actor, *attachment).await?;
                Ok(Outcome::Accepted)
            }
        }
    }
}

/// Is this the refusal of an attach whose bytes the server does not have yet?
fn waiting_for_bytes(e: &Error) -> bool {
    matches!(e, Error::Validation(errs) if errs.iter().any(|f| f.code == BYTES_MISSING))
}

fn decode_answer(a: &Answer, key: &str) -> Result<Outcome> {
    serde_json::from_str(&a.body)
        .map_err(|_| Error::corrupt(format!("the stored answer of change set {key} does not decode")))
}

/// Whether a replay reads the row again after `e`: another write moved it on (not a lost claim,
/// which no retry can win).
fn retry(e: &Error, attempt: usize) -> bool {
    matches!(e, Error::Conflict { .. }) && !idempotency::is_claim_lost(e) && attempt < REPLAY_ATTEMPTS
}

/// The outcome of a refused entry.
fn rejected(e: &Error) -> Outcome {
    Outcome::Rejected { error: Refusal::of(e) }
}

/// A field's value as the actor may see it (`custom.x` for a custom field; null when hidden).
fn shown_value(rec: &Record, field: &str) -> Json {
    match field.strip_prefix("custom.") {
        Some(c) => rec.custom.get(c).map_or(Json::Null, Value::to_json),
        None => rec.get(field).map_or(Json::Null, Value::to_json),
    }
}

fn to_json(v: &impl Serialize) -> Result<Json> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("cannot serialise a sync message: {e}")))
}
