//! Upserts from external systems over HTTP (`POST /api/v1/{table}/upsert`): the per-row report, the
//! same batch twice writing nothing, modes refused per row, field permissions per row, a bad body
//! as a problem document, and the route only where the type has an external key.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};

fn jobs(contact: &Json, titles: &[&str]) -> Json {
    let rows: Vec<Json> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"external_id": format!("J{}", i + 1), "kind": "journey", "title": t, "contact_id": contact}))
        .collect();
    Json::Array(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_upserts_jobs_and_skips_what_did_not_change() {
    let env = Env::start().await;
    let manager = env.a.token("manager");
    let c = env
        .post("/api/v1/contacts", manager, json!({"first_name": "Cleo"}))
        .await;
    let body = json!({"system": "scheduler", "rows": jobs(&c.body["id"], &["Load", "Drive"])});
    let r = env.post("/api/v1/jobs/upsert", manager, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["created"].clone(), r.body["applied"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(r.body["results"][0]["outcome"], "created");
    let id = r.body["results"][0]["id"].as_str().unwrap().to_owned();
    let got = env.get(&format!("/api/v1/jobs/{id}"), manager).await;
    assert_eq!(got.body["title"], "Load");

    // The same batch again: all unchanged, nothing written.
    let before = env.writes(env.a.id).await;
    let again = env.post("/api/v1/jobs/upsert", manager, body).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["unchanged"], 2);
    assert_eq!(again.body["results"], json!([]));
    assert_eq!(env.writes(env.a.id).await, before);

    // Create-only refuses the bound row, per row, and writes the new one; a bad row lists every error.
    let mut rows = jobs(&c.body["id"], &["Load", "Drive", "Unload"]);
    rows[1]["title"] = json!("");
    rows[1]["kind"] = json!("rocket");
    let r = env
        .post(
            "/api/v1/jobs/upsert",
            manager,
            json!({"system": "scheduler", "mode": "create_only", "rows": rows}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["errors"][0]["code"], "already_bound");
    let mut codes: Vec<&str> = results[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        ["already_bound"],
        "a bound row is refused before it is validated"
    );
    assert_eq!(results[2]["outcome"], "created");

    // Update-only with an unknown id.
    let r = env
        .post(
            "/api/v1/jobs/upsert",
            manager,
            json!({"system": "scheduler", "mode": "update_only", "rows": [{"external_id": "J9", "kind": "journey", "title": "X", "contact_id": c.body["id"]}]}),
        )
        .await;
    assert_eq!(r.body["results"][0]["errors"][0]["code"], "not_bound");
    assert_eq!(r.body["applied"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_refusals_are_problems_or_per_row() {
    let env = Env::start().await;
    let (manager, sales, tech) = (env.a.token("manager"), env.a.token("sales"), env.a.token("field_tech"));
    // The role may not import: 403.
    let r = env
        .post("/api/v1/jobs/upsert", sales, json!({"system": "erp", "rows": []}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = env
        .post("/api/v1/jobs/upsert", tech, json!({"system": "erp", "rows": []}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // A bad system name: 422 naming it; an unknown member or mode: 400.
    let r = env
        .post("/api/v1/leads/upsert", manager, json!({"system": "ERP!", "rows": []}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "system");
    let r = env
        .post(
            "/api/v1/leads/upsert",
            manager,
            json!({"system": "erp", "rows": [], "upsert": true}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = env
        .post(
            "/api/v1/leads/upsert",
            manager,
            json!({"system": "erp", "mode": "merge", "rows": []}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // JSON typed strictly, per row: a number is not an external id, a string is not a tag list.
    let r = env
        .post(
            "/api/v1/leads/upsert",
            manager,
            json!({"system": "erp", "rows": [
                {"external_id": 5, "first_name": "Ann"},
                {"external_id": "L2", "first_name": "Bob", "tags": "a,b"},
                {"external_id": "L3", "first_name": "Cy"},
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["rejected"].clone(), r.body["created"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(r.body["results"][0]["errors"][0]["code"], "invalid_type");
    assert_eq!(r.body["results"][1]["errors"][0]["path"], "tags");
    // A type without an external key has no upsert route.
    let r = env
        .post("/api/v1/teams/upsert", manager, json!({"system": "erp", "rows": []}))
        .await;
    assert!(r.status == 404 || r.status == 405, "{} {}", r.status, r.text);
}

/// The scheduler's journeys come with their steps: the job over HTTP has the steps the row
/// carried (read back as children), and a row whose step is bad is refused with the step's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_comes_with_its_steps() {
    let env = Env::start().await;
    let manager = env.a.token("manager");
    let c = env
        .post("/api/v1/contacts", manager, json!({"first_name": "Cleo"}))
        .await;
    let row = |steps: Json| {
        json!({"system": "scheduler", "rows": [{"external_id": "J1", "kind": "journey", "title": "Cleo to Elm St",
            "contact_id": c.body["id"], "job_steps": steps}]})
    };
    let steps = json!([{"external_id": "J1-1", "name": "Load", "position": 1},
        {"external_id": "J1-2", "name": "Drive", "position": 2}]);
    let r = env.post("/api/v1/jobs/upsert", manager, row(steps)).await;
    assert_eq!((r.status, r.body["created"].clone()), (200, json!(1)), "{}", r.text);
    let id = r.body["results"][0]["id"].as_str().unwrap().to_owned();
    let job = env.get(&format!("/api/v1/jobs/{id}"), manager).await;
    assert_eq!(job.body["step_count"], 2, "{}", job.text);
    let kids = env.get(&format!("/api/v1/jobs/{id}/children"), manager).await;
    let names: Vec<&str> = kids.body["job_steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", kids.text))
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Load", "Drive"]);
    let bad = json!([{"external_id": "J1-1", "name": ""}]);
    let r = env.post("/api/v1/jobs/upsert", manager, row(bad)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][0]["errors"][0]["path"], "job_steps[0].name");
}
