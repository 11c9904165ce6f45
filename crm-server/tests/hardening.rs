//! Regression tests for what outside testing found (issue 18), over HTTP: the audit trail of a record
//! outside the caller's read scope is not found whatever the parameters, a tenant cannot lose its
//! last active admin, bad list and export requests are refused before any byte, webhooks reach
//! public addresses only, the reference page at `/docs` loads nothing from elsewhere, an oversized
//! request head gets a problem document, and two instances deliver each webhook event once.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_by_id_alone_respects_the_read_scope() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    // A lead owned by the admin: outside every sales user's, technician's and staff user's scope.
    let lead = env.post("/api/v1/leads", admin, json!({"first_name": "Hidden"})).await;
    let id = lead.body["id"].as_str().unwrap().to_owned();
    for role in ["field_tech", "staff"] {
        for q in [format!("entity_id={id}"), format!("entity=lead&entity_id={id}")] {
            let res = env.get(&format!("/api/v1/audit?{q}"), env.a.token(role)).await;
            assert_eq!(res.status, 404, "{role} {q}: {}", res.text);
            assert!(!res.text.contains("Hidden"));
        }
    }
    let own = env.get(&format!("/api/v1/audit?entity_id={id}"), admin).await;
    assert_eq!(own.status, 200);
    // Another tenant's admin gets nothing either.
    let foreign = env
        .get(&format!("/api/v1/audit?entity_id={id}"), env.b.token("admin"))
        .await;
    assert!(
        foreign.status == 404 || foreign.body.as_array().is_some_and(Vec::is_empty),
        "{}",
        foreign.text
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_deactivate_or_demote_themselves() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    let me = env.a.user("admin");
    let before = env.writes(env.a.id).await;
    for patch in [json!({"active": false}), json!({"role": "sales"})] {
        let res = env.patch(&format!("/api/v1/users/{me}"), admin, 1, patch).await;
        assert_eq!(res.status, 422, "{}", res.text);
        assert_eq!(res.body["errors"][0]["code"], "last_admin");
    }
    let del = env
        .call(
            "DELETE",
            &format!("/api/v1/users/{me}"),
            Some(admin),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(del.status, 422, "{}", del.text);
    assert_eq!(env.writes(env.a.id).await, before);
    // The admin still works.
    assert_eq!(env.get("/api/v1/leads", admin).await.status, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_and_export_requests_are_refused_before_any_byte() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    env.post("/api/v1/leads", admin, json!({"first_name": "Ann"})).await;
    for path in [
        "/api/v1/leads?sort=,,,",
        "/api/v1/leads?sort=score,",
        "/api/v1/leads?q=%FF%FE",
        "/api/v1/leads/export?sort=zzz",
        "/api/v1/contacts/export?sort=zzz",
        "/api/v1/leads/export?q=nosuchfield%3A1",
        "/api/v1/leads/export?sort=,,",
    ] {
        let res = env.get(path, admin).await;
        assert_eq!(res.status, 400, "{path}: {}", res.text);
        let ct = res
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("application/problem+json"), "{path}: {ct}");
    }
    let ok = env.get("/api/v1/leads/export?sort=-created_at", admin).await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("Ann"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_internal_addresses_are_refused_at_registration() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    let before = env.writes(env.a.id).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
    ] {
        let res = env.post("/api/v1/webhooks", admin, json!({ "url": url })).await;
        assert_eq!(res.status, 422, "{url}: {}", res.text);
        assert_eq!(res.body["errors"][0]["path"], "url", "{url}");
        assert_eq!(res.body["errors"][0]["code"], "address_not_allowed", "{url}");
    }
    assert_eq!(env.writes(env.a.id).await, before, "nothing written");
    let ok = env
        .post(
            "/api/v1/webhooks",
            admin,
            json!({ "url": "https://hooks.example.test/x" }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    env.stop().await;
}

/// A webhook stored while private addresses were allowed (or a name whose DNS answer changed) is
/// checked again at delivery: a name resolving to loopback and a loopback literal get nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_resolving_to_internal_addresses_are_not_delivered() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            h2.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::OK }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let env = Env::start().await;
    let lax = crm_core::service::Service::new(
        env.store.clone(),
        Arc::new(crm_core::clock::SystemClock),
        Arc::new(crm_core::clock::RandomIds),
    )
    .with_webhook_addresses(crm_core::address::AddressPolicy::Any);
    let system = crm_core::access::Actor::system(env.a.id);
    let mut hooks = Vec::new();
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        let input = json!({ "url": url }).as_object().cloned().unwrap();
        let hook = lax
            .create_webhook(&system, &input, "s3cret-s3cret-s3cret")
            .await
            .unwrap();
        hooks.push(hook.id);
    }
    let admin = env.a.token("admin");
    env.post("/api/v1/leads", admin, json!({"first_name": "Hooked"})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut errors = Vec::new();
    while std::time::Instant::now() < deadline {
        errors.clear();
        for id in &hooks {
            let w = env.get(&format!("/api/v1/webhooks/{id}"), admin).await;
            errors.push(w.body["last_error"].as_str().unwrap_or_default().to_owned());
        }
        if errors.iter().all(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        errors[0].contains("address not allowed: localhost resolves to") && errors[0].contains("loopback"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("address not allowed: 127.0.0.1 (a loopback address)"),
        "{errors:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the receiver got nothing");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_loads_everything_from_this_server() {
    let env = Env::start().await;
    let page = env.call("GET", "/docs", None, None, &[]).await;
    assert_eq!(page.status, 200);
    let header = |r: &common::Res, h: &str| {
        r.headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = page.text.to_lowercase();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("src=\"//"),
        "{html}"
    );
    // Every script the page names is served from the binary, as JavaScript, cached for good.
    let scripts: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!scripts.is_empty(), "{html}");
    for src in scripts {
        assert!(src.starts_with("/docs/assets/"), "{src}");
        let js = env.call("GET", src, None, None, &[]).await;
        assert_eq!(js.status, 200, "{src}");
        assert!(header(&js, "content-type").starts_with("text/javascript"), "{src}");
        assert!(header(&js, "cache-control").contains("immutable"), "{src}");
        assert!(js.text.contains("RapiDoc") && js.text.len() > 100_000, "{src}");
    }
    let missing = env.call("GET", "/docs/assets/nope.js", None, None, &[]).await;
    assert_eq!(missing.status, 404);
    assert!(header(&missing, "content-type").starts_with("application/problem+json"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_query_string_gets_a_problem_document() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start().await;
    let admin = env.a.token("admin");
    // Raw: no HTTP client builds a URI this long. hyper refuses it before the router.
    let mut sock = tokio::net::TcpStream::connect(env.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let req = format!(
        "GET /api/v1/leads?q={} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {admin}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    // The server may answer and close before it has read everything.
    let _ = sock.write_all(req.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 431 "), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (body["status"].as_u64(), body["code"].as_str()),
        (Some(431), Some("too_large"))
    );
    // So does a head made large by its headers; an ordinary long query is read as usual.
    let padded = "x".repeat(40 << 10);
    let res = env
        .call("GET", "/api/v1/leads", Some(admin), None, &[("x-padding", &padded)])
        .await;
    assert_eq!((res.status, res.body["code"].as_str()), (431, Some("too_large")));
    let long = format!("/api/v1/leads?q={}", "a".repeat(5000));
    let res = env.get(&long, admin).await;
    assert_ne!(res.status, 431, "{}", res.text);
    env.stop().await;
}

/// Two server instances over one database, each running its delivery worker, with a slow receiver
/// (so both see the same due webhook): every event arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_webhook_event_once() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let s2 = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = s2.clone();
            async move {
                let id = headers
                    .get("x-crm-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let lax = |c: &mut crm_server::Config| c.webhook_addresses = crm_core::address::AddressPolicy::Any;
    let env = Env::with(lax).await;
    let mut cfg = crm_server::Config::for_tests();
    cfg.poll_interval = Duration::from_millis(20);
    lax(&mut cfg);
    let svc = crm_core::service::Service::new(
        env.store.clone(),
        Arc::new(crm_core::clock::SystemClock),
        Arc::new(crm_core::clock::RandomIds),
    );
    let second = crm_server::spawn(svc, cfg).await.unwrap();
    let admin = env.a.token("admin");
    let r = env
        .post(
            "/api/v1/webhooks",
            admin,
            json!({ "url": format!("http://{hook_addr}/hook"), "events": ["lead.created"] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let leads = 12;
    for i in 0..leads {
        env.post("/api/v1/leads", admin, json!({ "first_name": format!("Lead {i}") }))
            .await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < leads && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a second instance's duplicate to arrive, if it were going to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), leads, "{got:?}");
    assert!(got.values().all(|n| *n == 1), "delivered more than once: {got:?}");
    second.stop().await.unwrap();
    env.stop().await;
}
