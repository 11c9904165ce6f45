//! Lead routing: each strategy decides in the create's and the import's change set, the audit entry
//! names the rule, deactivated users never receive a lead, and round robin stays fair under
//! concurrent creates (its cursor moves in the store, inside each create's transaction).

use super::{Fixture, NOW, block, codes_of, obj};
use crate::record::Record;
use crate::service::Service;
use crate::service::{ImportMode, ImportOptions};
use crate::store::{AuditQuery, Store};
use crate::value::{Id, Value};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A team of `n` sales users; their ids in id order (the round-robin order).
fn team<S: Store>(f: &Fixture<S>, name: &str, n: usize) -> (Id, Vec<Id>) {
    let team = block(f.svc.create(&f.admin, "team", &obj(json!({"name": name}))))
        .unwrap()
        .id;
    let mut users: Vec<Id> = (0..n)
        .map(|i| {
            let email = format!("{}{i}@acme.test", name.to_lowercase());
            let input =
                json!({"name": format!("{name} {i}"), "email": email, "role": "sales", "team_id": team.to_string()});
            block(f.svc.create(&f.admin, "user", &obj(input))).unwrap().id
        })
        .collect();
    users.sort();
    (team, users)
}

fn rule<S: Store>(f: &Fixture<S>, input: Json) -> Record {
    block(f.svc.create(&f.manager, "routing_rule", &obj(input))).unwrap()
}

fn deactivate<S: Store>(f: &Fixture<S>, user: Id) {
    let u = block(f.svc.get(&f.admin, "user", user)).unwrap();
    block(
        f.svc
            .update(&f.admin, "user", user, u.version, &obj(json!({"active": false}))),
    )
    .unwrap();
}

fn owner(r: &Record) -> Option<Id> {
    r.id_of("owner_id")
}

/// The routing decision recorded in the lead's first audit entry (its create or import).
fn audited_rule<S: Store>(f: &Fixture<S>, lead: Id) -> Option<Json> {
    let q = AuditQuery {
        entity_id: Some(lead),
        limit: 10,
        ..Default::default()
    };
    let entries = block(f.svc.store().audit(f.tenant, &q)).unwrap();
    let first = entries.first()?;
    first
        .changes
        .iter()
        .find(|c| c.field == "routing")
        .map(|c| c.new.clone())
}

pub fn routing_rules_decide_by_each_strategy<S: Store>(store: S) {
    let f = Fixture::new(store);
    let north = f.manager.team_id.unwrap();
    let (closers, c) = team(&f, "Closers", 2);
    let (metro, m) = team(&f, "Metro", 2);
    let sue = f.sales_b.user_id.unwrap();

    // Rules are checked when they are saved: every field at once.
    let err = block(f.svc.create(
        &f.manager,
        "routing_rule",
        &obj(json!({"name": "bad", "strategy": "round_robin", "condition": "source:("})),
    ))
    .unwrap_err();
    let mut got = codes_of(&err);
    got.sort();
    assert_eq!(
        got,
        [
            ("condition".into(), "invalid_format".into()),
            ("team_id".into(), "required".into())
        ]
    );
    let err = block(f.svc.create(
        &f.manager,
        "routing_rule",
        &obj(json!({"name": "bad", "strategy": "fewest_open", "team_id": closers.to_string(), "condition": "no_such_field:1"})),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), [("condition".into(), "invalid_format".into())]);
    let gone = c[1];
    deactivate(&f, gone);
    let err = block(f.svc.create(
        &f.manager,
        "routing_rule",
        &obj(json!({"name": "bad", "strategy": "user", "user_id": gone.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), [("user_id".into(), "inactive_user".into())]);
    let err = block(f.svc.create(
        &f.manager,
        "routing_rule",
        &obj(json!({"name": "bad", "strategy": "user", "user_id": Id::from_u128(7).to_string()})),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), [("user_id".into(), "unknown_reference".into())]);
    // Sales may read the rules (a dry run) but not manage them.
    let err = block(f.svc.create(
        &f.sales_a,
        "routing_rule",
        &obj(json!({"name": "x", "strategy": "user", "user_id": sue.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");

    let referral = rule(
        &f,
        json!({"name": "Referrals to Sue", "position": 10, "condition": "source:referral", "strategy": "user", "user_id": sue.to_string()}),
    );
    let big = rule(
        &f,
        json!({"name": "Big jobs", "position": 20, "condition": "estimated_value>=20000", "strategy": "fewest_open", "team_id": closers.to_string()}),
    );
    let terr = rule(
        &f,
        json!({"name": "Territories", "position": 30, "strategy": "territory", "territories": {"80": north.to_string(), "802": metro.to_string()}}),
    );
    let rr = rule(
        &f,
        json!({"name": "Everyone else", "position": 40, "strategy": "round_robin", "team_id": metro.to_string()}),
    );
    // An inactive rule never decides, even first.
    rule(
        &f,
        json!({"name": "Off", "position": 1, "active": false, "strategy": "user", "user_id": sue.to_string()}),
    );

    // Named user; the audit entry names the rule and its version.
    let a = f.lead(
        &f.admin,
        json!({"first_name": "A", "source": "referral", "estimated_value": "50000"}),
    );
    assert_eq!((owner(&a), a.id_of("team_id")), (Some(sue), f.sales_b.team_id));
    let audited = audited_rule(&f, a.id).unwrap();
    assert_eq!(audited["rule_id"], json!(referral.id.to_string()));
    assert_eq!(audited["rule"], json!("Referrals to Sue"));
    assert_eq!(audited["rule_version"], json!(referral.version));
    assert_eq!(audited["strategy"], json!("user"));

    // Fewest open leads in a team: the deactivated member never gets one.
    for _ in 0..3 {
        let l = f.lead(&f.admin, json!({"first_name": "B", "estimated_value": "25000"}));
        assert_eq!(owner(&l), Some(c[0]));
        assert_eq!(audited_rule(&f, l.id).unwrap()["rule_id"], json!(big.id.to_string()));
    }

    // Territory: the longest prefix wins; within the team, the fewest open leads.
    let l = f.lead(&f.admin, json!({"first_name": "C", "postal_code": "80211"}));
    assert_eq!(l.id_of("team_id"), Some(metro));
    assert!(m.contains(&owner(&l).unwrap()));
    assert_eq!(audited_rule(&f, l.id).unwrap()["rule_id"], json!(terr.id.to_string()));
    let l = f.lead(&f.admin, json!({"first_name": "D", "postal_code": "80301"}));
    assert_eq!(l.id_of("team_id"), Some(north));

    // Round robin over the rest, in turn.
    let turns: Vec<Option<Id>> = (0..4)
        .map(|i| owner(&f.lead(&f.admin, json!({"first_name": format!("E{i}"), "postal_code": "10001"}))))
        .collect();
    assert_eq!(turns, [Some(m[0]), Some(m[1]), Some(m[0]), Some(m[1])]);
    let l = f.lead(&f.admin, json!({"first_name": "F"}));
    assert_eq!(audited_rule(&f, l.id).unwrap()["rule_id"], json!(rr.id.to_string()));

    // An explicit owner wins (the caller may write owner_id); nothing is recorded.
    let me = f.sales_a.user_id.unwrap();
    let l = f.lead(
        &f.admin,
        json!({"first_name": "G", "source": "referral", "owner_id": me.to_string()}),
    );
    assert_eq!(owner(&l), Some(me));
    assert_eq!(audited_rule(&f, l.id), None);

    // The named user is deactivated: the rule is passed over, the next one that matches decides.
    deactivate(&f, sue);
    let l = f.lead(
        &f.admin,
        json!({"first_name": "H", "source": "referral", "postal_code": "10001"}),
    );
    assert_eq!(owner(&l), Some(m[1]));

    // Imports route their new rows in their change sets, and name the rule in their audit entries.
    let csv = "first_name,estimated_value,postal_code\nI1,30000,\nI2,,80299\nI3,,10001\n";
    let opts = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let report = block(f.svc.import_csv(&f.admin, "lead", csv.as_bytes(), &opts)).unwrap();
    assert_eq!(report.created, 3, "{report:?}");
    let by_name = |n: &str| f.ids(&f.admin, "lead", &format!("first_name:{n}"))[0];
    let i1 = block(f.svc.get(&f.admin, "lead", by_name("I1"))).unwrap();
    assert_eq!(owner(&i1), Some(c[0]));
    assert_eq!(audited_rule(&f, i1.id).unwrap()["rule_id"], json!(big.id.to_string()));
    let i3 = block(f.svc.get(&f.admin, "lead", by_name("I3"))).unwrap();
    assert_eq!(owner(&i3), Some(m[0]), "the import takes the next round-robin turn");

    // Re-route on demand: the lead moves to who the rules pick now, audited as a route.
    let (routed, why) = block(f.svc.route_lead(&f.manager, a.id)).unwrap();
    assert_eq!(why.decision.as_ref().unwrap().rule_id, big.id);
    assert_eq!(owner(&routed), Some(c[0]));
    let q = AuditQuery {
        entity_id: Some(a.id),
        limit: 10,
        ..Default::default()
    };
    let last = block(f.svc.store().audit(f.tenant, &q)).unwrap().pop().unwrap();
    assert_eq!(last.action, "route");
    assert!(last.changes.iter().any(|c| c.field == "owner_id"));
    assert!(last.changes.iter().any(|c| c.field == "routing"));
    let err = block(f.svc.route_lead(&f.tech, a.id)).unwrap_err();
    assert_eq!(err.code(), "forbidden");

    // A dry run answers without writing: the next round-robin turn, then the one after.
    let before = f.count("lead");
    let leads = [
        obj(json!({"first_name": "X"})),
        obj(json!({"first_name": "Y"})),
        obj(json!({})),
    ];
    let answers = block(f.svc.route_dry_run(&f.sales_a, &leads)).unwrap();
    assert_eq!(answers[0].as_ref().unwrap().owner_id, Some(m[1]));
    assert_eq!(answers[1].as_ref().unwrap().owner_id, Some(m[0]));
    assert_eq!(answers[2].as_ref().unwrap_err().code(), "validation");
    assert_eq!(f.count("lead"), before);
    let next = f.lead(&f.admin, json!({"first_name": "Z"}));
    assert_eq!(owner(&next), Some(m[1]), "the dry run moved no cursor");
    assert_eq!(
        block(f.svc.route_dry_run(&f.staff, &leads)).unwrap_err().code(),
        "forbidden"
    );
}

pub fn round_robin_is_fair_under_concurrent_creates<S: Store>(store: S) {
    round_robin_fairness(Fixture::new(store), None::<Service<S>>);
}

/// Round robin stays fair when two instances (two services with their own ids over two handles of
/// one database) create at once: the cursor lives in the store, not in an instance.
pub fn round_robin_is_fair_across_two_instances<S: Store>(a: S, b: S) {
    let f = Fixture::new(a);
    let other = Service::new(
        b,
        Arc::new(crate::clock::FixedClock::new(NOW)),
        Arc::new(crate::clock::SeqIds::starting_at(1 << 40)),
    );
    round_robin_fairness(f, Some(other));
}

/// Four threads create leads at once (on `other` for every second thread, when given) under a
/// round-robin rule over a team with a deactivated member.
fn round_robin_fairness<S: Store, T: Store>(f: Fixture<S>, other: Option<Service<T>>) {
    let (crew, users) = team(&f, "Crew", 4);
    deactivate(&f, users[3]);
    rule(
        &f,
        json!({"name": "Crew in turn", "strategy": "round_robin", "team_id": crew.to_string()}),
    );
    const THREADS: usize = 4;
    const EACH: usize = 6;
    let owners: Vec<Id> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, other) = (&f, other.as_ref());
                s.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let input = json!({"first_name": format!("T{t}-{i}")});
                            let lead = match other.filter(|_| t % 2 == 1) {
                                Some(svc) => block(svc.create(&f.admin, "lead", &obj(input))).unwrap(),
                                None => f.lead(&f.admin, input),
                            };
                            owner(&lead).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut counts: BTreeMap<Id, usize> = BTreeMap::new();
    for o in &owners {
        *counts.entry(*o).or_default() += 1;
    }
    assert!(!counts.contains_key(&users[3]), "a deactivated user received a lead");
    assert_eq!(counts.values().sum::<usize>(), THREADS * EACH);
    let (lo, hi) = (counts.values().min().unwrap(), counts.values().max().unwrap());
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(hi - lo <= 1, "unfair: {counts:?}");
    // The cursor counted every lead once.
    let cursor = block(f.svc.store().query(
        f.tenant,
        &crate::entity::ROUTING_CURSOR,
        &crate::query::StoreQuery::by_id(crate::query::Filter::All, 10),
    ))
    .unwrap();
    assert_eq!(cursor[0].get("next"), Some(&Value::Int((THREADS * EACH) as i64)));
}

/// A routing back-test routes past leads (oldest first, in the reader's scope, matching the query)
/// by today's rules from a fresh start, writes nothing, and needs read access to the rules.
pub fn routing_backtest_spreads_past_leads_by_todays_rules<S: Store>(store: S) {
    let f = Fixture::new(store);
    // Leads from before the rules: their creators own them.
    let past: Vec<Record> = (0..6)
        .map(|i| {
            f.clock.advance_micros(1_000_000);
            f.lead(
                &f.manager,
                json!({"first_name": format!("P{i}"), "source": if i % 3 == 0 { "referral" } else { "website" }}),
            )
        })
        .collect();
    let (crew, users) = team(&f, "Crew", 2);
    let (_, solo) = team(&f, "Solo", 1);
    rule(
        &f,
        json!({"name": "Referrals", "position": 1, "condition": "source:referral", "strategy": "user", "user_id": solo[0].to_string()}),
    );
    rule(
        &f,
        json!({"name": "Crew in turn", "position": 2, "strategy": "round_robin", "team_id": crew.to_string()}),
    );
    let before = f.writes_seen();
    let rows = block(f.svc.routing_backtest(&f.manager, None)).unwrap();
    assert_eq!(f.writes_seen(), before, "nothing written");
    assert_eq!(
        rows.iter().map(|r| r.lead_id).collect::<Vec<_>>(),
        past.iter().map(|l| l.id).collect::<Vec<_>>()
    );
    assert!(rows.iter().all(|r| r.actual_owner_id == f.manager.user_id));
    let owners: Vec<Id> = rows.iter().map(|r| r.routed_owner_id.unwrap()).collect();
    // Referrals (leads 0 and 3) to Solo; the rest take the crew's turns from the first.
    assert_eq!(owners, [solo[0], users[0], users[1], solo[0], users[0], users[1]]);
    assert_eq!(rows[1].rule.as_deref(), Some("Crew in turn"));
    assert_eq!(rows[1].strategy, Some("round_robin"));
    // A query narrows it; a role that may not read the rules gets none.
    let referrals = block(f.svc.routing_backtest(&f.manager, Some("source:referral"))).unwrap();
    assert_eq!(referrals.len(), 2);
    assert_eq!(
        block(f.svc.routing_backtest(&f.tech, None)).unwrap_err().code(),
        "forbidden"
    );
}
