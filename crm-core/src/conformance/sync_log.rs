//! The local change-set log (stores built with the log on, but the first case).

use super::transfer::CSV_ROWS;
use super::{Fixture, NOW, block, fixed_id, obj};
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::entity::LEAD;
use crate::record::Record;
use crate::service::{ImportMode, ImportOptions};
use crate::store::{AuditQuery, BulkWrite, Store};
use crate::sync::{SyncEntry, SyncOp};
use crate::value::{Id, Value};
use serde_json::json;

impl<S: Store> Fixture<S> {
    /// The tenant's pending sync log entries after `after`.
    pub fn pending(&self, after: u64) -> Vec<SyncEntry> {
        block(self.svc.store().pending_changes(self.tenant, after, u32::MAX)).unwrap()
    }

    fn last_sync_seq(&self) -> u64 {
        self.pending(0).last().map_or(0, |e| e.seq)
    }
}

pub fn sync_log_is_off_by_default<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "Ann"}));
    assert!(f.pending(0).is_empty(), "a store logs only when asked to");
    assert_eq!(block(f.svc.store().mark_synced(f.tenant, u64::MAX)).unwrap(), 0);
}

pub fn sync_log_records_change_sets_in_order<S: Store>(store: S) {
    let f = Fixture::new(store);
    let start = f.last_sync_seq();
    assert!(start >= 8, "the fixture's own writes are logged: {start}");
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "referral"}));
    block(
        f.svc
            .update(&f.sales_a, "lead", lead.id, 1, &obj(json!({"notes": "gate code 12"}))),
    )
    .unwrap();
    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-1).to_rfc3339(), "lead_id": lead.id.to_string()});
    let act = block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    block(f.svc.delete(&f.admin, "activity", act.id, 1)).unwrap();

    let log = f.pending(start);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (start + 1..=start + 4).collect::<Vec<_>>(),
        "one entry per change set, in commit order"
    );
    let ops: Vec<(&str, SyncOp, u64)> = log
        .iter()
        .flat_map(|e| e.writes.iter())
        .map(|w| (w.entity.as_str(), w.op, w.expected_version))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("lead", SyncOp::Insert, 0),
            ("lead", SyncOp::Update, 1),
            ("activity", SyncOp::Insert, 0),
            ("activity", SyncOp::Delete, 1),
        ],
        "derived writes (the lead's re-scores) are not logged"
    );
    let (create, update) = (&log[0], &log[1]);
    assert_eq!(create.writes[0].id, lead.id);
    assert_eq!(
        (create.actor, create.at, create.tenant),
        (f.sales_a.user_id, NOW, f.tenant)
    );
    assert_eq!(create.change_set.get_version_num(), 7, "change sets have UUIDv7 ids");
    let p = &create.writes[0].patch;
    assert_eq!(
        (p.get("first_name"), p.get("source"), p.get("status")),
        (Some(&json!("Ann")), Some(&json!("referral")), Some(&json!("new")))
    );
    assert_eq!(p.get("owner_id"), Some(&json!(f.sales_a.user_id.unwrap().to_string())));
    assert!(
        !p.contains_key("last_name") && !p.contains_key("id") && !p.contains_key("version"),
        "an insert's patch holds the non-null fields: {p:?}"
    );
    assert!(
        !p.contains_key("score") && !p.contains_key("temperature"),
        "derived fields are re-derived by whoever applies: {p:?}"
    );
    assert_eq!(
        update.writes[0].patch,
        obj(json!({"notes": "gate code 12"})),
        "an update's patch holds the changed fields"
    );
    assert_eq!(log[3].actor, None, "the system acted");
    assert!(log[3].writes[0].patch.is_empty());
    let mut ids: Vec<Id> = log.iter().map(|e| e.change_set).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    // The entry names the audit entries and events its change set produced.
    let audit = block(f.svc.store().audit(
        f.tenant,
        &AuditQuery {
            entity_id: Some(lead.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(create.audit, vec![audit[0].id]);
    assert_eq!(update.audit, vec![audit[1].id]);
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    let created = events
        .iter()
        .find(|e| e.kind == "lead.created" && e.entity_id == Some(lead.id))
        .unwrap();
    assert_eq!(create.events, vec![created.id]);
    let logged_call: Vec<&str> = log[2]
        .events
        .iter()
        .map(|id| events.iter().find(|e| e.id == *id).unwrap().kind.as_str())
        .collect();
    assert_eq!(logged_call[0], "activity.created");
}

pub fn failed_change_sets_log_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann", "external_id": "X1"}));
    let before = f.pending(0);
    let err = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 7, &obj(json!({"notes": "stale"}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "conflict");
    let err = block(f.svc.create(&f.admin, "lead", &obj(json!({"email": "x@"})))).unwrap_err();
    assert_eq!(err.code(), "validation");
    // Refused by the store itself: a stale update after an insert that went through, and a duplicate key.
    let mut fresh = Record::empty(&LEAD, f.tenant, fixed_id(21), NOW);
    fresh.set("first_name", "New");
    let mut stale = lead.clone();
    stale.version = 5;
    stale.set("notes", "sneaky");
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(22), None, NOW);
    cs.writes.push(Write::Insert(fresh.clone()));
    cs.writes.push(Write::Update {
        record: stale,
        expected_version: 4,
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap_err().code(), "conflict");
    let mut dup = Record::empty(&LEAD, f.tenant, fixed_id(23), NOW);
    dup.set("first_name", "Dup");
    dup.set("external_id", "X1");
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(24), None, NOW);
    cs.writes.push(Write::Insert(dup));
    assert_eq!(block(f.svc.store().apply(cs)).unwrap_err().code(), "validation");
    assert_eq!(f.pending(0), before, "failed change sets log nothing");
    assert!(block(f.svc.store().get(f.tenant, &LEAD, fresh.id)).unwrap().is_none());
    // A change set of derived writes only (re-scoring) has nothing to replay.
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(25), None, NOW);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: lead.version,
        fields: vec![(LEAD.index_of("score").unwrap(), Value::Int(99))],
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap().rows, 1);
    assert_eq!(f.pending(0), before, "derived-only change sets are not logged");
}

pub fn mark_synced_removes_entries_up_to_a_seq<S: Store>(store: S) {
    let f = Fixture::new(store);
    let base = f.last_sync_seq();
    for name in ["A", "B", "C"] {
        f.lead(&f.admin, json!({ "first_name": name }));
    }
    assert_eq!(
        block(f.svc.store().pending_changes(f.tenant, base, 2))
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![base + 1, base + 2],
        "after_seq and limit page through the log"
    );
    let removed = block(f.svc.store().mark_synced(f.tenant, base + 2)).unwrap();
    assert_eq!(removed, base + 2, "everything up to and including the seq");
    let left = f.pending(0);
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![base + 3]);
    assert_eq!(left[0].writes[0].patch.get("first_name"), Some(&json!("C")));
    assert_eq!(
        block(f.svc.store().mark_synced(f.tenant, base + 2)).unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(block(f.svc.store().mark_synced(f.tenant, u64::MAX)).unwrap(), 1);
    assert!(f.pending(0).is_empty());
    f.lead(&f.admin, json!({"first_name": "D"}));
    assert_eq!(
        f.pending(0).iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![base + 4],
        "sequence numbers are never reused"
    );
}

pub fn sync_log_is_per_tenant<S: Store>(store: S) {
    let f = Fixture::new(store);
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other Movers"})))).unwrap();
    let theirs = block(
        f.svc
            .create(&Actor::system(other.id), "lead", &obj(json!({"first_name": "Zed"}))),
    )
    .unwrap();
    let ours_before = f.pending(0);
    let log = block(f.svc.store().pending_changes(other.id, 0, u32::MAX)).unwrap();
    assert_eq!(
        log.iter().map(|e| (e.seq, e.tenant)).collect::<Vec<_>>(),
        vec![(1, other.id), (2, other.id)],
        "each tenant has its own sequence"
    );
    assert_eq!(log[1].writes[0].id, theirs.id);
    assert!(
        ours_before
            .iter()
            .all(|e| e.tenant == f.tenant && e.writes.iter().all(|w| w.id != theirs.id))
    );
    assert_eq!(block(f.svc.store().mark_synced(other.id, u64::MAX)).unwrap(), 2);
    assert_eq!(f.pending(0), ours_before, "marking one tenant leaves the others");
    f.lead(&f.admin, json!({"first_name": "Ours"}));
    assert!(
        block(f.svc.store().pending_changes(other.id, 0, u32::MAX))
            .unwrap()
            .is_empty()
    );
}

pub fn bulk_sessions_log_per_change_set_and_rollbacks_log_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let base = f.last_sync_seq();
    let insert = |n: u64, name: &str| {
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(n), NOW);
        r.set("first_name", name);
        r.set("status", "new");
        r.set("temperature", "cold");
        let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(100 + n), None, NOW);
        cs.writes.push(Write::Insert(r));
        cs
    };
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        bulk.apply(insert(1, "Ghost")).await.unwrap();
        drop(bulk);
    });
    assert_eq!(f.last_sync_seq(), base, "a rolled-back session logs nothing");
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        bulk.apply(insert(2, "Kept")).await.unwrap();
        // A change set that fails inside the session logs nothing either.
        bulk.apply(insert(2, "Again")).await.unwrap_err();
        bulk.apply(insert(3, "Also kept")).await.unwrap();
        bulk.commit().await.unwrap();
    });
    let log = f.pending(base);
    assert_eq!(
        log.iter().map(|e| (e.seq, e.change_set)).collect::<Vec<_>>(),
        vec![(base + 1, fixed_id(102)), (base + 2, fixed_id(103))],
        "one entry per change set of the session"
    );
    // Imports: all-or-nothing with bad rows rolls back and logs nothing; a good import logs its
    // chunk of rows as one change set.
    let all = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &all)).unwrap();
    assert!(!r.applied);
    assert_eq!(f.last_sync_seq(), base + 2);
    let valid = ImportOptions {
        mode: ImportMode::ValidRowsOnly,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &valid)).unwrap();
    assert_eq!(r.created, 2);
    let log = f.pending(base + 2);
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].actor,
            log[0].writes.len(),
            log[0].audit.len(),
            log[0].events.len()
        ),
        (f.manager.user_id, 2, 2, 1)
    );
    assert!(log[0].writes.iter().all(|w| w.op == SyncOp::Insert));
}
