//! The SQLite store: one file in WAL mode, one writer connection (checked out by a write or a bulk
//! session, others wait for it), and a small pool of reader connections. Every write transaction is
//! `BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error. The async methods do their synchronous
//! work inside the future and hold no lock across an `.await`.

use crate::Backend;
use crate::schema::{self, SCHEMA_VERSION};
use crate::sql::{self, FIRST_FIELD, Raw};
use crm_core::change::{Applied, AuditEntry, ChangeSet, Event, Write};
use crm_core::error::{Error, FieldError, Result, codes};
use crm_core::query::{Filter, StoreQuery};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::store::{AuditQuery, BulkWrite, Group, Store};
use crm_core::sync::SyncEntry;
use crm_core::value::{Id, Timestamp};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params_from_iter};
use sea_query_rusqlite::RusqliteValue;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod read;
mod write;

use read::*;
use write::*;

const B: Backend = Backend::Sqlite;
/// SQLite's own wait for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write waits for the writer connection (held by another write or a bulk session).
const WRITER_WAIT: Duration = Duration::from_secs(30);
/// Idle reader connections kept open.
const READERS: usize = 4;
const STATEMENT_CACHE: usize = 256;
/// Page cache per connection (negative: KiB). SQLite's default (2 MiB) makes large write transactions
/// (imports, with a dozen indexes per table) spill to the WAL and read their own pages back.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// Memory-mapped reads (bytes of the file mapped), saving a copy per page read.
const MMAP_BYTES: i64 = 256 * 1024 * 1024;

/// The embedded SQLite store: one database file in WAL mode (`synchronous = NORMAL`, 5 s busy
/// timeout). Writes go through a single writer connection, checked out for one change set
/// ([`Store::apply`], in `BEGIN IMMEDIATE` ... `COMMIT`) or for a whole bulk session
/// ([`Store::bulk`]); other writers wait for it (up to 30 s). Reads use a small pool of read-only
/// connections and never wait for the writer. Statements are prepared once per connection and
/// cached; the fixed ones (get, insert, update, delete) are rendered once per process.
///
/// The methods are `async` but do their (fast, synchronous) work inside the future without
/// awaiting, so a blocking caller drives them with `pollster::block_on`, and an async server should
/// call them from a blocking-capable thread.
///
/// An offline device turns on the local change-set log with [`SqliteStore::with_sync_log`].
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// Log every applied change set to `sync_log` (see [`crm_core::sync`]).
    sync_log: bool,
    writer: Mutex<Option<Connection>>,
    writer_free: Condvar,
    readers: Mutex<Vec<Connection>>,
    /// The directory of a throwaway database, removed on drop.
    _temp: Option<tempfile::TempDir>,
}

/// Seconds a caller should wait after the database was busy (the busy timeout already waited).
const RETRY_AFTER: u64 = 1;

/// Maps a driver error to its storage kind: busy or locked is unavailable, a damaged file or an
/// undecodable value corrupt, anything else internal. The cause is SQLite's generic text for its
/// result code ("database is locked", "disk I/O error", ...): no SQL and no data.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as Code;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            let cause = format!("sqlite: {f}");
            match f.code {
                Code::DatabaseBusy | Code::DatabaseLocked => Error::unavailable(RETRY_AFTER, cause),
                Code::DatabaseCorrupt | Code::NotADatabase => Error::corrupt(cause),
                _ => Error::internal(cause),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(_) => Error::corrupt("sqlite: undecodable stored value"),
        rusqlite::Error::QueryReturnedNoRows => Error::internal("sqlite: expected row missing"),
        _ => Error::internal("sqlite: statement failed"),
    }
}

fn corrupt(table: &str, column: &str) -> Error {
    Error::corrupt(format!("unexpected stored value in {table}.{column}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// `":memory:"` gives a throwaway database, as [`SqliteStore::open_in_memory`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        if path.as_ref() == Path::new(":memory:") {
            return Self::open_in_memory();
        }
        Self::open_at(path.as_ref().to_path_buf(), None)
    }

    /// A throwaway database (tests, scratch work): a file in a fresh temporary directory, removed when
    /// the store is dropped. A file rather than SQLite's `:memory:` so that the reader connections see
    /// the writer's data and WAL behaves as in production.
    pub fn open_in_memory() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("crm-store-")
            .tempdir()
            .map_err(|e| Error::internal(format!("cannot create a temporary directory: {e}")))?;
        Self::open_at(dir.path().join("crm.db"), Some(dir))
    }

    fn open_at(path: PathBuf, temp: Option<tempfile::TempDir>) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(db)?;
        configure(&conn, WRITER_CACHE_KIB)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal("sqlite: cannot enable WAL mode"));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(db)?;
        migrate(&conn, SCHEMA_VERSION)?;
        Ok(SqliteStore {
            path,
            sync_log: false,
            writer: Mutex::new(Some(conn)),
            writer_free: Condvar::new(),
            readers: Mutex::new(Vec::new()),
            _temp: temp,
        })
    }

    /// Turns the local change-set log on or off for writes through this store (off by default).
    /// With it on, every change set applied with a row write (including each change set of a bulk
    /// session) also writes a [`SyncEntry`] to the `sync_log` table, in the same transaction; read
    /// them with [`Store::pending_changes`], drop the ones a server acknowledged with
    /// [`Store::mark_synced`]. An app that syncs (a phone) opens its database with it on every time;
    /// a server does not need it. See [`crm_core::sync`].
    ///
    /// ```
    /// let store = crm_store::SqliteStore::open_in_memory().unwrap().with_sync_log(true);
    /// assert!(store.sync_log());
    /// ```
    pub fn with_sync_log(mut self, on: bool) -> Self {
        self.sync_log = on;
        self
    }

    /// Whether change sets are logged (see [`SqliteStore::with_sync_log`]).
    pub fn sync_log(&self) -> bool {
        self.sync_log
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_reader(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(db)?;
        configure(&conn, READER_CACHE_KIB)?;
        Ok(conn)
    }

    /// Runs `f` on a reader connection (from the pool, or a new one when all are busy).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < READERS {
            pool.push(conn);
        }
        out
    }

    /// Checks the writer connection out, waiting while another write or bulk session holds it.
    fn writer(&self) -> Result<WriterConn<'_>> {
        let deadline = Instant::now() + WRITER_WAIT;
        let mut slot = lock(&self.writer);
        loop {
            if let Some(conn) = slot.take() {
                return Ok(WriterConn {
                    store: self,
                    conn: Some(conn),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::unavailable(
                    RETRY_AFTER,
                    "sqlite: database is busy (writer in use)",
                ));
            }
            slot = self
                .writer_free
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Runs `f` in a write transaction on the writer connection: committed if it succeeds, rolled
    /// back otherwise.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let w = self.writer()?;
        let conn = w.conn()?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let out = f(conn).and_then(|v| conn.execute_batch("COMMIT").map(|_| v).map_err(db));
        if out.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        out
    }
}

fn configure(conn: &Connection, cache_kib: i64) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY"))
        .map_err(db)?;
    // mmap_size answers with a row.
    let _: Option<i64> = conn
        .query_row(&format!("PRAGMA mmap_size = {MMAP_BYTES}"), [], |r| r.get(0))
        .optional()
        .map_err(db)?;
    Ok(())
}

/// The schema version recorded in the database (0 for a new one).
pub(crate) fn current_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn
        .query_row(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {}", schema::SCHEMA_MIGRATIONS),
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    u32::try_from(v).map_err(|_| corrupt(schema::SCHEMA_MIGRATIONS, "version"))
}

fn newer(v: u32) -> Error {
    Error::corrupt(format!(
        "database schema version {v} is newer than this build ({SCHEMA_VERSION})"
    ))
}

/// Applies the migrations after the database's version up to `target`, each in its own transaction.
pub(crate) fn migrate(conn: &Connection, target: u32) -> Result<u32> {
    conn.execute_batch(&schema::migrations_table(B)).map_err(db)?;
    let v = current_version(conn)?;
    if v > SCHEMA_VERSION {
        return Err(newer(v));
    }
    for m in schema::migrations(B)
        .into_iter()
        .filter(|m| m.version > v && m.version <= target)
    {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let step = || -> Result<()> {
            // Another process may have migrated since we looked.
            if current_version(conn)? >= m.version {
                return Ok(());
            }
            for s in &m.statements {
                conn.execute_batch(s).map_err(db)?;
            }
            conn.execute(
                &format!(
                    "INSERT INTO {} (version, applied_at) VALUES (?1, ?2)",
                    schema::SCHEMA_MIGRATIONS
                ),
                (
                    i64::from(m.version),
                    Timestamp::from_datetime(time::OffsetDateTime::now_utc()).0,
                ),
            )
            .map_err(db)?;
            conn.execute_batch("COMMIT").map_err(db)
        };
        if let Err(e) = step() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    current_version(conn)
}

/// The writer connection, checked out; returned (rolled back if a transaction is still open) on drop.
#[derive(Debug)]
struct WriterConn<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl WriterConn<'_> {
    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("sqlite: writer connection lost"))
    }
}

impl Drop for WriterConn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            *lock(&self.store.writer) = Some(conn);
            self.store.writer_free.notify_one();
        }
    }
}

impl Store for SqliteStore {
    type Bulk<'a> = SqliteBulk<'a>;

    async fn get(&self, tenant: Id, entity: &'static EntityDef, id: Id) -> Result<Option<Record>> {
        self.read(|c| get_in(c, tenant, entity, id))
    }

    async fn query(&self, tenant: Id, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        self.read(|c| query_in(c, tenant, entity, q))
    }

    async fn count(&self, tenant: Id, entity: &'static EntityDef, filter: &Filter) -> Result<u64> {
        self.read(|c| count_in(c, tenant, entity, filter))
    }

    async fn aggregate(
        &self,
        tenant: Id,
        entity: &'static EntityDef,
        filter: &Filter,
        group_by: &str,
        sum: Option<&str>,
    ) -> Result<Vec<Group>> {
        self.read(|c| aggregate_in(c, tenant, entity, filter, group_by, sum))
    }

    async fn apply(&self, changes: ChangeSet) -> Result<Applied> {
        self.write(|c| apply_in(c, changes, self.sync_log))
    }

    async fn bulk(&self, tenant: Id) -> Result<SqliteBulk<'_>> {
        let w = self.writer()?;
        w.conn()?.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        Ok(SqliteBulk {
            writer: w,
            tenant,
            applied: Applied::default(),
        })
    }

    async fn audit(&self, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.read(|c| audit_in(c, tenant, q))
    }

    async fn events(&self, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
        self.read(|c| events_in(c, tenant, after, limit))
    }

    async fn tenants(&self) -> Result<Vec<Id>> {
        self.read(tenants_in)
    }

    async fn pending_changes(&self, tenant: Id, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        self.read(|c| pending_in(c, tenant, after_seq, limit))
    }

    async fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> Result<u64> {
        let up_to = i64::try_from(up_to_seq).unwrap_or(i64::MAX);
        self.write(|c| {
            let n = c
                .prepare_cached(&sql::sync_sql(B).mark_synced)
                .and_then(|mut s| s.execute((tenant, up_to)))
                .map_err(db)?;
            Ok(n as u64)
        })
    }

    async fn lease(&self, tenant: Id, name: &str, holder: Id, now: Timestamp, until: Timestamp) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached(sql::lease_sql(B))
                .and_then(|mut s| s.execute((tenant, name, holder, until.0, now.0)))
                .map_err(db)?;
            Ok(n == 1)
        })
    }
}

/// A bulk session: the writer connection with one open transaction across many change sets.
/// Dropping it without [`BulkWrite::commit`] rolls everything back.
#[derive(Debug)]
pub struct SqliteBulk<'a> {
    writer: WriterConn<'a>,
    tenant: Id,
    applied: Applied,
}

impl BulkWrite for SqliteBulk<'_> {
    async fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        query_in(self.writer.conn()?, self.tenant, entity, q)
    }

    /// Applies one change set inside the session; a failing set leaves the session as it was.
    async fn apply(&mut self, changes: ChangeSet) -> Result<Applied> {
        if changes.tenant != self.tenant {
            return Err(Error::internal("a bulk session writes one tenant"));
        }
        let conn = self.writer.conn()?;
        conn.execute_batch("SAVEPOINT change_set").map_err(db)?;
        match apply_in(conn, changes, self.writer.store.sync_log) {
            Ok(a) => {
                conn.execute_batch("RELEASE change_set").map_err(db)?;
                self.applied.rows += a.rows;
                self.applied.last_event_seq = a.last_event_seq;
                Ok(a)
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO change_set; RELEASE change_set")
                    .map_err(db)?;
                Err(e)
            }
        }
    }

    async fn commit(self) -> Result<Applied> {
        let conn = self.writer.conn()?;
        conn.execute_batch("COMMIT").map_err(db)?;
        Ok(self.applied)
    }
}

#[cfg(test)]
mod tests;
