//! The lead pipeline: conversion, pipeline summaries and scoring.

use super::{Fixture, NOW, block, codes_of, obj};
use crate::error::codes;
use crate::service::ConvertOptions;
use crate::store::Store;
use crate::value::Value;
use serde_json::json;

pub fn convert_lead_in_one_change_set<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "last_name": "Lee", "company_name": "Lee Farms", "email": "ann@lee.test", "city": "Salem"}));
    let (_, events_before) = f.writes_seen();
    let conv = block(
        f.svc
            .convert_lead(&f.sales_a, lead.id, 1, &ConvertOptions { create_company: true }),
    )
    .unwrap();
    assert_eq!(conv.lead.str("status"), Some("won"));
    assert_eq!(conv.lead.id_of("contact_id"), Some(conv.contact.id));
    assert_eq!(conv.contact.id_of("source_lead_id"), Some(lead.id));
    let company = conv.company.unwrap();
    assert_eq!(
        (company.str("name"), conv.contact.id_of("company_id")),
        (Some("Lee Farms"), Some(company.id))
    );
    assert_eq!(conv.contact.str("city"), Some("Salem"));
    let events = block(f.svc.events_since(&f.admin, events_before as u64, 100)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["company.created", "contact.created", "lead.converted"]
    );
    let err = block(f.svc.convert_lead(&f.sales_a, lead.id, 2, &ConvertOptions::default())).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("contact_id".into(), codes::INVALID_TRANSITION.into())]
    );
    let err = block(f.svc.convert_lead(&f.sales_a, lead.id, 1, &ConvertOptions::default())).unwrap_err();
    assert_eq!(err.code(), "conflict");
}

pub fn pipeline_summary_counts_by_stage<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.sales_a, json!({"first_name": "A", "estimated_value": "100"}));
    f.lead(
        &f.sales_a,
        json!({"first_name": "B", "estimated_value": "50.25", "status": "qualified"}),
    );
    f.lead(&f.sales_b, json!({"first_name": "C", "estimated_value": "1000"}));
    let s = block(f.svc.pipeline_summary(&f.manager)).unwrap();
    let new = s.iter().find(|x| x.key == "new").unwrap();
    assert_eq!((new.count, new.value), (2, Some(crate::value::Money(110_000))));
    assert_eq!(s[0].key, "new", "stages in pipeline order");
    let mine = block(f.svc.pipeline_summary(&f.sales_a)).unwrap();
    assert_eq!(
        mine.iter().map(|x| x.count).sum::<u64>(),
        2,
        "narrowed to the reader's scope"
    );
    assert_eq!(block(f.svc.pipeline_summary(&f.staff)).unwrap_err().code(), "forbidden");
}

pub fn activities_rescore_their_lead<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "referral"}));
    let before = lead.get("score").and_then(Value::as_i64).unwrap();
    for d in 1..=3 {
        block(f.svc.log_activity(&f.sales_a, &obj(json!({"kind": "meeting", "direction": "inbound", "occurred_at": NOW.plus_days(-d).to_rfc3339(), "lead_id": lead.id.to_string()})))).unwrap();
    }
    let after = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    assert_eq!(
        after.version, lead.version,
        "derived score writes do not bump the version"
    );
    let explained = block(f.svc.explain_score(&f.sales_a, lead.id, None)).unwrap();
    assert_eq!(
        after.get("score").and_then(Value::as_i64),
        Some(explained.score),
        "stored score = explained score"
    );
    assert!(
        explained.score >= before,
        "engagement does not lower the default model's score"
    );
    let report = block(f.svc.rescore_all(&f.manager)).unwrap();
    assert_eq!(
        (report.scanned, report.changed),
        (1, 0),
        "nothing stale right after writes"
    );
    assert_eq!(block(f.svc.rescore_all(&f.sales_a)).unwrap_err().code(), "forbidden");
}

pub fn decayed_score_explained_and_models_published<S: Store>(store: S) {
    let f = Fixture::new(store);
    // No fit points: only the call counts.
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "other"}));
    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-15).to_rfc3339(), "lead_id": lead.id.to_string()});
    block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    // The default model's inbound call is worth 10 points, decaying linearly to 0 over 30 days.
    let why = block(f.svc.explain_score(&f.sales_a, lead.id, None)).unwrap();
    let lines: Vec<(&str, &str, i64)> = why
        .contributions
        .iter()
        .map(|c| (c.group.as_str(), c.rule.as_str(), c.points))
        .collect();
    assert_eq!(
        lines,
        vec![("engagement", "inbound_call", 5)],
        "15 days into a 30-day decay: half the points"
    );
    assert_eq!((why.score, why.temperature.key()), (5, "cold"));
    let later = block(f.svc.explain_score(&f.sales_a, lead.id, Some(NOW.plus_days(12)))).unwrap();
    assert_eq!(later.score, 1, "27 days old: a tenth of the points");
    let gone = block(f.svc.explain_score(&f.sales_a, lead.id, Some(NOW.plus_days(16)))).unwrap();
    assert_eq!(
        (gone.score, gone.contributions.len()),
        (0, 0),
        "outside the 30-day timeframe"
    );
    let before = block(f.svc.explain_score(&f.sales_a, lead.id, Some(NOW.plus_days(-20)))).unwrap();
    assert_eq!(before.score, 0, "as of before the call happened");

    // A draft model (calls worth 40) is previewed, then published: every lead is re-scored with it.
    let mut m = crate::scoring::default_model();
    m.name = "Calls matter".into();
    let rule = m
        .groups
        .iter_mut()
        .flat_map(|g| g.rules.iter_mut())
        .find(|r| r.name == "inbound_call")
        .unwrap();
    rule.points = 40;
    let draft = block(f.svc.create(
        &f.manager,
        "scoring_model",
        &obj(json!({"name": "Calls matter", "definition": serde_json::to_value(&m).unwrap()})),
    ))
    .unwrap();
    assert_eq!(draft.str("status"), Some("draft"));
    assert_eq!(
        block(f.svc.explain_with(&f.manager, lead.id, &m, None)).unwrap().score,
        20
    );
    assert_eq!(
        block(f.svc.get(&f.manager, "lead", lead.id)).unwrap().get("score"),
        Some(&Value::Int(5)),
        "a draft changes nothing"
    );
    assert_eq!(
        block(f.svc.publish_model(&f.sales_a, draft.id, 1)).unwrap_err().code(),
        "forbidden"
    );
    let (published, report) = block(f.svc.publish_model(&f.manager, draft.id, 1)).unwrap();
    assert_eq!(
        (published.str("status"), published.get("model_version")),
        (Some("published"), Some(&Value::Int(1)))
    );
    assert_eq!((report.model_version, report.scanned, report.changed), (1, 1, 1));
    let rescored = block(f.svc.get(&f.manager, "lead", lead.id)).unwrap();
    assert_eq!(
        (rescored.get("score"), rescored.get("score_model_version")),
        (Some(&Value::Int(20)), Some(&Value::Int(1)))
    );
    let err = block(f.svc.publish_model(&f.manager, draft.id, 2)).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("status".into(), codes::INVALID_TRANSITION.into())]
    );
    // Publishing the next model retires the previous one.
    let next = block(f.svc.create(&f.manager, "scoring_model", &obj(json!({"name": "Default again", "definition": serde_json::to_value(crate::scoring::default_model()).unwrap()})))).unwrap();
    block(f.svc.publish_model(&f.manager, next.id, 1)).unwrap();
    assert_eq!(
        block(f.svc.get(&f.manager, "scoring_model", draft.id))
            .unwrap()
            .str("status"),
        Some("retired")
    );
    assert_eq!(
        block(f.svc.get(&f.manager, "lead", lead.id)).unwrap().get("score"),
        Some(&Value::Int(5))
    );
    // Back-testing against closed leads: a model rewarding calls separates won leads that were called.
    for (i, status) in ["won", "won", "lost", "lost"].into_iter().enumerate() {
        let l = f.lead(
            &f.manager,
            json!({"first_name": format!("Closed{i}"), "source": "other", "status": status}),
        );
        if status == "won" {
            let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-1).to_rfc3339(), "lead_id": l.id.to_string()});
            block(f.svc.log_activity(&f.manager, &obj(call))).unwrap();
        }
    }
    let bt = block(f.svc.backtest(&f.manager, Some(&m), None)).unwrap();
    assert_eq!((bt.evaluated, bt.won, bt.lost, bt.auc), (4, 2, 2, Some(1.0)));
    assert_eq!(bt.tiers.iter().map(|t| t.leads).sum::<u64>(), 4);
    assert_eq!(
        block(f.svc.backtest(&f.staff, Some(&m), None)).unwrap_err().code(),
        "forbidden"
    );
    // A model that does not compile is refused with paths into its definition.
    let bad = json!({"name": "Broken", "definition": {"name": "x", "total_cap": 100, "groups": [], "tiers": [{"name": "A", "min_score": 10, "temperature": "hot"}]}});
    let err = block(f.svc.create(&f.manager, "scoring_model", &obj(bad))).unwrap_err();
    assert!(
        err.field_errors().iter().all(|e| e.path.starts_with("definition")),
        "{err:?}"
    );
}
