//! Follow-ups (computed views that filter on every store, set by activities in their change set) and
//! due events (fired once per occurrence, to readers of the record only, not again after a restart,
//! and once across two instances over one database).

use super::*;
use crate::clock::{FixedClock, SeqIds};
use crate::due::DueItem;
use crate::error::codes;
use crate::value::Value;

const HOUR: i64 = 3_600_000_000;

fn at(h: i64) -> Timestamp {
    Timestamp(NOW.0 + h * HOUR)
}

fn kinds_seen<S: Store>(f: &Fixture<S>, actor: &Actor, suffix: &str) -> Vec<(String, Option<Id>)> {
    block(f.svc.events_since(actor, 0, 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.ends_with(suffix))
        .map(|e| (e.kind, e.entity_id))
        .collect()
}

fn fired_for(items: &[DueItem], id: Id) -> Vec<&str> {
    items.iter().filter(|i| i.id == id).map(|i| i.kind).collect()
}

/// `followup:due_today` / `overdue` / `upcoming` / `none` on leads and contacts, as the clock moves;
/// an activity sets its record's next follow-up in its own change set; a reader who may not update
/// the record cannot set it through an activity.
pub fn followups_are_computed_views_set_by_activities<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let other = f.lead(&f.sales_a, json!({"first_name": "Bo"}));
    let (audit0, _) = f.writes_seen();
    let call = json!({"kind": "call", "direction": "outbound", "lead_id": lead.id.to_string(),
        "next_followup_at": at(3).to_rfc3339(), "followup_owner_id": f.sales_a.user_id.unwrap().to_string()});
    let act = block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    assert_eq!(act.get("next_followup_at").and_then(Value::as_timestamp), Some(at(3)));
    let read = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    assert_eq!(read.get("next_followup_at").and_then(Value::as_timestamp), Some(at(3)));
    assert_eq!(read.id_of("followup_owner_id"), f.sales_a.user_id);
    assert_eq!(read.version, lead.version + 1, "one write of the lead");
    // One change set: the activity's create and the lead's update, each audited.
    let (audit1, _) = f.writes_seen();
    assert_eq!(audit1 - audit0, 2);
    let ids = |q: &str| f.ids(&f.sales_a, "lead", q);
    assert_eq!(ids("followup:due_today"), vec![lead.id]);
    assert!(ids("followup:overdue").is_empty());
    assert_eq!(ids("followup:none"), vec![other.id]);
    assert_eq!(ids("followup:due_today OR followup:upcoming").len(), 1);

    // A contact carries follow-ups too.
    let contact = block(f.svc.create(&f.sales_a, "contact", &obj(json!({"first_name": "Cy"})))).unwrap();
    let email = json!({"kind": "email", "contact_id": contact.id.to_string(), "next_followup_at": at(30).to_rfc3339()});
    block(f.svc.log_activity(&f.sales_a, &obj(email))).unwrap();
    assert_eq!(f.ids(&f.sales_a, "contact", "followup:upcoming"), vec![contact.id]);

    // Two days on: overdue. The computed value reads the same.
    f.clock.set(at(48));
    assert_eq!(ids("followup:overdue"), vec![lead.id]);
    assert_eq!(f.ids(&f.sales_a, "contact", "followup:overdue"), vec![contact.id]);
    let read = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    let idx = read.entity.computed_def("followup").unwrap().0;
    assert_eq!(read.computed[idx], Value::Text("overdue".into()));

    // Someone who may not update the lead (sales on the other team cannot even see it) sets nothing.
    let (audit2, events2) = f.writes_seen();
    let sneaky = json!({"kind": "note", "lead_id": lead.id.to_string(), "next_followup_at": at(50).to_rfc3339()});
    assert!(block(f.svc.log_activity(&f.sales_b, &obj(sneaky))).is_err());
    assert_eq!(f.writes_seen(), (audit2, events2), "nothing written");
    let bad = json!({"kind": "note", "lead_id": lead.id.to_string(), "next_followup_at": "tomorrow"});
    let err = block(f.svc.log_activity(&f.sales_a, &obj(bad))).unwrap_err();
    assert_eq!(err.field_errors()[0].path, "next_followup_at");
    // A follow-up is never dropped silently: a company carries none, an owner needs a time.
    let company = block(f.svc.create(&f.sales_a, "company", &obj(json!({"name": "Acme"})))).unwrap();
    let on_company =
        json!({"kind": "call", "company_id": company.id.to_string(), "next_followup_at": at(50).to_rfc3339()});
    let err = block(f.svc.log_activity(&f.sales_a, &obj(on_company))).unwrap_err();
    assert_eq!(codes_of(&err), vec![("lead_id".into(), codes::REQUIRED.into())]);
    let owner_only = json!({"kind": "call", "lead_id": lead.id.to_string(), "followup_owner_id": f.sales_a.user_id.unwrap().to_string()});
    let err = block(f.svc.log_activity(&f.sales_a, &obj(owner_only))).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("next_followup_at".into(), codes::REQUIRED.into())]
    );
}

/// A CSV import of activities sets the next follow-up as logging them one by one does (the same
/// rule, `followup::planned`): on the lead, else the contact, in the import's change set, audited,
/// one write per record with the last row's plan; a refused import and a dry run set nothing.
pub fn imported_activities_set_follow_ups_as_logged_ones<S: Store>(store: S) {
    use crate::service::{ImportMode, ImportOptions};
    let f = Fixture::new(store);
    let ann = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let bo = f.lead(&f.sales_a, json!({"first_name": "Bo"}));
    let cy = block(f.svc.create(&f.sales_a, "contact", &obj(json!({"first_name": "Cy"})))).unwrap();
    let owner = f.sales_b.user_id.unwrap();
    let import = |csv: String, mode: ImportMode| {
        let opts = ImportOptions {
            mode,
            ..Default::default()
        };
        block(f.svc.import_csv(&f.manager, "activity", csv.as_bytes(), &opts)).unwrap()
    };
    let lead = |id: Id| block(f.svc.get(&f.admin, "lead", id)).unwrap();
    let followup_at = |r: &Record| r.get("next_followup_at").and_then(Value::as_timestamp);
    let header = "kind,direction,lead_id,contact_id,next_followup_at,followup_owner_id\n";

    // A dry run and a refused all-or-nothing import (one bad row) set nothing.
    let planned = format!("{header}call,outbound,{},,{},\n", ann.id, at(3).to_rfc3339());
    let before = f.writes_seen();
    let r = import(planned.clone(), ImportMode::DryRun);
    assert_eq!((r.valid, r.applied), (1, false), "{r:?}");
    let r = import(
        format!("{planned}call,outbound,{},,not a time,\n", bo.id),
        ImportMode::AllOrNothing,
    );
    assert_eq!((r.invalid, r.applied), (1, false), "{r:?}");
    assert_eq!(f.writes_seen(), before, "nothing written");
    assert_eq!(followup_at(&lead(ann.id)), None);

    // Two rows plan Ann's follow-up (the later row wins, one write), one plans Cy's with an owner,
    // Bo's call plans none.
    let csv = format!(
        "{header}call,outbound,{ann},,{t3},\nemail,outbound,{ann},,{t30},{owner}\ncall,inbound,{bo},,,\nnote,,,{cy},{t5},{owner}\n",
        ann = ann.id,
        bo = bo.id,
        cy = cy.id,
        t3 = at(3).to_rfc3339(),
        t30 = at(30).to_rfc3339(),
        t5 = at(5).to_rfc3339(),
    );
    let (audit0, _) = f.writes_seen();
    let r = import(csv, ImportMode::AllOrNothing);
    assert_eq!((r.created, r.invalid, r.applied), (4, 0, true), "{r:?}");
    let a = lead(ann.id);
    assert_eq!(followup_at(&a), Some(at(30)));
    assert_eq!(a.id_of("followup_owner_id"), Some(owner));
    assert_eq!(a.version, ann.version + 1, "one write of the lead");
    let b = lead(bo.id);
    assert_eq!(
        (followup_at(&b), b.version),
        (None, bo.version),
        "Bo's call planned nothing"
    );
    let c = block(f.svc.get(&f.admin, "contact", cy.id)).unwrap();
    assert_eq!(
        (followup_at(&c), c.id_of("followup_owner_id")),
        (Some(at(5)), Some(owner))
    );
    // Audited: four activities and the two updates.
    let (audit1, _) = f.writes_seen();
    assert!(audit1 - audit0 >= 6, "{} audit entries", audit1 - audit0);
    assert_eq!(f.ids(&f.sales_a, "lead", "followup:upcoming"), vec![ann.id]);
    assert_eq!(f.ids(&f.sales_a, "contact", "followup:due_today"), vec![cy.id]);

    // A later import plans again on the record as it is now (its version moved).
    let again = format!("{header}call,outbound,{},,{},\n", ann.id, at(-2).to_rfc3339());
    assert!(import(again, ImportMode::AllOrNothing).applied);
    let a2 = lead(ann.id);
    assert_eq!((followup_at(&a2), a2.version), (Some(at(-2)), a.version + 1));
}

/// "My follow-ups today": what the user owes (the follow-up owner, else the record's owner) that
/// is overdue or due today, leads and contacts together, earliest first, within their read scope.
pub fn my_followups_are_what_the_user_owes_due_today_or_overdue<S: Store>(store: S) {
    let f = Fixture::new(store);
    let (me, manager) = (f.sales_a.user_id.unwrap(), f.manager.user_id.unwrap());
    let lead = |first: &str, h: i64, followup_owner: Option<Id>| {
        let mut input = json!({"first_name": first, "next_followup_at": at(h).to_rfc3339()});
        if let Some(o) = followup_owner {
            input["followup_owner_id"] = json!(o.to_string());
        }
        f.lead(&f.sales_a, input).id
    };
    let overdue = lead("Overdue", -30, None);
    let today = lead("Today", 3, None);
    let _later = lead("Later", 60, None);
    let owed_by_manager = lead("Manager's", 1, Some(manager));
    let _none = f.lead(&f.sales_a, json!({"first_name": "None"}));
    let contact = block(f.svc.create(
        &f.sales_a,
        "contact",
        &obj(json!({"first_name": "Cy", "next_followup_at": at(-1).to_rfc3339()})),
    ))
    .unwrap()
    .id;
    // Another team's lead whose follow-up names me: I may not read it, so it is not listed.
    let theirs = f.lead(
        &f.sales_b,
        json!({"first_name": "Theirs", "next_followup_at": at(2).to_rfc3339(), "followup_owner_id": me.to_string()}),
    );
    let mine = |a: &Actor| -> Vec<(String, Id)> {
        block(f.svc.my_followups(a, None))
            .unwrap()
            .into_iter()
            .map(|r| (r.entity.name.to_owned(), r.id))
            .collect()
    };
    assert_eq!(
        mine(&f.sales_a),
        vec![
            ("lead".to_owned(), overdue),
            ("contact".to_owned(), contact),
            ("lead".to_owned(), today)
        ]
    );
    let first = block(f.svc.my_followups(&f.sales_a, Some(1))).unwrap();
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), vec![overdue]);
    assert_eq!(
        crate::entity::followup::status_of(&first[0]),
        Some(crate::entity::followup::FollowupStatus::Overdue)
    );
    assert_eq!(mine(&f.manager), vec![("lead".to_owned(), owed_by_manager)]);
    assert!(
        mine(&f.sales_b).is_empty(),
        "{:?}: owed by me, not by its owner",
        theirs.id
    );
    assert!(mine(&f.admin).is_empty(), "the system owes none");
    // Tomorrow the due-today one is overdue and the upcoming one is still to come.
    f.clock.set(at(24));
    assert_eq!(mine(&f.sales_a).len(), 3);
}

fn hot_model<S: Store>(f: &Fixture<S>) {
    // Referrals (20 fit points) are hot under this model.
    let mut m = crate::scoring::default_model();
    m.name = "Referrals are hot".into();
    for (t, min) in m.tiers.iter_mut().zip([20, 10, 0]) {
        t.min_score = min;
    }
    let draft = block(f.svc.create(
        &f.manager,
        "scoring_model",
        &obj(json!({"name": "Referrals are hot", "definition": serde_json::to_value(&m).unwrap()})),
    ))
    .unwrap();
    block(f.svc.publish_model(&f.manager, draft.id, 1)).unwrap();
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(f.svc.update(
        &f.admin,
        "organization",
        f.tenant,
        org.version,
        &obj(json!({"hot_lead_untouched_hours": 4})),
    ))
    .unwrap();
}

/// A lead that becomes hot waits for a touch; after the tenant's hours it is in `hot_status:untouched`
/// and falls due once (`lead.hot_untouched`); an inbound call is no touch, an outbound one is.
pub fn untouched_hot_leads_are_a_view_and_fall_due_once<S: Store>(store: S) {
    let f = Fixture::new(store);
    hot_model(&f);
    let waiting = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "referral"}));
    assert_eq!(waiting.str("temperature"), Some("hot"));
    let touched = f.lead(&f.sales_a, json!({"first_name": "Bo", "source": "referral"}));
    let cold = f.lead(&f.sales_a, json!({"first_name": "Cy", "source": "other"}));
    f.clock.set(at(1));
    let call = |id: Id, dir: &str| {
        let a = json!({"kind": "call", "direction": dir, "lead_id": id.to_string()});
        block(f.svc.log_activity(&f.sales_a, &obj(a))).unwrap();
    };
    call(touched.id, "outbound");
    call(waiting.id, "inbound");
    let ids = |q: &str| f.ids(&f.sales_a, "lead", q);
    assert_eq!(ids("hot_status:waiting"), vec![waiting.id]);
    assert_eq!(ids("hot_status:touched"), vec![touched.id]);
    assert_eq!(ids("hot_status:not_hot"), vec![cold.id]);
    assert!(ids("hot_status:untouched").is_empty());
    assert!(fired_for(&block(f.svc.fire_due(f.tenant)).unwrap(), waiting.id).is_empty());

    f.clock.set(at(5));
    assert_eq!(ids("hot_status:untouched"), vec![waiting.id]);
    let fired = block(f.svc.fire_due(f.tenant)).unwrap();
    assert_eq!(fired_for(&fired, waiting.id), vec!["hot_untouched"]);
    assert!(fired_for(&fired, touched.id).is_empty());
    assert!(block(f.svc.fire_due(f.tenant)).unwrap().is_empty(), "fired once");
    assert_eq!(
        kinds_seen(&f, &f.sales_a, "hot_untouched"),
        vec![("lead.hot_untouched".to_owned(), Some(waiting.id))]
    );
    assert!(
        kinds_seen(&f, &f.sales_b, "hot_untouched").is_empty(),
        "sales on the other team"
    );
    call(waiting.id, "outbound");
    assert!(ids("hot_status:untouched").is_empty());
    assert_eq!(ids("hot_status:touched").len(), 2);

    // An outbound call imported from a phone system touches as a logged one does; an inbound one
    // does not.
    let di = f.lead(&f.sales_a, json!({"first_name": "Di", "source": "referral"}));
    let ed = f.lead(&f.sales_a, json!({"first_name": "Ed", "source": "referral"}));
    f.clock.set(at(6));
    let csv = format!(
        "kind,direction,lead_id\ncall,outbound,{}\ncall,inbound,{}\n",
        di.id, ed.id
    );
    let opts = crate::service::ImportOptions {
        mode: crate::service::ImportMode::AllOrNothing,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "activity", csv.as_bytes(), &opts)).unwrap();
    assert_eq!((r.created, r.applied), (2, true), "{r:?}");
    assert!(ids("hot_status:touched").contains(&di.id));
    assert_eq!(ids("hot_status:waiting"), vec![ed.id]);
}

/// Follow-ups falling due and memberships starting to expire fire once each: not again on the
/// next pass, not again from a restarted service over the same store, anew when the follow-up is
/// set again; the event reaches readers of the record only.
pub fn due_events_fire_once_and_only_to_readers<S: Store>(store: S) {
    let store = Arc::new(store);
    let f = Fixture::new(store.clone());
    let mine = f.lead(
        &f.sales_a,
        json!({"first_name": "Ann", "next_followup_at": at(2).to_rfc3339()}),
    );
    let theirs = f.lead(
        &f.sales_b,
        json!({"first_name": "Bo", "next_followup_at": at(2).to_rfc3339()}),
    );
    let later = f.lead(
        &f.sales_a,
        json!({"first_name": "Cy", "next_followup_at": at(30).to_rfc3339()}),
    );
    let client = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Di"})))).unwrap();
    let membership = block(f.svc.create(
        &f.admin,
        "membership",
        &obj(json!({"contact_id": client.id.to_string(),
        "starts_on": NOW.plus_days(-20).date().to_string(), "ends_on": NOW.plus_days(30).date().to_string()})),
    ))
    .unwrap();

    assert!(block(f.svc.fire_due(f.tenant)).unwrap().is_empty(), "nothing due yet");
    f.clock.set(at(3));
    let fired = block(f.svc.fire_due(f.tenant)).unwrap();
    assert_eq!(fired_for(&fired, mine.id), vec!["followup_due"]);
    assert_eq!(fired_for(&fired, theirs.id), vec!["followup_due"]);
    assert!(fired_for(&fired, later.id).is_empty());
    assert!(block(f.svc.fire_due(f.tenant)).unwrap().is_empty(), "fired once");

    // A restart: another service (its own ids) over the same store fires nothing again.
    let restarted = Service::new(store.clone(), f.clock.clone(), Arc::new(SeqIds::starting_at(1 << 40)));
    assert!(block(restarted.fire_due(f.tenant)).unwrap().is_empty());

    // Each reader sees the events of the records they may read.
    assert_eq!(
        kinds_seen(&f, &f.sales_a, "followup_due"),
        vec![("lead.followup_due".to_owned(), Some(mine.id))]
    );
    assert_eq!(
        kinds_seen(&f, &f.sales_b, "followup_due"),
        vec![("lead.followup_due".to_owned(), Some(theirs.id))]
    );
    assert_eq!(kinds_seen(&f, &f.admin, "followup_due").len(), 2);

    // Set again: a new occurrence.
    let cur = block(f.svc.get(&f.sales_a, "lead", mine.id)).unwrap();
    block(f.svc.update(
        &f.sales_a,
        "lead",
        mine.id,
        cur.version,
        &obj(json!({"next_followup_at": at(4).to_rfc3339()})),
    ))
    .unwrap();
    f.clock.set(at(5));
    assert_eq!(
        fired_for(&block(restarted.fire_due(f.tenant)).unwrap(), mine.id),
        vec!["followup_due"]
    );

    // The membership starts expiring 14 days (the tenant's default) before its end.
    f.clock.set(NOW.plus_days(17));
    let fired = block(f.svc.fire_due(f.tenant)).unwrap();
    assert_eq!(fired_for(&fired, membership.id), vec!["expiring"]);
    assert!(fired_for(&block(f.svc.fire_due(f.tenant)).unwrap(), membership.id).is_empty());
    assert_eq!(
        kinds_seen(&f, &f.admin, ".expiring"),
        vec![("membership.expiring".to_owned(), Some(membership.id))]
    );
}

/// Two instances — two services with their own ids over two handles of one database — firing at
/// once raise each occurrence once; of two schedulers one holds the tenant's lease at a time.
pub fn due_events_fire_once_from_two_instances<S: Store>(a: S, b: S) {
    let f = Fixture::new(a);
    const LEADS: usize = 12;
    for i in 0..LEADS {
        f.lead(
            &f.sales_a,
            json!({"first_name": format!("L{i}"), "next_followup_at": at(1).to_rfc3339()}),
        );
    }
    let clock = Arc::new(FixedClock::new(at(2)));
    f.clock.set(at(2));
    let other = Service::new(b, clock, Arc::new(SeqIds::starting_at(1 << 40)));
    let (x, y) = (Id::from_u128(1), Id::from_u128(2));
    assert!(block(f.svc.claim_scheduler(f.tenant, x, 60)).unwrap());
    assert!(
        !block(other.claim_scheduler(f.tenant, y, 60)).unwrap(),
        "one scheduler at a time"
    );
    assert!(
        block(f.svc.claim_scheduler(f.tenant, x, 60)).unwrap(),
        "renewed by its holder"
    );
    // Even when both scan at once (a lease that ran out mid-pass), each occurrence fires once.
    let (one, two) = std::thread::scope(|s| {
        let h1 = s.spawn(|| block(f.svc.fire_due(f.tenant)).unwrap());
        let h2 = s.spawn(|| block(other.fire_due(f.tenant)).unwrap());
        (h1.join().unwrap(), h2.join().unwrap())
    });
    let mut keys: Vec<String> = one.iter().chain(&two).map(|i| i.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(one.len() + two.len(), LEADS, "{} + {}", one.len(), two.len());
    assert_eq!(keys.len(), LEADS);
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "lead.followup_due").count(), LEADS);
    assert!(block(other.fire_due(f.tenant)).unwrap().is_empty());
}
