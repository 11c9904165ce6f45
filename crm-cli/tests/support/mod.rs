//! What the `crm` binary's HTTP tests share: `crm serve` on a free port, a signed-in demo admin, and
//! a one-request HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: crm\r\nconnection: close\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\n{auth}\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Starts `crm serve` on a free port with extra environment `env`; returns it and its address.
pub fn serve(db: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "100000",
            "--rate-burst",
            "100000",
        ])
        .env("RUST_LOG", "info,crm_server::access=off")
        .env("CRM_JWT_SECRET", "crm-cli-test-secret-of-at-least-32-bytes")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.contains("listening")
                .then(|| l.split("addr=").nth(1).map(|a| a.trim().to_owned()))
                .flatten()
        })
        .expect("the server logs its address");
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// Gives the demo admin of the database at `db` a password, as `crm serve --demo` does; returns
/// the body of a sign-in request for it.
pub fn demo_admin_login(db: &Path) -> String {
    use crm_core::access::Actor;
    use crm_core::clock::{RandomIds, SystemClock};
    use crm_core::service::Service;
    const EMAIL: &str = "alex@summit-roofing.example";
    const PASSWORD: &str = "crm-cli-test-password-1";
    let store = Arc::new(crm_store::SqliteStore::open(db).expect("opens"));
    let svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds));
    let tenant = pollster::block_on(svc.tenants()).expect("tenants")[0];
    let admin = pollster::block_on(svc.actor_by_email(tenant, EMAIL)).expect("the demo admin");
    let phc = crm_server::auth::password::hash_now(PASSWORD);
    let same = |_: &str| -> crm_core::Result<String> { Ok(phc.clone()) };
    let user = admin.user_id.expect("a user");
    pollster::block_on(svc.set_password(&Actor::system(tenant), user, PASSWORD, &same)).expect("sets it");
    format!(r#"{{"organization":"{tenant}","email":"{EMAIL}","password":"{PASSWORD}"}}"#)
}

/// Signs in at the server at `addr`; the access token.
pub fn sign_in(addr: &str, login: &str) -> String {
    let (status, body) = http(addr, "POST", "/api/v1/auth/login", None, "application/json", login).expect("signs in");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["access_token"].as_str().expect("a token").to_owned()
}
