//! Quotes over HTTP: the shared totals fixture set (`crm-core/testdata/quote_totals.json`) created
//! with inline lines and read back, and the workflow's routes with their refusals.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};

fn valid_until() -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string()
}

async fn set_org(env: &Env, admin: &str, patch: Json) {
    let path = "/api/v1/organization";
    let org = env.get(path, admin).await;
    let v = org.body["version"].as_u64().unwrap();
    let r = env.patch(path, admin, v, patch).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn step(env: &Env, token: &str, q: &Json, name: &str, body: Json) -> common::Res {
    let path = format!("/api/v1/quotes/{}/{name}", q["id"].as_str().unwrap());
    let etag = format!("\"{}\"", q["version"]);
    env.call("POST", &path, Some(token), Some(body), &[("if-match", &etag)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_set_over_http() {
    let env = Env::start().await;
    let (admin, sales) = (env.a.token("admin"), env.a.token("sales"));
    let c = env
        .post("/api/v1/contacts", sales, json!({"first_name": "Carla"}))
        .await;
    let fixtures: Vec<Json> = serde_json::from_str(include_str!("../../crm-core/testdata/quote_totals.json")).unwrap();
    for fx in fixtures {
        let name = fx["name"].as_str().unwrap();
        let p = &fx["policy"];
        set_org(
            &env,
            admin,
            json!({"quote_rounding": p["rounding"], "quote_rounding_mode": p["mode"], "prices_include_tax": p["prices_include_tax"]}),
        )
        .await;
        let mut body = json!({"contact_id": c.body["id"], "valid_until": valid_until()});
        match fx.get("discount") {
            Some(Json::Object(d)) if d.contains_key("percent") => body["discount_percent"] = d["percent"].clone(),
            Some(Json::Object(d)) => body["discount_amount"] = d["amount"].clone(),
            _ => {}
        }
        let lines: Vec<Json> = fx["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l["description"] = json!("Work");
                l
            })
            .collect();
        body["quote_lines"] = json!(lines);
        let created = env.post("/api/v1/quotes", sales, body).await;
        assert_eq!(created.status, 201, "{name}: {}", created.text);
        let got = env
            .get(
                &format!("/api/v1/quotes/{}", created.body["id"].as_str().unwrap()),
                sales,
            )
            .await;
        assert_eq!(got.body, created.body, "{name}: read back as created");
        let e = &fx["expected"];
        for field in ["subtotal", "discount_total", "tax_total", "total"] {
            assert_eq!(got.body[field], e[field], "{name}: {field}");
        }
        let shown = got.body["quote_lines"].as_array().unwrap();
        assert_eq!(shown.len(), e["lines"].as_array().unwrap().len(), "{name}");
        for (l, w) in shown.iter().zip(e["lines"].as_array().unwrap()) {
            for field in ["amount", "discount_share", "tax", "total"] {
                assert_eq!(l[field], w[field], "{name}: {field}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_routes() {
    let env = Env::start().await;
    let (admin, manager, sales) = (env.a.token("admin"), env.a.token("manager"), env.a.token("sales"));
    set_org(
        &env,
        admin,
        json!({"quote_approval_rules": [{"role": "manager", "total_above": "10000"}, {"role": "admin", "total_above": "50000"}]}),
    )
    .await;
    let c = env
        .post("/api/v1/contacts", sales, json!({"first_name": "Carla"}))
        .await;
    let body = json!({"contact_id": c.body["id"], "valid_until": valid_until(),
        "quote_lines": [{"description": "Long-distance move", "quantity": "1", "unit_price": "12500.00"}]});
    let q = env.post("/api/v1/quotes", sales, body).await;
    assert_eq!(q.status, 201, "{}", q.text);

    let submitted = step(&env, sales, &q.body, "submit", json!({})).await;
    assert_eq!(submitted.status, 200, "{}", submitted.text);
    assert_eq!(
        (
            submitted.body["status"].as_str(),
            submitted.body["approval_level"].as_str()
        ),
        (Some("pending_approval"), Some("manager"))
    );
    // Sales may not approve; a stale version is a conflict; sending before approval is refused.
    let before = env.writes(env.a.id).await;
    assert_eq!(
        step(&env, sales, &submitted.body, "approve", json!({})).await.status,
        403
    );
    assert_eq!(step(&env, manager, &q.body, "approve", json!({})).await.status, 409);
    let early = step(&env, sales, &submitted.body, "send", json!({})).await;
    assert_eq!(
        (early.status, early.body["errors"][0]["code"].as_str()),
        (422, Some("invalid_transition"))
    );
    let reason = step(&env, manager, &submitted.body, "reject", json!({"rejection_reason": 5})).await;
    assert_eq!(reason.status, 422);
    assert_eq!(env.writes(env.a.id).await, before, "refusals write nothing");

    let approved = step(&env, manager, &submitted.body, "approve", json!({})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let sent = step(&env, sales, &approved.body, "send", json!({})).await;
    assert_eq!(sent.body["status"], "sent");
    // A sent quote is locked; a revision supersedes it.
    let edit = env
        .patch(
            &format!("/api/v1/quotes/{}", q.body["id"].as_str().unwrap()),
            sales,
            4,
            json!({"notes": "x"}),
        )
        .await;
    assert_eq!(
        (edit.status, edit.body["errors"][0]["code"].as_str()),
        (422, Some("locked"))
    );
    let rev = step(&env, sales, &sent.body, "revise", json!({})).await;
    assert_eq!(rev.status, 200, "{}", rev.text);
    assert_eq!(
        (rev.body["revision"].as_i64(), rev.body["status"].as_str()),
        (Some(2), Some("draft"))
    );
    assert_eq!(rev.body["quote_lines"].as_array().unwrap().len(), 1);
    assert_eq!(rev.body["number"], sent.body["number"]);

    // Conversion: the one sent quote (now revised) is open; other tenants see nothing.
    let conv = env.get("/api/v1/quotes/conversion?by=owner", sales).await;
    assert_eq!(conv.status, 200, "{}", conv.text);
    assert_eq!(
        (conv.body[0]["sent"].as_u64(), conv.body[0]["open"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(env.get("/api/v1/quotes/conversion?by=team", sales).await.status, 400);
    let empty = env.get("/api/v1/quotes/conversion", env.b.token("admin")).await;
    assert_eq!(empty.body, serde_json::json!([]));

    // The printable document: HTML, locked down, only for readers of the quote.
    let doc_path = format!("/api/v1/quotes/{}/document", rev.body["id"].as_str().unwrap());
    let page = env.call("GET", &doc_path, Some(sales), None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(page.text.contains("Long-distance move") && page.text.contains("12500.00"));
    let other = env.b.token("admin");
    assert_eq!(env.call("GET", &doc_path, Some(other), None, &[]).await.status, 404);

    // The OpenAPI document lists a route per transition, and lines in the quote's input.
    let doc = env.get("/api/v1/openapi.json", sales).await;
    for t in [
        "submit",
        "approve",
        "reject",
        "send",
        "accept",
        "decline",
        "revise",
        "duplicate",
    ] {
        assert!(
            doc.body["paths"][format!("/api/v1/quotes/{{id}}/{t}")]["post"].is_object(),
            "{t}"
        );
    }
    assert!(doc.body["components"]["schemas"]["QuoteInput"]["properties"]["quote_lines"].is_object());
}
