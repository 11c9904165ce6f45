//! The store conformance suite from crm-core, run against the PostgreSQL store: each case on a fresh
//! schema of the database named by `CRM_TEST_POSTGRES` (e.g. `postgres://crm@127.0.0.1:55432/crm`;
//! `.ci/postgres.sh` starts a throwaway server and sets it). Without the variable every case prints
//! why it is skipped and passes, except under CI (`CI` set), where a missing database fails. The sync
//! log cases run on stores that log.
#![cfg(feature = "postgres")]

mod pg;

crm_core::conformance_tests!({
    let Some(url) = pg::url() else { return };
    move || crm_store::PgStore::open_temporary(&url).unwrap()
}, sync_log: {
    let Some(url) = pg::url() else { return };
    move || crm_store::PgStore::open_temporary(&url).unwrap().with_sync_log(true)
});

// Outside the suite's macro: the memory store checks a change set's unique values pairwise, too slow
// for this case's 2,000-row change sets.
#[test]
fn imports_find_duplicates_across_chunks_in_every_mode() {
    let Some(url) = pg::url() else { return };
    crm_core::conformance::imports_find_duplicates_across_chunks_in_every_mode(
        crm_store::PgStore::open_temporary(&url).unwrap(),
    );
}

// Outside the suite's macro: two handles (two connection pools) of one schema, as two server
// instances over one database.
fn two_instances(case: fn(crm_store::PgStore, crm_store::PgStore)) {
    let Some(url) = pg::url() else { return };
    let a = crm_store::PgStore::open_temporary(&url).expect("a temporary schema");
    let schema = a.schema().expect("a temporary store's schema").to_owned();
    let b = crm_store::PgStore::open_with(crm_store::PgOptions::new(&url).schema(schema)).expect("a second pool");
    case(a, b);
}

#[test]
fn sync_simulation_converges_on_two_instances() {
    let Some(url) = pg::url() else { return };
    let device = {
        let url = url.clone();
        move || crm_store::PgStore::open_temporary(&url).unwrap().with_sync_log(true)
    };
    let servers = move || {
        let a = crm_store::PgStore::open_temporary(&url).expect("a temporary schema");
        let schema = a.schema().expect("a temporary store's schema").to_owned();
        let b = crm_store::PgStore::open_with(crm_store::PgOptions::new(&url).schema(schema)).expect("a second pool");
        (a, b)
    };
    crm_core::conformance::sync_simulation_converges_on_two_instances(servers, device);
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
