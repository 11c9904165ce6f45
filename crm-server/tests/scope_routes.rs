//! No route reveals a record outside the caller's read scope: every `GET` route with an `{id}` in
//! the served OpenAPI document, the audit trail by `entity_id` and every export, called by each
//! built-in role of one tenant with the ids of another tenant's records (issue 18).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, ROLES};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// A marker in every text the other tenant's records hold, so a leak shows in any answer.
const MARK: &str = "Zebulon";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_reveals_another_tenants_records() {
    let env = Env::start().await;
    let b = env.b.token("admin");
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut make = async |table: &'static str, body: Json| -> String {
        let r = env.post(&format!("/api/v1/{table}"), b, body).await;
        assert_eq!(r.status, 201, "{table}: {}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        ids.insert(table, id.clone());
        id
    };
    let contact = make("contacts", json!({"first_name": MARK, "notes": MARK})).await;
    make("companies", json!({"name": MARK})).await;
    let lead = make(
        "leads",
        json!({"first_name": MARK, "source": "referral", "notes": MARK}),
    )
    .await;
    make("activities", json!({"kind": "note", "subject": MARK, "lead_id": lead})).await;
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    make(
        "quotes",
        json!({"contact_id": contact, "title": MARK, "valid_until": until,
            "quote_lines": [{"description": MARK, "quantity": "1", "unit_price": "10"}]}),
    )
    .await;
    make(
        "memberships",
        json!({"contact_id": contact, "starts_on": "2025-01-01", "ends_on": "2030-01-01", "notes": MARK}),
    )
    .await;
    make("teams", json!({"name": MARK})).await;
    make("locations", json!({"name": MARK})).await;

    // The control: the owner tenant reads them, marker and all (so the checks below can fail).
    let own = env.get(&format!("/api/v1/quotes/{}/document", ids["quotes"]), b).await;
    assert!(own.status == 200 && own.text.contains(MARK));
    let own = env.get(&format!("/api/v1/audit?entity_id={lead}"), b).await;
    assert!(own.text.contains(MARK), "{}", own.text);

    let doc = env.get("/api/v1/openapi.json", env.a.token("admin")).await;
    let paths = doc.body["paths"].as_object().unwrap();
    let mut checked = 0;
    for (template, ops) in paths {
        if !template.contains("{id}") || ops.get("get").is_none() {
            continue;
        }
        let table = template.split('/').nth(3).unwrap();
        // Tables without a record of B here get B's lead id: still not A's to read.
        let id = ids.get(table).unwrap_or(&lead);
        let path = template.replace("{id}", id);
        for role in ROLES {
            let r = env.get(&path, env.a.token(role)).await;
            assert!(
                matches!(r.status, 403 | 404),
                "{role} GET {template} with another tenant's id: {} {}",
                r.status,
                r.text
            );
            assert!(!r.text.contains(MARK), "{role} GET {template} leaks: {}", r.text);
            checked += 1;
        }
    }
    assert!(
        checked >= ROLES.len() * 10,
        "only {checked} calls: the document lost its id routes?"
    );

    for role in ROLES {
        let token = env.a.token(role);
        for id in ids.values() {
            let r = env.get(&format!("/api/v1/audit?entity_id={id}"), token).await;
            assert!(
                !r.text.contains(MARK) && !r.text.contains(id.as_str()),
                "{role} audit leaks {id}: {}",
                r.text
            );
        }
        for table in ["contacts", "companies", "leads", "activities", "quotes", "memberships"] {
            let r = env.get(&format!("/api/v1/{table}/export"), token).await;
            assert!(matches!(r.status, 200 | 403), "{role} export {table}: {}", r.status);
            assert!(!r.text.contains(MARK), "{role} export {table} leaks");
            let list = env.get(&format!("/api/v1/{table}?q={MARK}"), token).await;
            assert!(!list.text.contains(MARK), "{role} list {table} leaks");
        }
    }
}
