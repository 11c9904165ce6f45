//! The SQLite store: one file in WAL mode, one writer connection (checked out by a write or a bulk
//! session, others wait for it), and a small pool of reader connections. Every write transaction is
//! `BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error. The async methods do their synchronous
//! work inside the future and hold no lock across an `.await`.

use crate::Backend;
use crate::schema::{self, SCHEMA_VERSION};
use crate::sql::{self, FIRST_FIELD, Raw};
use crm_core::change::{Applied, AuditEntry, ChangeSet, Event, Write};
use crm_core::error::{Error, FieldError, Result, codes};
use crm_core::idempotency::{Answer, StoredKey};
use crm_core::query::{AggregateQuery, Filter, StoreQuery, aggregate};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::store::{AuditHead, AuditQuery, BulkWrite, Group, Store};
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
/// Idle reader connections kept open by default ([`SqliteStore::with_readers`]).
const READERS: usize = 4;
const STATEMENT_CACHE: usize = 256;
/// Page cache per connection (negative: KiB). SQLite's default (2 MiB) makes large write transactions
/// (imports, with a dozen indexes per table) spill to the WAL and read their own pages back.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// The readers' page caches together, shared out over [`SqliteStore::with_readers`] (each between
/// SQLite's default 2 MiB and 16 MiB): a server keeping a reader per request in flight filled 16 MiB
/// in each, 700 MiB over 1,000,000 leads at 32 connections.
const READER_CACHE_BUDGET_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: (i64, i64) = (2 * 1024, 16 * 1024);
/// Memory-mapped reads (bytes of the file mapped), saving a copy per page read.
const MMAP_BYTES: i64 = 256 * 1024 * 1024;
/// Bytes of write-ahead log kept on disk once the log starts over (`journal_size_limit`). The log
/// grows to hold the largest transaction (an import of 1,000,000 leads: 3.2 GB) and SQLite keeps the
/// file at that size, reusing it, until the last connection closes; past this limit it is cut back at
/// the first commit after a checkpoint emptied it. Ordinary change sets never reach it.
const WAL_KEPT_BYTES: i64 = 64 * 1024 * 1024;
/// Pages of write-ahead log after which a commit checkpoints (SQLite's default: 1,000).
const CHECKPOINT_PAGES: i64 = 16_384;

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
    /// Opened with [`SqliteStore::open_read_only`]: no writer connection, writes are refused.
    read_only: bool,
    /// Readers open the file as `immutable` (a read-only directory without the WAL's side files).
    immutable: bool,
    /// SQLite's wait for a lock held by another connection or process.
    busy_timeout: Duration,
    readers: Mutex<Vec<Connection>>,
    /// Most idle readers kept open.
    max_readers: usize,
    /// Reader connections opened so far (a server that opens one per request is mis-sized).
    reader_opens: std::sync::atomic::AtomicU64,
    /// The directory of a throwaway database, removed on drop.
    _temp: Option<tempfile::TempDir>,
}

/// Seconds a caller should wait after the database was busy (the busy timeout already waited).
const RETRY_AFTER: u64 = 1;

/// Maps a driver error to its storage kind: busy or locked is unavailable, a damaged file or an
/// undecodable value corrupt, a full disk (or `max_page_count` reached) disk full, anything else
/// internal. The cause is SQLite's generic text for its
/// result code ("database is locked", "disk I/O error", ...): no SQL and no data.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as Code;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            let cause = format!("sqlite: {f}");
            match f.code {
                Code::DatabaseBusy | Code::DatabaseLocked => Error::unavailable(RETRY_AFTER, cause),
                Code::DatabaseCorrupt | Code::NotADatabase => Error::corrupt(cause),
                Code::DiskFull => Error::disk_full(cause),
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
        let mode = wal_mode(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal("sqlite: cannot enable WAL mode"));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}"
        ))
        .map_err(db)?;
        // journal_size_limit answers with a row.
        let _: i64 = conn
            .query_row(&format!("PRAGMA journal_size_limit = {WAL_KEPT_BYTES}"), [], |r| {
                r.get(0)
            })
            .map_err(db)?;
        migrate(&conn, SCHEMA_VERSION)?;
        Ok(SqliteStore {
            path,
            sync_log: false,
            writer: Mutex::new(Some(conn)),
            writer_free: Condvar::new(),
            read_only: false,
            immutable: false,
            busy_timeout: BUSY_TIMEOUT,
            readers: Mutex::new(Vec::new()),
            max_readers: READERS,
            reader_opens: Default::default(),
            _temp: temp,
        })
    }

    /// Opens an existing database for reading only (inspection: `crm check`, `crm export`): nothing
    /// is created, migrated or written, so a file on a read-only medium, or one the process may not
    /// write, can be read. Writes through the store are refused with a `read_only` error on
    /// `database`, and so is a database that needs a migration (open it with [`SqliteStore::open`]
    /// once). In a directory where SQLite cannot create the WAL's `-shm` file (read-only, and no
    /// writer has it open), the file is read as `immutable`: SQLite then assumes nobody changes it.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::not_found("database", path.display()));
        }
        let mut store = SqliteStore {
            path,
            sync_log: false,
            writer: Mutex::new(None),
            writer_free: Condvar::new(),
            read_only: true,
            immutable: false,
            busy_timeout: BUSY_TIMEOUT,
            readers: Mutex::new(Vec::new()),
            max_readers: READERS,
            reader_opens: Default::default(),
            _temp: None,
        };
        // SQLite cannot read a WAL database read-only when it can neither find nor create its
        // `-shm` file (a read-only directory after a clean shutdown); immutable needs neither.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let probe = Connection::open_with_flags(&store.path, flags)
            .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)));
        if let Err(e) = probe {
            use rusqlite::ErrorCode as Code;
            match e.sqlite_error_code() {
                Some(Code::CannotOpen | Code::ReadOnly) => store.immutable = true,
                _ => return Err(db(e)),
            }
        }
        let conn = store.open_reader()?;
        let has_schema: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE name = ?1",
                [schema::SCHEMA_MIGRATIONS],
                |r| r.get(0),
            )
            .map_err(db)?;
        let version = if has_schema { current_version(&conn)? } else { 0 };
        if version > SCHEMA_VERSION {
            return Err(newer(version));
        }
        if version < SCHEMA_VERSION {
            return Err(Error::field(
                "database",
                codes::READ_ONLY,
                format!(
                    "the database is at schema version {version} and needs migrating to {SCHEMA_VERSION}, \
                     which a read-only open does not do: run a command that writes (such as `crm score`) once"
                ),
            ));
        }
        lock(&store.readers).push(conn);
        Ok(store)
    }

    /// Writes a copy of the database to `out`, a new file, with SQLite's online backup: all pages are
    /// copied in one step inside one read transaction, so the copy is the database as of one moment
    /// (every committed change set whole, the audit chain and its head together) while writers,
    /// in this process or another (a running server), go on. The copy is written beside `out`
    /// and renamed into place once complete; an existing `out` is refused. Restoring is putting the
    /// copy in place of the database file (with no `-wal` or `-shm` beside it) while nothing has
    /// it open.
    pub fn backup_to(&self, out: impl AsRef<Path>) -> Result<()> {
        use rusqlite::backup::{Backup, StepResult};
        let out = out.as_ref();
        let exists = || Error::field("out", codes::DUPLICATE, format!("{} already exists", out.display()));
        if out.exists() {
            return Err(exists());
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let io = |what: &str, e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                Error::disk_full(format!("backup: {what}: {e}"))
            } else {
                Error::field(
                    "out",
                    codes::INVALID_OPTION,
                    format!("cannot {what} {}: {e}", out.display()),
                )
            }
        };
        let tmp = tempfile::Builder::new()
            .prefix(".crm-backup-")
            .tempfile_in(dir)
            .map_err(|e| io("write", e))?;
        {
            let mut dst = Connection::open(tmp.path()).map_err(db)?;
            self.read(|src| {
                let backup = Backup::new(src, &mut dst).map_err(db)?;
                let deadline = Instant::now() + self.busy_timeout;
                loop {
                    match backup.step(-1).map_err(db)? {
                        StepResult::Done => return Ok(()),
                        StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        StepResult::Busy | StepResult::Locked => {
                            return Err(Error::unavailable(RETRY_AFTER, "sqlite: backup: database is busy"));
                        }
                        _ => {}
                    }
                }
            })?;
            dst.close().map_err(|(_, e)| db(e))?;
        }
        tmp.persist_noclobber(out).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                io("write", e.error)
            }
        })?;
        Ok(())
    }

    /// Whether the store was opened with [`SqliteStore::open_read_only`].
    pub fn read_only(&self) -> bool {
        self.read_only
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

    /// Sets how long an operation waits for a lock another process holds (5 s by default) before it
    /// fails as `unavailable`.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.busy_timeout = timeout;
        if let Some(w) = self.writer.get_mut().unwrap_or_else(PoisonError::into_inner) {
            w.busy_timeout(timeout).map_err(db)?;
        }
        for r in self.readers.get_mut().unwrap_or_else(PoisonError::into_inner) {
            r.busy_timeout(timeout).map_err(db)?;
        }
        Ok(self)
    }

    /// Keeps up to `n` idle reader connections open (4 by default; at least 1). A reader is opened
    /// when every open one is busy, and closed after its read when `n` are already idle: a server
    /// sets `n` to the reads it runs at once, so that no request opens a connection. The readers
    /// share a 64 MiB page-cache budget (16 MiB each for 4, SQLite's default 2 MiB from 32 on).
    pub fn with_readers(mut self, n: usize) -> Self {
        self.max_readers = n.max(1);
        self
    }

    /// The page cache of each reader: the budget shared out over the readers kept.
    fn reader_cache_kib(&self) -> i64 {
        let (least, most) = READER_CACHE_KIB;
        (READER_CACHE_BUDGET_KIB / self.max_readers as i64).clamp(least, most)
    }

    /// Reader connections opened since the store was (see [`SqliteStore::with_readers`]).
    pub fn reader_connections_opened(&self) -> u64 {
        self.reader_opens.load(std::sync::atomic::Ordering::Relaxed)
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
        let conn = if self.immutable {
            let uri = format!("file:{}?immutable=1", uri_path(&self.path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        } else {
            Connection::open_with_flags(&self.path, flags)
        }
        .map_err(db)?;
        configure(&conn, self.reader_cache_kib())?;
        conn.busy_timeout(self.busy_timeout).map_err(db)?;
        self.reader_opens.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        if pool.len() < self.max_readers {
            pool.push(conn);
        }
        out
    }

    /// Runs a short bounded read `f` (a row by key, the configuration stamp) on the writer connection
    /// when no write holds it, else on a reader. SQLite drops a connection's page cache and memory
    /// map whenever another connection committed since its last read, so a reader's first read after
    /// each write starts cold (unmapping and faulting pages back in); the writer's own commits leave
    /// its cache warm: a create's reads before its write took half the time (ADR 0024).
    /// A read-only store has no writer: its slot is always empty.
    fn point_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = lock(&self.writer).take();
        match idle {
            Some(conn) => {
                let w = WriterConn {
                    store: self,
                    conn: Some(conn),
                };
                f(w.conn()?)
            }
            None => self.read(f),
        }
    }

    /// Checks the writer connection out, waiting while another write or bulk session holds it.
    fn writer(&self) -> Result<WriterConn<'_>> {
        if self.read_only {
            return Err(Error::field(
                "database",
                codes::READ_ONLY,
                "the database was opened read-only",
            ));
        }
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

/// A path for a `file:` URI: `%`, `?` and `#` would be read as URI syntax.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
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

/// Puts the database in WAL mode and answers the mode it is in. Switching needs the file to itself,
/// and SQLite answers busy at once (without its busy handler) while another connection is opening
/// it, as when two processes open a new file together: retried until the busy timeout.
fn wal_mode(conn: &Connection) -> Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(e)
                if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy))
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r.map_err(db),
        }
    }
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
            // Another process may have migrated since we looked; then there is nothing to write.
            if current_version(conn)? < m.version {
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
            }
            conn.execute_batch("COMMIT").map_err(db)
        };
        if let Err(e) = step() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    current_version(conn)
}

/// A clean shutdown merges the write-ahead log into the database file, so that the file alone (a copy,
/// a backup of the directory) holds every committed write.
impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Readers first: the last connection to close checkpoints the WAL and removes it, which a
        // read-only connection cannot do.
        self.readers.get_mut().unwrap_or_else(PoisonError::into_inner).clear();
        if let Some(conn) = self.writer.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            // Also merges what it can while another process keeps the file open.
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }
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

/// Whether `filter` pins one row by a unique key (its id or a unique field, each with its own unique
/// index), so that reading it is as short as a get: a create's duplicate check.
fn keyed(def: &EntityDef, filter: &Filter) -> bool {
    match filter {
        Filter::Cmp {
            field,
            op: crm_core::query::Op::Eq,
            ..
        } => field == "id" || def.fields.iter().any(|f| f.unique && f.name == field.as_str()),
        Filter::And(parts) => parts.iter().any(|p| keyed(def, p)),
        _ => false,
    }
}

impl Store for SqliteStore {
    type Bulk<'a> = SqliteBulk<'a>;

    async fn get(&self, tenant: Id, entity: &'static EntityDef, id: Id) -> Result<Option<Record>> {
        self.point_read(|c| get_in(c, tenant, entity, id))
    }

    async fn query(&self, tenant: Id, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        match keyed(entity, &q.filter) {
            true => self.point_read(|c| query_in(c, tenant, entity, q)),
            false => self.read(|c| query_in(c, tenant, entity, q)),
        }
    }

    async fn count(&self, tenant: Id, entity: &'static EntityDef, filter: &Filter) -> Result<u64> {
        self.read(|c| count_in(c, tenant, entity, filter))
    }

    async fn aggregate(&self, tenant: Id, entity: &'static EntityDef, q: &AggregateQuery) -> Result<Vec<Group>> {
        self.read(|c| aggregate_in(c, tenant, entity, q))
    }

    async fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> Result<Option<u64>> {
        self.point_read(|c| stamp_in(c, tenant, entities))
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
            lost: None,
        })
    }

    async fn audit(&self, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.read(|c| audit_in(c, tenant, q))
    }

    async fn audit_head(&self, tenant: Id) -> Result<AuditHead> {
        self.read(|c| audit_head_in(c, tenant))
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
        self.write(|c| {
            c.prepare_cached(&q.expire)
                .and_then(|mut s| s.execute((tenant, now.0)))
                .map_err(db)?;
            let claimed = c
                .prepare_cached(&q.claim)
                .and_then(|mut s| s.execute((tenant, caller, key, fingerprint, expires_at.0)))
                .map_err(db)?;
            if claimed == 1 {
                return Ok(None);
            }
            let (fingerprint, expires, answer) = c
                .prepare_cached(&q.find)
                .and_then(|mut s| {
                    s.query_row((tenant, caller, key), |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    })
                })
                .map_err(db)?;
            sql::stored_key(fingerprint, expires, answer).map(Some)
        })
    }

    async fn idempotency_settle(&self, tenant: Id, caller: &str, key: &str, answer: Option<&Answer>) -> Result<()> {
        let q = sql::idempotency_sql(B);
        self.write(|c| {
            match answer {
                Some(a) => {
                    let text = serde_json::to_string(a).map_err(|e| Error::internal(e.to_string()))?;
                    c.prepare_cached(&q.answer)
                        .and_then(|mut s| s.execute((text, tenant, caller, key)))
                }
                None => c
                    .prepare_cached(&q.release)
                    .and_then(|mut s| s.execute((tenant, caller, key))),
            }
            .map_err(db)?;
            Ok(())
        })
    }

    /// The free space of the file system holding the database (`None` where the platform cannot
    /// tell). `CRM_TEST_FREE_BYTES` overrides it, for tests only: it lets a test see an import
    /// refused for want of disk without filling one.
    fn free_space(&self) -> Option<u64> {
        if let Some(n) = std::env::var("CRM_TEST_FREE_BYTES").ok().and_then(|v| v.parse().ok()) {
            return Some(n);
        }
        free_space_at(self.path.parent()?)
    }
}

#[cfg(unix)]
fn free_space_at(dir: &Path) -> Option<u64> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(not(unix))]
fn free_space_at(_dir: &Path) -> Option<u64> {
    None
}

/// A bulk session: the writer connection with one open transaction across many change sets.
/// Dropping it without [`BulkWrite::commit`] rolls everything back.
#[derive(Debug)]
pub struct SqliteBulk<'a> {
    writer: WriterConn<'a>,
    tenant: Id,
    applied: Applied,
    /// Why SQLite rolled the whole transaction back by itself (a full disk): the session is over.
    lost: Option<Error>,
}

impl SqliteBulk<'_> {
    fn live(&self) -> Result<&Connection> {
        match &self.lost {
            Some(e) => Err(e.clone()),
            None => self.writer.conn(),
        }
    }
}

impl BulkWrite for SqliteBulk<'_> {
    async fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        query_in(self.live()?, self.tenant, entity, q)
    }

    async fn ids(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Id>> {
        ids_in(self.live()?, self.tenant, entity, q)
    }

    /// Applies one change set inside the session; a failing set leaves the session as it was.
    async fn apply(&mut self, changes: ChangeSet) -> Result<Applied> {
        if changes.tenant != self.tenant {
            return Err(Error::internal("a bulk session writes one tenant"));
        }
        if changes.settle.is_some() {
            return Err(Error::internal("a bulk session stores no idempotency answer"));
        }
        let conn = self.live()?;
        conn.execute_batch("SAVEPOINT change_set").map_err(db)?;
        let out = apply_in(conn, changes, self.writer.store.sync_log)
            .and_then(|a| conn.execute_batch("RELEASE change_set").map(|()| a).map_err(db));
        match out {
            Ok(a) => {
                self.applied.rows += a.rows;
                self.applied.last_event_seq = a.last_event_seq;
                Ok(a)
            }
            // SQLite rolls the whole transaction back by itself on some errors (a full disk): there
            // is no savepoint to return to, the session's earlier writes are gone too, and the
            // error that did it is the one to report, now and for the rest of the session.
            Err(e) if conn.is_autocommit() => {
                self.lost = Some(e.clone());
                Err(e)
            }
            Err(e) => {
                if conn
                    .execute_batch("ROLLBACK TO change_set; RELEASE change_set")
                    .is_err()
                {
                    // Nothing of this session can be trusted to commit: end it, keeping the cause.
                    let _ = conn.execute_batch("ROLLBACK");
                    self.lost = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    async fn commit(self) -> Result<Applied> {
        let conn = self.live()?;
        conn.execute_batch("COMMIT").map_err(db)?;
        Ok(self.applied)
    }
}

#[cfg(test)]
mod tests;
