#![allow(clippy::unwrap_used)]

use super::*;
use crate::entity::{ACTIVITY, ACTIVITY_KINDS, LEAD, LEAD_SOURCES, SCORING_MODEL};
use crate::error::codes;
use crate::schema::FieldSpec;
use crate::validate::CustomSpecs;
use crate::value::{FieldType, Money, Timestamp, Value};
use proptest::prelude::*;
use serde_json::json;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = Timestamp::MICROS_PER_DAY;

fn now() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

fn lead(fields: &[(&str, Value)]) -> Record {
    let mut r = Record::empty(&LEAD, uuid::Uuid::nil(), uuid::Uuid::from_u128(1), now());
    r.set("status", "new");
    for (k, v) in fields {
        r.set(k, v.clone());
    }
    r
}

/// An activity `age` microseconds before [`now`].
fn act(kind: &str, direction: Option<&str>, outcome: Option<&str>, age: i64) -> Record {
    let mut r = Record::empty(&ACTIVITY, uuid::Uuid::nil(), uuid::Uuid::from_u128(2), now());
    r.set("kind", kind);
    r.set("direction", direction);
    r.set("outcome", outcome);
    r.set("occurred_at", Timestamp(now().0 - age));
    r.set("lead_id", uuid::Uuid::from_u128(1));
    r
}

fn model(j: serde_json::Value) -> ScoringModel {
    serde_json::from_value(j).unwrap()
}

fn compiled(j: serde_json::Value) -> CompiledModel {
    model(j).compile(&CustomSpecs::new()).unwrap()
}

fn tiers() -> serde_json::Value {
    json!([{"name": "A", "min_score": 70, "temperature": "hot"},
           {"name": "B", "min_score": 40, "temperature": "warm"},
           {"name": "C", "min_score": 0, "temperature": "cold"}])
}

/// A model with one engagement group holding `rule`.
fn engagement(rule: serde_json::Value) -> CompiledModel {
    compiled(
        json!({"groups": [{"name": "engagement", "kind": "engagement", "rules": [rule]}],
                    "tiers": tiers()}),
    )
}

fn entries(r: &ScoreResult) -> Vec<(&str, &str, u32, i64)> {
    r.contributions
        .iter()
        .map(|c| (c.group.as_str(), c.rule.as_str(), c.count, c.points))
        .collect()
}

/// The explanation adds up to the score, and the fast path agrees with it.
fn check(m: &CompiledModel, l: &Record, acts: &[Record], as_of: Timestamp) -> ScoreResult {
    let r = m.evaluate(l, acts, as_of);
    let sum: i64 = r.contributions.iter().map(|c| c.points).sum();
    assert_eq!(sum, r.score, "contributions add up: {r:?}");
    assert_eq!(m.score(l, acts, as_of), (r.score, r.temperature.key()));
    r
}

#[test]
fn decayed_points_with_explanation() {
    let m = engagement(json!({"name": "inbound_call", "points": 10, "kind": "call",
        "direction": "inbound", "within_days": 30, "decay_days": 30}));
    // 15 days into a 30-day decay: half of 10 points.
    let r = check(&m, &lead(&[]), &[act("call", Some("inbound"), None, 15 * DAY)], now());
    assert_eq!(r.score, 5);
    assert_eq!(entries(&r), vec![("engagement", "inbound_call", 1, 5)]);
    assert_eq!(r.contributions[0].kind, ContributionKind::Rule);
    assert_eq!((r.tier.as_str(), r.temperature.key(), r.reset), ("C", "cold", false));
    // Milli-points are summed per rule, then rounded: 9333 + 6666 = 15999 -> 16 (not 9 + 7).
    let acts = [
        act("call", Some("inbound"), None, 2 * DAY),
        act("call", Some("inbound"), None, 10 * DAY),
    ];
    let r = check(&m, &lead(&[]), &acts, now());
    assert_eq!(entries(&r), vec![("engagement", "inbound_call", 2, 16)]);
    // At 30 days it is worth nothing and gives no entry; outbound calls and emails do not match.
    let acts = [
        act("call", Some("inbound"), None, 30 * DAY),
        act("call", Some("outbound"), None, DAY),
        act("email", Some("inbound"), None, DAY),
    ];
    let r = check(&m, &lead(&[]), &acts, now());
    assert_eq!((r.score, r.contributions.len()), (0, 0));
}

#[test]
fn as_of_is_replayable() {
    let m = engagement(json!({"name": "call", "points": 10, "kind": "call", "decay_days": 30}));
    let acts = [act("call", None, None, 15 * DAY)];
    assert_eq!(m.score(&lead(&[]), &acts, now()).0, 5);
    // Ten days earlier the call was five days old; before it happened it does not count.
    assert_eq!(m.score(&lead(&[]), &acts, now().plus_days(-10)).0, 8);
    assert_eq!(m.score(&lead(&[]), &acts, now().plus_days(-16)).0, 0);
    assert_eq!(m.lookback_days(), Some(30));
}

#[test]
fn limit_counts_the_most_recent_first() {
    let m = engagement(json!({"name": "call", "points": 10, "kind": "call", "limit": 3,
        "decay_days": 100}));
    // Newest: 10, 20, 30 days -> 9 + 8 + 7 = 24; the 40- and 50-day-old ones do not count.
    let mut acts: Vec<Record> = [40, 10, 50, 30, 20]
        .iter()
        .map(|d| act("call", None, None, d * DAY))
        .collect();
    let r = check(&m, &lead(&[]), &acts, now());
    assert_eq!(entries(&r), vec![("engagement", "call", 3, 24)]);
    acts.sort_by_key(|a| std::cmp::Reverse(a.get("occurred_at").and_then(Value::as_timestamp)));
    assert_eq!(check(&m, &lead(&[]), &acts, now()), r);
    acts.reverse();
    assert_eq!(check(&m, &lead(&[]), &acts, now()), r);
    // Without decay every occurrence is worth the same.
    let m = engagement(json!({"name": "call", "points": 10, "kind": "call", "limit": 2}));
    let r = check(&m, &lead(&[]), &acts, now());
    assert_eq!(entries(&r), vec![("engagement", "call", 2, 20)]);
    assert_eq!(m.lookback_days(), None);
}

#[test]
fn limit_with_ties_and_any_order() {
    for limit in [2, 20] {
        let m = engagement(json!({"name": "n", "points": 4, "limit": limit, "decay_days": 100}));
        // One at 10 days (3.6), then many tied at 50 days (2 each), in the worst order.
        let mut acts: Vec<Record> = (0..25).map(|_| act("note", None, None, 50 * DAY)).collect();
        acts.push(act("note", None, None, 10 * DAY));
        let r = check(&m, &lead(&[]), &acts, now());
        let want = if limit == 2 { 6 } else { 42 };
        assert_eq!(entries(&r), vec![("engagement", "n", limit as u32, want)]);
        acts.reverse();
        assert_eq!(check(&m, &lead(&[]), &acts, now()), r);
    }
}

#[test]
fn timeframe_excludes_old_and_future_activities() {
    let m = engagement(json!({"name": "any", "points": 1, "within_days": 30}));
    let acts = [
        act("note", None, None, 0),
        act("sms", None, None, 30 * DAY),
        act("visit", None, None, 30 * DAY + 1),
        act("call", None, None, -HOUR),
        act("call", None, None, 400 * DAY),
    ];
    let r = check(&m, &lead(&[]), &acts, now());
    assert_eq!(entries(&r), vec![("engagement", "any", 2, 2)]);
    // No occurred_at (or a hidden one): never counts.
    let mut a = act("call", None, None, DAY);
    a.set("occurred_at", Value::Null);
    let mut b = act("call", None, None, DAY);
    b.hidden |= 1 << ACTIVITY.index_of("occurred_at").unwrap();
    assert_eq!(m.score(&lead(&[]), &[a, b], now()).0, 0);
}

#[test]
fn min_count_outcome_and_activity_conditions() {
    let m = compiled(json!({"groups": [{"name": "e", "kind": "engagement", "rules": [
        {"name": "responsive", "points": 5, "direction": "inbound", "min_count": 3, "limit": 1,
         "within_days": 14},
        {"name": "no_answer", "points": -2, "kind": ["call", "sms"], "outcome": "no_answer"},
        {"name": "long_call", "points": 7, "kind": "call",
         "condition": {"cmp": {"field": "duration_minutes", "op": "ge", "value": "10"}}}
    ]}], "tiers": tiers()}));
    let mut long = act("call", Some("outbound"), Some("connected"), DAY);
    long.set("duration_minutes", 25i64);
    let two_inbound = [
        act("email", Some("inbound"), None, DAY),
        act("sms", Some("inbound"), Some("No_Answer"), 2 * DAY),
        act("call", Some("outbound"), Some("no_answer"), 3 * DAY),
        long,
    ];
    let r = check(&m, &lead(&[]), &two_inbound, now());
    assert_eq!(entries(&r), vec![("e", "no_answer", 2, -4), ("e", "long_call", 1, 7)]);
    let mut three = two_inbound.to_vec();
    three.push(act("visit", Some("inbound"), None, 13 * DAY));
    let r = check(&m, &lead(&[]), &three, now());
    assert_eq!(
        entries(&r),
        vec![
            ("e", "responsive", 1, 5),
            ("e", "no_answer", 2, -4),
            ("e", "long_call", 1, 7)
        ]
    );
}

#[test]
fn group_caps_floors_and_total_cap_are_explained() {
    let m = compiled(json!({"total_cap": 60, "groups": [
        {"name": "fit", "kind": "fit", "cap": 30, "rules": [
            {"name": "referral", "points": 25, "condition": {"cmp": {"field": "source", "op": "eq", "value": "referral"}}},
            {"name": "big", "points": 20, "condition": {"cmp": {"field": "estimated_value", "op": "ge", "value": "15000"}}}]},
        {"name": "bonus", "kind": "fit", "rules": [
            {"name": "urgent", "points": 40, "condition": {"cmp": {"field": "priority", "op": "eq", "value": "urgent"}}}]},
        {"name": "engagement", "kind": "engagement", "floor": -5, "rules": [
            {"name": "no_answer", "points": -3, "outcome": "no_answer"}]}
    ], "tiers": [{"name": "top", "min_score": 50, "temperature": "hot"},
                 {"name": "rest", "min_score": 0, "temperature": "cold"}]}));
    let big = lead(&[
        ("source", "referral".into()),
        ("estimated_value", Money(1_500_000).into()),
        ("priority", "urgent".into()),
    ]);
    let misses: Vec<Record> = (1..=3)
        .map(|d| act("call", Some("outbound"), Some("no_answer"), d * DAY))
        .collect();
    let r = check(&m, &big, &misses, now());
    assert_eq!(
        entries(&r),
        vec![
            ("fit", "referral", 1, 25),
            ("fit", "big", 1, 20),
            ("fit", "cap", 0, -15),
            ("bonus", "urgent", 1, 40),
            ("engagement", "no_answer", 3, -9),
            ("engagement", "floor", 0, 4),
            ("total", "cap", 0, -5),
        ]
    );
    assert_eq!((r.score, r.tier.as_str()), (60, "top"));
    // Negative totals stop at 0.
    let r = check(&m, &lead(&[]), &misses, now());
    assert_eq!(
        entries(&r),
        vec![
            ("engagement", "no_answer", 3, -9),
            ("engagement", "floor", 0, 4),
            ("total", "floor", 0, 5),
        ]
    );
    assert_eq!(r.score, 0);
    assert_eq!(r.contributions.last().unwrap().kind, ContributionKind::Floor);
}

#[test]
fn tiers_pick_the_first_reached() {
    let m = compiled(json!({"groups": [{"name": "g", "kind": "engagement", "rules": [
        {"name": "n", "points": 1}]}], "tiers": tiers()}));
    for (n, tier, temp) in [
        (0, "C", "cold"),
        (39, "C", "cold"),
        (40, "B", "warm"),
        (69, "B", "warm"),
        (70, "A", "hot"),
        (150, "A", "hot"),
    ] {
        let acts: Vec<Record> = (0..n).map(|_| act("note", None, None, HOUR)).collect();
        let r = check(&m, &lead(&[]), &acts, now());
        assert_eq!(
            (r.score, r.tier.as_str(), r.temperature.key()),
            (n.min(100), tier, temp)
        );
    }
}

#[test]
fn reset_when_lost() {
    let m = default_model().compile(&CustomSpecs::new()).unwrap();
    let l = lead(&[
        ("source", "referral".into()),
        ("estimated_value", Money(5_000_000).into()),
        ("status", "lost".into()),
    ]);
    let r = check(&m, &l, &[act("meeting", None, None, DAY)], now());
    assert_eq!(
        (r.score, r.tier.as_str(), r.temperature.key(), r.reset),
        (0, "C", "cold", true)
    );
    assert_eq!(entries(&r), vec![("reset", "lost", 1, 0)]);
    assert_eq!(r.contributions[0].kind, ContributionKind::Reset);
}

fn errors(j: serde_json::Value) -> Vec<(String, String)> {
    match model(j).compile(&CustomSpecs::new()) {
        Ok(_) => vec![],
        Err(e) => e.into_iter().map(|e| (e.path, e.code)).collect(),
    }
}

fn e(path: &str, code: &str) -> (String, String) {
    (path.to_owned(), code.to_owned())
}

#[test]
fn compile_reports_every_error_with_its_path() {
    let got = errors(json!({"total_cap": 101, "groups": [
        {"name": "fit", "kind": "fit", "cap": -1, "floor": 3, "rules": [
            {"name": "a", "points": 5, "condition": {"cmp": {"field": "source", "op": "eq", "value": "referral"}}},
            {"name": "a", "points": 5, "condition": {"cmp": {"field": "roof_colour", "op": "eq", "value": "red"}}},
            {"name": "", "points": 5001},
            {"name": "score", "points": 1, "limit": 2, "condition": {"cmp": {"field": "score", "op": "ge", "value": "50"}}},
            {"name": "custom", "points": 1, "condition": {"cmp": {"field": "custom.roof_age", "op": "ge", "value": "10"}}},
            {"name": "money", "points": 1, "condition": {"cmp": {"field": "estimated_value", "op": "ge", "value": "lots"}}}]},
        {"name": "fit", "kind": "engagement", "rules": [
            {"name": "x", "points": 1, "kind": ["call", "fax"], "direction": "sideways", "limit": 0,
             "min_count": 0, "within_days": 0, "decay_days": -3, "outcome": ""},
            {"name": "y", "points": 1, "condition": {"cmp": {"field": "source", "op": "eq", "value": "web"}}}]},
        {"name": "empty", "kind": "fit", "rules": []}
    ], "tiers": [
        {"name": "B", "min_score": 40, "temperature": "tepid"},
        {"name": "A", "min_score": 70, "temperature": "hot"},
        {"name": "B", "min_score": 120, "temperature": "cold"}],
    "reset_when": [{"name": "lost", "condition": {"cmp": {"field": "stage", "op": "eq", "value": "lost"}}}]}));
    assert_eq!(
        got,
        vec![
            e("total_cap", codes::TOO_LARGE),
            e("groups[0].cap", codes::TOO_SMALL),
            e("groups[0].floor", codes::TOO_LARGE),
            e("groups[0].rules[1].name", codes::DUPLICATE),
            e("groups[0].rules[1].condition", codes::UNKNOWN_FIELD),
            e("groups[0].rules[2].name", codes::REQUIRED),
            e("groups[0].rules[2].points", codes::TOO_LARGE),
            e("groups[0].rules[2].condition", codes::REQUIRED),
            e("groups[0].rules[3].limit", codes::INVALID_FORMAT),
            e("groups[0].rules[3].condition", codes::INVALID_FORMAT),
            e("groups[0].rules[4].condition", codes::UNKNOWN_FIELD),
            e("groups[0].rules[5].condition", codes::INVALID_FORMAT),
            e("groups[1].name", codes::DUPLICATE),
            e("groups[1].rules[0].kind", codes::INVALID_OPTION),
            e("groups[1].rules[0].direction", codes::INVALID_OPTION),
            e("groups[1].rules[0].outcome", codes::REQUIRED),
            e("groups[1].rules[0].limit", codes::TOO_SMALL),
            e("groups[1].rules[0].min_count", codes::TOO_SMALL),
            e("groups[1].rules[0].within_days", codes::TOO_SMALL),
            e("groups[1].rules[0].decay_days", codes::TOO_SMALL),
            // An engagement rule's condition is on activity fields.
            e("groups[1].rules[1].condition", codes::UNKNOWN_FIELD),
            e("groups[2].rules", codes::REQUIRED),
            e("tiers[0].temperature", codes::INVALID_OPTION),
            e("tiers[1].min_score", codes::INVALID_FORMAT),
            e("tiers[2].name", codes::DUPLICATE),
            e("tiers[2].min_score", codes::TOO_LARGE),
            e("tiers", codes::REQUIRED),
            e("reset_when[0].condition", codes::UNKNOWN_FIELD),
        ]
    );
    assert_eq!(
        errors(json!({"groups": [], "tiers": []})),
        vec![e("groups", codes::REQUIRED), e("tiers", codes::REQUIRED)]
    );
}

#[test]
fn conditions_bind_like_queries() {
    // Canonical names (`owner` -> `owner_id`), money parsed from text, enum keys normalised.
    let m = compiled(json!({"groups": [{"name": "fit", "kind": "fit", "rules": [
        {"name": "big", "points": 10, "condition": {"cmp": {"field": "estimated_value", "op": "ge", "value": "15000"}}},
        {"name": "assigned", "points": 1, "condition": {"not": {"is_null": {"field": "owner"}}}},
        {"name": "canvass", "points": 2, "condition": {"in": {"field": "source", "values": ["Storm Canvass", "door knock"]}}},
        {"name": "storm", "points": 4, "condition": {"search": "hail"}}
    ]}], "tiers": tiers()}));
    let l = lead(&[
        ("estimated_value", Money(1_500_000).into()),
        ("owner_id", uuid::Uuid::from_u128(9).into()),
        ("source", "storm_canvass".into()),
        ("company_name", "Hail Busters".into()),
    ]);
    assert_eq!(check(&m, &l, &[], now()).score, 17);
    let l = lead(&[("estimated_value", Money(1_499_999).into())]);
    assert_eq!(check(&m, &l, &[], now()).score, 0);
}

#[test]
fn custom_fields_need_the_tenants_definitions() {
    let m = model(json!({"groups": [{"name": "fit", "kind": "fit", "rules": [
        {"name": "old_roof", "points": 10, "condition": {"cmp": {"field": "custom.roof_age", "op": "ge", "value": "20"}}}
    ]}], "tiers": tiers()}));
    let unknown = m.compile(&CustomSpecs::new()).unwrap_err();
    assert_eq!(unknown[0].path, "groups[0].rules[0].condition");
    assert_eq!(unknown[0].code, codes::UNKNOWN_FIELD);
    // The record check does not know the tenant's fields and accepts them.
    assert_eq!(m.check(), vec![]);
    let mut custom = CustomSpecs::new();
    custom.insert("roof_age".into(), FieldSpec::new(FieldType::Number));
    let c = m.compile(&custom).unwrap();
    let mut l = lead(&[]);
    l.custom.insert("roof_age".into(), Value::Number(22.0));
    assert_eq!(c.score(&l, &[], now()).0, 10);
    l.custom.insert("roof_age".into(), Value::Number(3.0));
    assert_eq!(c.score(&l, &[], now()).0, 0);
}

#[test]
fn model_record_check() {
    let rec = |def: serde_json::Value| {
        let mut r = Record::empty(&SCORING_MODEL, uuid::Uuid::nil(), uuid::Uuid::nil(), now());
        r.set("name", "m");
        r.set("definition", Value::Json(def));
        let mut errs = Vec::new();
        check_model_record(&r, &mut errs);
        errs.into_iter().map(|e| (e.path, e.code)).collect::<Vec<_>>()
    };
    assert_eq!(rec(serde_json::to_value(default_model()).unwrap()), vec![]);
    assert_eq!(
        rec(json!({"groups": "nope", "tiers": []})),
        vec![e("definition", codes::INVALID_FORMAT)]
    );
    // Misspelt keys are errors, not silently ignored.
    assert_eq!(
        rec(json!({"groups": [], "tiers": tiers(), "reset_wen": []})),
        vec![e("definition", codes::INVALID_FORMAT)]
    );
    let mut bad = serde_json::to_value(default_model()).unwrap();
    bad["groups"][0]["rules"][2]["condition"] = json!({"cmp": {"field": "nope", "op": "eq", "value": "x"}});
    bad["tiers"][2]["min_score"] = json!(5);
    assert_eq!(
        rec(bad),
        vec![
            e("definition.groups[0].rules[2].condition", codes::UNKNOWN_FIELD),
            e("definition.tiers", codes::REQUIRED),
        ]
    );
}

#[test]
fn json_shape_round_trips() {
    let j = json!({
        "name": "Roofing",
        "total_cap": 100,
        "groups": [
            {"name": "fit", "kind": "fit", "cap": 50, "rules": [
                {"name": "referral", "points": 20,
                 "condition": {"cmp": {"field": "source", "op": "eq", "value": "referral"}}}]},
            {"name": "engagement", "kind": "engagement", "cap": 50, "floor": -10, "rules": [
                {"name": "inbound_call", "points": 10, "kind": "call", "direction": "inbound",
                 "limit": 3, "within_days": 30, "decay_days": 30},
                {"name": "meetings", "points": 15, "kind": ["meeting", "visit"], "limit": 2}]}
        ],
        "tiers": [{"name": "A", "min_score": 70, "temperature": "hot"},
                  {"name": "C", "min_score": 0, "temperature": "cold"}],
        "reset_when": [{"name": "lost",
                        "condition": {"cmp": {"field": "status", "op": "eq", "value": "lost"}}}]
    });
    let m = model(j.clone());
    assert_eq!(serde_json::to_value(&m).unwrap(), j);
    let d = default_model();
    let back: ScoringModel = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    // total_cap defaults to 100.
    let m = model(json!({"groups": [], "tiers": []}));
    assert_eq!(m.total_cap, 100);
}

#[test]
fn text_conditions_use_the_filter_language() {
    let text_ready = crate::query::text::parse("status:lost").is_ok_and(|f| f != crate::query::Filter::All);
    let m = model(json!({"groups": [{"name": "fit", "kind": "fit", "rules": [
        {"name": "referral", "points": 20, "condition": "source:referral"}]}],
        "tiers": tiers(), "reset_when": [{"name": "lost", "condition": "status:lost"}]}));
    let c = m.compile(&CustomSpecs::new()).unwrap();
    if text_ready {
        let l = lead(&[("source", "referral".into())]);
        assert_eq!(c.score(&l, &[], now()).0, 20);
        let l = lead(&[("source", "website".into())]);
        assert_eq!(c.score(&l, &[], now()).0, 0);
        let l = lead(&[("source", "referral".into()), ("status", "lost".into())]);
        assert!(c.evaluate(&l, &[], now()).reset);
    }
    let m = model(json!({"groups": [{"name": "fit", "kind": "fit", "rules": [
        {"name": "empty", "points": 20, "condition": " "}]}], "tiers": tiers()}));
    assert_eq!(m.compile(&CustomSpecs::new()).unwrap_err()[0].code, codes::REQUIRED);
}

#[test]
fn lookback_is_the_longest_timeframe() {
    let m = default_model().compile(&CustomSpecs::new()).unwrap();
    assert_eq!(m.lookback_days(), Some(60));
    let fit_only = compiled(json!({"groups": [{"name": "fit", "kind": "fit", "rules": [
        {"name": "r", "points": 20, "condition": {"cmp": {"field": "source", "op": "eq", "value": "referral"}}}]}],
        "tiers": tiers()}));
    assert_eq!(fit_only.lookback_days(), Some(0));
}

// ---- the default model on realistic leads ----

fn default_compiled() -> CompiledModel {
    default_model().compile(&CustomSpecs::new()).unwrap()
}

#[test]
fn default_model_on_realistic_leads() {
    let m = default_compiled();
    // A referred, urgent, big replacement job that calls, meets and replies: hot.
    let hot = lead(&[
        ("first_name", "Ann".into()),
        ("source", "referral".into()),
        ("estimated_value", Money(1_850_000).into()),
        ("project_type", "roof_replacement".into()),
        ("phone", "+13035550100".into()),
        ("email", "ann@mail.example".into()),
        ("priority", "urgent".into()),
    ]);
    let acts = [
        act("email", Some("inbound"), Some("replied"), DAY),
        act("call", Some("inbound"), Some("connected"), 2 * DAY),
        act("call", Some("outbound"), Some("no_answer"), 3 * DAY),
        act("meeting", None, Some("scheduled"), 5 * DAY),
        act("call", Some("inbound"), Some("connected"), 10 * DAY),
        act("note", None, None, 90 * DAY),
    ];
    let r = check(&m, &hot, &acts, now());
    assert_eq!(
        entries(&r),
        vec![
            ("fit", "referral", 1, 20),
            ("fit", "value_15k_plus", 1, 15),
            ("fit", "major_project", 1, 10),
            ("fit", "has_phone", 1, 5),
            ("fit", "has_email", 1, 3),
            ("fit", "urgent", 1, 5),
            ("fit", "cap", 0, -8),
            ("engagement", "inbound_call", 2, 16),
            ("engagement", "meeting_or_visit", 1, 14),
            ("engagement", "message_reply", 1, 5),
            ("engagement", "responsive", 1, 5),
            ("engagement", "unanswered_call", 1, -2),
        ]
    );
    assert_eq!((r.score, r.tier.as_str(), r.temperature.key()), (88, "A", "hot"));

    // A storm-damage canvass lead with a recent visit and a call back: warm.
    let warm = lead(&[
        ("source", "storm_canvass".into()),
        ("estimated_value", Money(2_600_000).into()),
        ("project_type", "storm_damage".into()),
        ("phone", "+13035550101".into()),
        ("email", "bo@mail.example".into()),
        ("priority", "high".into()),
    ]);
    let acts = [
        act("call", Some("inbound"), Some("connected"), 7 * DAY),
        act("visit", Some("outbound"), None, 20 * DAY),
    ];
    let r = check(&m, &warm, &acts, now());
    // Fit 10 + 15 + 10 + 5 + 3 = 43; call 10 * 23/30 -> 8; visit 15 * 40/60 = 10.
    assert_eq!((r.score, r.temperature.key()), (61, "warm"));

    // A website repair lead who never picks up: cold.
    let cold = lead(&[
        ("source", "website".into()),
        ("estimated_value", Money(800_000).into()),
        ("project_type", "roof_repair".into()),
        ("phone", "+13035550102".into()),
    ]);
    let acts = [
        act("call", Some("outbound"), Some("no_answer"), DAY),
        act("call", Some("outbound"), Some("no_answer"), 4 * DAY),
        act("call", Some("outbound"), Some("no_answer"), 8 * DAY),
        act("email", Some("inbound"), Some("replied"), 20 * DAY),
        act("call", Some("outbound"), Some("no_answer"), 20 * DAY),
    ];
    let r = check(&m, &cold, &acts, now());
    // Fit 10 + 8 + 5 = 23; three misses within 14 days -6; reply 5 * 10/30 -> 2.
    assert_eq!((r.score, r.temperature.key()), (19, "cold"));

    // A bare door knock: cold, and lost leads reset.
    let knock = lead(&[("source", "door_knock".into()), ("phone", "+13035550103".into())]);
    assert_eq!(m.score(&knock, &[], now()), (10, "cold"));
    let mut lost = hot.clone();
    lost.set("status", "lost");
    assert_eq!(m.score(&lost, &acts, now()), (0, "cold"));
}

use crate::demo::Rng;

/// Leads and activities shaped like a roofing company's: engaged leads have more, more recent
/// activity, with inbound replies; cold ones mostly unanswered outbound calls.
fn synthetic(n: usize, seed: u64) -> Vec<(Record, Vec<Record>)> {
    let mut rng = Rng(seed);
    let statuses = [
        "new",
        "new",
        "new",
        "contacted",
        "contacted",
        "qualified",
        "appointment_set",
        "proposal_sent",
        "negotiation",
        "won",
        "lost",
    ];
    let projects = [
        "roof_replacement",
        "roof_repair",
        "roof_inspection",
        "storm_damage",
        "gutters",
        "siding",
    ];
    (0..n)
        .map(|_| {
            let status = rng.pick(&statuses);
            let value = [3_500, 8_000, 12_500, 18_000, 26_000, 45_000][rng.below(6) as usize] + rng.below(2000) as i64;
            let mut l = lead(&[
                ("source", rng.pick(LEAD_SOURCES).into()),
                ("status", status.into()),
                ("project_type", rng.pick(&projects).into()),
                ("estimated_value", Money(value * 100).into()),
                (
                    "priority",
                    rng.pick(&["low", "medium", "medium", "high", "urgent"]).into(),
                ),
            ]);
            if rng.chance(80) {
                l.set("phone", "+13035550100");
            }
            if rng.chance(60) {
                l.set("email", "a@mail.example");
            }
            let engaged = match status {
                "new" => 15,
                "contacted" => 40,
                "lost" | "won" => 20,
                _ => 70,
            };
            let active = rng.chance(engaged);
            let count = if active { 2 + rng.below(8) } else { rng.below(4) };
            // Active leads' activity is recent; the others' spread over four months.
            let span = if active { 30 } else { 120 } * DAY as u64;
            let acts = (0..count)
                .map(|_| {
                    let age = rng.below(span) as i64;
                    if rng.chance(if active { 60 } else { 15 }) {
                        let kind = rng.pick(&["call", "email", "sms", "meeting", "visit"]);
                        act(kind, Some("inbound"), Some("connected"), age)
                    } else {
                        let outcome = rng.pick(&["no_answer", "no_answer", "left_voicemail", "connected"]);
                        act(
                            rng.pick(&["call", "call", "email", "sms"]),
                            Some("outbound"),
                            Some(outcome),
                            age,
                        )
                    }
                })
                .collect();
            (l, acts)
        })
        .collect()
}

#[test]
fn default_model_spreads_scores() {
    // About 3% hot, 27% warm, 70% cold (lost leads, untouched new ones) over 85 distinct scores.
    let m = default_compiled();
    let data = synthetic(3000, 7);
    let mut temps = std::collections::BTreeMap::new();
    let mut scores = std::collections::BTreeSet::new();
    for (l, acts) in &data {
        let (s, t) = m.score(l, acts, now());
        *temps.entry(t.to_owned()).or_insert(0usize) += 1;
        scores.insert(s);
    }
    let share = |t: &str| temps.get(t).copied().unwrap_or(0) * 100 / data.len();
    assert!(
        share("hot") >= 2 && share("warm") >= 15 && share("cold") >= 30,
        "{temps:?}"
    );
    assert!(scores.len() >= 60, "{} distinct scores", scores.len());
}

// ---- properties ----

fn arb_lead() -> impl Strategy<Value = Record> {
    (
        prop::option::of(prop::sample::select(LEAD_SOURCES.to_vec())),
        prop::option::of(0i64..10_000_000),
        prop::option::of(prop::sample::select(vec![
            "roof_replacement",
            "storm_damage",
            "gutters",
        ])),
        prop::sample::select(vec!["low", "medium", "urgent"]),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["new", "contacted", "won", "lost"]),
    )
        .prop_map(|(source, value, project, priority, phone, email, status)| {
            let mut l = lead(&[
                ("source", source.into()),
                ("estimated_value", value.map(Money).into()),
                ("project_type", project.into()),
                ("priority", priority.into()),
                ("status", status.into()),
            ]);
            if phone {
                l.set("phone", "+13035550100");
            }
            if email {
                l.set("email", "a@mail.example");
            }
            l
        })
}

fn arb_activity() -> impl Strategy<Value = Record> {
    let mut kinds = ACTIVITY_KINDS.to_vec();
    kinds.push("fax");
    (
        prop::sample::select(kinds),
        prop::option::of(prop::sample::select(vec!["inbound", "outbound"])),
        prop::option::of(prop::sample::select(vec!["no_answer", "connected", "NO_ANSWER"])),
        // Hours, so that equal times occur; a few in the future, a few without a time.
        prop_oneof![-48i64..2400, (0i64..20).prop_map(|d| d * 24)],
        0u8..20,
    )
        .prop_map(|(kind, dir, outcome, hours, dur)| {
            let mut a = act(kind, dir, outcome, hours * HOUR);
            a.set("duration_minutes", i64::from(dur));
            if hours % 97 == 0 {
                a.set("occurred_at", Value::Null);
            }
            a
        })
}

fn arb_engagement_rule(i: usize) -> impl Strategy<Value = serde_json::Value> {
    (
        -5i64..20,
        prop::option::of(prop::sample::subsequence(ACTIVITY_KINDS.to_vec(), 1..3)),
        prop::option::of(prop::sample::select(vec!["inbound", "outbound"])),
        prop::option::of(prop::sample::select(vec!["no_answer", "connected"])),
        prop::option::of(prop_oneof![1u32..5, 17u32..20]),
        prop::option::of(1u32..4),
        prop::option::of(1i64..60),
        prop::option::of(1i64..60),
        any::<bool>(),
    )
        .prop_map(
            move |(points, kinds, dir, outcome, limit, min_count, within, decay, cond)| {
                let mut r = json!({"name": format!("r{i}"), "points": points});
                let o = r.as_object_mut().unwrap();
                let mut put = |k: &str, v: Option<serde_json::Value>| {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                };
                put("kind", kinds.map(|k| json!(k)));
                put("direction", dir.map(|d| json!(d)));
                put("outcome", outcome.map(|d| json!(d)));
                put("limit", limit.map(|d| json!(d)));
                put("min_count", min_count.map(|d| json!(d)));
                put("within_days", within.map(|d| json!(d)));
                put("decay_days", decay.map(|d| json!(d)));
                put(
                    "condition",
                    cond.then(|| json!({"cmp": {"field": "duration_minutes", "op": "ge", "value": "5"}})),
                );
                r
            },
        )
}

fn arb_model() -> impl Strategy<Value = CompiledModel> {
    let fit_pool = [
        json!({"cmp": {"field": "source", "op": "eq", "value": "referral"}}),
        json!({"in": {"field": "source", "values": ["website", "storm_canvass"]}}),
        json!({"cmp": {"field": "estimated_value", "op": "ge", "value": "15000"}}),
        json!({"not": {"is_null": {"field": "phone"}}}),
        json!({"cmp": {"field": "priority", "op": "eq", "value": "urgent"}}),
        json!({"or": [{"is_null": {"field": "email"}}, {"cmp": {"field": "project_type", "op": "eq", "value": "gutters"}}]}),
    ];
    (
        prop::collection::vec((0..fit_pool.len(), -10i64..30), 1..6),
        (
            arb_engagement_rule(0),
            arb_engagement_rule(1),
            arb_engagement_rule(2),
            arb_engagement_rule(3),
        ),
        1usize..=4,
        prop::option::of(0i64..60),
        prop::option::of(-20i64..=0),
        prop::option::of(0i64..60),
        prop::option::of(-20i64..=0),
        70i64..=100,
        any::<bool>(),
    )
        .prop_map(
            move |(fit, (e0, e1, e2, e3), n_eng, fcap, ffloor, ecap, efloor, total_cap, reset)| {
                let fit: Vec<serde_json::Value> = fit
                    .iter()
                    .enumerate()
                    .map(|(i, (c, p))| json!({"name": format!("f{i}"), "points": p, "condition": fit_pool[*c]}))
                    .collect();
                let eng: Vec<serde_json::Value> = [e0, e1, e2, e3].into_iter().take(n_eng).collect();
                let mut j = json!({"total_cap": total_cap, "groups": [
                    {"name": "fit", "kind": "fit", "cap": fcap, "floor": ffloor, "rules": fit},
                    {"name": "eng", "kind": "engagement", "cap": ecap, "floor": efloor, "rules": eng}],
                    "tiers": tiers()});
                for g in j["groups"].as_array_mut().unwrap() {
                    let g = g.as_object_mut().unwrap();
                    g.retain(|_, v| !v.is_null());
                }
                if reset {
                    j["reset_when"] = json!([{"name": "lost", "condition": {"cmp": {"field": "status", "op": "eq", "value": "lost"}}}]);
                }
                compiled(j)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn evaluate_and_score_agree(
        m in prop_oneof![Just(default_compiled()), arb_model()],
        l in arb_lead(),
        acts in prop::collection::vec(arb_activity(), 0..60),
        as_of_hours in -24i64..48,
    ) {
        let as_of = Timestamp(now().0 - as_of_hours * HOUR);
        let r = m.evaluate(&l, &acts, as_of);
        prop_assert_eq!(m.score(&l, &acts, as_of), (r.score, r.temperature.key()));
        let sum: i64 = r.contributions.iter().map(|c| c.points).sum();
        prop_assert_eq!(sum, r.score);
        prop_assert!((0..=100).contains(&r.score));
        prop_assert_eq!(r.reset, r.contributions.iter().any(|c| c.kind == ContributionKind::Reset));
        // The order of activities does not matter (newest first is the fast path).
        let mut sorted = acts.clone();
        sorted.sort_by_key(|a| std::cmp::Reverse(a.get("occurred_at").and_then(Value::as_timestamp)));
        prop_assert_eq!(&m.evaluate(&l, &sorted, as_of), &r);
        sorted.reverse();
        prop_assert_eq!(&m.evaluate(&l, &sorted, as_of), &r);
    }
}
