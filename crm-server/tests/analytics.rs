//! `GET /api/v1/analytics/{report}`: each report as JSON within the caller's tenant and scope, as
//! the OpenAPI document describes it; unknown reports and bad parameters answered as problems.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_answer_as_documented() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    for (name, source, value, close) in [
        ("A", "referral", "1000", "2025-07-10"),
        ("B", "referral", "300", "2025-07-11"),
        ("C", "website", "2000", "2025-08-01"),
    ] {
        let r = env
            .post(
                "/api/v1/leads",
                admin,
                json!({"first_name": name, "source": source, "estimated_value": value, "expected_close_date": close}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        if name == "B" {
            let id = r.body["id"].as_str().unwrap().to_owned();
            let r = env
                .patch(&format!("/api/v1/leads/{id}"), admin, 1, json!({"status": "won"}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    let funnel = env.get("/api/v1/analytics/funnel", admin).await;
    assert_eq!(funnel.status, 200, "{}", funnel.text);
    assert_eq!(funnel.body["total"], 3);
    assert_eq!(funnel.body["won"], 1);
    assert_eq!(funnel.body["won_value"], "300.00");
    assert_eq!(funnel.body["steps"][0]["stage"], "new");
    assert_eq!(funnel.body["steps"][0]["reached"], 3);
    assert_eq!(funnel.body["steps"][1]["conversion_percent"], "33.3");
    let referral = env.get("/api/v1/analytics/funnel?q=source:referral", admin).await;
    assert_eq!(referral.body["total"], 2, "{}", referral.text);
    // Another tenant's leads are not counted.
    let other = env.get("/api/v1/analytics/funnel", env.b.token("admin")).await;
    assert_eq!(other.body["total"], 0);

    let forecast = env.get("/api/v1/analytics/forecast", admin).await;
    assert_eq!(forecast.status, 200, "{}", forecast.text);
    // new is 10 %: 1000.00 expected in July, 2000.00 in August.
    let months: Vec<_> = forecast.body["months"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["open_leads"] != 0)
        .map(|m| (m["month"].clone(), m["weighted_value"].clone()))
        .collect();
    assert_eq!(
        months,
        [(json!("2025-07"), json!("100.00")), (json!("2025-08"), json!("200.00"))]
    );
    assert_eq!(forecast.body["won_value"], "300.00");

    let velocity = env.get("/api/v1/analytics/velocity", admin).await;
    assert_eq!(velocity.status, 200, "{}", velocity.text);
    assert_eq!(
        (velocity.body["won"].clone(), velocity.body["lost"].clone()),
        (json!(1), json!(0))
    );

    let by = env.get("/api/v1/analytics/breakdown?by=source", admin).await;
    assert_eq!(by.status, 200, "{}", by.text);
    assert_eq!(by.body["by"], "source");
    assert_eq!(by.body["rows"][0]["key"], "referral");
    assert_eq!(by.body["rows"][0]["won_value"], "300.00");

    // Each answer has the properties its documented schema requires.
    let doc = env.get("/api/v1/openapi.json", admin).await.body;
    let op = &doc["paths"]["/api/v1/analytics/{report}"]["get"];
    let schemas = op["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
        .as_array()
        .unwrap()
        .clone();
    for (answer, i) in [
        (&funnel.body, 0),
        (&velocity.body, 1),
        (&forecast.body, 2),
        (&by.body, 3),
    ] {
        let required: Vec<&str> = schemas[i]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let mut keys: Vec<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut sorted = required.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "schema {i}");
    }

    for (path, status) in [
        ("/api/v1/analytics/nope", 404),
        ("/api/v1/analytics/funnel?q=status:", 400),
        ("/api/v1/analytics/breakdown?by=stage", 422),
        ("/api/v1/analytics/funnel?by=owner", 422),
    ] {
        let r = env.get(path, admin).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
    }
    let r: Json = env.get("/api/v1/analytics/funnel", "not-a-token").await.body;
    assert_eq!(r["status"], 401);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn productivity_cohort_geo_and_lifetime_value_answer_as_documented() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    let mut lead_ids = Vec::new();
    for (name, lat, lon, value) in [("A", 45.52, -122.68, "1000"), ("B", 45.55, -122.61, "300")] {
        let r = env
            .post(
                "/api/v1/leads",
                admin,
                json!({"first_name": name, "estimated_value": value, "latitude": lat, "longitude": lon}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        lead_ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let r = env
        .post(
            "/api/v1/activities",
            admin,
            json!({"kind": "call", "lead_id": lead_ids[0]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = env
        .post("/api/v1/contacts", admin, json!({"first_name": "Carla"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let productivity = env.get("/api/v1/analytics/productivity?tz=%2B02:00", admin).await;
    assert_eq!(productivity.status, 200, "{}", productivity.text);
    assert_eq!(productivity.body["activities"], 1);
    assert_eq!(productivity.body["weeks"][0]["by_kind"]["call"], 1);
    assert_eq!(productivity.body["users"][0]["leads_touched"], 1);
    assert_eq!(productivity.body["response"]["leads"], 1);
    let cohort = env.get("/api/v1/analytics/cohort", admin).await;
    assert_eq!(cohort.status, 200, "{}", cohort.text);
    assert_eq!(cohort.body["cohorts"][0]["leads"], 2);
    let geo = env.get("/api/v1/analytics/geo?cell=1&q=first_name:A", admin).await;
    assert_eq!(geo.status, 200, "{}", geo.text);
    assert_eq!(geo.body["type"], "FeatureCollection");
    assert_eq!(geo.body["records"], 1);
    assert_eq!(geo.body["features"][0]["properties"]["value"], "1000.00");
    assert_eq!(
        geo.body["features"][0]["geometry"]["coordinates"][0][2],
        json!([-122.0, 46.0])
    );
    let ltv = env
        .get("/api/v1/analytics/lifetime_value?entity=contact&bins=4", admin)
        .await;
    assert_eq!(ltv.status, 200, "{}", ltv.text);
    assert_eq!(
        (ltv.body["customers"].clone(), ltv.body["total"].clone()),
        (json!(1), json!("0.00"))
    );

    let doc = env.get("/api/v1/openapi.json", admin).await.body;
    let op = &doc["paths"]["/api/v1/analytics/{report}"]["get"];
    let schemas = op["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
        .as_array()
        .unwrap()
        .clone();
    for (answer, i) in [
        (&productivity.body, 4),
        (&cohort.body, 5),
        (&geo.body, 6),
        (&ltv.body, 7),
    ] {
        let mut required: Vec<&str> = schemas[i]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let mut keys: Vec<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, required, "schema {i}");
    }

    for (path, fields) in [
        ("/api/v1/analytics/geo?cell=0&entity=planet", vec!["entity", "cell"]),
        ("/api/v1/analytics/geo?bins=3&entity=lead", vec!["bins"]),
        (
            "/api/v1/analytics/lifetime_value?entity=lead&tz=%2B01:00",
            vec!["tz", "entity"],
        ),
        ("/api/v1/analytics/productivity?tz=Europe/Berlin", vec!["tz"]),
    ] {
        let r = env.get(path, admin).await;
        assert_eq!(r.status, 422, "{path}: {}", r.text);
        let got: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{path}");
    }
    env.stop().await;
}
