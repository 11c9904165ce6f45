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
