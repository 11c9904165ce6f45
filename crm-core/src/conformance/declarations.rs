//! Conformance cases of the declaration kinds beyond plain fields: workflows, derived and computed
//! fields, children.

use super::{Fixture, NOW, block, codes_of, obj};
use crate::error::codes;
use crate::store::Store;
use crate::sync::SyncOp;
use crate::value::Value;
use serde_json::{Map, json};

fn draft_model<S: Store>(f: &Fixture<S>, name: &str, definition: serde_json::Value) -> crate::record::Record {
    block(f.svc.create(
        &f.manager,
        "scoring_model",
        &obj(json!({"name": name, "definition": definition})),
    ))
    .unwrap()
}

/// A workflow transition runs only from its `from` states, for roles granted its action, when its
/// guard lets it through, with only the input it accepts; any refusal writes nothing. A successful one
/// stamps its fields, displaces the previous holder of the target state, and is audited with its event.
pub fn workflow_transitions_are_guarded_and_atomic<S: Store>(store: S) {
    let f = Fixture::new(store);
    let default = serde_json::to_value(crate::scoring::default_model()).unwrap();
    let a = draft_model(&f, "A", default.clone());
    let b = draft_model(&f, "B", default.clone());
    let seen = f.writes_seen();
    let none = Map::new();
    let name = obj(json!({"name": "x"}));
    let refused = [
        // Sales may not approve scoring models.
        (&f.sales_a, "scoring_model", "publish", &none, 1, "forbidden"),
        // No such transition.
        (&f.manager, "scoring_model", "launch", &none, 1, "validation"),
        // Input the transition does not accept.
        (&f.manager, "scoring_model", "publish", &name, 1, "validation"),
        // Stale version.
        (&f.manager, "scoring_model", "publish", &none, 7, "conflict"),
        // Leads have no workflow.
        (&f.manager, "lead", "publish", &none, 1, "validation"),
    ];
    for (actor, entity, t, input, v, code) in refused {
        let err = block(f.svc.transition(actor, entity, a.id, v, t, input)).unwrap_err();
        assert_eq!(err.code(), code, "{t} on {entity}: {err:?}");
    }
    assert_eq!(f.writes_seen(), seen, "refused transitions write nothing");

    // The status field belongs to the workflow: no generic write reaches it.
    let err = block(
        f.svc
            .update(&f.admin, "scoring_model", a.id, 1, &obj(json!({"status": "published"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::READ_ONLY.into())]);

    let pa = block(
        f.svc
            .transition(&f.manager, "scoring_model", a.id, 1, "publish", &Map::new()),
    )
    .unwrap();
    assert_eq!(
        (
            pa.str("status"),
            pa.get("model_version"),
            pa.get("published_at"),
            pa.version
        ),
        (Some("published"), Some(&Value::Int(1)), Some(&Value::Timestamp(NOW)), 2)
    );
    // From the wrong state.
    let err = block(
        f.svc
            .transition(&f.manager, "scoring_model", a.id, 2, "publish", &Map::new()),
    )
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("status".into(), codes::INVALID_TRANSITION.into())]
    );
    // A published model is locked: a change is a new draft.
    let err = block(
        f.svc
            .update(&f.manager, "scoring_model", a.id, 2, &obj(json!({"name": "A2"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::LOCKED.into())]);

    // Publishing B retires A in the same change set, and B gets the next model version.
    let seen = f.writes_seen();
    let pb = block(
        f.svc
            .transition(&f.manager, "scoring_model", b.id, 1, "publish", &Map::new()),
    )
    .unwrap();
    assert_eq!(pb.get("model_version"), Some(&Value::Int(2)));
    let a_now = block(f.svc.get(&f.manager, "scoring_model", a.id)).unwrap();
    assert_eq!((a_now.str("status"), a_now.version), (Some("retired"), 3));
    assert_eq!(
        f.writes_seen(),
        (seen.0 + 3, seen.1 + 3),
        "the transition's two rows, then the re-scoring that follows a publication"
    );
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    let kinds: Vec<&str> = events.iter().rev().take(3).map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["lead.rescored", "scoring_model.published", "scoring_model.retired"]
    );

    // A guard refuses with a typed reason: a draft that reads a custom field deleted since it was
    // written no longer compiles, so it cannot be published, and nothing is written.
    let cf = block(f.svc.create(
        &f.admin,
        "custom_field",
        &obj(json!({"entity": "lead", "key": "roof_age", "spec": {"type": "number"}})),
    ))
    .unwrap();
    let mut m = crate::scoring::default_model();
    m.groups[0].rules[0].condition = Some(crate::scoring::Condition::Text("custom.roof_age>=20".into()));
    let c = draft_model(&f, "C", serde_json::to_value(&m).unwrap());
    block(f.svc.delete(&f.admin, "custom_field", cf.id, cf.version)).unwrap();
    let seen = f.writes_seen();
    let err = block(
        f.svc
            .transition(&f.manager, "scoring_model", c.id, 1, "publish", &Map::new()),
    )
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    assert!(err.field_errors()[0].path.starts_with("definition"), "{err:?}");
    assert_eq!(f.writes_seen(), seen);
    assert_eq!(
        block(f.svc.get(&f.manager, "scoring_model", b.id))
            .unwrap()
            .str("status"),
        Some("published"),
        "the published model stays"
    );
}

/// Derived fields are recomputed by the core in the change set that changes their inputs, can't be
/// written, and are left out of sync patches (the receiver re-derives them).
pub fn derived_fields_are_recomputed_and_not_synced<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "referral"}));
    for field in ["score", "temperature", "scored_at"] {
        let err = block(f.svc.update(&f.admin, "lead", lead.id, 1, &obj(json!({ field: null })))).unwrap_err();
        assert_eq!(codes_of(&err), vec![(field.into(), codes::READ_ONLY.into())]);
    }
    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.to_rfc3339(), "lead_id": lead.id.to_string()});
    block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    let after = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    assert!(
        after.get("score").and_then(Value::as_i64) > lead.get("score").and_then(Value::as_i64),
        "the activity's change set re-scored the lead"
    );
    let derived: Vec<&str> = crate::entity::all()
        .iter()
        .flat_map(|d| d.fields.iter().filter(|f| f.derived).map(|f| f.name))
        .collect();
    assert!(derived.contains(&"score") && derived.contains(&"lifetime_value"));
    for entry in block(f.svc.store().pending_changes(f.tenant, 0, u32::MAX)).unwrap() {
        for w in &entry.writes {
            let def = crate::entity::entity(&w.entity).unwrap();
            for key in w.patch.keys() {
                assert!(
                    !def.def(key).is_some_and(|d| d.derived),
                    "{} {key} in a sync patch",
                    w.entity
                );
            }
            if w.entity == "lead" && w.op == SyncOp::Insert {
                assert!(w.patch.contains_key("first_name"));
            }
        }
    }
}

/// A computed field is evaluated as of the service clock on every read, and a filter on it selects
/// exactly the records whose evaluation gives the value, on every store; sorting by it sorts by the
/// stored fields it derives from; moving the clock or the tenant's setting moves the answers with no
/// write at all.
pub fn computed_fields_filter_and_sort_as_they_evaluate<S: Store>(store: S) {
    use crate::query::{ListRequest, SortKey};
    let f = Fixture::new(store);
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kai"})))).unwrap();
    let day = |d: i64| NOW.plus_days(d).date().to_string();
    // (starts, ends, cancelled): today is day 0; the tenant's expiring window is 14 days by default.
    let spans = [
        (-30, -1, false), // expired yesterday
        (-30, 0, false),  // expiring: ends today
        (-30, 14, false), // expiring: the window's last day
        (-30, 15, false), // active
        (0, 365, false),  // active from today
        (1, 30, false),   // upcoming
        (-30, 60, true),  // cancelled
        (-400, -35, false),
    ];
    for (s, e, cancelled) in spans {
        let input = json!({"contact_id": contact.id.to_string(), "starts_on": day(s), "ends_on": day(e), "cancelled": cancelled, "price_paid": "49.00"});
        block(f.svc.create(&f.admin, "membership", &obj(input))).unwrap();
    }
    let all = |actor| {
        let req = ListRequest {
            limit: Some(500),
            ..Default::default()
        };
        block(f.svc.list(actor, "membership", &req)).unwrap().items
    };
    let check = |expect: &[&str]| {
        let items = all(&f.admin);
        let mut evaluated: Vec<&str> = items.iter().map(|r| r.str("status").unwrap()).collect();
        evaluated.sort();
        let mut want = expect.to_vec();
        want.sort();
        assert_eq!(evaluated, want, "evaluation");
        for option in crate::entity::MembershipStatus::KEYS {
            let mut by_filter = f.ids(&f.admin, "membership", &format!("status:{option}"));
            let mut by_eval: Vec<_> = items
                .iter()
                .filter(|r| r.str("status") == Some(option))
                .map(|r| r.id)
                .collect();
            by_filter.sort();
            by_eval.sort();
            assert_eq!(by_filter, by_eval, "status:{option}");
            let mut not = f.ids(&f.admin, "membership", &format!("status!={option}"));
            not.sort();
            let mut rest: Vec<_> = items
                .iter()
                .filter(|r| r.str("status") != Some(option))
                .map(|r| r.id)
                .collect();
            rest.sort();
            assert_eq!(not, rest, "status!={option}");
        }
    };
    check(&[
        "expired",
        "expiring",
        "expiring",
        "active",
        "active",
        "upcoming",
        "cancelled",
        "expired",
    ]);

    // Sorting by status sorts by the end date, page by page.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let req = ListRequest {
            sort: vec![SortKey::asc("status")],
            limit: Some(3),
            cursor,
            ..Default::default()
        };
        let page = block(f.svc.list(&f.admin, "membership", &req)).unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|r| (r.get("ends_on").map(Value::to_json).unwrap().to_string(), r.id)),
        );
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen.len(), spans.len());
    assert_eq!(seen, sorted);

    // The tenant's window and the clock move the answers; nothing is written.
    let writes = f.writes_seen();
    f.clock.set(NOW.plus_days(16));
    check(&[
        "expired",
        "expired",
        "expired",
        "expired",
        "active",
        "expiring",
        "cancelled",
        "expired",
    ]);
    f.clock.set(NOW);
    assert_eq!(f.writes_seen(), writes);
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(f.svc.update(
        &f.admin,
        "organization",
        f.tenant,
        org.version,
        &obj(json!({"membership_expiring_days": 30})),
    ))
    .unwrap();
    check(&[
        "expired",
        "expiring",
        "expiring",
        "expiring",
        "active",
        "upcoming",
        "cancelled",
        "expired",
    ]);

    // Computed fields are read like any other: the front desk sees the status but not the price, and
    // cannot write the status; sales cannot read memberships at all.
    let staff_view = all(&f.staff);
    assert!(
        staff_view
            .iter()
            .all(|r| r.str("status").is_some() && r.get("price_paid").is_none())
    );
    assert_eq!(f.ids(&f.staff, "membership", "status:upcoming").len(), 1);
    let m = &staff_view[0];
    let err = block(f.svc.update(
        &f.admin,
        "membership",
        m.id,
        m.version,
        &obj(json!({"status": "active"})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    let req = ListRequest::default();
    assert_eq!(
        block(f.svc.list(&f.sales_a, "membership", &req)).unwrap_err().code(),
        "forbidden"
    );
    let bad = ListRequest {
        q: Some("status:lapsed".into()),
        ..Default::default()
    };
    assert_eq!(
        block(f.svc.list(&f.admin, "membership", &bad)).unwrap_err().code(),
        "invalid_query"
    );
}

/// Children live in their parent's scope and change set: each child write bumps the parent's version
/// and re-derives it in the same transaction, is audited row by row, is refused to whoever may not
/// write the parent (with nothing written), and deleting the parent deletes its children.
pub fn children_are_written_scoped_and_deleted_with_their_parent<S: Store>(store: S) {
    let f = Fixture::new(store);
    let day = |d: i64| NOW.plus_days(d).date().to_string();
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kai"})))).unwrap();
    let membership = |starts: i64| {
        let input =
            json!({"contact_id": contact.id.to_string(), "starts_on": day(starts), "ends_on": day(starts + 365)});
        block(f.svc.create(&f.manager, "membership", &obj(input))).unwrap()
    };
    let m = membership(0);
    let other = membership(-10);
    assert_eq!((m.get("frozen_days"), m.version), (Some(&Value::Int(0)), 1));
    let freeze = |actor, s: i64, e: i64| {
        let input =
            json!({"membership_id": m.id.to_string(), "starts_on": day(s), "ends_on": day(e), "reason": "travel"});
        block(f.svc.create(actor, "membership_freeze", &obj(input)))
    };
    let parent = || block(f.svc.get(&f.manager, "membership", m.id)).unwrap();

    let seen = f.writes_seen();
    let f1 = freeze(&f.manager, 10, 19).unwrap();
    assert_eq!(
        (parent().get("frozen_days"), parent().version),
        (Some(&Value::Int(10)), 2)
    );
    assert_eq!(
        f.writes_seen(),
        (seen.0 + 2, seen.1 + 2),
        "the child and its parent, audited together"
    );
    let f2 = freeze(&f.manager, 5, 12).unwrap();
    assert_eq!(
        (parent().get("frozen_days"), parent().version),
        (Some(&Value::Int(15)), 3),
        "overlaps count once"
    );
    let f2 = block(f.svc.update(
        &f.manager,
        "membership_freeze",
        f2.id,
        1,
        // (in the past: a membership has at most one freeze that has not ended)
        &obj(json!({"starts_on": day(-30), "ends_on": day(-26)})),
    ))
    .unwrap();
    assert_eq!(
        (parent().get("frozen_days"), parent().version),
        (Some(&Value::Int(15)), 4)
    );

    // Returned with the parent, in the declared order (by start).
    let kids = block(f.svc.children(&f.staff, "membership", m.id)).unwrap();
    let ids: Vec<_> = kids.iter().flat_map(|(_, rows)| rows.iter().map(|r| r.id)).collect();
    assert_eq!(ids, [f2.id, f1.id]);
    assert_eq!(kids[0].0.name, "membership_freeze");

    // Refused, with nothing written: moving a child to another parent; a writer limited to some of the
    // parent's fields (staff: notes only); a reader without access to the parent; a stale child.
    let seen = f.writes_seen();
    let err = block(f.svc.update(
        &f.manager,
        "membership_freeze",
        f2.id,
        f2.version,
        &obj(json!({"membership_id": other.id.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("membership_id".into(), codes::READ_ONLY.into())]);
    assert_eq!(freeze(&f.staff, 50, 51).unwrap_err().code(), "forbidden");
    assert_eq!(freeze(&f.sales_a, 50, 51).unwrap_err().code(), "forbidden");
    assert_eq!(
        block(f.svc.children(&f.sales_a, "membership", m.id))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        block(f.svc.get(&f.sales_a, "membership_freeze", f1.id))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        block(f.svc.delete(&f.manager, "membership_freeze", f1.id, 7))
            .unwrap_err()
            .code(),
        "conflict"
    );
    let csv = "membership_id,starts_on,ends_on\n";
    let opts = crate::service::ImportOptions {
        mode: crate::service::ImportMode::AllOrNothing,
        ..Default::default()
    };
    assert_eq!(
        block(f.svc.import_csv(&f.admin, "membership_freeze", csv.as_bytes(), &opts))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(f.writes_seen(), seen);
    assert_eq!(parent().version, 4);

    // Deleting a child re-derives the parent; deleting the parent deletes its children with it.
    block(f.svc.delete(&f.manager, "membership_freeze", f1.id, 1)).unwrap();
    assert_eq!(
        (parent().get("frozen_days"), parent().version),
        (Some(&Value::Int(5)), 5)
    );
    let seen = f.writes_seen();
    block(f.svc.delete(&f.manager, "membership", m.id, 5)).unwrap();
    assert_eq!(f.count("membership_freeze"), 0);
    assert_eq!(f.count("membership"), 1);
    assert_eq!(
        f.writes_seen(),
        (seen.0 + 2, seen.1 + 2),
        "the parent and its one child, audited"
    );
}

/// Several child changes in one call are one change set: one version bump of the parent, the parent
/// re-derived once, every row audited; an invalid operation anywhere refuses the whole batch with
/// every failing field named by its operation, and writes nothing.
pub fn child_batches_are_one_change_set<S: Store>(store: S) {
    use crate::service::ChildOp;
    let f = Fixture::new(store);
    let day = |d: i64| NOW.plus_days(d).date().to_string();
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kai"})))).unwrap();
    let input = json!({"contact_id": contact.id.to_string(), "starts_on": day(0), "ends_on": day(365)});
    let m = block(f.svc.create(&f.manager, "membership", &obj(input))).unwrap();
    let freeze = |s: i64, e: i64| ChildOp::Create {
        entity: "membership_freeze".into(),
        input: obj(json!({"starts_on": day(s), "ends_on": day(e)})),
    };

    let seen = f.writes_seen();
    let m2 = block(
        f.svc
            .write_children(&f.manager, "membership", m.id, 1, &[freeze(10, 19), freeze(-40, -36)]),
    )
    .unwrap();
    assert_eq!((m2.version, m2.get("frozen_days")), (2, Some(&Value::Int(15))));
    assert_eq!(f.writes_seen(), (seen.0 + 3, seen.1 + 3), "two children and the parent");
    let kids = block(f.svc.children(&f.manager, "membership", m.id)).unwrap();
    let rows = &kids[0].1;
    assert_eq!(rows.len(), 2);

    // Refused as a whole: a bad end date and an unknown child type, reported together; a stale parent.
    let seen = f.writes_seen();
    let bad = [
        ChildOp::Delete {
            entity: "membership_freeze".into(),
            id: rows[0].id,
            version: 1,
        },
        freeze(60, 50),
        ChildOp::Create {
            entity: "lead".into(),
            input: obj(json!({})),
        },
    ];
    let err = block(f.svc.write_children(&f.manager, "membership", m.id, 2, &bad)).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![
            ("ops[1].ends_on".into(), codes::TOO_SMALL.into()),
            ("ops[2].entity".into(), codes::INVALID_OPTION.into())
        ]
    );
    let stale = block(
        f.svc
            .write_children(&f.manager, "membership", m.id, 1, &[freeze(70, 71)]),
    )
    .unwrap_err();
    assert_eq!(stale.code(), "conflict");
    let staff = block(f.svc.write_children(&f.staff, "membership", m.id, 2, &[freeze(70, 71)])).unwrap_err();
    assert_eq!(staff.code(), "forbidden");
    assert_eq!(f.writes_seen(), seen);

    // Update one, delete the other: one bump, re-derived.
    let ops = [
        ChildOp::Update {
            entity: "membership_freeze".into(),
            id: rows[0].id,
            version: 1,
            patch: obj(json!({"ends_on": day(-39)})),
        },
        ChildOp::Delete {
            entity: "membership_freeze".into(),
            id: rows[1].id,
            version: 1,
        },
    ];
    let m3 = block(f.svc.write_children(&f.manager, "membership", m.id, 2, &ops)).unwrap();
    assert_eq!((m3.version, m3.get("frozen_days")), (3, Some(&Value::Int(2))));
    assert_eq!(f.count("membership_freeze"), 1);
}
