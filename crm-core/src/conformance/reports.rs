//! Reports: the funnel, velocity, forecast and breakdown answer the same numbers on every store,
//! count only what the reader may read, and take a filter.

use super::{Fixture, block, obj};
use crate::access::Actor;
use crate::analytics::breakdown::BreakdownBy;
use crate::decimal::Decimal;
use crate::record::Record;
use crate::service::{ReportKind, ReportRequest};
use crate::store::Store;
use crate::value::{Money, Timestamp};
use serde_json::json;

const DAY: i64 = Timestamp::MICROS_PER_DAY;

pub fn reports_count_only_the_readers_scope<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = |who: &Actor, name: &str, source: &str, value: &str, close: Option<&str>| {
        let mut input = json!({"first_name": name, "source": source, "estimated_value": value});
        if let Some(c) = close {
            input["expected_close_date"] = json!(c);
        }
        f.lead(who, input)
    };
    let set = |who: &Actor, l: &Record, status: &str| {
        let cur = block(f.svc.get(who, "lead", l.id)).unwrap();
        block(
            f.svc
                .update(who, "lead", l.id, cur.version, &obj(json!({"status": status}))),
        )
        .unwrap()
    };
    let (a, b) = (&f.sales_a, &f.sales_b);
    // Created 2025-06-01 (day 0).
    let l1 = lead(a, "A1", "referral", "1000", Some("2025-07-10"));
    let l2 = lead(a, "A2", "website", "2000", Some("2025-07-20"));
    let l3 = lead(a, "A3", "referral", "500", None);
    let _l4 = lead(b, "B1", "website", "4000", Some("2025-08-05"));
    let l5 = lead(b, "B2", "referral", "300", None);
    f.clock.advance_micros(DAY);
    set(a, &l1, "contacted");
    set(a, &l2, "qualified");
    f.clock.advance_micros(DAY);
    set(a, &l3, "lost");
    set(b, &l5, "won");
    f.clock.advance_micros(DAY);
    set(a, &l2, "won");

    // The funnel: everyone's for the admin, only the sales user's own team's for them.
    let all = block(f.svc.funnel(&f.admin, None)).unwrap();
    let reached: Vec<_> = all.steps.iter().map(|s| (s.stage.as_str(), s.reached)).collect();
    assert_eq!(&reached[..3], [("new", 5), ("contacted", 3), ("qualified", 2)]);
    assert_eq!(reached.last(), Some(&("won", 2)));
    assert_eq!((all.total, all.won, all.lost, all.other), (5, 2, 1, 0));
    assert_eq!(all.won_value, Money(230_000));
    assert_eq!(all.win_rate_percent, Some(Decimal::new(667, 1)));
    let mine = block(f.svc.funnel(a, None)).unwrap();
    assert_eq!((mine.total, mine.won, mine.lost), (3, 1, 1));
    assert_eq!(mine.steps[1].reached, 2);
    assert_eq!(mine.steps[0].current, 0);
    let referral = block(f.svc.funnel(&f.admin, Some("source:referral"))).unwrap();
    assert_eq!((referral.total, referral.won, referral.lost), (3, 1, 1));

    // Velocity, from the stage history: the sales user's leads only.
    let v = block(f.svc.velocity(a, None)).unwrap();
    let new = v.stages.iter().find(|s| s.stage == "new").unwrap();
    // A1 and A2 left `new` after a day, A3 after two.
    assert_eq!(new.stays, 3);
    assert_eq!(
        (new.average_days, new.median_days),
        (Some(Decimal::new(133, 2)), Some(Decimal::ONE))
    );
    assert_eq!((v.won, v.lost, v.win_rate_percent), (1, 1, Some(Decimal::from(50))));
    assert_eq!(v.average_days_to_close, Some(Decimal::from(3)));
    // With a filter: the referral leads of everyone (A1, A3, B2; B2 was won on day 2).
    let v = block(f.svc.velocity(&f.admin, Some("source:referral"))).unwrap();
    let new = v.stages.iter().find(|s| s.stage == "new").unwrap();
    assert_eq!((new.stays, new.median_days), (3, Some(Decimal::from(2))));
    assert_eq!((v.won, v.lost, v.average_days_to_close), (1, 1, Some(Decimal::from(2))));

    // The forecast, with the tenant's probability for `contacted` (25 % instead of 20 %).
    let bad = set_probabilities(&f, json!({"won": 150, "new": "x"}));
    let paths: Vec<_> = bad
        .field_errors()
        .iter()
        .map(|e| (e.path.clone(), e.code.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("stage_probabilities.new".to_owned(), "invalid_format"),
            ("stage_probabilities.won".to_owned(), "too_large")
        ]
    );
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(f.svc.update(
        &f.admin,
        "organization",
        f.tenant,
        org.version,
        &obj(json!({"stage_probabilities": {"contacted": 25}})),
    ))
    .unwrap();
    let months = |who: &Actor| {
        let fc = block(f.svc.forecast(who, None)).unwrap();
        let rows: Vec<_> = fc
            .months
            .iter()
            .map(|m| {
                (
                    m.month.clone().unwrap_or_default(),
                    m.open_leads,
                    m.pipeline_value.0,
                    m.weighted_value.0,
                    m.won_leads,
                    m.won_value.0,
                )
            })
            .collect();
        (rows, fc.weighted_value.0)
    };
    let s = String::from;
    assert_eq!(
        months(&f.admin),
        (
            vec![
                (s("2025-06"), 0, 0, 0, 2, 230_000),
                (s("2025-07"), 1, 100_000, 25_000, 0, 0),
                (s("2025-08"), 1, 400_000, 40_000, 0, 0),
            ],
            65_000
        )
    );
    assert_eq!(
        months(a),
        (
            vec![
                (s("2025-06"), 0, 0, 0, 1, 200_000),
                (s("2025-07"), 1, 100_000, 25_000, 0, 0),
            ],
            25_000
        )
    );

    // Conversion and revenue by source; by owner, a sales user sees their own row only.
    let by_source = block(f.svc.breakdown(&f.admin, BreakdownBy::Source, None)).unwrap();
    let rows: Vec<_> = by_source
        .rows
        .iter()
        .map(|r| {
            (
                r.key.clone().unwrap_or_default(),
                r.leads,
                r.open,
                r.won,
                r.lost,
                r.won_value.0,
                r.open_value.0,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (s("referral"), 3, 1, 1, 1, 30_000, 100_000),
            (s("website"), 2, 1, 1, 0, 200_000, 400_000),
        ]
    );
    let req = ReportRequest {
        q: None,
        by: Some(BreakdownBy::Owner),
    };
    let by_owner = block(f.svc.report(b, ReportKind::Breakdown, &req)).unwrap();
    let json = serde_json::to_value(&by_owner).unwrap();
    assert_eq!(json["by"], "owner");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["rows"][0]["key"], json!(b.user_id.unwrap().to_string()));
    assert_eq!(
        (json["rows"][0]["leads"].as_u64(), json["rows"][0]["won_value"].as_str()),
        (Some(2), Some("300.00"))
    );
    // A filter the language refuses, and `by` on a report that takes none, change nothing.
    assert_eq!(
        block(f.svc.funnel(&f.admin, Some("status:"))).unwrap_err().code(),
        "invalid_query"
    );
    assert!(block(f.svc.report(b, ReportKind::Funnel, &req)).is_err());
}

fn set_probabilities<S: Store>(f: &Fixture<S>, p: serde_json::Value) -> crate::error::Error {
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(f.svc.update(
        &f.admin,
        "organization",
        f.tenant,
        org.version,
        &obj(json!({"stage_probabilities": p})),
    ))
    .unwrap_err()
}
