//! Compliance use cases: the integrity checker, the audit trail and the events feed, each filtered by
//! what the actor may read.

use super::Service;
use crate::access::{Action, Actor, Scope};
use crate::change::{AuditEntry, Event, verify_chain};
use crate::entity::{self, LEAD};
use crate::error::{Error, Result};
use crate::query::{Filter, Op, StoreQuery};
use crate::record::Record;
use crate::store::{AuditQuery, Store};
use crate::validate;
use crate::value::Id;
use serde::{Deserialize, Serialize};

/// One stored row that breaks today's rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntegrityIssue {
    pub entity: String,
    pub id: Id,
    pub path: String,
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Rows checked per entity type.
    pub checked: Vec<(String, u64)>,
    /// Issues found (at most [`MAX_ISSUES`]; `issue_count` counts them all).
    pub issues: Vec<IntegrityIssue>,
    pub issue_count: u64,
    pub audit_entries: u64,
    /// Sequence number of the first audit entry whose hash or link does not verify, or, when entries
    /// were deleted from the end, the first one missing before the tenant's recorded chain head.
    pub audit_broken_at: Option<u64>,
}

pub const MAX_ISSUES: usize = 10_000;
const SCAN_BATCH: u32 = 1000;

impl<S: Store> Service<S> {
    /// Checks every stored row the actor may read tenant-wide against today's rules, lead statuses
    /// against their pipelines, and the audit chain.
    pub async fn integrity_check(&self, actor: &Actor) -> Result<IntegrityReport> {
        let mut report = IntegrityReport::default();
        let now = self.clock.now();
        for def in entity::all() {
            if actor.role.scope(def, Action::Read) != Scope::Tenant {
                continue;
            }
            let ctx = self.write_ctx(actor.tenant, def).await?;
            let mut checked = 0u64;
            let mut after: Option<Id> = None;
            loop {
                let filter = after.map_or(Filter::All, |id| Filter::cmp("id", Op::Gt, id));
                let rows = self
                    .store
                    .query(actor.tenant, def, &StoreQuery::by_id(filter, SCAN_BATCH))
                    .await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id);
                for r in &rows {
                    checked += 1;
                    let mut errs = validate::check_stored(r, &ctx.custom, now);
                    if let Err(Error::Validation(e)) = ctx.check_tenant_rules(r, None) {
                        errs.extend(e);
                    }
                    for e in errs {
                        report.issue_count += 1;
                        if report.issues.len() < MAX_ISSUES {
                            report.issues.push(IntegrityIssue {
                                entity: def.name.into(),
                                id: r.id,
                                path: e.path,
                                code: e.code,
                                message: e.message,
                            });
                        }
                    }
                }
            }
            report.checked.push((def.name.to_owned(), checked));
        }
        if actor.role.scope(&LEAD, Action::Read) == Scope::Tenant {
            // Read before the scan: entries appended meanwhile come after it.
            let head = self.store.audit_head(actor.tenant).await?;
            let mut at_head: Option<String> = None;
            let mut after = 0;
            let mut prev: Option<AuditEntry> = None;
            loop {
                let batch = self
                    .store
                    .audit(
                        actor.tenant,
                        &AuditQuery {
                            after_seq: after,
                            limit: 5000,
                            ..Default::default()
                        },
                    )
                    .await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                report.audit_entries += batch.len() as u64;
                if let Some(a) = batch.iter().find(|a| a.seq == head.seq) {
                    at_head = Some(a.hash.clone());
                }
                let chain: Vec<AuditEntry> = prev.take().into_iter().chain(batch).collect();
                if let Err(seq) = verify_chain(&chain) {
                    report.audit_broken_at = Some(seq);
                    break;
                }
                prev = chain.last().cloned();
            }
            // A chain that verifies but ends before the recorded head lost its last entries; one
            // whose entry at the head is not the recorded one was rewritten.
            if report.audit_broken_at.is_none() && head.seq > 0 {
                match at_head {
                    None => report.audit_broken_at = Some(prev.map_or(1, |p| p.seq + 1)),
                    Some(hash) if hash != head.hash => report.audit_broken_at = Some(head.seq),
                    Some(_) => {}
                }
            }
        }
        Ok(report)
    }

    /// Audit entries, oldest first, never about a record the actor may not read. For one record
    /// (`entity_id`, with or without `entity`) the actor must be able to read that record (or, once it
    /// is deleted, read its type tenant-wide); otherwise a missing, foreign or out-of-scope record is
    /// `NotFound`, whatever the other parameters. Without `entity_id`, entries are limited to entity
    /// types the actor reads tenant-wide. Field changes the actor may not read are removed.
    pub async fn audit_trail(&self, actor: &Actor, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut q = q.clone();
        q.limit = q.limit.clamp(1, 1000);
        let readable = |name: &str| entity::entity(name).filter(|d| d.exposure != crate::schema::Exposure::Internal);
        if let Some(entity) = &q.entity {
            let def = self.entity(entity)?;
            if q.entity_id.is_none() && actor.authorize(def, Action::Read)? != Scope::Tenant {
                return Err(Error::forbidden(Action::Read, entity, vec![]));
            }
        }
        let mut out = self.store.audit(actor.tenant, &q).await?;
        if let Some(id) = q.entity_id {
            // Every entry names the record's type: the caller must be able to read that record.
            let mut checked: Vec<&str> = Vec::new();
            for a in &out {
                if checked.contains(&a.entity.as_str()) {
                    continue;
                }
                let def = readable(&a.entity).ok_or_else(|| Error::not_found("record", id))?;
                let tenant_wide = actor.authorize(def, Action::Read).is_ok_and(|s| s == Scope::Tenant);
                if self.visible(actor, def, id).await.is_err() && !tenant_wide {
                    return Err(Error::not_found(q.entity.as_deref().unwrap_or(def.name), id));
                }
                checked.push(def.name);
            }
            if out.is_empty()
                && let Some(def) = q.entity.as_deref().and_then(readable)
                && self.visible(actor, def, id).await.is_err()
                && actor.authorize(def, Action::Read).ok() != Some(Scope::Tenant)
            {
                return Err(Error::not_found(def.name, id));
            }
        } else {
            out.retain(|a| {
                readable(&a.entity).is_some_and(|d| actor.authorize(d, Action::Read).ok() == Some(Scope::Tenant))
            });
        }
        for a in &mut out {
            if let Some(def) = readable(&a.entity) {
                a.changes.retain(|c| actor.role.can_read_field(def, &c.field));
            }
        }
        Ok(out)
    }

    /// Outbox events after `after`, limited to what the actor may read: records outside its read
    /// scope are skipped, payloads are redacted, tenant-wide events need tenant-wide read.
    pub async fn events_since(&self, actor: &Actor, after: u64, limit: u32) -> Result<Vec<Event>> {
        Ok(self.events_page(actor, after, limit).await?.0)
    }

    /// Like [`Service::events_since`], also returning the sequence scanned up to (the resume point
    /// for streams: events the actor may not see still move it forward).
    pub async fn events_page(&self, actor: &Actor, after: u64, limit: u32) -> Result<(Vec<Event>, u64)> {
        let events = self.store.events(actor.tenant, after, limit.clamp(1, 1000)).await?;
        let scanned = events.last().map_or(after, |e| e.seq);
        let mut specs = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for mut e in events {
            let Some(def) = entity::entity(&e.entity) else {
                continue;
            };
            let Ok(scope) = actor.authorize(def, Action::Read) else {
                continue;
            };
            if !specs.contains_key(def.name) {
                specs.insert(def.name, self.custom_specs(actor.tenant, def).await?);
            }
            match Record::from_json(def, actor.tenant, &e.payload, &specs[def.name]) {
                Some(r) if e.entity_id == Some(r.id) => {
                    if !self.in_scope_of(actor, &r, scope).await? {
                        continue;
                    }
                    e.payload = actor.redact(r).to_json();
                }
                _ if scope == Scope::Tenant => {}
                _ => continue,
            }
            out.push(e);
        }
        Ok((out, scanned))
    }
}
