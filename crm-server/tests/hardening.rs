//! Regression tests for what outside testing found (issue 18), over HTTP: the audit trail of a record
//! outside the caller's read scope is not found whatever the parameters, and a tenant cannot lose its
//! last active admin.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_by_id_alone_respects_the_read_scope() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    // A lead owned by the admin: outside every sales user's, technician's and staff user's scope.
    let lead = env.post("/api/v1/leads", admin, json!({"first_name": "Hidden"})).await;
    let id = lead.body["id"].as_str().unwrap().to_owned();
    for role in ["field_tech", "staff"] {
        for q in [format!("entity_id={id}"), format!("entity=lead&entity_id={id}")] {
            let res = env.get(&format!("/api/v1/audit?{q}"), env.a.token(role)).await;
            assert_eq!(res.status, 404, "{role} {q}: {}", res.text);
            assert!(!res.text.contains("Hidden"));
        }
    }
    let own = env.get(&format!("/api/v1/audit?entity_id={id}"), admin).await;
    assert_eq!(own.status, 200);
    // Another tenant's admin gets nothing either.
    let foreign = env
        .get(&format!("/api/v1/audit?entity_id={id}"), env.b.token("admin"))
        .await;
    assert!(
        foreign.status == 404 || foreign.body.as_array().is_some_and(Vec::is_empty),
        "{}",
        foreign.text
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_deactivate_or_demote_themselves() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    let me = env.a.user("admin");
    let before = env.writes(env.a.id).await;
    for patch in [json!({"active": false}), json!({"role": "sales"})] {
        let res = env.patch(&format!("/api/v1/users/{me}"), admin, 1, patch).await;
        assert_eq!(res.status, 422, "{}", res.text);
        assert_eq!(res.body["errors"][0]["code"], "last_admin");
    }
    let del = env
        .call(
            "DELETE",
            &format!("/api/v1/users/{me}"),
            Some(admin),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(del.status, 422, "{}", del.text);
    assert_eq!(env.writes(env.a.id).await, before);
    // The admin still works.
    assert_eq!(env.get("/api/v1/leads", admin).await.status, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_and_export_requests_are_refused_before_any_byte() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    env.post("/api/v1/leads", admin, json!({"first_name": "Ann"})).await;
    for path in [
        "/api/v1/leads?sort=,,,",
        "/api/v1/leads?sort=score,",
        "/api/v1/leads?q=%FF%FE",
        "/api/v1/leads/export?sort=zzz",
        "/api/v1/contacts/export?sort=zzz",
        "/api/v1/leads/export?q=nosuchfield%3A1",
        "/api/v1/leads/export?sort=,,",
    ] {
        let res = env.get(path, admin).await;
        assert_eq!(res.status, 400, "{path}: {}", res.text);
        let ct = res
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("application/problem+json"), "{path}: {ct}");
    }
    let ok = env.get("/api/v1/leads/export?sort=-created_at", admin).await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("Ann"));
    env.stop().await;
}
