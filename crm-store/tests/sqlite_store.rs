//! The shared store cases (`store_cases/mod.rs`) on in-memory SQLite stores. What only SQLite has
//! (files, WAL, migrations from old versions, the single writer) is tested in `src/sqlite/tests.rs`.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod common;
mod store_cases;

store_cases::store_cases!(|| crm_store::SqliteStore::open_in_memory().unwrap(), sync_log: || {
    crm_store::SqliteStore::open_in_memory().unwrap().with_sync_log(true)
});
