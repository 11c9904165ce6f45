//! The model every tenant starts with, fitted to a residential roofing company's leads.

use super::model::{Group, GroupKind, OneOrMany, ResetRule, Rule, ScoringModel, Tier};
use crate::query::{FilterSpec, Op};
use serde_json::json;

fn cmp(field: &str, op: Op, value: &str) -> FilterSpec {
    FilterSpec::Cmp {
        field: field.into(),
        op,
        value: json!(value),
    }
}

fn eq(field: &str, value: &str) -> FilterSpec {
    cmp(field, Op::Eq, value)
}

fn any_of(field: &str, values: &[&str]) -> FilterSpec {
    FilterSpec::In {
        field: field.into(),
        values: values.iter().map(|v| json!(v)).collect(),
    }
}

fn present(field: &str) -> FilterSpec {
    FilterSpec::Not(Box::new(FilterSpec::IsNull { field: field.into() }))
}

fn one(s: &str) -> Option<OneOrMany> {
    Some(OneOrMany::One(s.into()))
}

/// The built-in model (used until a tenant publishes its own): fit up to 50 points, engagement up to
/// 50, hot from 70, warm from 40; lost leads score 0.
pub fn default_model() -> ScoringModel {
    let fit = vec![
        Rule::fit("referral", 20, eq("source", "referral")),
        Rule::fit(
            "high_intent_source",
            10,
            any_of("source", &["storm_canvass", "website", "phone_in", "partner"]),
        ),
        Rule::fit("door_knock", 5, eq("source", "door_knock")),
        Rule::fit("value_15k_plus", 15, cmp("estimated_value", Op::Ge, "15000.00")),
        Rule::fit(
            "value_5k_to_15k",
            8,
            FilterSpec::And(vec![
                cmp("estimated_value", Op::Ge, "5000.00"),
                cmp("estimated_value", Op::Lt, "15000.00"),
            ]),
        ),
        Rule::fit(
            "major_project",
            10,
            any_of("project_type", &["roof_replacement", "storm_damage"]),
        ),
        Rule::fit("has_phone", 5, present("phone")),
        Rule::fit("has_email", 3, present("email")),
        Rule::fit("urgent", 5, eq("priority", "urgent")),
    ];
    let engagement = vec![
        Rule {
            kind: one("call"),
            direction: Some("inbound".into()),
            limit: Some(3),
            within_days: Some(30),
            decay_days: Some(30),
            ..Rule::engagement("inbound_call", 10)
        },
        Rule {
            kind: Some(OneOrMany::Many(vec!["meeting".into(), "visit".into()])),
            limit: Some(2),
            within_days: Some(60),
            decay_days: Some(60),
            ..Rule::engagement("meeting_or_visit", 15)
        },
        Rule {
            kind: Some(OneOrMany::Many(vec!["email".into(), "sms".into()])),
            direction: Some("inbound".into()),
            limit: Some(4),
            within_days: Some(30),
            decay_days: Some(30),
            ..Rule::engagement("message_reply", 5)
        },
        Rule {
            direction: Some("inbound".into()),
            min_count: Some(3),
            limit: Some(1),
            within_days: Some(14),
            ..Rule::engagement("responsive", 5)
        },
        Rule {
            kind: one("call"),
            direction: Some("outbound".into()),
            outcome: one("no_answer"),
            limit: Some(5),
            within_days: Some(14),
            ..Rule::engagement("unanswered_call", -2)
        },
    ];
    let tier = |name: &str, min_score, temperature: &str| Tier {
        name: name.into(),
        min_score,
        temperature: temperature.into(),
    };
    ScoringModel {
        name: "Roofing default".into(),
        total_cap: 100,
        groups: vec![
            Group {
                name: "fit".into(),
                kind: GroupKind::Fit,
                cap: Some(50),
                floor: None,
                rules: fit,
            },
            Group {
                name: "engagement".into(),
                kind: GroupKind::Engagement,
                cap: Some(50),
                floor: Some(-10),
                rules: engagement,
            },
        ],
        tiers: vec![tier("A", 70, "hot"), tier("B", 40, "warm"), tier("C", 0, "cold")],
        reset_when: vec![ResetRule {
            name: "lost".into(),
            condition: super::model::Condition::Filter(eq("status", "lost")),
        }],
    }
}
