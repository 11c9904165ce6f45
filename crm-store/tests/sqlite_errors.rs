//! SQLite failures reach callers as the core's storage kinds, with no SQL or driver text shown.
#![allow(clippy::unwrap_used)]

use crm_core::error::Error;
use crm_core::store::Store;
use crm_core::value::Id;
use crm_store::SqliteStore;
use pollster::block_on;

/// What a client would see of an error: its message and serialised details.
fn shown(e: &Error) -> String {
    format!("{e} {}", serde_json::to_string(&e.details()).unwrap())
}

#[test]
fn a_database_locked_by_another_process_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let s = SqliteStore::open(&path).unwrap();
    // Another process holds the write lock for longer than the store's busy timeout.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = block_on(s.bulk(Id::from_u128(1))).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::Unavailable { retry_after: 1.., .. }), "{e:?}");
    assert_eq!(e.code(), "unavailable");
    assert!(e.internal_cause().unwrap().contains("locked"), "{e:?}");
    assert!(!shown(&e).contains("sqlite"), "{}", shown(&e));
    // Once the lock is released the same call succeeds.
    other.execute_batch("ROLLBACK").unwrap();
    block_on(s.bulk(Id::from_u128(1))).unwrap();
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    std::fs::write(
        &path,
        b"SELECT * FROM leads; this is not a database file, just garbage bytes".repeat(100),
    )
    .unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert_eq!(e.code(), "corrupt", "{e:?}");
    for leak in ["SELECT", "leads", "sqlite", "garbage"] {
        assert!(!shown(&e).contains(leak), "{}", shown(&e));
    }
}
