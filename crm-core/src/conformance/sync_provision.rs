//! A new device starts from a server's provision: an empty device store gets the organization and
//! its user, pulls its snapshot as that user, works offline and pushes (see `docs/sync.md`, "A new
//! device").

use super::sync_pull::{readable, readable_in};
use super::sync_push::DeviceIds;
use super::{Fixture, block, obj};
use crate::access::Actor;
use crate::clock::FixedClock;
use crate::error::Error;
use crate::service::Service;
use crate::store::Store;
use crate::sync::{Outcome, PushAnswer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub fn a_new_device_starts_from_a_provision<S: Store, D: Store>(server_store: S, device_store: D) {
    let server = Fixture::new(server_store);
    for i in 0..5 {
        server.lead(&server.sales_a, json!({"first_name": format!("North {i}")}));
        server.lead(&server.sales_b, json!({"first_name": format!("South {i}")}));
    }
    let me = &server.sales_a;
    let p = block(server.svc.provision(me)).unwrap();
    let kinds: Vec<&str> = p.records.iter().map(|r| r.entity.as_str()).collect();
    assert_eq!(kinds, ["organization", "team", "user"], "referenced records first");
    // Only a signed-in user has a device.
    assert!(matches!(
        block(server.svc.provision(&Actor::system(server.tenant))),
        Err(Error::Forbidden { .. })
    ));

    let ids = Arc::new(DeviceIds {
        device: 7,
        ..Default::default()
    });
    ids.offline.store(true, Ordering::SeqCst);
    let device = Service::new(device_store, Arc::new(FixedClock::new(super::NOW)), ids);
    // A provision missing its user, or carrying a type it never carries, changes nothing.
    let mut bad = p.clone();
    bad.records.retain(|r| r.entity != "user");
    bad.records.push(crate::sync::Pulled {
        entity: "lead".into(),
        record: json!({}),
    });
    let Err(Error::Validation(errs)) = block(device.apply_provision(&bad)) else {
        panic!("a bad provision is refused")
    };
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["records[2]", "user"], "{errs:?}");
    assert!(block(device.actor(p.tenant, p.user)).is_err(), "nothing was written");

    let actor = block(device.apply_provision(&p)).unwrap();
    assert_eq!((actor.tenant, actor.user_id, actor.team_id), (me.tenant, me.user_id, me.team_id));
    assert_eq!(actor.role.name, "sales");
    // Provisioning again refreshes in place.
    block(device.apply_provision(&p)).unwrap();
    let logged = block(device.store().pending_changes(p.tenant, 0, 100)).unwrap();
    assert!(logged.is_empty(), "a provision is the server's: nothing to push");

    // The first pull: a snapshot of what the user may read, then an offline edit goes up.
    loop {
        let cursor = block(device.pull_cursor(&actor)).unwrap();
        let page = block(server.svc.pull(me, cursor.as_deref(), 4)).unwrap();
        if !block(device.apply_pull(&actor, &page)).unwrap().more {
            break;
        }
    }
    assert_eq!(readable_in(&device, &actor), readable(&server, me));
    let lead = block(device.list(&actor, "lead", &Default::default())).unwrap().items[0].clone();
    block(device.update(&actor, "lead", lead.id, lead.version, &obj(json!({"notes": "from the new device"})))).unwrap();
    let req = block(device.prepare_push(&actor, "browser-1", 10)).unwrap();
    let answer = block(server.svc.replay_push(me, &req)).unwrap();
    let PushAnswer::Results { results } = &answer else {
        panic!("{answer:?}")
    };
    assert!(matches!(results[0].outcome, Outcome::Accepted), "{answer:?}");
    let on_server = block(server.svc.get(me, "lead", lead.id)).unwrap();
    assert_eq!(on_server.str("notes"), Some("from the new device"));
}
