//! A new device starts from a server's provision: an empty device store gets the organization and
//! its user, pulls its snapshot as that user, works offline and pushes (see `docs/sync.md`, "A new
//! device").

use super::sync_pull::{readable, readable_in};
use super::sync_push::DeviceIds;
use super::{Fixture, block, obj};
use crate::access::Actor;
use crate::clock::FixedClock;
use crate::error::Error;
use crate::service::{RemoteError, Service, SyncTransport};
use crate::store::Store;
use crate::sync::{PullPage, PushAnswer, PushRequest};
use serde_json::json;
use std::cell::Cell;
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
    assert_eq!(
        (actor.tenant, actor.user_id, actor.team_id),
        (me.tenant, me.user_id, me.team_id)
    );
    assert_eq!(actor.role.name, "sales");
    // Provisioning again refreshes in place.
    block(device.apply_provision(&p)).unwrap();
    let logged = block(device.store().pending_changes(p.tenant, 0, 100)).unwrap();
    assert!(logged.is_empty(), "a provision is the server's: nothing to push");

    // A whole round over a transport (here the server's service itself, refusing pushes of more
    // than one change set as too large once): the snapshot first, then an offline edit goes up.
    let transport = Direct {
        svc: &server.svc,
        actor: me,
        max_entries: Cell::new(usize::MAX),
        pushes: Cell::new(0),
    };
    let first = block(device.sync_round(&actor, "browser-1", &transport)).unwrap();
    assert!(
        first.pull.reset && first.pull.upserts > 0 && transport.pushes.get() == 0,
        "{first:?}"
    );
    assert_eq!(readable_in(&device, &actor), readable(&server, me));
    let leads = block(device.list(&actor, "lead", &Default::default())).unwrap().items;
    for (lead, note) in leads.iter().zip(["from the new device", "and another"]) {
        block(device.update(&actor, "lead", lead.id, lead.version, &obj(json!({"notes": note})))).unwrap();
    }
    transport.max_entries.set(1);
    let round = block(device.sync_round(&actor, "browser-1", &transport)).unwrap();
    assert_eq!((round.push.accepted, round.push.pending), (2, 0), "{round:?}");
    // 100, 50, 25, 12, 6 and 3 refused, then two pushes of one.
    assert_eq!(
        transport.pushes.get(),
        8,
        "a 413 halves the batch down to what the server takes"
    );
    let on_server = block(server.svc.get(me, "lead", leads[0].id)).unwrap();
    assert_eq!(on_server.str("notes"), Some("from the new device"));
    assert!(
        block(device.store().pending_changes(p.tenant, 0, 100))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        readable_in(&device, &actor),
        readable(&server, me),
        "the round pulled the server's results"
    );
}

/// A photo taken offline goes up with its bytes: the round uploads them before the push, the
/// server replays the attach under the device's id and checks the content; a push that arrives
/// without them is answered pending (nothing refused, nothing lost) until they come. An attachment
/// deleted offline is deleted on the server.
pub fn attachments_made_offline_go_up_with_their_bytes<S: Store, D: Store>(server_store: S, device_store: D) {
    use crate::blob::MemoryBlobStore;
    use crate::conformance::{attach_input, png};
    let server = Fixture::new(server_store).with_blobs(Arc::new(MemoryBlobStore::new()));
    let lead = server.lead(&server.sales_a, json!({"first_name": "Photo"}));
    let me = &server.sales_a;
    let ids = Arc::new(DeviceIds {
        device: 8,
        ..Default::default()
    });
    ids.offline.store(true, Ordering::SeqCst);
    let device = Service::new(device_store, Arc::new(FixedClock::new(super::NOW)), ids)
        .with_blob_store(Arc::new(MemoryBlobStore::new()));
    let actor = block(device.apply_provision(&block(server.svc.provision(me)).unwrap())).unwrap();
    let transport = Direct {
        svc: &server.svc,
        actor: me,
        max_entries: Cell::new(usize::MAX),
        pushes: Cell::new(0),
    };
    block(device.sync_round(&actor, "phone-1", &transport)).unwrap();

    let photo = block(device.attach(
        &actor,
        "lead",
        lead.id,
        &attach_input("photo", "roof.png"),
        &mut &png(3)[..],
    ))
    .unwrap();
    let doc = block(device.attach(
        &actor,
        "lead",
        lead.id,
        &attach_input("photo", "gone.png"),
        &mut &png(4)[..],
    ))
    .unwrap();
    block(device.delete_attachment(&actor, doc.id)).unwrap();
    assert_eq!(
        block(device.pending_uploads(&actor)).unwrap().len(),
        1,
        "the photo waits for upload"
    );

    // Pushed by hand without the bytes: pending, and the same push after they arrive is accepted.
    let req = block(device.prepare_push(&actor, "phone-1", 10)).unwrap();
    let PushAnswer::Results { results } = block(server.svc.replay_push(me, &req)).unwrap() else {
        panic!("results")
    };
    assert!(
        matches!(results[0].outcome, crate::sync::Outcome::Pending),
        "{results:?}"
    );
    assert!(
        block(server.svc.attachment(me, photo.id)).is_err(),
        "nothing attached without the bytes"
    );

    let round = block(device.sync_round(&actor, "phone-1", &transport)).unwrap();
    let why = block(device.sync_rejections(&actor, 10)).unwrap();
    assert_eq!(
        (round.push.accepted, round.push.pending, round.push.rejected),
        (3, 0, 0),
        "{round:?} {why:?}"
    );
    let on_server = block(server.svc.attachment(me, photo.id)).unwrap();
    assert_eq!(on_server.str("sha256"), photo.str("sha256"));
    assert_eq!(on_server.str("media_type"), Some("image/png"));
    let (_, mut content) = block(server.svc.attachment_content(me, photo.id)).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut content, &mut bytes).unwrap();
    assert_eq!(bytes, png(3));
    assert!(
        block(server.svc.attachment(me, doc.id)).is_err(),
        "the deleted one is gone on the server too"
    );
    let listed = block(server.svc.attachments(me, "lead", lead.id)).unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), [photo.id]);
    assert!(block(device.pending_uploads(&actor)).unwrap().is_empty());
}

/// The server's service as a device's transport, refusing pushes over `max_entries` as 413.
struct Direct<'a, S> {
    svc: &'a Service<S>,
    actor: &'a Actor,
    max_entries: Cell<usize>,
    pushes: Cell<u32>,
}

impl<S: Store> SyncTransport for Direct<'_, S> {
    async fn push(&self, req: &PushRequest) -> Result<PushAnswer, RemoteError> {
        self.pushes.set(self.pushes.get() + 1);
        if req.entries.len() > self.max_entries.get() {
            return Err(RemoteError {
                status: 413,
                code: "too_large".into(),
                detail: "the body is over the limit".into(),
            });
        }
        Ok(self.svc.replay_push(self.actor, req).await.unwrap())
    }

    async fn upload(&self, sha256: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        let mut up = self.svc.begin_blob(self.actor).await.unwrap();
        up.write(bytes).unwrap();
        self.svc.finish_blob(up, sha256).await.unwrap();
        Ok(())
    }

    async fn pull(&self, cursor: Option<&str>, limit: u32) -> Result<PullPage, RemoteError> {
        Ok(self.svc.pull(self.actor, cursor, limit.min(4)).await.unwrap())
    }
}
