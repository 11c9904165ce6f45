//! Upserts from external systems (see [`crate::service::Service::upsert`]): bindings, unchanged
//! rows that write nothing, modes refused per row, systems that do not collide, scope and field
//! permissions, all-or-nothing, and the overlap check of exclusive ranges.

use super::*;
use crate::access::{Action, Fields, Grant, Scope};
use crate::entity::binding::{Binding, SyncStatus, fields as bf};
use crate::query::StoreQuery;
use crate::service::{RowOutcome, UpsertMode, UpsertOptions, UpsertReport, UpsertRequest};

fn upsert<S: Store>(f: &Fixture<S>, actor: &Actor, entity: &str, opts: &UpsertOptions, rows: Json) -> UpsertReport {
    let rows = rows.as_array().cloned().unwrap().into_iter().map(Ok);
    block(f.svc.upsert_rows(actor, entity, opts, rows)).unwrap()
}

fn outcomes(r: &UpsertReport) -> Vec<(String, RowOutcome, Vec<(String, String)>)> {
    r.results
        .iter()
        .map(|x| {
            (
                x.external_id.clone().unwrap_or_default(),
                x.outcome,
                x.errors.iter().map(|e| (e.path.clone(), e.code.clone())).collect(),
            )
        })
        .collect()
}

fn bindings<S: Store>(f: &Fixture<S>) -> Vec<Record> {
    let q = StoreQuery::by_id(Filter::All, 1000);
    block(f.svc.store().query(f.tenant, &entity::EXTERNAL_BINDING, &q)).unwrap()
}

/// A contact of the first sales user's (whom every caller of these cases may read).
fn customer<S: Store>(f: &Fixture<S>) -> String {
    let c = block(f.svc.create(&f.sales_a, "contact", &obj(json!({"first_name": "Cleo"})))).unwrap();
    c.id.to_string()
}

fn jobs(c: &str, n: std::ops::RangeInclusive<u32>, title: &str) -> Json {
    Json::Array(
        n.map(|i| json!({"external_id": format!("J{i}"), "kind": "project", "title": format!("{title} {i}"), "budget": "1200.00", "contact_id": c}))
            .collect(),
    )
}

pub fn upserting_the_same_batch_twice_writes_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    let opts = UpsertOptions::new("scheduler");
    let r = upsert(&f, &f.manager, "job", &opts, jobs(&c, 1..=3, "Move"));
    assert_eq!(
        (r.rows, r.created, r.updated, r.unchanged, r.rejected, r.applied),
        (3, 3, 0, 0, 0, true)
    );
    assert!(r.results.iter().all(|x| x.id.is_some()));
    let job = block(f.svc.get(&f.manager, "job", r.results[0].id.unwrap())).unwrap();
    assert_eq!(job.str("title"), Some("Move 1"));
    assert_eq!(
        job.get("external_id"),
        Some(&crate::value::Value::Null),
        "the record's own key stays the tenant's"
    );
    let b = bindings(&f);
    assert_eq!(b.len(), 3);
    assert_eq!(Binding(&b[0]).status(), Some(SyncStatus::Synced));
    assert_eq!(b[0].str(bf::SYSTEM), Some("scheduler"));

    // The same rows again (members in another order): nothing written at all.
    let before = (
        f.writes_seen(),
        f.count("job"),
        b.iter().map(|b| b.version).collect::<Vec<_>>(),
    );
    let reordered: Vec<Json> = jobs(&c, 1..=3, "Move")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = r.as_object().unwrap();
            Json::Object(m.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
        .collect();
    let again = upsert(&f, &f.manager, "job", &opts, Json::Array(reordered));
    assert_eq!(
        (again.unchanged, again.created, again.updated, again.applied),
        (3, 0, 0, false)
    );
    assert!(again.results.is_empty(), "unchanged rows are counted, not listed");
    let after = (
        f.writes_seen(),
        f.count("job"),
        bindings(&f).iter().map(|b| b.version).collect::<Vec<_>>(),
    );
    assert_eq!(before, after, "no record, audit, event or binding write");

    // One changed row: one update, one audit entry, the binding takes the new hash.
    let mut rows = jobs(&c, 1..=3, "Move");
    rows[1]["title"] = json!("Move 2 (rescheduled)");
    let (audit, _) = f.writes_seen();
    let r = upsert(&f, &f.manager, "job", &opts, rows);
    assert_eq!((r.updated, r.unchanged), (1, 2));
    assert_eq!(f.writes_seen().0, audit + 1);
    let job = block(f.svc.get(&f.manager, "job", r.results[0].id.unwrap())).unwrap();
    assert_eq!(job.str("title"), Some("Move 2 (rescheduled)"));
}

pub fn upsert_modes_refuse_what_they_must_per_row<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    let mut opts = UpsertOptions::new("scheduler");
    upsert(&f, &f.manager, "job", &opts, jobs(&c, 1..=2, "Move"));
    opts.mode = UpsertMode::CreateOnly;
    let r = upsert(&f, &f.manager, "job", &opts, jobs(&c, 2..=3, "Haul"));
    assert_eq!(
        outcomes(&r),
        [
            (
                "J2".into(),
                RowOutcome::Rejected,
                vec![("external_id".into(), "already_bound".into())]
            ),
            ("J3".into(), RowOutcome::Created, vec![]),
        ]
    );
    opts.mode = UpsertMode::UpdateOnly;
    let r = upsert(&f, &f.manager, "job", &opts, jobs(&c, 3..=4, "Lift"));
    assert_eq!(
        outcomes(&r),
        [
            ("J3".into(), RowOutcome::Updated, vec![]),
            (
                "J4".into(),
                RowOutcome::Rejected,
                vec![("external_id".into(), "not_bound".into())]
            ),
        ]
    );
    assert_eq!(f.count("job"), 3);
    // A key twice in one batch, a row that is no object, a row without its id: each refused alone.
    opts.mode = UpsertMode::Upsert;
    let rows = json!([{"external_id": "J5", "kind": "project", "title": "A", "contact_id": c}, {"external_id": "J5", "kind": "project", "title": "B", "contact_id": c},
        "J6", {"kind": "project", "title": "C", "contact_id": c}, {"external_id": 7, "kind": "project", "title": "D", "contact_id": c}]);
    let r = upsert(&f, &f.manager, "job", &opts, rows);
    let codes: Vec<(u64, RowOutcome, Vec<String>)> = r
        .results
        .iter()
        .map(|x| (x.row, x.outcome, x.errors.iter().map(|e| e.code.clone()).collect()))
        .collect();
    assert_eq!(
        codes,
        [
            (1, RowOutcome::Created, vec![]),
            (2, RowOutcome::Rejected, vec!["duplicate".to_owned()]),
            (3, RowOutcome::Rejected, vec!["invalid_type".to_owned()]),
            (4, RowOutcome::Rejected, vec!["required".to_owned()]),
            (5, RowOutcome::Rejected, vec!["invalid_type".to_owned()]),
        ]
    );
    // JSON is typed strictly; every error of a row is reported at once.
    let r = upsert(
        &f,
        &f.manager,
        "job",
        &opts,
        json!([{"external_id": "J8", "kind": "spaceship", "title": "", "signature_required": "no", "contact_id": c}]),
    );
    let mut errs = outcomes(&r)[0].2.clone();
    errs.sort();
    assert_eq!(
        errs,
        [
            ("kind".into(), "invalid_option".into()),
            ("signature_required".into(), "invalid_type".into()),
            ("title".into(), "required".into()),
        ]
    );
    // A type without an external key, or a bad system name, is refused whole.
    let bad = UpsertRequest {
        system: "Not A System".into(),
        mode: UpsertMode::Upsert,
        all_or_nothing: false,
        dry_run: false,
        rows: vec![],
    };
    let err = block(f.svc.upsert(&f.manager, "job", bad.clone())).unwrap_err();
    assert_eq!(codes_of(&err), [("system".into(), "invalid_format".into())]);
    let none = UpsertRequest {
        system: "erp".into(),
        rows: vec![],
        ..bad
    };
    let err = block(f.svc.upsert(&f.admin, "team", none)).unwrap_err();
    assert_eq!(codes_of(&err), [("entity".into(), "invalid_option".into())]);
}

pub fn two_systems_with_one_external_id_do_not_collide<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    let a = upsert(
        &f,
        &f.manager,
        "job",
        &UpsertOptions::new("scheduler"),
        jobs(&c, 1..=1, "Move"),
    );
    let b = upsert(
        &f,
        &f.manager,
        "job",
        &UpsertOptions::new("erp"),
        jobs(&c, 1..=1, "Invoice"),
    );
    assert_eq!((a.created, b.created), (1, 1));
    assert_ne!(a.results[0].id, b.results[0].id);
    let b2 = upsert(
        &f,
        &f.manager,
        "job",
        &UpsertOptions::new("erp"),
        jobs(&c, 1..=1, "Invoice v2"),
    );
    assert_eq!((b2.updated, b2.results[0].id), (1, b.results[0].id));
    let ja = block(f.svc.get(&f.manager, "job", a.results[0].id.unwrap())).unwrap();
    assert_eq!(
        ja.str("title"),
        Some("Move 1"),
        "the other system's record is untouched"
    );
    assert_eq!(bindings(&f).len(), 2);
}

pub fn upserts_keep_to_the_callers_scope_and_writable_fields<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    // A coordinator: creates (imports) and updates their own jobs, may not write the budget.
    let own = [
        (Action::Read, Scope::Team),
        (Action::Create, Scope::Own),
        (Action::Import, Scope::Own),
        (Action::Update, Scope::Own),
    ];
    let mut role = (*f.sales_a.role).clone();
    role.name = "coordinator".into();
    role.grants.insert(
        "job".into(),
        Grant {
            actions: own.into_iter().collect(),
            read: Fields::All,
            write: Fields::Except(["budget".to_owned()].into()),
        },
    );
    let coord = Actor {
        role: Arc::new(role),
        ..f.sales_a.clone()
    };
    let me = coord.user_id.unwrap().to_string();
    let opts = UpsertOptions::new("scheduler");
    // The manager's job (bound by the same system) is outside the coordinator's update scope.
    upsert(&f, &f.manager, "job", &opts, jobs(&c, 1..=1, "Manager's"));
    let rows = json!([
        {"external_id": "J1", "kind": "project", "title": "Taken over", "owner_id": me, "contact_id": c},
        {"external_id": "J2", "kind": "project", "title": "Mine", "owner_id": me, "contact_id": c},
        {"external_id": "J3", "kind": "project", "title": "With budget", "owner_id": me, "contact_id": c, "budget": "10.00"},
        {"external_id": "J4", "kind": "project", "title": "Given away", "owner_id": f.sales_b.user_id.unwrap().to_string(), "contact_id": c},
    ]);
    let r = upsert(&f, &coord, "job", &opts, rows);
    let got = outcomes(&r);
    assert_eq!(got[1], ("J2".into(), RowOutcome::Created, vec![]));
    assert_eq!(got[0].1, RowOutcome::Rejected, "{got:?}");
    assert_eq!(got[0].2[0].1, "forbidden");
    assert_eq!(
        got[2],
        (
            "J3".into(),
            RowOutcome::Rejected,
            vec![("budget".into(), "forbidden".into())]
        )
    );
    assert_eq!(
        got[3].1,
        RowOutcome::Rejected,
        "a new record outside the caller's scope: {got:?}"
    );
    let job = block(f.svc.get(&f.manager, "job", r.results[1].id.unwrap())).unwrap();
    assert_eq!(job.get("owner_id").and_then(crate::value::Value::as_id), coord.user_id);
    // Moving its own job to another owner would take it out of the coordinator's scope.
    let r = upsert(
        &f,
        &coord,
        "job",
        &opts,
        json!([{"external_id": "J2", "kind": "project", "title": "Mine", "owner_id": f.sales_b.user_id.unwrap().to_string(), "contact_id": c}]),
    );
    assert_eq!(r.rejected, 1, "{:?}", r.results);
    let manager_job = block(f.svc.list(
        &f.manager,
        "job",
        &ListRequest {
            q: Some("title:\"Manager's 1\"".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(manager_job.items.len(), 1, "the manager's job kept its title");
}

pub fn an_all_or_nothing_upsert_with_one_bad_row_writes_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    let before = (f.writes_seen(), f.count("job"));
    let mut opts = UpsertOptions::new("scheduler");
    opts.all_or_nothing = true;
    let mut rows = jobs(&c, 1..=3, "Move");
    rows[1]["title"] = json!("");
    rows[1]["budget"] = json!("-5.00");
    let r = upsert(&f, &f.manager, "job", &opts, rows.clone());
    assert_eq!((r.created, r.rejected, r.applied), (2, 1, false));
    let mut errs = outcomes(&r)[1].2.clone();
    errs.sort();
    assert_eq!(
        errs,
        [
            ("budget".into(), "too_small".into()),
            ("title".into(), "required".into())
        ]
    );
    assert_eq!((f.writes_seen(), f.count("job")), before);
    assert!(bindings(&f).is_empty());
    // A dry run writes nothing either.
    let dry = UpsertOptions {
        dry_run: true,
        ..UpsertOptions::new("scheduler")
    };
    let r = upsert(&f, &f.manager, "job", &dry, jobs(&c, 1..=3, "Move"));
    assert_eq!((r.created, r.applied), (3, false));
    assert_eq!((f.writes_seen(), f.count("job")), before);
    assert!(bindings(&f).is_empty());

    // Valid rows only: a refused row whose binding exists records its errors on the binding, once.
    let opts = UpsertOptions::new("scheduler");
    upsert(&f, &f.manager, "job", &opts, jobs(&c, 1..=3, "Move"));
    let r = upsert(&f, &f.manager, "job", &opts, rows.clone());
    assert_eq!((r.rejected, r.unchanged), (1, 2));
    let bad = |f: &Fixture<S>| {
        bindings(f)
            .into_iter()
            .find(|b| b.str(bf::EXTERNAL_ID) == Some("J2"))
            .unwrap()
    };
    let b = bad(&f);
    assert_eq!(Binding(&b).status(), Some(SyncStatus::Rejected));
    assert!(Binding(&b).last_error().is_some());
    let seen = (f.writes_seen(), b.version);
    upsert(&f, &f.manager, "job", &opts, rows);
    assert_eq!(
        (f.writes_seen(), bad(&f).version),
        seen,
        "the same refusal is not written twice"
    );
    // The good row again: synced, and no record write (it equals the last row applied).
    let r = upsert(&f, &f.manager, "job", &opts, jobs(&c, 2..=2, "Move"));
    assert_eq!(r.unchanged, 1);
    assert_eq!(Binding(&bad(&f)).status(), Some(SyncStatus::Synced));
    assert_eq!(f.writes_seen(), seen.0);
}

pub fn upserted_appointments_keep_the_overlap_check<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    let opts = UpsertOptions::new("calendar");
    let row =
        |id: &str, from: &str, to: &str| json!({"external_id": id, "title": "Visit", "starts_at": from, "ends_at": to});
    let r = upsert(
        &f,
        &f.admin,
        "appointment",
        &opts,
        json!([
            row("A1", "2025-06-02T09:00:00Z", "2025-06-02T10:00:00Z"),
            row("A2", "2025-06-02T11:00:00Z", "2025-06-02T12:00:00Z"),
        ]),
    );
    assert_eq!(r.created, 2);
    for x in &r.results {
        let att = obj(json!({"appointment_id": x.id.unwrap().to_string(), "user_id": tom.to_string()}));
        block(f.svc.create(&f.admin, "appointment_attendee", &att)).unwrap();
    }
    // Moving A2 onto A1's hour double-books Tom: that row is refused, the other goes in.
    let r = upsert(
        &f,
        &f.admin,
        "appointment",
        &opts,
        json!([
            row("A2", "2025-06-02T09:30:00Z", "2025-06-02T10:30:00Z"),
            row("A3", "2025-06-02T14:00:00Z", "2025-06-02T15:00:00Z"),
        ]),
    );
    assert_eq!(
        outcomes(&r),
        [
            (
                "A2".into(),
                RowOutcome::Rejected,
                vec![("attendee_user_ids".into(), "overlap".into())]
            ),
            ("A3".into(), RowOutcome::Created, vec![]),
        ]
    );
    let a2 = bindings(&f)
        .into_iter()
        .find(|b| b.str(bf::EXTERNAL_ID) == Some("A2"))
        .unwrap();
    assert_eq!(
        Binding(&a2).status(),
        Some(SyncStatus::Rejected),
        "the binding records the overlap"
    );
}
