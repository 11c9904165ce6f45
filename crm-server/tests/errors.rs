//! Errors that help, through a real server: every failing field of a write at once (a status that is
//! no pipeline stage with the field errors), text-query errors at the place of the bad term (an
//! unknown enum option or stage is an error, not an empty list), and money sent as a JSON number
//! read exactly, with at most two decimals.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

/// `(path, code)` of every field error of a 422 answer.
fn field_errors(r: &common::Res) -> Vec<(String, String)> {
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "validation", "{}", r.text);
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Percent-encodes a query parameter's value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failing_field_at_once_and_nothing_written() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let before = env.writes(env.a.id).await;
    let bad = json!({ "first_name": "Ann", "email": "nope", "estimated_value": "12.345", "status": "neww" });
    let r = env.post("/api/v1/leads", &admin, bad.clone()).await;
    let all: Vec<(String, String)> = [
        ("email", "invalid_email"),
        ("estimated_value", "invalid_money"),
        ("status", "invalid_option"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    assert_eq!(field_errors(&r), all);
    assert_eq!(env.writes(env.a.id).await, before);

    let r = env.post("/api/v1/leads", &admin, json!({ "first_name": "Ann" })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let lead = format!("/api/v1/leads/{}", r.body["id"].as_str().unwrap());
    let v = r.body["version"].as_u64().unwrap();
    let before = env.writes(env.a.id).await;
    let mut patch = bad;
    patch.as_object_mut().unwrap().remove("first_name");
    let r = env.patch(&lead, &admin, v, patch).await;
    assert_eq!(field_errors(&r), all);
    assert_eq!(env.writes(env.a.id).await, before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_errors_name_the_place_and_the_allowed_values() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let r = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({ "first_name": "Ann", "status": "contacted" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (q, position, needle) in [
        ("score>=60 status:neww", 17, "neww is not one of: new, contacted,"),
        ("source:pigeon", 7, "pigeon is not one of:"),
        ("status:new bogus:1", 11, "no field bogus"),
        ("score>=abc", 7, "score"),
        ("score>=", 5, "needs a value"),
    ] {
        let r = env.get(&format!("/api/v1/leads?q={}", enc(q)), &admin).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert_eq!(r.body["code"], "invalid_query", "{q}: {}", r.text);
        assert_eq!(r.body["position"], position, "{q}: {}", r.text);
        assert!(r.body["detail"].as_str().unwrap().contains(needle), "{q}: {}", r.text);
    }
    // Options match as typed or by their key form.
    let r = env
        .get(&format!("/api/v1/leads?q={}", enc("status:Contacted")), &admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1), "{}", r.text);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_as_a_json_number_is_exact_to_the_cent() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    for (sent, stored) in [
        (json!(1234.5), "1234.50"),
        (json!(0.07), "0.07"),
        (json!(18500), "18500.00"),
    ] {
        let r = env
            .post(
                "/api/v1/leads",
                &admin,
                json!({ "first_name": "Ann", "estimated_value": sent }),
            )
            .await;
        assert_eq!(r.status, 201, "{sent}: {}", r.text);
        assert_eq!(r.body["estimated_value"], stored, "{sent}: {}", r.text);
    }
    let before = env.writes(env.a.id).await;
    for sent in [json!(1.005), json!(0.1 + 0.2), json!(1e300)] {
        let r = env
            .post(
                "/api/v1/leads",
                &admin,
                json!({ "first_name": "Ann", "estimated_value": sent }),
            )
            .await;
        assert_eq!(
            field_errors(&r),
            vec![("estimated_value".to_owned(), "invalid_money".to_owned())],
            "{sent}"
        );
    }
    assert_eq!(env.writes(env.a.id).await, before);
    env.stop().await;
}
