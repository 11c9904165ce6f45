//! The push half of sync, end to end: a device (a store with the sync log on) works offline, a
//! server (another store) changes some of the same rows meanwhile, the device's push is replayed
//! through the use cases, answered, retried, and applied on the device (see `docs/sync.md`).

use super::sync_pull::readable;
use super::{Fixture, block, obj};
use crate::clock::{IdGen, SeqIds};
use crate::record::Record;
use crate::service::PullApplied;
use crate::store::Store;
use crate::sync::{CHANGE_SET_REUSED, Outcome, PushAnswer, PushRequest, SCHEMA_VERSION};
use crate::value::{Id, Timestamp, Value};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The device's ids: the same as the server's while both build the shared starting state, then
/// from a range of their own (a real device's UUIDv7s do not meet the server's).
#[derive(Debug, Default)]
pub(super) struct DeviceIds {
    pub(super) seq: SeqIds,
    pub(super) offline: AtomicBool,
    /// Which device (several devices' ranges do not meet either).
    pub(super) device: u8,
}

impl IdGen for DeviceIds {
    fn new_id(&self, now: Timestamp) -> Id {
        let id = self.seq.new_id(now);
        if !self.offline.load(Ordering::SeqCst) {
            return id;
        }
        let mut b = *id.as_bytes();
        b[9] = 0xd0 ^ self.device;
        Id::from_bytes(b)
    }
}

/// What both sides hold before the device goes offline: six leads of `sales_a`, two appointments
/// the manager attends.
fn seed<S: Store>(f: &Fixture<S>) -> (Vec<Record>, Vec<Record>) {
    let leads = ["Ann", "Bob", "Cay", "Dee", "Eve", "Fay"]
        .iter()
        .map(|n| f.lead(&f.sales_a, json!({"first_name": n})))
        .collect();
    let manager = f.manager.user_id.unwrap().to_string();
    let appts = ["09", "11"]
        .iter()
        .map(|h| {
            let input = json!({"title": "Roof check", "starts_at": format!("2025-06-02T{h}:00:00Z"),
                "ends_at": format!("2025-06-02T{h}:30:00Z"), "appointment_attendees": [{"user_id": manager}]});
            block(f.svc.create(&f.admin, "appointment", &obj(input))).unwrap()
        })
        .collect();
    (leads, appts)
}

fn kind(o: &Outcome) -> String {
    match o {
        Outcome::Accepted => "accepted".into(),
        Outcome::Merged { kept_server } => {
            let kept: Vec<_> = kept_server.iter().map(|k| k.field.as_str()).collect();
            format!("merged{kept:?}")
        }
        Outcome::Rejected { error } => {
            let fields: Vec<_> = error
                .field_errors()
                .into_iter()
                .map(|e| format!("{}:{}", e.path, e.code))
                .collect();
            format!("rejected {} {fields:?}", error.code)
        }
        Outcome::Pending => "pending".into(),
    }
}

pub(super) fn outcomes(a: &PushAnswer) -> Vec<String> {
    match a {
        PushAnswer::Results { results } => results.iter().map(|r| kind(&r.outcome)).collect(),
        PushAnswer::Upgrade { .. } => vec!["upgrade".into()],
    }
}

pub fn sync_push_replays_merges_and_converges<S: Store, D: Store>(server_store: S, device_store: D) {
    let ids = Arc::new(DeviceIds::default());
    let server = Fixture::new(server_store);
    let device = Fixture::with_ids(device_store, ids.clone());
    assert_eq!(
        (device.tenant, device.manager.user_id),
        (server.tenant, server.manager.user_id)
    );
    let (leads, appts) = seed(&server);
    let (dleads, dappts) = seed(&device);
    assert_eq!(
        (leads.iter().map(|r| r.id).collect::<Vec<_>>(), appts[1].id),
        (dleads.iter().map(|r| r.id).collect::<Vec<_>>(), dappts[1].id),
        "both sides start from the same rows"
    );
    let me = &device.manager;
    // What the device holds came from the server: nothing of it is pending.
    block(device.svc.mark_synced(me, u64::MAX)).unwrap();
    // Its first pull: a snapshot, kept with its cursor; nothing received is logged for upload.
    let first = catch_up(&server, &device);
    assert!(first[0].reset && first.iter().skip(1).all(|p| !p.reset), "{first:?}");
    assert!(device.pending(0).is_empty());
    assert_eq!(readable(&device, me), readable(&server, &server.manager));
    ids.offline.store(true, Ordering::SeqCst);
    let dsvc = &device.svc;

    // Offline on the device, as the manager.
    let nina = block(dsvc.create(me, "lead", &obj(json!({"first_name": "Nina", "external_id": "ext-1"})))).unwrap();
    let omar = block(dsvc.create(me, "lead", &obj(json!({"first_name": "Omar", "external_id": "ext-2"})))).unwrap();
    let upd = |r: &Record, v: u64, p: serde_json::Value| block(dsvc.update(me, "lead", r.id, v, &obj(p))).unwrap();
    upd(&leads[0], 1, json!({"notes": "gate 12", "city": "York"}));
    upd(&leads[1], 1, json!({"first_name": "Bobby", "notes": "device note"}));
    upd(&leads[1], 2, json!({"last_name": "Device"}));
    block(dsvc.delete(me, "lead", leads[2].id, 1)).unwrap();
    upd(&leads[3], 1, json!({"notes": "still keen"}));
    block(dsvc.delete(me, "lead", leads[4].id, 1)).unwrap();
    let none = serde_json::Map::new();
    block(dsvc.transition(me, "appointment", appts[0].id, 1, "confirm", &none)).unwrap();
    let reason = obj(json!({"cancel_reason": "rain"}));
    block(dsvc.transition(me, "appointment", appts[1].id, 1, "cancel", &reason)).unwrap();
    upd(&nina, 1, json!({"notes": "call after 5"}));

    // Meanwhile on the server.
    let ssvc = &server.svc;
    let sup = |r: &Record, v: u64, p: serde_json::Value| {
        block(ssvc.update(&server.sales_a, "lead", r.id, v, &obj(p))).unwrap()
    };
    server.lead(&server.sales_a, json!({"first_name": "Olga", "external_id": "ext-2"}));
    sup(&leads[1], 1, json!({"notes": "server note", "city": "Leeds"}));
    sup(&leads[2], 1, json!({"notes": "signed up"}));
    block(ssvc.delete(&server.admin, "lead", leads[3].id, 1)).unwrap();
    block(ssvc.delete(&server.admin, "lead", leads[4].id, 1)).unwrap();
    block(ssvc.transition(&server.admin, "appointment", appts[1].id, 1, "complete", &none)).unwrap();

    // The push.
    let req = block(dsvc.prepare_push(me, "phone-1", 100)).unwrap();
    assert_eq!((req.schema_version, req.entries.len()), (SCHEMA_VERSION, 11));
    let use_cases: Vec<_> = req
        .entries
        .iter()
        .map(|e| e.intent.as_ref().map(|i| i.use_case()))
        .collect();
    assert!(use_cases.iter().all(Option::is_some), "{use_cases:?}");
    let answer = block(ssvc.replay_push(&server.manager, &req)).unwrap();
    let expected = [
        "accepted",
        "rejected validation [\"external_id:duplicate\"]",
        "accepted",
        "merged[\"notes\"]",
        "merged[]",
        "rejected conflict []",
        "rejected not_found []",
        "accepted",
        "accepted",
        "rejected validation [\"status:invalid_transition\"]",
        "accepted",
    ];
    assert_eq!(outcomes(&answer), expected);
    let PushAnswer::Results { results } = &answer else {
        unreachable!()
    };
    let Outcome::Merged { kept_server } = &results[3].outcome else {
        unreachable!()
    };
    assert_eq!(
        (&kept_server[0].device, &kept_server[0].server, kept_server[0].id),
        (&json!("device note"), &json!("server note"), leads[1].id),
        "the answer names the field, both values and the row"
    );

    // The server's rows are as the conflict table says.
    let get = |e: &str, id: Id| block(ssvc.get(&server.manager, e, id));
    let n = get("lead", nina.id).unwrap();
    assert_eq!(
        (n.str("first_name"), n.str("notes"), n.version),
        (Some("Nina"), Some("call after 5"), 2),
        "created under the device's id, so the device's later edit found it"
    );
    let b = get("lead", leads[1].id).unwrap();
    assert_eq!(
        [b.str("first_name"), b.str("notes"), b.str("city"), b.str("last_name")],
        [Some("Bobby"), Some("server note"), Some("Leeds"), Some("Device")],
        "device-only fields applied, the field both changed kept the server's value, server-only fields stayed"
    );
    let a = get("lead", leads[0].id).unwrap();
    assert_eq!((a.str("notes"), a.str("city")), (Some("gate 12"), Some("York")));
    assert_eq!(
        get("lead", leads[2].id).unwrap().str("notes"),
        Some("signed up"),
        "the edit beat the delete"
    );
    for gone in [leads[3].id, leads[4].id] {
        assert_eq!(get("lead", gone).unwrap_err().code(), "not_found");
    }
    let status = |id| get("appointment", id).unwrap().str("status").map(str::to_owned);
    assert_eq!(status(appts[0].id).as_deref(), Some("confirmed"));
    assert_eq!(
        status(appts[1].id).as_deref(),
        Some("completed"),
        "the guard saw the server's state"
    );
    let owner = get("lead", nina.id).unwrap().get("owner_id").cloned();
    assert_eq!(owner, me.user_id.map(Value::Id), "replayed as the device's user");

    // A retried push (the answer was lost) changes nothing and gets the same answer.
    let seen = server.writes_seen();
    let again = block(ssvc.replay_push(&server.manager, &req)).unwrap();
    assert_eq!(again, answer);
    assert_eq!(server.writes_seen(), seen, "nothing replayed twice");
    // The same change-set id with other content is refused, not answered from memory.
    let mut forged = req.clone();
    forged.entries.truncate(1);
    forged.entries[0].writes[0]
        .patch
        .insert("notes".into(), json!("forged"));
    let refused = block(ssvc.replay_push(&server.manager, &forged)).unwrap();
    assert_eq!(
        outcomes(&refused),
        vec![format!("rejected validation [\"change_set:{CHANGE_SET_REUSED}\"]")]
    );
    // Another user cannot replay the manager's change sets.
    let mut other = req.clone();
    other.entries.truncate(1);
    let theirs = block(ssvc.replay_push(&server.sales_b, &other)).unwrap();
    assert_eq!(outcomes(&theirs), vec!["rejected forbidden []"]);
    // A schema version the server does not replay: upgrade, nothing touched.
    let old = PushRequest {
        schema_version: 15,
        ..req.clone()
    };
    let upgrade = block(ssvc.replay_push(&server.manager, &old)).unwrap();
    assert!(
        matches!(
            upgrade,
            PushAnswer::Upgrade {
                oldest_schema_version: 16,
                ..
            }
        ),
        "{upgrade:?}"
    );
    assert_eq!(server.writes_seen(), seen);
    let report = block(ssvc.integrity_check(&server.admin)).unwrap();
    assert_eq!(report.audit_broken_at, None, "the server's audit chain verifies");

    // The device applies an upgrade answer: nothing changes.
    let applied = block(dsvc.apply_push_answer(me, &req, &upgrade)).unwrap();
    assert!(applied.upgrade && applied.synced == 0 && applied.pending == 11);
    // A partial answer (the third entry still pending elsewhere): the first two are done, the rest wait.
    let mut partial = answer.clone();
    if let PushAnswer::Results { results } = &mut partial {
        results[2].outcome = Outcome::Pending;
    }
    let applied = block(dsvc.apply_push_answer(me, &req, &partial)).unwrap();
    assert_eq!(
        (applied.accepted, applied.rejected, applied.pending, applied.synced),
        (1, 1, 9, 2)
    );
    assert_eq!(device.pending(0).len(), 9);
    // The whole answer: everything done, the refusals listed with their reasons.
    let applied = block(dsvc.apply_push_answer(me, &req, &answer)).unwrap();
    assert_eq!(
        (
            applied.accepted,
            applied.merged,
            applied.rejected,
            applied.pending,
            applied.synced
        ),
        (5, 2, 4, 0, 9)
    );
    assert_eq!(applied.kept_server.len(), 1);
    assert!(
        device.pending(0).is_empty(),
        "the queue is empty: one refusal blocked nothing"
    );
    let listed = block(dsvc.sync_rejections(me, 100)).unwrap();
    let codes: Vec<_> = listed.iter().map(|r| (r.seq, r.error.code.as_str())).collect();
    let seqs: Vec<u64> = [1usize, 5, 6, 9].iter().map(|&i| req.entries[i].seq).collect();
    assert_eq!(
        codes,
        vec![
            (seqs[0], "validation"),
            (seqs[1], "conflict"),
            (seqs[2], "not_found"),
            (seqs[3], "validation")
        ]
    );
    assert_eq!(
        listed[0].entry, req.entries[1],
        "the refused entry, whole, for the app to show"
    );
    // Applying the same answer again records nothing twice; the rejections log nothing to sync.
    block(dsvc.apply_push_answer(me, &req, &answer)).unwrap();
    assert_eq!(block(dsvc.sync_rejections(me, 100)).unwrap().len(), 4);
    assert!(device.pending(0).is_empty());
    block(dsvc.dismiss_sync_rejection(me, listed[0].change_set)).unwrap();
    assert_eq!(block(dsvc.sync_rejections(me, 100)).unwrap().len(), 3);
    assert!(device.pending(0).is_empty());

    // Before any pull, the refused change sets' records are as the server has them (the answer
    // carried them): the refused create is gone, the lead whose deletion was refused is back with
    // the server's edit, the lead the server deleted is gone, the refused cancel is undone.
    let dget = |e: &str, id: Id| block(dsvc.get(me, e, id));
    assert_eq!(dget("lead", omar.id).unwrap_err().code(), "not_found");
    assert_eq!(dget("lead", leads[2].id).unwrap().str("notes"), Some("signed up"));
    assert_eq!(dget("lead", leads[3].id).unwrap_err().code(), "not_found");
    assert_eq!(
        dget("appointment", appts[1].id).unwrap().str("status"),
        Some("completed")
    );
    // One pull later the device holds exactly what the manager may read on the server, field for
    // field (derived and merged values included), and still has nothing to upload.
    let pages = catch_up(&server, &device);
    assert!(pages.iter().all(|p| !p.reset), "{pages:?}");
    assert_eq!(readable(&device, me), readable(&server, &server.manager));
    assert!(device.pending(0).is_empty());
    // A pull does not overwrite what the device changed and has not pushed yet.
    let later = dget("lead", leads[0].id).unwrap();
    block(dsvc.update(me, "lead", later.id, later.version, &obj(json!({"city": "Hull"})))).unwrap();
    sup(&later, later.version, json!({"notes": "server later"}));
    let pages = catch_up(&server, &device);
    assert_eq!(pages.iter().map(|p| p.kept_pending).sum::<u32>(), 1, "{pages:?}");
    assert_eq!(dget("lead", leads[0].id).unwrap().str("city"), Some("Hull"));
    // Its push merges onto the server's edit; the next pull brings the merged record back.
    let req = block(dsvc.prepare_push(me, "phone-1", 100)).unwrap();
    let answer = block(ssvc.replay_push(&server.manager, &req)).unwrap();
    assert_eq!(outcomes(&answer), vec!["merged[]"]);
    block(dsvc.apply_push_answer(me, &req, &answer)).unwrap();
    catch_up(&server, &device);
    let merged = dget("lead", leads[0].id).unwrap();
    assert_eq!(
        (merged.str("city"), merged.str("notes")),
        (Some("Hull"), Some("server later"))
    );
    assert_eq!(readable(&device, me), readable(&server, &server.manager));
}

/// Pulls from the server as the device's user until caught up, applying each page on the device
/// with the cursor the device kept.
fn catch_up<S: Store, D: Store>(server: &Fixture<S>, device: &Fixture<D>) -> Vec<PullApplied> {
    let me = &device.manager;
    let mut out = Vec::new();
    loop {
        let cursor = block(device.svc.pull_cursor(me)).unwrap();
        let page = block(server.svc.pull(&server.manager, cursor.as_deref(), 5)).unwrap();
        let applied = block(device.svc.apply_pull(me, &page)).unwrap();
        let more = applied.more;
        out.push(applied);
        assert!(out.len() < 500, "a pull ends");
        if !more {
            return out;
        }
    }
}

/// A replay's answer is stored by the transaction of the writes it answers: a change set whose
/// claim is gone or answered writes nothing; a replay that died before committing (its claim left
/// without an answer) is answered pending until the claim's lease ends, then replayed once.
pub fn replay_answers_land_with_their_writes<S: Store, D: Store>(server_store: S, device_store: D) {
    use crate::idempotency::{Answer, Settle, claim_lost, fingerprint, is_claim_lost};
    use crate::service::SYNC_CLAIM_LEASE_SECS;
    let server = Fixture::new(server_store);
    let store = server.svc.store();
    let (t, now) = (server.tenant, crate::clock::Clock::now(&*server.clock));
    let later = Timestamp(now.0 + 3_600_000_000);
    let claim = |key: &str| block(store.idempotency_claim(t, "sync:test", key, "fp", now, later)).unwrap();
    let settle = |key: &str, body: &str| Settle {
        caller: "sync:test".into(),
        key: key.into(),
        answer: Answer {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        },
        expires_at: later,
    };
    let insert = |first_name: &str, key: &str, body: &str| {
        let def = server.svc.entity("lead").unwrap();
        let (rec, mut cs) = block(server.svc.prepare_create(
            &server.sales_a,
            def,
            &obj(json!({"first_name": first_name})),
        ))
        .unwrap();
        cs.settle = Some(settle(key, body));
        (rec.id, block(store.apply(cs)))
    };
    let exists = |id| {
        block(store.get(t, server.svc.entity("lead").unwrap(), id))
            .unwrap()
            .is_some()
    };

    assert!(claim("k1").is_none(), "claimed");
    let (id, done) = insert("Ann", "k1", "\"accepted\"");
    done.unwrap();
    assert!(exists(id));
    let stored = claim("k1").expect("the key is kept");
    assert_eq!(stored.answer.map(|a| a.body).as_deref(), Some("\"accepted\""));
    assert_eq!(stored.expires_at, later, "the answer's lifetime, not the claim's");
    // Answered already, or never claimed: the change set is refused whole.
    for key in ["k1", "k2"] {
        let (id, refused) = insert("Bob", key, "\"accepted\"");
        let e = refused.unwrap_err();
        assert!(is_claim_lost(&e), "{e:?}");
        assert_eq!(e, claim_lost(key));
        assert!(!exists(id), "nothing written without its answer");
    }

    // A device's create whose first replay died after claiming and before committing.
    let ids = Arc::new(DeviceIds::default());
    let device = Fixture::with_ids(device_store, ids.clone());
    block(device.svc.mark_synced(&device.manager, u64::MAX)).unwrap();
    ids.offline.store(true, Ordering::SeqCst);
    let me = &device.manager;
    let nina = block(device.svc.create(me, "lead", &obj(json!({"first_name": "Nina"})))).unwrap();
    let req = block(device.svc.prepare_push(me, "phone-1", 100)).unwrap();
    let entry = &req.entries[0];
    let body = serde_json::to_value(entry).unwrap().to_string();
    let caller = format!("sync:{}", me.user_id.unwrap());
    let lease = Timestamp(now.0 + SYNC_CLAIM_LEASE_SECS * 1_000_000);
    let died = block(store.idempotency_claim(
        t,
        &caller,
        &entry.change_set.to_string(),
        &fingerprint(&[body.as_bytes()]),
        now,
        lease,
    ))
    .unwrap();
    assert!(died.is_none());
    let push = || outcomes(&block(server.svc.replay_push(&server.manager, &req)).unwrap());
    assert_eq!(push(), ["pending"], "the claim still runs, as far as anyone can tell");
    assert!(!exists(nina.id));
    server.clock.advance_micros(SYNC_CLAIM_LEASE_SECS * 1_000_000 + 1);
    assert_eq!(push(), ["accepted"], "the lease ended: replayed");
    assert!(exists(nina.id));
    let seen = server.writes_seen();
    assert_eq!(push(), ["accepted"], "answered from the stored answer");
    assert_eq!(server.writes_seen(), seen, "and not replayed twice");
}

fn company_lead<T: Store>(f: &Fixture<T>, name: &str) -> Record {
    f.lead(&f.sales_a, json!({"first_name": name, "company_name": "Acme Roofing"}))
}

/// A conversion made offline is replayed as the conversion: the contact (and company) get the
/// device's ids, so the device's later edits of them find them; a lead edited on the server is
/// converted from the server's state (merged); one converted on the server already is refused.
pub fn sync_push_replays_conversions<S: Store, D: Store>(server_store: S, device_store: D) {
    let ids = Arc::new(DeviceIds::default());
    let server = Fixture::new(server_store);
    let device = Fixture::with_ids(device_store, ids.clone());
    let leads: Vec<_> = ["Ann", "Bob", "Cay"].iter().map(|n| company_lead(&server, n)).collect();
    let dleads: Vec<_> = ["Ann", "Bob", "Cay"].iter().map(|n| company_lead(&device, n)).collect();
    assert_eq!(leads[2].id, dleads[2].id);
    let me = &device.manager;
    block(device.svc.mark_synced(me, u64::MAX)).unwrap();
    ids.offline.store(true, Ordering::SeqCst);
    let dsvc = &device.svc;
    let with_company = crate::service::ConvertOptions { create_company: true };
    let plain = crate::service::ConvertOptions::default();
    let ann = block(dsvc.convert_lead(me, leads[0].id, 1, &with_company)).unwrap();
    block(dsvc.update(me, "contact", ann.contact.id, 1, &obj(json!({"notes": "met on site"})))).unwrap();
    block(dsvc.convert_lead(me, leads[1].id, 1, &plain)).unwrap();
    block(dsvc.convert_lead(me, leads[2].id, 1, &plain)).unwrap();
    // Meanwhile on the server: Bob's lead edited, Cay's converted.
    let ssvc = &server.svc;
    block(ssvc.update(&server.sales_a, "lead", leads[1].id, 1, &obj(json!({"city": "Leeds"})))).unwrap();
    block(ssvc.convert_lead(&server.sales_a, leads[2].id, 1, &plain)).unwrap();

    let req = block(dsvc.prepare_push(me, "phone-1", 100)).unwrap();
    let use_cases: Vec<_> = req
        .entries
        .iter()
        .map(|e| e.intent.as_ref().map(|i| i.use_case()))
        .collect();
    assert_eq!(
        use_cases,
        [Some("convert"), Some("update"), Some("convert"), Some("convert")]
    );
    let answer = block(ssvc.replay_push(&server.manager, &req)).unwrap();
    assert_eq!(
        outcomes(&answer),
        [
            "accepted",
            "accepted",
            "merged[]",
            "rejected validation [\"contact_id:invalid_transition\"]"
        ]
    );
    let get = |e: &str, id: Id| block(ssvc.get(&server.manager, e, id)).unwrap();
    let contact = get("contact", ann.contact.id);
    assert_eq!(
        contact.str("notes"),
        Some("met on site"),
        "the device's id, so its edit found the contact"
    );
    let company_id = ann.company.as_ref().map(|c| c.id);
    assert_eq!(contact.id_of("company_id"), company_id);
    assert_eq!(get("company", company_id.unwrap()).str("name"), Some("Acme Roofing"));
    assert_eq!(get("lead", leads[0].id).id_of("contact_id"), Some(ann.contact.id));
    let bob = get("lead", leads[1].id);
    assert!(bob.id_of("contact_id").is_some());
    assert_eq!(bob.str("city"), Some("Leeds"), "the server's edit stays");
    // Retried: the same answers, nothing written twice.
    let seen = server.writes_seen();
    assert_eq!(block(ssvc.replay_push(&server.manager, &req)).unwrap(), answer);
    assert_eq!(server.writes_seen(), seen);
}
