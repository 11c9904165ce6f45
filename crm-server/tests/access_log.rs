//! The access log (issue 18, defect 6): one line per request, text or JSON, with method, route
//! template, status, duration, request id and caller, and never a credential.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use serde_json::{Value as Json, json};
use std::sync::{Arc, Mutex};

/// Collects what the logger writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// Runs requests against a server whose logs (this thread's: the current-thread runtime runs the
/// server's tasks here) go to a capture in the given format.
async fn logged(json: bool) -> (Capture, Env, String, String) {
    let cap = Capture::default();
    let w = cap.clone();
    // `RUST_LOG` of whoever runs the tests must not hide the lines under test.
    let sub = crm_server::logger(json, false, move || w.clone());
    let guard = tracing::subscriber::set_default(sub);
    std::mem::forget(guard); // for the rest of this test's thread
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let lead = env.post("/api/v1/leads", &admin, json!({"first_name": "Logged"})).await;
    let id = lead.body["id"].as_str().unwrap().to_owned();
    let rid = format!("rid-{}", if json { "json" } else { "text" });
    let res = env
        .call(
            "GET",
            &format!("/api/v1/leads/{id}"),
            Some(&admin),
            None,
            &[("x-request-id", &rid)],
        )
        .await;
    assert_eq!(res.status, 200);
    let missing = env
        .call("GET", "/no/such/route", None, None, &[("x-request-id", "rid-404")])
        .await;
    assert_eq!(missing.status, 404);
    (cap, env, admin, id)
}

#[tokio::test(flavor = "current_thread")]
async fn one_json_line_per_request_without_secrets() {
    let (cap, env, admin, id) = logged(true).await;
    let lines = cap.lines_with("rid-json");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line: Json = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "crm_server::access");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    let span = &line["span"];
    assert_eq!(span["method"], "GET");
    assert_eq!(span["route"], "/api/v1/leads/{id}");
    assert_eq!(span["request_id"], "rid-json");
    assert_eq!(span["tenant"], env.a.id.to_string());
    assert_eq!(span["user"], env.a.user("admin").to_string());
    assert!(!lines[0].contains(&id), "the route template, not the path");
    let unmatched = cap.lines_with("rid-404");
    assert_eq!(unmatched.len(), 1, "{unmatched:#?}");
    let u: Json = serde_json::from_str(&unmatched[0]).unwrap();
    assert_eq!(
        (u["fields"]["status"].as_u64(), u["span"]["route"].as_str()),
        (Some(404), Some("unmatched"))
    );
    // A client that goes away in the middle of its request still leaves one line.
    {
        use tokio::io::AsyncWriteExt;
        let addr = env.base.trim_start_matches("http://").to_owned();
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/leads HTTP/1.1\r\nhost: x\r\nx-request-id: rid-gone\r\nauthorization: Bearer {admin}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"first_"
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(sock);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while cap.lines_with("rid-gone").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let gone = cap.lines_with("rid-gone");
    assert_eq!(gone.len(), 1, "{gone:#?}");
    // One that closes while its answer is being worked on (a sign-in hashes for a while).
    {
        use tokio::io::AsyncWriteExt;
        let addr = env.base.trim_start_matches("http://").to_owned();
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body =
            json!({"organization": env.a.id, "email": env.a.email("admin"), "password": common::PASSWORD}).to_string();
        let req = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\nx-request-id: rid-drop\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        sock.shutdown().await.unwrap();
        drop(sock);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while cap.lines_with("rid-drop").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let dropped = cap.lines_with("rid-drop");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    let d: Json = serde_json::from_str(&dropped[0]).unwrap();
    assert_eq!(d["fields"]["dropped"], true, "{d}");
    assert_eq!(d["span"]["route"], "/api/v1/auth/login");
    let all = cap.text();
    assert!(!all.contains(&admin), "an access token was logged");
    assert!(
        !all.to_lowercase().contains("bearer"),
        "an authorization header was logged"
    );
    assert!(!all.contains(common::PASSWORD), "a password was logged");
    env.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn one_text_line_per_request_without_secrets() {
    let (cap, env, admin, _) = logged(false).await;
    let lines = cap.lines_with("rid-text");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let user = format!("user={}", env.a.user("admin"));
    for part in [
        " INFO ",
        "method=GET",
        "route=/api/v1/leads/{id}",
        "request_id=rid-text",
        &user,
        "status=200",
        "duration_ms=",
    ] {
        assert!(lines[0].contains(part), "{part} missing in {}", lines[0]);
    }
    let all = cap.text();
    assert!(!all.contains(&admin) && !all.to_lowercase().contains("bearer"));
    env.stop().await;
}
