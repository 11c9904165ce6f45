//! Conformance cases of the declaration kinds beyond plain fields: workflows, derived fields (and, as
//! they land, computed fields and children).

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
        (seen.0 + 2, seen.1 + 2),
        "two audit entries and two events"
    );
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    let kinds: Vec<&str> = events.iter().rev().take(2).map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["scoring_model.published", "scoring_model.retired"]);

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
