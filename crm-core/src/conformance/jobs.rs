//! Field work: jobs, their ordered steps, crews and step activities (see [`crate::entity::job`]).

use super::*;
use crate::clock::Clock as _;
use crate::service::ExportOptions;

/// A contact to do jobs for, and a job for them with the given extra fields and steps.
fn job<S: Store>(f: &Fixture<S>, extra: Json) -> Record {
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Cleo"})))).unwrap();
    let mut input = obj(
        json!({"kind": "journey", "title": "Move to Elm St", "contact_id": contact.id.to_string(),
        "scheduled_on": "2025-06-02"}),
    );
    input.extend(obj(extra));
    block(f.svc.create(&f.admin, "job", &input)).unwrap()
}

fn steps<S: Store>(f: &Fixture<S>, actor: &Actor, job: Id) -> Vec<Record> {
    block(f.svc.children(actor, "job", job))
        .unwrap()
        .into_iter()
        .find(|(d, _)| d.name == "job_step")
        .map(|(_, rows)| rows)
        .unwrap_or_default()
}

fn crew<S: Store>(f: &Fixture<S>, job: Id, user: Id, from: &str, to: &str) -> crate::error::Result<Record> {
    let input = json!({"job_id": job.to_string(), "user_id": user.to_string(), "role": "mover",
        "starts_at": from, "ends_at": to});
    block(f.svc.create(&f.admin, "crew_assignment", &obj(input)))
}

fn transition<S: Store>(
    f: &Fixture<S>,
    actor: &Actor,
    r: &Record,
    name: &str,
    input: Json,
) -> crate::error::Result<Record> {
    block(
        f.svc
            .transition(actor, r.entity.name, r.id, r.version, name, &obj(input)),
    )
}

fn get<S: Store>(f: &Fixture<S>, actor: &Actor, entity: &str, id: Id) -> Record {
    block(f.svc.get(actor, entity, id)).unwrap()
}

fn int(r: &Record, field: &str) -> i64 {
    r.get(field).and_then(crate::value::Value::as_i64).unwrap_or(-1)
}

/// Steps come back in their order (given positions first, unnumbered ones after, in the order sent), a
/// job type's template gives a new job its steps, and when a step started and finished, and who
/// finished it, is stamped by the core: a client can't send it.
pub fn job_steps_keep_their_order_and_the_core_stamps_them<S: Store>(store: S) {
    let f = Fixture::new(store);
    let j = job(
        &f,
        json!({"job_steps": [{"name": "Drive", "position": 2}, {"name": "Load", "position": 1},
            {"name": "Unload"}, {"name": "Sweep", "required": false}]}),
    );
    let names = |rows: &[Record]| {
        rows.iter()
            .map(|s| s.str("name").unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&steps(&f, &f.admin, j.id)), ["Load", "Drive", "Unload", "Sweep"]);
    assert_eq!(
        (int(&j, "step_count"), int(&j, "required_open"), int(&j, "progress")),
        (4, 3, 0)
    );

    // A step added later goes last; one placed between keeps its place.
    block(f.svc.create(
        &f.admin,
        "job_step",
        &obj(json!({"job_id": j.id.to_string(), "name": "Invoice"})),
    ))
    .unwrap();
    block(f.svc.create(
        &f.admin,
        "job_step",
        &obj(json!({"job_id": j.id.to_string(), "name": "Wrap", "position": 1})),
    ))
    .unwrap();
    let order = names(&steps(&f, &f.admin, j.id));
    assert_eq!(order.last().map(String::as_str), Some("Invoice"));
    assert_eq!(order.iter().filter(|n| *n == "Wrap" || *n == "Load").count(), 2);

    // The core stamps; the client can't.
    let load = steps(&f, &f.admin, j.id)
        .into_iter()
        .find(|s| s.str("name") == Some("Load"))
        .unwrap();
    let err = transition(
        &f,
        &f.admin,
        &load,
        "complete",
        json!({"completed_at": "2020-01-01T00:00:00Z"}),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), [("completed_at".into(), "unknown_field".into())]);
    let err = block(f.svc.update(
        &f.admin,
        "job_step",
        load.id,
        load.version,
        &obj(json!({"completed_by": null})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    f.clock.advance_micros(60_000_000);
    let started = transition(&f, &f.admin, &load, "start", json!({})).unwrap();
    assert_eq!(started.str("status"), Some("in_progress"));
    assert_eq!(
        started.get("started_at").and_then(crate::value::Value::as_timestamp),
        Some(f.clock.now())
    );
    f.clock.advance_micros(600_000_000);
    let done = transition(&f, &f.admin, &started, "complete", json!({})).unwrap();
    assert_eq!(done.str("status"), Some("done"));
    assert_eq!(
        done.get("completed_at").and_then(crate::value::Value::as_timestamp),
        Some(f.clock.now())
    );
    assert_eq!(done.id_of("completed_by"), None, "the system acted");
    let after = get(&f, &f.admin, "job", j.id);
    assert_eq!((int(&after, "steps_finished"), int(&after, "step_count")), (1, 6));
    assert_eq!(int(&after, "progress"), 16);
    // The transition is named in the step's audit entry and event.
    let trail = block(f.svc.audit_trail(
        &f.admin,
        &crate::store::AuditQuery {
            entity_id: Some(load.id),
            limit: 100,
            ..Default::default()
        },
    ))
    .unwrap();
    let actions: Vec<_> = trail.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["create", "start", "complete"]);

    // A template gives a new job of its type its steps, in order.
    block(f.svc.create(
        &f.admin,
        "job_template",
        &obj(
            json!({"job_type": "local_move", "steps": [{"name": "Walkthrough"}, {"name": "Load"},
            {"name": "Photos", "required": false}]}),
        ),
    ))
    .unwrap();
    let templated = job(&f, json!({"job_type": "local_move"}));
    assert_eq!(
        names(&steps(&f, &f.admin, templated.id)),
        ["Walkthrough", "Load", "Photos"]
    );
    assert_eq!(int(&templated, "required_open"), 2);
    // Steps sent with the job win over the template.
    let own = job(
        &f,
        json!({"job_type": "local_move", "job_steps": [{"name": "Just this"}]}),
    );
    assert_eq!(names(&steps(&f, &f.admin, own.id)), ["Just this"]);
}

/// A job cannot start without a crew, nor complete with a required step open or a signature
/// missing; each refusal names its reason and writes nothing. A finished job is locked with its steps.
pub fn job_guards_refuse_with_nothing_written<S: Store>(store: S) {
    let f = Fixture::new(store).with_blobs(Arc::new(crate::blob::MemoryBlobStore::new()));
    let j = job(
        &f,
        json!({"signature_required": true, "job_steps": [{"name": "Load"}, {"name": "Photos", "required": false}]}),
    );
    let seen = f.writes_seen();
    let err = transition(&f, &f.admin, &j, "start", json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("crew_assignments".into(), "no_crew".into())]);
    assert_eq!(f.writes_seen(), seen, "a refused start writes nothing");

    crew(
        &f,
        j.id,
        f.tech.user_id.unwrap(),
        "2025-06-02T08:00:00Z",
        "2025-06-02T16:00:00Z",
    )
    .unwrap();
    let j = transition(&f, &f.admin, &get(&f, &f.admin, "job", j.id), "dispatch", json!({})).unwrap();
    let j = transition(&f, &f.admin, &j, "start", json!({})).unwrap();
    assert_eq!(j.str("status"), Some("in_progress"));

    let seen = f.writes_seen();
    let err = transition(&f, &f.admin, &j, "complete", json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("job_steps".into(), "open_steps".into())]);
    assert_eq!(f.writes_seen(), seen, "a refused completion writes nothing");

    let load = steps(&f, &f.admin, j.id)
        .into_iter()
        .find(|s| s.str("name") == Some("Load"))
        .unwrap();
    transition(&f, &f.admin, &load, "complete", json!({})).unwrap();
    let j = get(&f, &f.admin, "job", j.id);
    assert_eq!(int(&j, "required_open"), 0);
    let err = transition(&f, &f.admin, &j, "complete", json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("customer_signed".into(), "unsigned".into())]);
    let err = transition(&f, &f.admin, &j, "cancel", json!({"cancel_reason": " "})).unwrap_err();
    assert_eq!(codes_of(&err), [("cancel_reason".into(), "required".into())]);

    // The customer signs: a signature attachment (see attachments.rs).
    let sig = crate::service::AttachInput {
        kind: "signature".into(),
        file_name: "signature.png".into(),
        signer_name: Some("Cleo".into()),
        ..Default::default()
    };
    let png = super::attachments::png(1);
    block(f.svc.attach(&f.admin, "job", j.id, &sig, &mut png.as_slice())).unwrap();
    let j = get(&f, &f.admin, "job", j.id);
    let j = transition(&f, &f.admin, &j, "complete", json!({})).unwrap();
    assert_eq!(j.str("status"), Some("completed"));
    // Locked: its steps, crew and fields stay as they are.
    let photos = steps(&f, &f.admin, j.id)
        .into_iter()
        .find(|s| s.str("name") == Some("Photos"))
        .unwrap();
    let err = transition(&f, &f.admin, &photos, "skip", json!({"skip_reason": "rain"})).unwrap_err();
    assert_eq!(err.code(), "validation");
    let err = block(
        f.svc
            .update(&f.admin, "job", j.id, j.version, &obj(json!({"notes": "late"}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    // The period's report: one job, completed before its day ended; Load done in no time.
    let day = time::macros::date!(2025 - 06 - 02);
    let r = block(f.svc.field_work_report(&f.admin, Some(day), Some(day))).unwrap();
    assert_eq!((r.jobs, r.completed, r.on_time), (1, 1, 1));
    let load = r.steps.iter().find(|s| s.name == "Load").unwrap();
    assert_eq!(
        (load.done, load.median_minutes),
        (1, Some(crate::decimal::Decimal::ZERO))
    );
    // A technician not on the crew reports nothing of it.
    assert_eq!(
        block(f.svc.field_work_report(&f.tech, Some(day), Some(day)))
            .unwrap()
            .jobs,
        1,
        "tom is on its crew"
    );
    assert_eq!(
        block(f.svc.field_work_report(&f.sales_b, Some(day), Some(day)))
            .unwrap()
            .jobs,
        0
    );
    // Without dates: the tenant's today (a field manager's numbers for the day).
    f.clock
        .set(crate::value::Timestamp::parse("2025-06-02T10:00:00Z").unwrap());
    assert_eq!(block(f.svc.field_work_report(&f.admin, None, None)).unwrap(), r);
}

/// A user holds one assignment at a time: an overlapping one is refused on any job (touching ends are
/// fine), and of two writers racing to book one user, exactly one wins; the other is refused.
pub fn crew_double_booking_is_refused_even_between_racing_writers<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    let (a, b) = (job(&f, json!({})), job(&f, json!({})));
    crew(&f, a.id, tom, "2025-06-02T08:00:00Z", "2025-06-02T12:00:00Z").unwrap();
    let seen = (f.writes_seen(), f.count("crew_assignment"));
    let err = crew(&f, b.id, tom, "2025-06-02T11:00:00Z", "2025-06-02T14:00:00Z").unwrap_err();
    assert_eq!(codes_of(&err), [("user_id".into(), "overlap".into())]);
    assert_eq!((f.writes_seen(), f.count("crew_assignment")), seen, "nothing written");
    crew(&f, b.id, tom, "2025-06-02T12:00:00Z", "2025-06-02T14:00:00Z").unwrap();
    // Two overlapping assignments sent in one write are refused together.
    let ops = [
        crate::service::ChildOp::Create {
            entity: "crew_assignment".into(),
            input: obj(
                json!({"user_id": f.staff.user_id.unwrap().to_string(), "role": "driver",
                "starts_at": "2025-06-03T08:00:00Z", "ends_at": "2025-06-03T12:00:00Z"}),
            ),
        },
        crate::service::ChildOp::Create {
            entity: "crew_assignment".into(),
            input: obj(json!({"user_id": f.staff.user_id.unwrap().to_string(), "role": "mover",
                "starts_at": "2025-06-03T09:00:00Z", "ends_at": "2025-06-03T10:00:00Z"})),
        },
    ];
    let a_now = get(&f, &f.admin, "job", a.id);
    let err = block(f.svc.write_children(&f.admin, "job", a.id, a_now.version, &ops)).unwrap_err();
    assert_eq!(codes_of(&err), [("user_id".into(), "overlap".into())]);

    // Racing writers: each round, two threads book one new user on two jobs for the same hours.
    for round in 0..4 {
        let user = block(f.svc.create(
            &f.admin,
            "user",
            &obj(json!({"name": format!("racer{round}"), "email": format!("racer{round}@acme.test"), "role": "field_tech"})),
        ))
        .unwrap()
        .id;
        let (x, y) = (job(&f, json!({})), job(&f, json!({})));
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = [x.id, y.id]
                .map(|jid| {
                    let f = &f;
                    s.spawn(move || crew(f, jid, user, "2025-06-05T08:00:00Z", "2025-06-05T12:00:00Z"))
                })
                .into_iter()
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        let lost = results.into_iter().find_map(Result::err).unwrap();
        assert_eq!(codes_of(&lost), [("user_id".into(), "overlap".into())], "round {round}");
        let booked = f.ids(&f.admin, "crew_assignment", &format!("user_id:{user}"));
        assert_eq!(booked.len(), 1, "round {round}");
    }
}

/// A field technician sees the jobs whose crew they are on, with their steps and activities, and
/// nothing else, on every read; moves steps forward and logs activities; changes neither budget
/// nor crew.
pub fn field_tech_sees_only_jobs_they_are_assigned_to<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    let mine = job(
        &f,
        json!({"title": "Mine", "budget": "900.00", "job_steps": [{"name": "Load"}]}),
    );
    let other = job(&f, json!({"title": "Other", "job_steps": [{"name": "Load"}]}));
    crew(&f, mine.id, tom, "2025-06-02T08:00:00Z", "2025-06-02T16:00:00Z").unwrap();
    let mine = get(&f, &f.admin, "job", mine.id);
    assert_eq!(
        mine.get("crew_user_ids"),
        Some(&crate::value::Value::List(vec![tom.to_string()]))
    );

    // get, list, children
    assert_eq!(get(&f, &f.tech, "job", mine.id).id, mine.id);
    assert_eq!(
        block(f.svc.get(&f.tech, "job", other.id)).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(f.ids(&f.tech, "job", ""), [mine.id]);
    assert_eq!(steps(&f, &f.tech, mine.id).len(), 1);
    assert_eq!(
        block(f.svc.children(&f.tech, "job", other.id)).unwrap_err().code(),
        "not_found"
    );
    // export
    let mut out = Vec::new();
    let n = block(f.svc.export_csv(
        &f.tech,
        "job",
        &ExportOptions {
            fields: vec!["title".into()],
            ..Default::default()
        },
        &mut out,
    ))
    .unwrap();
    assert_eq!((n, String::from_utf8(out).unwrap()), (1, "title\nMine\n".to_owned()));
    // audit and events
    let trail = |id| {
        block(f.svc.audit_trail(
            &f.tech,
            &crate::store::AuditQuery {
                entity_id: Some(id),
                limit: 100,
                ..Default::default()
            },
        ))
    };
    assert!(!trail(mine.id).unwrap().is_empty());
    assert_eq!(trail(other.id).unwrap_err().code(), "not_found");
    let other_step = steps(&f, &f.admin, other.id)[0].id;
    assert_eq!(trail(other_step).unwrap_err().code(), "not_found");
    let events = block(f.svc.events_since(&f.tech, 0, 1000)).unwrap();
    assert!(events.iter().any(|e| e.entity_id == Some(mine.id)));
    assert!(
        events
            .iter()
            .all(|e| e.entity_id != Some(other.id) && e.entity_id != Some(other_step)),
        "no event of a job the tech is not on"
    );

    // Steps forward and activities: yes. On the other job: not found.
    let load = steps(&f, &f.tech, mine.id).remove(0);
    let started = transition(&f, &f.tech, &load, "start", json!({})).unwrap();
    let act = json!({"job_id": mine.id.to_string(), "step_id": load.id.to_string(), "kind": "checklist",
        "checklist": [{"item": "Floors covered", "done": true}]});
    block(f.svc.create(&f.tech, "step_activity", &obj(act))).unwrap();
    let done = transition(&f, &f.tech, &started, "complete", json!({})).unwrap();
    assert_eq!(done.id_of("completed_by"), Some(tom));
    let theirs = steps(&f, &f.admin, other.id).remove(0);
    assert_eq!(
        transition(&f, &f.tech, &theirs, "start", json!({})).unwrap_err().code(),
        "not_found"
    );
    // Budget and crew: no.
    let now = get(&f, &f.tech, "job", mine.id);
    let err = block(
        f.svc
            .update(&f.tech, "job", mine.id, now.version, &obj(json!({"budget": "1.00"}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let input = json!({"job_id": mine.id.to_string(), "user_id": tom.to_string(), "role": "driver",
        "starts_at": "2025-06-09T08:00:00Z", "ends_at": "2025-06-09T09:00:00Z"});
    assert_eq!(
        block(f.svc.create(&f.tech, "crew_assignment", &obj(input)))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    // Notes: yes.
    block(f.svc.update(
        &f.tech,
        "job",
        mine.id,
        now.version,
        &obj(json!({"notes": "Piano on 3rd floor"})),
    ))
    .unwrap();
}

/// A crew member's day holds their assignments of that day in time order, each with its job and open
/// steps; the dispatcher's board holds the day's jobs the reader may read, with crews and lanes.
pub fn my_day_and_the_board_show_each_reader_their_part<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tom = f.tech.user_id.unwrap();
    let day = time::macros::date!(2025 - 06 - 02);
    let steps_json = json!([{"name": "Load"}, {"name": "Drive"}]);
    let late = job(
        &f,
        json!({"title": "Late", "vehicle": "truck-2", "job_steps": steps_json}),
    );
    let early = job(
        &f,
        json!({"title": "Early", "vehicle": "truck-1", "job_steps": steps_json}),
    );
    let next_day = job(&f, json!({"title": "Tomorrow", "scheduled_on": "2025-06-03"}));
    let not_mine = job(&f, json!({"title": "Not mine", "vehicle": "truck-1"}));
    crew(&f, late.id, tom, "2025-06-02T13:00:00Z", "2025-06-02T17:00:00Z").unwrap();
    crew(&f, early.id, tom, "2025-06-02T08:00:00Z", "2025-06-02T12:00:00Z").unwrap();
    crew(&f, next_day.id, tom, "2025-06-03T08:00:00Z", "2025-06-03T12:00:00Z").unwrap();
    crew(
        &f,
        not_mine.id,
        f.staff.user_id.unwrap(),
        "2025-06-02T08:00:00Z",
        "2025-06-02T12:00:00Z",
    )
    .unwrap();
    let first = steps(&f, &f.admin, early.id).remove(0);
    transition(&f, &f.admin, &first, "complete", json!({})).unwrap();

    let items = block(f.svc.my_day(&f.tech, Some(day))).unwrap();
    let titles: Vec<_> = items
        .iter()
        .map(|i| i.job.as_ref().unwrap().str("title").unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Early", "Late"]);
    let open: Vec<_> = items[0]
        .open_steps
        .iter()
        .map(|s| s.str("name").unwrap().to_owned())
        .collect();
    assert_eq!(open, ["Drive"], "done steps are left out");
    assert_eq!(items[1].open_steps.len(), 2);
    // The tenant's today when no date is given (the fixture's clock is 2025-06-01).
    assert!(block(f.svc.my_day(&f.tech, None)).unwrap().is_empty());
    let tomorrow = block(f.svc.my_day(&f.tech, day.next_day())).unwrap();
    assert_eq!(tomorrow.len(), 1);

    let board = block(f.svc.board(&f.manager, day, &ListRequest::default())).unwrap();
    let titles: Vec<_> = board
        .jobs
        .iter()
        .map(|j| j.job.str("title").unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Early", "Not mine", "Late"], "by truck, then window");
    assert_eq!(board.by_vehicle["truck-1"], [early.id, not_mine.id]);
    assert_eq!(board.by_user[&tom], [early.id, late.id]);
    assert_eq!(board.jobs[0].crew.len(), 1);
    // Filtered and paged like any list; a technician's board holds only their jobs.
    let req = ListRequest {
        q: Some("vehicle:truck-2".into()),
        ..Default::default()
    };
    assert_eq!(block(f.svc.board(&f.manager, day, &req)).unwrap().jobs.len(), 1);
    let paged = ListRequest {
        limit: Some(2),
        ..Default::default()
    };
    let page1 = block(f.svc.board(&f.manager, day, &paged)).unwrap();
    let page2 = block(f.svc.board(
        &f.manager,
        day,
        &ListRequest {
            cursor: page1.next_cursor.clone(),
            ..paged
        },
    ))
    .unwrap();
    assert_eq!((page1.jobs.len(), page2.jobs.len(), page2.next_cursor), (2, 1, None));
    let theirs = block(f.svc.board(&f.tech, day, &ListRequest::default())).unwrap();
    assert_eq!(theirs.jobs.len(), 2);
}

/// A quote of `actor` for a new contact at an address, submitted, sent and (when `accept`) accepted.
fn quote<S: Store>(f: &Fixture<S>, actor: &Actor, accept: bool) -> Record {
    let contact = block(f.svc.create(
        actor,
        "contact",
        &obj(json!({"first_name": "Quinn", "address_line": "9 Oak Rd", "city": "Denver"})),
    ))
    .unwrap();
    let input = json!({"title": "New roof", "contact_id": contact.id.to_string(), "valid_until": "2025-06-30",
        "quote_lines": [{"description": "Shingles", "quantity": "10", "unit_price": "150.00"}]});
    let q = block(f.svc.create(actor, "quote", &obj(input))).unwrap();
    let q = transition(f, actor, &q, "submit", json!({})).unwrap();
    let q = transition(f, actor, &q, "send", json!({})).unwrap();
    if accept {
        transition(f, actor, &q, "accept", json!({})).unwrap()
    } else {
        q
    }
}

/// A job is made from an accepted quote only, for its customer at the customer's address, with the
/// quote's total as budget and the job type's template steps, in one audited change set; the quote's
/// reference is read-only on a job; a second job for the quote is refused until the first is
/// cancelled, also between two racing callers; the caller needs create on jobs and read on the quote.
pub fn a_job_is_made_once_from_an_accepted_quote<S: Store>(store: S) {
    let f = Fixture::new(store);
    block(f.svc.create(
        &f.admin,
        "job_template",
        &obj(json!({"job_type": "reroof", "steps": [{"name": "Tear off"}, {"name": "Shingle"}]})),
    ))
    .unwrap();
    let from = |actor: &Actor, q: &Record, overrides: Json| block(f.svc.job_from_quote(actor, q.id, &obj(overrides)));

    // Not accepted: refused, nothing written.
    let sent = quote(&f, &f.sales_a, false);
    let seen = (f.writes_seen(), f.count("job"));
    let err = from(&f.sales_a, &sent, json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("status".into(), "not_accepted".into())]);
    assert_eq!((f.writes_seen(), f.count("job")), seen, "nothing written");

    // Accepted: the job takes the quote, its customer and address; the overrides win.
    let q = quote(&f, &f.sales_a, true);
    let overrides = json!({"scheduled_on": "2025-06-10", "job_type": "reroof", "vehicle": "truck-2"});
    let (audit_before, events_before) = f.writes_seen();
    let j = from(&f.sales_a, &q, overrides.clone()).unwrap();
    assert_eq!(j.id_of("quote_id"), Some(q.id));
    assert_eq!(j.id_of("contact_id"), q.id_of("contact_id"));
    assert_eq!(j.get("budget"), q.get("total"));
    assert_eq!(
        j.get("budget"),
        Some(&crate::value::Value::Money(crate::value::Money(150_000)))
    );
    assert_eq!(
        (j.str("title"), j.str("kind"), j.str("status")),
        (Some("New roof"), Some("project"), Some("planned"))
    );
    assert_eq!(
        (j.str("address_line"), j.str("city")),
        (Some("9 Oak Rd"), Some("Denver"))
    );
    assert_eq!(
        (j.str("vehicle"), j.id_of("owner_id")),
        (Some("truck-2"), f.sales_a.user_id)
    );
    let names: Vec<_> = steps(&f, &f.sales_a, j.id)
        .iter()
        .map(|s| s.str("name").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["Tear off", "Shingle"], "the job type's template steps");
    let (audit_after, events_after) = f.writes_seen();
    assert_eq!(
        (audit_after - audit_before, events_after - events_before),
        (3, 3),
        "the job and its two steps, audited, with their events"
    );
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "job.created" && e.entity_id == Some(j.id))
    );

    // A second job is refused, and so is naming the quote or the customer, or a job's quote elsewhere.
    let seen = (f.writes_seen(), f.count("job"));
    let err = from(&f.sales_a, &q, json!({})).unwrap_err();
    assert_eq!(codes_of(&err), [("quote_id".into(), "already_has_job".into())]);
    let err = from(
        &f.manager,
        &q,
        json!({"contact_id": j.id_of("contact_id").unwrap().to_string()}),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), [("contact_id".into(), "read_only".into())]);
    let cur = get(&f, &f.admin, "job", j.id);
    let patch = obj(json!({"quote_id": null}));
    let err = block(f.svc.update(&f.admin, "job", j.id, cur.version, &patch)).unwrap_err();
    assert_eq!(codes_of(&err), [("quote_id".into(), "read_only".into())]);
    let mut direct = obj(json!({"kind": "project", "title": "Sneaky", "quote_id": q.id.to_string()}));
    direct.insert("contact_id".into(), json!(q.id_of("contact_id").unwrap().to_string()));
    let err = block(f.svc.create(&f.admin, "job", &direct)).unwrap_err();
    assert_eq!(codes_of(&err), [("quote_id".into(), "read_only".into())]);
    assert_eq!((f.writes_seen(), f.count("job")), seen, "nothing written");

    // Rights: another team's seller may not read the quote; a technician may not create jobs.
    assert_eq!(from(&f.sales_b, &q, json!({})).unwrap_err().code(), "not_found");
    assert_eq!(from(&f.tech, &q, json!({})).unwrap_err().code(), "forbidden");

    // A cancelled job frees the quote for a new one.
    transition(
        &f,
        &f.admin,
        &cur,
        "cancel",
        json!({"cancel_reason": "customer moved the date"}),
    )
    .unwrap();
    let again = from(&f.manager, &q, json!({"title": "New roof, rescheduled"})).unwrap();
    assert_eq!(
        (again.str("title"), again.id_of("quote_id")),
        (Some("New roof, rescheduled"), Some(q.id))
    );

    // Two callers racing for one quote: exactly one job.
    for round in 0..3 {
        let q = quote(&f, &f.sales_a, true);
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = [&f.sales_a, &f.manager]
                .map(|actor| {
                    let f = &f;
                    let q = &q;
                    s.spawn(move || block(f.svc.job_from_quote(actor, q.id, &Map::new())))
                })
                .into_iter()
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        let lost = results.into_iter().find_map(Result::err).unwrap();
        assert_eq!(
            codes_of(&lost),
            [("quote_id".into(), "already_has_job".into())],
            "round {round}"
        );
        assert_eq!(
            f.ids(&f.admin, "job", &format!("quote_id:{}", q.id)).len(),
            1,
            "round {round}"
        );
    }
}
