//! Lead routing over HTTP: routing rules as records (managed by admins and managers), a dry run
//! ("who would get this lead?"), leads routed on create and again on `POST /api/v1/leads/{id}/route`.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_are_routed_by_the_tenants_rules() {
    let env = Env::start().await;
    let (admin, manager, sales, tech, staff) = (
        env.a.token("admin"),
        env.a.token("manager"),
        env.a.token("sales"),
        env.a.token("field_tech"),
        env.a.token("staff"),
    );
    let tech_id = env.a.user("field_tech").to_string();

    // Managers manage the rules; a salesperson may not; a bad rule is every field's error at once.
    let rule = json!({"name": "Referrals to the tech", "condition": "source:referral", "strategy": "user", "user_id": tech_id});
    let refused = env.post("/api/v1/routing_rules", sales, rule.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let bad = env
        .post(
            "/api/v1/routing_rules",
            manager,
            json!({"name": "Bad", "condition": "source:(", "strategy": "fewest_open"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let mut paths: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["condition", "team_id"]);
    // Another tenant's user is no user of this tenant.
    let other = env
        .post("/api/v1/routing_rules", env.b.token("admin"), rule.clone())
        .await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.body["errors"][0]["code"], "unknown_reference");
    let created = env.post("/api/v1/routing_rules", manager, rule).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let rule_id = created.body["id"].as_str().unwrap().to_owned();

    // Who would get this lead? Nothing is written.
    let dry = env
        .post(
            "/api/v1/routing_rules/dry_run",
            sales,
            json!({"first_name": "Ann", "source": "referral"}),
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.body["owner_id"], json!(tech_id));
    assert_eq!(dry.body["decision"]["rule_id"], json!(rule_id));
    assert_eq!(dry.body["decision"]["strategy"], "user");
    let none = env
        .post(
            "/api/v1/routing_rules/dry_run",
            sales,
            json!({"first_name": "Bo", "source": "website"}),
        )
        .await;
    assert_eq!(none.status, 200, "{}", none.text);
    assert_eq!(none.body["decision"], json!(null));
    assert_eq!(none.body["owner_id"], json!(env.a.user("sales").to_string()));
    let invalid = env.post("/api/v1/routing_rules/dry_run", sales, json!({})).await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    let not_object = env.post("/api/v1/routing_rules/dry_run", sales, json!([1])).await;
    assert_eq!(not_object.status, 422, "{}", not_object.text);
    assert_eq!(
        env.post("/api/v1/routing_rules/dry_run", staff, json!({"first_name": "Cy"}))
            .await
            .status,
        403
    );
    let leads = env.get("/api/v1/leads", admin).await;
    assert_eq!(leads.body["items"], json!([]));

    // A new lead is routed: the field tech owns it and sees it.
    let lead = env
        .post(
            "/api/v1/leads",
            admin,
            json!({"first_name": "Ann", "source": "referral"}),
        )
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    assert_eq!(lead.body["owner_id"], json!(tech_id));
    let id = lead.body["id"].as_str().unwrap().to_owned();
    assert_eq!(env.get(&format!("/api/v1/leads/{id}"), tech).await.status, 200);

    // Handed to someone else by hand, then routed again on demand.
    let sales_id = env.a.user("sales").to_string();
    let moved = env
        .patch(
            &format!("/api/v1/leads/{id}"),
            manager,
            1,
            json!({"owner_id": sales_id}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let routed = env.post(&format!("/api/v1/leads/{id}/route"), manager, json!({})).await;
    assert_eq!(routed.status, 200, "{}", routed.text);
    assert_eq!(routed.body["lead"]["owner_id"], json!(tech_id));
    assert_eq!(routed.body["lead"]["version"], 3);
    assert_eq!(routed.body["routing"]["decision"]["rule_id"], json!(rule_id));
    let refused = env.post(&format!("/api/v1/leads/{id}/route"), tech, json!({})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    env.stop().await;
}
