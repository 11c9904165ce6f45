//! The storage seam. Stores persist and query; they decide no business rule. The trait is async so
//! that one set of use cases serves both the synchronous embedded stores (which do their work inside
//! the future; blocking callers drive them with a trivial `block_on`) and natively async ones.

use crate::change::{Applied, AuditEntry, ChangeSet, Event};
use crate::error::Result;
use crate::idempotency::{Answer, StoredKey};
use crate::query::{AggregateQuery, Filter, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::sync::SyncEntry;
use crate::value::{Id, Timestamp};
use std::future::Future;

/// The end of a tenant's audit chain as the store recorded it (see [`Store::audit_head`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditHead {
    /// The last entry's sequence number (0: no entries yet).
    pub seq: u64,
    /// The last entry's hash (`""`: no entries yet).
    pub hash: String,
}

/// Which audit entries to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub entity_id: Option<Id>,
    /// Entries with `seq` greater than this.
    pub after_seq: u64,
    pub limit: u32,
}

pub use crate::query::aggregate::Group;

/// A storage backend. Every method is scoped to one tenant; nothing reads across tenants but
/// [`Store::tenants`].
pub trait Store: Send + Sync {
    /// A bulk write session: one transaction spanning many change sets (imports). Dropping it without
    /// `commit` rolls everything back.
    type Bulk<'a>: BulkWrite + 'a
    where
        Self: 'a;

    fn get(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        id: Id,
    ) -> impl Future<Output = Result<Option<Record>>> + Send;

    /// Rows matching `q.filter`, ordered by `q.sort` (nulls smallest), at most `q.limit`.
    fn query(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &StoreQuery,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send;

    fn count(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        filter: &Filter,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Rows matching `q.filter` grouped and measured as [`crate::query::aggregate`] defines, the
    /// groups ordered by their keys. The query is checked with [`AggregateQuery::plan`] (an
    /// `InvalidQuery` for a field that cannot be a key or measured).
    fn aggregate(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &AggregateQuery,
    ) -> impl Future<Output = Result<Vec<Group>>> + Send;

    /// A fingerprint of the tenant's rows of `entities` (small configuration tables: the
    /// organization, custom fields, pipelines, scoring models), read in one cheap query so that the
    /// service can reuse what it loaded from them ([`crate::service::Service`]'s configuration cache)
    /// for as long as the fingerprint is unchanged. It must change whenever a row of one of them is
    /// created, updated or deleted, by this process or any other writing to the same database:
    /// stores fold per table the row count, the sum of the rows' versions (every update bumps one),
    /// the largest id (UUIDv7: a new row's id is larger than older ones) and the latest
    /// `updated_at`. Only compared with earlier answers of the same store; `None` when the store
    /// cannot tell cheaply (then nothing is cached and the rows are read on every write).
    fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> impl Future<Output = Result<Option<u64>>> + Send {
        let _ = (tenant, entities);
        std::future::ready(Ok(None))
    }

    /// Applies a change set atomically: every write, audit entry (sealed into the chain) and event
    /// (given the next sequence), or nothing. A stale version fails the whole set with `Conflict`.
    fn apply(&self, changes: ChangeSet) -> impl Future<Output = Result<Applied>> + Send;

    fn bulk(&self, tenant: Id) -> impl Future<Output = Result<Self::Bulk<'_>>> + Send;

    /// Audit entries in sequence order.
    fn audit(&self, tenant: Id, q: &AuditQuery) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;

    /// The tenant's audit chain head as recorded in the same transaction as each append: the last
    /// sequence number and its hash (`0` and `""` before the first entry). The integrity check
    /// compares it with the last stored entry, so entries deleted from the end are noticed.
    fn audit_head(&self, tenant: Id) -> impl Future<Output = Result<AuditHead>> + Send;

    /// Outbox events with `seq > after`, in sequence order.
    fn events(&self, tenant: Id, after: u64, limit: u32) -> impl Future<Output = Result<Vec<Event>>> + Send;

    /// Every tenant (organization id) in the store.
    fn tenants(&self) -> impl Future<Output = Result<Vec<Id>>> + Send;

    /// The tenant's sync log entries not yet marked synced with `seq > after_seq`, in sequence
    /// order, at most `limit` (see [`crate::sync`]).
    ///
    /// Contract for every store: the log is opt-in per store instance (off by default). When it is on,
    /// [`Store::apply`] and [`BulkWrite::apply`] write, in the same transaction as the change set, one
    /// entry built by [`SyncEntry::for_change_set`] (if that returns one) with the tenant's next
    /// sequence number: 1, 2, ..., never reused even after [`Store::mark_synced`] removed entries. A
    /// change set that fails, and a bulk session that is not committed, log nothing. When the log is
    /// off, nothing is written, and this returns the entries logged while it was on (usually none).
    fn pending_changes(
        &self,
        tenant: Id,
        after_seq: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SyncEntry>>> + Send;

    /// Removes the tenant's sync log entries with `seq <= up_to_seq` (a server acknowledged them) and
    /// returns how many were removed. Idempotent; entries logged later keep their own (higher)
    /// sequence numbers and stay pending.
    fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> impl Future<Output = Result<u64>> + Send;

    /// Takes or renews the tenant's lease `name` for `holder` until `until`: granted if nobody holds
    /// it, if its holder's lease ended at or before `now`, or if `holder` holds it already; returns
    /// whether `holder` holds it now. Atomic across every process using the database: of several
    /// racing for one lease, one gets it. Leases coordinate background work between server instances
    /// (one delivers a webhook at a time); they are not records: no audit entry, event or sync log
    /// entry, and nothing else reads them.
    fn lease(
        &self,
        tenant: Id,
        name: &str,
        holder: Id,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Claims idempotency key `key` of `caller` in the tenant for a request with `fingerprint`
    /// ([`crate::idempotency`]): if the caller has no such key, or only one that expired at or
    /// before `now`, stores it unanswered until `expires_at` and returns `None` (claimed);
    /// otherwise changes nothing and returns the stored key. Atomic across every process using
    /// the database: of several racing for one key, one claims it. May remove the tenant's expired
    /// keys. Keys are not records: no audit entry, event or sync log entry.
    fn idempotency_claim(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Option<StoredKey>>> + Send;

    /// Settles a claimed key still unanswered: stores `answer`, or with `None` removes the key (it
    /// may be claimed again). A key that is not there or already answered is left as it is.
    fn idempotency_settle(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        answer: Option<&Answer>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Bytes free for the database to grow into (the free space of its file system), or `None` when
    /// the store cannot tell (a database on another machine, one in memory). Imports check it
    /// before they write ([`crate::service::check_import_disk`]).
    fn free_space(&self) -> Option<u64> {
        None
    }
}

/// A transaction spanning several change sets.
pub trait BulkWrite: Send {
    /// Reads inside the transaction (sees earlier writes of this session).
    fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery)
    -> impl Future<Output = Result<Vec<Record>>> + Send;
    /// The ids of the records [`BulkWrite::query`] would answer, in the same order, without reading
    /// the records: an import's reference checks (does each `lead_id` exist, in scope?), answered
    /// from the primary key where the filter allows.
    fn ids(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> impl Future<Output = Result<Vec<Id>>> + Send;
    fn apply(&mut self, changes: ChangeSet) -> impl Future<Output = Result<Applied>> + Send;
    fn commit(self) -> impl Future<Output = Result<Applied>> + Send;
}

/// A shared store is a store: lets several services (or a service and a loader) use one backend.
impl<S: Store> Store for std::sync::Arc<S> {
    type Bulk<'a>
        = S::Bulk<'a>
    where
        Self: 'a;

    fn get(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        id: Id,
    ) -> impl Future<Output = Result<Option<Record>>> + Send {
        (**self).get(tenant, entity, id)
    }
    fn query(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &StoreQuery,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send {
        (**self).query(tenant, entity, q)
    }
    fn count(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        filter: &Filter,
    ) -> impl Future<Output = Result<u64>> + Send {
        (**self).count(tenant, entity, filter)
    }
    fn aggregate(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        q: &AggregateQuery,
    ) -> impl Future<Output = Result<Vec<Group>>> + Send {
        (**self).aggregate(tenant, entity, q)
    }
    fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> impl Future<Output = Result<Option<u64>>> + Send {
        (**self).stamp(tenant, entities)
    }
    fn apply(&self, changes: ChangeSet) -> impl Future<Output = Result<Applied>> + Send {
        (**self).apply(changes)
    }
    fn bulk(&self, tenant: Id) -> impl Future<Output = Result<Self::Bulk<'_>>> + Send {
        (**self).bulk(tenant)
    }
    fn audit(&self, tenant: Id, q: &AuditQuery) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send {
        (**self).audit(tenant, q)
    }
    fn audit_head(&self, tenant: Id) -> impl Future<Output = Result<AuditHead>> + Send {
        (**self).audit_head(tenant)
    }
    fn events(&self, tenant: Id, after: u64, limit: u32) -> impl Future<Output = Result<Vec<Event>>> + Send {
        (**self).events(tenant, after, limit)
    }
    fn tenants(&self) -> impl Future<Output = Result<Vec<Id>>> + Send {
        (**self).tenants()
    }
    fn pending_changes(
        &self,
        tenant: Id,
        after_seq: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SyncEntry>>> + Send {
        (**self).pending_changes(tenant, after_seq, limit)
    }
    fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> impl Future<Output = Result<u64>> + Send {
        (**self).mark_synced(tenant, up_to_seq)
    }
    fn lease(
        &self,
        tenant: Id,
        name: &str,
        holder: Id,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).lease(tenant, name, holder, now, until)
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
        (**self).idempotency_claim(tenant, caller, key, fingerprint, now, expires_at)
    }
    fn idempotency_settle(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        answer: Option<&Answer>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).idempotency_settle(tenant, caller, key, answer)
    }
    fn free_space(&self) -> Option<u64> {
        (**self).free_space()
    }
}
