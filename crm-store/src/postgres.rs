//! The PostgreSQL store: the same schema, migrations and statements as the SQLite store (rendered for
//! PostgreSQL), executed with sqlx over a connection pool.
//!
//! - **Migrations** run on open, each in its own transaction holding a transaction-level advisory
//!   lock (one per schema), so several processes starting at once apply each version exactly once.
//! - **Writes**: a change set is one `READ COMMITTED` transaction. Updates and deletes name the version
//!   they expect (`WHERE ... AND version = $n`): a concurrent writer's committed change makes them
//!   touch no row, which is reported as `Conflict` — never a lost update. Audit entries and events
//!   take the tenant's next sequence numbers from its `tenant_heads` row, locked with
//!   `SELECT ... FOR UPDATE` after the row writes and held to commit, so the hash chain and the event
//!   sequence stay gapless and in commit order with any number of writers in any number of processes.
//! - **Bulk sessions** hold one transaction (each change set inside a savepoint) and the tenant's
//!   head row from their first audited change set to commit; dropped without commit, everything is
//!   rolled back.
//! - **Tenancy**: every statement is scoped by `org_id` (the first column of every key and index).
//! - **Errors** carry the SQLSTATE class, never SQL text, messages or row contents.
//!
//! See [`rt`] for how the (natively async) store serves blocking callers.

use crate::Backend;
use crate::schema::{self, SCHEMA_VERSION};
use crate::sql::{self, FIRST_FIELD, Raw};
use crm_core::change::{Applied, AuditEntry, ChangeSet, Event, Write};
use crm_core::clock::{Clock, IdGen, RandomIds, SystemClock};
use crm_core::error::{Error, FieldError, Result, codes};
use crm_core::idempotency::{Answer, StoredKey};
use crm_core::query::{AggregateQuery, Filter, StoreQuery, aggregate};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::store::{AuditHead, AuditQuery, BulkWrite, Group, Store};
use crm_core::sync::SyncEntry;
use crm_core::value::{FieldType, Id, Timestamp};
use sea_query_sqlx::SqlxValues;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres, Row, Transaction};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

mod migrate;
mod read;
pub(crate) mod rt;
mod write;

use read::*;
use rt::Rt;
use write::*;

const B: Backend = Backend::Postgres;

/// How to reach and use a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=...]` (or `postgresql://`).
    pub url: String,
    /// Keep the tables in this schema (created if missing) instead of the connection's default
    /// (`public`): several independent CRM databases can share one PostgreSQL database.
    pub schema: Option<String>,
    /// Pool size (connections opened on demand, up to this many).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing as `unavailable`.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }

    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }
}

/// The PostgreSQL store. Natively async (sqlx on tokio); see the module docs for its guarantees.
///
/// Constructors:
/// - [`PgStore::open`] / [`PgStore::open_with`] (blocking, for command lines, tests, embedders
///   without a runtime): the store starts a private tokio runtime with one worker thread, and its
///   futures can then be driven by any executor, including `pollster::block_on`.
/// - [`PgStore::connect`] / [`PgStore::connect_with`] (async, for servers): the store runs on the
///   caller's tokio runtime; its futures still work if polled elsewhere, as long as that runtime is
///   a multi-threaded one that keeps running.
/// - [`PgStore::open_temporary`]: a fresh schema, dropped with the store (tests).
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Where the store is, without the password (for messages).
    location: String,
    /// The schema the tables are in, if one was given.
    schema: Option<String>,
    /// A throwaway schema to drop with the store.
    temporary: Option<String>,
    /// Write the sync log ([`crm_core::sync`]); off by default (servers do not need it).
    sync_log: bool,
    // Dropped last: the pool's connections go back to it on drop.
    rt: Rt,
}

/// Seconds a caller should wait when the server is busy (no free connection, lock or
/// serialization contention, too many connections).
const RETRY_BUSY: u64 = 1;
/// Seconds a caller should wait when the server is out of reach (refused, shut down, restarting).
const RETRY_DOWN: u64 = 5;

/// Maps a driver error to its storage kind: an exhausted pool, a busy or unreachable server is
/// unavailable, a damaged page or an undecodable value corrupt, anything else internal. The cause
/// names the SQLSTATE and its class for server errors, the kind of failure otherwise: never the
/// statement or the server's message (which may quote values).
pub(crate) fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default().into_owned();
            let cause = format!("postgres: {} (SQLSTATE {code})", sqlstate(&code));
            match code.as_str() {
                // Serialization failure, deadlock, lock not available, statement timeout, too many
                // connections: the same call can succeed in a moment.
                "40001" | "40P01" | "55P03" | "57014" | "53300" => Error::unavailable(RETRY_BUSY, cause),
                // Admin or crash shutdown, cannot connect now (starting up), connection exceptions.
                "57P01" | "57P02" | "57P03" => Error::unavailable(RETRY_DOWN, cause),
                c if c.starts_with("08") => Error::unavailable(RETRY_DOWN, cause),
                "XX001" | "XX002" => Error::corrupt(cause),
                "53100" => Error::disk_full(cause),
                _ => Error::internal(cause),
            }
        }
        sqlx::Error::PoolTimedOut => Error::unavailable(RETRY_BUSY, "postgres: no free connection (pool timed out)"),
        sqlx::Error::Io(io) => Error::unavailable(RETRY_DOWN, format!("postgres: connection failed ({})", io.kind())),
        sqlx::Error::PoolClosed => Error::internal("postgres: the connection pool is closed"),
        sqlx::Error::Tls(_) => Error::internal("postgres: TLS failed"),
        sqlx::Error::Configuration(_) => Error::internal("postgres: invalid connection options"),
        sqlx::Error::Protocol(_) => Error::internal("postgres: protocol error"),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            Error::corrupt("postgres: unexpected stored value")
        }
        sqlx::Error::ColumnNotFound(_) => Error::internal("postgres: expected column missing"),
        sqlx::Error::RowNotFound => Error::internal("postgres: expected row missing"),
        _ => Error::internal("postgres: statement failed"),
    }
}

/// What a SQLSTATE means, in a few words (never the server's message, which may quote values).
fn sqlstate(code: &str) -> &'static str {
    match code {
        "23505" => "unique violation",
        "23503" => "foreign key violation",
        "23502" => "not-null violation",
        "40001" => "serialization failure: retry",
        "40P01" => "deadlock detected: retry",
        "55P03" => "lock not available",
        "57014" => "statement canceled",
        "25P02" => "transaction aborted",
        "53300" => "too many connections",
        "53100" => "disk full",
        "28P01" | "28000" => "authentication failed",
        "3D000" => "database does not exist",
        "3F000" => "schema does not exist",
        "42P01" => "table missing (schema not migrated?)",
        "42703" => "column missing (schema not migrated?)",
        c if c.starts_with("08") => "connection error",
        c if c.starts_with("22") => "invalid data",
        c if c.starts_with("23") => "constraint violation",
        c if c.starts_with("42") => "statement rejected",
        c if c.starts_with("53") => "insufficient resources",
        c if c.starts_with("57") => "server shutting down or operator intervention",
        _ => "server error",
    }
}

fn corrupt(table: &str, column: &str) -> Error {
    Error::corrupt(format!("unexpected stored value in {table}.{column}"))
}

/// The URL without its password.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Schema names are spelled into SQL: letters, digits and `_`, not starting with a digit.
fn check_schema(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::internal(format!("postgres: invalid schema name {name:?}")))
    }
}

async fn connect_pool(opts: &PgOptions) -> Result<PgPool> {
    let mut conn = PgConnectOptions::from_str(&opts.url).map_err(db)?;
    conn = conn.application_name("crm");
    // One direct connection first: an unreachable server or a bad password fails now, once, rather
    // than after the pool's retries until its acquire timeout.
    let mut first = PgConnection::connect_with(&conn).await.map_err(db)?;
    if let Some(s) = &opts.schema {
        check_schema(s)?;
        // Under an advisory lock: concurrent `CREATE SCHEMA IF NOT EXISTS` can still clash.
        let create = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}, hashtext('{s}')); CREATE SCHEMA IF NOT EXISTS \"{s}\"; COMMIT",
            migrate::LOCK_CLASS
        );
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(&mut first)
            .await
            .map_err(db)?;
        // Every pooled connection looks in the schema first.
        conn = conn.options([("search_path", s.as_str())]);
    }
    let _ = first.close().await;
    Ok(PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(opts.acquire_timeout)
        // A broken connection fails its next statement; not pinging on every checkout saves a round
        // trip per operation.
        .test_before_acquire(false)
        .connect_lazy_with(conn))
}

impl PgStore {
    /// Opens the database at `url` (blocking) and brings its schema up to date; see
    /// [`PgStore::open_with`].
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(PgOptions::new(url))
    }

    /// Opens (blocking) with a private runtime; the returned store's futures run under any executor.
    pub fn open_with(opts: PgOptions) -> Result<Self> {
        let rt = Rt::owned()?;
        let pool = rt
            .block_on(async { Self::prepare(&opts).await })
            .ok_or_else(|| Error::internal("postgres: the I/O runtime stopped"))??;
        Ok(Self::assemble(pool, &opts, rt))
    }

    /// Opens the database at `url` on the caller's tokio runtime and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PgOptions::new(url)).await
    }

    /// Opens on the caller's tokio runtime (errors outside of one).
    pub async fn connect_with(opts: PgOptions) -> Result<Self> {
        let rt = Rt::current()?;
        let pool = Self::prepare(&opts).await?;
        Ok(Self::assemble(pool, &opts, rt))
    }

    /// A throwaway store (tests): a fresh schema `crm_tmp_<random>` in the database at `url`,
    /// dropped with everything in it when the store is dropped.
    pub fn open_temporary(url: &str) -> Result<Self> {
        let name = format!("crm_tmp_{}", RandomIds.new_id(SystemClock.now()).simple());
        let mut store = Self::open_with(PgOptions::new(url).schema(&name).max_connections(4))?;
        store.temporary = Some(name);
        Ok(store)
    }

    async fn prepare(opts: &PgOptions) -> Result<PgPool> {
        let pool = connect_pool(opts).await?;
        migrate::migrate(&pool, SCHEMA_VERSION).await?;
        Ok(pool)
    }

    fn assemble(pool: PgPool, opts: &PgOptions, rt: Rt) -> Self {
        let mut location = redact_url(&opts.url);
        if let Some(s) = &opts.schema {
            location.push_str(&format!(" (schema {s})"));
        }
        PgStore {
            pool,
            location,
            schema: opts.schema.clone(),
            temporary: None,
            sync_log: false,
            rt,
        }
    }

    /// Turns the sync log on or off for this store instance (see [`crm_core::sync`]).
    pub fn with_sync_log(mut self, on: bool) -> Self {
        self.sync_log = on;
        self
    }

    /// Where the store is: the URL without its password, and the schema if one was given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The schema the tables are in (`None`: the connection's default, usually `public`).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The connection pool (for tools that need raw access, e.g. benchmarks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The tokio runtime the store's I/O runs on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u32> {
        self.rt
            .run(async {
                let mut c = self.pool.acquire().await.map_err(db)?;
                migrate::current_version(&mut c).await
            })
            .await
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(db)
    }

    fn run<'a, T: 'a>(&self, f: impl Future<Output = T> + Send + 'a) -> rt::InRuntime<'a, T> {
        self.rt.run(f)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(schema) = self.temporary.take() {
            let pool = self.pool.clone();
            let drop_schema = async move {
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await;
                pool.close().await;
            };
            if self.rt.is_owned() {
                self.rt.block_on(drop_schema);
            } else {
                self.rt.handle().spawn(drop_schema);
            }
        }
    }
}

impl Store for PgStore {
    type Bulk<'a> = PgBulk<'a>;

    async fn get(&self, tenant: Id, entity: &'static EntityDef, id: Id) -> Result<Option<Record>> {
        self.run(async move { get_in(&mut *self.conn().await?, tenant, entity, id).await })
            .await
    }

    async fn query(&self, tenant: Id, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        self.run(async move { query_in(&mut *self.conn().await?, tenant, entity, q).await })
            .await
    }

    async fn count(&self, tenant: Id, entity: &'static EntityDef, filter: &Filter) -> Result<u64> {
        self.run(async move { count_in(&mut *self.conn().await?, tenant, entity, filter).await })
            .await
    }

    async fn aggregate(&self, tenant: Id, entity: &'static EntityDef, q: &AggregateQuery) -> Result<Vec<Group>> {
        self.run(async move { aggregate_in(&mut *self.conn().await?, tenant, entity, q).await })
            .await
    }

    async fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> Result<Option<u64>> {
        self.run(async move { stamp_in(&mut *self.conn().await?, tenant, entities).await })
            .await
    }

    async fn apply(&self, changes: ChangeSet) -> Result<Applied> {
        self.run(async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let mut heads = None;
            match apply_in(&mut tx, changes, &mut heads, self.sync_log).await {
                Ok(a) => {
                    tx.commit().await.map_err(db)?;
                    Ok(a)
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn bulk(&self, tenant: Id) -> Result<PgBulk<'_>> {
        self.run(async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            // A bulk session's transaction grows its tables from what the statistics last saw
            // (often empty, and autovacuum cannot analyze rows not yet committed). A cached generic
            // plan made then stays a sequential scan: the import's per-chunk unique check
            // (`external_id IN (500 values)`) took 2.5 s a chunk at 50,000 new leads. Planning each
            // statement with its values sees the table's current size and takes the index.
            sqlx::raw_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            Ok(PgBulk {
                store: self,
                tx: Some(tx),
                tenant,
                heads: None,
                applied: Applied::default(),
            })
        })
        .await
    }

    async fn audit(&self, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.run(async move { audit_in(&mut *self.conn().await?, tenant, q).await })
            .await
    }

    async fn audit_head(&self, tenant: Id) -> Result<AuditHead> {
        self.run(async move { audit_head_in(&mut *self.conn().await?, tenant).await })
            .await
    }

    async fn events(&self, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
        self.run(async move { events_in(&mut *self.conn().await?, tenant, after, limit).await })
            .await
    }

    async fn tenants(&self) -> Result<Vec<Id>> {
        self.run(async move { tenants_in(&mut *self.conn().await?).await })
            .await
    }

    async fn pending_changes(&self, tenant: Id, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        self.run(async move { pending_in(&mut *self.conn().await?, tenant, after_seq, limit).await })
            .await
    }

    async fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> Result<u64> {
        self.run(async move {
            let up_to = i64::try_from(up_to_seq).unwrap_or(i64::MAX);
            let done = sqlx::query(sql::sync_sql(B).mark_synced.as_str())
                .bind(tenant)
                .bind(up_to)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn lease(&self, tenant: Id, name: &str, holder: Id, now: Timestamp, until: Timestamp) -> Result<bool> {
        self.run(async move {
            let done = sqlx::query(sql::lease_sql(B))
                .bind(tenant)
                .bind(name)
                .bind(holder)
                .bind(until.0)
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            Ok(done.rows_affected() == 1)
        })
        .await
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
        let q = sql::idempotency_sql(B);
        self.run(async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query(q.expire.as_str())
                .bind(tenant)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            // ON CONFLICT DO NOTHING waits for a racing claim of the same key to commit, so one wins.
            let claimed = sqlx::query(q.claim.as_str())
                .bind(tenant)
                .bind(caller)
                .bind(key)
                .bind(fingerprint)
                .bind(expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if claimed.rows_affected() == 1 {
                tx.commit().await.map_err(db)?;
                return Ok(None);
            }
            let row = sqlx::query(q.find.as_str())
                .bind(tenant)
                .bind(caller)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            // Released by its holder between the two statements: the caller may simply try again.
            let Some(row) = row else {
                return Err(Error::unavailable(1, "idempotency key released during a claim"));
            };
            let fp: String = row.try_get(0).map_err(db)?;
            let exp: i64 = row.try_get(1).map_err(db)?;
            let answer: Option<String> = row.try_get(2).map_err(db)?;
            sql::stored_key(fp, exp, answer).map(Some)
        })
        .await
    }

    async fn idempotency_settle(&self, tenant: Id, caller: &str, key: &str, answer: Option<&Answer>) -> Result<()> {
        let q = sql::idempotency_sql(B);
        self.run(async move {
            let query = match answer {
                Some(a) => {
                    let text = serde_json::to_string(a).map_err(|e| Error::internal(e.to_string()))?;
                    sqlx::query(q.answer.as_str()).bind(text)
                }
                None => sqlx::query(q.release.as_str()),
            };
            query
                .bind(tenant)
                .bind(caller)
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            Ok(())
        })
        .await
    }
}

/// A bulk session: one transaction across many change sets, each applied inside a savepoint (a
/// failing change set leaves the session as it was). The tenant's head row stays locked from the
/// first audited change set to commit. Dropping the session without [`BulkWrite::commit`] rolls
/// everything back.
#[derive(Debug)]
pub struct PgBulk<'a> {
    store: &'a PgStore,
    tx: Option<Transaction<'static, Postgres>>,
    tenant: Id,
    /// The locked head row, once locked.
    heads: Option<Heads>,
    applied: Applied,
}

impl PgBulk<'_> {
    fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>> {
        self.tx
            .as_mut()
            .ok_or_else(|| Error::internal("postgres: bulk session already finished"))
    }
}

impl Drop for PgBulk<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // sqlx queues the rollback and hands the connection back to the pool from a task: both
            // need the runtime's context.
            let _ctx = self.store.rt.handle().enter();
            drop(tx);
        }
    }
}

impl BulkWrite for PgBulk<'_> {
    async fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        let (store, tenant) = (self.store, self.tenant);
        store
            .run(async move { query_in(self.tx()?, tenant, entity, q).await })
            .await
    }

    async fn ids(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Id>> {
        let (store, tenant) = (self.store, self.tenant);
        store
            .run(async move { ids_in(self.tx()?, tenant, entity, q).await })
            .await
    }

    async fn apply(&mut self, changes: ChangeSet) -> Result<Applied> {
        let store = self.store;
        store
            .run(async move {
                if changes.tenant != self.tenant {
                    return Err(Error::internal("a bulk session writes one tenant"));
                }
                if changes.settle.is_some() {
                    return Err(Error::internal("a bulk session stores no idempotency answer"));
                }
                let audited = !changes.audit.is_empty() || !changes.events.is_empty();
                let mut heads = self.heads.clone();
                let tx = self.tx()?;
                // Lock the head row outside the savepoint: rolling a savepoint back releases the locks
                // taken inside it.
                if audited && heads.is_none() {
                    heads = Some(lock_heads(tx, changes.tenant).await?);
                }
                sqlx::raw_sql("SAVEPOINT change_set")
                    .execute(&mut **tx)
                    .await
                    .map_err(db)?;
                let mut next = heads.clone();
                match apply_in(tx, changes, &mut next, store.sync_log).await {
                    Ok(a) => {
                        sqlx::raw_sql("RELEASE SAVEPOINT change_set")
                            .execute(&mut **tx)
                            .await
                            .map_err(db)?;
                        self.heads = next;
                        self.applied.rows += a.rows;
                        self.applied.last_event_seq = a.last_event_seq.max(self.applied.last_event_seq);
                        Ok(a)
                    }
                    Err(e) => {
                        sqlx::raw_sql("ROLLBACK TO SAVEPOINT change_set; RELEASE SAVEPOINT change_set")
                            .execute(&mut **tx)
                            .await
                            .map_err(db)?;
                        self.heads = heads;
                        Err(e)
                    }
                }
            })
            .await
    }

    async fn commit(mut self) -> Result<Applied> {
        let store = self.store;
        let tx = self.tx.take();
        let applied = self.applied;
        store
            .run(async move {
                let tx = tx.ok_or_else(|| Error::internal("postgres: bulk session already finished"))?;
                tx.commit().await.map_err(db)?;
                Ok(applied)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://crm:s3cret@db.example:5432/crm?sslmode=require"),
            "postgres://crm@db.example:5432/crm?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://crm@127.0.0.1/crm"),
            "postgres://crm@127.0.0.1/crm"
        );
        assert_eq!(redact_url("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact_url("postgres://u:p@w@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema("crm_tmp_0a").is_ok());
        for bad in ["", "1x", "a-b", "a\"b", "a b"] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sqlstates_are_described_without_messages() {
        assert_eq!(sqlstate("23505"), "unique violation");
        assert_eq!(sqlstate("08006"), "connection error");
        assert_eq!(sqlstate("XX000"), "server error");
    }
}
