//! Random records and random (typed, bound-like) filters and sorts, and the property every SQL store
//! must keep: it returns exactly the rows, in exactly the order, that the in-memory evaluator gives.
//! Each backend's test file runs [`agrees_with_memory`] in its own `proptest!` (so each keeps its
//! regressions file next to it). Needs the including test crate to declare `mod common;`.
#![allow(dead_code, clippy::unwrap_used)]

use crate::common::{T0, date, id, sorted};
use crm_core::change::{ChangeSet, Write};
use crm_core::entity::LEAD;
use crm_core::query::aggregate::{self, AggregateQuery, Bucket, Fold, GroupBy, Measure};
use crm_core::query::{Compiled, Filter, Op, SortKey, StoreQuery};
use crm_core::record::Record;
use crm_core::store::Store;
use crm_core::value::{Id, Money, Timestamp, Value};
use pollster::block_on;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

static TENANT: AtomicU64 = AtomicU64::new(1);

const TEXTS: &[&str] = &[
    "", "a", "A", "ab", "Ab", "aB_", "b%", "%", "_", "\\", "a\\b", "é", "É", "ünï", "x\"y", "Berlin", "berlin", "ber",
    "[", ",",
];
const TAGS: &[&str] = &[
    "vip",
    "VIP",
    "storm",
    "a\"b",
    "x,y",
    "y",
    "",
    "\\",
    "[\"vip\"]",
    "x\",\"y",
    "a",
];
const NUMBERS: &[f64] = &[-1.5, 0.0, 0.5, 2.25, 1e10, -3.0, 7.0];

pub fn text() -> impl Strategy<Value = String> {
    prop::sample::select(TEXTS).prop_map(str::to_owned)
}

pub fn opt<T: std::fmt::Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.75, s)
}

pub fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(TAGS).prop_map(str::to_owned), 0..3)
}

pub fn money() -> impl Strategy<Value = Money> {
    (-2i64..5).prop_map(|n| Money(n * 100))
}

pub fn ts() -> impl Strategy<Value = Timestamp> {
    (0i64..4).prop_map(|n| Timestamp(T0 + n * 1000))
}

pub fn owner() -> impl Strategy<Value = Id> {
    (0u128..3).prop_map(|n| id(7 + n))
}

pub fn day() -> impl Strategy<Value = Value> {
    (1u8..4).prop_map(|m| date(2025, m, 1))
}

/// A lead's filterable values, declared and custom.
#[derive(Clone, Debug)]
pub struct Row {
    first_name: Option<String>,
    city: Option<String>,
    score: Option<i64>,
    value: Option<Money>,
    latitude: Option<f64>,
    scored_at: Option<Timestamp>,
    tags: Option<Vec<String>>,
    owner: Option<Id>,
    roof: Option<String>,
    budget: Option<Money>,
    count: Option<i64>,
    area: Option<f64>,
    due: Option<Value>,
    ok: Option<bool>,
    colors: Option<Vec<String>>,
    /// Spread over months (and around 1970) for time buckets.
    converted_at: Option<Timestamp>,
}

pub fn row() -> impl Strategy<Value = Row> {
    (
        (
            opt(text()),
            opt(text()),
            opt(-3i64..12),
            opt(money()),
            opt(prop::sample::select(NUMBERS)),
            opt(ts()),
            opt(tags()),
            opt(owner()),
        ),
        (
            opt(text()),
            opt(money()),
            opt(-3i64..12),
            opt(prop::sample::select(NUMBERS)),
            opt(day()),
            opt(any::<bool>()),
            opt(tags()),
            opt(spread_ts()),
        ),
    )
        .prop_map(
            |(
                (first_name, city, score, value, latitude, scored_at, tags, owner),
                (roof, budget, count, area, due, ok, colors, converted_at),
            )| Row {
                first_name,
                city,
                score,
                value,
                latitude,
                scored_at,
                tags,
                owner,
                roof,
                budget,
                count,
                area,
                due,
                ok,
                colors,
                converted_at,
            },
        )
}

/// Times 7 hours apart around the end of January 2025, or around the Unix epoch.
pub fn spread_ts() -> impl Strategy<Value = Timestamp> {
    const HOUR: i64 = 3_600_000_000;
    const JAN_31_2025: i64 = 1_738_281_600_000_000;
    prop_oneof![
        4 => (-200i64..200).prop_map(|n| Timestamp(JAN_31_2025 + n * 7 * HOUR + 13)),
        1 => (-40i64..40).prop_map(|n| Timestamp(n * 5 * HOUR - 7)),
    ]
}

pub fn to_record(tenant: Id, n: usize, r: &Row) -> Record {
    let mut rec = Record::empty(
        &LEAD,
        tenant,
        id(1_000_000 + n as u128 * 7919 % 1000),
        Timestamp(T0 + (n as i64 % 5)),
    );
    rec.version = 1 + (n as u64 % 3);
    let mut set = |f: &str, v: Option<Value>| {
        if let Some(v) = v {
            rec.set(f, v);
        }
    };
    set("first_name", r.first_name.clone().map(Value::Text));
    set("city", r.city.clone().map(Value::Text));
    set("score", r.score.map(Value::Int));
    set("estimated_value", r.value.map(Value::Money));
    set("latitude", r.latitude.map(Value::Number));
    set("scored_at", r.scored_at.map(Value::Timestamp));
    set("tags", r.tags.clone().map(Value::List));
    set("owner_id", r.owner.map(Value::Id));
    set("converted_at", r.converted_at.map(Value::Timestamp));
    let mut custom = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            rec.custom.insert(k.to_owned(), v);
        }
    };
    custom("roof", r.roof.clone().map(Value::Text));
    custom("budget", r.budget.map(Value::Money));
    custom("count", r.count.map(Value::Int));
    custom("area", r.area.map(Value::Number));
    custom("due", r.due.clone());
    custom("ok", r.ok.map(Value::Bool));
    custom("colors", r.colors.clone().map(Value::List));
    rec
}

pub fn cmp_op() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge])
}

pub fn any_op() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Contains,
        Op::StartsWith,
    ])
}

/// A value for `field` as binding would type it (sometimes NULL).
pub fn value_for(field: &'static str) -> BoxedStrategy<Value> {
    let v: BoxedStrategy<Value> = match field {
        "first_name" | "city" | "custom.roof" => text().prop_map(Value::Text).boxed(),
        "tags" | "custom.colors" => prop::sample::select(TAGS)
            .prop_map(|t| Value::Text(t.to_owned()))
            .boxed(),
        "score" | "custom.count" | "version" => (-3i64..12).prop_map(Value::Int).boxed(),
        "estimated_value" | "custom.budget" => money().prop_map(Value::Money).boxed(),
        "latitude" | "custom.area" => prop::sample::select(NUMBERS).prop_map(Value::Number).boxed(),
        "scored_at" | "created_at" => ts().prop_map(Value::Timestamp).boxed(),
        "owner_id" => owner().prop_map(Value::Id).boxed(),
        "id" => (0usize..30)
            .prop_map(|n| Value::Id(id(1_000_000 + n as u128 * 7919 % 1000)))
            .boxed(),
        "custom.due" => day().boxed(),
        "custom.ok" => any::<bool>().prop_map(Value::Bool).boxed(),
        _ => Just(Value::Null).boxed(),
    };
    prop_oneof![8 => v, 1 => Just(Value::Null)].boxed()
}

const FIELDS: &[&str] = &[
    "first_name",
    "city",
    "score",
    "estimated_value",
    "latitude",
    "scored_at",
    "tags",
    "owner_id",
    "id",
    "version",
    "created_at",
    "custom.roof",
    "custom.budget",
    "custom.count",
    "custom.area",
    "custom.due",
    "custom.ok",
    "custom.colors",
    "custom.absent",
];

pub fn leaf() -> impl Strategy<Value = Filter> {
    prop::sample::select(FIELDS).prop_flat_map(|field| {
        let list = matches!(field, "tags" | "custom.colors");
        let text = matches!(field, "first_name" | "city" | "custom.roof");
        let op: BoxedStrategy<Op> = if list {
            Just(Op::Contains).boxed()
        } else if text {
            any_op().boxed()
        } else {
            prop_oneof![8 => cmp_op(), 1 => any_op()].boxed()
        };
        prop_oneof![
            6 => (op, value_for(field)).prop_map(move |(op, v)| {
                // Contains / StartsWith always carry text once bound.
                let v = if matches!(op, Op::Contains | Op::StartsWith) && !matches!(v, Value::Text(_)) { Value::Text("1".into()) } else { v };
                Filter::Cmp { field: field.into(), op, value: v }
            }),
            // Binding refuses `in` on list fields.
            if list { 0 } else { 2 } => prop::collection::vec(value_for(field), 0..4).prop_map(move |values| Filter::In { field: field.into(), values }),
            2 => Just(Filter::IsNull { field: field.into() }),
        ]
    })
}

pub fn filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![20 => leaf(), 1 => Just(Filter::All)];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

const SORTABLE: &[&str] = &[
    "first_name",
    "city",
    "score",
    "estimated_value",
    "latitude",
    "scored_at",
    "owner_id",
    "version",
    "created_at",
    "custom.roof",
    "custom.budget",
    "custom.count",
    "custom.area",
    "custom.due",
    "custom.ok",
];

pub fn sort() -> impl Strategy<Value = Vec<SortKey>> {
    prop::collection::vec((prop::sample::select(SORTABLE), any::<bool>()), 0..3).prop_map(|keys| {
        let mut v: Vec<SortKey> = keys
            .into_iter()
            .map(|(f, desc)| SortKey { field: f.into(), desc })
            .collect();
        v.push(SortKey::asc("id"));
        v
    })
}

/// Writes `rows` as leads of a new tenant of `store`, then checks that the store's query (with `f`,
/// `sort` and `limit`) and count equal the in-memory evaluation.
pub fn agrees_with_memory<S: Store>(
    store: &S,
    rows: &[Row],
    f: &Filter,
    sort: &[SortKey],
    limit: u32,
) -> Result<(), TestCaseError> {
    let tenant = id(u128::from(TENANT.fetch_add(1, Ordering::SeqCst)) << 64);
    let mut recs: Vec<Record> = Vec::new();
    for (n, r) in rows.iter().enumerate() {
        let rec = to_record(tenant, n, r);
        if !recs.iter().any(|x| x.id == rec.id) {
            recs.push(rec);
        }
    }
    let mut cs = ChangeSet::new(tenant);
    cs.writes.extend(recs.iter().cloned().map(Write::Insert));
    block_on(store.apply(cs)).unwrap();

    let c = Compiled::compile(f, &LEAD).unwrap();
    let matching: Vec<Record> = recs.iter().filter(|r| c.matches(r)).cloned().collect();
    let mut expected = sorted(&matching, &LEAD, sort);
    expected.truncate(limit as usize);
    let got = block_on(store.query(
        tenant,
        &LEAD,
        &StoreQuery {
            filter: f.clone(),
            sort: sort.to_vec(),
            limit,
        },
    ))
    .unwrap();
    let got_ids: Vec<Id> = got.iter().map(|r| r.id).collect();
    prop_assert_eq!(got_ids, expected);
    prop_assert_eq!(block_on(store.count(tenant, &LEAD, f)).unwrap(), matching.len() as u64);
    for r in &got {
        prop_assert_eq!(Some(r), recs.iter().find(|x| x.id == r.id));
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "city",
    "score",
    "owner_id",
    "tags",
    "version",
    "estimated_value",
    "custom.roof",
    "custom.ok",
    "custom.due",
];
const MEASURED: &[&str] = &[
    "score",
    "estimated_value",
    "latitude",
    "version",
    "converted_at",
    "scored_at",
];

/// A random aggregate over `f`: up to two keys (maybe one a time bucket), one to five measures
/// (those the plan refuses, like the sum of a timestamp, are left out), at an offset within ±14 h.
pub fn aggregate_query(f: Filter) -> impl Strategy<Value = AggregateQuery> {
    let key = prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(|k| GroupBy::Field(k.into())),
        2 => (
            prop::sample::select(&["converted_at", "created_at", "scored_at"][..]),
            prop::sample::select(vec![Bucket::Day, Bucket::Week, Bucket::Month]),
        )
            .prop_map(|(k, b)| GroupBy::Bucket(k.into(), b)),
    ];
    let fold = prop::sample::select(vec![Fold::Count, Fold::Sum, Fold::Avg, Fold::Min, Fold::Max]);
    let measure = (fold, prop::sample::select(MEASURED)).prop_map(|(fold, field)| Measure::new(fold, field));
    (
        prop::collection::vec(key, 0..3),
        prop::collection::vec(measure, 1..6),
        (-48i32..57).prop_map(|q| time::UtcOffset::from_whole_seconds(q * 900).unwrap()),
    )
        .prop_map(move |(mut group_by, measures, offset)| {
            // At most one bucket.
            let mut bucketed = false;
            group_by.retain(|g| !matches!(g, GroupBy::Bucket(..)) || !std::mem::replace(&mut bucketed, true));
            let mut q = AggregateQuery {
                filter: f.clone(),
                group_by,
                measures: Vec::new(),
                offset,
            };
            for m in measures {
                q.measures.push(m);
                if q.plan(&LEAD).is_err() {
                    q.measures.pop();
                }
            }
            q
        })
}

/// Writes `rows` as leads of a new tenant of `store`, then checks that the store's aggregate equals
/// the core's reference fold over the rows the in-memory evaluator matches.
pub fn aggregates_agree_with_memory<S: Store>(
    store: &S,
    rows: &[Row],
    q: &AggregateQuery,
) -> Result<(), TestCaseError> {
    let tenant = id(u128::from(TENANT.fetch_add(1, Ordering::SeqCst)) << 64);
    let mut recs: Vec<Record> = Vec::new();
    for (n, r) in rows.iter().enumerate() {
        let rec = to_record(tenant, n, r);
        if !recs.iter().any(|x| x.id == rec.id) {
            recs.push(rec);
        }
    }
    let mut cs = ChangeSet::new(tenant);
    cs.writes.extend(recs.iter().cloned().map(Write::Insert));
    block_on(store.apply(cs)).unwrap();
    let c = Compiled::compile(&q.filter, &LEAD).unwrap();
    let expected = aggregate::fold(&q.plan(&LEAD).unwrap(), recs.iter().filter(|r| c.matches(r))).unwrap();
    let got = block_on(store.aggregate(tenant, &LEAD, q)).unwrap();
    prop_assert_eq!(got, expected);
    Ok(())
}
