//! Operations through a real server: a database another process holds locked.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_503_with_retry_after() {
    let env = Env::start().await;
    let token = env.a.token("admin").to_owned();
    // Another process (a CLI import, a second server) holds the write lock past the busy timeout.
    let other = rusqlite::Connection::open(env.store.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let res = env
        .post(
            "/api/v1/leads",
            &token,
            json!({"first_name": "Dana", "source": "website"}),
        )
        .await;
    assert_eq!(res.status, 503, "{}", res.text);
    assert_eq!(res.body["code"], "unavailable", "{}", res.text);
    assert!(res.body["retry_after"].as_u64().is_some_and(|s| s >= 1), "{}", res.text);
    assert_eq!(res.headers["retry-after"], res.body["retry_after"].to_string().as_str());
    assert!(
        !res.text.contains("sqlite") && !res.text.contains("locked"),
        "{}",
        res.text
    );
    // Reads go on meanwhile, and the write succeeds once the lock is gone.
    assert_eq!(env.get("/api/v1/leads", &token).await.status, 200);
    other.execute_batch("ROLLBACK").unwrap();
    let res = env
        .post(
            "/api/v1/leads",
            &token,
            json!({"first_name": "Dana", "source": "website"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    env.stop().await;
}
