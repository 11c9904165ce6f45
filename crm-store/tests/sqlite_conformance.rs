//! The store conformance suite from crm-core, run against the SQLite store (with the sync log cases
//! on stores that log).
#![cfg(feature = "sqlite")]

crm_core::conformance_tests!(|| crm_store::SqliteStore::open_in_memory().unwrap(), sync_log: || {
    crm_store::SqliteStore::open_in_memory().unwrap().with_sync_log(true)
});

// Outside the suite's macro: the memory store checks a change set's unique values pairwise, too slow
// for this case's 2,000-row change sets.
#[test]
fn imports_find_duplicates_across_chunks_in_every_mode() {
    crm_core::conformance::imports_find_duplicates_across_chunks_in_every_mode(
        crm_store::SqliteStore::open_in_memory().unwrap(),
    );
}

// Outside the suite's macro: two handles (two connections) of one database file, as two
// instances over one database.
fn two_instances(case: fn(crm_store::SqliteStore, crm_store::SqliteStore)) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("crm.db");
    let open = || crm_store::SqliteStore::open(&path).expect("the database");
    case(open(), open());
}

#[test]
fn due_events_fire_once_from_two_instances() {
    two_instances(crm_core::conformance::due_events_fire_once_from_two_instances);
}

#[test]
fn round_robin_is_fair_across_two_instances() {
    two_instances(crm_core::conformance::round_robin_is_fair_across_two_instances);
}

// The attachment cases again with the directory blob store (the suite's macro runs them with the
// in-memory one).
fn with_dir_blobs(case: fn(crm_store::SqliteStore, std::sync::Arc<dyn crm_core::blob::BlobStore>)) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let blobs = crm_store::blob::DirBlobStore::open(dir.path().join("blobs")).expect("the blob directory");
    case(
        crm_store::SqliteStore::open_in_memory().expect("the database"),
        std::sync::Arc::new(blobs),
    );
}

#[test]
fn attachments_are_stored_once_and_checked_against_their_content_in_a_directory() {
    with_dir_blobs(crm_core::conformance::attachments_are_stored_once_and_checked_against_their_content_on);
}

#[test]
fn interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_in_a_directory() {
    with_dir_blobs(crm_core::conformance::interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_on);
}

// Outside the suite's macro: sync between stores of different kinds. A phone's SQLite store with
// its log pushing to a server in memory, and a device in memory pushing to a SQLite server.
#[test]
fn sync_push_from_a_sqlite_device_to_a_memory_server() {
    crm_core::conformance::sync_push_replays_merges_and_converges(
        crm_core::memory::MemoryStore::new(),
        crm_store::SqliteStore::open_in_memory().unwrap().with_sync_log(true),
    );
}

#[test]
fn sync_push_from_a_memory_device_to_a_sqlite_server() {
    crm_core::conformance::sync_push_replays_merges_and_converges(
        crm_store::SqliteStore::open_in_memory().unwrap(),
        crm_core::memory::MemoryStore::new().with_sync_log(true),
    );
}
