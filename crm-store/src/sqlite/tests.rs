#![allow(clippy::unwrap_used)]

use super::*;
use crm_core::entity::{CONTACT, LEAD};
use crm_core::query::Op;
use crm_core::value::{Money, Value};
use pollster::block_on;

fn tenant() -> Id {
    Id::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

fn lead_id(n: u128) -> Id {
    Id::from_u128(0x0190_0000_0000_7000_8000_0000_0001_0000 + n)
}

/// A lead written with plain SQL, as an older build (or another tool) would have: only the columns
/// of version 1.
fn insert_raw_lead(conn: &Connection, n: u128, status: &str, score: Option<i64>) {
    conn.execute(
        "INSERT INTO leads (org_id, id, version, created_at, updated_at, first_name, status, score, tags, estimated_value, custom) \
         VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6, '[\"vip\",\"storm\"]', 12550, '{\"roof\":\"slate\",\"budget\":500,\"$t\":{\"budget\":\"money\"}}')",
        (tenant(), lead_id(n), 1_700_000_000_000_000i64 + n as i64, format!("Lead {n}"), status, score),
    )
    .unwrap();
}

fn index_names(conn: &Connection) -> Vec<String> {
    let mut s = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn upgrades_from_every_earlier_version() {
    for from in 0..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            assert_eq!(migrate(&conn, from).unwrap(), from);
            if from >= 1 {
                for n in 0..5 {
                    insert_raw_lead(
                        &conn,
                        n,
                        if n % 2 == 0 { "new" } else { "won" },
                        (n != 3).then_some(n as i64 * 10),
                    );
                }
                assert_eq!(
                    index_names(&conn).contains(&"idx_leads_status_score".to_owned()),
                    from >= 2,
                    "the query indexes come with version 2"
                );
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let w = store.writer().unwrap();
        let conn = w.conn().unwrap();
        assert_eq!(current_version(conn).unwrap(), SCHEMA_VERSION, "from {from}");
        let names = index_names(conn);
        for want in [
            "idx_leads_status_score",
            "idx_activities_lead_id_occurred_at",
            "idx_audit_log_entity",
        ] {
            assert!(names.contains(&want.to_owned()), "from {from}: {names:?}");
        }
        let applied: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(applied, i64::from(SCHEMA_VERSION));
        drop(w);
        if from >= 1 {
            let r = block_on(store.get(tenant(), &LEAD, lead_id(2))).unwrap().unwrap();
            assert_eq!(
                (r.str("first_name"), r.str("status"), r.get("score")),
                (Some("Lead 2"), Some("new"), Some(&Value::Int(20)))
            );
            assert_eq!(r.get("tags"), Some(&Value::List(vec!["vip".into(), "storm".into()])));
            assert_eq!(r.get("estimated_value"), Some(&Value::Money(Money(12550))));
            assert_eq!(r.custom.get("budget"), Some(&Value::Money(Money(500))));
            let q = StoreQuery {
                filter: Filter::And(vec![
                    Filter::eq("status", "new"),
                    Filter::cmp("custom.roof", Op::Contains, "SLA"),
                ]),
                sort: vec![
                    crm_core::query::SortKey::desc("score"),
                    crm_core::query::SortKey::asc("id"),
                ],
                limit: 10,
            };
            let ids: Vec<Id> = block_on(store.query(tenant(), &LEAD, &q))
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(ids, vec![lead_id(4), lead_id(2), lead_id(0)]);
        }
        // Reopening an up-to-date database changes nothing; the upgraded database can log changes.
        drop(store);
        let store = SqliteStore::open(&path).unwrap().with_sync_log(true);
        let mut cs = ChangeSet::new(tenant());
        cs.writes
            .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(9), Timestamp(1))));
        block_on(store.apply(cs)).unwrap();
        let log = block_on(store.pending_changes(tenant(), 0, 10)).unwrap();
        assert_eq!(
            log.iter().map(|e| (e.seq, e.writes[0].id)).collect::<Vec<_>>(),
            vec![(1, lead_id(9))],
            "from {from}"
        );
    }
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate(&conn, SCHEMA_VERSION).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
            [SCHEMA_VERSION + 5],
        )
        .unwrap();
    }
    let e = SqliteStore::open(&path).unwrap_err();
    assert_eq!(
        e,
        Error::corrupt(format!(
            "database schema version {} is newer than this build ({SCHEMA_VERSION})",
            SCHEMA_VERSION + 5
        ))
    );
}

#[test]
fn a_file_database_survives_reopening_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let mut r = Record::empty(&CONTACT, tenant(), lead_id(1), Timestamp(5));
    r.set("first_name", "Ann");
    r.custom.insert(
        "due".into(),
        Value::Date(time::Date::from_calendar_date(2025, time::Month::May, 1).unwrap()),
    );
    {
        let s = SqliteStore::open(&path).unwrap();
        let mut cs = ChangeSet::new(tenant());
        cs.writes.push(Write::Insert(r.clone()));
        block_on(s.apply(cs)).unwrap();
        assert!(dir.path().join("crm.db-wal").exists());
        let w = s.writer().unwrap();
        let conn = w.conn().unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync, busy), ("wal", 1, 5000));
        drop(w);
        s.read(|c| {
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
            // Readers cannot write.
            assert!(c.execute_batch("DELETE FROM contacts").is_err());
            Ok(())
        })
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(block_on(s.get(tenant(), &CONTACT, r.id)).unwrap(), Some(r));
    assert_eq!(s.path(), path.as_path());
}

#[test]
fn in_memory_stores_are_private_and_cleaned_up() {
    let a = SqliteStore::open_in_memory().unwrap();
    let b = SqliteStore::open(":memory:").unwrap();
    assert_ne!(a.path(), b.path());
    let path = a.path().to_path_buf();
    assert!(path.exists());
    drop(a);
    assert!(!path.exists());
}

#[test]
fn a_bulk_session_holds_the_writer_until_it_ends() {
    let s = std::sync::Arc::new(SqliteStore::open_in_memory().unwrap());
    let bulk = block_on(s.bulk(tenant())).unwrap();
    let s2 = s.clone();
    let waiting = std::thread::spawn(move || {
        let mut cs = ChangeSet::new(tenant());
        cs.writes
            .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(1), Timestamp(1))));
        block_on(s2.apply(cs))
    });
    std::thread::sleep(Duration::from_millis(150));
    assert!(!waiting.is_finished());
    // Readers are not blocked meanwhile.
    assert_eq!(block_on(s.count(tenant(), &LEAD, &Filter::All)).unwrap(), 0);
    drop(bulk);
    assert_eq!(waiting.join().unwrap().unwrap().rows, 1);
    assert_eq!(block_on(s.count(tenant(), &LEAD, &Filter::All)).unwrap(), 1);
}

#[test]
fn short_reads_use_the_idle_writer_and_never_wait_for_a_busy_one() {
    let s = SqliteStore::open_in_memory().unwrap();
    let mut cs = ChangeSet::new(tenant());
    let mut lead = Record::empty(&LEAD, tenant(), lead_id(1), Timestamp(1));
    lead.set("external_id", Value::Text("X-1".into()));
    cs.writes.push(Write::Insert(lead));
    block_on(s.apply(cs)).unwrap();
    let by_key = StoreQuery::by_id(Filter::eq("external_id", "X-1"), 2);
    // Idle writer: a get, a lookup by a unique field and the stamp open no reader.
    assert!(block_on(s.get(tenant(), &LEAD, lead_id(1))).unwrap().is_some());
    assert_eq!(block_on(s.query(tenant(), &LEAD, &by_key)).unwrap().len(), 1);
    block_on(s.stamp(tenant(), &[&LEAD])).unwrap();
    assert_eq!(s.reader_connections_opened(), 0);
    // A filter that pins no unique key may scan: a reader.
    block_on(s.query(tenant(), &LEAD, &StoreQuery::by_id(Filter::eq("city", "Denver"), 2))).unwrap();
    assert_eq!(s.reader_connections_opened(), 1);
    // While a bulk session holds the writer, the same reads answer at once from a reader.
    let bulk = block_on(s.bulk(tenant())).unwrap();
    assert!(block_on(s.get(tenant(), &LEAD, lead_id(1))).unwrap().is_some());
    assert_eq!(block_on(s.query(tenant(), &LEAD, &by_key)).unwrap().len(), 1);
    drop(bulk);
    // The writer went back to its slot after each read: a write still gets it.
    let mut cs = ChangeSet::new(tenant());
    cs.writes
        .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(2), Timestamp(1))));
    assert_eq!(block_on(s.apply(cs)).unwrap().rows, 1);
}

#[test]
fn storage_errors_carry_no_sql_and_no_data() {
    let s = SqliteStore::open_in_memory().unwrap();
    {
        let w = s.writer().unwrap();
        let conn = w.conn().unwrap();
        let e = db(conn
            .execute_batch("SELECT secret_column FROM no_such_table")
            .unwrap_err());
        let msg = format!("{e} {:?}", e.details());
        assert_eq!(e.code(), "internal");
        assert!(e.internal_cause().unwrap().starts_with("sqlite:"), "{e:?}");
        for leak in ["secret", "no_such_table"] {
            assert!(!msg.contains(leak) && !format!("{e:?}").contains(leak), "{e:?}");
        }
        conn.execute(
            "INSERT INTO contacts (org_id, id, version, created_at, updated_at, first_name, birth_date) VALUES (?1, ?2, 1, 0, 0, 'x', 'secret-1999')",
            (tenant(), lead_id(9)),
        )
        .unwrap();
        conn.execute("INSERT INTO sync_heads (org_id, seq) VALUES (?1, 1)", (tenant(),))
            .unwrap();
    }
    let e = block_on(s.get(tenant(), &CONTACT, lead_id(9))).unwrap_err();
    assert_eq!(e, Error::corrupt("unexpected stored value in contacts.birth_date"));
}

#[test]
fn a_panicking_writer_rolls_back_and_frees_the_connection() {
    let s = SqliteStore::open_in_memory().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.write(|c| -> Result<()> {
            let mut cs = ChangeSet::new(tenant());
            cs.writes
                .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(1), Timestamp(1))));
            apply_in(c, cs, false)?;
            panic!("boom");
        });
    }));
    assert!(r.is_err());
    assert_eq!(block_on(s.count(tenant(), &LEAD, &Filter::All)).unwrap(), 0);
    let mut cs = ChangeSet::new(tenant());
    cs.writes
        .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(1), Timestamp(1))));
    assert_eq!(block_on(s.apply(cs)).unwrap().rows, 1);
}

#[test]
fn a_read_only_open_reads_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // `%`, `?` and `#` in the path must not be read as URI syntax by the immutable open.
    let sub = dir.path().join("ro 100%?#x");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("crm.db");
    let missing = SqliteStore::open_read_only(&path).unwrap_err();
    assert_eq!(missing.code(), "not_found", "{missing:?}");
    assert!(!path.exists(), "nothing is created");

    let mut r = Record::empty(&CONTACT, tenant(), lead_id(1), Timestamp(5));
    r.set("first_name", "Ann");
    {
        let s = SqliteStore::open(&path).unwrap();
        let mut cs = ChangeSet::new(tenant());
        cs.writes.push(Write::Insert(r.clone()));
        block_on(s.apply(cs)).unwrap();
    }
    for immutable in [false, true] {
        let mut s = SqliteStore::open_read_only(&path).unwrap();
        assert!(s.read_only());
        // What a read-only directory without the WAL's side files gets.
        s.immutable = immutable;
        lock(&s.readers).clear();
        assert_eq!(block_on(s.get(tenant(), &CONTACT, r.id)).unwrap(), Some(r.clone()));
        let mut cs = ChangeSet::new(tenant());
        cs.writes.push(Write::Delete {
            entity: &CONTACT,
            id: r.id,
            expected_version: 1,
        });
        let e = block_on(s.apply(cs)).unwrap_err();
        assert_eq!(e.field_errors()[0].code, codes::READ_ONLY, "{e:?}");
        assert!(block_on(s.bulk(tenant())).is_err());
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(block_on(s.get(tenant(), &CONTACT, r.id)).unwrap(), Some(r));
}

#[test]
fn a_read_only_open_says_when_a_migration_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate(&conn, SCHEMA_VERSION - 1).unwrap();
    }
    let e = SqliteStore::open_read_only(&path).unwrap_err();
    assert_eq!(e.field_errors()[0].path, "database");
    assert_eq!(e.field_errors()[0].code, codes::READ_ONLY);
    assert!(e.field_errors()[0].message.contains("needs migrating"), "{e:?}");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION - 1, "not migrated");
    // A file that is no database of ours yet needs migrating too.
    std::fs::remove_file(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = SqliteStore::open_read_only(&path).unwrap_err();
    assert_eq!(e.field_errors()[0].code, codes::READ_ONLY, "{e:?}");
}

#[test]
fn a_clean_shutdown_merges_the_wal_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let mut r = Record::empty(&CONTACT, tenant(), lead_id(1), Timestamp(5));
    r.set("first_name", "Ann");
    let s = SqliteStore::open(&path).unwrap();
    let mut cs = ChangeSet::new(tenant());
    cs.writes.push(Write::Insert(r.clone()));
    block_on(s.apply(cs)).unwrap();
    // A reader connection in the pool, as any read leaves one.
    assert_eq!(block_on(s.get(tenant(), &CONTACT, r.id)).unwrap(), Some(r.clone()));
    drop(s);
    assert!(!dir.path().join("crm.db-wal").exists(), "the WAL is merged and removed");
    // The file alone, copied elsewhere, has the write.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&path, copy.path().join("crm.db")).unwrap();
    let s = SqliteStore::open(copy.path().join("crm.db")).unwrap();
    assert_eq!(block_on(s.get(tenant(), &CONTACT, r.id)).unwrap(), Some(r));
}

#[test]
fn each_connection_keeps_its_own_page_cache() {
    // ADR 0025: `.cargo/config.toml` builds SQLite without SQLITE_ENABLE_MEMORY_MANAGEMENT, whose
    // process-wide page cache let one connection evict another's pages.
    let s = SqliteStore::open_in_memory().unwrap();
    let options: Vec<String> = s
        .read(|c| {
            let mut st = c
                .prepare("SELECT compile_options FROM pragma_compile_options")
                .map_err(db)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .unwrap();
    assert!(options.iter().any(|o| o.starts_with("THREADSAFE")), "{options:?}");
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "SQLite was built with ENABLE_MEMORY_MANAGEMENT (LIBSQLITE3_FLAGS unset?): {options:?}"
    );
}

#[test]
fn the_wal_file_is_cut_back_after_a_large_transaction() {
    let (_dir, path, wal, s) = file_store();
    let limit = WAL_KEPT_BYTES as u64;
    // One transaction larger than the limit: the log grows to hold it, and its commit's
    // checkpoint copies it into the file (no reader is open).
    block_on(s.apply(big_contact(1, (limit / 1024 + 8 * 1024) as usize))).unwrap();
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(grown > limit, "the log held the transaction: {grown} bytes");
    // The next commit starts the log over and cuts the file back.
    block_on(s.apply(big_contact(2, 1))).unwrap();
    let kept = std::fs::metadata(&wal).unwrap().len();
    assert!(kept <= limit, "{kept} bytes kept after {grown}");
    assert_eq!(contacts(&s), 2);
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(contacts(&s), 2, "both writes survive reopening");
}

#[test]
fn commits_checkpoint_every_checkpoint_pages_of_log() {
    let (_dir, _path, wal, s) = file_store();
    let frame = 24 + 4096;
    let wal_len = || std::fs::metadata(&wal).unwrap().len();
    // Commits of about 17 pages each: at SQLite's default (1,000 pages) a commit past the
    // threshold copies the log into the file and the next starts it over, so the file would stay
    // near 1,000 frames.
    let mut n = 0;
    while wal_len() < 4_000 * frame {
        n += 1;
        block_on(s.apply(big_contact(n, 64))).unwrap();
        assert!(n < 1_000, "the log never grew past 4,000 pages");
    }
    // Past CHECKPOINT_PAGES a commit checkpoints and the log starts over: the file stops growing.
    let cap = (CHECKPOINT_PAGES as u64 + 100) * frame;
    for _ in 0..(CHECKPOINT_PAGES / 17 + 100) {
        n += 1;
        block_on(s.apply(big_contact(n, 64))).unwrap();
        assert!(wal_len() <= cap, "{} bytes of log after {n} commits", wal_len());
    }
    assert_eq!(contacts(&s), n as u64);
}

/// A store on a file of a fresh directory (kept while the `TempDir` lives): the directory, the
/// database's path, its write-ahead log's path and the store.
fn file_store() -> (tempfile::TempDir, PathBuf, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let wal = dir.path().join("crm.db-wal");
    let s = SqliteStore::open(&path).unwrap();
    (dir, path, wal, s)
}

/// A contact whose name fills about `kib` KiB.
fn big_contact(n: u128, kib: usize) -> ChangeSet {
    let mut r = Record::empty(&CONTACT, tenant(), lead_id(n), Timestamp(5));
    r.set("first_name", "x".repeat(kib * 1024));
    let mut cs = ChangeSet::new(tenant());
    cs.writes.push(Write::Insert(r));
    cs
}

fn contacts(s: &SqliteStore) -> u64 {
    block_on(s.count(tenant(), &CONTACT, &Filter::All)).unwrap()
}

/// Makes the database "full" a few pages from now (SQLite answers SQLITE_FULL at `max_page_count`,
/// as it does when the disk is full).
fn fill_up(s: &SqliteStore, spare_pages: i64) {
    let w = s.writer().unwrap();
    let conn = w.conn().unwrap();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let _: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {}", pages + spare_pages), [], |r| {
            r.get(0)
        })
        .unwrap();
}

#[test]
fn a_full_disk_is_disk_full_and_writes_nothing() {
    let s = SqliteStore::open_in_memory().unwrap();
    block_on(s.apply(big_contact(1, 1))).unwrap();
    fill_up(&s, 4);
    let e = block_on(s.apply(big_contact(2, 200))).unwrap_err();
    assert_eq!(e.code(), "disk_full", "{e:?}");
    assert_eq!(contacts(&s), 1, "nothing written");

    // A bulk session (an all-or-nothing import): SQLite rolls the whole transaction back by itself;
    // the change set that filled the disk fails with the cause, and so does the rest of the session
    // (a later change set must not start a fresh transaction and commit without the earlier ones).
    block_on(async {
        let mut bulk = s.bulk(tenant()).await.unwrap();
        let mut n = 10;
        let e = loop {
            match bulk.apply(big_contact(n, 8)).await {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert!(n > 10, "some change sets fit");
        assert_eq!(e.code(), "disk_full", "{e:?}");
        let small = bulk.apply(big_contact(500, 0)).await.unwrap_err();
        assert_eq!(small.code(), "disk_full", "{small:?}");
        let commit = bulk.commit().await.unwrap_err();
        assert_eq!(commit.code(), "disk_full", "{commit:?}");
    });
    assert_eq!(contacts(&s), 1, "nothing of the session written");
    // The store goes on once there is room.
    fill_up(&s, 10_000);
    block_on(s.apply(big_contact(3, 1))).unwrap();
    assert_eq!(contacts(&s), 2);
}

/// An audit entry written with plain SQL, as an older build would have (hashes are not checked by
/// the migration).
fn insert_raw_audit(conn: &Connection, seq: i64, entity: &str, id: Id, actor: Id, changes: serde_json::Value) {
    conn.execute(
        "INSERT INTO audit_log (org_id, seq, id, at, actor, action, entity, entity_id, changes, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'update', ?6, ?7, ?8, '', '')",
        (
            tenant(),
            seq,
            Id::from_u128(0x0190_0000_0000_7000_8000_0000_00a0_0000 + seq as u128),
            1_700_000_000_000_000i64 + seq,
            actor,
            entity,
            id,
            changes.to_string(),
        ),
    )
    .unwrap();
}

#[test]
fn migration_7_backfills_the_stage_history_from_the_audit_log() {
    use crm_core::entity::STAGE_CHANGE;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    let (user, owner, team, quote) = (Id::from_u128(7), Id::from_u128(8), Id::from_u128(9), Id::from_u128(10));
    {
        let conn = Connection::open(&path).unwrap();
        migrate(&conn, 6).unwrap();
        insert_raw_lead(&conn, 1, "won", None);
        conn.execute(
            "UPDATE leads SET owner_id = ?1, team_id = ?2 WHERE id = ?3",
            (owner, team, lead_id(1)),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO quotes (org_id, id, version, created_at, updated_at, status) VALUES (?1, ?2, 2, 1, 1, 'approved')",
            (tenant(), quote),
        )
        .unwrap();
        let set = |field: &str, old: serde_json::Value, new: &str| json!([{"field": field, "old": old, "new": new}]);
        let created = json!([{"field": "first_name", "old": null, "new": "Lead 1"}, {"field": "status", "old": null, "new": "new"}]);
        insert_raw_audit(&conn, 1, "lead", lead_id(1), user, created);
        insert_raw_audit(&conn, 2, "lead", lead_id(1), user, set("notes", json!(null), "gate"));
        insert_raw_audit(&conn, 3, "lead", lead_id(1), owner, set("status", json!("new"), "won"));
        // A deleted lead keeps no history; other types' status fields are not stages.
        insert_raw_audit(&conn, 4, "lead", lead_id(2), user, set("status", json!(null), "new"));
        insert_raw_audit(&conn, 5, "contact", lead_id(1), user, set("status", json!(null), "new"));
        insert_raw_audit(
            &conn,
            6,
            "quote",
            quote,
            user,
            set("status", json!("draft"), "approved"),
        );
    }
    let store = SqliteStore::open(&path).unwrap();
    let q = StoreQuery {
        filter: Filter::All,
        sort: vec![crm_core::query::SortKey::asc("at")],
        limit: 10,
    };
    let rows = block_on(store.query(tenant(), &STAGE_CHANGE, &q)).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.str("entity").unwrap().to_owned(),
                r.str("record_id").unwrap().to_owned(),
                r.str("from_state").map(str::to_owned),
                r.str("to_state").unwrap().to_owned(),
                r.get("at").cloned(),
                r.id_of("changed_by"),
                r.id_of("owner_id"),
                r.id_of("team_id"),
            )
        })
        .collect();
    let at = |seq: i64| Some(Value::Timestamp(Timestamp(1_700_000_000_000_000 + seq)));
    let lead = lead_id(1).to_string();
    assert_eq!(
        got,
        vec![
            (
                "lead".into(),
                lead.clone(),
                None,
                "new".into(),
                at(1),
                Some(user),
                Some(owner),
                Some(team)
            ),
            (
                "lead".into(),
                lead,
                Some("new".into()),
                "won".into(),
                at(3),
                Some(owner),
                Some(owner),
                Some(team)
            ),
            (
                "quote".into(),
                quote.to_string(),
                Some("draft".into()),
                "approved".into(),
                at(6),
                Some(user),
                None,
                None
            ),
        ]
    );
    assert_eq!(
        rows[0].id,
        Id::from_u128(0x0190_0000_0000_7000_8000_0000_00a0_0001),
        "the audit entry's id"
    );
}

/// Processes that open one new file at the same moment (two servers started together, a script and
/// a server) all get a migrated database: the later ones wait for the first one's migration.
#[test]
fn concurrent_opens_of_a_new_file_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4u128)
            .map(|n| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let s = SqliteStore::open(&path)?;
                    let mut r = Record::empty(&CONTACT, tenant(), lead_id(n), Timestamp(5));
                    r.set("first_name", "Ann");
                    let mut cs = ChangeSet::new(tenant());
                    cs.writes.push(Write::Insert(r));
                    block_on(s.apply(cs))
                })
            })
            .collect();
        for h in handles {
            if let Err(e) = h.join().unwrap() {
                panic!("round {round}: {e:?}");
            }
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(contacts(&s), 4);
    }
}

/// Version 10 gives each existing webhook its creator: the actor of its first audit entry (none for
/// a webhook without one, which keeps the system's reading of events).
#[test]
fn migration_10_gives_webhooks_their_creator_from_the_audit_log() {
    use crm_core::entity::{WEBHOOK, webhook_fields::CREATED_BY};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.db");
    let (ada, bob) = (Id::from_u128(7), Id::from_u128(8));
    let (hook, orphan) = (Id::from_u128(20), Id::from_u128(21));
    {
        let conn = Connection::open(&path).unwrap();
        migrate(&conn, 9).unwrap();
        for h in [hook, orphan] {
            conn.execute(
                "INSERT INTO webhooks (org_id, id, version, created_at, updated_at, url) VALUES (?1, ?2, 1, 1, 1, 'https://x.test/')",
                (tenant(), h),
            )
            .unwrap();
        }
        insert_raw_audit(&conn, 1, "webhook", hook, ada, serde_json::json!([]));
        insert_raw_audit(&conn, 2, "webhook", hook, bob, serde_json::json!([]));
    }
    let store = SqliteStore::open(&path).unwrap();
    let creator = |id: Id| {
        block_on(store.get(tenant(), &WEBHOOK, id))
            .unwrap()
            .unwrap()
            .id_of(CREATED_BY)
    };
    assert_eq!((creator(hook), creator(orphan)), (Some(ada), None));
}

#[test]
fn sync_log_entries_from_before_intents_read_back_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate(&conn, 15).unwrap();
        conn.execute(
            "INSERT INTO sync_log (org_id, seq, change_set_id, at, actor, writes, audit_ids, event_ids) \
             VALUES (?1, 1, ?2, 5, NULL, '[{\"entity\":\"lead\",\"id\":\"01900000-0000-7000-8000-000000010001\",\"op\":\"update\",\"expected_version\":1,\"patch\":{\"notes\":\"x\"}}]', '[]', '[]')",
            (tenant(), lead_id(9)),
        )
        .unwrap();
        conn.execute("INSERT INTO sync_heads (org_id, seq) VALUES (?1, 1)", (tenant(),))
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap().with_sync_log(true);
    let old = block_on(s.pending_changes(tenant(), 0, 10)).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(
        (old[0].intent.clone(), old[0].writes[0].base.len()),
        (None, 0),
        "migrated: no intent, no base"
    );
    // New entries keep theirs.
    let mut r = Record::empty(&CONTACT, tenant(), lead_id(1), Timestamp(5));
    r.set("first_name", "Ann");
    let mut cs = ChangeSet::new(tenant());
    cs.intent = Some(crm_core::sync::Intent::Delete {
        entity: "contact".into(),
        id: r.id,
        expected_version: 3,
    });
    cs.writes.push(Write::Insert(r));
    block_on(s.apply(cs.clone())).unwrap();
    let all = block_on(s.pending_changes(tenant(), 0, 10)).unwrap();
    assert_eq!(all[1].intent, cs.intent);
}

/// The readers share one page-cache budget: an embedded store's few readers get 16 MiB each, a
/// server's reader per request in flight SQLite's default 2 MiB.
#[test]
fn readers_share_a_page_cache_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cache = |readers: usize| {
        let store = SqliteStore::open(dir.path().join("cache.db"))
            .unwrap()
            .with_readers(readers);
        store
            .read(|c| c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0)).map_err(db))
            .unwrap()
    };
    assert_eq!(cache(4), -16 * 1024);
    assert_eq!(cache(8), -8 * 1024);
    assert_eq!(cache(512), -2 * 1024);
}

#[test]
fn cached_reads_are_not_prepared_again_on_every_run() {
    use rusqlite::StatementStatus::RePrepare;
    let s = SqliteStore::open_in_memory().unwrap();
    let mut bulk = block_on(s.bulk(tenant())).unwrap();
    let mut cs = ChangeSet::new(tenant());
    for n in 1..=3 {
        cs.writes
            .push(Write::Insert(Record::empty(&LEAD, tenant(), lead_id(n), Timestamp(1))));
    }
    block_on(bulk.apply(cs)).unwrap();
    let q = StoreQuery::by_id(
        Filter::In {
            field: "id".into(),
            values: vec![Value::Id(lead_id(1)), Value::Id(lead_id(3))],
        },
        2,
    );
    for _ in 0..3 {
        assert_eq!(block_on(bulk.query(&LEAD, &q)).unwrap().len(), 2);
        assert_eq!(block_on(bulk.ids(&LEAD, &q)).unwrap(), vec![lead_id(1), lead_id(3)]);
    }
    let conn = bulk.live().unwrap();
    for (text, _) in [
        sql::select(&LEAD, tenant(), &q, B).unwrap(),
        sql::select_ids(&LEAD, tenant(), &q, B).unwrap(),
    ] {
        let st = conn.prepare_cached(&text).unwrap();
        assert_eq!(st.get_status(RePrepare), 0, "{text}");
    }
    // The control: the same query with its limit bound is prepared again each time it is bound.
    let bound = "SELECT id FROM leads WHERE org_id = ?1 ORDER BY id LIMIT ?2";
    for _ in 0..3 {
        let mut st = conn.prepare_cached(bound).unwrap();
        let n = st.query_map((tenant(), 2), |r| r.get::<_, Id>(0)).unwrap().count();
        assert_eq!(n, 2);
    }
    assert!(conn.prepare_cached(bound).unwrap().get_status(RePrepare) > 0);
}
