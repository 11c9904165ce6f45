//! Aggregates through the service: keys, time buckets at an offset, every measure, nulls, the
//! actor's scope and field permissions, and the store against the reference fold.

use super::{Fixture, block};
use crate::entity::LEAD;
use crate::error::Error;
use crate::query::aggregate::{self, AggregateQuery, Group};
use crate::query::{Filter, StoreQuery};
use crate::service::{AggregateRequest, parse_offset};
use crate::store::Store;
use crate::value::{Money, Timestamp, Value};
use serde_json::json;

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse(rfc3339).unwrap()
}

fn day(s: &str) -> Value {
    Value::Date(crate::value::parse_date(s).unwrap())
}

fn money(cents: i64) -> Value {
    Value::Money(Money(cents))
}

fn request(params: &[(&str, &str)]) -> AggregateRequest {
    AggregateRequest::from_params(|k| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).unwrap()
}

/// Five leads around the end of May and of June 2025 (2025-06-02 and 2025-06-30 are Mondays).
fn five_leads<S: Store>(f: &Fixture<S>) {
    let leads = [
        (
            "2025-05-31T23:30:00Z",
            json!({"first_name": "A", "source": "website", "estimated_value": "100.00", "latitude": 10.5, "city": "Denver"}),
        ),
        (
            "2025-06-01T00:30:00Z",
            json!({"first_name": "B", "source": "website", "estimated_value": "200.01"}),
        ),
        (
            "2025-06-01T12:00:00Z",
            json!({"first_name": "C", "source": "referral", "status": "contacted", "latitude": -3.25, "city": "Boulder"}),
        ),
        (
            "2025-06-02T08:00:00Z",
            json!({"first_name": "D", "source": "referral", "estimated_value": "0.02"}),
        ),
        (
            "2025-06-30T23:00:00Z",
            json!({"first_name": "E", "source": "other", "estimated_value": "1.00"}),
        ),
    ];
    for (t, input) in leads {
        f.clock.set(at(t));
        f.lead(&f.admin, input);
    }
}

fn groups<S: Store>(f: &Fixture<S>, params: &[(&str, &str)]) -> Vec<Group> {
    block(f.svc.aggregate(&f.admin, "lead", &request(params)))
        .unwrap()
        .groups
}

/// Keys and counts only.
fn counts<S: Store>(f: &Fixture<S>, params: &[(&str, &str)]) -> Vec<(Vec<Value>, u64)> {
    groups(f, params).into_iter().map(|g| (g.keys, g.count)).collect()
}

pub fn aggregates_group_measure_and_keep_nulls_apart<S: Store>(store: S) {
    let f = Fixture::new(store);
    five_leads(&f);
    let g = groups(
        &f,
        &[
            ("by", "source,status"),
            ("count", ""),
            ("sum", "estimated_value"),
            ("avg", "estimated_value,latitude"),
            ("min", "estimated_value"),
            ("max", "estimated_value,created_at"),
        ],
    );
    let row = |source: &str, status: &str, count: u64, values: Vec<Value>| Group {
        keys: vec![source.into(), status.into()],
        count,
        values: [vec![Value::Int(count as i64)], values].concat(),
    };
    let null = Value::Null;
    assert_eq!(
        g,
        vec![
            row(
                "other",
                "new",
                1,
                vec![
                    money(100),
                    money(100),
                    null.clone(),
                    money(100),
                    money(100),
                    Value::Timestamp(at("2025-06-30T23:00:00Z"))
                ]
            ),
            // Every value null: the measures are null, the row still counts.
            row(
                "referral",
                "contacted",
                1,
                vec![
                    null.clone(),
                    null.clone(),
                    Value::Number(-3.25),
                    null.clone(),
                    null.clone(),
                    Value::Timestamp(at("2025-06-01T12:00:00Z"))
                ]
            ),
            row(
                "referral",
                "new",
                1,
                vec![
                    money(2),
                    money(2),
                    null.clone(),
                    money(2),
                    money(2),
                    Value::Timestamp(at("2025-06-02T08:00:00Z"))
                ]
            ),
            // 30001 cents over 2 is 15000.5: half-even to 15000. The null latitude is left out.
            row(
                "website",
                "new",
                2,
                vec![
                    money(30001),
                    money(15000),
                    Value::Number(10.5),
                    money(10000),
                    money(20001),
                    Value::Timestamp(at("2025-06-01T00:30:00Z"))
                ]
            ),
        ]
    );
    // A null key is a group of its own, first.
    assert_eq!(
        counts(&f, &[("by", "city")]),
        vec![
            (vec![Value::Null], 3),
            (vec!["Boulder".into()], 1),
            (vec!["Denver".into()], 1)
        ]
    );
    // No keys: one group, even of nothing.
    assert_eq!(counts(&f, &[("sum", "estimated_value")]), vec![(vec![], 5)]);
    assert_eq!(
        groups(&f, &[("sum", "estimated_value"), ("q", "source:google_ads")]),
        vec![Group {
            keys: vec![],
            count: 0,
            values: vec![Value::Null]
        }]
    );
    // Integer averages are decimals; the store agrees with the reference fold over its own rows.
    let q = AggregateQuery {
        filter: Filter::All,
        group_by: vec!["source".parse().unwrap(), "created_at:week".parse().unwrap()],
        measures: ["count", "score", "estimated_value", "latitude"]
            .iter()
            .flat_map(|m| match *m {
                "count" => vec![aggregate::Measure::Count],
                f => ["sum", "avg", "min", "max"]
                    .iter()
                    .map(|fold| aggregate::Measure::new(fold_of(fold), f))
                    .collect(),
            })
            .collect(),
        offset: parse_offset("+05:45").unwrap(),
    };
    let store = f.svc.store();
    let rows = block(store.query(f.tenant, &LEAD, &StoreQuery::by_id(Filter::All, 100))).unwrap();
    let expected = aggregate::fold(&q.plan(&LEAD).unwrap(), &rows).unwrap();
    assert_eq!(block(store.aggregate(f.tenant, &LEAD, &q)).unwrap(), expected);
}

fn fold_of(name: &str) -> aggregate::Fold {
    use aggregate::Fold::*;
    [Count, Sum, Avg, Min, Max]
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap()
}

pub fn aggregates_bucket_time_at_an_offset<S: Store>(store: S) {
    let f = Fixture::new(store);
    five_leads(&f);
    let month = |tz: &str| counts(&f, &[("by", "created_at:month"), ("tz", tz)]);
    assert_eq!(
        month("Z"),
        vec![(vec![day("2025-05-01")], 1), (vec![day("2025-06-01")], 4)]
    );
    // East of UTC the last of June's leads falls into July, and the first one into June.
    assert_eq!(
        month("+02:00"),
        vec![(vec![day("2025-06-01")], 4), (vec![day("2025-07-01")], 1)]
    );
    // West of UTC the second one is still in May.
    assert_eq!(
        month("-01:00"),
        vec![(vec![day("2025-05-01")], 2), (vec![day("2025-06-01")], 3)]
    );
    // ISO weeks start on Monday: Saturday the 31st and Sunday the 1st share a week.
    assert_eq!(
        counts(&f, &[("by", "created_at:week")]),
        vec![
            (vec![day("2025-05-26")], 3),
            (vec![day("2025-06-02")], 1),
            (vec![day("2025-06-30")], 1)
        ]
    );
    assert_eq!(
        counts(&f, &[("by", "created_at:week"), ("tz", "-09:00")]),
        vec![(vec![day("2025-05-26")], 4), (vec![day("2025-06-30")], 1)]
    );
    assert_eq!(
        counts(&f, &[("by", "created_at:day,source")]),
        vec![
            (vec![day("2025-05-31"), "website".into()], 1),
            (vec![day("2025-06-01"), "referral".into()], 1),
            (vec![day("2025-06-01"), "website".into()], 1),
            (vec![day("2025-06-02"), "referral".into()], 1),
            (vec![day("2025-06-30"), "other".into()], 1),
        ]
    );
    // Dates are calendar days already: no offset moves them.
    for (name, birth) in [
        ("P", Some("1990-05-31")),
        ("Q", Some("1990-06-03")),
        ("R", Some("1990-06-04")),
        ("S", None),
    ] {
        let mut input = json!({"first_name": name});
        if let Some(b) = birth {
            input["birth_date"] = json!(b);
        }
        block(f.svc.create(&f.admin, "contact", &super::obj(input))).unwrap();
    }
    let births = |params: &[(&str, &str)]| {
        let a = block(f.svc.aggregate(&f.admin, "contact", &request(params))).unwrap();
        a.groups.into_iter().map(|g| (g.keys, g.values)).collect::<Vec<_>>()
    };
    assert_eq!(
        births(&[("by", "birth_date:week"), ("tz", "-09:00"), ("max", "birth_date")]),
        vec![
            (vec![Value::Null], vec![Value::Null]),
            (vec![day("1990-05-28")], vec![day("1990-06-03")]),
            (vec![day("1990-06-04")], vec![day("1990-06-04")]),
        ]
    );
    assert_eq!(
        births(&[
            ("by", "birth_date:month"),
            ("tz", "+14:00"),
            ("count", ""),
            ("min", "birth_date")
        ]),
        vec![
            (vec![Value::Null], vec![Value::Int(1), Value::Null]),
            (vec![day("1990-05-01")], vec![Value::Int(1), day("1990-05-31")]),
            (vec![day("1990-06-01")], vec![Value::Int(2), day("1990-06-03")]),
        ]
    );
    for bad in [
        vec![("by", "created_at:month,updated_at:day")],
        vec![("by", "source,status,city")],
        vec![("by", "source:month")],
        vec![("sum", "status")],
        vec![("avg", "created_at")],
        vec![("by", "nope")],
        vec![("sum", "custom.budget")],
    ] {
        let err = block(f.svc.aggregate(&f.admin, "lead", &request(&bad))).unwrap_err();
        assert_eq!(err.code(), "invalid_query", "{bad:?}");
    }
}

pub fn aggregates_count_only_the_readers_scope<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.sales_a, json!({"first_name": "A", "estimated_value": "10"}));
    f.lead(&f.sales_a, json!({"first_name": "B"}));
    f.lead(&f.sales_b, json!({"first_name": "C", "estimated_value": "5"}));
    for actor in [&f.admin, &f.manager, &f.sales_a, &f.sales_b, &f.tech] {
        let total: u64 = match block(f.svc.aggregate(actor, "lead", &request(&[("by", "status")]))) {
            Ok(a) => a.groups.iter().map(|g| g.count).sum(),
            Err(e) => {
                assert_eq!(e.code(), "forbidden");
                continue;
            }
        };
        assert_eq!(total, f.ids(actor, "lead", "").len() as u64, "{:?}", actor.user_id);
    }
    let a = block(
        f.svc
            .aggregate(&f.sales_b, "lead", &request(&[("sum", "estimated_value")])),
    )
    .unwrap();
    assert_eq!(a.groups[0].values, vec![money(500)]);
    // The filter language narrows as in a list, `me` included.
    let mine = request(&[("q", "owner:me"), ("count", "")]);
    assert_eq!(
        block(f.svc.aggregate(&f.sales_a, "lead", &mine)).unwrap().groups[0].count,
        2
    );
    // A field the reader may not see can be neither a key nor a measure.
    block(
        f.svc
            .create(&f.admin, "contact", &super::obj(json!({"first_name": "Kim"}))),
    )
    .unwrap();
    for params in [vec![("sum", "lifetime_value")], vec![("by", "lifetime_value")]] {
        let err = block(f.svc.aggregate(&f.staff, "contact", &request(&params))).unwrap_err();
        assert_eq!(err, Error::forbidden("read", "contact", vec!["lifetime_value".into()]));
    }
    let ok = block(
        f.svc
            .aggregate(&f.admin, "contact", &request(&[("sum", "lifetime_value")])),
    )
    .unwrap();
    assert_eq!(ok.groups[0].count, 1);
}
