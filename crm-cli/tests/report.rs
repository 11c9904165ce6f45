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

/// The text of every `<text>` element of an SVG file, which must parse as XML.
fn svg_texts(path: &std::path::Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    root.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

#[test]
fn svg_charts_carry_the_reports_numbers_as_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    assert!(crm(&db, &["demo", "--leads", "80"]).status.success());

    // The chart is written beside the table, which still prints.
    let funnel_svg = dir.path().join("funnel.svg");
    let out = crm(&db, &["report", "funnel", "--svg", funnel_svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("stage"));
    let funnel = json(&crm(&db, &["report", "funnel", "--json"]));
    let texts = svg_texts(&funnel_svg);
    // Each stage's label, then its reached count, in order.
    for step in funnel["steps"].as_array().unwrap() {
        let label = step["label"].as_str().unwrap();
        let at = texts
            .iter()
            .position(|t| t == label)
            .unwrap_or_else(|| panic!("{label}: {texts:?}"));
        assert_eq!(texts[at + 1], step["reached"].to_string(), "{texts:?}");
    }
    assert_eq!(
        texts[1],
        format!("{} leads, {} won", funnel["total"], funnel["won"]),
        "{texts:?}"
    );

    // With --json as well; two series for the forecast, each month's weighted and won value.
    let forecast_svg = dir.path().join("forecast.svg");
    let out = crm(
        &db,
        &["report", "forecast", "--json", "--svg", forecast_svg.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let forecast = json(&out);
    let texts = svg_texts(&forecast_svg);
    let grouped = |s: &str| {
        let (int, frac) = s.split_once('.').unwrap();
        let digits: Vec<char> = int.chars().collect();
        let mut out = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(*c);
        }
        format!("${out}.{frac}")
    };
    for m in forecast["months"].as_array().unwrap() {
        let month = m["month"].as_str().unwrap_or("no date");
        let at = texts
            .iter()
            .position(|t| t == month)
            .unwrap_or_else(|| panic!("{month}: {texts:?}"));
        assert_eq!(
            texts[at + 1],
            grouped(m["weighted_value"].as_str().unwrap()),
            "{texts:?}"
        );
        assert_eq!(texts[at + 2], grouped(m["won_value"].as_str().unwrap()), "{texts:?}");
    }

    // Every report draws a chart that parses; productivity's bars are the activities per user.
    for report in [
        "velocity",
        "breakdown",
        "productivity",
        "cohort",
        "geo",
        "lifetime_value",
    ] {
        let path = dir.path().join(format!("{report}.svg"));
        let out = crm(&db, &["report", report, "--svg", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{report}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(svg_texts(&path).len() > 1, "{report}");
    }
    let productivity = json(&crm(&db, &["report", "productivity", "--json"]));
    let texts = svg_texts(&dir.path().join("productivity.svg"));
    for u in productivity["users"].as_array().unwrap() {
        let user = u["user"].as_str().unwrap_or("(none)");
        let at = texts.iter().position(|t| t == user).unwrap();
        assert_eq!(texts[at + 1], u["activities"].to_string());
    }

    // A file that cannot be written is an error naming it; nothing is half-done silently.
    let bad = dir.path().join("no-such-dir").join("x.svg");
    let out = crm(&db, &["report", "funnel", "--svg", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x.svg"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
