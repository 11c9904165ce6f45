//! Criterion micro-benches of the pure engines: validation, scoring, the text filter parser and a
//! page of records written as JSON (what the server answers a list with).
//!
//! ```text
//! cargo bench -p crm-bench --bench core
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use crm_core::entity::{ACTIVITY, LEAD};
use crm_core::record::Record;
use crm_core::scoring::{CompiledModel, default_model};
use crm_core::validate::{self, CustomSpecs, Mode};
use crm_core::value::{Id, Timestamp};
use serde_json::{Map, Value as Json, json};
use std::hint::black_box;
use std::time::Duration;

/// 2025-06-01T12:00:00Z
const NOW: Timestamp = Timestamp(1_748_779_200_000_000);

fn ctx() -> validate::Ctx {
    validate::Ctx {
        now: NOW,
        today: NOW.date(),
        phone_country_code: "1".into(),
        source: validate::Source::Json,
    }
}

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

fn id(n: u128) -> Id {
    Id::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// What a web form or a CSV row sends for a new lead: strings to normalise (phone, email, money).
fn lead_input() -> Map<String, Json> {
    obj(json!({
        "first_name": " Ann ",
        "last_name": "Lee",
        "company_name": "Lee Properties",
        "email": "Ann.Lee@Example.COM",
        "phone": "(720) 555-0142",
        "address_line": "1234 Maple St",
        "city": "Denver",
        "region": "CO",
        "postal_code": "80202",
        "country": "US",
        "source": "referral",
        "status": "qualified",
        "owner_id": id(1).to_string(),
        "team_id": id(2).to_string(),
        "project_type": "roof_replacement",
        "estimated_value": "18,250.50",
        "priority": "high",
        "tags": ["storm", "vip"],
        "external_id": "L0001234",
        "notes": "Hail damage on the north side; prefers mornings.",
    }))
}

fn lead() -> Record {
    let mut r = Record::empty(&LEAD, id(9), id(10), NOW.plus_days(-20));
    validate::apply_input(&mut r, &lead_input(), &CustomSpecs::new(), &ctx(), Mode::Create).expect("valid lead");
    r
}

/// About ten activities of the kinds the default model counts, over the last two months.
fn activities(lead: Id) -> Vec<Record> {
    let kinds = [
        ("call", "outbound", "connected"),
        ("call", "outbound", "no_answer"),
        ("email", "inbound", "replied"),
        ("email", "outbound", "sent"),
        ("meeting", "outbound", "scheduled"),
        ("visit", "outbound", "connected"),
        ("sms", "inbound", "replied"),
        ("call", "inbound", "connected"),
        ("note", "outbound", "logged"),
        ("check_in", "inbound", "connected"),
    ];
    let mut out: Vec<Record> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, direction, outcome))| {
            let mut a = Record::empty(&ACTIVITY, id(9), id(100 + i as u128), NOW);
            let input = obj(json!({
                "kind": kind,
                "direction": direction,
                "outcome": outcome,
                "subject": "Follow-up",
                "occurred_at": NOW.plus_days(-(i as i64) * 6 - 1).to_rfc3339(),
                "duration_minutes": 15,
                "lead_id": lead.to_string(),
            }));
            validate::apply_input(&mut a, &input, &CustomSpecs::new(), &ctx(), Mode::Create).expect("valid activity");
            a
        })
        .collect();
    // Newest first, as the service passes them.
    out.sort_by_key(|a| std::cmp::Reverse(a.get("occurred_at").and_then(|v| v.as_timestamp())));
    out
}

fn model() -> CompiledModel {
    default_model()
        .compile(&CustomSpecs::new())
        .expect("the default model compiles")
}

fn bench_validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    let input = lead_input();
    let (custom, vctx) = (CustomSpecs::new(), ctx());
    g.bench_function("lead_create", |b| {
        b.iter(|| {
            let mut r = Record::empty(&LEAD, id(9), id(10), NOW);
            let changed = validate::apply_input(&mut r, black_box(&input), &custom, &vctx, Mode::Create);
            black_box((r, changed))
        })
    });
    let patch = obj(json!({"status": "proposal_sent", "estimated_value": "21000", "phone": "+1 720 555 0199"}));
    let base = lead();
    g.bench_function("lead_update_3_fields", |b| {
        b.iter(|| {
            let mut r = base.clone();
            let changed = validate::apply_input(&mut r, black_box(&patch), &custom, &vctx, Mode::Update);
            black_box((r, changed))
        })
    });
    g.finish();
}

/// Fifty leads written as the JSON array a page answers with, the way the server writes them
/// (straight from the records into a byte buffer).
fn bench_json(c: &mut Criterion) {
    let mut g = c.benchmark_group("json");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    let base = lead();
    let page: Vec<Record> = (0..50u128)
        .map(|n| {
            let mut r = base.clone();
            r.id = id(1000 + n);
            r
        })
        .collect();
    let mut buf = Vec::with_capacity(64 * 1024);
    g.bench_function("page_of_50_leads", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&page)).expect("records serialise");
            black_box(buf.len())
        })
    });
    g.finish();
}

fn bench_scoring(c: &mut Criterion) {
    let mut g = c.benchmark_group("scoring");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    let m = model();
    let lead = lead();
    let acts = activities(lead.id);
    g.bench_function("score_10_activities", |b| {
        b.iter(|| black_box(m.score(black_box(&lead), black_box(&acts), NOW)))
    });
    g.bench_function("score_no_activities", |b| {
        b.iter(|| black_box(m.score(black_box(&lead), &[], NOW)))
    });
    g.bench_function("evaluate_10_activities", |b| {
        b.iter(|| black_box(m.evaluate(black_box(&lead), black_box(&acts), NOW)))
    });
    g.bench_function("compile_default_model", |b| {
        let def = default_model();
        let custom = CustomSpecs::new();
        b.iter(|| black_box(def.compile(black_box(&custom))))
    });
    g.finish();
}

fn bench_filter_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter_parse");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    let owner = id(1).to_string();
    let queries = [
        ("simple", "status:new".to_owned()),
        ("list_page", format!("status:new owner:{owner}")),
        (
            "typical",
            r#"status:new,contacted score>=60 owner:me created>2025-01-01 "acme roofing""#.to_owned(),
        ),
        (
            "complex",
            r#"(status:new OR status:contacted) -source:door_knock,other email:* city^den name~smith (score>=40 OR tags:vip) NOT lost_reason:*"#
                .to_owned(),
        ),
    ];
    for (name, q) in &queries {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(crm_core::query::text::parse(black_box(q))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_validate, bench_scoring, bench_filter_parse, bench_json);
criterion_main!(benches);
