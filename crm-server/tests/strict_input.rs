//! Strict input through a real server: JSON values of the wrong type and text holding control
//! characters are 422 naming the field, and nothing is written; CSV cells are still read by type.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value as Json, json};

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

fn one(path: &str, code: &str) -> Vec<(String, String)> {
    vec![(path.to_owned(), code.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_json_types_and_control_characters_are_422_and_change_nothing() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let r = env
        .post("/api/v1/leads", &admin, json!({ "first_name": "Ann", "tags": ["vip"] }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let lead = format!("/api/v1/leads/{}", r.body["id"].as_str().unwrap());
    let lead_before = r.body.clone();
    let v = lead_before["version"].as_u64().unwrap();
    let user = format!("/api/v1/users/{}", env.a.user("sales"));
    let r = env.get(&user, &admin).await;
    let (user_before, uv) = (r.body.clone(), r.body["version"].as_u64().unwrap());
    assert_eq!(user_before["active"], true);
    let before = env.writes(env.a.id).await;

    // Creates.
    let r = env
        .post("/api/v1/leads", &admin, json!({ "first_name": "Bo", "tags": "a,b" }))
        .await;
    assert_eq!(field_errors(&r), one("tags", "invalid_type"));
    let r = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({ "first_name": "Bo", "owner_id": "user-7" }),
        )
        .await;
    assert_eq!(field_errors(&r), one("owner_id", "invalid_format"));
    let r = env
        .post("/api/v1/leads", &admin, json!({ "first_name": "B\u{0}o" }))
        .await;
    assert_eq!(field_errors(&r), one("first_name", "control_character"));

    // Patches, one field at a time and all at once.
    for (patch, path, code) in [
        (json!({ "tags": "a,b" }), "tags", "invalid_type"),
        (json!({ "owner_id": "user-7" }), "owner_id", "invalid_format"),
        (json!({ "first_name": "A\u{0}nn" }), "first_name", "control_character"),
    ] {
        let r = env.patch(&lead, &admin, v, patch).await;
        assert_eq!(field_errors(&r), one(path, code));
    }
    let r = env
        .patch(
            &lead,
            &admin,
            v,
            json!({ "tags": "a,b", "owner_id": "user-7", "first_name": "A\u{0}nn", "estimated_value": 1.505 }),
        )
        .await;
    assert_eq!(
        field_errors(&r),
        vec![
            ("estimated_value".to_owned(), "invalid_money".to_owned()),
            ("first_name".to_owned(), "control_character".to_owned()),
            ("owner_id".to_owned(), "invalid_format".to_owned()),
            ("tags".to_owned(), "invalid_type".to_owned()),
        ]
    );
    let r = env.patch(&user, &admin, uv, json!({ "active": "no" })).await;
    assert_eq!(field_errors(&r), one("active", "invalid_type"));
    let r = env
        .patch(&user, &admin, uv, json!({ "active": 0, "name": "Sam\u{7}" }))
        .await;
    assert_eq!(
        field_errors(&r),
        vec![
            ("active".to_owned(), "invalid_type".to_owned()),
            ("name".to_owned(), "control_character".to_owned()),
        ]
    );

    // Nothing was written: no audit entry or event, the records as they were, the user still active.
    assert_eq!(before, env.writes(env.a.id).await);
    assert_eq!(env.get(&lead, &admin).await.body, lead_before);
    assert_eq!(env.get(&user, &admin).await.body, user_before);
    assert_eq!(env.get("/api/v1/leads", env.a.token("sales")).await.status, 200);

    // The same changes, typed, are accepted.
    let r = env
        .patch(
            &lead,
            &admin,
            v,
            json!({ "tags": ["a", "b"], "first_name": "Ann\tMarie" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tags"], json!(["a", "b"]));
    let r = env.patch(&user, &admin, uv, json!({ "active": false })).await;
    assert_eq!((r.status, &r.body["active"]), (200, &json!(false)), "{}", r.text);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_are_read_by_type_and_control_characters_refused() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let csv = "first_name,tags,estimated_value,latitude\n\
               Ada,\"Storm; vip\",\"18,500\",45.5\n\
               B\u{0}b,vip,100,1\n";
    let boundary = "XBOUNDARYX";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let req = hyper::Request::post(format!("{}/api/v1/leads/import?mode=valid_rows_only", env.base))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let r = env.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["created"].as_u64(), r.body["invalid"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        r.text
    );
    assert_eq!(
        (&r.body["errors"][0]["row"], &r.body["errors"][0]["errors"]),
        (
            &json!(2),
            &json!([{ "path": "first_name", "code": "control_character",
                      "message": "control character U+0000 is not allowed" }])
        )
    );
    let r = env.get("/api/v1/leads?q=first_name:Ada", &admin).await;
    let ada: &Json = &r.body["items"][0];
    assert_eq!(
        (&ada["tags"], &ada["estimated_value"], &ada["latitude"]),
        (&json!(["storm", "vip"]), &json!("18500.00"), &json!(45.5)),
        "{}",
        r.text
    );
    env.stop().await;
}
