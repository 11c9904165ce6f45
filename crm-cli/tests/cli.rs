//! The `crm` binary driven as a user drives it: a fresh database file, the demo, import, export,
//! scoring and the integrity check.

use std::process::{Command, Output};

fn crm(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_import_export_score_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");

    let out = crm(&db, &["demo", "--leads", "120"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = text(&out);
    assert!(
        summary.starts_with("Summit Roofing Co.: 120 leads, 60 contacts"),
        "{summary}"
    );
    assert!(
        summary.contains("Pipeline") && summary.contains("Top leads") && summary.contains(" score "),
        "{summary}"
    );

    // Running it again reuses the tenant instead of loading a second one.
    let again = crm(&db, &["summary", "--top", "2"]);
    assert!(text(&again).starts_with("Summit Roofing Co.: 120 leads"));

    // As a sales user: only the leads of their team.
    let sales = crm(
        &db,
        &[
            "--as",
            "sasha@summit-roofing.example",
            "export",
            "--fields",
            "first_name,team_id",
        ],
    );
    assert!(sales.status.success());
    let rows = text(&sales).lines().count() - 1;
    assert!(rows > 0 && rows < 120, "sales sees its team's leads only: {rows}");
    let staff = crm(&db, &["--as", "stella@summit-roofing.example", "export"]);
    assert!(!staff.status.success());
    assert!(String::from_utf8_lossy(&staff.stderr).contains("forbidden"));

    // An import with a bad row: dry run reports it with its line and field, exit code 2, writes nothing.
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        "first_name,email,source\nZoe,zoe@example.com,referral\nYan,not-an-email,referral\n",
    )
    .expect("write csv");
    let dry = crm(&db, &["import", "--file", csv.to_str().expect("utf-8 path")]);
    assert_eq!(dry.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON report");
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(report["errors"][0]["errors"][0]["path"], "email");
    assert_eq!(report["applied"], false);
    let valid = crm(
        &db,
        &[
            "import",
            "--file",
            csv.to_str().expect("utf-8 path"),
            "--mode",
            "valid-rows-only",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&valid.stdout).expect("JSON report");
    assert_eq!(
        (report["created"].as_u64(), report["applied"].as_bool()),
        (Some(1), Some(true))
    );

    let exported = crm(
        &db,
        &["export", "--q", "first_name:Zoe", "--fields", "first_name,email,score"],
    );
    assert!(
        text(&exported).starts_with("first_name,email,score\nZoe,zoe@example.com,"),
        "{}",
        text(&exported)
    );

    let score = crm(&db, &["score"]);
    assert!(score.status.success());
    let report: serde_json::Value = serde_json::from_slice(&score.stdout).expect("JSON report");
    assert_eq!(report["scanned"], 121);

    let check = crm(&db, &["check"]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).expect("JSON report");
    assert_eq!(report["issue_count"], 0, "{report}");
    assert!(report["audit_broken_at"].is_null());
    assert!(check.status.success());
}

#[test]
fn moving_demo_quotes_and_their_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("moving.db");
    let out = crm(&db, &["demo", "--vertical", "moving", "--quotes", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = text(&out);
    assert!(
        summary.starts_with("Swift Movers LLC:") && summary.contains("Quotes"),
        "{summary}"
    );
    for state in ["draft", "pending approval", "accepted", "declined", "superseded"] {
        assert!(summary.contains(state), "{state} in {summary}");
    }
    // The accepted quotes, then one of them as the customer reads it.
    let ids = crm(
        &db,
        &[
            "export",
            "--entity",
            "quote",
            "--q",
            "status:accepted",
            "--fields",
            "id",
        ],
    );
    assert!(ids.status.success(), "{}", String::from_utf8_lossy(&ids.stderr));
    let listed = text(&ids);
    let id = listed.lines().nth(1).expect("an accepted quote").trim().to_owned();
    let page = dir.path().join("quote.html");
    let doc = crm(&db, &["document", &id, "--out", page.to_str().unwrap()]);
    assert!(doc.status.success(), "{}", String::from_utf8_lossy(&doc.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("Swift Movers LLC") && html.contains("Total"));
    let none = crm(&db, &["document", "not-an-id"]);
    assert!(!none.status.success());
}
