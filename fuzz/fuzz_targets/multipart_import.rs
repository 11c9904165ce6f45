//! Fuzzes the HTTP CSV import (`POST /api/v1/{table}/import`, a multipart form) through the real
//! router over an in-memory store, signed in as an admin: arbitrary bytes as the form body (raw,
//! or wrapped as the `file` part of a well-formed form, with or without a `mapping` part), as a
//! dry run or applied. The server must never panic or answer 5xx; a refusal is a problem document
//! with a 4xx status; an accepted import's report adds up.
#![no_main]

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::memory::MemoryStore;
use crm_core::service::Service;
use crm_server::{App, Config};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const PASSWORD: &str = "correct-horse-battery-staple";
const BOUNDARY: &str = "fuzz-boundary-7d1f";
const TABLES: [&str; 3] = ["leads", "contacts", "activities"];

struct Server {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn obj(j: Json) -> serde_json::Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, Json) {
    let res = router.clone().oneshot(req).await.expect("the router is infallible");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let (router, token) = rt.block_on(async {
            let svc = Service::new(MemoryStore::new(), Arc::new(SystemClock), Arc::new(RandomIds));
            let org = svc.create_organization(&obj(json!({ "name": "Fuzz" }))).await.expect("an org");
            let sys = Actor::system(org.id);
            let user = svc
                .create(&sys, "user", &obj(json!({ "name": "Admin", "email": "admin@fuzz.test", "role": "admin" })))
                .await
                .expect("an admin");
            let phc = crm_server::auth::password::hash_now(PASSWORD);
            let same = |_: &str| -> crm_core::Result<String> { Ok(phc.clone()) };
            svc.set_password(&sys, user.id, PASSWORD, &same).await.expect("a password");
            let (_stop, stopped) = tokio::sync::watch::channel(false);
            // The sign-in below verifies an Argon2 hash: in a `cargo fuzz run --dev` build (no
            // optimisation, ASan) that takes longer than the test config's 30 s request timeout.
            let mut cfg = Config::for_tests();
            cfg.request_timeout = std::time::Duration::from_secs(600);
            let app = Arc::new(App::new(svc, cfg, stopped));
            // The server serves the router with each connection's peer address (sign-in throttles by
            // it); called directly, the router is given one, or sign-in's extractor fails (500).
            let router = crm_server::router(app).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            let login = json!({ "organization": org.id.to_string(), "email": "admin@fuzz.test", "password": PASSWORD });
            let req = Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(login.to_string()))
                .expect("a request");
            let (status, body) = call(&router, req).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let token = body["access_token"].as_str().expect("a token").to_owned();
            (router, token)
        });
        Server { rt, router, token }
    })
}

/// `data[0]` picks the table, the mode and the envelope; the rest is the CSV (or the raw form).
fn form(data: &[u8]) -> (String, Vec<u8>) {
    let (head, rest) = data.split_first().map(|(h, r)| (*h, r)).unwrap_or((0, &[]));
    let table = TABLES[usize::from(head) % TABLES.len()];
    let query = match (head >> 2) & 3 {
        0 => "mode=dry_run",
        1 => "mode=valid_rows_only",
        2 => "mode=dry_run&upsert=true",
        _ => "mode=all_or_nothing",
    };
    let body = match head >> 4 {
        // The raw bytes are the whole multipart body.
        0..=3 => rest.to_vec(),
        // A well-formed form around them, with a mapping part taken from the first line.
        4..=7 => {
            let (mapping, csv) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&[][..], rest),
            };
            let mut b = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"mapping\"\r\n\r\n").into_bytes();
            b.extend_from_slice(mapping);
            b.extend_from_slice(format!("\r\n--{BOUNDARY}\r\n").as_bytes());
            b.extend_from_slice(b"Content-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n\r\n");
            b.extend_from_slice(csv);
            b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            b
        }
        // Just the file part.
        _ => {
            let mut b =
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n\r\n")
                    .into_bytes();
            b.extend_from_slice(rest);
            b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            b
        }
    };
    (format!("/api/v1/{table}/import?{query}"), body)
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let (uri, body) = form(data);
    let req = Request::post(uri.as_str())
        .header("authorization", format!("Bearer {}", s.token))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from(body))
        .expect("a request");
    let (status, body) = s.rt.block_on(call(&s.router, req));
    assert!(!status.is_server_error(), "{uri}: {status} {body}");
    if status.is_success() {
        let rows = body["rows"].as_u64().expect("a report counts rows");
        let valid = body["valid"].as_u64().expect("valid rows");
        let invalid = body["invalid"].as_u64().expect("invalid rows");
        assert_eq!(rows, valid + invalid, "every row is valid or reported: {body}");
        if uri.contains("mode=dry_run") {
            assert_eq!(body["applied"], json!(false), "a dry run writes nothing: {body}");
        }
    } else {
        assert!(status.is_client_error(), "{uri}: {status}");
        assert!(body["code"].is_string() && body["status"] == json!(status.as_u16()), "{uri}: a problem document: {body}");
    }
});
