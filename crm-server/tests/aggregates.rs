//! `GET /api/v1/{table}/aggregate`: groups and measures as JSON, within the caller's scope, with
//! refused keys and measures answered as problems.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_answer_groups_in_key_order() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    for (source, value) in [("website", "100.00"), ("website", "200.01"), ("referral", "5")] {
        let r = env
            .post(
                "/api/v1/leads",
                admin,
                json!({"first_name": "A", "source": source, "estimated_value": value}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = env
        .get(
            "/api/v1/leads/aggregate?by=source,created_at:month&count&sum=estimated_value&avg=estimated_value&tz=%2B02:00",
            admin,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let month = r.body["groups"][0]["keys"][1].clone();
    assert!(month.as_str().unwrap().ends_with("-01"), "{month}");
    assert_eq!(
        r.body,
        json!({
            "by": ["source", "created_at:month"],
            "measures": ["count", "sum(estimated_value)", "avg(estimated_value)"],
            "groups": [
                {"keys": ["referral", month], "count": 1, "values": [1, "5.00", "5.00"]},
                {"keys": ["website", month], "count": 2, "values": [2, "300.01", "150.00"]},
            ]
        })
    );
    // Another tenant's leads are not counted; no measure means a count.
    let other = env.get("/api/v1/leads/aggregate", env.b.token("admin")).await;
    assert_eq!(other.body["groups"], json!([{"keys": [], "count": 0, "values": [0]}]));

    // A text filter over its length limit.
    let long_q = format!("/api/v1/leads/aggregate?q={}", "x".repeat(4097));
    for (path, token, status) in [
        ("/api/v1/leads/aggregate?by=nope", admin, 400),
        ("/api/v1/leads/aggregate?sum=status", admin, 400),
        ("/api/v1/leads/aggregate?by=created_at:year", admin, 400),
        ("/api/v1/leads/aggregate?by=created_at:day&tz=Europe/Berlin", admin, 400),
        ("/api/v1/leads/aggregate?q=status:", admin, 400),
        (
            "/api/v1/contacts/aggregate?sum=lifetime_value",
            env.a.token("staff"),
            403,
        ),
        (long_q.as_str(), admin, 422),
    ] {
        let r = env.get(path, token).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
    }
    let r = env
        .get("/api/v1/contacts/aggregate?by=lifetime_value", env.a.token("staff"))
        .await;
    assert_eq!(r.body["fields"], json!(["lifetime_value"]), "{}", r.text);
    env.stop().await;
}
