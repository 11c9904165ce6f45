//! The pull half of sync, server side, sans I/O: what changed for a device's user since its cursor,
//! as pages of upserts and removals scoped by that user's permissions (see `docs/sync.md` and
//! `docs/adr/0017-pull-cursor.md`).
//!
//! The change feed is the tenant's audit log: every store gives its entries a per-tenant `seq` in
//! commit order under the tenant's write serialisation (the hash chain needs it), so a position in
//! it is a cursor that survives restarts and holds across server instances on one database. A pull
//! reads the entries after the cursor, takes the records they name (and the records a write of
//! theirs re-derives: a scored lead, a rolled-up total, a child's parent, from the declarations)
//! and reads each one's current state as the user: readable → upsert, else → removal. The first
//! pull walks every syncable type by keyset (a snapshot, never the whole tenant in memory) and
//! remembers the audit head at its start, so what changes during the walk arrives afterwards.

use super::Service;
use crate::access::{Action, Actor, Scope};
use crate::entity;
use crate::error::{Error, Result};
use crate::query::{Filter, Op, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, Rollup};
use crate::store::{AuditQuery, Store};
use crate::sync::{
    INVALID_CURSOR, MAX_PULL_LIMIT, PROTOCOL, PullPage, Pulled, Removed, SyncEntry, syncable, syncable_types,
};
use crate::value::{FieldType, Id, Value};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;

/// The version of the cursor's encoding.
const CURSOR_VERSION: u8 = 1;

/// The cursor: where the feed resumes, and the snapshot walk still to do. Serialised as
/// base64url of its JSON; opaque to devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cursor {
    v: u8,
    /// [`fingerprint`] of the actor it was issued to.
    fp: String,
    /// The audit seq the feed resumes after (during a walk: the head when the walk started).
    head: u64,
    /// Types still to walk (the first one is being walked); empty once the snapshot is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    walk: Vec<String>,
    /// The last id walked in `walk[0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Id>,
}

impl Cursor {
    fn encode(&self) -> Result<String> {
        let j = serde_json::to_vec(self).map_err(|e| Error::internal(format!("cannot encode a pull cursor: {e}")))?;
        Ok(B64.encode(j))
    }

    fn decode(s: &str) -> Result<Cursor> {
        let bad = || Error::field("cursor", INVALID_CURSOR, "not a cursor this server issued");
        let bytes = B64.decode(s.as_bytes()).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if c.v != CURSOR_VERSION || c.walk.iter().any(|e| entity::entity(e).is_none_or(|d| !syncable(d))) {
            return Err(bad());
        }
        Ok(c)
    }
}

/// What decides which records and fields a user may read: the tenant, the user, their team and
/// their role's grants. A cursor issued under another fingerprint answers with a reset.
fn fingerprint(actor: &Actor) -> String {
    let who = serde_json::json!({
        "tenant": actor.tenant,
        "user": actor.user_id,
        "team": actor.team_id,
        "role": &*actor.role,
    })
    .to_string();
    let mut fp = crate::idempotency::fingerprint(&[who.as_bytes()]);
    fp.truncate(32);
    fp
}

/// A page being built: the last state of each record named, in the order first named.
#[derive(Default)]
struct Changes {
    order: Vec<(&'static str, Id)>,
    state: HashMap<(&'static str, Id), Option<Json>>,
}

impl Changes {
    fn put(&mut self, def: &'static EntityDef, id: Id, rec: Option<Json>) {
        let key = (def.name, id);
        if self.state.insert(key, rec).is_none() {
            self.order.push(key);
        }
    }

    fn into_page(mut self, page: &mut PullPage) {
        for key in self.order {
            match self.state.remove(&key).flatten() {
                Some(record) => page.upserts.push(Pulled {
                    entity: key.0.to_owned(),
                    record,
                }),
                None => page.removals.push(Removed {
                    entity: key.0.to_owned(),
                    id: key.1,
                }),
            }
        }
    }
}

impl<S: Store> Service<S> {
    /// What changed for `actor` since `cursor` (`None`: from the start, a snapshot), at most
    /// `limit` changes (records walked or audit entries read; 1 to [`MAX_PULL_LIMIT`]).
    ///
    /// Upserts are the records the actor may read, as [`Service::get`] returns them (redacted to
    /// the fields the actor may read); removals are records deleted or no longer readable (moved
    /// out of the actor's scope), with the children of such a record. The page's `next` is the
    /// cursor to ask with next; `more` says whether to ask right away. A cursor issued to the same
    /// user under other roles, team or grants (or to another user) starts a new snapshot, answered
    /// with `reset`. A cursor that does not decode is a validation error on `cursor`.
    pub async fn pull(&self, actor: &Actor, cursor: Option<&str>, limit: u32) -> Result<PullPage> {
        if !(1..=MAX_PULL_LIMIT).contains(&limit) {
            return Err(Error::field(
                "limit",
                crate::error::codes::TOO_LARGE,
                format!("a pull covers 1 to {MAX_PULL_LIMIT} changes"),
            ));
        }
        let fp = fingerprint(actor);
        let decoded = cursor.map(Cursor::decode).transpose()?;
        let (mut cur, reset) = match decoded {
            Some(c) if c.fp == fp => (c, false),
            _ => {
                let head = self.store.audit_head(actor.tenant).await?.seq;
                let walk = syncable_types()
                    .into_iter()
                    .filter(|d| actor.role.scope(d, Action::Read) != Scope::None)
                    .map(|d| d.name.to_owned())
                    .collect();
                let c = Cursor {
                    v: CURSOR_VERSION,
                    fp,
                    head,
                    walk,
                    after: None,
                };
                (c, true)
            }
        };
        let mut changes = Changes::default();
        let mut budget = limit;
        let mut caught_up = false;
        while budget > 0 {
            if let Some(name) = cur.walk.first() {
                let def = self.entity(name)?;
                let (walked, done) = self.walk(actor, def, cur.after, budget, &mut changes).await?;
                budget -= walked.0;
                cur.after = walked.1;
                if done {
                    cur.walk.remove(0);
                    cur.after = None;
                }
                continue;
            }
            let q = AuditQuery {
                entity: None,
                entity_id: None,
                after_seq: cur.head,
                limit: budget,
            };
            let entries = self.store.audit(actor.tenant, &q).await?;
            let read = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            let mut named: Vec<(&'static EntityDef, Id)> = Vec::new();
            let mut rewalk = None;
            for e in &entries {
                let Some(def) = entity::entity(&e.entity) else {
                    cur.head = e.seq;
                    continue;
                };
                match e.entity_id {
                    // A change of every record of a type at once (a re-score of all leads):
                    // walk that type again, then go on after this entry.
                    None if syncable(def) && actor.role.scope(def, Action::Read) != Scope::None => {
                        rewalk = Some(def);
                        cur.head = e.seq;
                        break;
                    }
                    None => {}
                    Some(id) => {
                        if syncable(def) {
                            named.push((def, id));
                        }
                        for (target, tid) in self.rederived(actor.tenant, def, id, &e.changes).await? {
                            named.push((target, tid));
                        }
                    }
                }
                cur.head = e.seq;
            }
            for (def, id) in named {
                self.resolve(actor, def, id, &mut changes).await?;
            }
            budget = budget.saturating_sub(read.max(1));
            if let Some(def) = rewalk {
                cur.walk = vec![def.name.to_owned()];
                cur.after = None;
                continue;
            }
            if read < q.limit {
                caught_up = true;
                break;
            }
        }
        let mut page = PullPage {
            protocol: PROTOCOL,
            reset,
            upserts: Vec::new(),
            removals: Vec::new(),
            next: cur.encode()?,
            more: !caught_up,
        };
        changes.into_page(&mut page);
        Ok(page)
    }

    /// The current state, as `actor` may read it, of the syncable records a device's change set
    /// wrote (the answer to a refused change set carries it, so the device puts its rows back):
    /// upserts for the readable ones, removals for the rest (with their children, as a pull).
    pub(super) async fn current_rows(&self, actor: &Actor, entry: &SyncEntry) -> Result<(Vec<Pulled>, Vec<Removed>)> {
        let mut changes = Changes::default();
        for w in &entry.writes {
            if let Some(def) = entity::entity(&w.entity).filter(|d| syncable(d)) {
                self.resolve(actor, def, w.id, &mut changes).await?;
            }
        }
        let mut page = PullPage {
            protocol: PROTOCOL,
            reset: false,
            upserts: Vec::new(),
            removals: Vec::new(),
            next: String::new(),
            more: false,
        };
        changes.into_page(&mut page);
        Ok((page.upserts, page.removals))
    }

    /// Walks up to `budget` records of `def` after `after` by id, adding the ones the actor may
    /// read. Returns (records read, the last id read) and whether the type is done.
    async fn walk(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        after: Option<Id>,
        budget: u32,
        changes: &mut Changes,
    ) -> Result<((u32, Option<Id>), bool)> {
        let scope = actor.role.scope(def, Action::Read);
        if scope == Scope::None {
            return Ok(((0, after), true));
        }
        // A child below tenant scope is read through its parent (checked row by row below).
        let mut filter = match def.parent() {
            Some(_) if scope != Scope::Tenant => Filter::All,
            _ => actor.scope_filter(def, scope),
        };
        if let Some(a) = after {
            filter = Filter::and([filter, Filter::cmp("id", Op::Gt, Value::Id(a))]);
        }
        let rows = self
            .store
            .query(actor.tenant, def, &StoreQuery::by_id(filter, budget))
            .await?;
        let read = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let last = rows.last().map(|r| r.id).or(after);
        for r in rows {
            if self.in_scope_of(actor, &r, scope).await? {
                let id = r.id;
                let shown = self.present(actor, r).await?;
                changes.put(def, id, Some(shown.to_json()));
            }
        }
        Ok(((read, last), read < budget))
    }

    /// The records a write of `def`'s record `id` re-derives (from the declarations): the lead an
    /// activity scores, the target of a rollup, a child's parent. Reference values come from the
    /// audit entry's changes (old and new: a move re-derives both), else from the stored record.
    async fn rederived(
        &self,
        tenant: Id,
        def: &'static EntityDef,
        id: Id,
        changes: &[crate::change::FieldChange],
    ) -> Result<Vec<(&'static EntityDef, Id)>> {
        let mut fields: Vec<&'static str> = Vec::new();
        fields.extend(def.rescores);
        fields.extend(def.child_of.map(|c| c.field));
        for r in &def.rollups {
            fields.push(match r {
                Rollup::Sum(s) => s.via,
                Rollup::Fold(f) => f.via,
            });
        }
        let mut out = Vec::new();
        let mut stored: Option<Option<Record>> = None;
        for f in fields {
            let Some(FieldType::Ref(target)) = def.def(f).map(|d| &d.spec.ty) else {
                continue;
            };
            let Some(tdef) = entity::entity(target).filter(|t| syncable(t)) else {
                continue;
            };
            let mut ids: Vec<Id> = Vec::new();
            match changes.iter().find(|c| c.field == f) {
                Some(c) => {
                    for v in [&c.old, &c.new] {
                        if let Some(i) = v.as_str().and_then(crate::value::parse_id) {
                            ids.push(i);
                        }
                    }
                }
                None => {
                    if stored.is_none() {
                        stored = Some(self.store.get(tenant, def, id).await?);
                    }
                    ids.extend(stored.as_ref().and_then(|r| r.as_ref()).and_then(|r| r.id_of(f)));
                }
            }
            out.extend(ids.into_iter().map(|i| (tdef, i)));
        }
        Ok(out)
    }

    /// Adds one record's current state as the actor sees it: an upsert if readable (with its
    /// children, which may have come into scope with it), else a removal (with the children of a
    /// record that still exists but left the scope).
    async fn resolve(&self, actor: &Actor, def: &'static EntityDef, id: Id, changes: &mut Changes) -> Result<()> {
        let scope = actor.role.scope(def, Action::Read);
        let rec = self.store.get(actor.tenant, def, id).await?;
        let readable = match &rec {
            Some(r) if scope != Scope::None => self.in_scope_of(actor, r, scope).await?,
            _ => false,
        };
        let children = match &rec {
            Some(r) if def.children().any(syncable) => self.load_children(actor.tenant, r).await?,
            _ => Vec::new(),
        };
        match rec {
            Some(r) if readable => {
                let shown = self.present(actor, r).await?;
                changes.put(def, id, Some(shown.to_json()));
                for (cdef, rows) in children {
                    if !syncable(cdef) || actor.role.scope(cdef, Action::Read) == Scope::None {
                        continue;
                    }
                    for c in rows {
                        let cid = c.id;
                        let shown = self.present(actor, c).await?;
                        changes.put(cdef, cid, Some(shown.to_json()));
                    }
                }
            }
            _ => {
                changes.put(def, id, None);
                for (cdef, rows) in children {
                    for c in rows.into_iter().filter(|_| syncable(cdef)) {
                        changes.put(cdef, c.id, None);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_issue() {
        let c = Cursor {
            v: CURSOR_VERSION,
            fp: "ab".into(),
            head: 7,
            walk: vec!["lead".into()],
            after: Some(Id::from_u128(3)),
        };
        assert_eq!(Cursor::decode(&c.encode().unwrap()).unwrap(), c);
        for bad in ["", "!!", "e30", &B64.encode(br#"{"v":2,"fp":"","head":0}"#)] {
            let e = Cursor::decode(bad).unwrap_err();
            assert_eq!(
                (e.field_errors()[0].path.as_str(), e.field_errors()[0].code.as_str()),
                ("cursor", INVALID_CURSOR),
                "{bad}"
            );
        }
        let unknown = B64.encode(br#"{"v":1,"fp":"","head":0,"walk":["session"]}"#);
        assert!(Cursor::decode(&unknown).is_err(), "internal types never walk");
    }

    #[test]
    fn the_syncable_types_come_from_the_declarations() {
        let names: Vec<_> = syncable_types().iter().map(|d| d.name).collect();
        for t in [
            "lead",
            "activity",
            "contact",
            "company",
            "quote",
            "quote_line",
            "job",
            "appointment",
        ] {
            assert!(names.contains(&t), "{t} syncs");
        }
        for t in [
            "organization",
            "session",
            "credential",
            "api_key",
            "sync_rejection",
            "attachment",
        ] {
            assert!(!names.contains(&t), "{t} does not sync");
        }
    }
}
