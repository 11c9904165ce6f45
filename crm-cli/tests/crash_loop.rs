//! Crash loops: `kill -9` at random moments of `crm import` and of `crm serve` under concurrent
//! creates. After every kill `crm check` must be clean (stored rows, and the audit chain up to the
//! head the store recorded) and the counts must add up: an import is all or nothing, and every
//! create the server acknowledged is there.
//!
//! CI runs a few rounds of each (`CRM_CRASH_ROUNDS`, default 5; the whole file well under a
//! minute). Long runs, with a release build:
//!
//! ```text
//! CRM_CRASH_ROUNDS=300 cargo test --release -p crm-cli --test crash_loop -- --nocapture
//! ```
//!
//! Each test prints its seed; `CRM_CRASH_SEED=N` replays its kill moments.
#![cfg(unix)]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn crm(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn rounds() -> u64 {
    std::env::var("CRM_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// xorshift64*: the kill moments, from a printed seed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("CRM_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("{test}: CRM_CRASH_SEED={seed}");
        Rng(seed)
    }

    /// A duration in `[0, max)`.
    fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let max = max.as_micros().max(1) as u64;
        Duration::from_micros(r % max)
    }
}

/// `crm check` exits 0: no broken row, the audit chain verifies up to its recorded head.
fn assert_check_clean(db: &Path, context: &str) {
    let out = crm(db, &["check"]);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{context}: a JSON report: {}", stderr(&out)));
    assert_eq!(out.status.code(), Some(0), "{context}: {report}");
    assert!(report["audit_broken_at"].is_null(), "{context}: {report}");
}

fn leads(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .expect("opens")
        .query_row("SELECT count(*) FROM leads", [], |r| r.get(0))
        .expect("counts")
}

/// The ids of every stored lead, as the API writes them.
fn lead_ids(db: &Path) -> HashSet<String> {
    let out = crm(db, &["export", "--fields", "id"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn kill9(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix: no handler runs, no rollback, no checkpoint.
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn imports_killed_at_random_moments_are_all_or_nothing() {
    let mut rng = Rng::new("imports");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let out = crm(&db, &["demo", "--leads", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    const ROWS: i64 = 3_000;
    let csv = |round: u64| {
        let path = dir.path().join(format!("round-{round}.csv"));
        let mut text = String::from("first_name,email,source,external_id\n");
        for i in 0..ROWS {
            text.push_str(&format!("R{round}n{i},r{round}n{i}@example.com,website,r{round}-{i}\n"));
        }
        std::fs::write(&path, text).expect("writes the CSV");
        path
    };
    // An uninterrupted import first: how long one takes here spreads the kills over its whole run.
    let before = leads(&db);
    let started = Instant::now();
    let out = crm(
        &db,
        &[
            "import",
            "--mode",
            "all-or-nothing",
            "--file",
            csv(0).to_str().expect("utf-8"),
        ],
    );
    let full = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(leads(&db), before + ROWS);

    let (mut killed, mut finished) = (0, 0);
    for round in 1..=rounds() {
        let mode = if round % 2 == 0 {
            "valid-rows-only"
        } else {
            "all-or-nothing"
        };
        let file = csv(round);
        let before = leads(&db);
        let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
            .arg("--database")
            .arg(&db)
            .args(["import", "--mode", mode, "--file"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runs");
        std::thread::sleep(rng.below(full.mul_f64(1.2)));
        let done = child.try_wait().expect("waits").is_some_and(|s| s.success());
        kill9(&mut child);
        let context = format!("round {round} ({mode}, {})", if done { "finished" } else { "killed" });
        let after = leads(&db);
        if done {
            finished += 1;
            assert_eq!(after, before + ROWS, "{context}");
        } else {
            killed += 1;
            assert!(
                after == before || after == before + ROWS,
                "{context}: {before} -> {after}"
            );
        }
        assert_check_clean(&db, &context);
    }
    eprintln!("imports: {killed} killed, {finished} finished before the kill");
}

#[test]
fn serve_killed_under_concurrent_creates_keeps_every_acknowledged_create() {
    let mut rng = Rng::new("serve");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let out = crm(&db, &["demo", "--leads", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let login = support::demo_admin_login(&db);

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 1..=rounds() {
        let (mut server, addr) = support::serve(&db, &[]);
        let token = support::sign_in(&addr, &login);
        let acked_before = acked.lock().expect("lock").len();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (addr, token, acked) = (addr.clone(), token.clone(), acked.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        let body =
                            format!(r#"{{"first_name":"Crash","last_name":"r{round}w{w}n{i}","source":"website"}}"#);
                        match support::http(&addr, "POST", "/api/v1/leads", Some(&token), "application/json", &body) {
                            Ok((201, body)) => {
                                // A body cut off by the kill is no acknowledgement the client could use.
                                let v: serde_json::Value = match serde_json::from_str(&body) {
                                    Ok(v) => v,
                                    Err(_) => break,
                                };
                                let id = v["id"].as_str().expect("an id").to_owned();
                                acked.lock().expect("lock").push(id);
                            }
                            // Shed or busy: not acknowledged, try again.
                            Ok((429 | 503, _)) => {}
                            Ok((status, body)) => panic!("create answered {status}: {body}"),
                            // The server is gone.
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        // Let some creates through, then kill at a random moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.lock().expect("lock").len() < acked_before + 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(rng.below(Duration::from_millis(500)));
        kill9(&mut server);
        for w in writers {
            w.join().expect("a writer ran");
        }
        let context = format!("round {round}");
        assert_check_clean(&db, &context);
        let stored = lead_ids(&db);
        let acked = acked.lock().expect("lock");
        assert!(acked.len() > acked_before, "{context}: no create was acknowledged");
        let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "{context}: acknowledged creates lost: {lost:?}");
        eprintln!(
            "serve round {round}: {} creates acknowledged so far, none lost",
            acked.len()
        );
    }
}
