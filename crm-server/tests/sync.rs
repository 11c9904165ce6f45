//! Sync over HTTP as a device uses it: a device (its own store with the sync log on, holding the
//! server's tenant, team and users) works offline, prepares a push, POSTs it to
//! `/api/v1/sync/push` with its user's token, and applies the answer; and a device pulls the
//! server's changes for its user from `/api/v1/sync/pull`.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use crm_core::access::Actor;
use crm_core::change::{ChangeSet, Write};
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::memory::MemoryStore;
use crm_core::query::{Filter, StoreQuery};
use crm_core::schema::EntityDef;
use crm_core::service::Service;
use crm_core::store::Store;
use crm_core::sync::{Outcome, PushAnswer, PushRequest};
use crm_core::value::Id;
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

type Device = Service<MemoryStore>;

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap()
}

/// A device holding the server's rows of `tenant` of these types (what a first sync brings down),
/// with nothing of them pending.
async fn device(env: &Env, tenant: Id, types: &[&'static EntityDef]) -> Device {
    let dev = Service::new(
        MemoryStore::new().with_sync_log(true),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let mut cs = ChangeSet::new(tenant);
    for def in types {
        let rows = env
            .store
            .query(tenant, def, &StoreQuery::by_id(Filter::All, 1000))
            .await
            .unwrap();
        cs.writes.extend(rows.into_iter().map(Write::Insert));
    }
    dev.store().apply(cs).await.unwrap();
    dev.mark_synced(&Actor::system(tenant), u64::MAX).await.unwrap();
    dev
}

async fn push(env: &Env, token: &str, req: &PushRequest) -> (u16, Json) {
    let r = env
        .post("/api/v1/sync/push", token, serde_json::to_value(req).unwrap())
        .await;
    (r.status, r.body)
}

fn outcomes(a: &PushAnswer) -> Vec<&'static str> {
    let PushAnswer::Results { results } = a else {
        panic!("{a:?}")
    };
    results
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Accepted => "accepted",
            Outcome::Merged { .. } => "merged",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Pending => "pending",
        })
        .collect()
}

use crm_core::entity::{LEAD, ORGANIZATION, TEAM, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pushes_offline_changes_and_a_retry_changes_nothing_twice() {
    let env = Env::start().await;
    let (admin, sales) = (env.a.token("admin").to_owned(), env.a.token("sales").to_owned());
    let lead = env
        .post("/api/v1/leads", &sales, json!({"first_name": "Ann", "notes": "old"}))
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    let lead_id = lead.body["id"].as_str().unwrap().to_owned();

    let dev = device(&env, env.a.id, &[&ORGANIZATION, &TEAM, &USER, &LEAD]).await;
    let me = dev.actor(env.a.id, env.a.user("sales")).await.unwrap();
    // Offline on the device: a new lead, and notes on Ann.
    let nina = dev
        .create(&me, "lead", &obj(json!({"first_name": "Nina"})))
        .await
        .unwrap();
    let ann = crm_core::value::parse_id(&lead_id).unwrap();
    dev.update(&me, "lead", ann, 1, &obj(json!({"notes": "gate 12"})))
        .await
        .unwrap();
    // Meanwhile on the server: the admin sets Ann's city.
    let r = env
        .patch(&format!("/api/v1/leads/{lead_id}"), &admin, 1, json!({"city": "York"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let req = dev.prepare_push(&me, "phone-1", 100).await.unwrap();
    assert_eq!(req.entries.len(), 2);
    let (status, body) = push(&env, &sales, &req).await;
    assert_eq!(status, 200, "{body}");
    let answer: PushAnswer = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(outcomes(&answer), ["accepted", "merged"]);

    let server_ann = env.get(&format!("/api/v1/leads/{lead_id}"), &admin).await.body;
    assert_eq!(
        (&server_ann["notes"], &server_ann["city"], &server_ann["version"]),
        (&json!("gate 12"), &json!("York"), &json!(3))
    );
    let server_nina = env.get(&format!("/api/v1/leads/{}", nina.id), &admin).await;
    assert_eq!(server_nina.status, 200, "the device's record id is kept");

    // The answer was lost: the device pushes the same request again, and nothing changes twice.
    let audit_before = env.get("/api/v1/audit?limit=1000", &admin).await.body;
    let (status, again) = push(&env, &sales, &req).await;
    assert_eq!((status, &again), (200, &body), "the remembered answers");
    let audit_after = env.get("/api/v1/audit?limit=1000", &admin).await.body;
    assert_eq!(audit_before, audit_after, "nothing replayed twice");
    let still = env.get(&format!("/api/v1/leads/{lead_id}"), &admin).await.body;
    assert_eq!(still["version"], json!(3));

    let applied = dev.apply_push_answer(&me, &req, &answer).await.unwrap();
    assert_eq!((applied.accepted, applied.merged, applied.pending), (1, 1, 0));
    assert!(dev.pending_changes(&me, 0, 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_by_a_user_without_permission_gets_rejected_entries() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let dev = device(&env, env.a.id, &[&ORGANIZATION, &TEAM, &USER]).await;
    let me = dev.actor(env.a.id, env.a.user("sales")).await.unwrap();
    dev.create(&me, "lead", &obj(json!({"first_name": "Nina"})))
        .await
        .unwrap();
    let req = dev.prepare_push(&me, "phone-1", 100).await.unwrap();

    // Another user pushes the sales user's change set: not theirs to replay.
    let (status, body) = push(&env, env.a.token("manager"), &req).await;
    assert_eq!(status, 200, "{body}");
    let answer: PushAnswer = serde_json::from_value(body).unwrap();
    assert_eq!(outcomes(&answer), ["rejected"]);

    // While the device was offline, its user became staff, who may not create leads.
    let user = format!("/api/v1/users/{}", env.a.user("sales"));
    let u = env.get(&user, &admin).await.body;
    let r = env
        .patch(&user, &admin, u["version"].as_u64().unwrap(), json!({"role": "staff"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (status, body) = push(&env, env.a.token("sales"), &req).await;
    assert_eq!(status, 200, "{body}");
    let answer: PushAnswer = serde_json::from_value(body).unwrap();
    let PushAnswer::Results { results } = &answer else {
        panic!("{answer:?}")
    };
    let Outcome::Rejected { error } = &results[0].outcome else {
        panic!("{results:?}")
    };
    assert_eq!(error.code, "forbidden");
    let leads = env.get("/api/v1/leads", &admin).await.body;
    assert_eq!(leads["items"], json!([]), "nothing written");

    // The device records the refusal and goes on.
    let applied = dev.apply_push_answer(&me, &req, &answer).await.unwrap();
    assert_eq!((applied.rejected, applied.pending), (1, 0));
    assert_eq!(dev.sync_rejections(&me, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pushes_are_client_errors() {
    let env = Env::start().await;
    let sales = env.a.token("sales").to_owned();
    let dev = device(&env, env.a.id, &[&ORGANIZATION, &TEAM, &USER]).await;
    let me = dev.actor(env.a.id, env.a.user("sales")).await.unwrap();
    dev.create(&me, "lead", &obj(json!({"first_name": "Nina"})))
        .await
        .unwrap();
    let req = dev.prepare_push(&me, "phone-1", 100).await.unwrap();

    // Not JSON, and JSON of another shape: 400.
    let r = env
        .call(
            "POST",
            "/api/v1/sync/push",
            Some(&sales),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("bad_request")),
        "{}",
        r.text
    );
    let r = env
        .post("/api/v1/sync/push", &sales, json!({"protocol": "one", "entries": {}}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Too many entries, and a device id out of bounds: 422 naming both fields.
    let mut big = req.clone();
    big.device = String::new();
    big.entries = vec![req.entries[0].clone(); crm_core::sync::MAX_PUSH_ENTRIES + 1];
    let (status, body) = push(&env, &sales, &big).await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["device", "entries"]);
    // Another protocol: the `upgrade` answer, nothing touched.
    let mut other = req.clone();
    other.protocol = 2;
    let (status, body) = push(&env, &sales, &other).await;
    assert_eq!((status, &body["answer"]), (200, &json!("upgrade")), "{body}");
    let leads = env.get("/api/v1/leads", &sales).await.body;
    assert_eq!(leads["items"], json!([]));
    // Without credentials: 401.
    let r = env
        .call(
            "POST",
            "/api/v1/sync/push",
            None,
            Some(serde_json::to_value(&req).unwrap()),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    // Over the body limit: 413.
    let mut huge = req.clone();
    huge.device = "x".repeat(2 << 20);
    let (status, body) = push(&env, &sales, &huge).await;
    assert_eq!((status, &body["code"]), (413, &json!("too_large")));
}

/// Pulls until caught up; returns the records held (entity, id → record) and the last cursor.
async fn pull_all(
    env: &Env,
    token: &str,
    mut cursor: Option<String>,
    held: &mut std::collections::BTreeMap<(String, String), Json>,
) -> String {
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/sync/pull?limit=3&cursor={c}"),
            None => "/api/v1/sync/pull?limit=3".to_owned(),
        };
        let r = env.get(&path, token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page: crm_core::sync::PullPage = serde_json::from_value(r.body).unwrap();
        if page.reset {
            held.clear();
        }
        for u in page.upserts {
            held.insert((u.entity, u.record["id"].as_str().unwrap().to_owned()), u.record);
        }
        for d in page.removals {
            held.remove(&(d.entity, d.id.to_string()));
        }
        cursor = Some(page.next);
        if !page.more {
            return cursor.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pulls_what_its_user_may_read_and_what_leaves_its_scope() {
    let env = Env::start().await;
    let (admin, sales) = (env.a.token("admin").to_owned(), env.a.token("sales").to_owned());
    let mut ids = Vec::new();
    for n in ["Ann", "Bob", "Cay", "Dee"] {
        let r = env.post("/api/v1/leads", &sales, json!({"first_name": n})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    // Another team's lead, which the sales user may not read.
    let team = env.post("/api/v1/teams", &admin, json!({"name": "South"})).await.body["id"].clone();
    let other = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({"first_name": "Eve", "owner_id": env.a.user("manager"), "team_id": team}),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.text);

    let mut held = std::collections::BTreeMap::new();
    let cursor = pull_all(&env, &sales, None, &mut held).await;
    let mut leads: Vec<&String> = held.keys().filter(|k| k.0 == "lead").map(|k| &k.1).collect();
    leads.sort();
    let mut want: Vec<&String> = ids.iter().collect();
    want.sort();
    assert_eq!(leads, want, "the user's leads, not the other team's");
    let listed = env.get(&format!("/api/v1/leads/{}", ids[0]), &sales).await.body;
    assert_eq!(
        held[&("lead".to_owned(), ids[0].clone())],
        listed,
        "as a get returns it"
    );

    // The admin moves Bob to the other team and edits Ann.
    let r = env
        .patch(
            &format!("/api/v1/leads/{}", ids[1]),
            &admin,
            1,
            json!({"team_id": team, "owner_id": env.a.user("manager")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .patch(
            &format!("/api/v1/leads/{}", ids[0]),
            &admin,
            1,
            json!({"notes": "gate 12"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    pull_all(&env, &sales, Some(cursor.clone()), &mut held).await;
    assert!(
        !held.contains_key(&("lead".to_owned(), ids[1].clone())),
        "Bob left the scope"
    );
    assert_eq!(held[&("lead".to_owned(), ids[0].clone())]["notes"], json!("gate 12"));

    // Client mistakes are 4xx: a cursor the server did not issue names the field; a bad limit.
    let r = env.get("/api/v1/sync/pull?cursor=nonsense", &sales).await;
    assert_eq!(
        (r.status, &r.body["errors"][0]["path"]),
        (422, &json!("cursor")),
        "{}",
        r.text
    );
    let r = env.get("/api/v1/sync/pull?limit=0", &sales).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = env.call("GET", "/api/v1/sync/pull", None, None, &[]).await;
    assert_eq!(r.status, 401);
    // Another user's cursor starts a snapshot of their own.
    let r = env
        .get(&format!("/api/v1/sync/pull?cursor={cursor}"), env.a.token("field_tech"))
        .await;
    assert_eq!((r.status, &r.body["reset"]), (200, &json!(true)), "{}", r.text);
}

/// A browser or phone with nothing on it: `GET /api/v1/sync/provision` gives it the organization
/// and its user, it pulls its snapshot, edits offline and pushes, all through HTTP only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_starts_from_the_provision_route() {
    let env = Env::start().await;
    let sales = env.a.token("sales").to_owned();
    let lead = env
        .post("/api/v1/leads", &sales, json!({"first_name": "Provisioned"}))
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    let r = env.get("/api/v1/sync/provision", &sales).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p: crm_core::sync::Provision = serde_json::from_value(r.body).unwrap();
    let dev = Service::new(
        MemoryStore::new().with_sync_log(true),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let me = dev.apply_provision(&p).await.unwrap();
    assert_eq!(me.role.name, "sales");
    catch_up(&env, &sales, &dev, &me).await;
    let id: Id = lead.body["id"].as_str().unwrap().parse().unwrap();
    let held = dev.get(&me, "lead", id).await.unwrap();
    dev.update(
        &me,
        "lead",
        id,
        held.version,
        &obj(json!({"notes": "typed in the browser"})),
    )
    .await
    .unwrap();
    let req = dev.prepare_push(&me, "browser-1", 10).await.unwrap();
    let (status, body) = push(&env, &sales, &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcomes(&serde_json::from_value(body).unwrap()), ["accepted"]);
    let r = env.get(&format!("/api/v1/leads/{id}"), &sales).await;
    assert_eq!(r.body["notes"], json!("typed in the browser"));
    let r = env.call("GET", "/api/v1/sync/provision", None, None, &[]).await;
    assert_eq!(r.status, 401);
}

/// A photo taken offline: its bytes go up with `PUT /api/v1/sync/blobs/{sha256}` (checked against
/// the name), then the push replays the attach under the device's id; without the bytes the entry
/// is answered pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_photo_goes_up_with_its_bytes() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let env = Env::start().await;
    let sales = env.a.token("sales").to_owned();
    let lead = env.post("/api/v1/leads", &sales, json!({"first_name": "Roof"})).await;
    let lead_id: Id = lead.body["id"].as_str().unwrap().parse().unwrap();
    let p: crm_core::sync::Provision =
        serde_json::from_value(env.get("/api/v1/sync/provision", &sales).await.body).unwrap();
    let dev = Service::new(
        MemoryStore::new().with_sync_log(true),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    )
    .with_blob_store(Arc::new(crm_core::blob::MemoryBlobStore::new()));
    let me = dev.apply_provision(&p).await.unwrap();
    catch_up(&env, &sales, &dev, &me).await;
    let bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR photo".to_vec();
    let input = crm_core::service::AttachInput {
        kind: "photo".into(),
        file_name: "roof.png".into(),
        ..Default::default()
    };
    let photo = dev.attach(&me, "lead", lead_id, &input, &mut &bytes[..]).await.unwrap();
    let sha = photo.str("sha256").unwrap().to_owned();

    let req = dev.prepare_push(&me, "phone-1", 10).await.unwrap();
    let (status, body) = push(&env, &sales, &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&serde_json::from_value(body).unwrap()),
        ["pending"],
        "no bytes yet"
    );

    let put = |name: String, content: Vec<u8>| {
        hyper::Request::builder()
            .method("PUT")
            .uri(format!("{}/api/v1/sync/blobs/{name}", env.base))
            .header("authorization", format!("Bearer {sales}"))
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(content)))
            .unwrap()
    };
    let wrong = env.send(put(sha.clone(), b"other bytes".to_vec())).await;
    assert_eq!(
        (wrong.status, &wrong.body["errors"][0]["path"]),
        (422, &json!("sha256")),
        "{}",
        wrong.text
    );
    let ok = env.send(put(sha.clone(), bytes.clone())).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    let (status, body) = push(&env, &sales, &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcomes(&serde_json::from_value(body).unwrap()), ["accepted"]);
    let content = env
        .get(&format!("/api/v1/attachments/{}/content", photo.id), &sales)
        .await;
    assert_eq!((content.status, content.bytes), (200, bytes));
}

/// Pulls over HTTP until the device is caught up.
async fn catch_up(env: &Env, token: &str, dev: &Device, me: &Actor) {
    loop {
        let path = match dev.pull_cursor(me).await.unwrap() {
            Some(c) => format!("/api/v1/sync/pull?limit=50&cursor={c}"),
            None => "/api/v1/sync/pull?limit=50".to_owned(),
        };
        let r = env.get(&path, token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page: crm_core::sync::PullPage = serde_json::from_value(r.body).unwrap();
        if !dev.apply_pull(me, &page).await.unwrap().more {
            return;
        }
    }
}
