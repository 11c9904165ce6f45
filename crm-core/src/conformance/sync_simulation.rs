//! Sync as a whole, under random schedules: one server, four devices of users with different roles
//! and teams (a manager, two sales users on two teams, a field tech), random offline creates,
//! edits, deletes and appointment transitions on each, changes on the server meanwhile (edits,
//! leads moved between teams), random sync orders and lost answers. After everyone syncs: every
//! device holds exactly the server's records its user may read, field for field; no record or field
//! the user may not read is stored on the device; every refused change is listed on its device; the
//! server's audit chain verifies.
//!
//! [`sync_simulation_converges_on_two_instances`] runs the same with two server instances over one
//! database, each sync through either. A proptest over the schedule: `CRM_SYNC_SIM_CASES` sets the number of schedules (default 12;
//! run longer on demand), and a failure shrinks to a short schedule.

use super::sync_pull::{Held, readable};
use super::sync_push::DeviceIds;
use super::{Fixture, block, obj};
use crate::access::{Action, Actor, Scope};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::service::Service;
use crate::store::Store;
use crate::sync::syncable_types;
use crate::value::Id;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Devices in a simulation.
const DEVICES: usize = 4;

/// Lead fields the steps edit.
const FIELDS: [&str; 3] = ["notes", "city", "last_name"];

/// Appointment transitions the steps try.
const TRANSITIONS: [&str; 3] = ["confirm", "complete", "cancel"];

/// One step of a schedule. `pick` chooses among the records the acting side holds (modulo their
/// number); a step the acting user may not take changes nothing, as in an app.
#[derive(Clone, Debug)]
enum Step {
    Edit {
        dev: usize,
        pick: usize,
        field: usize,
        value: u8,
    },
    Create {
        dev: usize,
        value: u8,
    },
    Delete {
        dev: usize,
        pick: usize,
    },
    Transition {
        dev: usize,
        pick: usize,
        name: usize,
    },
    ServerEdit {
        pick: usize,
        field: usize,
        value: u8,
    },
    ServerMove {
        pick: usize,
    },
    /// A sync: push then pull, or pull first (an app may); the push's answer or a pull page may be
    /// lost on the way back (the server did the work, the device heard nothing).
    /// `second`: through the second server instance, when there is one.
    Sync {
        dev: usize,
        pull_first: bool,
        lose_answer: bool,
        lose_page: bool,
        second: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let dev = 0..DEVICES;
    prop_oneof![
        4 => (dev.clone(), any::<usize>(), 0..FIELDS.len(), any::<u8>())
            .prop_map(|(dev, pick, field, value)| Step::Edit { dev, pick, field, value }),
        2 => (dev.clone(), any::<u8>()).prop_map(|(dev, value)| Step::Create { dev, value }),
        1 => (dev.clone(), any::<usize>()).prop_map(|(dev, pick)| Step::Delete { dev, pick }),
        1 => (dev.clone(), any::<usize>(), 0..TRANSITIONS.len())
            .prop_map(|(dev, pick, name)| Step::Transition { dev, pick, name }),
        2 => (any::<usize>(), 0..FIELDS.len(), any::<u8>())
            .prop_map(|(pick, field, value)| Step::ServerEdit { pick, field, value }),
        1 => any::<usize>().prop_map(|pick| Step::ServerMove { pick }),
        3 => (dev, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(dev, pull_first, lose_answer, lose_page, second)| Step::Sync { dev, pull_first, lose_answer, lose_page, second }
        ),
    ]
}

/// Runs random schedules, each on a fresh server store and fresh device stores (with their sync
/// log on).
pub fn sync_simulation_converges<S: Store, D: Store>(server: impl Fn() -> S, device: impl Fn() -> D) {
    run(|| (server(), None), device);
}

/// The same with two server instances over one database (`servers` gives two handles of a fresh
/// one): each sync goes through either, at random, as behind a load balancer.
pub fn sync_simulation_converges_on_two_instances<S: Store, D: Store>(
    servers: impl Fn() -> (S, S),
    device: impl Fn() -> D,
) {
    run(
        || {
            let (a, b) = servers();
            (a, Some(b))
        },
        device,
    );
}

fn run<S: Store, D: Store>(servers: impl Fn() -> (S, Option<S>), device: impl Fn() -> D) {
    let cases = std::env::var("CRM_SYNC_SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(step(), 1..40), |steps| {
        let (a, b) = servers();
        simulate(a, b, &device, &steps);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A device: its store's service as its user, and the refusals its answers reported.
struct Device<D> {
    f: Fixture<D>,
    me: Actor,
    /// The same user on the server.
    on_server: Actor,
    name: String,
    refused: u32,
}

fn simulate<S: Store, D: Store>(server_store: S, second: Option<S>, device: &impl Fn() -> D, steps: &[Step]) {
    let server = Fixture::new(server_store);
    // The second instance: its own service (caches, ids of its own range) over the same database.
    let second = second.map(|store| {
        let ids = DeviceIds {
            device: 0x20,
            ..DeviceIds::default()
        };
        ids.offline.store(true, Ordering::SeqCst);
        Service::new(store, server.clock.clone(), Arc::new(ids))
    });
    // The shared starting state, made on the server: leads of both sales users, two appointments
    // everyone attends.
    for (i, who) in [&server.sales_a, &server.sales_b, &server.sales_a, &server.sales_b]
        .into_iter()
        .enumerate()
    {
        server.lead(who, json!({"first_name": format!("Lead {i}")}));
    }
    let tech_lead = server.lead(&server.admin, json!({"first_name": "Tech's"}));
    let owner = |a: &Actor| a.user_id.map(|u| u.to_string());
    block(server.svc.update(
        &server.admin,
        "lead",
        tech_lead.id,
        tech_lead.version,
        &obj(json!({"owner_id": owner(&server.tech), "team_id": server.tech.team_id.map(|t| t.to_string())})),
    ))
    .unwrap();
    let attendees: Vec<_> = [&server.manager, &server.sales_a, &server.sales_b, &server.tech]
        .iter()
        .map(|a| json!({"user_id": owner(a)}))
        .collect();
    for h in ["09", "11"] {
        let input = json!({"title": "Roof check", "starts_at": format!("2025-06-02T{h}:00:00Z"),
            "ends_at": format!("2025-06-02T{h}:30:00Z"), "appointment_attendees": attendees});
        block(server.svc.create(&server.admin, "appointment", &obj(input))).unwrap();
    }

    let mut devices: Vec<Device<D>> = (0..DEVICES)
        .map(|n| {
            let ids = Arc::new(DeviceIds {
                device: n as u8,
                ..DeviceIds::default()
            });
            let f = Fixture::with_ids(device(), ids.clone());
            assert_eq!(
                f.tenant, server.tenant,
                "devices are provisioned with the server's tenant"
            );
            ids.offline.store(true, Ordering::SeqCst);
            // What the device was provisioned with is the server's: nothing of it is queued.
            block(f.svc.mark_synced(&f.admin, u64::MAX)).unwrap();
            let (me, on_server) = match n {
                0 => (f.manager.clone(), server.manager.clone()),
                1 => (f.sales_a.clone(), server.sales_a.clone()),
                2 => (f.sales_b.clone(), server.sales_b.clone()),
                _ => (f.tech.clone(), server.tech.clone()),
            };
            Device {
                f,
                me,
                on_server,
                name: format!("device-{n}"),
                refused: 0,
            }
        })
        .collect();

    for s in steps {
        match *s {
            Step::Edit {
                dev,
                pick,
                field,
                value,
            } => {
                let d = &devices[dev];
                if let Some(r) = held(&d.f, &d.me, "lead", pick) {
                    let patch = obj(json!({FIELDS[field]: format!("{}-{dev}-{value}", FIELDS[field])}));
                    let _ = block(d.f.svc.update(&d.me, "lead", r.id, r.version, &patch));
                }
            }
            Step::Create { dev, value } => {
                let d = &devices[dev];
                let _ = block(
                    d.f.svc
                        .create(&d.me, "lead", &obj(json!({"first_name": format!("New {dev}-{value}")}))),
                );
            }
            Step::Delete { dev, pick } => {
                let d = &devices[dev];
                if let Some(r) = held(&d.f, &d.me, "lead", pick) {
                    let _ = block(d.f.svc.delete(&d.me, "lead", r.id, r.version));
                }
            }
            Step::Transition { dev, pick, name } => {
                let d = &devices[dev];
                if let Some(r) = held(&d.f, &d.me, "appointment", pick) {
                    let input = obj(json!({"cancel_reason": "rain"}));
                    let input = if TRANSITIONS[name] == "cancel" {
                        input
                    } else {
                        Default::default()
                    };
                    let _ = block(
                        d.f.svc
                            .transition(&d.me, "appointment", r.id, r.version, TRANSITIONS[name], &input),
                    );
                }
            }
            Step::ServerEdit { pick, field, value } => {
                if let Some(r) = held(&server, &server.admin, "lead", pick) {
                    let patch = obj(json!({FIELDS[field]: format!("{}-server-{value}", FIELDS[field])}));
                    block(server.svc.update(&server.admin, "lead", r.id, r.version, &patch)).unwrap();
                }
            }
            Step::ServerMove { pick } => {
                if let Some(r) = held(&server, &server.admin, "lead", pick) {
                    let to = if r.get("team_id") == server.sales_a.team_id.map(crate::value::Value::Id).as_ref() {
                        &server.sales_b
                    } else {
                        &server.sales_a
                    };
                    let patch = obj(json!({"owner_id": owner(to), "team_id": to.team_id.map(|t| t.to_string())}));
                    block(server.svc.update(&server.admin, "lead", r.id, r.version, &patch)).unwrap();
                }
            }
            Step::Sync {
                dev,
                pull_first,
                lose_answer,
                lose_page,
                second: via_second,
            } => {
                let svc = second.as_ref().filter(|_| via_second).unwrap_or(&server.svc);
                let d = &mut devices[dev];
                if pull_first {
                    pull(svc, d, lose_page);
                    push(svc, d, lose_answer);
                } else {
                    push(svc, d, lose_answer);
                    pull(svc, d, lose_page);
                }
            }
        }
    }

    // Everyone syncs twice: the first round sends every queue, the second brings everyone the
    // others' changes.
    for _ in 0..2 {
        for d in devices.iter_mut() {
            push(&server.svc, d, false);
            pull(&server.svc, d, false);
        }
    }
    for d in &devices {
        assert!(d.f.pending(0).is_empty(), "{}: the queue is empty", d.name);
        let want = readable(&server, &d.on_server);
        assert_eq!(
            readable(&d.f, &d.me),
            want,
            "{} holds what its user may read on the server",
            d.name
        );
        nothing_else(d, &want);
        let listed = block(d.f.svc.sync_rejections(&d.me, 1000)).unwrap();
        assert_eq!(listed.len() as u32, d.refused, "{}: every refusal is listed", d.name);
        assert!(
            listed
                .iter()
                .all(|r| !r.error.code.is_empty() && !r.error.message.is_empty())
        );
    }
    let report = block(server.svc.integrity_check(&server.admin)).unwrap();
    assert_eq!(report.audit_broken_at, None, "the server's audit chain verifies");
}

/// Pushes the device's queue and applies the answer. A lost answer: the server replayed the push,
/// the device heard nothing (and pushes the same change sets again next time).
fn push<S: Store, D: Store>(server: &Service<S>, d: &mut Device<D>, lose_answer: bool) {
    let req = block(d.f.svc.prepare_push(&d.me, &d.name, 1000)).unwrap();
    if req.entries.is_empty() {
        return;
    }
    let answer = block(server.replay_push(&d.on_server, &req)).unwrap();
    if lose_answer {
        return;
    }
    let applied = block(d.f.svc.apply_push_answer(&d.me, &req, &answer)).unwrap();
    assert_eq!(applied.pending, 0, "{}: nothing is replayed elsewhere", d.name);
    d.refused += applied.rejected;
}

/// Pulls until caught up, applying each page. A lost page: the server answered, the device heard
/// nothing (and asks with the same cursor next time).
fn pull<S: Store, D: Store>(server: &Service<S>, d: &mut Device<D>, lose_page: bool) {
    for _ in 0..1000 {
        let cursor = block(d.f.svc.pull_cursor(&d.me)).unwrap();
        let page = block(server.pull(&d.on_server, cursor.as_deref(), 7)).unwrap();
        if lose_page {
            return;
        }
        if !block(d.f.svc.apply_pull(&d.me, &page)).unwrap().more {
            return;
        }
    }
    panic!("{}: a pull ends", d.name);
}

/// The `pick`-th record of `entity` the actor may read on that side, if any.
fn held<S: Store>(f: &Fixture<S>, actor: &Actor, entity: &str, pick: usize) -> Option<Record> {
    let def = f.svc.entity(entity).unwrap();
    let rows = block(
        f.svc
            .store()
            .query(f.tenant, def, &StoreQuery::by_id(Filter::All, 1000)),
    )
    .unwrap();
    let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let readable: Vec<Record> = ids
        .into_iter()
        .filter_map(|id| block(f.svc.get(actor, entity, id)).ok())
        .collect();
    (!readable.is_empty()).then(|| readable[pick % readable.len()].clone())
}

/// No record of a type the user reads is on the device unless the server shows it to the user,
/// and no field the server hides from the user is stored there.
fn nothing_else<D: Store>(d: &Device<D>, want: &Held) {
    for def in syncable_types() {
        if def.resolves_callers || d.me.role.scope(def, Action::Read) == Scope::None {
            continue; // provisioned with the device, not pulled
        }
        let rows = block(
            d.f.svc
                .store()
                .query(d.f.tenant, def, &StoreQuery::by_id(Filter::All, 10_000)),
        )
        .unwrap();
        for r in rows {
            let Some(shown) = want.get(&(def.name.to_owned(), r.id)) else {
                panic!("{}: holds {} {} which its user may not read", d.name, def.name, r.id);
            };
            for (i, f) in def.fields.iter().enumerate() {
                if shown.get(f.name).is_none() && !f.secret {
                    assert!(
                        r.values[i].is_null(),
                        "{}: stores {}.{} which its user may not read",
                        d.name,
                        def.name,
                        f.name
                    );
                }
            }
        }
    }
}
