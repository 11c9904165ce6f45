//! Authentication, revocation, limits, the event stream, webhooks and the OpenAPI document, through
//! a real server on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, PASSWORD};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use std::time::Duration;

fn b64(v: &Json) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let env = Env::start().await;
    let good = env.a.token("admin").to_owned();
    assert_eq!(env.get("/api/v1/leads", &good).await.status, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let claims: Json = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sign = |c: &Json, key: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            c,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    expired["nbf"] = json!(now - 7200);
    let mut audience = claims.clone();
    audience["aud"] = json!("someone-else");
    let mut future = claims.clone();
    future["nbf"] = json!(now + 3600);
    let mut tampered = claims.clone();
    tampered["sub"] = json!(env.a.user("staff"));
    let mut hs512 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    hs512.typ = Some("JWT".into());
    let forgeries = [
        // alg none, with and without the signature
        format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), parts[1]),
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            parts[1],
            parts[2]
        ),
        // wrong key
        sign(&claims, b"a-key-that-is-not-the-servers-key!!"),
        // payload changed under the original signature
        format!("{}.{}.{}", parts[0], b64(&tampered), parts[2]),
        // right key, but expired / another audience / not yet valid / another algorithm
        sign(&expired, common::JWT_SECRET),
        sign(&audience, common::JWT_SECRET),
        sign(&future, common::JWT_SECRET),
        jsonwebtoken::encode(
            &hs512,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET),
        )
        .unwrap(),
        "not-a-token".to_owned(),
        "crmk_00000000000000000000000000000000_00000000000000000000000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .to_owned(),
    ];
    // The same claims signed with the right key pass: the refusals above are about what was changed.
    assert_eq!(
        env.get("/api/v1/leads", &sign(&claims, common::JWT_SECRET))
            .await
            .status,
        200
    );
    for f in &forgeries {
        let r = env.get("/api/v1/leads", f).await;
        assert_eq!(r.status, 401, "{f}");
        assert_eq!(r.body["code"], "unauthenticated");
        assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    assert_eq!(env.call("GET", "/api/v1/leads", None, None, &[]).await.status, 401);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_refresh_rotation_password_change_deactivation_and_role_change_take_effect() {
    let env = Env::start().await;
    let (org, email) = (env.a.id, env.a.email("sales").to_owned());
    let login = env.login(org, &email, PASSWORD).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(env.get("/api/v1/auth/me", &access).await.body["role"]["name"], "sales");

    // Wrong password: 401, generic.
    let r = env.login(org, &email, "wrong-password-123").await;
    assert_eq!((r.status, r.body["code"].as_str()), (401, Some("unauthenticated")));
    let r = env.login(org, "nobody@acme.test", PASSWORD).await;
    assert_eq!(r.status, 401);

    // Refresh rotates: the old refresh token is spent, and replaying it ends the session.
    let r = env
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(env.get("/api/v1/leads", &access2).await.status, 200);
    let r = env
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        env.get("/api/v1/leads", &access2).await.status,
        401,
        "replay revoked the session"
    );

    // Sign-out.
    let login = env.login(org, &email, PASSWORD).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        env.call("POST", "/api/v1/auth/logout", Some(&access), None, &[])
            .await
            .status,
        204
    );
    assert_eq!(env.get("/api/v1/leads", &access).await.status, 401);

    // Password change: policy from the core, current password checked, every session signed out.
    let login = env.login(org, &email, PASSWORD).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let other = env.login(org, &email, PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = env
        .call(
            "PUT",
            "/api/v1/auth/password",
            Some(&access),
            Some(json!({ "current_password": PASSWORD, "new_password": "short" })),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["code"].as_str()),
        (422, Some("too_short"))
    );
    let r = env
        .call(
            "PUT",
            "/api/v1/auth/password",
            Some(&access),
            Some(json!({ "current_password": "not-it-at-all", "new_password": "a-much-longer-new-password" })),
            &[],
        )
        .await;
    assert_eq!(r.status, 422);
    let r = env
        .call(
            "PUT",
            "/api/v1/auth/password",
            Some(&access),
            Some(json!({ "current_password": PASSWORD, "new_password": "a-much-longer-new-password" })),
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(env.get("/api/v1/leads", &access).await.status, 401);
    assert_eq!(env.get("/api/v1/leads", &other).await.status, 401);
    assert_eq!(env.login(org, &email, PASSWORD).await.status, 401);
    let fresh = env.login(org, &email, "a-much-longer-new-password").await;
    let access = fresh.body["access_token"].as_str().unwrap().to_owned();

    // Role change and deactivation by an admin, effective on the next request.
    let admin = env.a.token("admin").to_owned();
    let uid = env.a.user("sales");
    let v = env.get(&format!("/api/v1/users/{uid}"), &admin).await.body["version"]
        .as_u64()
        .unwrap();
    assert_eq!(
        env.patch(&format!("/api/v1/users/{uid}"), &admin, v, json!({ "role": "staff" }))
            .await
            .status,
        200
    );
    assert_eq!(env.get("/api/v1/leads", &access).await.status, 403, "now staff");
    assert_eq!(
        env.patch(
            &format!("/api/v1/users/{uid}"),
            &admin,
            v + 1,
            json!({ "active": false })
        )
        .await
        .status,
        200
    );
    assert_eq!(env.get("/api/v1/contacts", &access).await.status, 401, "deactivated");
    assert_eq!(env.login(org, &email, "a-much-longer-new-password").await.status, 401);
    env.stop().await;
}

/// `crm_auth_lookups_total{outcome}` as the server reports it.
async fn auth_lookups(env: &Env, outcome: &str) -> u64 {
    let text = env.call("GET", "/metrics", None, None, &[]).await.text;
    let prefix = format!("crm_auth_lookups_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_tokens_are_cached_and_other_instances_changes_seen_within_the_window() {
    use crm_core::access::Actor;
    use crm_core::clock::{RandomIds, SystemClock};
    use crm_core::service::Service;
    use std::sync::Arc;
    let window = Duration::from_secs(1);
    let env = Env::with(|c| c.auth_cache = window).await;
    let (token, key_owner) = (env.a.token("sales").to_owned(), env.a.token("manager").to_owned());
    let r = env
        .post(
            "/api/v1/api_keys",
            &key_owner,
            json!({ "name": "etl", "role": "sales" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    // The first request with a token reads the store; the next ones are answered from the cache.
    for t in [&token, &key] {
        let (cached, store) = (auth_lookups(&env, "cached").await, auth_lookups(&env, "store").await);
        for _ in 0..3 {
            assert_eq!(env.get("/api/v1/leads", t).await.status, 200);
        }
        assert_eq!(auth_lookups(&env, "store").await - store, 1, "resolved once");
        assert_eq!(auth_lookups(&env, "cached").await - cached, 2, "then cached");
    }
    // Another instance over the same database (a second service, whose writes this server does
    // not see) deactivates the user and the key's owner: this server notices once the window ends.
    let other = Service::new(env.store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    let sys = Actor::system(env.a.id);
    for role in ["sales", "manager"] {
        let uid = env.a.user(role);
        let u = other.get(&sys, "user", uid).await.unwrap();
        let patch = json!({ "active": false }).as_object().cloned().unwrap();
        other.update(&sys, "user", uid, u.version, &patch).await.unwrap();
    }
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(env.get("/api/v1/leads", &token).await.status, 401, "deactivated");
    assert_eq!(
        env.get("/api/v1/leads", &key).await.status,
        401,
        "its owner deactivated"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_bound_to_a_role_and_revocable() {
    let env = Env::start().await;
    let manager = env.a.token("manager").to_owned();
    let r = env
        .post("/api/v1/api_keys", &manager, json!({ "name": "etl", "role": "sales" }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["api_key"]["id"].as_str().unwrap().to_owned();
    assert!(r.body["api_key"].get("key_hash").is_none());
    assert_eq!(env.get("/api/v1/auth/me", &key).await.body["role"]["name"], "sales");
    assert_eq!(env.get("/api/v1/leads", &key).await.status, 200);
    assert_eq!(env.get("/api/v1/roles", &key).await.status, 200);
    assert_eq!(
        env.post("/api/v1/teams", &key, json!({ "name": "x" })).await.status,
        403
    );
    let listed = env.get("/api/v1/api_keys", &manager).await;
    assert!(
        !listed.text.contains(&key[key.len() - 20..]),
        "the secret is never listed"
    );
    let r = env
        .call(
            "DELETE",
            &format!("/api/v1/api_keys/{id}"),
            Some(&manager),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(env.get("/api/v1/leads", &key).await.status, 401);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_body_limits_and_failed_sign_ins_are_refused_with_problems() {
    let env = Env::with(|c| {
        // The setup signs 10 users in from one address: the burst covers that.
        c.rate_limit = 5;
        c.rate_burst = 12;
        c.max_body = 2048;
        c.login_failures = 3;
    })
    .await;
    let token = env.a.token("admin").to_owned();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(env.get("/api/v1/teams", &token).await);
    }
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("some requests are rate limited");
    assert!(limited.headers.get("retry-after").is_some());
    assert_eq!(limited.body["code"], "rate_limited");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let other = env.a.token("manager").to_owned();
    let big = json!({ "first_name": "x".repeat(4000) });
    let r = env.post("/api/v1/leads", &other, big).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (413, Some("too_large")),
        "{}",
        r.text
    );

    let (org, email) = (env.a.id, env.a.email("staff").to_owned());
    for _ in 0..3 {
        assert_eq!(env.login(org, &email, "wrong-password-xyz").await.status, 401);
    }
    let r = env.login(org, &email, PASSWORD).await;
    assert_eq!(r.status, 429, "throttled even with the right password");
    assert!(r.headers.get("retry-after").is_some());
    env.stop().await;
}

/// Reads SSE frames until `n` events (id, event, data) have arrived or the time is up.
async fn read_events(res: hyper::Response<hyper::body::Incoming>, n: usize) -> Vec<(u64, String, Json)> {
    let mut body = res.into_body();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await;
        let Ok(Some(Ok(frame))) = frame else { break };
        if let Ok(data) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), Json::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).unwrap_or(Json::Null);
                }
            }
            if let Some(id) = id {
                out.push((id, kind, data));
            }
        }
    }
    out
}

async fn open_stream(env: &Env, token: &str, last: Option<u64>) -> hyper::Response<hyper::body::Incoming> {
    let mut b =
        hyper::Request::get(format!("{}/api/v1/events", env.base)).header("authorization", format!("Bearer {token}"));
    if let Some(l) = last {
        b = b.header("last-event-id", l.to_string());
    }
    let res = env
        .http
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-type").unwrap(), "text/event-stream");
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_resumes_from_last_event_id_and_shows_only_what_the_reader_may_read() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let tech = env.a.token("field_tech").to_owned();
    let history = read_events(open_stream(&env, &admin, None).await, 1000).await;
    let last = history.last().map_or(0, |e| e.0);
    // Live: a lead created after connecting arrives.
    let stream = open_stream(&env, &admin, Some(last)).await;
    let tech_id = env.a.user("field_tech");
    let created = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({ "first_name": "Live", "owner_id": tech_id }),
        )
        .await;
    assert_eq!(created.status, 201);
    env.post("/api/v1/leads", &admin, json!({ "first_name": "NotTechs" }))
        .await;
    let got = read_events(stream, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1, "lead.created");
    assert_eq!(got[0].2["payload"]["first_name"], "Live");
    assert!(got[0].0 > last);
    // Resume after the first: only the second.
    let again = read_events(open_stream(&env, &admin, Some(got[0].0)).await, 1).await;
    assert_eq!(again[0].0, got[1].0);
    // The field tech sees the lead assigned to them, not the other one.
    let seen = read_events(open_stream(&env, &tech, Some(last)).await, 2).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].2["payload"]["first_name"], "Live");
    // Another tenant's stream sees none of it.
    let b = read_events(open_stream(&env, env.b.token("admin"), Some(0)).await, 1000).await;
    assert!(b.iter().all(|e| e.2["tenant"] == json!(env.b.id)));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_with_backoff_and_resume() {
    use std::sync::{Arc, Mutex};
    // A receiver that fails the first two attempts, then accepts.
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let s2 = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = s2.clone();
            async move {
                let mut v = seen.lock().unwrap();
                let h = |k: &str| {
                    headers
                        .get(k)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                v.push((h("x-crm-event"), h("x-crm-signature"), body));
                if v.len() <= 2 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    // The receiver is on loopback: allowed only by the operator's setting.
    let env = Env::with(|c| c.webhook_addresses = crm_core::address::AddressPolicy::Any).await;
    let admin = env.a.token("admin").to_owned();
    let r = env
        .post(
            "/api/v1/webhooks",
            &admin,
            json!({ "url": format!("http://{hook_addr}/hook"), "events": ["lead.created"] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let hook_id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    assert!(r.body["webhook"].get("secret").is_none());
    env.post("/api/v1/contacts", &admin, json!({ "first_name": "Not subscribed" }))
        .await;
    env.post("/api/v1/leads", &admin, json!({ "first_name": "Hooked" }))
        .await;
    // Two failures (1 s, then 2 s backoff), then delivery.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    for (kind, sig, body) in &got {
        assert_eq!(kind, "lead.created");
        let ts: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(
            sig,
            &crm_server::webhooks::signature(&secret, ts, body.as_bytes()),
            "HMAC over t.body"
        );
        assert_eq!(
            serde_json::from_str::<Json>(body).unwrap()["payload"]["first_name"],
            "Hooked"
        );
    }
    // The delivery state is stored: caught up, no pending attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = env.get(&format!("/api/v1/webhooks/{hook_id}"), &admin).await;
    assert_eq!(
        (w.body["attempts"].as_i64(), w.body["last_status"].as_i64()),
        (Some(0), Some(200)),
        "{}",
        w.text
    );
    env.stop().await;
}

/// A webhook delivers what its creator may read: one created by a user who reads only their own leads
/// receives their leads' events and never another user's, which sits between them in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receives_only_what_its_creator_may_read() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = s2.clone();
            async move {
                let j: Json = serde_json::from_str(&body).unwrap();
                let name = j["payload"]["first_name"].as_str().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(name);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let env = Env::with(|c| c.webhook_addresses = crm_core::address::AddressPolicy::Any).await;
    let admin = env.a.token("admin").to_owned();

    // The sales user becomes a user who reads only their own leads and may register webhooks.
    let grants = json!({"lead": {"actions": {"read": "own", "create": "own"}},
        "webhook": {"actions": {"create": "tenant", "read": "tenant"}}});
    let role = env
        .post("/api/v1/roles", &admin, json!({"name": "hook_owner", "grants": grants}))
        .await;
    assert_eq!(role.status, 201, "{}", role.text);
    let uid = env.a.user("sales");
    let user = env.get(&format!("/api/v1/users/{uid}"), &admin).await;
    let moved = env
        .patch(
            &format!("/api/v1/users/{uid}"),
            &admin,
            user.body["version"].as_u64().unwrap(),
            json!({"role": "hook_owner"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let own = env.a.token("sales").to_owned();
    let hook = env
        .post(
            "/api/v1/webhooks",
            &own,
            json!({ "url": format!("http://{hook_addr}/hook"), "events": ["lead.created"] }),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    assert_eq!(hook.body["webhook"]["created_by"], json!(uid.to_string()));

    for (token, name) in [(&own, "Mine"), (&admin, "Theirs"), (&own, "Mine too")] {
        let r = env.post("/api/v1/leads", token, json!({ "first_name": name })).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // Delivery is in outbox order: once the last one arrived, the one between was decided.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.lock().unwrap(), ["Mine", "Mine too"]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_answers_only_documented_statuses() {
    let env = Env::start().await;
    let doc = env.call("GET", "/api/v1/openapi.json", None, None, &[]).await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let (api, _) = crm_server::api::<std::sync::Arc<crm_store::SqliteStore>>(&crm_server::Config::for_tests());
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        api.ops.len(),
        paths.values().map(|p| p.as_object().unwrap().len()).sum::<usize>()
    );
    let admin = env.a.token("admin").to_owned();
    let mut checked = 0;
    for op in &api.ops {
        let documented = &paths[&op.path][op.method]["responses"];
        assert!(documented.is_object(), "{} {} is not documented", op.method, op.path);
        if op.path == "/api/v1/events" {
            continue; // a stream: covered above
        }
        // Call every route as an admin with an unknown id and an empty object: whatever it answers
        // must be a documented status.
        let path = op.path.replace("{id}", "0190a5a0-0000-7000-8000-000000000000");
        let body = matches!(op.method, "post" | "put" | "patch").then(|| json!({}));
        let token = if op.path.starts_with("/api/v1/organizations") {
            "platform-admin-token-platform-admin-token"
        } else {
            &admin
        };
        let r = env
            .call(
                &op.method.to_uppercase(),
                &path,
                Some(token),
                body,
                &[("if-match", "\"1\"")],
            )
            .await;
        assert!(
            documented.get(r.status.to_string()).is_some(),
            "{} {} answered {} which is not documented: {}",
            op.method,
            op.path,
            r.status,
            r.text
        );
        checked += 1;
    }
    assert!(checked > 60);
    // Unknown routes and methods are problems too.
    let r = env.get("/api/v1/nope", &admin).await;
    assert_eq!(
        (r.status, r.headers.get("content-type").unwrap().to_str().unwrap()),
        (404, "application/problem+json")
    );
    let r = env.call("PUT", "/api/v1/leads", Some(&admin), None, &[]).await;
    assert_eq!(r.status, 405);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_export_and_operations_endpoints() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let csv = "first_name,email,source\nAda,ada@x.test,website\nBad,not-an-email,website\n";
    let form = |mode: &str| {
        let boundary = "XBOUNDARYX";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        hyper::Request::post(format!("{}/api/v1/leads/import?mode={mode}", env.base))
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let before = env.writes(env.a.id).await;
    let r = env.send(form("dry_run")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["valid"].as_u64(),
            r.body["invalid"].as_u64(),
            r.body["applied"].as_bool()
        ),
        (Some(1), Some(1), Some(false))
    );
    assert_eq!(r.body["errors"][0]["errors"][0]["path"], "email");
    assert_eq!(before, env.writes(env.a.id).await);
    let r = env.send(form("all_or_nothing")).await;
    assert_eq!(r.body["applied"], false);
    let r = env.send(form("valid_rows_only")).await;
    assert_eq!(
        (r.body["created"].as_u64(), r.body["applied"].as_bool()),
        (Some(1), Some(true))
    );

    let r = env
        .get(
            "/api/v1/leads/export?fields=first_name,email&q=email:ada%40x.test",
            &admin,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "text/csv; charset=utf-8");
    assert_eq!(
        r.text.lines().collect::<Vec<_>>(),
        ["first_name,email", "Ada,ada@x.test"]
    );
    let r = env.get("/api/v1/leads/export", env.a.token("staff")).await;
    assert_eq!((r.status, r.body["code"].as_str()), (403, Some("forbidden")));

    assert_eq!(env.call("GET", "/healthz", None, None, &[]).await.status, 200);
    assert_eq!(env.call("GET", "/readyz", None, None, &[]).await.status, 200);
    let m = env.call("GET", "/metrics", None, None, &[]).await.text;
    assert!(
        m.contains("crm_http_requests_total{method=\"GET\",route=\"/api/v1/leads/export\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(m.contains("crm_http_request_duration_seconds_bucket"));
    let docs = env.call("GET", "/docs", None, None, &[]).await.text;
    assert!(docs.contains("/api/v1/openapi.json"));
    env.stop().await;
}

/// Reads reuse the store's reader connections: the store opens one per read running at once (at
/// most the 16 concurrent requests here, plus the set-up's), never one per request, whatever the
/// number of requests (the `/metrics` counter says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_open_no_connection_per_request() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let opened = || async {
        let m = env.call("GET", "/metrics", None, None, &[]).await.text;
        m.lines()
            .find_map(|l| l.strip_prefix("crm_store_connections_opened_total "))
            .unwrap_or_else(|| panic!("no connection counter in {m}"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = opened().await;
    for _ in 0..12 {
        let round = futures_util::future::join_all((0..16).map(|_| env.get("/api/v1/leads?limit=5", &admin)));
        for r in round.await {
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    let during = opened().await - before;
    assert!(during <= 16, "192 reads, 16 at a time, opened {during} connections");
    env.stop().await;
}
