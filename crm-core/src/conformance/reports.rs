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
use time::UtcOffset;

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
        by: Some(BreakdownBy::Owner),
        ..Default::default()
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

/// Team productivity, cohort retention, the geographic grid and the lifetime value distribution
/// answer the same on every store, count only what the reader may read, and take a filter.
pub fn activity_cohort_map_and_value_reports_keep_to_the_readers_scope<S: Store>(store: S) {
    use crate::service::{ConvertOptions, ReportEntity};
    let f = Fixture::new(store);
    let (a, b) = (&f.sales_a, &f.sales_b);
    const HOUR: i64 = 3_600_000_000;
    // Day 0 is Sunday 2025-06-01, 12:00 UTC.
    let l1 = f.lead(
        a,
        json!({"first_name": "A1", "estimated_value": "1000", "latitude": 45.52, "longitude": -122.68}),
    );
    let l2 = f.lead(
        a,
        json!({"first_name": "A2", "estimated_value": "2000", "latitude": 45.55, "longitude": -122.61}),
    );
    let l3 = f.lead(
        b,
        json!({"first_name": "B1", "estimated_value": "4000", "latitude": 47.61, "longitude": -122.33}),
    );
    let activity = |who: &Actor, kind: &str, lead: &Record| {
        block(f.svc.create(
            who,
            "activity",
            &obj(json!({"kind": kind, "lead_id": lead.id.to_string()})),
        ))
        .unwrap()
    };
    f.clock.advance_micros(2 * HOUR);
    activity(a, "call", &l1);
    f.clock.advance_micros(24 * HOUR);
    // Monday 2025-06-02, 14:00: a new week.
    activity(a, "email", &l1);
    activity(a, "call", &l2);
    activity(b, "visit", &l3);

    // Productivity: the sales user's own activities, per ISO week; response times 2 h and 26 h.
    let p = block(f.svc.productivity(a, None, UtcOffset::UTC)).unwrap();
    let me = a.user_id.map(|u| u.to_string());
    let weeks: Vec<_> = p
        .weeks
        .iter()
        .map(|w| {
            (
                w.user.clone(),
                w.week.clone().unwrap_or_default(),
                w.activities,
                w.by_kind.len(),
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [
            (me.clone(), "2025-05-26".to_owned(), 1, 1),
            (me.clone(), "2025-06-02".to_owned(), 2, 2)
        ]
    );
    assert_eq!(p.users.len(), 1);
    assert_eq!(
        (p.users[0].leads_touched, p.users[0].by_kind.get("call")),
        (2, Some(&2))
    );
    assert_eq!(
        (p.response.leads, p.response.average_hours, p.response.median_hours),
        (2, Some(Decimal::from(14)), Some(Decimal::from(14)))
    );
    let all = block(f.svc.productivity(&f.admin, None, UtcOffset::UTC)).unwrap();
    assert_eq!((all.activities, all.users.len()), (4, 2));
    assert_eq!(
        (
            all.response.leads,
            all.response.average_hours,
            all.response.median_hours
        ),
        (3, Some(Decimal::from(18)), Some(Decimal::from(26)))
    );
    let calls = block(f.svc.productivity(&f.admin, Some("kind:call"), UtcOffset::UTC)).unwrap();
    assert_eq!((calls.activities, calls.response.leads), (2, 2));
    // Weeks cut at UTC-14:00: Monday 14:00 UTC is still Monday 00:00 there, Sunday 12:00 is
    // Saturday: the same two weeks.
    let west = UtcOffset::from_hms(-14, 0, 0).unwrap();
    let p = block(f.svc.productivity(a, None, west)).unwrap();
    assert_eq!(p.weeks.len(), 2);

    // Cohorts: A1 is won on day 1 (June), B1 lost in July.
    let cur = block(f.svc.get(a, "lead", l1.id)).unwrap();
    let conv = block(f.svc.convert_lead(a, l1.id, cur.version, &ConvertOptions::default())).unwrap();
    f.clock.advance_micros(40 * 24 * HOUR);
    let cur = block(f.svc.get(b, "lead", l3.id)).unwrap();
    block(
        f.svc
            .update(b, "lead", l3.id, cur.version, &obj(json!({"status": "lost"}))),
    )
    .unwrap();
    let table = |who: &Actor, q: Option<&str>| {
        let c = block(f.svc.cohorts(who, q, UtcOffset::UTC)).unwrap();
        assert_eq!(c.as_of, "2025-07");
        c.cohorts
            .iter()
            .map(|c| {
                let months: Vec<_> = c.months.iter().map(|m| (m.month.clone(), m.won, m.active)).collect();
                (c.cohort.clone(), c.leads, months)
            })
            .collect::<Vec<_>>()
    };
    let s = String::from;
    assert_eq!(
        table(&f.admin, None),
        [(s("2025-06"), 3, vec![(s("2025-06"), 1, 2), (s("2025-07"), 1, 1)])]
    );
    assert_eq!(
        table(a, None),
        [(s("2025-06"), 2, vec![(s("2025-06"), 1, 1), (s("2025-07"), 1, 1)])]
    );
    assert_eq!(
        table(&f.admin, Some("first_name:B1")),
        [(s("2025-06"), 1, vec![(s("2025-06"), 0, 1), (s("2025-07"), 0, 0)])]
    );

    // The map: one-degree cells; the sales user's leads only.
    let grid = |who: &Actor, q: Option<&str>| {
        let g = block(f.svc.geo_grid(who, ReportEntity::Lead, q, Decimal::ONE)).unwrap();
        g.features
            .iter()
            .map(|c| {
                (
                    c.properties.row,
                    c.properties.column,
                    c.properties.records,
                    c.properties.value,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        grid(&f.admin, None),
        [(45, -123, 2, Some(Money(300_000))), (47, -123, 1, Some(Money(400_000)))]
    );
    assert_eq!(grid(b, None), [(47, -123, 1, Some(Money(400_000)))]);
    assert_eq!(
        grid(&f.admin, Some("first_name:A2")),
        [(45, -123, 1, Some(Money(200_000)))]
    );
    let json = serde_json::to_value(block(f.svc.geo_grid(a, ReportEntity::Lead, None, Decimal::ONE)).unwrap()).unwrap();
    assert_eq!(json["type"], "FeatureCollection");
    assert_eq!(
        json["features"][0]["geometry"]["coordinates"][0][0],
        json!([-123.0, 45.0])
    );

    // Lifetime value: the converted contact's won lead, another contact's accepted quote, and a
    // contact of the other team with nothing.
    let c2 = block(f.svc.create(a, "contact", &obj(json!({"first_name": "Quoted"})))).unwrap();
    block(f.svc.create(b, "contact", &obj(json!({"first_name": "Nobody"})))).unwrap();
    let quote = obj(json!({"valid_until": "2025-12-31", "contact_id": c2.id.to_string(),
        "quote_lines": [{"description": "Roof", "quantity": "1", "unit_price": "500.00"}]}));
    let mut qt = block(f.svc.create(a, "quote", &quote)).unwrap();
    for step in ["submit", "send", "accept"] {
        qt = block(f.svc.transition(a, "quote", qt.id, qt.version, step, &obj(json!({})))).unwrap();
    }
    assert_eq!(qt.str("status"), Some("accepted"));
    let ltv = block(f.svc.lifetime_value(&f.admin, ReportEntity::Contact, None, 10)).unwrap();
    assert_eq!(
        (ltv.customers, ltv.total, ltv.from_leads, ltv.from_quotes),
        (3, Money(150_000), Money(100_000), Money(50_000))
    );
    let p: Vec<_> = ltv.percentiles.iter().map(|p| (p.percentile, p.value.0)).collect();
    assert_eq!(&p[..3], [(25, 0), (50, 50_000), (75, 100_000)]);
    assert_eq!(ltv.histogram.iter().map(|b| b.customers).sum::<u64>(), 3);
    let mine = block(f.svc.lifetime_value(a, ReportEntity::Contact, None, 10)).unwrap();
    assert_eq!(
        (mine.customers, mine.total, mine.minimum),
        (2, Money(150_000), Some(Money(50_000)))
    );
    let one = block(
        f.svc
            .lifetime_value(&f.admin, ReportEntity::Contact, Some("first_name:Quoted"), 10),
    )
    .unwrap();
    assert_eq!((one.customers, one.total), (1, Money(50_000)));
    assert_eq!(conv.contact.id_of("source_lead_id"), Some(l1.id));

    // Through `report`: parameters a report does not take, an entity it does not count and
    // malformed values are refused, all at once.
    let params = [("cell", "0"), ("bins", "x"), ("entity", "planet")];
    let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let err = ReportRequest::from_params(get).unwrap_err();
    let fields: Vec<_> = err
        .field_errors()
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("entity", "invalid_option"),
            ("cell", "too_small"),
            ("bins", "invalid_format")
        ]
    );
    let req = ReportRequest {
        entity: Some(ReportEntity::Activity),
        bins: Some(5),
        ..Default::default()
    };
    let err = block(f.svc.report(a, ReportKind::Geo, &req)).unwrap_err();
    let fields: Vec<_> = err
        .field_errors()
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(fields, [("bins", "unknown_field"), ("entity", "invalid_option")]);
    let req = ReportRequest {
        entity: Some(ReportEntity::Company),
        ..Default::default()
    };
    let answer = block(f.svc.report(a, ReportKind::LifetimeValue, &req)).unwrap();
    assert_eq!(serde_json::to_value(&answer).unwrap()["entity"], "company");
}
