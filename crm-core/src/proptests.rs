//! Property tests across modules: model <-> JSON round trips, and access control over generated
//! data and queries (no list ever returns a row or a field the actor may not read).

#![allow(clippy::unwrap_used)]

use crate::access::{Action, Scope};
use crate::conformance::{Fixture, block};
use crate::entity::{LEAD, LEAD_SOURCES};
use crate::memory::MemoryStore;
use crate::query::ListRequest;
use crate::record::Record;
use crate::validate::{self, Mode};
use crate::value::Timestamp;
use proptest::prelude::*;
use serde_json::json;

fn lead_input() -> impl Strategy<Value = serde_json::Value> {
    (
        "[A-Za-z][a-z]{0,12}",
        proptest::option::of("[a-z]{1,8}@[a-z]{1,8}\\.(com|org)"),
        proptest::sample::select(LEAD_SOURCES),
        proptest::option::of(0i64..10_000_000),
        proptest::option::of(-89.0f64..89.0),
        proptest::collection::vec("[a-z]{1,6}", 0..4),
        proptest::option::of("\\PC{0,40}"),
        proptest::sample::select(&["low", "medium", "high", "urgent"][..]),
    )
        .prop_map(|(name, email, source, cents, lat, tags, notes, prio)| {
            json!({"first_name": name, "email": email, "source": source,
                   "estimated_value": cents.map(|c| format!("{}.{:02}", c / 100, c % 100)),
                   "latitude": lat, "tags": tags, "notes": notes, "priority": prio})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lead_json_round_trip(input in lead_input()) {
        let ctx = crate::tenant::validation_ctx_with(Timestamp(1_700_000_000_000_000), Some("1"));
        let mut r = Record::empty(&LEAD, uuid::Uuid::nil(), uuid::Uuid::from_u128(7), ctx.now);
        validate::apply_input(&mut r, input.as_object().unwrap(), &Default::default(), &ctx, Mode::Create).unwrap();
        let back = Record::from_json(&LEAD, r.tenant, &r.to_json(), &Default::default()).unwrap();
        prop_assert_eq!(&back, &r);
        // Re-applying the JSON form as input changes nothing: normalisation is idempotent.
        let mut again = r.clone();
        let mut as_input = r.to_json().as_object().unwrap().clone();
        for k in ["id", "version", "created_at", "updated_at", "score", "temperature", "score_model_version", "scored_at",
                  "contact_id", "company_id", "converted_at", "hot_untouched_since"] {
            as_input.remove(k);
        }
        let changed = validate::apply_input(&mut again, &as_input, &Default::default(), &ctx, Mode::Update).unwrap();
        prop_assert!(changed.is_empty(), "{:?}", changed);
    }
}

fn query() -> impl Strategy<Value = String> {
    let term = prop_oneof![
        proptest::sample::select(
            &[
                "status:new",
                "status:contacted",
                "-status:new",
                "source:referral,website",
                "score>=10",
                "estimated_value>5000",
                "owner:me",
                "priority:high",
                "\"a\"",
                "tags:vip",
                "-tags:vip",
                "estimated_value:*"
            ][..]
        )
        .prop_map(String::from),
    ];
    proptest::collection::vec(term, 0..4).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn lists_never_return_what_the_actor_may_not_read(
        owners in proptest::collection::vec(0usize..5, 1..25),
        values in proptest::collection::vec(proptest::option::of(0i64..20_000), 25),
        q in query(),
    ) {
        let f = Fixture::new(MemoryStore::new());
        let people = [&f.sales_a, &f.sales_b, &f.tech, &f.manager, &f.staff];
        for (i, o) in owners.iter().enumerate() {
            let owner = people[*o % 4].user_id.unwrap().to_string();
            let value = values[i].map(|v| v.to_string());
            f.lead(&f.admin, json!({"first_name": format!("L{i}"), "owner_id": owner, "estimated_value": value,
                "tags": if i % 3 == 0 { vec!["vip"] } else { vec![] }, "status": if i % 2 == 0 { "new" } else { "contacted" }}));
        }
        for actor in people.iter().copied().chain([&f.admin]) {
            let req = ListRequest { q: Some(q.clone()), limit: Some(500), ..Default::default() };
            match block(f.svc.list(actor, "lead", &req)) {
                Ok(page) => {
                    let scope = actor.role.scope(&LEAD, Action::Read);
                    prop_assert!(scope != Scope::None);
                    for r in &page.items {
                        let stored = block(f.svc.get(&f.admin, "lead", r.id)).unwrap();
                        prop_assert!(actor.in_scope(&stored, scope), "{} saw a lead outside its scope", actor.role.name);
                        for (i, fd) in LEAD.fields.iter().enumerate() {
                            prop_assert_eq!(r.is_hidden(i), !actor.role.can_read_field(&LEAD, fd.name));
                        }
                    }
                }
                // Only refusals: a role without read, or `me` for the system actor, which is no user.
                Err(e) => prop_assert!(e.code() == "forbidden" || (e.code() == "invalid_query" && actor.user_id.is_none()), "{:?}", e),
            }
        }
    }
}
