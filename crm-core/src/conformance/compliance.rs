//! The audit chain, the event outbox and the integrity checker.

use super::{Fixture, NOW, block, codes_of, fixed_id, obj};
use crate::change::{AuditEntry, ChangeSet, Write, verify_chain};
use crate::entity::LEAD;
use crate::error::codes;
use crate::record::Record;
use crate::store::{AuditHead, AuditQuery, BulkWrite, Store};
use crate::value::Timestamp;
use serde_json::json;

pub fn audit_chain_verifies_with_old_and_new_values<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "notes": "a"}));
    f.clock.advance_micros(1_000_000);
    block(f.svc.update(
        &f.sales_a,
        "lead",
        lead.id,
        1,
        &obj(json!({"notes": "b", "priority": "high"})),
    ))
    .unwrap();
    let trail = block(f.svc.audit_trail(
        &f.manager,
        &AuditQuery {
            entity: Some("lead".into()),
            entity_id: Some(lead.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(
        trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["create", "update"]
    );
    let upd = &trail[1];
    assert_eq!(upd.actor, f.sales_a.user_id);
    assert_eq!(upd.at, Timestamp(NOW.0 + 1_000_000));
    let notes = upd.changes.iter().find(|c| c.field == "notes").unwrap();
    assert_eq!((notes.old.clone(), notes.new.clone()), (json!("a"), json!("b")));
    assert!(
        upd.changes
            .iter()
            .any(|c| c.field == "priority" && c.old == json!("medium") && c.new == json!("high"))
    );
    let all = block(f.svc.store().audit(
        f.tenant,
        &AuditQuery {
            limit: u32::MAX,
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(all.len() >= 9);
    assert_eq!(
        all.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(verify_chain(&all), Ok(()));
    let mut tampered = all.clone();
    tampered[3].changes.clear();
    assert_eq!(verify_chain(&tampered), Err(tampered[3].seq), "tampering is detected");
    let report = block(f.svc.integrity_check(&f.admin)).unwrap();
    assert_eq!((report.audit_entries, report.audit_broken_at), (all.len() as u64, None));
}

pub fn events_are_sequenced_and_filtered<S: Store>(store: S) {
    let f = Fixture::new(store);
    let a = f.lead(&f.sales_a, json!({"first_name": "North"}));
    f.lead(&f.sales_b, json!({"first_name": "South"}));
    let all = block(f.svc.events_since(&f.admin, 0, 1000)).unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(all.last().unwrap().kind, "lead.created");
    let tail = block(f.svc.events_since(&f.admin, all.len() as u64 - 1, 1000)).unwrap();
    assert_eq!(tail.len(), 1);
    let sales_view: Vec<_> = block(f.svc.events_since(&f.sales_a, 0, 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.entity == "lead")
        .collect();
    assert_eq!(
        sales_view.iter().map(|e| e.entity_id).collect::<Vec<_>>(),
        vec![Some(a.id)],
        "only what the reader may read"
    );
    assert!(
        block(f.svc.events_since(&f.staff, 0, 1000))
            .unwrap()
            .iter()
            .all(|e| e.entity != "lead")
    );
}

pub fn integrity_checker_reports_broken_rows<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "Fine"}));
    let mut bad = Record::empty(&LEAD, f.tenant, fixed_id(3), NOW.plus_days(30));
    bad.set("first_name", "Legacy");
    bad.set("status", "imported_somehow");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Insert(bad.clone()));
    block(f.svc.store().apply(cs)).unwrap();
    let report = block(f.svc.integrity_check(&f.admin)).unwrap();
    let mine: Vec<(&str, &str)> = report
        .issues
        .iter()
        .filter(|i| i.id == bad.id)
        .map(|i| (i.path.as_str(), i.code.as_str()))
        .collect();
    assert_eq!(
        mine,
        vec![
            ("created_at", codes::IN_FUTURE),
            ("temperature", codes::REQUIRED),
            ("status", codes::INVALID_OPTION)
        ]
    );
    assert_eq!(report.issue_count, 3);
    assert!(report.checked.iter().any(|(e, n)| e == "lead" && *n == 2));
    // The broken row can still be edited and fixed field by field.
    block(
        f.svc
            .update(&f.admin, "lead", bad.id, 1, &obj(json!({"notes": "checked"}))),
    )
    .unwrap();
    let err = block(
        f.svc
            .update(&f.admin, "lead", bad.id, 2, &obj(json!({"status": "bogus"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::INVALID_OPTION.into())]);
    block(
        f.svc
            .update(&f.admin, "lead", bad.id, 2, &obj(json!({"status": "new"}))),
    )
    .unwrap();
}

/// The audit trail and the event stream never reveal a record the caller may not read, whatever the
/// query's parameters: a record outside the read scope is not found with or without its entity type,
/// and its events are skipped.
pub fn audit_and_events_stay_inside_the_read_scope<S: Store>(store: S) {
    let f = Fixture::new(store);
    let theirs = f.lead(
        &f.sales_b,
        json!({"first_name": "Bea", "owner_id": f.sales_b.user_id.unwrap().to_string()}),
    );
    block(
        f.svc
            .update(&f.sales_b, "lead", theirs.id, 1, &obj(json!({"notes": "private"}))),
    )
    .unwrap();
    let by_id = AuditQuery {
        entity_id: Some(theirs.id),
        limit: 100,
        ..Default::default()
    };
    let typed = AuditQuery {
        entity: Some("lead".into()),
        ..by_id.clone()
    };
    for actor in [&f.sales_a, &f.tech, &f.staff] {
        for q in [&by_id, &typed] {
            let err = block(f.svc.audit_trail(actor, q)).unwrap_err();
            assert_eq!(err.code(), "not_found", "{:?} reading {q:?}", actor.role.name);
        }
        let events = block(f.svc.events_since(actor, 0, 1000)).unwrap();
        assert!(
            events.iter().all(|e| e.entity_id != Some(theirs.id)),
            "{}",
            actor.role.name
        );
    }
    for actor in [&f.sales_b, &f.manager, &f.admin] {
        for q in [&by_id, &typed] {
            assert_eq!(block(f.svc.audit_trail(actor, q)).unwrap().len(), 2);
        }
    }
    // Unknown ids look the same as hidden ones.
    let nobody = AuditQuery {
        entity_id: Some(fixed_id(999)),
        ..by_id.clone()
    };
    assert!(block(f.svc.audit_trail(&f.sales_a, &nobody)).unwrap().is_empty());
}

/// The recorded chain head moves with every committed append and with nothing else, so the integrity
/// check can tell entries deleted from the end.
pub fn audit_head_follows_every_append<S: Store>(store: S) {
    let f = Fixture::new(store);
    let store = f.svc.store();
    assert_eq!(
        block(store.audit_head(fixed_id(77))).unwrap(),
        AuditHead::default(),
        "no entries yet"
    );
    let last = || {
        let all = block(store.audit(
            f.tenant,
            &AuditQuery {
                limit: u32::MAX,
                ..Default::default()
            },
        ))
        .unwrap();
        let a = all.last().unwrap();
        AuditHead {
            seq: a.seq,
            hash: a.hash.clone(),
        }
    };
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let head = block(store.audit_head(f.tenant)).unwrap();
    assert!(head.seq > 0);
    assert_eq!(head, last());
    let entry = |n: u64| AuditEntry {
        id: fixed_id(n),
        tenant: f.tenant,
        seq: 0,
        at: NOW,
        actor: None,
        action: "update".into(),
        entity: "lead".into(),
        entity_id: Some(lead.id),
        changes: vec![],
        prev_hash: String::new(),
        hash: String::new(),
    };
    // A failed change set and a dropped bulk session append nothing.
    let mut stale = lead.clone();
    stale.set("notes", "stale");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Update {
        record: stale,
        expected_version: 9,
    });
    cs.audit.push(entry(101));
    assert!(block(store.apply(cs)).is_err());
    block(async {
        let mut bulk = store.bulk(f.tenant).await.unwrap();
        let mut cs = ChangeSet::new(f.tenant);
        cs.audit.push(entry(102));
        bulk.apply(cs).await.unwrap();
        drop(bulk);
    });
    assert_eq!(block(store.audit_head(f.tenant)).unwrap(), head);
    // A committed bulk session moves it to its last entry.
    block(async {
        let mut bulk = store.bulk(f.tenant).await.unwrap();
        for n in [103, 104] {
            let mut cs = ChangeSet::new(f.tenant);
            cs.audit.push(entry(n));
            bulk.apply(cs).await.unwrap();
        }
        bulk.commit().await.unwrap();
    });
    let moved = block(store.audit_head(f.tenant)).unwrap();
    assert_eq!(moved.seq, head.seq + 2);
    assert_eq!(moved, last());
}
