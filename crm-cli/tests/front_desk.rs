//! The front desk commands as a user runs them on the esports demo: `crm import-members` on the
//! shipped point-of-sale sample (dry run, import, re-import) and a file with bad rows, `crm check-in`
//! and `crm membership-numbers`.

use serde_json::Value as Json;
use std::process::{Command, Output};

fn crm(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

fn json(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/pos_clients.csv");

#[test]
fn import_members_dry_run_import_and_reimport() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    assert!(
        crm(&db, &["demo", "--vertical", "esports", "--clients", "40"])
            .status
            .success()
    );
    let contacts = |db: &std::path::Path| {
        let o = crm(
            db,
            &[
                "export",
                "--entity",
                "contact",
                "--q",
                "external_id:100001",
                "--fields",
                "first_name,email",
            ],
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    let dry = crm(&db, &["import-members", SAMPLE, "--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let r = json(&dry);
    assert_eq!(
        (r["rows"].as_u64(), r["clients"]["created"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(
        (r["memberships"]["created"].as_u64(), r["applied"].as_bool()),
        (Some(7), Some(false))
    );
    assert_eq!(contacts(&db).lines().count(), 1, "the dry run wrote nothing");

    let done = crm(&db, &["import-members", SAMPLE, "--mode", "all-or-nothing"]);
    assert!(done.status.success());
    assert_eq!(json(&done)["applied"], true);
    assert_eq!(contacts(&db), "first_name,email\nAlex,alex.kim@example.com\n");

    let again = json(&crm(&db, &["import-members", SAMPLE, "--mode", "all-or-nothing"]));
    assert_eq!(
        (again["clients"]["unchanged"].as_u64(), again["applied"].as_bool()),
        (Some(8), Some(false))
    );
}

#[test]
fn import_members_bad_rows_exit_2_and_name_the_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    assert!(
        crm(&db, &["demo", "--vertical", "esports", "--clients", "40"])
            .status
            .success()
    );
    let csv = dir.path().join("pos.csv");
    std::fs::write(&csv, "Card,Name,E-mail,Plan,Start,End\n1,Ann Lee,ann@x.example,Monthly,2026-01-01,2026-01-31\n2,Bo,bad@,Monthly,2026-01-01,\n")
        .expect("write");
    let out = crm(
        &db,
        &[
            "import-members",
            csv.to_str().expect("utf-8"),
            "--mode",
            "all-or-nothing",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let r = json(&out);
    assert_eq!(
        (r["valid"].as_u64(), r["invalid"].as_u64(), r["applied"].as_bool()),
        (Some(1), Some(1), Some(false))
    );
    let mut paths: Vec<&str> = r["errors"][0]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["E-mail", "End"]);
    assert_eq!(r["errors"][0]["line"], 3);
    // Staff may not import.
    let staff = crm(
        &db,
        &[
            "--as",
            "stella@pixel-arena.example",
            "import-members",
            csv.to_str().expect("utf-8"),
        ],
    );
    assert!(!staff.status.success());
    assert!(String::from_utf8_lossy(&staff.stderr).contains("forbidden"));
}

#[test]
fn demo_summary_check_in_and_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let demo = crm(&db, &["demo", "--vertical", "esports", "--clients", "40"]);
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let summary = String::from_utf8_lossy(&demo.stdout).into_owned();
    assert!(
        summary.starts_with("Pixel Arena Esports Centre: 0 leads, 40 contacts"),
        "{summary}"
    );
    for status in [
        "none",
        "upcoming",
        "active",
        "expiring",
        "expired",
        "frozen",
        "cancelled",
    ] {
        assert!(
            summary.lines().any(|l| l.trim_start().starts_with(status)),
            "{status}: {summary}"
        );
    }
    assert!(!summary.contains("Pipeline"), "{summary}");

    // Card 500001 is an active member (client 0 of every ten); 500007 is upcoming (refused by default).
    let ok = crm(
        &db,
        &["--as", "stella@pixel-arena.example", "check-in", "--card", "500001"],
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let a = json(&ok);
    assert_eq!(
        (a["outcome"].as_str(), a["status"].as_str()),
        (Some("allowed"), Some("active"))
    );
    assert!(a["check_in_id"].is_string());
    let refused = crm(&db, &["check-in", "--card", "500007"]);
    assert_eq!(refused.status.code(), Some(3));
    assert_eq!(json(&refused)["outcome"], "refused");
    let by_id = crm(&db, &["check-in", "--contact", a["contact_id"].as_str().expect("id")]);
    assert_eq!(json(&by_id)["name"], a["name"]);
    let unknown = crm(&db, &["check-in", "--card", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not found"));
    let neither = crm(&db, &["check-in"]);
    assert!(!neither.status.success());

    let n = json(&crm(&db, &["membership-numbers"]));
    assert!(n["active_members"].as_u64().expect("active") > 0);
    assert_eq!(n["check_ins_by_hour"].as_array().expect("weekdays").len(), 7);
    let bad = crm(&db, &["membership-numbers", "--as-of", "March"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("as_of"));
}
