//! A record read and written back unchanged is stored unchanged, through a real server: `GET` a
//! lead, `PATCH` it with the same values of every field the document's `LeadPatch` names, and the
//! lead is as it was (version, `updated_at`, money to the cent, nothing audited). Money above all:
//! it is read as a decimal string in major units and written in the same unit.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Map, Value as Json, json};

/// The fields a client may send in a lead's `PATCH`, as the served OpenAPI document declares them.
async fn patchable(env: &Env, token: &str) -> Vec<String> {
    let doc = env.get("/api/v1/openapi.json", token).await.body;
    let props = doc["components"]["schemas"]["LeadPatch"]["properties"]
        .as_object()
        .unwrap();
    assert!(props.contains_key("estimated_value"), "{props:?}");
    props.keys().cloned().collect()
}

/// The values a `GET` answered for those fields: what an edit form sends back when saved as is.
fn same_fields(read: &Json, fields: &[String]) -> Map<String, Json> {
    fields
        .iter()
        .filter_map(|f| read.get(f).map(|v| (f.clone(), v.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_read_and_written_back_unchanged_is_stored_unchanged() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let fields = patchable(&env, &admin).await;
    let created = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({
                "first_name": "Ann", "last_name": "O'Hara", "email": "Ann@Example.com",
                "phone": "(303) 555-0199", "estimated_value": "18500", "project_type": "roof_replacement",
                "tags": ["Storm", "vip"], "expected_close_date": "2026-03-31",
                "notes": "Tear-off\nand \"re-roof\"", "latitude": 39.7392, "longitude": -104.9903,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/api/v1/leads/{}", created.body["id"].as_str().unwrap());
    let read = env.get(&path, &admin).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["estimated_value"], "18500.00", "money reads in major units");
    let version = read.body["version"].as_u64().unwrap();
    let before = env.writes(env.a.id).await;

    let body = same_fields(&read.body, &fields);
    assert!(body.len() > 10, "most fields go back: {body:?}");
    let r = env.patch(&path, &admin, version, Json::Object(body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, read.body, "the answer is the record as it was");
    assert_eq!(env.get(&path, &admin).await.body, read.body, "stored unchanged");
    assert_eq!(env.writes(env.a.id).await, before, "nothing written or audited");

    // A client that turned the amount into a JSON number writes the same amount (major units).
    let mut as_number = body.clone();
    as_number.insert("estimated_value".into(), json!(18500.0));
    let r = env.patch(&path, &admin, version, Json::Object(as_number)).await;
    assert_eq!((r.status, &r.body), (200, &read.body), "{}", r.text);

    // Saved with one edit: only that field changes; the money stays $18,500.00.
    let mut edited = body;
    edited.insert("notes".into(), json!("ladder needed"));
    let r = env.patch(&path, &admin, version, Json::Object(edited.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], json!(version + 1));
    assert_eq!(r.body["estimated_value"], "18500.00");
    for (f, v) in &edited {
        if f != "notes" {
            assert_eq!(&r.body[f], v, "{f} unchanged");
        }
    }
    env.stop().await;
}
