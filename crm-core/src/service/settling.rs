//! The store a sync replay runs its use case over: the store itself, except that the first change
//! set the use case applies carries the replay's answer ([`Settle`]), so the answer is stored by the
//! same transaction as the writes it answers. A process dying between the two can then leave
//! neither alone: either both are there (a retry gets the answer) or neither (the claim expires
//! and a retry replays the change set), never the writes without the answer.

use crate::change::{Applied, AuditEntry, ChangeSet, Event};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Settle, StoredKey};
use crate::query::{AggregateQuery, Filter, Group, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::{AuditHead, AuditQuery, Store};
use crate::sync::SyncEntry;
use crate::value::{Id, Timestamp};
use std::future::Future;
use std::sync::Mutex;

/// `inner`, with an answer waiting for the next applied change set.
pub(crate) struct Settling<'a, S> {
    inner: &'a S,
    slot: Mutex<Option<Settle>>,
    /// The answer a change set stored.
    settled: Mutex<Option<Settle>>,
}

impl<'a, S: Store> Settling<'a, S> {
    pub(crate) fn new(inner: &'a S) -> Self {
        Settling {
            inner,
            slot: Mutex::new(None),
            settled: Mutex::new(None),
        }
    }

    /// The answer the next successfully applied change set stores (replacing any left over).
    pub(crate) fn expect(&self, settle: Settle) -> Result<()> {
        *self.lock()? = Some(settle);
        Ok(())
    }

    /// The answer a change set stored, if one did; if not (the use case wrote nothing, or failed),
    /// the caller stores its answer on its own.
    pub(crate) fn settled(&self) -> Result<Option<Settle>> {
        Ok(self
            .settled
            .lock()
            .map_err(|_| Error::internal("replay answer lock poisoned"))?
            .clone())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Settle>>> {
        self.slot
            .lock()
            .map_err(|_| Error::internal("replay answer lock poisoned"))
    }
}

impl<S: Store> Store for Settling<'_, S> {
    type Bulk<'b>
        = S::Bulk<'b>
    where
        Self: 'b;

    fn get(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        id: Id,
    ) -> impl Future<Output = Result<Option<Record>>> + Send {
        self.inner.get(tenant, entity, id)
    }
    fn query(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &StoreQuery,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send {
        self.inner.query(tenant, entity, q)
    }
    fn count(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        filter: &Filter,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.inner.count(tenant, entity, filter)
    }
    fn aggregate(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &AggregateQuery,
    ) -> impl Future<Output = Result<Vec<Group>>> + Send {
        self.inner.aggregate(tenant, entity, q)
    }
    async fn apply(&self, mut changes: ChangeSet) -> Result<Applied> {
        let settle = self.lock()?.clone();
        changes.settle = settle.clone();
        let applied = self.inner.apply(changes).await?;
        if settle.is_some() {
            // Stored with this change set: later ones (a follow-up effect) carry none.
            *self.lock()? = None;
            *self
                .settled
                .lock()
                .map_err(|_| Error::internal("replay answer lock poisoned"))? = settle;
        }
        Ok(applied)
    }
    fn bulk(&self, tenant: Id) -> impl Future<Output = Result<Self::Bulk<'_>>> + Send {
        self.inner.bulk(tenant)
    }
    fn audit(&self, tenant: Id, q: &AuditQuery) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send {
        self.inner.audit(tenant, q)
    }
    fn audit_head(&self, tenant: Id) -> impl Future<Output = Result<AuditHead>> + Send {
        self.inner.audit_head(tenant)
    }
    fn events(&self, tenant: Id, after: u64, limit: u32) -> impl Future<Output = Result<Vec<Event>>> + Send {
        self.inner.events(tenant, after, limit)
    }
    fn tenants(&self) -> impl Future<Output = Result<Vec<Id>>> + Send {
        self.inner.tenants()
    }
    fn pending_changes(
        &self,
        tenant: Id,
        after_seq: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SyncEntry>>> + Send {
        self.inner.pending_changes(tenant, after_seq, limit)
    }
    fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> impl Future<Output = Result<u64>> + Send {
        self.inner.mark_synced(tenant, up_to_seq)
    }
    fn lease(
        &self,
        tenant: Id,
        name: &str,
        holder: Id,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send {
        self.inner.lease(tenant, name, holder, now, until)
    }
    fn idempotency_claim(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Option<StoredKey>>> + Send {
        self.inner
            .idempotency_claim(tenant, caller, key, fingerprint, now, expires_at)
    }
    fn idempotency_settle(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        answer: Option<&Answer>,
    ) -> impl Future<Output = Result<()>> + Send {
        self.inner.idempotency_settle(tenant, caller, key, answer)
    }
    fn free_space(&self) -> Option<u64> {
        self.inner.free_space()
    }
}
