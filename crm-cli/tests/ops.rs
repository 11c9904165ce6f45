//! Operations: the `crm` binary on a closed stdout, read-only files, truncated audit logs, backups.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn crm(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `crm` with its stdout's reader gone before the first byte (`crm ... | head -c 0`).
fn crm_closed_stdout(db: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("waits")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo(dir: &Path, leads: &str) -> std::path::PathBuf {
    let db = dir.join("crm.db");
    let out = crm(&db, &["demo", "--leads", leads]);
    assert!(out.status.success(), "{}", stderr(&out));
    db
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo(dir.path(), "40");
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, "first_name,email\nZoe,zoe@example.com\n").expect("write csv");
    let csv = csv.to_str().expect("utf-8 path");
    for args in [
        &["export"][..],
        &["import", "--file", csv],
        &["check"],
        &["summary"],
        &["score"],
    ] {
        let out = crm_closed_stdout(&db, args);
        assert!(out.status.success(), "{args:?}: {:?} {}", out.status, stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

fn check_report(db: &Path) -> (Option<i32>, serde_json::Value) {
    let out = crm(db, &["check"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("JSON report: {}", stderr(&out)));
    (out.status.code(), report)
}

#[test]
fn check_reports_audit_entries_deleted_from_the_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo(dir.path(), "20");
    let (code, report) = check_report(&db);
    assert_eq!(
        (code, &report["audit_broken_at"]),
        (Some(0), &serde_json::Value::Null),
        "{report}"
    );
    let entries = report["audit_entries"].as_u64().expect("count");
    assert!(entries > 3);
    // Someone with the file deletes the last two entries: the rest still chains.
    let conn = rusqlite::Connection::open(&db).expect("opens");
    let deleted = conn
        .execute(
            "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) - 2 FROM audit_log)",
            [],
        )
        .expect("deletes");
    assert_eq!(deleted, 2);
    drop(conn);
    let (code, report) = check_report(&db);
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["audit_entries"].as_u64(), Some(entries - 2));
    assert_eq!(
        report["audit_broken_at"].as_u64(),
        Some(entries - 1),
        "the first missing entry"
    );
}
