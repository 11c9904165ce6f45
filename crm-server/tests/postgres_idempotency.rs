//! Idempotency keys over HTTP with the PostgreSQL store: two server instances over one database, the
//! same keyed create sent to both at once, repeated, and reused for another body; a keyed import
//! repeated. One write, and every repeat answers the first answer. Needs `CRM_TEST_POSTGRES` (see
//! `crm-store/tests/pg/mod.rs`; `bash .ci/postgres.sh` starts a throwaway server).

#![allow(clippy::unwrap_used)]

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::query::Filter;
use crm_core::service::Service;
use crm_core::store::Store;
use crm_server::Config;
use crm_store::{AnyStore, PgOptions, PgStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const SECRET: &[u8] = b"shared-jwt-secret-of-both-instances-xx";
const PASSWORD: &str = "a-long-enough-password";

fn url() -> Option<String> {
    match std::env::var("CRM_TEST_POSTGRES") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CRM_TEST_POSTGRES is not set: CI must run the PostgreSQL tests"
            );
            eprintln!("skipping: CRM_TEST_POSTGRES is not set (bash .ci/postgres.sh runs this test)");
            None
        }
    }
}

async fn instance(url: &str, schema: &str) -> crm_server::Running {
    let store = PgStore::connect_with(PgOptions::new(url).schema(schema)).await.unwrap();
    let svc = Service::new(
        Arc::new(AnyStore::from(store)),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let mut cfg = Config::for_tests();
    cfg.jwt_secret = SECRET.to_vec();
    crm_server::spawn(svc, cfg).await.unwrap()
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Res {
    status: u16,
    body: Json,
    text: String,
}

async fn send(http: &Http, req: hyper::Request<Full<Bytes>>) -> Res {
    let res = http.request(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Res {
        status,
        body: serde_json::from_str(&text).unwrap_or(Json::Null),
        text,
    }
}

fn keyed(addr: SocketAddr, token: &str, key: &str, body: &Json) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(format!("http://{addr}/api/v1/leads"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Sends until the answer is not "the first request with this key still runs" (409 on
/// `idempotency_key`), for up to a minute; the last answer.
async fn until_settled(http: &Http, req: impl Fn() -> hyper::Request<Full<Bytes>>) -> Res {
    for _ in 0..240 {
        let res = send(http, req()).await;
        if !(res.status == 409 && res.body["entity"] == "idempotency_key") {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the first request with the key never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_requests_to_two_instances_on_postgres_write_once_and_replay_the_first_answer() {
    let Some(url) = url() else { return };
    // A throwaway schema (dropped with the setup store at the end), written directly for the tenant
    // and a user with a password; both instances serve it.
    let setup = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || PgStore::open_temporary(&url).unwrap())
            .await
            .unwrap()
    };
    let schema = setup.schema().unwrap().to_owned();
    let setup = Service::new(setup, Arc::new(SystemClock), Arc::new(RandomIds));
    let org = setup
        .create_organization(json!({ "name": "Keys" }).as_object().unwrap())
        .await
        .unwrap();
    let sys = Actor::system(org.id);
    let u = setup
        .create(
            &sys,
            "user",
            json!({ "name": "Ada", "email": "ada@keys.test", "role": "admin" })
                .as_object()
                .unwrap(),
        )
        .await
        .unwrap();
    setup
        .set_password(&sys, u.id, PASSWORD, &|p: &str| {
            Ok(crm_server::auth::password::hash_now(p))
        })
        .await
        .unwrap();
    let leads_named = |name: &'static str| {
        let store = setup.store();
        async move {
            store
                .count(
                    org.id,
                    crm_core::entity::entity("lead").unwrap(),
                    &Filter::eq("first_name", name),
                )
                .await
                .unwrap()
        }
    };

    let (a, b) = (instance(&url, &schema).await, instance(&url, &schema).await);
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let login = json!({ "organization": org.id, "email": "ada@keys.test", "password": PASSWORD });
    let login = hyper::Request::post(format!("http://{}/api/v1/auth/login", a.addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(login.to_string())))
        .unwrap();
    let token = send(&http, login).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Eight copies of one keyed create at once, half to each instance: each is the first answer
    // or "still running" (409), never a second write.
    let body = json!({ "first_name": "Keyed", "source": "website" });
    let racing: Vec<_> = (0..8)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            let (http, req) = (http.clone(), keyed(addr, &token, "pg-create-1", &body));
            tokio::spawn(async move { send(&http, req).await })
        })
        .collect();
    let mut first_id = None;
    for r in racing {
        let r = r.await.unwrap();
        match r.status {
            201 => {
                let id = r.body["id"].clone();
                assert!(first_id.get_or_insert(id.clone()) == &id, "two ids: {}", r.text);
            }
            409 => assert_eq!(r.body["entity"], "idempotency_key", "{}", r.text),
            _ => panic!("answered {}: {}", r.status, r.text),
        }
    }
    // Repeats, on either instance, are the first answer.
    for addr in [a.addr, b.addr] {
        let again = until_settled(&http, || keyed(addr, &token, "pg-create-1", &body)).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert!(
            first_id.get_or_insert(again.body["id"].clone()) == &again.body["id"],
            "{}",
            again.text
        );
    }
    assert_eq!(leads_named("Keyed").await, 1, "one write for every copy");
    // The same key with another body is refused and writes nothing.
    let other = json!({ "first_name": "Keyed", "source": "referral" });
    let reused = send(&http, keyed(b.addr, &token, "pg-create-1", &other)).await;
    assert_eq!(reused.status, 422, "{}", reused.text);
    assert_eq!(
        reused.body["errors"][0]["code"], "idempotency_key_reused",
        "{}",
        reused.text
    );
    assert_eq!(leads_named("Keyed").await, 1);

    // A keyed import, sent to A and repeated on B: applied once, the same report.
    let mut csv = String::from("first_name,source\n");
    for i in 0..300 {
        csv.push_str(&format!("Bulk{i},website\n"));
    }
    let form = |addr: SocketAddr| {
        let body = format!(
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--B--\r\n"
        );
        hyper::Request::post(format!("http://{addr}/api/v1/leads/import?mode=all_or_nothing"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "multipart/form-data; boundary=B")
            .header("idempotency-key", "pg-import-1")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let first = until_settled(&http, || form(a.addr)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["created"], 300, "{}", first.text);
    let again = until_settled(&http, || form(b.addr)).await;
    assert_eq!(again.text, first.text, "a repeat is the first answer");
    assert_eq!(leads_named("Bulk0").await, 1);

    a.stop().await.unwrap();
    b.stop().await.unwrap();
    tokio::task::spawn_blocking(move || drop(setup)).await.unwrap();
}
