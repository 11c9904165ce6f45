//! The front desk commands as a user runs them: `crm import-members` on the shipped point-of-sale
//! sample (dry run, import, re-import) and a file with bad rows.

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
    assert!(crm(&db, &["demo", "--leads", "20"]).status.success());
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
    assert!(crm(&db, &["demo", "--leads", "20"]).status.success());
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
            "stella@summit-roofing.example",
            "import-members",
            csv.to_str().expect("utf-8"),
        ],
    );
    assert!(!staff.status.success());
    assert!(String::from_utf8_lossy(&staff.stderr).contains("forbidden"));
}
