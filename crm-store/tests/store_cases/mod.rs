//! The store cases every SQL backend runs, against hand-built change sets with the in-memory store
//! as the reference. A backend's test file generates one `#[test]` per case with [`store_cases!`]
//! from a constructor of fresh stores (and one of stores with the sync log on), the way crm-core's
//! `conformance_tests!` does; what only one backend has stays in that backend's file. Needs the
//! including test crate to declare `mod common;`.
#![allow(dead_code, clippy::unwrap_used)]

use crate::common::*;
use crm_core::change::{Applied, ChangeSet, Write, verify_chain};
use crm_core::entity::{self, CONTACT, LEAD, USER};
use crm_core::error::{Error, codes};
use crm_core::memory::MemoryStore;
use crm_core::query::{AggregateQuery, Compiled, Filter, Op, SortKey, StoreQuery, keyset_after};
use crm_core::record::Record;
use crm_core::store::{AuditQuery, BulkWrite, Store};
use crm_core::value::{Id, Money, Timestamp, Value};
use pollster::block_on;

/// One `#[test]` per case for `$make` (an expression giving a constructor of fresh stores; it may
/// `return` early to skip the case), plus the sync log cases for `$logged` (a constructor of stores
/// with the log on).
macro_rules! store_cases {
    ($make:expr, sync_log: $logged:expr $(,)?) => {
        $crate::store_cases::store_cases!(@cases $make;
            every_entity_round_trips_every_field_type, stale_update_is_a_conflict_and_writes_nothing,
            derived_writes_skip_rows_that_moved_on, tenants_are_isolated,
            unique_fields_are_duplicates_and_nothing_is_written, audit_chain_verifies_and_events_are_numbered,
            keyset_pages_equal_sorting_everything_in_memory, filters_match_the_in_memory_evaluator,
            bulk_sessions_commit_or_roll_back, the_store_is_shared_across_threads, the_service_runs_on_the_store,
            a_long_run_of_inserts_is_all_or_nothing);
        $crate::store_cases::store_cases!(@cases $logged; the_sync_log_matches_the_memory_store);

        // On the concrete store type, so its own futures are checked (not only the trait's bounds).
        #[test]
        fn futures_are_send() {
            use crm_core::store::Store as _;
            use $crate::common::id;
            fn send<T: Send>(_: &T) {}
            let s = ($make)();
            let q = $crate::common::all(crm_core::query::Filter::All);
            send(&s.get(id(1), &crm_core::entity::LEAD, id(2)));
            send(&s.query(id(1), &crm_core::entity::LEAD, &q));
            send(&s.apply(crm_core::change::ChangeSet::new(id(1))));
            send(&s.bulk(id(1)));
            let bulk = pollster::block_on(s.bulk(id(1))).unwrap();
            send(&bulk);
        }
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::store_cases::$name(($make)());
            }
        )*
    };
}
pub(crate) use store_cases;

pub fn every_entity_round_trips_every_field_type<S: Store>(s: S) {
    let t = id(1);
    for def in entity::all() {
        for n in [1, 2] {
            let r = record(
                def,
                if def.name == "organization" {
                    id(100 + u128::from(n))
                } else {
                    t
                },
                n,
            );
            block_on(s.apply(insert(&r))).unwrap();
            let back = block_on(s.get(r.tenant, def, r.id)).unwrap().unwrap();
            assert_eq!(back, r, "{}", def.name);
        }
        // A record with every field null.
        let empty = Record::empty(def, t, id(777), Timestamp(T0));
        if def.name != "organization" {
            block_on(s.apply(insert(&empty))).unwrap();
            assert_eq!(
                block_on(s.get(t, def, empty.id)).unwrap().unwrap(),
                empty,
                "{}",
                def.name
            );
        }
    }
    // Custom values keep their types (money is not read back as an integer, dates not as text).
    let c = block_on(s.get(t, &CONTACT, record(&CONTACT, t, 1).id))
        .unwrap()
        .unwrap();
    assert_eq!(c.custom.get("budget"), Some(&Value::Money(Money(12_346))));
    assert_eq!(c.custom.get("due"), Some(&date(2025, 3, 2)));
    assert_eq!(c.custom.get("whole"), Some(&Value::Number(3.0)));
    assert_eq!(c.custom.get("empty"), Some(&Value::Null));
}

pub fn stale_update_is_a_conflict_and_writes_nothing<S: Store>(s: S) {
    let t = id(1);
    let v1 = record(&LEAD, t, 1);
    block_on(s.apply(insert(&v1))).unwrap();
    let v2 = bumped(&v1, |r| r.set("status", "contacted"));
    let a = block_on(s.apply(update(&v1, &v2))).unwrap();
    assert_eq!(
        a,
        Applied {
            last_event_seq: 2,
            rows: 1
        }
    );

    // Someone else still holds v1; their change set also inserts another lead.
    let stale = bumped(&v1, |r| r.set("status", "lost"));
    let mut cs = update(&v1, &stale);
    let other = record(&LEAD, t, 2);
    cs.writes.insert(0, Write::Insert(other.clone()));
    let e = block_on(s.apply(cs)).unwrap_err();
    assert_eq!(
        e,
        Error::Conflict {
            entity: "lead".into(),
            id: v1.id.to_string(),
            expected: 1,
            actual: 2
        }
    );
    assert_eq!(block_on(s.get(t, &LEAD, v1.id)).unwrap().unwrap(), v2);
    assert_eq!(block_on(s.get(t, &LEAD, other.id)).unwrap(), None);
    assert_eq!(block_on(s.events(t, 0, 100)).unwrap().len(), 2);
    assert_eq!(
        block_on(s.audit(
            t,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            }
        ))
        .unwrap()
        .len(),
        2
    );

    // Updating or deleting a missing row is "not found"; a stale delete is a conflict.
    let ghost = bumped(&record(&LEAD, t, 9), |_| {});
    let e = block_on(s.apply(update(&record(&LEAD, t, 9), &ghost))).unwrap_err();
    assert_eq!(e.code(), "not_found");
    let mut del = ChangeSet::new(t);
    del.writes.push(Write::Delete {
        entity: &LEAD,
        id: v1.id,
        expected_version: 1,
    });
    assert!(matches!(
        block_on(s.apply(del)).unwrap_err(),
        Error::Conflict {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    let mut del = ChangeSet::new(t);
    del.writes.push(Write::Delete {
        entity: &LEAD,
        id: v1.id,
        expected_version: 2,
    });
    assert_eq!(block_on(s.apply(del)).unwrap().rows, 1);
    assert_eq!(block_on(s.get(t, &LEAD, v1.id)).unwrap(), None);

    // Inserting an existing id is a conflict, as in memory.
    block_on(s.apply(insert(&other))).unwrap();
    assert!(matches!(
        block_on(s.apply(insert(&other))).unwrap_err(),
        Error::Conflict { expected: 0, .. }
    ));
}

pub fn derived_writes_skip_rows_that_moved_on<S: Store>(s: S) {
    let t = id(1);
    let v1 = record(&LEAD, t, 1);
    block_on(s.apply(insert(&v1))).unwrap();
    let score = LEAD.index_of("score").unwrap();
    let temp = LEAD.index_of("temperature").unwrap();
    let mut cs = ChangeSet::new(t);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: v1.id,
        expected_version: 1,
        fields: vec![(score, Value::Int(88)), (temp, "hot".into())],
    });
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: v1.id,
        expected_version: 7,
        fields: vec![(score, Value::Int(1))],
    });
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: id(424_242),
        expected_version: 1,
        fields: vec![(score, Value::Int(1))],
    });
    assert_eq!(block_on(s.apply(cs)).unwrap().rows, 1);
    let back = block_on(s.get(t, &LEAD, v1.id)).unwrap().unwrap();
    assert_eq!(
        (back.get("score"), back.str("temperature"), back.version),
        (Some(&Value::Int(88)), Some("hot"), 1)
    );
    assert_eq!(back.updated_at, v1.updated_at);
}

pub fn tenants_are_isolated<S: Store>(s: S) {
    let (a, b) = (id(1), id(2));
    let r = record(&LEAD, a, 1);
    block_on(s.apply(insert(&r))).unwrap();
    assert_eq!(block_on(s.get(b, &LEAD, r.id)).unwrap(), None);
    assert!(block_on(s.query(b, &LEAD, &all(Filter::All))).unwrap().is_empty());
    assert_eq!(block_on(s.count(b, &LEAD, &Filter::All)).unwrap(), 0);
    assert!(block_on(s.events(b, 0, 10)).unwrap().is_empty());
    // Tenant b cannot update or delete a's row: it does not exist for b.
    let mut hijack = bumped(&r, |r| r.set("status", "lost"));
    hijack.tenant = b;
    let mut cs = ChangeSet::new(b);
    cs.writes.push(Write::Update {
        record: hijack,
        expected_version: 1,
    });
    assert_eq!(block_on(s.apply(cs)).unwrap_err().code(), "not_found");
    let mut cs = ChangeSet::new(b);
    cs.writes.push(Write::Delete {
        entity: &LEAD,
        id: r.id,
        expected_version: 1,
    });
    assert_eq!(block_on(s.apply(cs)).unwrap_err().code(), "not_found");
    // A change set cannot smuggle in a record of another tenant.
    let mut cs = ChangeSet::new(b);
    cs.writes.push(Write::Insert(record(&LEAD, a, 2)));
    assert_eq!(block_on(s.apply(cs)).unwrap_err().code(), "internal");
    assert_eq!(block_on(s.get(a, &LEAD, r.id)).unwrap().unwrap(), r);
    // Tenants are the organizations.
    for t in [a, b] {
        block_on(s.apply(insert(&record(&entity::ORGANIZATION, t, 1)))).unwrap();
    }
    assert_eq!(block_on(s.tenants()).unwrap(), vec![a, b]);
}

pub fn unique_fields_are_duplicates_and_nothing_is_written<S: Store>(s: S) {
    let (t, u) = (id(1), id(2));
    let mut first = lead(t, 1);
    first.set("first_name", "Ann");
    first.set("external_id", "EXT-1");
    block_on(s.apply(insert(&first))).unwrap();

    let mut dup = lead(t, 2);
    dup.set("first_name", "Bob");
    dup.set("external_id", "EXT-1");
    let mut cs = insert(&dup);
    let unrelated = lead(t, 3);
    cs.writes.insert(0, Write::Insert(unrelated.clone()));
    let e = block_on(s.apply(cs)).unwrap_err();
    let fe = e.field_errors();
    assert_eq!(
        (fe.len(), fe[0].path.as_str(), fe[0].code.as_str()),
        (1, "external_id", codes::DUPLICATE)
    );
    assert!(
        !e.to_string().contains("EXT-1") && !fe[0].message.contains("EXT-1"),
        "{e}"
    );
    assert!(!fe[0].message.to_ascii_uppercase().contains("CONSTRAINT"));
    assert_eq!(block_on(s.get(t, &LEAD, unrelated.id)).unwrap(), None);
    assert_eq!(block_on(s.events(t, 0, 10)).unwrap().len(), 1);

    // Updating another row onto the taken value is a duplicate too; nulls never clash.
    block_on(s.apply(insert(&lead(t, 4)))).unwrap();
    let moved = bumped(&lead(t, 4), |r| r.set("external_id", "EXT-1"));
    assert_eq!(
        block_on(s.apply(update(&lead(t, 4), &moved)))
            .unwrap_err()
            .field_errors()[0]
            .path,
        "external_id"
    );
    // The same key in another tenant is fine.
    let mut other = dup.clone();
    other.tenant = u;
    block_on(s.apply(insert(&other))).unwrap();
    // Users: unique email.
    let mut a = Record::empty(&USER, t, id(60), Timestamp(T0));
    a.set("email", "a@example.com");
    block_on(s.apply(insert(&a))).unwrap();
    let mut b = Record::empty(&USER, t, id(61), Timestamp(T0));
    b.set("email", "a@example.com");
    assert_eq!(
        block_on(s.apply(insert(&b))).unwrap_err().field_errors()[0].path,
        "email"
    );
    // A change set inserting records of several types (one statement on PostgreSQL): the type
    // that clashed answers, by its field or as a conflict on its id, and nothing else is written.
    let before = lead(t, 62);
    let mut cs = insert(&before);
    cs.writes.push(Write::Insert(b.clone()));
    assert_eq!(block_on(s.apply(cs)).unwrap_err().field_errors()[0].path, "email");
    let mut again = Record::empty(&USER, t, a.id, Timestamp(T0));
    again.set("email", "c@example.com");
    let mut cs = insert(&before);
    cs.writes.push(Write::Insert(again));
    assert_eq!(
        block_on(s.apply(cs)).unwrap_err(),
        Error::Conflict {
            entity: "user".into(),
            id: a.id.to_string(),
            expected: 0,
            actual: a.version
        }
    );
    assert_eq!(block_on(s.get(t, &LEAD, before.id)).unwrap(), None);
}

pub fn audit_chain_verifies_and_events_are_numbered<S: Store>(s: S) {
    let mem = MemoryStore::new();
    let (t, u) = (id(1), id(2));
    let mut recs = Vec::new();
    for n in 0..5 {
        let r = record(&LEAD, t, n);
        let cs = insert(&r);
        let a = block_on(s.apply(cs.clone())).unwrap();
        assert_eq!(a, block_on(mem.apply(cs)).unwrap());
        assert_eq!(a.last_event_seq, u64::from(n) + 1);
        recs.push(r);
    }
    // Two entries and three events in one change set.
    let v2 = bumped(&recs[0], |r| r.set("city", "Berlin"));
    let mut cs = update(&recs[0], &v2);
    cs.audit.push(audit_for(&v2, "rescore", Some(&recs[0])));
    cs.events.push(event_for(&v2, "scored"));
    cs.events.push(event_for(&v2, "hot"));
    assert_eq!(
        block_on(s.apply(cs.clone())).unwrap(),
        Applied {
            last_event_seq: 8,
            rows: 1
        }
    );
    block_on(mem.apply(cs)).unwrap();
    // A change set with nothing to number reports the current head.
    assert_eq!(
        block_on(s.apply(ChangeSet::new(t))).unwrap(),
        Applied {
            last_event_seq: 8,
            rows: 0
        }
    );
    // Another tenant has its own chain and sequence.
    let other = record(&LEAD, u, 1);
    assert_eq!(block_on(s.apply(insert(&other))).unwrap().last_event_seq, 1);

    let q = AuditQuery {
        limit: 100,
        ..Default::default()
    };
    let entries = block_on(s.audit(t, &q)).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    verify_chain(&entries).unwrap();
    assert_eq!(entries, block_on(mem.audit(t, &q)).unwrap());
    let mut tampered = entries.clone();
    tampered[3].action = "delete".into();
    assert_eq!(verify_chain(&tampered), Err(4));

    for q in [
        AuditQuery {
            after_seq: 3,
            limit: 2,
            ..Default::default()
        },
        AuditQuery {
            entity_id: Some(recs[0].id),
            limit: 10,
            ..Default::default()
        },
        AuditQuery {
            entity: Some("lead".into()),
            after_seq: 5,
            limit: 10,
            ..Default::default()
        },
        AuditQuery {
            entity: Some("contact".into()),
            limit: 10,
            ..Default::default()
        },
    ] {
        assert_eq!(
            block_on(s.audit(t, &q)).unwrap(),
            block_on(mem.audit(t, &q)).unwrap(),
            "{q:?}"
        );
    }
    let events = block_on(s.events(t, 0, 100)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(events, block_on(mem.events(t, 0, 100)).unwrap());
    assert_eq!(block_on(s.events(t, 6, 1)).unwrap()[0].seq, 7);
    assert!(events.iter().all(|e| e.tenant == t));
}

/// Leads with a spread of values, nulls and ties, plus custom fields.
fn population(t: Id) -> Vec<Record> {
    let cities = [
        None,
        Some("Berlin"),
        Some("berlin"),
        Some("Bern"),
        Some("50%_off\\x"),
        Some(""),
        Some("Zürich"),
    ];
    let tags: [&[&str]; 6] = [
        &[],
        &["vip"],
        &["vip", "storm"],
        &["a\"b", "x,y"],
        &["VIP"],
        &["x\",\"y", "[\"vip\"]"],
    ];
    (0..60u32)
        .map(|n| {
            let mut r = lead(t, n);
            r.set("first_name", format!("Name{}", n % 9));
            if let Some(c) = cities[n as usize % cities.len()] {
                r.set("city", c);
            }
            if n % 4 != 0 {
                r.set("score", i64::from((n * 37) % 11));
            }
            if n % 3 != 0 {
                r.set("estimated_value", Money(i64::from(n % 5) * 100));
            }
            if n % 5 != 1 {
                r.set("latitude", Value::Number(f64::from(n % 7) - 3.5));
            }
            if n % 6 != 0 {
                r.set(
                    "tags",
                    Value::List(tags[n as usize % tags.len()].iter().map(|s| s.to_string()).collect()),
                );
            }
            r.set("status", ["new", "contacted", "qualified"][n as usize % 3]);
            if n % 2 == 0 {
                r.set("owner_id", id(7 + u128::from(n % 3)));
            }
            if n % 3 != 1 {
                r.set("scored_at", Timestamp(T0 + i64::from(n % 4) * 1000));
            }
            if n % 4 != 3 {
                r.custom.insert(
                    "roof".into(),
                    Value::Text(["Slate", "slate tile", "METAL", "x_y"][n as usize % 4].into()),
                );
            }
            if n % 5 != 4 {
                r.custom
                    .insert("budget".into(), Value::Money(Money(i64::from(n % 6) * 250)));
                r.custom.insert("due".into(), date(2025, 1 + (n % 3) as u8, 1));
                r.custom.insert("ok".into(), Value::Bool(n % 2 == 0));
            }
            if n % 3 == 0 {
                r.custom.insert(
                    "colors".into(),
                    Value::List(vec!["red".into(), ["blue", "Green"][n as usize % 2].into()]),
                );
            }
            r
        })
        .collect()
}

fn loaded<S: Store>(s: S, t: Id) -> (S, Vec<Record>) {
    let rows = population(t);
    let mut cs = ChangeSet::new(t);
    cs.writes.extend(rows.iter().cloned().map(Write::Insert));
    block_on(s.apply(cs)).unwrap();
    (s, rows)
}

pub fn keyset_pages_equal_sorting_everything_in_memory<S: Store>(s: S) {
    let t = id(1);
    let (s, rows) = loaded(s, t);
    for sort in [
        vec![SortKey::desc("score"), SortKey::asc("id")],
        vec![SortKey::asc("score"), SortKey::asc("id")],
        vec![
            SortKey::asc("city"),
            SortKey::desc("estimated_value"),
            SortKey::asc("id"),
        ],
        vec![SortKey::desc("latitude"), SortKey::asc("scored_at"), SortKey::asc("id")],
        vec![SortKey::desc("owner_id"), SortKey::asc("id")],
        vec![
            SortKey::asc("custom.budget"),
            SortKey::desc("custom.roof"),
            SortKey::asc("id"),
        ],
        vec![SortKey::asc("id")],
    ] {
        let expected = sorted(&rows, &LEAD, &sort);
        let mut got = Vec::new();
        let mut filter = Filter::All;
        loop {
            let page = block_on(s.query(
                t,
                &LEAD,
                &StoreQuery {
                    filter: filter.clone(),
                    sort: sort.clone(),
                    limit: 7,
                },
            ))
            .unwrap();
            got.extend(page.iter().map(|r| r.id));
            let Some(last) = page.last() else { break };
            let vals: Vec<Value> = sort
                .iter()
                .map(|k| last.value(&LEAD.resolve(&k.field).unwrap()))
                .collect();
            filter = keyset_after(&sort, &vals);
            assert!(got.len() <= rows.len(), "pages do not end for {sort:?}");
        }
        assert_eq!(got, expected, "{sort:?}");
    }
}

fn filters() -> Vec<Filter> {
    let not = |f: Filter| Filter::Not(Box::new(f));
    let null = |f: &str| Filter::IsNull { field: f.into() };
    vec![
        Filter::All,
        not(Filter::All),
        Filter::And(vec![]),
        Filter::Or(vec![]),
        not(Filter::Or(vec![])),
        Filter::eq("status", "new"),
        Filter::cmp("score", Op::Gt, 5i64),
        not(Filter::cmp("score", Op::Gt, 5i64)),
        Filter::cmp("score", Op::Le, Value::Null),
        not(Filter::cmp("score", Op::Ne, Value::Null)),
        Filter::Or(vec![Filter::cmp("score", Op::Ge, 8i64), null("score")]),
        not(Filter::And(vec![
            Filter::cmp("score", Op::Lt, 3i64),
            Filter::eq("status", "new"),
        ])),
        not(Filter::Or(vec![
            Filter::cmp("score", Op::Lt, 3i64),
            Filter::cmp("latitude", Op::Gt, Value::Number(0.5)),
        ])),
        null("city"),
        not(null("city")),
        Filter::eq("city", "Berlin"),
        Filter::cmp("city", Op::Lt, "Bern"),
        Filter::cmp("city", Op::Contains, "ER"),
        Filter::cmp("city", Op::Contains, "%_"),
        Filter::cmp("city", Op::Contains, "\\"),
        Filter::cmp("city", Op::Contains, ""),
        Filter::cmp("city", Op::Contains, "ü"),
        not(Filter::cmp("city", Op::Contains, "ber")),
        Filter::cmp("city", Op::StartsWith, "BER"),
        Filter::cmp("city", Op::StartsWith, "50%"),
        Filter::cmp("city", Op::StartsWith, "%"),
        Filter::cmp("tags", Op::Contains, "vip"),
        Filter::cmp("tags", Op::Contains, "VIP"),
        Filter::cmp("tags", Op::Contains, "a\"b"),
        Filter::cmp("tags", Op::Contains, "x,y"),
        Filter::cmp("tags", Op::Contains, "y"),
        not(Filter::cmp("tags", Op::Contains, "storm")),
        Filter::cmp("tags", Op::StartsWith, "vi"),
        Filter::cmp("score", Op::Contains, "1"),
        not(Filter::cmp("score", Op::Contains, "1")),
        Filter::In {
            field: "status".into(),
            values: vec!["new".into(), "qualified".into()],
        },
        Filter::In {
            field: "score".into(),
            values: vec![Value::Int(1), Value::Null],
        },
        not(Filter::In {
            field: "score".into(),
            values: vec![Value::Int(1), Value::Null],
        }),
        not(Filter::In {
            field: "score".into(),
            values: vec![Value::Null],
        }),
        Filter::In {
            field: "score".into(),
            values: vec![],
        },
        Filter::In {
            field: "owner_id".into(),
            values: vec![id(7).into(), id(9).into()],
        },
        Filter::cmp("owner_id", Op::Gt, id(7)),
        Filter::cmp("estimated_value", Op::Ge, Money(200)),
        Filter::cmp("latitude", Op::Lt, Value::Number(0.0)),
        Filter::cmp("scored_at", Op::Le, Timestamp(T0 + 1000)),
        Filter::cmp("id", Op::Gt, id(50_030)),
        Filter::cmp("version", Op::Eq, 1i64),
        Filter::cmp("created_at", Op::Lt, Timestamp(T0 + 10)),
        Filter::eq("custom.roof", "Slate"),
        Filter::cmp("custom.roof", Op::Contains, "SLATE"),
        Filter::cmp("custom.roof", Op::Contains, "_"),
        Filter::cmp("custom.roof", Op::StartsWith, "sl"),
        not(Filter::cmp("custom.roof", Op::StartsWith, "sl")),
        null("custom.roof"),
        null("custom.nope"),
        Filter::cmp("custom.budget", Op::Gt, Money(500)),
        not(Filter::cmp("custom.budget", Op::Gt, Money(500))),
        Filter::cmp("custom.budget", Op::Contains, "5"),
        not(Filter::cmp("custom.budget", Op::Contains, "5")),
        Filter::cmp("custom.due", Op::Ge, date(2025, 2, 1)),
        Filter::cmp("custom.due", Op::StartsWith, "2025"),
        Filter::eq("custom.ok", true),
        Filter::cmp("custom.ok", Op::Lt, true),
        Filter::cmp("custom.colors", Op::Contains, "Green"),
        Filter::cmp("custom.colors", Op::Contains, "green"),
        not(Filter::cmp("custom.colors", Op::Contains, "red")),
        Filter::In {
            field: "custom.roof".into(),
            values: vec!["METAL".into(), "x_y".into()],
        },
        Filter::Or(vec![
            Filter::eq("custom.roof", "METAL"),
            Filter::And(vec![Filter::cmp("score", Op::Ge, 4i64), not(null("owner_id"))]),
        ]),
    ]
}

/// Aggregates over `f` with every kind of key (columns, custom fields, lists, time buckets) and
/// measure.
fn aggregates(f: &Filter) -> Vec<AggregateQuery> {
    use crm_core::query::{Bucket, GroupBy, Measure};
    let by = |keys: &[&str]| AggregateQuery {
        filter: f.clone(),
        group_by: keys.iter().map(|k| k.parse().unwrap()).collect(),
        measures: vec![Measure::Count],
        offset: time::UtcOffset::UTC,
    };
    let every = |field: &str| [Measure::Sum, Measure::Avg, Measure::Min, Measure::Max].map(|m| m(field.to_owned()));
    let mut q = vec![
        by(&["status"]).with(Measure::Sum("estimated_value".into())),
        by(&["score"]),
        by(&["city", "owner_id"]),
        by(&["custom.roof"]),
        by(&["tags"]),
        by(&["custom.due", "status"]),
        by(&[]),
    ];
    let mut all = by(&["status", "scored_at:day"]);
    all.measures.extend(every("estimated_value"));
    all.measures.extend(every("score"));
    all.measures.extend(every("latitude"));
    all.measures
        .extend([Measure::Min("scored_at".into()), Measure::Max("version".into())]);
    q.push(all);
    let mut local = by(&["created_at:week"]);
    local.group_by.push(GroupBy::Bucket("scored_at".into(), Bucket::Month));
    local.group_by.remove(0);
    local.group_by.push(GroupBy::Field("temperature".into()));
    local.offset = time::UtcOffset::from_hms(-9, -30, 0).unwrap();
    q.push(local);
    q
}

pub fn filters_match_the_in_memory_evaluator<S: Store>(s: S) {
    let t = id(1);
    let (s, rows) = loaded(s, t);
    let mem = MemoryStore::new();
    let mut cs = ChangeSet::new(t);
    cs.writes.extend(rows.iter().cloned().map(Write::Insert));
    block_on(mem.apply(cs)).unwrap();
    let mut nontrivial = 0;
    for f in filters() {
        let c = Compiled::compile(&f, &LEAD).unwrap();
        let mut expected: Vec<Id> = rows.iter().filter(|r| c.matches(r)).map(|r| r.id).collect();
        expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let got: Vec<Id> = block_on(s.query(t, &LEAD, &all(f.clone())))
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, expected, "{f:?}");
        nontrivial += usize::from(!got.is_empty() && got.len() < rows.len());
        assert_eq!(block_on(s.count(t, &LEAD, &f)).unwrap(), expected.len() as u64, "{f:?}");
        for q in aggregates(&f) {
            assert_eq!(
                block_on(s.aggregate(t, &LEAD, &q)).unwrap(),
                block_on(mem.aggregate(t, &LEAD, &q)).unwrap(),
                "{q:?}"
            );
        }
    }
    assert!(nontrivial > 40, "{nontrivial}");
    for bad in [
        Filter::Search("x".into()),
        Filter::eq("nope", "x"),
        Filter::eq("custom.bad key", "x"),
    ] {
        assert_eq!(
            block_on(s.query(t, &LEAD, &all(bad))).unwrap_err().code(),
            "invalid_query"
        );
    }
}

pub fn bulk_sessions_commit_or_roll_back<S: Store>(s: S) {
    let t = id(1);
    {
        let mut bulk = block_on(s.bulk(t)).unwrap();
        block_on(bulk.apply(insert(&record(&LEAD, t, 1)))).unwrap();
        // Sees its own writes; readers do not (yet).
        assert_eq!(block_on(bulk.query(&LEAD, &all(Filter::All))).unwrap().len(), 1);
        assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 0);
        // Dropped without commit.
    }
    assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 0);
    assert!(block_on(s.events(t, 0, 10)).unwrap().is_empty());

    let mut bulk = block_on(s.bulk(t)).unwrap();
    let a = record(&LEAD, t, 1);
    block_on(bulk.apply(insert(&a))).unwrap();
    // A failing change set leaves the session as it was.
    let mut bad = insert(&record(&LEAD, t, 2));
    bad.writes.push(Write::Insert(a.clone()));
    assert_eq!(block_on(bulk.apply(bad)).unwrap_err().code(), "conflict");
    let b = record(&LEAD, t, 3);
    assert_eq!(block_on(bulk.apply(insert(&b))).unwrap().last_event_seq, 2);
    assert_eq!(
        block_on(bulk.commit()).unwrap(),
        Applied {
            last_event_seq: 2,
            rows: 2
        }
    );
    let ids: Vec<Id> = block_on(s.query(t, &LEAD, &all(Filter::All)))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![a.id, b.id]);
    verify_chain(
        &block_on(s.audit(
            t,
            &AuditQuery {
                limit: 10,
                ..Default::default()
            },
        ))
        .unwrap(),
    )
    .unwrap();
    // The writer is free again.
    block_on(s.apply(insert(&record(&LEAD, t, 4)))).unwrap();
}

pub fn the_store_is_shared_across_threads<S: Store + 'static>(s: S) {
    let s = std::sync::Arc::new(s);
    let t = id(1);
    let handles: Vec<_> = (0..4u32)
        .map(|k| {
            let s = s.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    block_on(s.apply(insert(&lead(t, k * 100 + n)))).unwrap();
                    assert!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap() > u64::from(n));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 100);
    let events = block_on(s.events(t, 0, 1000)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    verify_chain(
        &block_on(s.audit(
            t,
            &AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        ))
        .unwrap(),
    )
    .unwrap();
}

pub fn the_service_runs_on_the_store<S: Store>(s: S) {
    use crm_core::clock::{FixedClock, SeqIds};
    use crm_core::service::Service;
    use std::sync::Arc;
    let svc = Service::new(s, Arc::new(FixedClock::new(Timestamp(T0))), Arc::new(SeqIds::default()));
    let obj = |v: serde_json::Value| v.as_object().unwrap().clone();
    let org = block_on(svc.create_organization(&obj(serde_json::json!({"name": "Acme Roofing"})))).unwrap();
    let admin = crm_core::access::Actor::system(org.id);
    let lead = block_on(svc.create(
        &admin,
        "lead",
        &obj(serde_json::json!({"first_name": "Ann", "source": "referral"})),
    ))
    .unwrap();
    assert_eq!(lead.str("status"), Some("new"));
    assert_eq!(
        block_on(svc.get(&admin, "lead", lead.id)).unwrap().str("first_name"),
        Some("Ann")
    );
    assert_eq!(block_on(svc.tenants()).unwrap(), vec![org.id]);
}

pub fn the_sync_log_matches_the_memory_store<S: Store>(s: S) {
    let mem = MemoryStore::new().with_sync_log(true);
    let t = id(1);
    let v1 = record(&LEAD, t, 1);
    let v2 = bumped(&v1, |r| r.set("city", "Berlin"));
    let c = record(&CONTACT, t, 2);
    for cs in [insert(&v1), insert(&c), update(&v1, &v2)] {
        assert_eq!(block_on(s.apply(cs.clone())).unwrap(), block_on(mem.apply(cs)).unwrap());
    }
    // A rolled-back session logs nothing; a committed one logs each change set.
    let mut bulk = block_on(s.bulk(t)).unwrap();
    block_on(bulk.apply(insert(&record(&LEAD, t, 3)))).unwrap();
    drop(bulk);
    let mut bulk = block_on(s.bulk(t)).unwrap();
    block_on(bulk.apply(insert(&record(&LEAD, t, 4)))).unwrap();
    block_on(bulk.commit()).unwrap();
    block_on(mem.apply(insert(&record(&LEAD, t, 4)))).unwrap();
    let got = block_on(s.pending_changes(t, 0, 100)).unwrap();
    assert_eq!(got, block_on(mem.pending_changes(t, 0, 100)).unwrap());
    assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(block_on(s.mark_synced(t, 2)).unwrap(), 2);
    assert_eq!(block_on(s.mark_synced(t, 2)).unwrap(), 0);
    block_on(s.apply(insert(&record(&LEAD, t, 5)))).unwrap();
    let left: Vec<u64> = block_on(s.pending_changes(t, 0, 100))
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, vec![3, 4, 5]);
}

/// One change set of 450 inserts of two types, interleaved, with their 450 audit entries and events
/// (more than one multi-row statement of each on PostgreSQL): a taken id in the middle is a conflict
/// naming it, and nothing of the change set is written; without it every row, entry and event is
/// stored as the in-memory store stores them.
pub fn a_long_run_of_inserts_is_all_or_nothing<S: Store>(s: S) {
    let mem = MemoryStore::new();
    let t = id(1);
    let taken = record(&LEAD, t, 5_000);
    block_on(s.apply(insert(&taken))).unwrap();
    block_on(mem.apply(insert(&taken))).unwrap();
    let run = |clash: bool| {
        let mut cs = ChangeSet::new(t);
        for n in 0..225u32 {
            for def in [&LEAD, &CONTACT] {
                let mut r = record(def, t, n);
                if clash && n == 160 && def.name == "lead" {
                    r.id = taken.id;
                }
                cs.audit.push(audit_for(&r, "create", None));
                cs.events.push(event_for(&r, "created"));
                cs.writes.push(Write::Insert(r));
            }
        }
        cs
    };
    let e = block_on(s.apply(run(true))).unwrap_err();
    assert_eq!(
        e,
        Error::Conflict {
            entity: "lead".into(),
            id: taken.id.to_string(),
            expected: 0,
            actual: 1
        }
    );
    assert_eq!(block_on(s.count(t, &LEAD, &Filter::All)).unwrap(), 1);
    assert_eq!(block_on(s.count(t, &CONTACT, &Filter::All)).unwrap(), 0);
    assert_eq!(block_on(s.events(t, 0, 1_000)).unwrap().len(), 1);

    let a = block_on(s.apply(run(false))).unwrap();
    assert_eq!(a, block_on(mem.apply(run(false))).unwrap());
    assert_eq!(
        a,
        Applied {
            last_event_seq: 451,
            rows: 450
        }
    );
    for def in [&LEAD, &CONTACT] {
        let q = all(Filter::All);
        assert_eq!(
            block_on(s.query(t, def, &q)).unwrap(),
            block_on(mem.query(t, def, &q)).unwrap()
        );
    }
    let q = AuditQuery {
        limit: 1_000,
        ..Default::default()
    };
    let entries = block_on(s.audit(t, &q)).unwrap();
    assert_eq!(entries.len(), 451);
    verify_chain(&entries).unwrap();
    assert_eq!(entries, block_on(mem.audit(t, &q)).unwrap());
    assert_eq!(
        block_on(s.events(t, 0, 1_000)).unwrap(),
        block_on(mem.events(t, 0, 1_000)).unwrap()
    );
}
