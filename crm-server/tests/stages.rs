//! Stage history over HTTP: a lead's status changes read back from `GET /api/v1/stage_changes`,
//! scoped like the lead, never writable.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_stage_history_is_read_with_the_lead() {
    let env = Env::start().await;
    let (manager, sales, tech, staff) = (
        env.a.token("manager"),
        env.a.token("sales"),
        env.a.token("field_tech"),
        env.a.token("staff"),
    );
    let lead = env.post("/api/v1/leads", sales, json!({"first_name": "Ann"})).await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    let id = lead.body["id"].as_str().unwrap().to_owned();
    let moved = env
        .patch(&format!("/api/v1/leads/{id}"), sales, 1, json!({"status": "contacted"}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);

    let list = format!("/api/v1/stage_changes?q=record_id:{id}&sort=at");
    let seen = env.get(&list, manager).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    let rows = seen.body["items"].as_array().unwrap();
    let moves: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["from_state"].as_str(),
                r["to_state"].as_str(),
                r["changed_by"].as_str(),
            )
        })
        .collect();
    let by = env.a.user("sales").to_string();
    assert_eq!(
        moves,
        vec![
            (None, Some("new"), Some(by.as_str())),
            (Some("new"), Some("contacted"), Some(by.as_str()))
        ]
    );
    assert_eq!(env.get(&list, sales).await.body["items"].as_array().unwrap().len(), 2);
    // The field technician is not assigned this lead; the front desk reads no leads.
    assert_eq!(env.get(&list, tech).await.body["items"], json!([]));
    assert_eq!(env.get(&list, staff).await.status, 403);

    // Nobody writes them.
    let row = rows[0]["id"].as_str().unwrap();
    let admin = env.a.token("admin");
    let create = env
        .post("/api/v1/stage_changes", admin, json!({"entity": "lead"}))
        .await;
    assert_eq!(create.status, 405, "{}", create.text);
    let patch = env
        .patch(
            &format!("/api/v1/stage_changes/{row}"),
            admin,
            1,
            json!({"to_state": "won"}),
        )
        .await;
    assert_eq!(patch.status, 403, "{}", patch.text);
    env.stop().await;
}
