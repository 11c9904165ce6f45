//! Writes the fixtures the JS tests (`js/test/*.test.mjs`) run through the wasm package: inputs and
//! the outputs native crm-core gives for them. The local-database scenario runs on crm-core's own
//! conformance `Fixture` (a roofing tenant with a user of each role, clock pinned at
//! `conformance::NOW`, sequential ids), calling the service directly; the JS side replays the same
//! setup and operations through `LocalDb` and must get byte-identical JSON.
//!
//! Usage: `cargo run -p crm-wasm --bin crm-wasm-fixtures -- OUT.json`

use crm_core::access::Actor;
use crm_core::conformance::{Fixture, NOW, block, obj};
use crm_core::memory::MemoryStore;
use crm_core::query::{ListRequest, SortKey};
use crm_core::record::Record;
use crm_core::scoring::default_model;
use crm_wasm::api;
use serde::Serialize;
use serde_json::{Value as Json, json};

/// A static clock for the native API calls (every case passes `now`/`asOf` anyway).
#[derive(Debug)]
struct At;
impl crm_core::clock::Clock for At {
    fn now(&self) -> crm_core::value::Timestamp {
        NOW
    }
}

fn outcome<T: Serialize>(r: crm_core::Result<T>) -> Json {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": api::error_details(&e) }),
    }
}

fn rec(r: crm_core::Result<Record>) -> Json {
    outcome(r.map(|r| r.to_json()))
}

fn validation_cases() -> Json {
    let now = NOW.to_rfc3339();
    let cases = [
        // The conformance suite's "validation reports every field" input.
        (
            "lead",
            json!({"email": "x@", "source": "pigeon", "estimated_value": "-5", "score": 100}),
            json!({"now": now}),
        ),
        (
            "lead",
            json!({"first_name": "  Ann ", "email": " ANN@Example.COM ", "phone": "(303) 555-0123", "source": "Referral", "estimated_value": "18,500.50"}),
            json!({"now": now}),
        ),
        ("lead", json!({"last_name": "x".repeat(101)}), json!({"now": now})),
        ("lead", json!({}), json!({"now": now})),
        (
            "lead",
            json!({"notes": "called back"}),
            json!({"now": now, "mode": "update"}),
        ),
        ("lead", json!({"status": ""}), json!({"now": now, "mode": "update"})),
        (
            "activity",
            json!({"kind": "call", "occurred_at": "2030-01-01T00:00:00Z"}),
            json!({"now": now}),
        ),
        (
            "contact",
            json!({"first_name": "Bo", "phone": "555-0199", "email": "bo@example.com"}),
            json!({"now": now, "phoneCountryCode": "1"}),
        ),
    ];
    let mut out = Vec::new();
    for (entity, input, options) in cases {
        let opts = serde_json::from_value(options.clone()).expect("options");
        let expect = outcome(api::validate(entity, &input, opts, &At));
        let opts = serde_json::from_value(options.clone()).expect("options");
        let normalized = outcome(api::normalize(entity, &input, opts, &At));
        out.push(
            json!({"entity": entity, "input": input, "options": options, "expect": expect, "normalize": normalized}),
        );
    }
    json!(out)
}

fn scoring_cases() -> Json {
    let call =
        |days: i64| json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-days).to_rfc3339()});
    let mut calls_matter = default_model();
    for r in calls_matter.groups.iter_mut().flat_map(|g| g.rules.iter_mut()) {
        if r.name == "inbound_call" {
            r.points = 40;
        }
    }
    let inputs = vec![
        // The conformance suite's decay case: a call 15 days before NOW, seen at several times.
        json!({"lead": {"first_name": "Ann", "source": "other"}, "activities": [call(15)], "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339()}),
        json!({"lead": {"first_name": "Ann", "source": "other"}, "activities": [call(15)], "now": NOW.to_rfc3339(), "asOf": NOW.plus_days(12).to_rfc3339()}),
        json!({"lead": {"first_name": "Ann", "source": "other"}, "activities": [call(15)], "now": NOW.to_rfc3339(), "asOf": NOW.plus_days(16).to_rfc3339()}),
        json!({"lead": {"first_name": "Ann", "source": "other"}, "activities": [call(15)], "now": NOW.to_rfc3339(), "asOf": NOW.plus_days(-20).to_rfc3339()}),
        json!({"lead": {"first_name": "Ann", "source": "other"}, "activities": [call(15)], "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339(), "model": calls_matter}),
        json!({"lead": {"first_name": "Ann", "phone": "(303) 555-0123", "email": "ann@example.com", "source": "referral", "project_type": "roof_replacement", "estimated_value": "18500"},
               "activities": [
                   {"kind": "meeting", "direction": "inbound", "occurred_at": NOW.plus_days(-1).to_rfc3339()},
                   {"kind": "email", "direction": "inbound", "occurred_at": NOW.plus_days(-2).to_rfc3339()},
                   call(3)],
               "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339()}),
        json!({"lead": {"first_name": "Lost", "source": "referral", "status": "lost"}, "activities": [call(1)], "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339()}),
        json!({"lead": {"email": "x@"}, "activities": [{"kind": "pigeon"}], "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339()}),
        json!({"lead": {"first_name": "A"}, "model": {"name": "x", "total_cap": 100, "groups": [], "tiers": [{"name": "A", "min_score": 10, "temperature": "hot"}]}, "now": NOW.to_rfc3339(), "asOf": NOW.to_rfc3339()}),
    ];
    json!(
        inputs
            .into_iter()
            .map(|i| {
                let expect = outcome(api::score(&i, &At));
                json!({"input": i, "expect": expect})
            })
            .collect::<Vec<_>>()
    )
}

fn access_cases() -> Json {
    let mut out = Vec::new();
    let custom = json!({"name": "auditor", "grants": {"lead": {"actions": {"read": "tenant", "export": "team"}, "read": {"except": ["estimated_value"]}, "write": {"only": []}}}});
    let roles = crm_core::access::builtin::NAMES
        .iter()
        .map(|n| json!(n))
        .chain([custom, json!("nobody")]);
    for role in roles {
        for entity in ["lead", "activity", "user", "scoring_model"] {
            out.push(json!({"role": role, "entity": entity, "expect": outcome(api::access(&role, entity))}));
        }
    }
    json!(out)
}

fn filter_cases() -> Json {
    let qs = [
        "",
        "status:new score>=60 owner:me",
        "(source:referral OR source:web) -status:lost",
        "status:new,contacted estimated_value<5000",
        "roof",
        "score>>",
        "(status:new",
        "status:",
    ];
    json!(
        qs.iter()
            .map(|q| json!({"q": q, "expect": outcome(api::parse_filter(q))}))
            .collect::<Vec<_>>()
    )
}

fn actor_json(a: &Actor) -> Json {
    match a.user_id {
        Some(u) => json!({"tenant": a.tenant.to_string(), "user": u.to_string()}),
        None => json!({"tenant": a.tenant.to_string()}),
    }
}

/// The conformance `Fixture`'s setup, as operations the JS side replays, and a scenario run on it.
fn local_db() -> Json {
    let f = Fixture::new(MemoryStore::new());
    let team = |a: &Actor| a.team_id.map(|t| t.to_string());
    let user = |name: &str, role: &str, a: &Actor| {
        json!({"op": "create", "as": "admin", "entity": "user",
               "input": {"name": name, "email": format!("{name}@acme.test"), "role": role, "team_id": team(a)},
               "expectId": a.user_id.map(|u| u.to_string())})
    };
    let setup = json!([
        {"op": "createOrganization", "input": {"name": "Acme Roofing"}, "expectId": f.tenant.to_string()},
        {"op": "create", "as": "admin", "entity": "team", "input": {"name": "North"}, "expectId": team(&f.sales_a)},
        {"op": "create", "as": "admin", "entity": "team", "input": {"name": "South"}, "expectId": team(&f.sales_b)},
        user("maria", "manager", &f.manager),
        user("sam", "sales", &f.sales_a),
        user("sue", "sales", &f.sales_b),
        user("tom", "field_tech", &f.tech),
        user("stan", "staff", &f.staff),
    ]);
    let actors = json!({
        "admin": actor_json(&f.admin), "manager": actor_json(&f.manager), "sales_a": actor_json(&f.sales_a),
        "sales_b": actor_json(&f.sales_b), "tech": actor_json(&f.tech), "staff": actor_json(&f.staff),
    });

    let mut ops = Vec::new();
    let mut push = |op: Json, result: Json| {
        let mut op = op;
        op["expect"] = result;
        ops.push(op);
    };
    let list = |a: &Actor, q: &str, sort: &str| {
        let req = ListRequest {
            q: Some(q.into()),
            sort: SortKey::parse_list(sort),
            ..Default::default()
        };
        outcome(block(f.svc.list(a, "lead", &req)).map(
            |p| json!({"items": p.items.iter().map(Record::to_json).collect::<Vec<_>>(), "nextCursor": p.next_cursor}),
        ))
    };

    let ann = json!({"first_name": "  Ann ", "email": "ANN@Example.COM", "phone": "(303) 555-0123", "source": "referral", "estimated_value": "18500"});
    let r = block(f.svc.create(&f.sales_a, "lead", &obj(ann.clone())));
    let lead = r.as_ref().map(|l| l.id.to_string()).expect("lead created");
    push(
        json!({"op": "create", "as": "sales_a", "entity": "lead", "input": ann}),
        rec(r),
    );

    let bad = json!({"email": "x@", "source": "pigeon", "estimated_value": "-5", "score": 100});
    push(
        json!({"op": "create", "as": "admin", "entity": "lead", "input": bad}),
        rec(block(f.svc.create(&f.admin, "lead", &obj(bad.clone())))),
    );

    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-15).to_rfc3339(), "lead_id": lead});
    push(
        json!({"op": "logActivity", "as": "sales_a", "input": call}),
        rec(block(f.svc.log_activity(&f.sales_a, &obj(call.clone())))),
    );
    push(
        json!({"op": "explainScore", "as": "sales_a", "id": lead}),
        outcome(block(f.svc.explain_score(&f.sales_a, lead.parse().expect("id"), None))),
    );
    let later = NOW.plus_days(12);
    push(
        json!({"op": "explainScore", "as": "sales_a", "id": lead, "asOf": later.to_rfc3339()}),
        outcome(block(f.svc.explain_score(
            &f.sales_a,
            lead.parse().expect("id"),
            Some(later),
        ))),
    );
    push(
        json!({"op": "get", "as": "sales_b", "entity": "lead", "id": lead}),
        rec(block(f.svc.get(&f.sales_b, "lead", lead.parse().expect("id")))),
    );
    push(
        json!({"op": "list", "as": "sales_b", "entity": "lead", "request": {"q": "status:new"}}),
        list(&f.sales_b, "status:new", ""),
    );
    push(
        json!({"op": "list", "as": "manager", "entity": "lead", "request": {"q": "score>=0", "sort": "-score"}}),
        list(&f.manager, "score>=0", "-score"),
    );
    push(
        json!({"op": "list", "as": "manager", "entity": "lead", "request": {"q": "score>>"}}),
        list(&f.manager, "score>>", ""),
    );
    push(
        json!({"op": "get", "as": "tech", "entity": "lead", "id": lead}),
        rec(block(f.svc.get(&f.tech, "lead", lead.parse().expect("id")))),
    );
    let patch = json!({"first_name": "Bob"});
    push(
        json!({"op": "update", "as": "staff", "entity": "lead", "id": lead, "version": 1, "patch": patch}),
        rec(block(f.svc.update(
            &f.staff,
            "lead",
            lead.parse().expect("id"),
            1,
            &obj(patch.clone()),
        ))),
    );
    let patch = json!({"notes": "Called back, wants a quote", "status": "contacted"});
    push(
        json!({"op": "update", "as": "sales_a", "entity": "lead", "id": lead, "version": 1, "patch": patch}),
        rec(block(f.svc.update(
            &f.sales_a,
            "lead",
            lead.parse().expect("id"),
            1,
            &obj(patch.clone()),
        ))),
    );
    push(
        json!({"op": "update", "as": "sales_a", "entity": "lead", "id": lead, "version": 1, "patch": patch}),
        rec(block(f.svc.update(
            &f.sales_a,
            "lead",
            lead.parse().expect("id"),
            1,
            &obj(patch.clone()),
        ))),
    );
    push(
        json!({"op": "pipelineSummary", "as": "manager"}),
        outcome(block(f.svc.pipeline_summary(&f.manager))),
    );
    push(
        json!({"op": "eventsSince", "as": "admin", "after": 0, "limit": 100}),
        outcome(block(f.svc.events_since(&f.admin, 0, 100))),
    );
    json!({"now": NOW.to_rfc3339(), "setup": setup, "actors": actors, "ops": ops})
}

/// What examples/web shows once the browser test has filled in the form.
fn page_preview() -> Json {
    let input = json!({"lead": {"first_name": "Ann", "email": "ann@example.com", "phone": "(303) 555-0123", "source": "referral", "estimated_value": "18500"}});
    let expect = outcome(api::score(&input, &At));
    json!({"input": input, "expect": expect})
}

fn main() -> std::io::Result<()> {
    let doc = json!({
        "generatedBy": "cargo run -p crm-wasm --bin crm-wasm-fixtures",
        "validation": validation_cases(),
        "scoring": scoring_cases(),
        "access": access_cases(),
        "filters": filter_cases(),
        "localDb": local_db(),
        "pagePreview": page_preview(),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n";
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(path, text),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
