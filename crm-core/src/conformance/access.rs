//! Who sees and changes what: tenants, roles, teams, assignments and hidden fields.

use super::{Fixture, block, codes_of, obj};
use crate::access::Actor;
use crate::error::{Error, codes};
use crate::query::{ListRequest, SortKey};
use crate::service::ExportOptions;
use crate::store::Store;
use crate::value::Id;
use serde_json::json;

pub fn other_tenants_ids_are_not_found<S: Store>(store: S) {
    let f = Fixture::new(store);
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other Movers"})))).unwrap();
    let theirs = block(
        f.svc
            .create(&Actor::system(other.id), "lead", &obj(json!({"first_name": "Zed"}))),
    )
    .unwrap();
    for actor in [&f.admin, &f.manager, &f.sales_a] {
        let err = block(f.svc.get(actor, "lead", theirs.id)).unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = block(f.svc.update(actor, "lead", theirs.id, 1, &obj(json!({"notes": "x"})))).unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = block(f.svc.delete(actor, "lead", theirs.id, 1)).unwrap_err();
        // Sales may not delete at all: refused before any lookup, so nothing leaks either way.
        assert_eq!(
            err.code(),
            if actor.role.name == "sales" {
                "forbidden"
            } else {
                "not_found"
            }
        );
    }
    assert!(f.ids(&f.admin, "lead", "").is_empty());
    // A reference to another tenant's record is unknown, not followed.
    let err = block(f.svc.create(
        &f.admin,
        "activity",
        &obj(json!({"kind": "call", "occurred_at": "2025-05-01", "lead_id": theirs.id.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("lead_id".into(), codes::UNKNOWN_REFERENCE.into())]
    );
}

pub fn field_tech_sees_only_assigned_records<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tech = f.tech.user_id.unwrap().to_string();
    let mine = f.lead(&f.admin, json!({"first_name": "Mine", "owner_id": tech}));
    let other = f.lead(
        &f.admin,
        json!({"first_name": "Other", "owner_id": f.sales_a.user_id.unwrap().to_string()}),
    );
    assert_eq!(f.ids(&f.tech, "lead", ""), vec![mine.id]);
    assert_eq!(
        block(f.svc.get(&f.tech, "lead", other.id)).unwrap_err().code(),
        "not_found"
    );
    let act = |lead: Id, owner: &str| {
        block(f.svc.create(&f.admin, "activity", &obj(json!({"kind": "visit", "occurred_at": "2025-05-30T10:00:00Z", "lead_id": lead.to_string(), "owner_id": owner}))))
            .unwrap()
    };
    let my_act = act(mine.id, &tech);
    act(other.id, &f.sales_a.user_id.unwrap().to_string());
    assert_eq!(f.ids(&f.tech, "activity", ""), vec![my_act.id]);
    // May move their lead along and log a visit, but not touch other fields or other leads.
    block(f.svc.update(
        &f.tech,
        "lead",
        mine.id,
        mine.version,
        &obj(json!({"status": "contacted", "notes": "on site"})),
    ))
    .unwrap();
    let err = block(
        f.svc
            .update(&f.tech, "lead", mine.id, 2, &obj(json!({"estimated_value": "1"}))),
    )
    .unwrap_err();
    assert_eq!(err, Error::forbidden("update", "lead", vec!["estimated_value".into()]));
    let logged = block(f.svc.log_activity(
        &f.tech,
        &obj(json!({"kind": "check_in", "occurred_at": "2025-06-01T11:00:00Z", "lead_id": mine.id.to_string()})),
    ))
    .unwrap();
    assert_eq!(logged.id_of("owner_id"), f.tech.user_id);
    let err = block(f.svc.log_activity(
        &f.tech,
        &obj(json!({"kind": "note", "occurred_at": "2025-06-01", "lead_id": other.id.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("lead_id".into(), codes::UNKNOWN_REFERENCE.into())],
        "cannot probe leads it cannot see"
    );
}

pub fn staff_may_update_only_notes<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = block(f.svc.create(
        &f.admin,
        "contact",
        &obj(json!({"first_name": "Kim", "email": "kim@example.com"})),
    ))
    .unwrap();
    let ok = block(
        f.svc
            .update(&f.staff, "contact", c.id, 1, &obj(json!({"notes": "prefers evenings"}))),
    )
    .unwrap();
    assert_eq!((ok.version, ok.str("notes")), (2, Some("prefers evenings")));
    let before = (block(f.svc.get(&f.admin, "contact", c.id)).unwrap(), f.writes_seen());
    let err = block(f.svc.update(
        &f.staff,
        "contact",
        c.id,
        2,
        &obj(json!({"notes": "x", "email": "evil@example.com"})),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        Error::forbidden("update", "contact", vec!["email".into()]),
        "Forbidden names the field"
    );
    let err = block(
        f.svc
            .update(&f.staff, "contact", c.id, 2, &obj(json!({"custom": {"anything": "x"}}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert_eq!(
        block(f.svc.create(&f.staff, "contact", &obj(json!({"first_name": "New"}))))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        (block(f.svc.get(&f.admin, "contact", c.id)).unwrap(), f.writes_seen()),
        before,
        "denied writes change nothing"
    );
}

pub fn sales_cannot_read_other_teams_leads<S: Store>(store: S) {
    let f = Fixture::new(store);
    let a = f.lead(&f.sales_a, json!({"first_name": "North lead"}));
    let b = f.lead(&f.sales_b, json!({"first_name": "South lead"}));
    let team_a = f.sales_a.team_id.unwrap().to_string();
    let mate = f.lead(
        &f.admin,
        json!({"first_name": "Mate", "owner_id": f.tech.user_id.unwrap().to_string(), "team_id": team_a}),
    );
    let mut mine = f.ids(&f.sales_a, "lead", "");
    mine.sort();
    let mut want = vec![a.id, mate.id];
    want.sort();
    assert_eq!(mine, want, "own team's leads only");
    assert_eq!(f.ids(&f.sales_b, "lead", ""), vec![b.id]);
    assert!(f.ids(&f.sales_a, "lead", "\"South lead\"").is_empty());
    assert_eq!(
        block(f.svc.get(&f.sales_a, "lead", b.id)).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.update(&f.sales_a, "lead", b.id, 1, &obj(json!({"notes": "x"}))))
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        block(
            f.svc
                .update(&f.sales_a, "lead", mate.id, 1, &obj(json!({"notes": "x"})))
        )
        .unwrap_err()
        .code(),
        "forbidden",
        "reads team, edits own"
    );
    let err = block(f.svc.update(
        &f.sales_a,
        "lead",
        a.id,
        1,
        &obj(json!({"owner_id": f.sales_b.user_id.unwrap().to_string()})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden", "cannot hand a lead out of its own scope");
    assert_eq!(
        block(f.svc.create(&f.tech, "lead", &obj(json!({"first_name": "x"}))))
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

pub fn hidden_fields_are_absent_and_rejected_in_filters<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kim"})))).unwrap();
    let seen = block(f.svc.get(&f.staff, "contact", c.id)).unwrap();
    assert!(seen.get("lifetime_value").is_none());
    assert!(seen.to_json().get("lifetime_value").is_none(), "absent from results");
    assert!(seen.to_json().get("first_name").is_some());
    let err = block(f.svc.list(
        &f.staff,
        "contact",
        &ListRequest {
            q: Some("lifetime_value>0".into()),
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err, Error::forbidden("read", "contact", vec!["lifetime_value".into()]));
    let err = block(f.svc.list(
        &f.staff,
        "contact",
        &ListRequest {
            sort: vec![SortKey::desc("lifetime_value")],
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let mut out = Vec::new();
    assert_eq!(
        block(
            f.svc
                .export_csv(&f.staff, "contact", &ExportOptions::default(), &mut out)
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

/// A tenant never loses its last active admin: deactivating, demoting or deleting the only one is
/// refused with nothing written; with a second admin the same changes go through.
pub fn the_last_active_admin_stays<S: Store>(store: S) {
    let f = Fixture::new(store);
    let admin = |name: &str| {
        let input = json!({"name": name, "email": format!("{name}@acme.test"), "role": "admin"});
        block(f.svc.create(&f.admin, "user", &obj(input))).unwrap()
    };
    let ada = admin("ada");
    let as_ada = block(f.svc.actor(f.tenant, ada.id)).unwrap();
    let seen = f.writes_seen();
    for (patch, field) in [
        (json!({"active": false}), "active"),
        (json!({"role": "manager"}), "role"),
        (json!({"role": "manager", "active": false}), "active"),
    ] {
        let err = block(f.svc.update(&as_ada, "user", ada.id, 1, &obj(patch))).unwrap_err();
        assert_eq!(codes_of(&err), vec![(field.into(), codes::LAST_ADMIN.into())]);
    }
    let err = block(f.svc.delete(&as_ada, "user", ada.id, 1)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("id".into(), codes::LAST_ADMIN.into())]);
    assert_eq!(f.writes_seen(), seen, "refusals write nothing");
    // Other users' changes are not held up by the rule.
    let maria = block(f.svc.get(&f.admin, "user", f.manager.user_id.unwrap())).unwrap();
    block(
        f.svc
            .update(&as_ada, "user", maria.id, maria.version, &obj(json!({"active": false}))),
    )
    .unwrap();

    let bob = admin("bob");
    let ada = block(f.svc.update(&as_ada, "user", ada.id, 1, &obj(json!({"active": false})))).unwrap();
    assert_eq!(ada.get("active"), Some(&crate::value::Value::Bool(false)));
    let err = block(
        f.svc
            .update(&f.admin, "user", bob.id, 1, &obj(json!({"role": "sales"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("role".into(), codes::LAST_ADMIN.into())]);
}
