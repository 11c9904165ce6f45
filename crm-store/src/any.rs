//! One store type for programs that take the database as a string: a SQLite file or a PostgreSQL URL.
//!
//! ```
//! use crm_core::store::Store;
//! let dir = tempfile::tempdir().unwrap();
//! let store = crm_store::open(dir.path().join("crm.db").to_str().unwrap()).unwrap();
//! assert!(matches!(store, crm_store::AnyStore::Sqlite(_)));
//! assert!(pollster::block_on(store.tenants()).unwrap().is_empty());
//! ```
//!
//! Runtime: a SQLite store needs none. A PostgreSQL store opened with [`open`] starts its own small
//! tokio runtime, so a blocking caller (`pollster::block_on`) works unchanged; an async program that
//! already runs tokio should use [`connect`], which puts the PostgreSQL store on the caller's runtime.

use crate::SqliteStore;
use crm_core::change::{Applied, AuditEntry, ChangeSet, Event};
#[cfg(not(feature = "postgres"))]
use crm_core::error::Error;
use crm_core::error::Result;
use crm_core::idempotency::{Answer, StoredKey};
use crm_core::query::{AggregateQuery, Filter, StoreQuery};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::store::{AuditHead, AuditQuery, BulkWrite, Group, Store};
use crm_core::sync::SyncEntry;
use crm_core::value::{Id, Timestamp};

/// True for `postgres://...` and `postgresql://...` (case-insensitive scheme).
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.get(..13).unwrap_or(database).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

#[cfg(not(feature = "postgres"))]
fn no_postgres() -> Error {
    // The caller named a database this build cannot open: an input error, said plainly.
    Error::field(
        "database",
        crm_core::error::codes::INVALID_OPTION,
        "this build has no PostgreSQL support (crm-store feature `postgres`)",
    )
}

/// Opens the store named by `database` (blocking): a PostgreSQL URL gives a [`crate::PgStore`] with
/// its own runtime, anything else is a SQLite file path (created if missing; `:memory:` is a
/// throwaway database). Takes anything path-like (`&str`, `String`, `PathBuf`).
pub fn open(database: impl AsRef<std::ffi::OsStr>) -> Result<AnyStore> {
    let database = database.as_ref();
    match database.to_str() {
        #[cfg(feature = "postgres")]
        Some(url) if is_postgres_url(url) => Ok(AnyStore::Postgres(crate::PgStore::open(url)?)),
        #[cfg(not(feature = "postgres"))]
        Some(url) if is_postgres_url(url) => Err(no_postgres()),
        _ => Ok(AnyStore::Sqlite(SqliteStore::open(std::path::Path::new(database))?)),
    }
}

/// Opens the store named by `database` for inspection (blocking): a SQLite file is opened read-only
/// and must exist and be at this build's schema version (see [`SqliteStore::open_read_only`]); a
/// PostgreSQL URL opens as with [`open`] (the server decides what the role may write).
pub fn open_read_only(database: impl AsRef<std::ffi::OsStr>) -> Result<AnyStore> {
    let database = database.as_ref();
    match database.to_str() {
        Some(url) if is_postgres_url(url) => open(database),
        _ => Ok(AnyStore::Sqlite(SqliteStore::open_read_only(std::path::Path::new(
            database,
        ))?)),
    }
}

/// Opens the store named by `database` from async code: a PostgreSQL store runs on the caller's
/// tokio runtime (see [`crate::PgStore::connect`]); a SQLite store opens as with [`open`].
pub async fn connect(database: impl AsRef<std::ffi::OsStr>) -> Result<AnyStore> {
    let database = database.as_ref();
    match database.to_str() {
        #[cfg(feature = "postgres")]
        Some(url) if is_postgres_url(url) => Ok(AnyStore::Postgres(crate::PgStore::connect(url).await?)),
        #[cfg(not(feature = "postgres"))]
        Some(url) if is_postgres_url(url) => Err(no_postgres()),
        _ => Ok(AnyStore::Sqlite(SqliteStore::open(std::path::Path::new(database))?)),
    }
}

/// A SQLite or a PostgreSQL store; implements [`Store`] by delegation.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(crate::PgStore),
}

impl AnyStore {
    /// Where the data is: the SQLite file, or the PostgreSQL URL without its password.
    pub fn location(&self) -> String {
        match self {
            AnyStore::Sqlite(s) => s.path().display().to_string(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(p) => p.location().to_owned(),
        }
    }

    /// Writes a consistent copy of a SQLite database to `out` (see [`SqliteStore::backup_to`]). A
    /// PostgreSQL database is backed up with PostgreSQL's own tools (`pg_dump`).
    pub fn backup_to(&self, out: impl AsRef<std::path::Path>) -> Result<()> {
        match self {
            AnyStore::Sqlite(s) => s.backup_to(out),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => Err(crm_core::error::Error::field(
                "database",
                crm_core::error::codes::INVALID_OPTION,
                "backups copy SQLite databases; back PostgreSQL up with pg_dump",
            )),
        }
    }

    /// Idle SQLite reader connections kept open (see [`SqliteStore::with_readers`]); PostgreSQL
    /// sizes its pool itself.
    pub fn with_readers(self, n: usize) -> Self {
        match self {
            AnyStore::Sqlite(s) => AnyStore::Sqlite(s.with_readers(n)),
            #[cfg(feature = "postgres")]
            p @ AnyStore::Postgres(_) => p,
        }
    }

    /// Database connections opened so far, where the store counts them (SQLite's readers).
    pub fn connections_opened(&self) -> Option<u64> {
        match self {
            AnyStore::Sqlite(s) => Some(s.reader_connections_opened()),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> crate::Backend {
        match self {
            AnyStore::Sqlite(_) => crate::Backend::Sqlite,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => crate::Backend::Postgres,
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(s: SqliteStore) -> Self {
        AnyStore::Sqlite(s)
    }
}

#[cfg(feature = "postgres")]
impl From<crate::PgStore> for AnyStore {
    fn from(s: crate::PgStore) -> Self {
        AnyStore::Postgres(s)
    }
}

/// The bulk session of an [`AnyStore`].
#[derive(Debug)]
pub enum AnyBulk<'a> {
    Sqlite(crate::SqliteBulk<'a>),
    #[cfg(feature = "postgres")]
    Postgres(crate::PgBulk<'a>),
}

/// Calls the same method on whichever store (or session) is inside.
macro_rules! delegate {
    ($enum:ident, $self:expr, $s:ident => $call:expr) => {
        match $self {
            $enum::Sqlite($s) => $call.await,
            #[cfg(feature = "postgres")]
            $enum::Postgres($s) => $call.await,
        }
    };
}

impl Store for AnyStore {
    type Bulk<'a> = AnyBulk<'a>;

    async fn get(&self, tenant: Id, entity: &'static EntityDef, id: Id) -> Result<Option<Record>> {
        delegate!(AnyStore, self, s => s.get(tenant, entity, id))
    }

    async fn query(&self, tenant: Id, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        delegate!(AnyStore, self, s => s.query(tenant, entity, q))
    }

    async fn count(&self, tenant: Id, entity: &'static EntityDef, filter: &Filter) -> Result<u64> {
        delegate!(AnyStore, self, s => s.count(tenant, entity, filter))
    }

    async fn aggregate(&self, tenant: Id, entity: &'static EntityDef, q: &AggregateQuery) -> Result<Vec<Group>> {
        delegate!(AnyStore, self, s => s.aggregate(tenant, entity, q))
    }

    async fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> Result<Option<u64>> {
        delegate!(AnyStore, self, s => s.stamp(tenant, entities))
    }

    async fn apply(&self, changes: ChangeSet) -> Result<Applied> {
        delegate!(AnyStore, self, s => s.apply(changes))
    }

    async fn bulk(&self, tenant: Id) -> Result<AnyBulk<'_>> {
        match self {
            AnyStore::Sqlite(s) => Ok(AnyBulk::Sqlite(s.bulk(tenant).await?)),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => Ok(AnyBulk::Postgres(s.bulk(tenant).await?)),
        }
    }

    async fn audit(&self, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        delegate!(AnyStore, self, s => s.audit(tenant, q))
    }

    async fn audit_head(&self, tenant: Id) -> Result<AuditHead> {
        delegate!(AnyStore, self, s => s.audit_head(tenant))
    }

    async fn events(&self, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
        delegate!(AnyStore, self, s => s.events(tenant, after, limit))
    }

    async fn tenants(&self) -> Result<Vec<Id>> {
        delegate!(AnyStore, self, s => s.tenants())
    }

    async fn pending_changes(&self, tenant: Id, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        delegate!(AnyStore, self, s => s.pending_changes(tenant, after_seq, limit))
    }

    async fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> Result<u64> {
        delegate!(AnyStore, self, s => s.mark_synced(tenant, up_to_seq))
    }

    async fn lease(&self, tenant: Id, name: &str, holder: Id, now: Timestamp, until: Timestamp) -> Result<bool> {
        delegate!(AnyStore, self, s => s.lease(tenant, name, holder, now, until))
    }

    async fn idempotency_claim(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Option<StoredKey>> {
        delegate!(AnyStore, self, s => s.idempotency_claim(tenant, caller, key, fingerprint, now, expires_at))
    }

    async fn idempotency_settle(&self, tenant: Id, caller: &str, key: &str, answer: Option<&Answer>) -> Result<()> {
        delegate!(AnyStore, self, s => s.idempotency_settle(tenant, caller, key, answer))
    }

    fn free_space(&self) -> Option<u64> {
        match self {
            AnyStore::Sqlite(s) => s.free_space(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.free_space(),
        }
    }
}

impl BulkWrite for AnyBulk<'_> {
    async fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        delegate!(AnyBulk, self, b => b.query(entity, q))
    }

    async fn ids(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Id>> {
        delegate!(AnyBulk, self, b => b.ids(entity, q))
    }

    async fn apply(&mut self, changes: ChangeSet) -> Result<Applied> {
        delegate!(AnyBulk, self, b => b.apply(changes))
    }

    async fn commit(self) -> Result<Applied> {
        delegate!(AnyBulk, self, b => b.commit())
    }
}
