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

fn assert_unavailable(what: &str, r: Result<(), Error>) {
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable { retry_after: 1.., .. }),
        "{what}: {e:?}"
    );
    assert!(!shown(&e).contains("sqlite"), "{}", shown(&e));
}

/// A write lock held by another process past the busy timeout is `unavailable` (retry later) for
/// every write, never an internal error; reads and opening go on.
#[test]
fn writes_to_a_locked_database_are_unavailable() {
    use crm_core::change::{ChangeSet, Write};
    use crm_core::entity::CONTACT;
    use crm_core::record::Record;
    use crm_core::value::Timestamp;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let tenant = Id::from_u128(1);
    let s = SqliteStore::open(&path)
        .unwrap()
        .with_busy_timeout(Duration::from_millis(20))
        .unwrap();
    let contact = |n: u128| {
        let mut r = Record::empty(&CONTACT, tenant, Id::from_u128(100 + n), Timestamp(5));
        r.set("first_name", "Ann");
        let mut cs = ChangeSet::new(tenant);
        cs.writes.push(Write::Insert(r));
        cs
    };
    block_on(s.apply(contact(1))).unwrap();

    // Another process writes.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_unavailable("apply", block_on(s.apply(contact(2))).map(|_| ()));
    assert_unavailable("mark_synced", block_on(s.mark_synced(tenant, 1)).map(|_| ()));
    // Opening an up-to-date database does not wait for the writer; reads never do.
    let again = SqliteStore::open(&path).unwrap();
    assert!(
        block_on(again.get(tenant, &CONTACT, Id::from_u128(101)))
            .unwrap()
            .is_some()
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    block_on(s.apply(contact(4))).unwrap();
}
