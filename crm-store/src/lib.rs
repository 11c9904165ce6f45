//! # crm-store
//!
//! SQL storage for [`crm_core`]: the schema and its migrations, derived from the entity declarations
//! ([`crm_core::entity::all`]); the statements, built once with [`sea_query`]; and the backends that
//! execute them.
//!
//! - [`schema`]: tables, indexes and versioned, additive migrations, rendered for SQLite or PostgreSQL
//!   from the same code.
//! - [`sql`]: backend-neutral statement building: a bound [`crm_core::query::Filter`] becomes a SQL
//!   condition with exactly the semantics of [`crm_core::query::Compiled`] (three-valued logic, nulls
//!   first ascending, binary text order), plus the fixed per-entity statements, cached as SQL text.
//! - [`SqliteStore`] (feature `sqlite`, on by default): the embedded store. WAL mode, one writer
//!   connection, a small pool of readers (short reads by key use the writer when it is idle, ADR
//!   0024); its async methods do their synchronous work inside the future, so a blocking caller
//!   drives them with `pollster::block_on`. Each connection keeps a page cache of its own when the
//!   bundled SQLite is built without `SQLITE_ENABLE_MEMORY_MANAGEMENT`, as this repository's
//!   `.cargo/config.toml` does; a workspace embedding this crate sets the same `LIBSQLITE3_FLAGS`
//!   (ADR 0025).
//! - `PgStore` (feature `postgres`, off by default): the PostgreSQL store (sqlx, tokio), natively
//!   async; its futures also run under a blocking `block_on` (see its docs for the runtime).
//! - [`blob::DirBlobStore`]: attachment bytes in a directory, the default blob store.
//! - [`AnyStore`] and [`open`]: one of the two, chosen by the database string (`postgres://...` or
//!   `postgresql://...` is PostgreSQL, anything else a SQLite file).
//!
//! ```
//! use crm_core::store::Store;
//! let store = crm_store::SqliteStore::open_in_memory().unwrap();
//! assert!(pollster::block_on(store.tenants()).unwrap().is_empty());
//! ```

#[cfg(feature = "sqlite")]
mod any;
pub mod blob;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
pub mod schema;
pub mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "sqlite")]
pub use any::{AnyBulk, AnyStore, connect, is_postgres_url, open, open_read_only};
#[cfg(feature = "postgres")]
pub use postgres::{PgBulk, PgOptions, PgStore, redact_url};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteBulk, SqliteStore};

pub use schema::SCHEMA_VERSION;

/// The SQL dialect statements are rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Renders a query (SELECT, INSERT, UPDATE, DELETE) with its bound values.
    pub fn build<Q: sea_query::QueryStatementWriter>(self, q: &Q) -> (String, sea_query::Values) {
        match self {
            Backend::Sqlite => q.build(sea_query::SqliteQueryBuilder),
            Backend::Postgres => q.build(sea_query::PostgresQueryBuilder),
        }
    }

    /// Renders a schema statement (CREATE TABLE, ALTER TABLE, CREATE INDEX).
    pub fn schema<S: sea_query::SchemaStatementBuilder>(self, s: &S) -> String {
        match self {
            Backend::Sqlite => s.build(sea_query::SqliteQueryBuilder),
            Backend::Postgres => s.build(sea_query::PostgresQueryBuilder),
        }
    }
}
