//! The front desk over HTTP: check-in by card and by id (with a kiosk API key and as staff), the
//! renew and freeze routes, the client's status filter, the staff rule, and the owner's numbers.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};

fn day(d: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(d)).to_string()
}

async fn post_at(env: &Env, path: &str, token: &str, version: &Json, body: Json) -> common::Res {
    let etag = format!("\"{version}\"");
    env.call("POST", path, Some(token), Some(body), &[("if-match", &etag)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_desk_over_http() {
    let env = Env::start().await;
    let (admin, staff) = (env.a.token("admin").to_owned(), env.a.token("staff").to_owned());
    let plan = env
        .post(
            "/api/v1/plans",
            &admin,
            json!({"name": "Ten visits", "duration_days": 30, "price": "45.00", "visit_allowance": 10}),
        )
        .await;
    assert_eq!(plan.status, 201, "{}", plan.text);
    let c = env
        .post(
            "/api/v1/contacts",
            &admin,
            json!({"first_name": "Mia", "last_name": "Berg", "email": "mia@example.com", "external_id": "123"}),
        )
        .await;
    let cid = c.body["id"].as_str().unwrap().to_owned();
    let m = env
        .post(
            "/api/v1/memberships",
            &admin,
            json!({"contact_id": cid, "plan_id": plan.body["id"], "starts_on": day(-10), "ends_on": day(19)}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    assert_eq!(m.body["status"], "active");

    // A kiosk key checks in by card, and reads nothing but names and statuses.
    let key = env
        .post("/api/v1/api_keys", &admin, json!({"name": "door", "role": "kiosk"}))
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let kiosk = key.body["key"].as_str().unwrap().to_owned();
    let r = env.post("/api/v1/check_ins", &kiosk, json!({"card": "123"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (
            &r.body["outcome"],
            &r.body["status"],
            &r.body["name"],
            &r.body["visits_left"]
        ),
        (&json!("allowed"), &json!("active"), &json!("Mia Berg"), &json!(9))
    );
    assert_eq!(r.body["membership_id"], m.body["id"]);
    let rec = env
        .get(
            &format!("/api/v1/check_ins/{}", r.body["check_in_id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(
        (&rec.body["checked_in_as"], &rec.body["api_key_id"]),
        (&json!("kiosk"), &key.body["api_key"]["id"])
    );
    assert_eq!(r.body["ends_on"], json!(day(19)));
    let seen = env.get(&format!("/api/v1/contacts/{cid}"), &kiosk).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["membership"], "active");
    assert!(seen.body.get("email").is_none() && seen.body.get("external_id").is_none());
    for path in [
        "/api/v1/memberships",
        "/api/v1/check_ins",
        "/api/v1/leads",
        "/api/v1/memberships/numbers",
    ] {
        assert_eq!(env.get(path, &kiosk).await.status, 403, "{path}");
    }

    // Staff: check in by id; notes and language only, the refused field named.
    let r = env.post("/api/v1/check_ins", &staff, json!({"contact_id": cid})).await;
    assert_eq!((r.status, &r.body["visits_left"]), (201, &json!(8)), "{}", r.text);
    let v = seen.body["version"].as_u64().unwrap();
    let ok = env
        .patch(
            &format!("/api/v1/contacts/{cid}"),
            &staff,
            v,
            json!({"notes": "left a headset", "language": "de"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let no = env
        .patch(
            &format!("/api/v1/contacts/{cid}"),
            &staff,
            v + 1,
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(no.status, 403);
    assert!(no.text.contains("email"), "{}", no.text);

    // Bad check-ins: both names, neither, unknown fields (400), an unknown card (404).
    let both = env
        .post("/api/v1/check_ins", &staff, json!({"contact_id": cid, "card": "123"}))
        .await;
    assert_eq!(both.status, 422, "{}", both.text);
    assert_eq!(env.post("/api/v1/check_ins", &staff, json!({})).await.status, 422);
    assert_eq!(
        env.post("/api/v1/check_ins", &staff, json!({"card": "123", "at": "now"}))
            .await
            .status,
        400
    );
    assert_eq!(
        env.post("/api/v1/check_ins", &staff, json!({"card": "999"}))
            .await
            .status,
        404
    );

    // The client's status filters the client list.
    let list = env.get("/api/v1/contacts?q=membership:active", &staff).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "{}", list.text);
    let none = env.get("/api/v1/contacts?q=membership:none", &staff).await;
    assert_eq!(none.body["items"].as_array().unwrap().len(), 0);

    // Freeze from today: the end moves by the frozen days, and the desk refuses (and logs) the visit.
    let mid = m.body["id"].as_str().unwrap().to_owned();
    let frozen = post_at(
        &env,
        &format!("/api/v1/memberships/{mid}/freeze"),
        &admin,
        &m.body["version"],
        json!({"starts_on": day(0), "ends_on": day(4), "reason": "travel"}),
    )
    .await;
    assert_eq!(frozen.status, 200, "{}", frozen.text);
    assert_eq!(
        (&frozen.body["status"], &frozen.body["ends_on"]),
        (&json!("frozen"), &json!(day(24)))
    );
    let r = env.post("/api/v1/check_ins", &kiosk, json!({"card": "123"})).await;
    assert_eq!((r.status, &r.body["outcome"]), (201, &json!("refused")), "{}", r.text);
    let stale = post_at(
        &env,
        &format!("/api/v1/memberships/{mid}/freeze"),
        &admin,
        &m.body["version"],
        json!({"starts_on": day(30), "ends_on": day(31)}),
    )
    .await;
    assert_eq!(stale.status, 409);
    let by_staff = post_at(
        &env,
        &format!("/api/v1/memberships/{mid}/freeze"),
        &staff,
        &frozen.body["version"],
        json!({"starts_on": day(30), "ends_on": day(31)}),
    )
    .await;
    assert_eq!(by_staff.status, 403);

    // Renew: a new membership from the day after the end, for the plan's 30 days.
    let renewed = post_at(
        &env,
        &format!("/api/v1/memberships/{mid}/renew"),
        &admin,
        &frozen.body["version"],
        json!({}),
    )
    .await;
    assert_eq!(renewed.status, 201, "{}", renewed.text);
    assert_eq!(
        (
            &renewed.body["starts_on"],
            &renewed.body["ends_on"],
            &renewed.body["price_paid"]
        ),
        (&json!(day(25)), &json!(day(54)), &json!("45.00"))
    );
    assert!(renewed.headers.get("location").is_some());
    let unknown = post_at(
        &env,
        &format!("/api/v1/memberships/{mid}/renew"),
        &admin,
        &frozen.body["version"],
        json!({"starts_on": day(1)}),
    )
    .await;
    assert_eq!(unknown.status, 422);

    // The owner's numbers.
    let n = env.get("/api/v1/memberships/numbers", &admin).await;
    assert_eq!(n.status, 200, "{}", n.text);
    assert_eq!(n.body["active_members"], 1);
    assert_eq!(n.body["months"].as_array().unwrap().len(), 12);
    let days = n.body["check_ins_per_day"].as_array().unwrap();
    assert_eq!(days.last().unwrap()["check_ins"], 2, "the refused one is not a visit");
    assert_eq!(n.body["check_ins_by_hour"].as_array().unwrap().len(), 7);
    let at = env
        .get(&format!("/api/v1/memberships/numbers?as_of={}", day(-400)), &admin)
        .await;
    assert_eq!((at.status, &at.body["active_members"]), (200, &json!(0)));
    assert_eq!(
        env.get("/api/v1/memberships/numbers?as_of=yesterday", &admin)
            .await
            .status,
        400
    );
    // A kiosk key that recorded check-ins can still be revoked.
    let kid = key.body["api_key"]["id"].as_str().unwrap();
    let r = env
        .call(
            "DELETE",
            &format!("/api/v1/api_keys/{kid}"),
            Some(&admin),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        env.post("/api/v1/check_ins", &kiosk, json!({"card": "123"}))
            .await
            .status,
        401
    );
    env.stop().await;
}
