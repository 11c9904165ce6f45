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
fn configuration_changes_reach_the_next_write_of_every_instance() {
    two_instances(crm_core::conformance::configuration_changes_reach_the_next_write_of_every_instance);
}

#[test]
fn round_robin_is_fair_across_two_instances() {
    two_instances(crm_core::conformance::round_robin_is_fair_across_two_instances);
}

// The attachment cases that touch the bytes, again over each real blob store (the suite's macro runs
// them with the in-memory one): one body per case from crm-core's conformance module, two stores.
mod blob_cases {
    use crm_core::blob::BlobStore;
    use crm_core::conformance as c;
    use crm_core::value::Timestamp;
    use crm_store::SqliteStore;
    use std::sync::Arc;

    /// A case over a database and a blob store, its clock starting at the given time.
    pub type Case = fn(SqliteStore, Arc<dyn BlobStore>, Timestamp);

    pub fn stored_once_and_checked_against_their_content(s: SqliteStore, b: Arc<dyn BlobStore>, _: Timestamp) {
        c::attachments_are_stored_once_and_checked_against_their_content_on(s, b);
    }
    pub fn interrupted_uploads_leave_nothing_and_orphans_are_collected(
        s: SqliteStore,
        b: Arc<dyn BlobStore>,
        start: Timestamp,
    ) {
        c::interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_from(s, b, start);
    }
    pub fn out_of_scope_users_get_not_found(s: SqliteStore, b: Arc<dyn BlobStore>, _: Timestamp) {
        c::attachments_take_their_owners_scope_on(s, b);
    }
    pub fn deleting_the_owner_deletes_its_attachments(s: SqliteStore, b: Arc<dyn BlobStore>, _: Timestamp) {
        c::deleting_the_owner_deletes_its_attachments_on(s, b);
    }
}

fn with_dir_blobs(case: blob_cases::Case) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let blobs = crm_store::blob::DirBlobStore::open(dir.path().join("blobs")).expect("the blob directory");
    case(
        crm_store::SqliteStore::open_in_memory().expect("the database"),
        std::sync::Arc::new(blobs),
        crm_core::conformance::NOW,
    );
}

/// Over an S3-compatible server when `CRM_S3_TEST_URL` names a bucket (`s3://bucket`, with the
/// `AWS_*` environment for the endpoint and keys: `.ci/s3.sh` starts moto_server and sets both);
/// skipped with a note otherwise. Each case gets a prefix of its own; its clock starts at the real
/// time, since the object store dates blobs by its own clock.
#[cfg(feature = "s3")]
fn with_s3_blobs(case: blob_cases::Case) {
    let Ok(url) = std::env::var("CRM_S3_TEST_URL") else {
        eprintln!("skipped: CRM_S3_TEST_URL is not set (.ci/s3.sh runs these against moto_server)");
        return;
    };
    let url = format!("{}/test-{}", url.trim_end_matches('/'), uuid::Uuid::now_v7());
    let blobs = crm_store::blob::S3BlobStore::from_url(&url).expect("the S3 blob store");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the time")
        .as_micros() as i64;
    case(
        crm_store::SqliteStore::open_in_memory().expect("the database"),
        std::sync::Arc::new(blobs),
        crm_core::value::Timestamp(now),
    );
}

macro_rules! over_both_blob_stores {
    ($($case:ident),* $(,)?) => {
        mod in_a_directory {
            $(#[test] fn $case() { super::with_dir_blobs(super::blob_cases::$case) })*
        }
        #[cfg(feature = "s3")]
        mod in_s3 {
            $(#[test] fn $case() { super::with_s3_blobs(super::blob_cases::$case) })*
        }
    };
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

over_both_blob_stores!(
    stored_once_and_checked_against_their_content,
    interrupted_uploads_leave_nothing_and_orphans_are_collected,
    out_of_scope_users_get_not_found,
    deleting_the_owner_deletes_its_attachments,
);
