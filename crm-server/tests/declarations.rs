//! The declaration kinds over HTTP: workflow transitions (`POST /{table}/{id}/{transition}`),
//! children (`GET /{table}/{id}/children`, child writes bump the parent) and computed fields in lists
//! and filters.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_children_and_computed_fields() {
    let env = Env::start().await;
    let (manager, sales, staff) = (env.a.token("manager"), env.a.token("sales"), env.a.token("staff"));

    // A draft scoring model is published through its workflow's transition.
    let model =
        json!({"name": "Calls", "definition": serde_json::to_value(crm_core::scoring::default_model()).unwrap()});
    let draft = env.post("/api/v1/scoring_models", manager, model).await;
    assert_eq!(draft.status, 201, "{}", draft.text);
    let id = draft.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/scoring_models/{id}/publish");
    let before = env.writes(env.a.id).await;
    let no_version = env.call("POST", &path, Some(manager), Some(json!({})), &[]).await;
    assert_eq!(no_version.status, 428);
    let stale = env
        .call("POST", &path, Some(manager), Some(json!({})), &[("if-match", "\"9\"")])
        .await;
    assert_eq!(stale.status, 409);
    let by_sales = env
        .call("POST", &path, Some(sales), Some(json!({})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(by_sales.status, 403);
    let bad_input = env
        .call(
            "POST",
            &path,
            Some(manager),
            Some(json!({"name": "x"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(bad_input.status, 422);
    assert_eq!(bad_input.body["errors"][0]["path"], "name");
    let generic = env
        .patch(
            &format!("/api/v1/scoring_models/{id}"),
            manager,
            1,
            json!({"status": "published"}),
        )
        .await;
    assert_eq!(generic.status, 422, "the status moves only through transitions");
    assert_eq!(env.writes(env.a.id).await, before, "refusals write nothing");
    let ok = env
        .call("POST", &path, Some(manager), Some(json!({})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let published = &ok.body["scoring_model"];
    assert_eq!(
        (published["status"].as_str(), published["model_version"].as_i64()),
        (Some("published"), Some(1))
    );
    assert!(ok.body["rescore"]["scanned"].is_u64(), "{}", ok.text);
    let again = env
        .call("POST", &path, Some(manager), Some(json!({})), &[("if-match", "\"2\"")])
        .await;
    assert_eq!(
        (again.status, again.body["errors"][0]["code"].as_str()),
        (422, Some("invalid_transition"))
    );

    // A membership with a freeze: the freeze is written in the membership's change set.
    let contact = env
        .post("/api/v1/contacts", manager, json!({"first_name": "Kai"}))
        .await;
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: i64| (today + time::Duration::days(d)).to_string();
    let m = env
        .post(
            "/api/v1/memberships",
            manager,
            json!({"contact_id": contact.body["id"], "starts_on": day(-300), "ends_on": day(5)}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    assert_eq!(m.body["status"], "expiring", "computed on write responses too");
    let mid = m.body["id"].as_str().unwrap().to_owned();
    let freeze = json!({"membership_id": mid, "starts_on": day(-20), "ends_on": day(-11)});
    assert_eq!(
        env.post("/api/v1/membership_freezes", staff, freeze.clone())
            .await
            .status,
        403
    );
    let fz = env.post("/api/v1/membership_freezes", manager, freeze).await;
    assert_eq!(fz.status, 201, "{}", fz.text);
    let m2 = env.get(&format!("/api/v1/memberships/{mid}"), staff).await;
    assert_eq!(
        (m2.body["version"].as_i64(), m2.body["frozen_days"].as_i64()),
        (Some(2), Some(10))
    );
    let kids = env.get(&format!("/api/v1/memberships/{mid}/children"), staff).await;
    assert_eq!(kids.status, 200);
    assert_eq!(kids.body["membership_freezes"][0]["id"], fz.body["id"]);
    assert_eq!(
        env.get(&format!("/api/v1/memberships/{mid}/children"), sales)
            .await
            .status,
        403
    );

    // The freeze moved the end date by its 10 days (the tenant's default policy), so the membership
    // is no longer expiring. Computed fields filter like stored ones.
    assert_eq!(m2.body["ends_on"], json!(day(15)));
    let expiring = env.get("/api/v1/memberships?q=status%3Aexpiring", staff).await;
    assert_eq!(expiring.body["items"].as_array().map(Vec::len), Some(0));
    let active = env.get("/api/v1/memberships?q=status%3Aactive", staff).await;
    assert_eq!(active.body["items"].as_array().map(Vec::len), Some(1));
    let bad = env.get("/api/v1/memberships?q=status%3Alapsed", staff).await;
    assert_eq!(bad.status, 400);
    env.stop().await;
}
