//! Field work over HTTP: a job created with its steps and crew and returned with them, the step and
//! job transitions as routes (with the guards' refusals as 422s naming the field), double booking
//! refused, a field technician's day, a dispatcher's board and the period's report.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};

async fn transition(env: &Env, token: &str, table: &str, r: &Json, name: &str, body: Json) -> common::Res {
    let path = format!("/api/v1/{table}/{}/{name}", r["id"].as_str().unwrap());
    let etag = format!("\"{}\"", r["version"]);
    env.call("POST", &path, Some(token), Some(body), &[("if-match", &etag)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_from_dispatch_to_completion() {
    let env = Env::start().await;
    let (manager, tech) = (env.a.token("manager"), env.a.token("field_tech"));
    let tom = env.a.user("field_tech").to_string();
    let c = env
        .post("/api/v1/contacts", manager, json!({"first_name": "Cleo"}))
        .await;
    let body = json!({"kind": "journey", "title": "Cleo to Elm St", "contact_id": c.body["id"],
        "scheduled_on": "2030-03-04", "vehicle": "truck-1",
        "job_steps": [{"name": "Load"}, {"name": "Drive"}, {"name": "Photos", "required": false}],
        "crew_assignments": [{"user_id": tom, "role": "driver",
            "starts_at": "2030-03-04T08:00:00Z", "ends_at": "2030-03-04T12:00:00Z"}]});
    let job = env.post("/api/v1/jobs", manager, body).await;
    assert_eq!(job.status, 201, "{}", job.text);
    assert_eq!(
        job.body["job_steps"].as_array().unwrap().len(),
        3,
        "steps come back with their job"
    );
    assert_eq!(job.body["crew_assignments"][0]["user_id"], json!(tom));
    assert_eq!(job.body["required_open"], json!(2));

    // Booking Tom again for overlapping hours: 422 on user_id, whichever job.
    let other = env
        .post(
            "/api/v1/jobs",
            manager,
            json!({"kind": "journey", "title": "Other", "contact_id": c.body["id"]}),
        )
        .await;
    let clash = env
        .post(
            "/api/v1/crew_assignments",
            manager,
            json!({"job_id": other.body["id"], "user_id": tom, "role": "mover",
                "starts_at": "2030-03-04T11:00:00Z", "ends_at": "2030-03-04T13:00:00Z"}),
        )
        .await;
    assert_eq!(clash.status, 422, "{}", clash.text);
    assert!(clash.text.contains("overlap"), "{}", clash.text);

    // The tech runs it: the guards answer 422 with the reason on its field.
    let job = transition(&env, manager, "jobs", &job.body, "dispatch", json!({})).await;
    assert_eq!(job.status, 200, "{}", job.text);
    let job = transition(&env, tech, "jobs", &job.body, "start", json!({})).await;
    assert_eq!(job.status, 200, "{}", job.text);
    let early = transition(&env, tech, "jobs", &job.body, "complete", json!({})).await;
    assert_eq!(early.status, 422, "{}", early.text);
    assert!(early.text.contains("open_steps"), "{}", early.text);
    let id = job.body["id"].as_str().unwrap();
    let got = env.get(&format!("/api/v1/jobs/{id}"), tech).await;
    assert_eq!(got.status, 200, "the tech on the crew reads the job: {}", got.text);
    for s in got.body["job_steps"].as_array().unwrap() {
        let r = if s["required"] == json!(true) {
            transition(&env, tech, "job_steps", s, "complete", json!({"completed_by": tom})).await
        } else {
            transition(&env, tech, "job_steps", s, "skip", json!({"skip_reason": "rain"})).await
        };
        if s["required"] == json!(true) {
            assert_eq!(r.status, 422, "completed_by is the core's: {}", r.text);
            let r = transition(&env, tech, "job_steps", s, "complete", json!({})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["completed_by"], json!(tom));
        } else {
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    let budget = env
        .patch(&format!("/api/v1/jobs/{id}"), tech, 0, json!({"budget": "1.00"}))
        .await;
    assert_eq!(budget.status, 403, "{}", budget.text);
    let now = env.get(&format!("/api/v1/jobs/{id}"), tech).await;
    assert_eq!(now.body["progress"], json!(100));
    let done = transition(&env, tech, "jobs", &now.body, "complete", json!({})).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], json!("completed"));

    // Tom's day and the board.
    let day = env.get("/api/v1/field/my-day?date=2030-03-04", tech).await;
    assert_eq!(day.status, 200, "{}", day.text);
    assert_eq!(day.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(day.body["items"][0]["job"]["title"], json!("Cleo to Elm St"));
    assert_eq!(day.body["items"][0]["open_steps"], json!([]));
    let bad = env.get("/api/v1/field/my-day?date=tomorrow", tech).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let board = env.get("/api/v1/field/board?date=2030-03-04", manager).await;
    assert_eq!(board.status, 200, "{}", board.text);
    assert_eq!(board.body["by_vehicle"]["truck-1"], json!([id]));
    assert_eq!(board.body["by_user"][&tom], json!([id]));
    let none = env.get("/api/v1/field/board", manager).await;
    assert_eq!(none.status, 400, "{}", none.text);
    let report = env
        .get("/api/v1/field/report?from=2030-03-01&to=2030-03-31", manager)
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(
        (report.body["jobs"].clone(), report.body["completed"].clone()),
        (json!(1), json!(1))
    );
    let skipped = report.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == json!("Photos"))
        .unwrap();
    assert_eq!(skipped["skipped"], json!(1));
    // Another tenant's technician sees nothing of it.
    let stranger = env.get(&format!("/api/v1/jobs/{id}"), env.b.token("field_tech")).await;
    assert_eq!(stranger.status, 404);
}

/// A quote accepted over HTTP becomes a job with `POST /api/v1/quotes/{id}/job`: 201 with the job,
/// its template steps and a Location; a second one, a quote that is not accepted, a customer in the
/// body and a stranger are refused with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_an_accepted_quote() {
    let env = Env::start().await;
    let (admin, sales, tech) = (env.a.token("admin"), env.a.token("sales"), env.a.token("field_tech"));
    let t = env
        .post(
            "/api/v1/job_templates",
            admin,
            json!({"job_type": "reroof", "steps": [{"name": "Tear off"}, {"name": "Shingle"}]}),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let c = env
        .post(
            "/api/v1/contacts",
            sales,
            json!({"first_name": "Quinn", "address_line": "9 Oak Rd", "city": "Denver"}),
        )
        .await;
    let body = json!({"title": "New roof", "contact_id": c.body["id"], "valid_until": "2099-12-31",
        "quote_lines": [{"description": "Shingles", "quantity": "10", "unit_price": "150.00"}]});
    let q = env.post("/api/v1/quotes", sales, body).await;
    assert_eq!(q.status, 201, "{}", q.text);
    let path = format!("/api/v1/quotes/{}/job", q.body["id"].as_str().unwrap());

    // Sent, not accepted: 422 not_accepted, nothing written.
    let mut q = q.body;
    for name in ["submit", "send"] {
        let r = transition(&env, sales, "quotes", &q, name, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        q = r.body;
    }
    let before = env.writes(env.a.id).await;
    let early = env.post(&path, sales, json!({})).await;
    assert_eq!(
        (early.status, early.body["errors"][0]["code"].as_str()),
        (422, Some("not_accepted")),
        "{}",
        early.text
    );
    assert_eq!(env.writes(env.a.id).await, before, "refusals write nothing");

    let q = transition(&env, sales, "quotes", &q, "accept", json!({})).await.body;
    // A technician may not make jobs; another tenant does not see the quote.
    assert_eq!(env.post(&path, tech, json!({})).await.status, 403);
    assert_eq!(env.post(&path, env.b.token("admin"), json!({})).await.status, 404);
    // The customer is the quote's.
    let bad = env.post(&path, sales, json!({"contact_id": c.body["id"]})).await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["code"].as_str()),
        (422, Some("read_only"))
    );

    // No body at all makes the job from the quote alone; overrides in a body win.
    let job = env
        .call(
            "POST",
            &path,
            Some(sales),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let id = job.body["id"].as_str().unwrap();
    assert_eq!(job.headers["location"].to_str().unwrap(), format!("/api/v1/jobs/{id}"));
    assert_eq!(job.body["quote_id"], q["id"]);
    assert_eq!(job.body["contact_id"], c.body["id"]);
    assert_eq!(job.body["budget"], q["total"]);
    assert_eq!(
        (job.body["title"].as_str(), job.body["city"].as_str()),
        (Some("New roof"), Some("Denver"))
    );

    // A second job: 422 already_has_job, nothing written.
    let before = env.writes(env.a.id).await;
    let again = env
        .post(
            &path,
            sales,
            json!({"job_type": "reroof", "scheduled_on": "2030-03-04"}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["errors"][0]["code"].as_str()),
        (422, Some("already_has_job")),
        "{}",
        again.text
    );
    assert_eq!(env.writes(env.a.id).await, before, "refusals write nothing");

    // Cancelled, the quote makes a new job, with the overrides and its type's template steps.
    let cancelled = transition(
        &env,
        env.a.token("manager"),
        "jobs",
        &job.body,
        "cancel",
        json!({"cancel_reason": "rescheduled"}),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let again = env
        .post(
            &path,
            sales,
            json!({"job_type": "reroof", "scheduled_on": "2030-03-04"}),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["scheduled_on"], json!("2030-03-04"));
    let steps: Vec<_> = again.body["job_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["Tear off", "Shingle"]);
}
