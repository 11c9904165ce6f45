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

/// The scheduler's job with its steps: the steps nested in the row are bound by their own external
/// ids; the job derives from them; a step the row leaves out goes, a step added on the device stays;
/// the same batch again writes nothing; a bad step refuses its whole row, and a step bound to
/// another job is refused. A new job of a type with a template and no steps listed takes the
/// template's, as a single create does.
pub fn a_job_comes_with_its_steps_from_the_scheduler<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = customer(&f);
    let opts = UpsertOptions::new("scheduler");
    let journey = |steps: Json| {
        json!([{"external_id": "J1", "kind": "journey", "title": "Cleo to Elm St", "contact_id": c,
            "scheduled_on": "2030-03-04", "job_steps": steps}])
    };
    let steps_of = |job: Id| -> Vec<(String, i64)> {
        block(f.svc.children(&f.manager, "job", job))
            .unwrap()
            .into_iter()
            .find(|(d, _)| d.name == "job_step")
            .map(|(_, rows)| rows)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                (
                    s.str("name").unwrap().to_owned(),
                    s.get("position").and_then(crate::value::Value::as_i64).unwrap(),
                )
            })
            .collect()
    };
    let three = json!([{"external_id": "S1", "name": "Load", "position": 1},
        {"external_id": "S2", "name": "Drive", "position": 2},
        {"external_id": "S3", "name": "Unload", "position": 3}]);
    let r = upsert(&f, &f.manager, "job", &opts, journey(three.clone()));
    assert_eq!(outcomes(&r), [("J1".into(), RowOutcome::Created, vec![])]);
    let id = r.results[0].id.unwrap();
    assert_eq!(
        steps_of(id),
        [("Load".into(), 1), ("Drive".into(), 2), ("Unload".into(), 3)]
    );
    let job = block(f.svc.get(&f.manager, "job", id)).unwrap();
    let int = |r: &Record, k: &str| r.get(k).and_then(crate::value::Value::as_i64);
    assert_eq!(
        (int(&job, "step_count"), int(&job, "required_open")),
        (Some(3), Some(3))
    );
    let step_bindings = |f: &Fixture<S>| {
        bindings(f)
            .into_iter()
            .filter(|b| b.str(bf::ENTITY) == Some("job_step"))
            .count()
    };
    assert_eq!(step_bindings(&f), 3);

    // The same batch again: nothing written.
    let before = (f.writes_seen(), f.count("job_step"));
    let again = upsert(&f, &f.manager, "job", &opts, journey(three));
    assert_eq!((again.unchanged, again.applied), (1, false));
    assert_eq!((f.writes_seen(), f.count("job_step")), before);

    // A step the crew lead adds on the job is the tenant's, not the scheduler's.
    let job = block(f.svc.get(&f.manager, "job", id)).unwrap();
    let ops = [crate::service::ChildOp::Create {
        entity: "job_step".into(),
        input: obj(json!({"name": "Photos", "position": 4, "required": false})),
    }];
    block(f.svc.write_children(&f.manager, "job", id, job.version, &ops)).unwrap();
    let job = block(f.svc.get(&f.manager, "job", id)).unwrap();

    // S1 renamed, S2 gone from the scheduler, S4 new: one update of the job, its steps follow.
    let changed = json!([{"external_id": "S1", "name": "Load truck", "position": 1},
        {"external_id": "S3", "name": "Unload", "position": 3},
        {"external_id": "S4", "name": "Invoice", "position": 5}]);
    let r = upsert(&f, &f.manager, "job", &opts, journey(changed));
    assert_eq!(outcomes(&r), [("J1".into(), RowOutcome::Updated, vec![])]);
    assert_eq!(
        steps_of(id),
        [
            ("Load truck".into(), 1),
            ("Unload".into(), 3),
            ("Photos".into(), 4),
            ("Invoice".into(), 5)
        ]
    );
    let after = block(f.svc.get(&f.manager, "job", id)).unwrap();
    assert_eq!(
        after.version,
        job.version + 1,
        "one version bump for the job and its steps"
    );
    assert_eq!(int(&after, "step_count"), Some(4));

    // A bad step refuses the row: nothing of it is written, the job's binding says why.
    let before = (f.count("job_step"), steps_of(id));
    let bad = json!([{"external_id": "S1", "name": "", "position": 1}, {"external_id": "S9", "name": "New"}]);
    let r = upsert(&f, &f.manager, "job", &opts, journey(bad));
    assert_eq!(
        outcomes(&r),
        [(
            "J1".into(),
            RowOutcome::Rejected,
            vec![("job_steps[0].name".into(), "required".into())]
        )]
    );
    assert_eq!((f.count("job_step"), steps_of(id)), before);
    let jb = bindings(&f)
        .into_iter()
        .find(|b| b.str(bf::ENTITY) == Some("job"))
        .unwrap();
    assert_eq!(Binding(&jb).status(), Some(SyncStatus::Rejected));

    // A step stays with its job: its id under another job is refused.
    let other = json!([{"external_id": "J2", "kind": "journey", "title": "Dee to Oak Ave", "contact_id": c,
        "job_steps": [{"external_id": "S3", "name": "Unload"}]}]);
    let r = upsert(&f, &f.manager, "job", &opts, other);
    assert_eq!(
        outcomes(&r),
        [(
            "J2".into(),
            RowOutcome::Rejected,
            vec![("job_steps[0].external_id".into(), "already_bound".into())]
        )]
    );

    // One child id in two rows of one upsert: the later row is refused, nothing of it written.
    let twice = json!([
        {"external_id": "J5", "kind": "journey", "title": "Hal to Elm St", "contact_id": c,
            "job_steps": [{"external_id": "S50", "name": "Load"}]},
        {"external_id": "J6", "kind": "journey", "title": "Ivy to Elm St", "contact_id": c,
            "job_steps": [{"external_id": "S50", "name": "Load"}]}]);
    let r = upsert(&f, &f.manager, "job", &opts, twice);
    assert_eq!(
        outcomes(&r),
        [
            ("J5".into(), RowOutcome::Created, vec![]),
            (
                "J6".into(),
                RowOutcome::Rejected,
                vec![("job_steps[0].external_id".into(), "duplicate".into())]
            )
        ]
    );

    // Without steps listed, a new job of a type with a template takes the template's.
    block(f.svc.create(
        &f.admin,
        "job_template",
        &obj(json!({"job_type": "local_move", "steps": [{"name": "Walkthrough"}, {"name": "Load"}]})),
    ))
    .unwrap();
    let templated = json!([{"external_id": "J3", "kind": "journey", "title": "Eve to Pine Rd", "contact_id": c,
        "job_type": "local_move"}]);
    let r = upsert(&f, &f.manager, "job", &opts, templated);
    let id3 = r.results[0].id.unwrap();
    assert_eq!(steps_of(id3), [("Walkthrough".into(), 1), ("Load".into(), 2)]);
    let j3 = block(f.svc.get(&f.manager, "job", id3)).unwrap();
    assert_eq!(int(&j3, "step_count"), Some(2));
    // So does a new job from a CSV import (the same pipeline).
    let opts = crate::service::ImportOptions {
        mode: crate::service::ImportMode::AllOrNothing,
        ..Default::default()
    };
    let csv = format!("kind,title,contact_id,job_type\njourney,Gus to Fir St,{c},local_move\n");
    let r = block(f.svc.import_csv(&f.manager, "job", csv.as_bytes(), &opts)).unwrap();
    assert_eq!((r.created, r.invalid), (1, 0), "{:?}", r.errors);
    let q = StoreQuery::by_id(Filter::eq("title", "Gus to Fir St"), 2);
    let imported = block(f.svc.store().query(f.tenant, entity::entity("job").unwrap(), &q))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(steps_of(imported.id), [("Walkthrough".into(), 1), ("Load".into(), 2)]);
    assert_eq!(int(&imported, "step_count"), Some(2));
}
