//! Records through the service and the store: round trips, validation, versions, unique keys,
//! deletes, bulk sessions and derived writes.

use super::{Fixture, NOW, block, codes_of, fixed_id, obj};
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::entity::LEAD;
use crate::error::{Error, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::{BulkWrite, Store};
use crate::value::Value;
use serde_json::json;

pub fn create_get_round_trip<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(
        &f.sales_a,
        json!({"first_name": " Ann ", "last_name": "Lee", "email": "ANN@EXAMPLE.COM", "phone": "555-123-4567",
               "source": "Referral", "estimated_value": "18,250.50", "project_type": "roof_replacement",
               "tags": ["Storm", "vip"], "latitude": 45.5, "notes": "back gate"}),
    );
    let got = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    assert_eq!(got, lead);
    assert_eq!(got.str("first_name"), Some("Ann"));
    assert_eq!(got.str("email"), Some("ann@example.com"));
    assert_eq!(got.str("phone"), Some("+15551234567"));
    assert_eq!(
        got.get("estimated_value"),
        Some(&Value::Money(crate::value::Money(1_825_050)))
    );
    assert_eq!(
        got.id_of("owner_id"),
        f.sales_a.user_id,
        "owner defaults to the creator"
    );
    assert_eq!(got.get("latitude"), Some(&Value::Number(45.5)));
    assert!(got.get("score").and_then(Value::as_i64).is_some());
    assert_eq!(got.id.get_version_num(), 7, "ids are UUIDv7");
    let json = got.to_json();
    let back = Record::from_json(&LEAD, f.tenant, &json, &Default::default()).unwrap();
    assert_eq!(back, got, "model <-> JSON round trip");
}

pub fn validation_reports_every_field_and_writes_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let err = block(f.svc.create(
        &f.admin,
        "lead",
        &obj(json!({"email": "x@", "source": "pigeon", "estimated_value": "-5", "score": 100})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    assert_eq!(
        codes_of(&err),
        vec![
            ("email".into(), codes::INVALID_EMAIL.into()),
            ("estimated_value".into(), codes::TOO_SMALL.into()),
            ("score".into(), codes::READ_ONLY.into()),
            ("source".into(), codes::INVALID_OPTION.into()),
        ]
    );
    let err = block(
        f.svc
            .create(&f.admin, "lead", &obj(json!({"first_name": "A", "status": "nope"}))),
    )
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("status".into(), codes::INVALID_OPTION.into())],
        "status must be a pipeline stage"
    );
    // A status that is no stage is reported with the field errors, not after they are fixed.
    let input = json!({"email": "nope", "estimated_value": "12.345", "status": "neww"});
    let err = block(f.svc.create(&f.admin, "lead", &obj(input.clone()))).unwrap_err();
    let all = vec![
        ("email".to_owned(), codes::INVALID_EMAIL.to_owned()),
        ("estimated_value".into(), codes::INVALID_MONEY.into()),
        ("status".into(), codes::INVALID_OPTION.into()),
    ];
    assert_eq!(codes_of(&err), all, "every failing field of a create at once");
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let before = (f.count("lead"), f.writes_seen());
    let err = block(f.svc.update(&f.admin, "lead", lead.id, lead.version, &obj(input))).unwrap_err();
    assert_eq!(codes_of(&err), all, "every failing field of an update at once");
    let err = block(f.svc.update(
        &f.admin,
        "lead",
        lead.id,
        lead.version,
        &obj(json!({"email": "nope", "notes": "fine"})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("email".into(), codes::INVALID_EMAIL.into())],
        "an update checks the stage rule only when it touches it"
    );
    assert_eq!((f.count("lead"), f.writes_seen()), before);
}

pub fn stale_version_is_a_conflict<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let v2 = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 1, &obj(json!({"notes": "first"}))),
    )
    .unwrap();
    assert_eq!(v2.version, 2);
    let err = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 1, &obj(json!({"notes": "second"}))),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // The store itself refuses a stale write even if a caller skipped the service's check.
    let mut stale = lead.clone();
    stale.version = 2;
    stale.set("notes", "sneaky");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Update {
        record: stale,
        expected_version: 1,
    });
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let now = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    assert_eq!((now.version, now.str("notes")), (2, Some("first")));
}

pub fn bulk_session_rolls_back_on_drop<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(1), NOW);
        r.set("first_name", "Ghost");
        r.set("status", "new");
        r.set("temperature", "cold");
        let mut cs = ChangeSet::new(f.tenant);
        cs.writes.push(Write::Insert(r));
        bulk.apply(cs).await.unwrap();
        assert_eq!(
            bulk.query(&LEAD, &StoreQuery::by_id(Filter::eq("first_name", "Ghost"), 10))
                .await
                .unwrap()
                .len(),
            1,
            "visible inside"
        );
        drop(bulk);
    });
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(2), NOW);
        r.set("first_name", "Kept");
        let mut cs = ChangeSet::new(f.tenant);
        cs.writes.push(Write::Insert(r));
        bulk.apply(cs).await.unwrap();
        bulk.commit().await.unwrap();
    });
    assert_eq!(f.count("lead"), before.0 + 1);
}

/// [`BulkWrite::ids`] answers the ids [`BulkWrite::query`] finds, in its order and within its limit,
/// the session's own writes included and other tenants' rows not.
pub fn bulk_ids_answer_what_queries_find<S: Store>(store: S) {
    let f = Fixture::new(store);
    let leads: Vec<Record> = ["Cy", "Al", "Bo", "Al"]
        .iter()
        .map(|n| f.lead(&f.admin, json!({"first_name": n})))
        .collect();
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other Co"})))).unwrap();
    let theirs = block(
        f.svc
            .create(&Actor::system(other.id), "lead", &obj(json!({"first_name": "Al"}))),
    )
    .unwrap();
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(7), NOW);
        r.set("first_name", "Al");
        let mut cs = ChangeSet::new(f.tenant);
        cs.writes.push(Write::Insert(r));
        bulk.apply(cs).await.unwrap();
        let ids_in = |ids: Vec<crate::value::Id>| Filter::In {
            field: "id".into(),
            values: ids.into_iter().map(Value::Id).collect(),
        };
        let queries = [
            StoreQuery::by_id(Filter::eq("first_name", "Al"), 10),
            StoreQuery::by_id(Filter::All, 2),
            StoreQuery::by_id(
                ids_in(vec![leads[2].id, leads[0].id, theirs.id, fixed_id(7), fixed_id(99)]),
                10,
            ),
            StoreQuery {
                filter: Filter::All,
                sort: vec![crate::query::SortKey::asc("first_name")],
                limit: 10,
            },
        ];
        for q in &queries {
            let want: Vec<_> = bulk.query(&LEAD, q).await.unwrap().iter().map(|r| r.id).collect();
            assert!(!want.is_empty(), "{q:?}");
            assert!(!want.contains(&theirs.id), "{q:?}");
            assert_eq!(bulk.ids(&LEAD, q).await.unwrap(), want, "{q:?}");
        }
        let found = bulk.ids(&LEAD, &queries[2]).await.unwrap();
        assert_eq!(found, {
            let mut v = vec![leads[2].id, leads[0].id, fixed_id(7)];
            v.sort();
            v
        });
    });
}

pub fn unique_fields_are_enforced<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "A", "external_id": "X1"}));
    let before = (f.count("lead"), f.writes_seen());
    let err = block(
        f.svc
            .create(&f.admin, "lead", &obj(json!({"first_name": "B", "external_id": "X1"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    // References and keys are checked together (on PostgreSQL at once, on pooled connections):
    // every failing one is reported, in field order, and nothing is written.
    let input = json!({"first_name": "B", "external_id": "X1",
                       "owner_id": fixed_id(7).to_string(), "team_id": fixed_id(8).to_string()});
    let err = block(f.svc.create(&f.admin, "lead", &obj(input))).unwrap_err();
    let mut want: Vec<(String, String)> = vec![
        ("owner_id".into(), codes::UNKNOWN_REFERENCE.into()),
        ("team_id".into(), codes::UNKNOWN_REFERENCE.into()),
        ("external_id".into(), codes::DUPLICATE.into()),
    ];
    want.sort_by_key(|(field, _)| LEAD.index_of(field));
    assert_eq!(codes_of(&err), want);
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    // The store enforces it too, for writers that race past the service's check.
    let mut r = Record::empty(&LEAD, f.tenant, fixed_id(9), NOW);
    r.set("first_name", "C");
    r.set("external_id", "X1");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Insert(r));
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    // Unique values are checked write by write, as SQL does: swapping two keys in one change set fails.
    let x = f.lead(&f.admin, json!({"first_name": "X", "external_id": "S1"}));
    let y = f.lead(&f.admin, json!({"first_name": "Y", "external_id": "S2"}));
    let (mut x2, mut y2) = (x.clone(), y.clone());
    x2.set("external_id", "S2");
    y2.set("external_id", "S1");
    x2.version += 1;
    y2.version += 1;
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Update {
        record: x2,
        expected_version: x.version,
    });
    cs.writes.push(Write::Update {
        record: y2,
        expected_version: y.version,
    });
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    assert_eq!(
        block(f.svc.get(&f.admin, "lead", x.id)).unwrap().str("external_id"),
        Some("S1")
    );
    // Other tenants may use the same key.
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other"})))).unwrap();
    block(f.svc.create(
        &Actor::system(other.id),
        "lead",
        &obj(json!({"first_name": "B", "external_id": "X1"})),
    ))
    .unwrap();
}

pub fn delete_refuses_records_in_use<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let act = block(f.svc.log_activity(
        &f.admin,
        &obj(json!({"kind": "call", "occurred_at": "2025-05-31", "lead_id": lead.id.to_string()})),
    ))
    .unwrap();
    let err = block(f.svc.delete(&f.admin, "lead", lead.id, lead.version)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("id".into(), codes::IN_USE.into())]);
    block(f.svc.delete(&f.admin, "activity", act.id, 1)).unwrap();
    let lead = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    block(f.svc.delete(&f.admin, "lead", lead.id, lead.version)).unwrap();
    assert_eq!(
        block(f.svc.get(&f.admin, "lead", lead.id)).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.delete(&f.sales_a, "team", f.sales_a.team_id.unwrap(), 1))
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

pub fn derived_writes_skip_moved_rows<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let i = LEAD.index_of("score").unwrap();
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: 99,
        fields: vec![(i, Value::Int(77))],
    });
    let applied = block(f.svc.store().apply(cs)).unwrap();
    assert_eq!(applied.rows, 0);
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: 1,
        fields: vec![(i, Value::Int(77))],
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap().rows, 1);
    let now = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    assert_eq!((now.version, now.get("score")), (1, Some(&Value::Int(77))));
}

/// The configuration a write reads (the organization's settings, custom fields, pipelines, the
/// published scoring model) may be cached by the service, but a change is seen by the next write,
/// whether it was made by the same service or by another instance over the same database (`a` and
/// `b` are two handles of one database). The clock stays put, so the change is told apart by the
/// rows alone.
pub fn configuration_changes_reach_the_next_write_of_every_instance<S: Store>(a: S, b: S) {
    use crate::clock::SeqIds;
    use crate::service::Service;
    use std::sync::Arc;
    let f = Fixture::new(a);
    let other = Service::new(b, f.clock.clone(), Arc::new(SeqIds::starting_at(1 << 40)));
    let create = |svc: &Service<S>, input: serde_json::Value| block(svc.create(&f.manager, "lead", &obj(input)));
    // Both instances write once first, so each has the configuration at hand.
    for svc in [&f.svc, &other] {
        create(svc, json!({"first_name": "Warm", "phone": "2079460958"})).unwrap();
    }
    let with_custom = json!({"first_name": "Roof", "custom": {"roof_age": 25}});
    assert_eq!(
        codes_of(&create(&other, with_custom.clone()).unwrap_err()),
        vec![("custom.roof_age".into(), codes::UNKNOWN_FIELD.into())]
    );

    // A custom field added on one instance is accepted by the next create on the other, and the
    // other way round.
    block(f.svc.create(
        &f.admin,
        "custom_field",
        &obj(json!({"entity": "lead", "key": "roof_age", "spec": {"type": "number"}})),
    ))
    .unwrap();
    let lead = create(&other, with_custom.clone()).unwrap();
    assert_eq!(lead.custom.get("roof_age"), Some(&Value::Number(25.0)));
    let cf = block(other.create(
        &f.admin,
        "custom_field",
        &obj(json!({"entity": "lead", "key": "storeys", "spec": {"type": "number"}})),
    ))
    .unwrap();
    create(&f.svc, json!({"first_name": "Tall", "custom": {"storeys": 3}})).unwrap();
    // Deleted: refused again on both.
    block(other.delete(&f.admin, "custom_field", cf.id, cf.version)).unwrap();
    for svc in [&f.svc, &other] {
        let e = create(svc, json!({"first_name": "Tall", "custom": {"storeys": 3}})).unwrap_err();
        assert_eq!(
            codes_of(&e),
            vec![("custom.storeys".into(), codes::UNKNOWN_FIELD.into())]
        );
    }

    // A pipeline, then a stage added to it: a lead may be put in it on the other instance.
    let storm = block(f.svc.create(
        &f.admin,
        "pipeline",
        &obj(json!({"name": "Storm", "stages": [
            {"key": "inspected", "kind": "open"}, {"key": "signed", "kind": "won"}, {"key": "gone", "kind": "lost"}
        ]})),
    ))
    .unwrap();
    let in_storm = |status: &str| json!({"first_name": "Hail", "pipeline_id": storm.id.to_string(), "status": status});
    create(&other, in_storm("inspected")).unwrap();
    assert!(create(&other, in_storm("quoted")).is_err(), "no such stage yet");
    block(other.update(
        &f.admin,
        "pipeline",
        storm.id,
        storm.version,
        &obj(json!({"stages": [
            {"key": "inspected", "kind": "open"}, {"key": "quoted", "kind": "open"},
            {"key": "signed", "kind": "won"}, {"key": "gone", "kind": "lost"}
        ]})),
    ))
    .unwrap();
    for svc in [&f.svc, &other] {
        assert_eq!(create(svc, in_storm("quoted")).unwrap().str("status"), Some("quoted"));
    }

    // The organization's phone country code normalises the next create's phone on both.
    let phone = |r: &Record| r.str("phone").map(str::to_owned);
    let before = create(&other, json!({"first_name": "Pat", "phone": "2079460958"})).unwrap();
    assert_eq!(phone(&before).as_deref(), Some("+12079460958"));
    f.set_org(json!({"phone_country_code": "44"}));
    for svc in [&f.svc, &other] {
        let after = create(svc, json!({"first_name": "Pat", "phone": "2079460958"})).unwrap();
        assert_eq!(phone(&after).as_deref(), Some("+442079460958"));
    }

    // A scoring model published on one instance scores the other's next create.
    let version = |r: &Record| r.get("score_model_version").cloned();
    let unscored = create(&other, json!({"first_name": "Kim"})).unwrap();
    assert_ne!(version(&unscored), Some(Value::Int(1)));
    let draft = block(f.svc.create(
        &f.manager,
        "scoring_model",
        &obj(json!({"name": "Next", "definition": serde_json::to_value(crate::scoring::default_model()).unwrap()})),
    ))
    .unwrap();
    block(f.svc.publish_model(&f.manager, draft.id, 1)).unwrap();
    for svc in [&f.svc, &other] {
        let scored = create(svc, json!({"first_name": "Kim"})).unwrap();
        assert_eq!(version(&scored), Some(Value::Int(1)));
    }
}
