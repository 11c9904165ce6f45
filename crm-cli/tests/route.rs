//! `crm route --dry-run FILE.csv` on the demo: who the demo's routing rules would give each row's
//! lead to, with nothing written; an invalid row is reported with exit status 2.

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
fn route_dry_run_prints_who_gets_each_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let out = crm(&db, &["demo", "--leads", "40"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let csv = dir.path().join("new.csv");
    std::fs::write(
        &csv,
        "first_name,source,postal_code,estimated_value,project_type\n\
         Ann,referral,80211,9000,roof_repair\n\
         Bo,website,80302,52000,roof_replacement\n\
         Cy,website,80401,9000,roof_inspection\n\
         Dee,website,80305,9000,gutters\n",
    )
    .expect("csv");
    let out = crm(&db, &["route", "--dry-run", csv.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Vec<String>> = text(&out)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines[0], ["row", "owner", "team", "rule"]);
    assert_eq!(
        lines[1][1..],
        [
            "sasha@summit-roofing.example",
            "Denver Sales",
            "Referrals to Sasha (user)"
        ]
    );
    assert_eq!(lines[2][2..], ["Boulder Sales", "Big jobs to Boulder (fewest_open)"]);
    assert!(["bea@summit-roofing.example", "bo@summit-roofing.example"].contains(&lines[2][1].as_str()));
    assert_eq!(lines[3][2..], ["Crew A", "Inspections to the crew (round_robin)"]);
    assert_eq!(lines[4][2..], ["Boulder Sales", "Territories (territory)"]);
    assert_eq!(lines.len(), 5);

    // Nothing was written: the demo still has its 40 leads.
    let summary = crm(&db, &["summary", "--top", "1"]);
    assert!(
        text(&summary).starts_with("Summit Roofing Co.: 40 leads"),
        "{}",
        text(&summary)
    );

    // A row that is not a lead: its errors, exit status 2.
    std::fs::write(&csv, "first_name,source\n,referral\nEve,nonsense\n").expect("csv");
    let out = crm(&db, &["route", "--dry-run", csv.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("1\tinvalid\t-\tfirst_name:"), "{printed}");
    assert!(printed.contains("2\tinvalid\t-\tsource:"), "{printed}");
}
