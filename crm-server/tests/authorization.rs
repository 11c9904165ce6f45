//! The authorization matrix through HTTP: every entity route x every built-in role x own tenant /
//! other tenant, with the expected status per cell, and the database unchanged after every denied
//! request. Plus mass assignment and the staff-may-edit-only-notes case.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, ROLES};
use crm_core::value::Id;
use serde_json::{Value as Json, json};

/// entity op  admin manager sales field_tech staff. `*` rows act on the other tenant's record.
const MATRIX: &str = "
lead list        200 200 200 200 403
lead get         200 200 200 404 403
lead get*        404 404 404 404 403
lead create      201 201 201 403 403
lead update      200 200 403 404 403
lead update*     404 404 404 404 403
lead delete      204 204 403 403 403
lead delete*     404 404 403 403 403
contact list     200 200 200 200 200
contact get      200 200 200 404 200
contact get*     404 404 404 404 404
contact create   201 201 201 403 403
contact update   200 200 403 403 200
contact update*  404 404 404 403 404
contact delete   204 204 403 403 403
contact delete*  404 404 403 403 403
company list     200 200 200 403 403
company get      200 200 200 403 403
company get*     404 404 404 403 403
company create   201 201 201 403 403
company update   200 200 403 403 403
company delete   204 204 403 403 403
activity list    200 200 200 200 200
activity get     200 200 200 404 200
activity get*    404 404 404 404 404
activity create  201 201 201 201 201
activity update  200 200 403 404 403
activity delete  204 204 403 403 403
team list        200 200 200 200 200
team get*        404 404 404 404 404
team create      201 403 403 403 403
team update      200 403 403 403 403
team delete      204 403 403 403 403
user list        200 200 200 200 200
user create      201 403 403 403 403
user update      200 403 403 403 403
user update*     404 403 403 403 403
role list        200 200 200 403 403
role create      201 403 403 403 403
role update      200 403 403 403 403
scoring_model list   200 200 200 403 403
scoring_model create 201 201 403 403 403
scoring_model update 200 200 403 403 403
scoring_model delete 204 403 403 403 403
webhook list     200 403 403 403 403
webhook get      200 403 403 403 403
webhook get*     404 403 403 403 403
webhook create   201 403 403 403 403
webhook update   200 403 403 403 403
webhook delete   204 403 403 403 403
api_key list     200 200 200 200 200
api_key get      200 404 404 404 404
api_key get*     404 404 404 404 404
api_key create   201 201 201 201 201
api_key update   200 404 404 404 404
api_key delete   204 404 404 404 404
";

fn table(entity: &str) -> &'static str {
    crm_core::entity::entity(entity).unwrap().table
}

fn create_body(entity: &str, tech_lead: Id, n: usize) -> Json {
    match entity {
        "lead" => json!({ "first_name": "Matrix", "email": format!("m{n}@x.test") }),
        "contact" => json!({ "first_name": "Matrix" }),
        "company" => json!({ "name": format!("Matrix {n}") }),
        "activity" => json!({ "kind": "call", "occurred_at": "2025-01-01T10:00:00Z", "lead_id": tech_lead }),
        "team" => json!({ "name": format!("Team {n}") }),
        "user" => json!({ "name": "New", "email": format!("new{n}@x.test"), "role": "sales" }),
        "role" => json!({ "name": format!("role{n}"), "grants": { "lead": { "actions": { "read": "own" } } } }),
        "scoring_model" => json!({ "name": format!("Model {n}"), "definition": crm_core::scoring::default_model() }),
        "webhook" => json!({ "url": "https://hooks.example.test/x", "events": ["lead.*"] }),
        "api_key" => json!({ "name": format!("key {n}") }),
        other => panic!("no body for {other}"),
    }
}

fn patch_body(entity: &str) -> Json {
    match entity {
        "lead" | "contact" => json!({ "notes": "changed" }),
        "activity" => json!({ "subject": "changed" }),
        "user" | "team" | "company" | "role" | "scoring_model" | "api_key" => json!({ "name": "changed" }),
        "webhook" => json!({ "active": false }),
        other => panic!("no patch for {other}"),
    }
}

struct Fixture {
    env: Env,
    tech_lead: Id,
    n: usize,
}

impl Fixture {
    /// A new record of the tenant made by its admin (over HTTP); returns id and version.
    async fn record(&mut self, other_tenant: bool, entity: &str) -> (Id, u64) {
        let lead = if other_tenant {
            self.b_lead().await
        } else {
            self.tech_lead
        };
        self.n += 1;
        let body = create_body(entity, lead, self.n);
        let t = if other_tenant { &self.env.b } else { &self.env.a };
        let r = self
            .env
            .post(&format!("/api/v1/{}", table(entity)), t.token("admin"), body)
            .await;
        assert_eq!(r.status, 201, "{entity}: {}", r.text);
        // API keys and webhooks come wrapped with their once-shown secret.
        let rec = match entity {
            "api_key" | "webhook" => &r.body[entity],
            _ => &r.body,
        };
        (
            rec["id"].as_str().unwrap().parse().unwrap(),
            rec["version"].as_u64().unwrap(),
        )
    }

    async fn b_lead(&mut self) -> Id {
        self.n += 1;
        let r = self
            .env
            .post(
                "/api/v1/leads",
                self.env.b.token("admin"),
                json!({ "first_name": "B", "email": format!("b{}@x.test", self.n) }),
            )
            .await;
        r.body["id"].as_str().unwrap().parse().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_role_and_tenant_gets_its_status_and_denials_write_nothing() {
    let env = Env::start().await;
    let tech = env.a.user("field_tech");
    let r = env
        .post(
            "/api/v1/leads",
            env.a.token("admin"),
            json!({ "first_name": "Tech's", "owner_id": tech }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let tech_lead = r.body["id"].as_str().unwrap().parse().unwrap();
    let mut fx = Fixture { env, tech_lead, n: 0 };
    let mut cells = 0;
    for line in MATRIX.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (entity, op) = (cols[0], cols[1]);
        let other = op.ends_with('*');
        let op = op.trim_end_matches('*');
        for (i, role) in ROLES.iter().enumerate() {
            let expected: u16 = cols[2 + i].parse().unwrap();
            let path = format!("/api/v1/{}", table(entity));
            let before = (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await);
            let token = fx.env.a.token(role).to_owned();
            let res = match op {
                "list" => fx.env.get(&path, &token).await,
                "create" => {
                    fx.n += 1;
                    let body = create_body(entity, fx.tech_lead, fx.n);
                    fx.env.post(&path, &token, body).await
                }
                "get" => {
                    let (id, _) = fx.record(other, entity).await;
                    let before2 = (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await);
                    let r = fx.env.get(&format!("{path}/{id}"), &token).await;
                    assert_eq!(
                        before2,
                        (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await)
                    );
                    r
                }
                "update" | "delete" => {
                    let (id, v) = fx.record(other, entity).await;
                    let before2 = (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await);
                    let item = format!("{path}/{id}");
                    let r = if op == "update" {
                        fx.env.patch(&item, &token, v, patch_body(entity)).await
                    } else {
                        let etag = format!("\"{v}\"");
                        fx.env
                            .call("DELETE", &item, Some(&token), None, &[("if-match", &etag)])
                            .await
                    };
                    if r.status >= 400 {
                        let after = (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await);
                        assert_eq!(before2, after, "{entity} {op} as {role}: a denied request wrote");
                    }
                    r
                }
                other => panic!("unknown op {other}"),
            };
            assert_eq!(
                res.status,
                expected,
                "{entity} {op}{} as {role}: {}",
                if other { " (other tenant)" } else { "" },
                res.text
            );
            if res.status >= 400 {
                assert_eq!(
                    res.headers.get("content-type").unwrap(),
                    "application/problem+json",
                    "{entity} {op} as {role}"
                );
                if op == "list" || op == "create" {
                    let after = (fx.env.writes(fx.env.a.id).await, fx.env.writes(fx.env.b.id).await);
                    assert_eq!(before, after, "{entity} {op} as {role}: a denied request wrote");
                }
            }
            if res.status == 403 {
                assert_eq!(res.body["code"], "forbidden");
            }
            cells += 1;
        }
    }
    assert!(cells >= 250, "{cells} cells");
    fx.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_assignment_changes_nothing() {
    let env = Env::start().await;
    let sales = env.a.token("sales").to_owned();
    let other_user = env.a.user("manager");
    let before = env.writes(env.a.id).await;
    for attempt in [
        json!({ "first_name": "X", "score": 99 }),
        json!({ "first_name": "X", "org_id": env.b.id }),
        json!({ "first_name": "X", "owner_id": other_user }),
        json!({ "first_name": "X", "version": 7 }),
        json!({ "first_name": "X", "id": Id::now_v7() }),
        json!({ "first_name": "X", "created_at": "2020-01-01T00:00:00Z" }),
        json!({ "first_name": "X", "temperature": "hot" }),
    ] {
        let r = env.post("/api/v1/leads", &sales, attempt.clone()).await;
        assert!(matches!(r.status, 403 | 422), "{attempt}: {} {}", r.status, r.text);
    }
    assert_eq!(before, env.writes(env.a.id).await);

    // A user may not raise their own role or move tenants; an API key may not be stronger than its creator.
    let me = env.a.user("staff");
    let staff = env.a.token("staff").to_owned();
    let r = env.get(&format!("/api/v1/users/{me}"), &staff).await;
    let v = r.body["version"].as_u64().unwrap();
    for patch in [
        json!({ "role": "admin" }),
        json!({ "org_id": env.b.id }),
        json!({ "active": true }),
    ] {
        let r = env
            .patch(&format!("/api/v1/users/{me}"), &staff, v, patch.clone())
            .await;
        assert!(matches!(r.status, 403 | 422), "{patch}: {}", r.text);
    }
    let r = env
        .post(
            "/api/v1/api_keys",
            &sales,
            json!({ "name": "escalate", "role": "admin" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["fields"].clone()),
        (403, json!(["role"])),
        "{}",
        r.text
    );
    assert_eq!(before, env.writes(env.a.id).await, "nothing was written");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_may_edit_only_a_contacts_notes() {
    let env = Env::start().await;
    let r = env
        .post(
            "/api/v1/contacts",
            env.a.token("admin"),
            json!({ "first_name": "Gamer", "email": "g@x.test" }),
        )
        .await;
    let (id, v) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["version"].as_u64().unwrap(),
    );
    let staff = env.a.token("staff").to_owned();
    let path = format!("/api/v1/contacts/{id}");
    let before = env.writes(env.a.id).await;
    let r = env
        .patch(&path, &staff, v, json!({ "email": "new@x.test", "notes": "hi" }))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        (
            r.body["code"].clone(),
            r.body["fields"].clone(),
            r.body["action"].clone()
        ),
        (json!("forbidden"), json!(["email"]), json!("update"))
    );
    assert_eq!(before, env.writes(env.a.id).await);
    let r = env
        .patch(&path, &staff, v, json!({ "notes": "checked in twice" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["notes"], "checked in twice");
    assert_eq!(r.headers.get("etag").unwrap(), &format!("\"{}\"", v + 1));
    // The stale version is now a conflict.
    let r = env.patch(&path, &staff, v, json!({ "notes": "again" })).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("conflict")));
    // Without If-Match, 428.
    let r = env
        .call("PATCH", &path, Some(&staff), Some(json!({ "notes": "x" })), &[])
        .await;
    assert_eq!(r.status, 428);
    // Staff never sees lifetime value, and may not filter by it.
    let r = env.get(&path, &staff).await;
    assert!(r.body.get("lifetime_value").is_none());
    let r = env.get("/api/v1/contacts?q=lifetime_value%3E0", &staff).await;
    assert_eq!(r.status, 403, "{}", r.text);
    env.stop().await;
}
