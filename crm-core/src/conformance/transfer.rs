//! CSV import (dry runs, modes, upserts) and export.

use super::{Fixture, block, codes_of};
use crate::error::codes;
use crate::service::{ExportOptions, ImportMode, ImportOptions};
use crate::store::{AuditQuery, Store};
use crate::value::Value;
use serde_json::json;

pub(super) const CSV_ROWS: &str = "First Name,Email,Source,Estimated Value,Ignored Col,external_id
Ann,ann@example.com,Referral,\"12,000\",x,A1
Bob,not-an-email,carrier pigeon,abc,y,A2
,,,,z,A3
Cy,cy@example.com,website,900,w,A4
";

pub fn import_dry_run_reports_rows_and_fields<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let r = block(
        f.svc
            .import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &ImportOptions::default()),
    )
    .unwrap();
    assert_eq!((r.rows, r.valid, r.invalid, r.applied), (4, 2, 2, false));
    assert_eq!(r.ignored_columns, vec!["Ignored Col".to_string()]);
    assert_eq!(r.columns.get("First Name").map(String::as_str), Some("first_name"));
    let per_row: Vec<(u64, u64, Vec<(String, String)>)> = r
        .errors
        .iter()
        .map(|e| {
            (
                e.row,
                e.line,
                e.errors.iter().map(|x| (x.path.clone(), x.code.clone())).collect(),
            )
        })
        .collect();
    assert_eq!(
        per_row,
        vec![
            (
                2,
                3,
                vec![
                    ("email".into(), "invalid_email".into()),
                    ("estimated_value".into(), "invalid_money".into()),
                    ("source".into(), "invalid_option".into())
                ]
            ),
            (3, 4, vec![("first_name".into(), "required".into())]),
        ]
    );
    assert_eq!((f.count("lead"), f.writes_seen()), before, "a dry run writes nothing");
    // One row's report lists every failing field, a status that is no stage included.
    let csv = "first_name,email,estimated_value,status\nBob,nope,1.234,neww\n";
    let r = block(
        f.svc
            .import_csv(&f.manager, "lead", csv.as_bytes(), &ImportOptions::default()),
    )
    .unwrap();
    assert_eq!(
        r.errors[0]
            .errors
            .iter()
            .map(|x| (x.path.as_str(), x.code.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("email", codes::INVALID_EMAIL),
            ("estimated_value", codes::INVALID_MONEY),
            ("status", codes::INVALID_OPTION)
        ]
    );
    // A mapping names the columns that need it; the others still match by name, `""` ignores one,
    // and a field the mapping gives one column is not also matched from another.
    let csv = "E-mail,First Name,Email,Notes\nann@example.com,Ann,other@example.com,hi\n";
    let opts = ImportOptions {
        mapping: [("E-mail", "email"), ("Notes", "")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", csv.as_bytes(), &opts)).unwrap();
    assert_eq!((r.valid, r.invalid), (1, 0));
    assert_eq!(
        r.columns,
        [("E-mail", "email"), ("First Name", "first_name")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    );
    assert_eq!(r.ignored_columns, vec!["Email".to_string(), "Notes".to_string()]);
    assert_eq!((f.count("lead"), f.writes_seen()), before, "a dry run writes nothing");
    assert_eq!(
        block(
            f.svc
                .import_csv(&f.sales_a, "lead", CSV_ROWS.as_bytes(), &ImportOptions::default())
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

pub fn import_modes_and_upsert<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let all = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &all)).unwrap();
    assert_eq!((r.applied, r.invalid), (false, 2));
    assert_eq!(
        (f.count("lead"), f.writes_seen()),
        before,
        "all-or-nothing with errors writes nothing"
    );
    let some = ImportOptions {
        mode: ImportMode::ValidRowsOnly,
        upsert: true,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &some)).unwrap();
    assert_eq!((r.applied, r.created, r.invalid), (true, 2, 2));
    assert_eq!(f.count("lead"), before.0 + 2);
    let again = "external_id,first_name,estimated_value\nA1,Ann,13000\nA4,Cy,900\nA5,Dee,\nA5,Dup,\n";
    let r = block(f.svc.import_csv(&f.manager, "lead", again.as_bytes(), &some)).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged, r.invalid), (1, 1, 1, 1));
    assert_eq!(r.errors[0].errors[0].code, codes::DUPLICATE);
    let ann = f.ids(&f.manager, "lead", "external_id:A1");
    let ann = block(f.svc.get(&f.manager, "lead", ann[0])).unwrap();
    assert_eq!(
        (ann.version, ann.get("estimated_value").cloned()),
        (2, Some(Value::Money(crate::value::Money(1_300_000))))
    );
    let trail = block(f.svc.audit_trail(
        &f.manager,
        &AuditQuery {
            entity: Some("lead".into()),
            entity_id: Some(ann.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(
        trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["import", "import"]
    );
    let bad_map = ImportOptions {
        mapping: [("First Name".to_string(), "score".to_string())].into(),
        ..Default::default()
    };
    let err = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &bad_map)).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("mapping.First Name".into(), codes::UNKNOWN_FIELD.into())]
    );
}

/// A file longer than one chunk: a duplicate of a unique value (and of an upsert key) thousands of
/// rows after its first occurrence is found in every mode, whether the first occurrence was written
/// (imports that write; an all-or-nothing import with errors writes on and rolls back) or only
/// remembered (a dry run); the report counts errors by field and code.
pub fn imports_find_duplicates_across_chunks_in_every_mode<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let mut csv = String::from("first_name,email,external_id\nBad,not-an-email,E0\n");
    for i in 1..2_100 {
        let ext = if i == 2_050 { "E7".to_owned() } else { format!("E{i}") };
        csv.push_str(&format!("L{i},l{i}@example.com,{ext}\n"));
    }
    for (mode, upsert) in [
        (ImportMode::DryRun, false),
        (ImportMode::DryRun, true),
        (ImportMode::AllOrNothing, false),
        (ImportMode::ValidRowsOnly, false),
    ] {
        let opts = ImportOptions {
            mode,
            upsert,
            ..Default::default()
        };
        let r = block(f.svc.import_csv(&f.manager, "lead", csv.as_bytes(), &opts)).unwrap();
        let rows: Vec<(u64, &str, &str)> = r
            .errors
            .iter()
            .flat_map(|e| e.errors.iter().map(move |x| (e.row, x.path.as_str(), x.code.as_str())))
            .collect();
        assert_eq!(
            rows,
            vec![(1, "email", "invalid_email"), (2_051, "external_id", codes::DUPLICATE)],
            "{mode:?} upsert {upsert}"
        );
        assert_eq!((r.rows, r.valid, r.invalid, r.errors_omitted), (2_100, 2_098, 2, 0));
        let counts = json!({"email": {"invalid_email": 1}, "external_id": {"duplicate": 1}});
        assert_eq!(serde_json::to_value(&r.error_counts).unwrap(), counts);
        assert_eq!(r.applied, mode == ImportMode::ValidRowsOnly, "{mode:?}");
        if mode != ImportMode::ValidRowsOnly {
            assert_eq!((f.count("lead"), f.writes_seen()), before, "{mode:?} writes nothing");
        }
    }
    assert_eq!(f.count("lead"), before.0 + 2_098);
}

pub fn export_is_formula_safe_and_redacted<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(
        &f.sales_a,
        json!({"first_name": "=HYPERLINK(\"http://evil\")", "notes": "+1 call", "estimated_value": "12.50"}),
    );
    f.lead(&f.sales_b, json!({"first_name": "Other team"}));
    // Full-width and DDE forms, which some spreadsheets also run.
    f.lead(
        &f.sales_a,
        json!({"first_name": "＝1+1", "notes": "|calc", "estimated_value": "1.00"}),
    );
    let mut out = Vec::new();
    let n = block(f.svc.export_csv(
        &f.sales_a,
        "lead",
        &ExportOptions {
            fields: vec!["first_name".into(), "notes".into(), "estimated_value".into()],
            ..Default::default()
        },
        &mut out,
    ))
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(n, 2, "only the exporter's team");
    assert_eq!(
        text,
        "first_name,notes,estimated_value\n\"'=HYPERLINK(\"\"http://evil\"\")\",'+1 call,12.50\n'＝1+1,'|calc,1.00\n"
    );
    let mut raw = Vec::new();
    block(f.svc.export_csv(
        &f.sales_a,
        "lead",
        &ExportOptions {
            fields: vec!["notes".into()],
            raw: true,
            ..Default::default()
        },
        &mut raw,
    ))
    .unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), "notes\n+1 call\n|calc\n");
    let mut all = Vec::new();
    assert_eq!(
        block(
            f.svc
                .export_csv(&f.manager, "lead", &ExportOptions::default(), &mut all)
        )
        .unwrap(),
        3
    );
    let header = String::from_utf8(all).unwrap().lines().next().unwrap().to_owned();
    assert!(
        header.starts_with("id,first_name,") && header.contains(",score,"),
        "{header}"
    );
}
