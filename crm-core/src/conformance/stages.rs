//! Stage history: every write that moves a record between stages (a lead's status, a quote's
//! workflow state) leaves one stage change in its own change set, read with the record's scope.

use super::{Fixture, NOW, block, obj};
use crate::access::Actor;
use crate::query::{ListRequest, SortKey};
use crate::record::Record;
use crate::service::{ExportOptions, ImportMode, ImportOptions};
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use serde_json::json;

/// The stage changes `actor` may read for the query `q`, oldest first.
fn history<S: Store>(f: &Fixture<S>, actor: &Actor, q: &str) -> crate::error::Result<Vec<Record>> {
    let req = ListRequest {
        q: Some(q.into()),
        sort: vec![SortKey::asc("at"), SortKey::asc("id")],
        limit: Some(500),
        ..Default::default()
    };
    Ok(block(f.svc.list(actor, "stage_change", &req))?.items)
}

fn moves(rows: &[Record]) -> Vec<(Option<&str>, Option<&str>)> {
    rows.iter().map(|r| (r.str("from_state"), r.str("to_state"))).collect()
}

fn of(id: Id) -> String {
    format!("record_id:{id}")
}

pub fn stage_changes_are_recorded_with_their_write<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let set = |lead: &Record, patch: serde_json::Value| {
        block(f.svc.update(&f.sales_a, "lead", lead.id, lead.version, &obj(patch)))
    };
    f.clock.advance_micros(60_000_000);
    let lead = set(&lead, json!({"status": "contacted"})).unwrap();
    f.clock.advance_micros(60_000_000);
    let lead = set(&lead, json!({"status": "qualified", "notes": "keen"})).unwrap();
    // A write that leaves the stage alone records nothing.
    let lead = set(&lead, json!({"notes": "very keen"})).unwrap();
    let rows = history(&f, &f.admin, &of(lead.id)).unwrap();
    assert_eq!(
        moves(&rows),
        vec![
            (None, Some("new")),
            (Some("new"), Some("contacted")),
            (Some("contacted"), Some("qualified"))
        ]
    );
    let me = f.sales_a.user_id.unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.str("entity"), Some("lead"));
        assert_eq!(r.get("changed_by"), Some(&Value::Id(me)));
        assert_eq!(r.get("owner_id"), Some(&Value::Id(me)));
        let at = Timestamp(NOW.0 + 60_000_000 * i as i64);
        assert_eq!(r.get("at"), Some(&Value::Timestamp(at)), "row {i}");
    }

    // A write that fails (a stale version, a stage the pipeline lacks) leaves no stage change.
    let before = f.count("stage_change");
    let stale = block(f.svc.update(
        &f.sales_a,
        "lead",
        lead.id,
        lead.version - 1,
        &obj(json!({"status": "won"})),
    ));
    assert_eq!(stale.unwrap_err().code(), "conflict");
    assert!(set(&lead, json!({"status": "teleported"})).is_err());
    assert_eq!(f.count("stage_change"), before);

    // A workflow's transitions: a quote created as a draft, submitted and approved at once.
    let c = block(
        f.svc
            .create(&f.sales_a, "contact", &obj(json!({"first_name": "Carla"}))),
    )
    .unwrap();
    let line = json!({"description": "Move", "quantity": "1", "unit_price": "900"});
    let input = json!({"contact_id": c.id.to_string(), "valid_until": "2025-06-30", "quote_lines": [line]});
    let q = block(f.svc.create(&f.sales_a, "quote", &obj(input))).unwrap();
    let q = block(
        f.svc
            .transition(&f.sales_a, "quote", q.id, q.version, "submit", &obj(json!({}))),
    )
    .unwrap();
    assert_eq!(q.str("status"), Some("approved"));
    let rows = history(&f, &f.sales_a, &of(q.id)).unwrap();
    assert_eq!(
        moves(&rows),
        vec![(None, Some("draft")), (Some("draft"), Some("approved"))]
    );
    assert!(rows.iter().all(|r| r.str("entity") == Some("quote")));

    // A conversion wins the lead in its own change set.
    let conv = block(
        f.svc
            .convert_lead(&f.sales_a, lead.id, lead.version, &Default::default()),
    )
    .unwrap();
    let rows = history(&f, &f.sales_a, &of(lead.id)).unwrap();
    assert_eq!(moves(&rows[3..]), vec![(Some("qualified"), Some("won"))]);
    assert_eq!(conv.lead.str("status"), Some("won"));

    // Clients never write them.
    let row = &rows[0];
    for err in [
        block(f.svc.create(&f.admin, "stage_change", &obj(json!({"entity": "lead"})))).unwrap_err(),
        block(f.svc.update(
            &f.admin,
            "stage_change",
            row.id,
            row.version,
            &obj(json!({"to_state": "x"})),
        ))
        .unwrap_err(),
        block(f.svc.delete(&f.admin, "stage_change", row.id, row.version)).unwrap_err(),
    ] {
        assert_eq!(err.code(), "forbidden");
    }
}

pub fn imports_record_stage_changes_in_their_chunk<S: Store>(store: S) {
    let f = Fixture::new(store);
    let opts = ImportOptions {
        mode: ImportMode::ValidRowsOnly,
        upsert: true,
        ..Default::default()
    };
    let csv = "external_id,first_name,status\nA1,Ann,new\nA2,Bob,contacted\nA3,,new\n";
    let r = block(f.svc.import_csv(&f.manager, "lead", csv.as_bytes(), &opts)).unwrap();
    assert_eq!((r.created, r.invalid), (2, 1));
    let again = "external_id,first_name,status\nA1,Ann,qualified\nA2,Bob,contacted\n";
    let r = block(f.svc.import_csv(&f.manager, "lead", again.as_bytes(), &opts)).unwrap();
    assert_eq!((r.updated, r.unchanged), (1, 1));
    let ann = f.ids(&f.manager, "lead", "external_id:A1")[0];
    let bob = f.ids(&f.manager, "lead", "external_id:A2")[0];
    let rows = history(&f, &f.manager, &of(ann)).unwrap();
    assert_eq!(
        moves(&rows),
        vec![(None, Some("new")), (Some("new"), Some("qualified"))]
    );
    assert!(
        rows.iter()
            .all(|r| r.get("changed_by") == Some(&Value::Id(f.manager.user_id.unwrap())))
    );
    assert_eq!(
        moves(&history(&f, &f.manager, &of(bob)).unwrap()),
        vec![(None, Some("contacted"))]
    );
    // An upsert that hands a lead to another team hands its history over with it.
    assert!(history(&f, &f.sales_b, &of(ann)).unwrap().is_empty());
    let sue = f.sales_b.user_id.unwrap();
    let team_b = f.sales_b.team_id.unwrap();
    let handover = format!("external_id,owner_id,team_id\nA1,{sue},{team_b}\n");
    let r = block(f.svc.import_csv(&f.manager, "lead", handover.as_bytes(), &opts)).unwrap();
    assert_eq!(r.updated, 1, "{:?}", r.errors);
    assert_eq!(history(&f, &f.sales_b, &of(ann)).unwrap().len(), 2);
    // An all-or-nothing import that fails leaves none.
    let before = f.count("stage_change");
    let bad = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..opts
    };
    let csv = "external_id,first_name,status\nB1,Bea,new\nB2,Ben,nowhere\n";
    let r = block(f.svc.import_csv(&f.manager, "lead", csv.as_bytes(), &bad)).unwrap();
    assert!(!r.applied);
    assert_eq!(f.count("stage_change"), before);
}

pub fn stage_changes_are_read_with_their_records_scope<S: Store>(store: S) {
    let f = Fixture::new(store);
    let mine = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let theirs = f.lead(&f.sales_b, json!({"first_name": "Bob"}));
    let tech = f.tech.user_id.unwrap().to_string();
    let assigned = f.lead(&f.admin, json!({"first_name": "Cy", "owner_id": tech}));
    let all = "entity:lead";
    let seen = |actor: &Actor| -> Vec<String> {
        let mut ids: Vec<String> = history(&f, actor, all)
            .unwrap()
            .iter()
            .filter_map(|r| r.str("record_id").map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let sorted = |mut v: Vec<Id>| {
        v.sort();
        v.iter().map(Id::to_string).collect::<Vec<_>>()
    };
    assert_eq!(seen(&f.manager), sorted(vec![mine.id, theirs.id, assigned.id]));
    assert_eq!(seen(&f.sales_b), sorted(vec![theirs.id]));
    assert_eq!(seen(&f.tech), sorted(vec![assigned.id]));
    // The sales team reads its team's leads (the tech's lead is on no team: not theirs).
    assert_eq!(seen(&f.sales_a), sorted(vec![mine.id]));
    // Reading one by id follows the same scope.
    let row = &history(&f, &f.admin, &of(theirs.id)).unwrap()[0];
    assert!(block(f.svc.get(&f.sales_b, "stage_change", row.id)).is_ok());
    assert_eq!(
        block(f.svc.get(&f.sales_a, "stage_change", row.id)).unwrap_err().code(),
        "not_found"
    );
    // The front desk reads no stage of anything.
    assert_eq!(history(&f, &f.staff, all).unwrap_err().code(), "forbidden");
    // An export holds what the reader may read and export.
    let export = |actor: &Actor| {
        let mut out = Vec::new();
        let n = block(
            f.svc
                .export_csv(actor, "stage_change", &ExportOptions::default(), &mut out),
        )?;
        Ok::<_, crate::error::Error>((n, String::from_utf8(out).unwrap()))
    };
    let (n, csv) = export(&f.sales_b).unwrap();
    assert!(n == 1 && csv.contains(&theirs.id.to_string()), "{csv}");
    // The technician may export jobs, not leads: none of their lead's history.
    assert_eq!(export(&f.tech).unwrap().0, 0);
    assert_eq!(export(&f.staff).unwrap_err().code(), "forbidden");

    // A lead handed to another team takes its history along, in the same write.
    let sue = f.sales_b.user_id.unwrap().to_string();
    let team_b = f.sales_b.team_id.unwrap().to_string();
    let patch = obj(json!({"owner_id": sue, "team_id": team_b, "status": "contacted"}));
    block(f.svc.update(&f.admin, "lead", mine.id, mine.version, &patch)).unwrap();
    assert_eq!(seen(&f.sales_a), Vec::<String>::new());
    assert_eq!(seen(&f.sales_b), sorted(vec![mine.id, theirs.id]));
    assert_eq!(moves(&history(&f, &f.sales_b, &of(mine.id)).unwrap()).len(), 2);
    // A deleted lead leaves no history behind.
    let before = f.count("stage_change");
    block(f.svc.delete(&f.admin, "lead", assigned.id, assigned.version)).unwrap();
    assert_eq!(f.count("stage_change"), before - 1);
    assert_eq!(seen(&f.tech), Vec::<String>::new());
}
