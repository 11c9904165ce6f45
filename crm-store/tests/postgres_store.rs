//! The shared store cases (`store_cases/mod.rs`) on the PostgreSQL store, then what only a server
//! database has: several pools and processes writing at once, concurrent migrators, runtimes. Each
//! case runs on a fresh schema of the database named by `CRM_TEST_POSTGRES` (skipped without it, a
//! failure under CI; see `pg/mod.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;
mod pg;
mod store_cases;

use common::*;
use crm_core::change::verify_chain;
use crm_core::entity::LEAD;
use crm_core::query::Filter;
use crm_core::store::{AuditQuery, BulkWrite, Store};
use crm_core::value::Id;
use crm_store::{PgOptions, PgStore};
use pollster::block_on;

store_cases::store_cases!({
    let Some(url) = pg::url() else { return };
    move || PgStore::open_temporary(&url).unwrap()
}, sync_log: {
    let Some(url) = pg::url() else { return };
    move || PgStore::open_temporary(&url).unwrap().with_sync_log(true)
});

/// A store on a fresh schema (dropped with it), or `None` when no test database is configured.
fn store() -> Option<PgStore> {
    pg::url().map(|u| PgStore::open_temporary(&u).unwrap())
}

// ---------------------------------------------------------------------------------------------------
// What only a server database has: several pools (as several processes would have) at once.
// ---------------------------------------------------------------------------------------------------

/// A second store (its own pool and runtime, as another process would have) on `s`'s schema.
fn second_pool(s: &PgStore) -> PgStore {
    let url = pg::url().unwrap();
    PgStore::open_with(PgOptions::new(url).schema(s.schema().unwrap())).unwrap()
}

fn every_audit_entry(s: &PgStore, t: Id) -> Vec<crm_core::change::AuditEntry> {
    block_on(s.audit(
        t,
        &AuditQuery {
            limit: 100_000,
            ..Default::default()
        },
    ))
    .unwrap()
}

#[test]
fn two_pools_updating_one_lead_give_one_success_and_one_conflict() {
    let Some(a) = store() else { return };
    let b = second_pool(&a);
    let t = id(1);
    let v1 = record(&LEAD, t, 1);
    block_on(a.apply(insert(&v1))).unwrap();
    let rounds = 15;
    let mut current = v1;
    for round in 0..rounds {
        let mine = bumped(&current, |r| r.set("city", format!("A{round}")));
        let theirs = bumped(&current, |r| r.set("city", format!("B{round}")));
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|sc| {
            let ha = sc.spawn(|| {
                barrier.wait();
                block_on(a.apply(update(&current, &mine)))
            });
            let hb = sc.spawn(|| {
                barrier.wait();
                block_on(b.apply(update(&current, &theirs)))
            });
            (ha.join().unwrap(), hb.join().unwrap())
        });
        let (winner, loser) = match (&ra, &rb) {
            (Ok(_), Err(e)) => (&mine, e),
            (Err(e), Ok(_)) => (&theirs, e),
            _ => panic!("round {round}: expected exactly one success: {ra:?} / {rb:?}"),
        };
        assert!(
            matches!(loser, crm_core::error::Error::Conflict { expected, actual, .. } if *expected == current.version && *actual == current.version + 1),
            "round {round}: {loser:?}"
        );
        // Never a lost update: both pools read the winner's row.
        for s in [&a, &b] {
            assert_eq!(block_on(s.get(t, &LEAD, current.id)).unwrap().as_ref(), Some(winner));
        }
        current = winner.clone();
    }
    assert_eq!(current.version, 1 + rounds);
    let entries = every_audit_entry(&a, t);
    assert_eq!(entries.len() as u64, 1 + rounds);
    verify_chain(&entries).unwrap();
    let events = block_on(b.events(t, 0, 1000)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=1 + rounds).collect::<Vec<_>>()
    );
}

#[test]
fn concurrent_writers_in_two_pools_keep_one_chain_and_gapless_sequences() {
    let Some(a) = store() else { return };
    let b = second_pool(&a);
    let t = id(1);
    let per = 15u32;
    std::thread::scope(|sc| {
        for k in 0..6u32 {
            let s = if k % 2 == 0 { &a } else { &b };
            sc.spawn(move || {
                for n in 0..per {
                    block_on(s.apply(insert(&lead(t, k * 1000 + n)))).unwrap();
                }
            });
        }
    });
    let total = u64::from(6 * per);
    assert_eq!(block_on(a.count(t, &LEAD, &Filter::All)).unwrap(), total);
    let entries = every_audit_entry(&b, t);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    verify_chain(&entries).unwrap();
    let events = block_on(a.events(t, 0, 10_000)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    // Each event belongs to the change set whose audit entry has the same position: sequences were
    // assigned under one lock, in commit order.
    for (e, a) in events.iter().zip(&entries) {
        assert_eq!(e.entity_id, a.entity_id);
    }
}

#[test]
fn a_bulk_import_dropped_part_way_leaves_the_database_as_before() {
    let Some(s) = store() else { return };
    let other = second_pool(&s);
    let t = id(1);
    let existing = record(&LEAD, t, 1);
    block_on(s.apply(insert(&existing))).unwrap();
    let before_audit = every_audit_entry(&s, t);
    let before_events = block_on(s.events(t, 0, 100)).unwrap();

    let mut bulk = block_on(s.bulk(t)).unwrap();
    for n in 10..15 {
        block_on(bulk.apply(insert(&record(&LEAD, t, n)))).unwrap();
    }
    let moved = bumped(&existing, |r| r.set("city", "Imported"));
    block_on(bulk.apply(update(&existing, &moved))).unwrap();
    assert_eq!(block_on(bulk.query(&LEAD, &all(Filter::All))).unwrap().len(), 6);
    // Another process writing the same tenant now waits for the session's head row...
    let waiting = std::thread::scope(|sc| {
        let h = sc.spawn(|| block_on(other.apply(insert(&record(&LEAD, t, 2)))));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !h.is_finished(),
            "a second writer must wait for the bulk session's lock"
        );
        // ... until the session is dropped part-way, without commit.
        drop(bulk);
        h.join().unwrap()
    });
    assert_eq!(waiting.unwrap().last_event_seq, 2);
    // Nothing of the session is left; the waiting writer continued the chain where it was.
    assert_eq!(block_on(s.get(t, &LEAD, existing.id)).unwrap(), Some(existing.clone()));
    let ids: Vec<Id> = block_on(s.query(t, &LEAD, &all(Filter::All)))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![existing.id, record(&LEAD, t, 2).id]);
    let audit = every_audit_entry(&s, t);
    assert_eq!(audit[..before_audit.len()], before_audit[..]);
    assert_eq!(audit.len(), before_audit.len() + 1);
    verify_chain(&audit).unwrap();
    let events = block_on(s.events(t, 0, 100)).unwrap();
    assert_eq!(events[..before_events.len()], before_events[..]);
    assert_eq!(events.len(), before_events.len() + 1);
}

#[test]
fn concurrent_migrators_apply_each_version_once() {
    let Some(url) = pg::url() else { return };
    let schema = format!("crm_mig_{}", id(u128::from(std::process::id())).simple());
    let stores: Vec<PgStore> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (url, schema) = (url.clone(), schema.clone());
                sc.spawn(move || PgStore::open_with(PgOptions::new(url).schema(schema)).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let s = &stores[0];
    assert_eq!(block_on(s.schema_version()).unwrap(), crm_store::SCHEMA_VERSION);
    let rt = s.runtime().clone();
    let pool = s.pool().clone();
    let versions: Vec<i64> = rt.block_on(async {
        let q = format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version");
        sqlx::query_scalar(sqlx::AssertSqlSafe(q))
            .fetch_all(&pool)
            .await
            .unwrap()
    });
    assert_eq!(versions, (1..=i64::from(crm_store::SCHEMA_VERSION)).collect::<Vec<_>>());
    // Reopening migrates nothing and the store works.
    let again = PgStore::open_with(PgOptions::new(&url).schema(&schema)).unwrap();
    block_on(again.apply(insert(&lead(id(1), 1)))).unwrap();
    rt.block_on(async {
        let q = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&pool).await.unwrap();
    });
}

#[test]
fn runs_on_a_callers_runtime_and_under_a_plain_block_on() {
    let Some(url) = pg::url() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = id(1);
    let (s, schema) = rt.block_on(async {
        // Outside a runtime `connect` refuses; inside it uses the caller's.
        let temp = PgStore::open_temporary(&url).unwrap();
        let schema = temp.schema().unwrap().to_owned();
        let s = PgStore::connect_with(PgOptions::new(&url).schema(&schema))
            .await
            .unwrap();
        s.apply(insert(&lead(t, 1))).await.unwrap();
        // A blocking-constructed store can be awaited here too, and dropped in async context.
        let own = PgStore::open_with(PgOptions::new(&url).schema(&schema)).unwrap();
        assert_eq!(own.count(t, &LEAD, &Filter::All).await.unwrap(), 1);
        drop(own);
        (s, (temp, schema))
    });
    // The runtime-bound store's futures also run under pollster on a thread without a runtime.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            block_on(s.apply(insert(&lead(t, 2)))).unwrap();
            assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 2);
            let mut bulk = block_on(s.bulk(t)).unwrap();
            block_on(bulk.apply(insert(&lead(t, 3)))).unwrap();
            drop(bulk);
        })
        .join()
        .unwrap();
    });
    assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 2);
    assert!(
        block_on(PgStore::connect(&url))
            .unwrap_err()
            .internal_cause()
            .is_some_and(|c| c.contains("tokio runtime"))
    );
    drop(s);
    drop(schema);
    drop(rt);
}

#[test]
fn storage_errors_carry_no_sql_passwords_or_values() {
    let Some(url) = pg::url() else { return };
    // A server that is not there: the message names no password.
    let e = PgStore::open("postgres://crm:hunter2secret@127.0.0.1:1/crm").unwrap_err();
    assert_eq!(e.code(), "unavailable");
    assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
    assert!(crm_store::redact_url("postgres://crm:hunter2secret@h/db") == "postgres://crm@h/db");
    // A broken schema: the message has the SQLSTATE class, not the statement.
    let s = PgStore::open_temporary(&url).unwrap();
    let t = id(1);
    let mut r = record(&LEAD, t, 1);
    r.set("city", "Secret City");
    block_on(s.apply(insert(&r))).unwrap();
    let pool = s.pool().clone();
    s.runtime()
        .block_on(async { sqlx::raw_sql("ALTER TABLE leads DROP COLUMN city").execute(&pool).await })
        .unwrap();
    for e in [
        block_on(s.get(t, &LEAD, r.id)).unwrap_err(),
        block_on(s.query(t, &LEAD, &all(Filter::eq("city", "Secret City")))).unwrap_err(),
    ] {
        let msg = format!("{e:?}");
        assert_eq!(e.code(), "internal");
        assert!(e.internal_cause().unwrap().contains("SQLSTATE 42703"), "{msg}");
        for leak in ["SELECT", "leads", "city", "Secret"] {
            assert!(!msg.contains(leak), "{msg}");
        }
    }
}

#[test]
fn migrations_backfill_stage_history_and_webhook_creators_from_the_audit_log() {
    use crm_core::entity::STAGE_CHANGE;
    use crm_core::query::{SortKey, StoreQuery};
    use crm_store::{Backend, schema};
    let Some(url) = pg::url() else { return };
    let name = format!("crm_stage_{}", id(u128::from(std::process::id()) << 16 | 7).simple());
    let (t, lead_id, user, owner) = (id(1), id(2), id(3), id(4));
    // A database at version 6 with a lead whose status changed, written as an older build would.
    let mut sql = format!("CREATE SCHEMA \"{name}\"; SET search_path TO \"{name}\";\n");
    sql.push_str(&schema::migrations_table(Backend::Postgres));
    sql.push_str(";\n");
    for m in schema::migrations(Backend::Postgres).iter().filter(|m| m.version <= 6) {
        for s in &m.statements {
            sql.push_str(s);
            sql.push_str(";\n");
        }
        sql.push_str(&format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ({}, 0);\n",
            m.version
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO leads (org_id, id, version, created_at, updated_at, first_name, status, owner_id) \
         VALUES ('{t}', '{lead_id}', 2, 1, 2, 'Ann', 'won', '{owner}');\n"
    ));
    let audit = |seq: i64, changes: &str| {
        format!(
            "INSERT INTO audit_log (org_id, seq, id, at, actor, action, entity, entity_id, changes, prev_hash, hash) \
             VALUES ('{t}', {seq}, '{}', {seq}, '{user}', 'update', 'lead', '{lead_id}', '{changes}', '', '');\n",
            id(100 + seq as u128)
        )
    };
    sql.push_str(&audit(
        1,
        r#"[{"field": "first_name", "old": null, "new": "Ann"}, {"field": "status", "old": null, "new": "new"}]"#,
    ));
    sql.push_str(&audit(2, r#"[{"field": "notes", "old": null, "new": "gate"}]"#));
    sql.push_str(&audit(3, r#"[{"field": "status", "old": "new", "new": "won"}]"#));
    // Version 10 gives each webhook its creator: the actor of its first audit entry.
    let hook = id(50);
    sql.push_str(&format!(
        "INSERT INTO webhooks (org_id, id, version, created_at, updated_at, url) VALUES ('{t}', '{hook}', 1, 1, 1, 'https://x.test/');\n\
         INSERT INTO audit_log (org_id, seq, id, at, actor, action, entity, entity_id, changes, prev_hash, hash) \
         VALUES ('{t}', 4, '{}', 4, '{user}', 'create', 'webhook', '{hook}', '[]', '', ''), \
         ('{t}', 5, '{}', 5, '{owner}', 'update', 'webhook', '{hook}', '[]', '', '');\n",
        id(104),
        id(105)
    ));
    let setup = PgStore::open_temporary(&url).unwrap();
    let (rt, pool) = (setup.runtime().clone(), setup.pool().clone());
    rt.block_on(async {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql("RESET search_path").execute(&mut *conn).await.unwrap();
    });
    let s = PgStore::open_with(PgOptions::new(&url).schema(&name)).unwrap();
    let q = StoreQuery {
        filter: Filter::All,
        sort: vec![SortKey::asc("at")],
        limit: 10,
    };
    let rows = block_on(s.query(t, &STAGE_CHANGE, &q)).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.id,
                r.str("record_id").map(str::to_owned),
                r.str("from_state").map(str::to_owned),
                r.str("to_state").map(str::to_owned),
                r.id_of("changed_by"),
                r.id_of("owner_id"),
            )
        })
        .collect();
    let rid = Some(lead_id.to_string());
    assert_eq!(
        got,
        vec![
            (id(101), rid.clone(), None, Some("new".into()), Some(user), Some(owner)),
            (
                id(103),
                rid,
                Some("new".into()),
                Some("won".into()),
                Some(user),
                Some(owner)
            ),
        ]
    );
    let webhook = block_on(s.get(t, &crm_core::entity::WEBHOOK, hook)).unwrap().unwrap();
    assert_eq!(webhook.id_of("created_by"), Some(user));
    rt.block_on(async {
        let q = format!("DROP SCHEMA \"{name}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&pool).await.unwrap();
    });
}
