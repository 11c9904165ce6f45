//! `crm report`: the reports as tables and JSON on the demo tenant, within the acting user's scope.

#![allow(clippy::unwrap_used)]

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

#[test]
fn reports_print_tables_and_json_within_the_users_scope() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    assert!(crm(&db, &["demo", "--leads", "120"]).status.success());
    let leads = crm(&db, &["export", "--entity", "lead", "--fields", "id"]);
    let total = String::from_utf8_lossy(&leads.stdout).lines().count() as u64 - 1;

    let table = crm(&db, &["report", "funnel"]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("stage"), "{text}");
    assert!(lines[1].starts_with("New "), "{text}");
    assert!(lines.last().unwrap().starts_with(&format!("{total} leads:")), "{text}");

    let all = json(&crm(&db, &["report", "funnel", "--json"]));
    assert_eq!(all["total"].as_u64(), Some(total));
    let steps = all["steps"].as_array().unwrap();
    let reached: Vec<u64> = steps.iter().map(|s| s["reached"].as_u64().unwrap()).collect();
    assert!(reached.windows(2).take(5).all(|w| w[0] >= w[1]), "{reached:?}");

    // A sales user counts their team's leads only.
    let users = crm(
        &db,
        &["export", "--entity", "user", "--q", "role:sales", "--fields", "email"],
    );
    let sales = String::from_utf8_lossy(&users.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let mine = json(&crm(&db, &["--as", &sales, "report", "funnel", "--json"]));
    let mine_total = mine["total"].as_u64().unwrap();
    assert!(mine_total < total, "{mine_total} of {total}");

    for report in ["velocity", "forecast"] {
        let o = crm(&db, &["report", report]);
        assert!(o.status.success(), "{report}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let by = json(&crm(&db, &["report", "breakdown", "--by", "source", "--json"]));
    let counted: u64 = by["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["leads"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, total);

    let unknown = crm(&db, &["report", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
    let bad_q = crm(&db, &["report", "funnel", "--q", "status:"]);
    assert!(!bad_q.status.success());
}

#[test]
fn productivity_cohort_geo_and_lifetime_value_print_and_refuse_bad_parameters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    assert!(crm(&db, &["demo", "--leads", "120"]).status.success());
    for (report, first) in [
        ("productivity", "user"),
        ("cohort", "cohort"),
        ("geo", "south"),
        ("lifetime_value", "from"),
    ] {
        let o = crm(&db, &["report", report]);
        assert!(o.status.success(), "{report}: {}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.trim_start().starts_with(first), "{report}: {text}");
    }
    let p = json(&crm(&db, &["report", "productivity", "--tz", "-05:00", "--json"]));
    assert!(p["activities"].as_u64().unwrap() > 0, "{p}");
    // The demo's leads lie around Denver: a one-degree grid has them in a few cells.
    let g = json(&crm(&db, &["report", "geo", "--cell", "1", "--json"]));
    assert_eq!(g["type"], "FeatureCollection");
    let counted: u64 = g["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["records"].as_u64().unwrap())
        .sum();
    assert_eq!((counted, g["records"].as_u64()), (120, Some(120)));
    let l = json(&crm(
        &db,
        &[
            "report",
            "lifetime_value",
            "--entity",
            "company",
            "--bins",
            "5",
            "--json",
        ],
    ));
    assert_eq!(l["entity"], "company");
    let bad = crm(&db, &["report", "geo", "--cell", "0", "--bins", "3"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("cell"), "{err}");
}
