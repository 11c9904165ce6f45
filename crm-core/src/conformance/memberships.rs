//! The front desk: membership and client statuses on the boundary days (filters select exactly what
//! evaluates, and a moved clock moves records between statuses with no write), check-in policy,
//! renewals and freezes, the kiosk and staff rules, and the owner's numbers.

use super::*;
use crate::access::builtin;
use crate::entity::membership::client;
use crate::error::codes;
use crate::service::CheckInInput;
use crate::value::Value;

fn day(d: i64) -> String {
    NOW.plus_days(d).date().to_string()
}

fn kiosk<S: Store>(f: &Fixture<S>) -> Actor {
    Actor {
        role: Arc::new(builtin::kiosk()),
        ..f.staff.clone()
    }
}

fn client<S: Store>(f: &Fixture<S>, name: &str, card: Option<&str>) -> Record {
    let mut input = json!({"first_name": name, "email": format!("{}@example.com", name.to_lowercase())});
    if let Some(card) = card {
        input["external_id"] = json!(card);
    }
    block(f.svc.create(&f.admin, "contact", &obj(input))).unwrap()
}

fn membership<S: Store>(f: &Fixture<S>, c: &Record, starts: i64, ends: i64, extra: Json) -> Record {
    let mut input = json!({"contact_id": c.id.to_string(), "starts_on": day(starts), "ends_on": day(ends)});
    if let (Json::Object(m), Json::Object(x)) = (&mut input, extra) {
        m.extend(x);
    }
    block(f.svc.create(&f.admin, "membership", &obj(input))).unwrap()
}

fn set_org<S: Store>(f: &Fixture<S>, patch: Json) {
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(
        f.svc
            .update(&f.admin, "organization", f.tenant, org.version, &obj(patch)),
    )
    .unwrap();
}

/// Every option of a computed field selects exactly the records that evaluate to it (and its negation
/// the rest); returns each record's evaluation by id.
fn filters_agree<S: Store>(f: &Fixture<S>, entity: &str, field: &str, options: &[&str]) -> Vec<(Id, String)> {
    let req = ListRequest {
        limit: Some(500),
        ..Default::default()
    };
    let items = block(f.svc.list(&f.admin, entity, &req)).unwrap().items;
    for option in options {
        let mut by_filter = f.ids(&f.admin, entity, &format!("{field}:{option}"));
        let mut by_eval: Vec<Id> = items
            .iter()
            .filter(|r| r.str(field) == Some(option))
            .map(|r| r.id)
            .collect();
        by_filter.sort();
        by_eval.sort();
        assert_eq!(by_filter, by_eval, "{entity} {field}:{option}");
        let mut not = f.ids(&f.admin, entity, &format!("{field}!={option}"));
        let mut rest: Vec<Id> = items
            .iter()
            .filter(|r| r.str(field) != Some(option))
            .map(|r| r.id)
            .collect();
        not.sort();
        rest.sort();
        assert_eq!(not, rest, "{entity} {field}!={option}");
    }
    items
        .iter()
        .map(|r| (r.id, r.str(field).unwrap_or_default().to_owned()))
        .collect()
}

fn status_of(seen: &[(Id, String)], id: Id) -> &str {
    &seen.iter().find(|(i, _)| *i == id).unwrap().1
}

/// Each status on its boundary days, for memberships and for their clients, at a pinned clock: the
/// filter of every status returns exactly the records whose computed status it is, on every store;
/// moving the clock a day moves records between statuses with no write.
pub fn membership_statuses_on_their_boundary_days<S: Store>(store: S) {
    let f = Fixture::new(store);
    // The tenant's expiring window is 14 days by default; today is day 0.
    let cases: [(&str, i64, i64, Json, &str, &str); 9] = [
        ("starts_today", 0, 100, json!({}), "active", "active"),
        ("ends_today", -30, 0, json!({}), "expiring", "expired"),
        ("ends_in_14", -30, 14, json!({}), "expiring", "expiring"),
        ("ends_in_15", -30, 15, json!({}), "active", "expiring"),
        ("ended_yesterday", -30, -1, json!({}), "expired", "expired"),
        ("starts_tomorrow", 1, 60, json!({}), "upcoming", "active"),
        (
            "cancelled",
            -30,
            60,
            json!({"cancelled": true}),
            "cancelled",
            "cancelled",
        ),
        ("frozen_today", -30, 60, json!({}), "frozen", "frozen"),
        ("thaws_today", -30, 60, json!({}), "frozen", "active"),
    ];
    let mut rows = Vec::new();
    for (name, s, e, extra, today, tomorrow) in cases.iter().cloned() {
        let c = client(&f, name, None);
        let m = membership(&f, &c, s, e, extra);
        rows.push((name, c, m, today, tomorrow));
    }
    // Frozen from today for three days, and a freeze that ends today; the policy moves the end.
    for (name, s, e) in [("frozen_today", 0, 2), ("thaws_today", -5, 0)] {
        let (_, _, m, _, _) = rows.iter().find(|r| r.0 == name).unwrap();
        let input = obj(json!({"starts_on": day(s), "ends_on": day(e)}));
        let after = block(f.svc.freeze_membership(&f.manager, m.id, m.version, &input)).unwrap();
        assert_eq!(after.str("status"), Some("frozen"), "{name}");
        assert_eq!(
            after.get("ends_on"),
            Some(&Value::Date(NOW.plus_days(60 + e - s + 1).date())),
            "{name}: the freeze extends the end by its days"
        );
    }
    let nobody = client(&f, "nobody", None);
    let writes = f.writes_seen();

    let check = |tomorrow: bool| {
        let ms = filters_agree(&f, "membership", "status", crate::entity::MembershipStatus::KEYS);
        let cs = filters_agree(
            &f,
            "contact",
            "membership",
            crate::entity::membership::status::CLIENT_STATUSES,
        );
        for r in &rows {
            let want = if tomorrow { r.4 } else { r.3 };
            assert_eq!(status_of(&ms, r.2.id), want, "membership {}", r.0);
            assert_eq!(status_of(&cs, r.1.id), want, "client {}", r.0);
        }
        assert_eq!(status_of(&cs, nobody.id), "none");
    };
    check(false);
    f.clock.set(NOW.plus_days(1));
    check(true);
    f.clock.set(NOW);
    check(false);
    assert_eq!(f.writes_seen(), writes, "statuses move with the clock, not with writes");

    // The expiring lists of the numbers and of the filter language read the same columns.
    let n = block(f.svc.membership_numbers(&f.admin, Some(NOW.date()))).unwrap();
    // Members: every running one (the frozen ones too). Ending within 7 days: ends_today; within 30:
    // also ends_in_14 and ends_in_15.
    assert_eq!((n.active_members, n.expiring_7_days, n.expiring_30_days), (6, 1, 3));
}

/// The tenant's policy decides a check-in: allowed, warned, refused (recorded only when the tenant
/// logs refusals, else nothing is written); by id or card; a visit allowance is counted.
pub fn check_in_policy_decides_and_writes_only_what_it_logs<S: Store>(store: S) {
    let f = Fixture::new(store);
    let plan = block(f.svc.create(
        &f.admin,
        "plan",
        &obj(json!({"name": "Two visits", "duration_days": 30, "price": "20.00", "visit_allowance": 2})),
    ))
    .unwrap();
    let ann = client(&f, "Ann", Some("1001"));
    let m = membership(&f, &ann, -5, 24, json!({"plan_id": plan.id.to_string()}));
    let by_card = |card: &str| CheckInInput {
        card: Some(card.into()),
        ..Default::default()
    };
    let by_id = |id: Id| CheckInInput {
        contact_id: Some(id),
        ..Default::default()
    };

    let a = block(f.svc.check_in(&f.staff, &by_card("1001"))).unwrap();
    assert_eq!(
        (a.outcome.as_str(), a.status.as_str(), a.name.as_str(), a.visits_left),
        ("allowed", "active", "Ann", Some(1))
    );
    assert_eq!((a.contact_id, a.membership_id), (ann.id, Some(m.id)));
    let rec = block(f.svc.get(&f.admin, "check_in", a.check_in_id.unwrap())).unwrap();
    assert_eq!(rec.get("at"), Some(&Value::Timestamp(NOW)));
    assert_eq!(rec.id_of("checked_in_by"), f.staff.user_id);
    assert_eq!(rec.str("checked_in_as"), Some("staff"));
    let b = block(f.svc.check_in(&f.staff, &by_id(ann.id))).unwrap();
    assert_eq!((b.outcome.as_str(), b.visits_left), ("allowed", Some(0)));
    let used = block(f.svc.get(&f.admin, "membership", m.id)).unwrap();
    assert_eq!(used.get("visits_used"), Some(&Value::Int(2)));

    // Used up: refused and recorded (the default logs refusals) without using a visit.
    let c = block(f.svc.check_in(&f.staff, &by_id(ann.id))).unwrap();
    assert_eq!((c.outcome.as_str(), c.visits_left), ("refused", Some(0)));
    assert!(c.reason.unwrap().contains("visits"));
    let logged = block(f.svc.get(&f.admin, "check_in", c.check_in_id.unwrap())).unwrap();
    assert_eq!(logged.str("outcome"), Some("refused"));
    assert_eq!(
        block(f.svc.get(&f.admin, "membership", m.id))
            .unwrap()
            .get("visits_used"),
        Some(&Value::Int(2))
    );

    // A tenant that does not log refusals: nothing is written at all.
    set_org(&f, json!({"log_refused_check_ins": false}));
    let seen = (f.writes_seen(), f.count("check_in"));
    let d = block(f.svc.check_in(&f.staff, &by_id(ann.id))).unwrap();
    assert_eq!((d.outcome.as_str(), d.check_in_id), ("refused", None));
    assert_eq!((f.writes_seen(), f.count("check_in")), seen);

    // A lenient tenant warns instead, and the visit counts.
    set_org(&f, json!({"check_in_visits_used_up": "warn"}));
    let e = block(f.svc.check_in(&f.staff, &by_id(ann.id))).unwrap();
    assert_eq!((e.outcome.as_str(), e.visits_left), ("warned", Some(-1)));

    // Expired: warned by default; refused when the tenant says so. No membership: refused.
    let bob = client(&f, "Bob", Some("1002"));
    membership(&f, &bob, -60, -1, json!({}));
    let w = block(f.svc.check_in(&f.staff, &by_card("1002"))).unwrap();
    assert_eq!(
        (w.outcome.as_str(), w.status.as_str(), w.visits_left),
        ("warned", "expired", None)
    );
    assert_eq!(w.ends_on.as_deref(), Some(day(-1).as_str()));
    set_org(&f, json!({"check_in_expired": "refuse"}));
    let cy = client(&f, "Cy", Some("1003"));
    let seen = (f.writes_seen(), f.count("check_in"));
    let r = block(f.svc.check_in(&f.staff, &by_card("1002"))).unwrap();
    assert_eq!((r.outcome.as_str(), r.check_in_id), ("refused", None));
    let n = block(f.svc.check_in(&f.staff, &by_id(cy.id))).unwrap();
    assert_eq!(
        (n.outcome.as_str(), n.status.as_str(), n.membership_id),
        ("refused", "none", None)
    );
    assert_eq!((f.writes_seen(), f.count("check_in")), seen);

    // Frozen: refused by default.
    let dee = client(&f, "Dee", Some("1004"));
    let dm = membership(&f, &dee, -10, 40, json!({}));
    let input = obj(json!({"starts_on": day(0), "ends_on": day(6), "reason": "travel"}));
    block(f.svc.freeze_membership(&f.manager, dm.id, dm.version, &input)).unwrap();
    let fr = block(f.svc.check_in(&f.staff, &by_id(dee.id))).unwrap();
    assert_eq!((fr.outcome.as_str(), fr.status.as_str()), ("refused", "frozen"));

    // Bad input names the field and writes nothing; an unknown card or another tenant's client is
    // not found; a role without check-ins is forbidden.
    let seen = f.writes_seen();
    let both = CheckInInput {
        contact_id: Some(ann.id),
        card: Some("1001".into()),
        location_id: None,
    };
    let err = block(f.svc.check_in(&f.staff, &both)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("card".into(), codes::INVALID_FORMAT.into())]);
    let err = block(f.svc.check_in(&f.staff, &CheckInInput::default())).unwrap_err();
    assert_eq!(codes_of(&err), vec![("contact_id".into(), codes::REQUIRED.into())]);
    assert_eq!(
        block(f.svc.check_in(&f.staff, &by_card("9999"))).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.check_in(&f.sales_a, &by_id(ann.id))).unwrap_err().code(),
        "forbidden"
    );
    let elsewhere = CheckInInput {
        contact_id: Some(ann.id),
        card: None,
        location_id: Some(fixed_id(7)),
    };
    let err = block(f.svc.check_in(&f.staff, &elsewhere)).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("location_id".into(), codes::UNKNOWN_REFERENCE.into())]
    );
    assert_eq!(f.writes_seen(), seen);
}

/// Renewal continues from the end date for the plan's duration; a client's memberships that have
/// not ended run back to back; a freeze moves the end only when the tenant's policy says so; the
/// client's status follows every write.
pub fn renewals_and_freezes_keep_the_client_standing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let plan = block(f.svc.create(
        &f.admin,
        "plan",
        &obj(json!({"name": "Monthly", "duration_days": 30, "price": "39.00"})),
    ))
    .unwrap();
    let kai = client(&f, "Kai", None);
    let m = membership(
        &f,
        &kai,
        -20,
        5,
        json!({"plan_id": plan.id.to_string(), "price_paid": "39.00"}),
    );
    let status = || {
        block(f.svc.get(&f.admin, "contact", kai.id))
            .unwrap()
            .str("membership")
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(), "expiring");

    let r = block(f.svc.renew_membership(&f.manager, m.id, m.version, &Map::new())).unwrap();
    assert_eq!(
        (r.get("starts_on"), r.get("ends_on")),
        (
            Some(&Value::Date(NOW.plus_days(6).date())),
            Some(&Value::Date(NOW.plus_days(35).date()))
        )
    );
    assert_eq!(
        (r.id_of("plan_id"), r.str("plan_name")),
        (Some(plan.id), Some("Monthly"))
    );
    assert_eq!(r.get("price_paid").map(Value::to_json), Some(json!("39.00")));
    assert_eq!(status(), "active", "renewed: the run ends in 35 days");
    let contact = block(f.svc.get(&f.admin, "contact", kai.id)).unwrap();
    assert_eq!(
        contact.get("membership_ends_on"),
        Some(&Value::Date(NOW.plus_days(35).date()))
    );

    // A stale version, a cancelled membership, an unknown input field: refused, nothing written.
    let seen = f.writes_seen();
    assert_eq!(
        block(f.svc.renew_membership(&f.manager, m.id, m.version + 1, &Map::new()))
            .unwrap_err()
            .code(),
        "conflict"
    );
    let err = block(
        f.svc
            .renew_membership(&f.manager, m.id, m.version, &obj(json!({"ends_on": day(1)}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("ends_on".into(), codes::UNKNOWN_FIELD.into())]);
    assert_eq!(
        block(f.svc.renew_membership(&f.staff, m.id, m.version, &Map::new()))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    // A membership after a gap while one runs: refused (the mirror would go stale).
    let input = json!({"contact_id": kai.id.to_string(), "starts_on": day(50), "ends_on": day(80)});
    let err = block(f.svc.create(&f.admin, "membership", &obj(input))).unwrap_err();
    assert_eq!(codes_of(&err), vec![("starts_on".into(), codes::MEMBERSHIP_GAP.into())]);
    assert_eq!(f.writes_seen(), seen);

    // Freezing: extends by default; a tenant that does not extend keeps the end date; an expired
    // membership is not frozen; staff may not freeze.
    let r = block(f.svc.get(&f.admin, "membership", r.id)).unwrap();
    let frozen = block(f.svc.freeze_membership(
        &f.manager,
        r.id,
        r.version,
        &obj(json!({"starts_on": day(10), "ends_on": day(19)})),
    ))
    .unwrap();
    assert_eq!(frozen.get("ends_on"), Some(&Value::Date(NOW.plus_days(45).date())));
    assert_eq!(frozen.get("frozen_days"), Some(&Value::Int(10)));
    let err = block(f.svc.freeze_membership(
        &f.manager,
        r.id,
        frozen.version,
        &obj(json!({"starts_on": day(25), "ends_on": day(26)})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("membership_freezes".into(), codes::PENDING_FREEZE.into())]
    );
    assert_eq!(
        block(f.svc.freeze_membership(
            &f.staff,
            r.id,
            frozen.version,
            &obj(json!({"starts_on": day(25), "ends_on": day(26)}))
        ))
        .unwrap_err()
        .code(),
        "forbidden"
    );
    f.clock.set(NOW.plus_days(12));
    assert_eq!(status(), "frozen");
    f.clock.set(NOW);

    set_org(&f, json!({"membership_freeze_extends": false}));
    let lia = client(&f, "Lia", None);
    let lm = membership(&f, &lia, -10, 20, json!({}));
    let kept = block(f.svc.freeze_membership(
        &f.manager,
        lm.id,
        lm.version,
        &obj(json!({"starts_on": day(0), "ends_on": day(3)})),
    ))
    .unwrap();
    assert_eq!(kept.get("ends_on"), Some(&Value::Date(NOW.plus_days(20).date())));
    let old = membership(&f, &client(&f, "Old", None), -60, -30, json!({}));
    let err = block(f.svc.freeze_membership(
        &f.manager,
        old.id,
        old.version,
        &obj(json!({"starts_on": day(0), "ends_on": day(3)})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("status".into(), codes::INVALID_TRANSITION.into())]
    );

    // Cancelling the only membership: the client is cancelled; deleting it: none.
    let lm = block(f.svc.get(&f.admin, "membership", lm.id)).unwrap();
    let lm = block(f.svc.update(
        &f.admin,
        "membership",
        lm.id,
        lm.version,
        &obj(json!({"cancelled": true})),
    ))
    .unwrap();
    let lia_status = || {
        block(f.svc.get(&f.admin, "contact", lia.id))
            .unwrap()
            .str("membership")
            .unwrap()
            .to_owned()
    };
    assert_eq!(lia_status(), "cancelled");
    block(f.svc.delete(&f.admin, "membership", lm.id, lm.version)).unwrap();
    assert_eq!(lia_status(), "none");

    // The numbers count the renewal in its month; the owner sees them, the kiosk does not.
    let n = block(f.svc.membership_numbers(&f.manager, Some(NOW.plus_days(40).date()))).unwrap();
    let renewals: u64 = n.months.iter().map(|m| m.renewals).sum();
    assert_eq!(renewals, 1);
    assert_eq!(
        block(f.svc.membership_numbers(&kiosk(&f), Some(NOW.date())))
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

/// The kiosk checks clients in and reads their name and status, nothing else; staff change only a
/// client's notes and language, check in, and are told which field they may not write.
pub fn kiosk_and_staff_keep_to_the_front_desk<S: Store>(store: S) {
    let f = Fixture::new(store);
    let kiosk = kiosk(&f);
    let mia = client(&f, "Mia", Some("2001"));
    membership(&f, &mia, -10, 100, json!({"price_paid": "99.00"}));

    let a = block(f.svc.check_in(
        &kiosk,
        &CheckInInput {
            card: Some("2001".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!((a.outcome.as_str(), a.status.as_str()), ("allowed", "active"));
    let rec = block(f.svc.get(&f.admin, "check_in", a.check_in_id.unwrap())).unwrap();
    assert_eq!(rec.str("checked_in_as"), Some("kiosk"));

    let seen = block(f.svc.get(&kiosk, "contact", mia.id)).unwrap();
    assert_eq!(
        (
            seen.str("first_name"),
            seen.str("membership"),
            seen.get("email"),
            seen.get("external_id")
        ),
        (Some("Mia"), Some("active"), None, None)
    );
    let bad = ListRequest {
        q: Some("email:mia@example.com".into()),
        ..Default::default()
    };
    assert!(
        block(f.svc.list(&kiosk, "contact", &bad)).is_err(),
        "hidden fields don't filter"
    );
    assert_eq!(f.ids(&kiosk, "contact", "membership:active"), [mia.id]);
    for entity in ["membership", "check_in", "plan", "lead", "activity"] {
        let err = block(f.svc.list(&kiosk, entity, &ListRequest::default())).unwrap_err();
        assert_eq!(err.code(), "forbidden", "{entity}");
    }
    let patch = obj(json!({"notes": "hi"}));
    assert_eq!(
        block(f.svc.update(&kiosk, "contact", mia.id, seen.version, &patch))
            .unwrap_err()
            .code(),
        "forbidden"
    );

    // Staff: notes and language only, named when refused; they see plans but not prices.
    let c = block(f.svc.update(
        &f.staff,
        "contact",
        mia.id,
        seen.version,
        &obj(json!({"notes": "left a headset", "language": "de"})),
    ))
    .unwrap();
    assert_eq!(
        (c.str("notes"), c.str("language")),
        (Some("left a headset"), Some("de"))
    );
    let before = f.writes_seen();
    for field in ["first_name", "email", "external_id", "phone"] {
        let err = block(f.svc.update(
            &f.staff,
            "contact",
            mia.id,
            c.version,
            &obj(json!({field: "x", "notes": "y"})),
        ))
        .unwrap_err();
        assert_eq!(err, Error::forbidden("update", "contact", vec![field.into()]));
    }
    let err = block(f.svc.update(
        &f.staff,
        "contact",
        mia.id,
        c.version,
        &obj(json!({"membership_ends_on": day(1)})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert_eq!(f.writes_seen(), before);
    let plan = block(f.svc.create(
        &f.admin,
        "plan",
        &obj(json!({"name": "Day pass", "duration_days": 1, "price": "5.00"})),
    ))
    .unwrap();
    let p = block(f.svc.get(&f.staff, "plan", plan.id)).unwrap();
    assert_eq!((p.str("name"), p.get("price")), (Some("Day pass"), None));
    let ok = block(f.svc.check_in(
        &f.staff,
        &CheckInInput {
            contact_id: Some(mia.id),
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(ok.outcome, "allowed");
    assert_eq!(
        block(f.svc.list(&f.staff, "check_in", &ListRequest::default()))
            .unwrap()
            .items
            .len(),
        2
    );
}

/// A CSV import derives the clients' standing from their memberships as the create use case does
/// (two rows of one client in one chunk included), and refuses, in row order, the row whose
/// membership would leave a gap before the current one ends; `refresh_rollups` (the repair for
/// databases written before) then finds nothing to change, and only for whoever may update them.
pub fn imported_memberships_derive_the_clients_standing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let ann = client(&f, "Ann", None);
    let bob = client(&f, "Bob", None);
    let cy = client(&f, "Cy", None);
    let rows = [
        (ann.id, -10, 5),
        (bob.id, -40, -2),
        (cy.id, -10, 5),
        // Continues Cy's current membership: accepted, the run ends later.
        (cy.id, 6, 30),
        // Starts after a gap while Cy's run has not ended: refused.
        (cy.id, 40, 60),
    ];
    let mut csv = String::from("contact_id,starts_on,ends_on\n");
    for (id, s, e) in rows {
        csv.push_str(&format!("{id},{},{}\n", day(s), day(e)));
    }
    let opts = |mode| crate::service::ImportOptions {
        mode,
        ..Default::default()
    };
    let all = block(f.svc.import_csv(
        &f.admin,
        "membership",
        csv.as_bytes(),
        &opts(crate::service::ImportMode::AllOrNothing),
    ))
    .unwrap();
    assert!(!all.applied, "{all:?}");
    assert_eq!(all.errors.len(), 1, "{all:?}");
    let e = &all.errors[0];
    assert_eq!((e.row, e.errors[0].path.as_str()), (5, "starts_on"), "{all:?}");
    assert_eq!(e.errors[0].code, "membership_gap", "{all:?}");
    let report = block(f.svc.import_csv(
        &f.admin,
        "membership",
        csv.as_bytes(),
        &opts(crate::service::ImportMode::ValidRowsOnly),
    ))
    .unwrap();
    assert_eq!((report.created, report.applied), (4, true), "{report:?}");
    let mirror = |c: &Record| {
        let got = block(f.svc.get(&f.admin, "contact", c.id)).unwrap();
        (
            got.str("membership").unwrap_or_default().to_owned(),
            got.get(client::MIRRORED[1]).cloned(),
        )
    };
    let end = |d: i64| Some(Value::Date(NOW.plus_days(d).date()));
    assert_eq!(mirror(&ann), ("expiring".into(), end(5)));
    assert_eq!(mirror(&bob), ("expired".into(), end(-2)));
    assert_eq!(
        mirror(&cy),
        ("active".into(), end(30)),
        "both of Cy's rows in one chunk"
    );
    assert_eq!(
        block(f.svc.refresh_rollups(&f.sales_a, "contact", &[ann.id]))
            .unwrap_err()
            .code(),
        "not_found",
        "outside the sales user's scope"
    );
    let again = block(f.svc.refresh_rollups(&f.admin, "contact", &[ann.id, bob.id, cy.id])).unwrap();
    assert_eq!(again, 0, "the import derived what the refresh would");
}

/// `refresh_rollups` reads each feeding type for all its clients at once, in pages of
/// [`crate::service::REFRESH_PAGE`] rows along the index on the client (a client's rows may straddle
/// two pages): every client gets exactly the standing its memberships give, whatever page they came
/// in, and the next refresh finds nothing to change. The import derives each client's standing as of
/// its day; ten days on, the clients whose current run ended since then show their cancelled
/// renewal once refreshed.
pub fn refreshing_many_clients_reads_their_memberships_in_pages<S: Store>(store: S) {
    let f = Fixture::new(store);
    let all = crate::service::ImportOptions {
        mode: crate::service::ImportMode::AllOrNothing,
        ..Default::default()
    };
    const CLIENTS: usize = 300;
    let mut csv = String::from("first_name,email,external_id\n");
    for i in 0..CLIENTS {
        csv.push_str(&format!("Client{i},client{i}@example.com,R{i:04}\n"));
    }
    let r = block(f.svc.import_csv(&f.admin, "contact", csv.as_bytes(), &all)).unwrap();
    assert_eq!(r.created as usize, CLIENTS, "{r:?}");
    let req = ListRequest {
        sort: vec![crate::query::SortKey::asc("external_id")],
        limit: Some(500),
        ..Default::default()
    };
    let clients: Vec<Record> = block(f.svc.list(&f.admin, "contact", &req))
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.str("external_id").is_some_and(|x| x.starts_with('R')))
        .collect();
    assert_eq!(clients.len(), CLIENTS);

    // Five shapes of history, with the current membership's end `e` spread around today. Each client's
    // expected mirror on day `t`: (starts_on, ends_on, cancelled), None for no membership.
    let mut csv = String::from("contact_id,starts_on,ends_on,cancelled\n");
    let mut shapes: Vec<(usize, i64)> = Vec::new();
    let mut rows = 0;
    for (i, c) in clients.iter().enumerate() {
        let e = (i % 40) as i64 - 5;
        let mut m = |s: i64, end: i64, cancelled: bool| {
            csv.push_str(&format!("{},{},{},{cancelled}\n", c.id, day(s), day(end)));
            rows += 1;
        };
        match i % 5 {
            // An old membership, the current one and its renewal, touching: one run.
            0 => {
                m(-100, -50, false);
                m(-49, e, false);
                m(e + 1, e + 30, false);
            }
            // The same with the renewal cancelled.
            1 => {
                m(-100, -50, false);
                m(-49, e, false);
                m(e + 1, e + 30, true);
            }
            // One membership, ended.
            2 => m(-100, -50, false),
            // None at all.
            3 => {}
            // An ended membership and an upcoming one after a gap.
            _ => {
                m(-100, -50, false);
                m(10, 40, false);
            }
        }
        shapes.push((i % 5, e));
    }
    let want = |(shape, e): (usize, i64), t: i64| match shape {
        0 => Some((-100, e + 30, false)),
        // The run ends at `e`; once it has ended, the cancelled renewal ended later and is what
        // the client shows.
        1 if e >= t => Some((-100, e, false)),
        1 => Some((e + 1, e + 30, true)),
        2 => Some((-100, -50, false)),
        3 => None,
        // The upcoming run.
        _ => Some((10, 40, false)),
    };
    assert!(rows > crate::service::REFRESH_PAGE as usize, "more rows than one page");
    let r = block(f.svc.import_csv(&f.admin, "membership", csv.as_bytes(), &all)).unwrap();
    assert_eq!(r.created as usize, rows, "{r:?}");

    let date = |d: i64| Some(Value::Date(NOW.plus_days(d).date()));
    let check = |t: i64| {
        for (c, shape) in clients.iter().zip(&shapes) {
            let got = block(f.svc.get(&f.admin, "contact", c.id)).unwrap();
            let mirror: Vec<Option<Value>> = client::MIRRORED.iter().map(|m| got.get(m).cloned()).collect();
            let want: Vec<Option<Value>> = match want(*shape, t) {
                Some((s, e, cancelled)) => vec![date(s), date(e), Some(Value::Bool(cancelled)), None, None],
                None => vec![None; client::MIRRORED.len()],
            };
            let want: Vec<Option<Value>> = want.into_iter().map(|v| v.filter(|v| !v.is_null())).collect();
            let mirror: Vec<Option<Value>> = mirror.into_iter().map(|v| v.filter(|v| !v.is_null())).collect();
            assert_eq!(mirror, want, "day {t}: {}", got.str("external_id").unwrap_or_default());
        }
    };
    check(0);
    let ids: Vec<Id> = clients.iter().map(|c| c.id).collect();
    assert_eq!(
        block(f.svc.refresh_rollups(&f.admin, "contact", &ids)).unwrap(),
        0,
        "the import derived every client's standing"
    );
    f.clock.advance_micros(10 * 86_400_000_000);
    let moved = shapes.iter().filter(|s| want(**s, 0) != want(**s, 10)).count() as u64;
    assert!(moved > 0);
    assert_eq!(block(f.svc.refresh_rollups(&f.admin, "contact", &ids)).unwrap(), moved);
    check(10);
    assert_eq!(
        block(f.svc.refresh_rollups(&f.admin, "contact", &ids)).unwrap(),
        0,
        "nothing left to change"
    );
}
