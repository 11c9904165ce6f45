//! The store conformance suite from crm-core, run against the SQLite store (with the sync log cases
//! on stores that log).
#![cfg(feature = "sqlite")]

crm_core::conformance_tests!(|| crm_store::SqliteStore::open_in_memory().unwrap(), sync_log: || {
    crm_store::SqliteStore::open_in_memory().unwrap().with_sync_log(true)
});
