//! The store conformance suite from crm-core, run against the SQLite store.

crm_core::conformance_tests!(|| crm_store::SqliteStore::open_in_memory().unwrap());
