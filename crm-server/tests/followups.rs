//! Follow-ups through HTTP: the computed views filter the list (`q=followup:overdue`), an activity
//! sets its lead's next follow-up, and the server's scheduler fires each due follow-up once, as an
//! event on the stream of whoever may read the lead and of nobody else.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use crm_core::clock::{Clock, SystemClock};
use crm_core::store::Store;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use std::time::Duration;

/// The kinds and entity ids of the events on a stream from the start, until two seconds of quiet.
async fn stream(env: &Env, token: &str) -> Vec<(String, String)> {
    let req = hyper::Request::get(format!("{}/api/v1/events", env.base))
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", "0")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = env.http.request(req).await.unwrap().into_body();
    let (mut buf, mut out) = (String::new(), Vec::new());
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(2), body.frame()).await {
        if let Ok(d) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&d));
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).unwrap_or("null");
            let data: Json = serde_json::from_str(data.trim()).unwrap_or(Json::Null);
            if let Some(kind) = data["kind"].as_str() {
                out.push((
                    kind.to_owned(),
                    data["entity_id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_listed_set_by_activities_and_fire_once_to_readers() {
    let env = Env::start().await;
    let sales = env.a.token("sales").to_owned();
    let now = SystemClock.now();
    let minutes = |m: i64| crm_core::value::Timestamp(now.0 + m * 60_000_000).to_rfc3339();

    let direct = env
        .post(
            "/api/v1/leads",
            &sales,
            json!({"first_name": "Direct", "next_followup_at": minutes(-2)}),
        )
        .await;
    assert_eq!(direct.status, 201, "{}", direct.text);
    let called = env.post("/api/v1/leads", &sales, json!({"first_name": "Called"})).await;
    let called_id = called.body["id"].as_str().unwrap().to_owned();
    let later = env
        .post(
            "/api/v1/leads",
            &sales,
            json!({"first_name": "Later", "next_followup_at": minutes(60 * 24 * 3)}),
        )
        .await;
    assert_eq!(later.status, 201);
    // Logging a call sets the lead's next follow-up in the call's change set.
    let call = env
        .post(
            "/api/v1/activities",
            &sales,
            json!({"kind": "call", "direction": "outbound", "lead_id": called_id, "next_followup_at": minutes(-1)}),
        )
        .await;
    assert_eq!(call.status, 201, "{}", call.text);
    let lead = env.get(&format!("/api/v1/leads/{called_id}"), &sales).await;
    assert_eq!(lead.body["next_followup_at"], json!(minutes(-1)));
    assert!(matches!(lead.body["followup"].as_str(), Some("due_today" | "overdue")));

    let names = |r: &common::Res| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["first_name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let due = env
        .get("/api/v1/leads?q=followup%3Adue_today%20OR%20followup%3Aoverdue", &sales)
        .await;
    assert_eq!(due.status, 200, "{}", due.text);
    assert_eq!(names(&due), ["Called", "Direct"]);
    let upcoming = env.get("/api/v1/leads?q=followup%3Aupcoming", &sales).await;
    assert_eq!(names(&upcoming), ["Later"]);
    let bad = env.get("/api/v1/leads?q=followup%3Asoon", &sales).await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    // The scheduler (every 500 ms in tests) fires both, once.
    let due_events = || async {
        env.store
            .events(env.a.id, 0, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "lead.followup_due")
            .count()
    };
    for _ in 0..50 {
        if due_events().await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(due_events().await, 2, "each follow-up fired once");

    let seen = stream(&env, &sales).await;
    let fired: Vec<&str> = seen
        .iter()
        .filter(|e| e.0 == "lead.followup_due")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(fired.len(), 2);
    assert!(fired.contains(&called_id.as_str()));
    // A field tech sees only records assigned to them: not these leads, nor their events.
    let tech = stream(&env, env.a.token("field_tech")).await;
    assert!(tech.iter().all(|e| e.0 != "lead.followup_due"), "{tech:?}");
    // The other tenant has nothing.
    let other = stream(&env, env.b.token("admin")).await;
    assert!(other.iter().all(|e| e.0 != "lead.followup_due"));
    env.stop().await;
}
