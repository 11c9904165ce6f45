//! The device end of pulls, sans I/O: a device writes the records a server sends (the pages of
//! [`Service::pull`], and the rows a refused push entry puts back) into its own store as the server
//! has them. See `docs/sync.md` ("Applying a pull") and `docs/adr/0018-devices-keep-the-servers-rows.md`.
//!
//! The server's state wins for every record the device's pending log does not change: such a
//! record is written with the server's version and values (derived fields included, as the server
//! computed them), in a change set marked [`ChangeSet::received`], which the sync log leaves out.
//! A record with pending changes is left as the device has it: the push that sends those changes
//! brings the server's result back (accepted or merged: in a later pull; refused: in the answer).

use super::Service;
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, Write};
use crate::entity::sync_cursor::fields as cur;
use crate::entity::{self, SYNC_CURSOR};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, Op, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::sync::{PROTOCOL, PullPage, Pulled, Removed, syncable, syncable_types};
use crate::validate::CustomSpecs;
use crate::value::{Id, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};

/// What applying a pull page did on the device ([`Service::apply_pull`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullApplied {
    /// Records written as the server sent them (inserted or replaced).
    pub upserts: u32,
    /// Records forgotten: the page's removals with their children and, on a reset, the records
    /// the device held before.
    pub removals: u32,
    /// Records the page named that stayed as the device has them, because its pending log still
    /// changes them.
    pub kept_pending: u32,
    /// Records of types this build does not sync (a newer server's), left out.
    pub skipped: u32,
    /// The page started a snapshot.
    pub reset: bool,
    /// More is waiting: pull again right away (with [`Service::pull_cursor`]).
    pub more: bool,
}

/// How many times applying a page reads the device's rows again after a local write moved one on
/// between the read and the write.
const RECEIVE_ATTEMPTS: usize = 3;

/// Rows a reset reads per query.
const RESET_BATCH: u32 = 500;

/// The rows a received change set names, so each is written once.
type Named = HashSet<(&'static str, Id)>;

impl<S: Store> Service<S> {
    /// Applies a page of [`Service::pull`] on the device, in one change set with the cursor to
    /// pull with next ([`Service::pull_cursor`]): upserts are written as the server sent them,
    /// removals (with their children) deleted; a `reset` page first forgets every record the
    /// device pulled before. Records the device's pending log changes stay as they are
    /// (`kept_pending`). Types this build does not sync are left out (`skipped`). A record that does
    /// not decode refuses the whole page (validation errors on `upserts[i]`), changing nothing.
    ///
    /// Any active user of the tenant may apply pages, as any may push the log: the server decided
    /// what the page holds for the user it authenticated.
    pub async fn apply_pull(&self, actor: &Actor, page: &PullPage) -> Result<PullApplied> {
        if page.protocol != PROTOCOL {
            return Err(Error::field(
                "protocol",
                codes::INVALID_OPTION,
                format!("this build reads pull pages of protocol {PROTOCOL}"),
            ));
        }
        let batch = Received {
            upserts: &page.upserts,
            removals: &page.removals,
            reset: page.reset,
            cursor: Some(&page.next),
            finished: 0,
        };
        let mut out = self.receive(actor, &batch, Vec::new()).await?;
        out.reset = page.reset;
        out.more = page.more;
        Ok(out)
    }

    /// The cursor this device's user pulls with next: `None` before the first page was applied
    /// (pull without one: a snapshot).
    pub async fn pull_cursor(&self, actor: &Actor) -> Result<Option<String>> {
        let row = self.store.get(actor.tenant, &SYNC_CURSOR, cursor_id(actor)).await?;
        Ok(row.and_then(|r| r.str(cur::CURSOR).map(str::to_owned)))
    }

    /// Writes a batch of the server's records in one received change set, with `extra` writes of
    /// the caller's (the push answer's rejection records); retried when a local write moved a row
    /// on between the read and the write.
    pub(super) async fn receive(&self, actor: &Actor, batch: &Received<'_>, extra: Vec<Write>) -> Result<PullApplied> {
        let mut attempt = 1;
        loop {
            let (mut cs, out) = self.received_change_set(actor, batch).await?;
            cs.writes.extend(extra.iter().cloned());
            if cs.writes.is_empty() {
                return Ok(out);
            }
            match self.apply(cs).await {
                Err(Error::Conflict { .. }) if attempt < RECEIVE_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
                Ok(_) => return Ok(out),
            }
        }
    }

    async fn received_change_set(&self, actor: &Actor, batch: &Received<'_>) -> Result<(ChangeSet, PullApplied)> {
        let tenant = actor.tenant;
        let pending = self.pending_rows(tenant, batch.finished).await?;
        let mut out = PullApplied::default();
        let mut cs = self.change_set(tenant, actor.user_id);
        cs.received = true;
        let mut named = Named::new();
        let mut specs: HashMap<&'static str, CustomSpecs> = HashMap::new();
        let mut errs = Vec::new();
        // Deletions go first in the change set, so a record arriving with a unique value that a
        // forgotten one held is not refused.
        let mut writes = Vec::new();
        for (i, u) in batch.upserts.iter().enumerate() {
            let Some(def) = entity::entity(&u.entity).filter(|d| syncable(d)) else {
                out.skipped += 1;
                continue;
            };
            if !specs.contains_key(def.name) {
                specs.insert(def.name, self.custom_specs(tenant, def).await?);
            }
            let Some(rec) = received_record(def, tenant, &u.record, &specs[def.name]) else {
                errs.push(FieldError::new(
                    format!("upserts[{i}]"),
                    codes::INVALID_FORMAT,
                    format!("not a {} record this build reads", def.name),
                ));
                continue;
            };
            if !named.insert((def.name, rec.id)) {
                continue; // a server names a record once per page
            }
            if pending.contains(&(def.name, rec.id)) {
                out.kept_pending += 1;
                continue;
            }
            writes.push(match self.store.get(tenant, def, rec.id).await? {
                None => Write::Insert(rec),
                Some(local) => Write::Update {
                    expected_version: local.version,
                    record: rec,
                },
            });
            out.upserts += 1;
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        for r in batch.removals {
            match entity::entity(&r.entity).filter(|d| syncable(d)) {
                Some(def) => {
                    self.forget(tenant, def, r.id, &pending, &mut named, &mut cs, &mut out)
                        .await?
                }
                None => out.skipped += 1,
            }
        }
        if batch.reset {
            self.forget_all(actor, &pending, &mut named, &mut cs, &mut out).await?;
        }
        cs.writes.append(&mut writes);
        if let Some(next) = batch.cursor {
            cs.writes.push(self.cursor_write(actor, next).await?);
        }
        Ok((cs, out))
    }

    /// Deletes a record the device holds, with its children (unless the pending log changes them).
    #[allow(clippy::too_many_arguments)]
    async fn forget(
        &self,
        tenant: Id,
        def: &'static EntityDef,
        id: Id,
        pending: &Named,
        named: &mut Named,
        cs: &mut ChangeSet,
        out: &mut PullApplied,
    ) -> Result<()> {
        let mut todo = vec![(def, id)];
        while let Some((def, id)) = todo.pop() {
            if !named.insert((def.name, id)) {
                continue;
            }
            if pending.contains(&(def.name, id)) {
                out.kept_pending += 1;
                continue;
            }
            let Some(local) = self.store.get(tenant, def, id).await? else {
                continue;
            };
            for (cdef, rows) in self.load_children(tenant, &local).await? {
                todo.extend(rows.into_iter().filter(|_| syncable(cdef)).map(|c| (cdef, c.id)));
            }
            cs.writes.push(Write::Delete {
                entity: def,
                id,
                expected_version: local.version,
            });
            out.removals += 1;
        }
        Ok(())
    }

    /// A reset: every record of the syncable types the user may read (the ones a pull sends)
    /// that the page does not write and the pending log does not change is deleted. Users and
    /// roles stay (the device acts as its user while the snapshot arrives; the snapshot writes
    /// them again), and so do types the user may not read (the device did not pull them: its
    /// configuration came with it).
    async fn forget_all(
        &self,
        actor: &Actor,
        pending: &Named,
        named: &mut Named,
        cs: &mut ChangeSet,
        out: &mut PullApplied,
    ) -> Result<()> {
        let tenant = actor.tenant;
        let pulled = syncable_types()
            .into_iter()
            .filter(|d| !d.resolves_callers && actor.role.scope(d, Action::Read) != Scope::None);
        for def in pulled {
            let mut after = None;
            loop {
                let filter = after.map_or(Filter::All, |a| Filter::cmp("id", Op::Gt, Value::Id(a)));
                let rows = self
                    .store
                    .query(tenant, def, &StoreQuery::by_id(filter, RESET_BATCH))
                    .await?;
                let full = rows.len() == RESET_BATCH as usize;
                after = rows.last().map(|r| r.id);
                for row in rows {
                    let key = (def.name, row.id);
                    if pending.contains(&key) || !named.insert(key) {
                        continue;
                    }
                    cs.writes.push(Write::Delete {
                        entity: def,
                        id: row.id,
                        expected_version: row.version,
                    });
                    out.removals += 1;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The rows the device's pending log (entries after `finished`) writes.
    async fn pending_rows(&self, tenant: Id, finished: u64) -> Result<Named> {
        let mut out = Named::new();
        let mut after = finished;
        loop {
            let entries = self
                .store
                .pending_changes(tenant, after, super::sync::MAX_SYNC_BATCH)
                .await?;
            for w in entries.iter().flat_map(|e| &e.writes) {
                if let Some(def) = entity::entity(&w.entity) {
                    out.insert((def.name, w.id));
                }
            }
            match entries.last() {
                Some(last) if entries.len() == super::sync::MAX_SYNC_BATCH as usize => after = last.seq,
                _ => return Ok(out),
            }
        }
    }

    /// The write that stores `next` as the actor's cursor.
    async fn cursor_write(&self, actor: &Actor, next: &str) -> Result<Write> {
        let id = cursor_id(actor);
        let now = self.now();
        let mut r = Record::empty(&SYNC_CURSOR, actor.tenant, id, now);
        r.set(cur::CURSOR, next);
        r.set(cur::PULLED_AT, now);
        Ok(match self.store.get(actor.tenant, &SYNC_CURSOR, id).await? {
            None => Write::Insert(r),
            Some(old) => {
                r.created_at = old.created_at;
                r.version = old.version + 1;
                Write::Update {
                    record: r,
                    expected_version: old.version,
                }
            }
        })
    }
}

/// A batch of the server's records for [`Service::receive`].
pub(super) struct Received<'a> {
    pub upserts: &'a [Pulled],
    pub removals: &'a [Removed],
    /// Forget every record pulled before (a snapshot starts).
    pub reset: bool,
    /// The cursor to store with the batch (a pull page's `next`).
    pub cursor: Option<&'a str>,
    /// Log entries up to this seq are being marked synced by the caller: their rows are not
    /// protected as pending.
    pub finished: u64,
}

/// A user's cursor row: the user's id (the tenant's for the system).
fn cursor_id(actor: &Actor) -> Id {
    actor.user_id.unwrap_or(actor.tenant)
}

/// A pulled record as this build stores it: custom fields the device does not know are left out
/// (a field the tenant added on the server after the device's configuration); the fields the
/// user may not read arrived absent and are stored empty.
fn received_record(def: &'static EntityDef, tenant: Id, json: &Json, specs: &CustomSpecs) -> Option<Record> {
    let mut json = json.clone();
    if let Some(custom) = json.get_mut("custom").and_then(Json::as_object_mut) {
        custom.retain(|k, _| specs.contains_key(k));
    }
    Record::from_json(def, tenant, &json, specs)
}
