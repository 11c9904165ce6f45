//! The store conformance suite. Every backend runs it through the full service:
//!
//! ```ignore
//! crm_core::conformance_tests!(|| MyStore::open_temporary().unwrap());
//! ```
//!
//! Each case builds a fresh tenant (a roofing company with a user of each role) on a fresh store with
//! a pinned clock, then checks one behaviour the product promises.
//!
//! A store that offers the local change-set log ([`crate::sync`]) also passes a constructor of stores
//! with the log on, which adds the sync log cases:
//!
//! ```ignore
//! crm_core::conformance_tests!(|| MyStore::open_temporary().unwrap(),
//!     sync_log: || MyStore::open_temporary().unwrap().with_sync_log(true));
//! ```

#![allow(clippy::unwrap_used, clippy::type_complexity, missing_docs)]

use crate::access::Actor;
use crate::change::{ChangeSet, Write, verify_chain};
use crate::clock::{FixedClock, SeqIds};
use crate::entity::{self, LEAD};
use crate::error::{Error, codes};
use crate::query::{Compiled, Filter, ListRequest, SortKey, StoreQuery};
use crate::record::Record;
use crate::service::{ConvertOptions, ExportOptions, ImportMode, ImportOptions, Service};
use crate::store::{AuditQuery, BulkWrite, Store};
use crate::sync::{SyncEntry, SyncOp};
use crate::value::{Id, Timestamp, Value};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

mod declarations;
pub use declarations::*;

/// Generates one `#[test]` per conformance case for a store constructor expression.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_cases!($make;
            create_get_round_trip, validation_reports_every_field_and_writes_nothing, stale_version_is_a_conflict,
            other_tenants_ids_are_not_found, field_tech_sees_only_assigned_records, staff_may_update_only_notes,
            sales_cannot_read_other_teams_leads, hidden_fields_are_absent_and_rejected_in_filters,
            keyset_pages_are_complete_and_ordered, store_filters_match_in_memory_evaluation,
            audit_chain_verifies_with_old_and_new_values, events_are_sequenced_and_filtered, import_dry_run_reports_rows_and_fields,
            import_modes_and_upsert, export_is_formula_safe_and_redacted, convert_lead_in_one_change_set,
            bulk_session_rolls_back_on_drop, unique_fields_are_enforced, integrity_checker_reports_broken_rows,
            delete_refuses_records_in_use, pipeline_summary_counts_by_stage, activities_rescore_their_lead,
            derived_writes_skip_moved_rows, decayed_score_explained_and_models_published,
            sessions_keys_and_secrets, sync_log_is_off_by_default,
            workflow_transitions_are_guarded_and_atomic);
    };
    ($make:expr, sync_log: $logged:expr $(,)?) => {
        $crate::conformance_tests!($make);
        $crate::__conformance_cases!($logged;
            sync_log_records_change_sets_in_order, failed_change_sets_log_nothing,
            mark_synced_removes_entries_up_to_a_seq, sync_log_is_per_tenant,
            bulk_sessions_log_per_change_set_and_rollbacks_log_nothing,
            derived_fields_are_recomputed_and_not_synced);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(($make)());
            }
        )*
    };
}

/// 2025-06-01T12:00:00Z
pub const NOW: Timestamp = Timestamp(1_748_779_200_000_000);

/// A tenant with a user of each built-in role on two teams.
#[allow(missing_debug_implementations)]
pub struct Fixture<S> {
    pub svc: Service<S>,
    pub clock: Arc<FixedClock>,
    pub tenant: Id,
    pub admin: Actor,
    pub manager: Actor,
    pub sales_a: Actor,
    pub sales_b: Actor,
    pub tech: Actor,
    pub staff: Actor,
}

pub fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

impl<S: Store> Fixture<S> {
    pub fn new(store: S) -> Self {
        let clock = Arc::new(FixedClock::new(NOW));
        let svc = Service::new(store, clock.clone(), Arc::new(SeqIds::default()));
        block(async {
            let org = svc
                .create_organization(&obj(json!({"name": "Acme Roofing"})))
                .await
                .unwrap();
            let tenant = org.id;
            let admin = Actor::system(tenant);
            let team_a = svc
                .create(&admin, "team", &obj(json!({"name": "North"})))
                .await
                .unwrap()
                .id;
            let team_b = svc
                .create(&admin, "team", &obj(json!({"name": "South"})))
                .await
                .unwrap()
                .id;
            let user = async |name: &str, role: &str, team: Id| {
                let u = svc
                    .create(&admin, "user", &obj(json!({"name": name, "email": format!("{name}@acme.test"), "role": role, "team_id": team.to_string()})))
                    .await
                    .unwrap();
                svc.actor(tenant, u.id).await.unwrap()
            };
            let manager = user("maria", "manager", team_a).await;
            let sales_a = user("sam", "sales", team_a).await;
            let sales_b = user("sue", "sales", team_b).await;
            let tech = user("tom", "field_tech", team_a).await;
            let staff = user("stan", "staff", team_a).await;
            Fixture {
                svc,
                clock,
                tenant,
                admin,
                manager,
                sales_a,
                sales_b,
                tech,
                staff,
            }
        })
    }

    pub fn lead(&self, actor: &Actor, input: Json) -> Record {
        block(self.svc.create(actor, "lead", &obj(input))).unwrap()
    }

    pub fn ids(&self, actor: &Actor, entity: &str, q: &str) -> Vec<Id> {
        let req = ListRequest {
            q: Some(q.into()),
            limit: Some(500),
            ..Default::default()
        };
        block(self.svc.list(actor, entity, &req))
            .unwrap()
            .items
            .iter()
            .map(|r| r.id)
            .collect()
    }

    fn count(&self, entity: &str) -> u64 {
        block(
            self.svc
                .store()
                .count(self.tenant, entity::entity(entity).unwrap(), &Filter::All),
        )
        .unwrap()
    }

    fn writes_seen(&self) -> (usize, usize) {
        let audit = block(self.svc.store().audit(
            self.tenant,
            &AuditQuery {
                limit: u32::MAX,
                ..Default::default()
            },
        ))
        .unwrap();
        let events = block(self.svc.store().events(self.tenant, 0, u32::MAX)).unwrap();
        (audit.len(), events.len())
    }
}

fn codes_of(e: &Error) -> Vec<(String, String)> {
    e.field_errors()
        .iter()
        .map(|f| (f.path.clone(), f.code.clone()))
        .collect()
}

pub fn create_get_round_trip<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(
        &f.sales_a,
        json!({"first_name": " Ann ", "last_name": "Lee", "email": "ANN@EXAMPLE.COM", "phone": "555-123-4567",
               "source": "Referral", "estimated_value": "18,250.50", "project_type": "roof_replacement",
               "tags": ["Storm", "vip"], "latitude": 45.5, "notes": "back gate"}),
    );
    let got = block(f.svc.get(&f.sales_a, "lead", lead.id)).unwrap();
    assert_eq!(got, lead);
    assert_eq!(got.str("first_name"), Some("Ann"));
    assert_eq!(got.str("email"), Some("ann@example.com"));
    assert_eq!(got.str("phone"), Some("+15551234567"));
    assert_eq!(
        got.get("estimated_value"),
        Some(&Value::Money(crate::value::Money(1_825_050)))
    );
    assert_eq!(
        got.id_of("owner_id"),
        f.sales_a.user_id,
        "owner defaults to the creator"
    );
    assert_eq!(got.get("latitude"), Some(&Value::Number(45.5)));
    assert!(got.get("score").and_then(Value::as_i64).is_some());
    assert_eq!(got.id.get_version_num(), 7, "ids are UUIDv7");
    let json = got.to_json();
    let back = Record::from_json(&LEAD, f.tenant, &json, &Default::default()).unwrap();
    assert_eq!(back, got, "model <-> JSON round trip");
}

pub fn validation_reports_every_field_and_writes_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let err = block(f.svc.create(
        &f.admin,
        "lead",
        &obj(json!({"email": "x@", "source": "pigeon", "estimated_value": "-5", "score": 100})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "validation");
    assert_eq!(
        codes_of(&err),
        vec![
            ("email".into(), codes::INVALID_EMAIL.into()),
            ("estimated_value".into(), codes::TOO_SMALL.into()),
            ("score".into(), codes::READ_ONLY.into()),
            ("source".into(), codes::INVALID_OPTION.into()),
        ]
    );
    let err = block(
        f.svc
            .create(&f.admin, "lead", &obj(json!({"first_name": "A", "status": "nope"}))),
    )
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("status".into(), codes::INVALID_OPTION.into())],
        "status must be a pipeline stage"
    );
    assert_eq!((f.count("lead"), f.writes_seen()), before);
}

pub fn stale_version_is_a_conflict<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let v2 = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 1, &obj(json!({"notes": "first"}))),
    )
    .unwrap();
    assert_eq!(v2.version, 2);
    let err = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 1, &obj(json!({"notes": "second"}))),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // The store itself refuses a stale write even if a caller skipped the service's check.
    let mut stale = lead.clone();
    stale.version = 2;
    stale.set("notes", "sneaky");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Update {
        record: stale,
        expected_version: 1,
    });
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let now = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    assert_eq!((now.version, now.str("notes")), (2, Some("first")));
}

pub fn other_tenants_ids_are_not_found<S: Store>(store: S) {
    let f = Fixture::new(store);
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other Movers"})))).unwrap();
    let theirs = block(
        f.svc
            .create(&Actor::system(other.id), "lead", &obj(json!({"first_name": "Zed"}))),
    )
    .unwrap();
    for actor in [&f.admin, &f.manager, &f.sales_a] {
        let err = block(f.svc.get(actor, "lead", theirs.id)).unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = block(f.svc.update(actor, "lead", theirs.id, 1, &obj(json!({"notes": "x"})))).unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = block(f.svc.delete(actor, "lead", theirs.id, 1)).unwrap_err();
        // Sales may not delete at all: refused before any lookup, so nothing leaks either way.
        assert_eq!(
            err.code(),
            if actor.role.name == "sales" {
                "forbidden"
            } else {
                "not_found"
            }
        );
    }
    assert!(f.ids(&f.admin, "lead", "").is_empty());
    // A reference to another tenant's record is unknown, not followed.
    let err = block(f.svc.create(
        &f.admin,
        "activity",
        &obj(json!({"kind": "call", "occurred_at": "2025-05-01", "lead_id": theirs.id.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("lead_id".into(), codes::UNKNOWN_REFERENCE.into())]
    );
}

pub fn field_tech_sees_only_assigned_records<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tech = f.tech.user_id.unwrap().to_string();
    let mine = f.lead(&f.admin, json!({"first_name": "Mine", "owner_id": tech}));
    let other = f.lead(
        &f.admin,
        json!({"first_name": "Other", "owner_id": f.sales_a.user_id.unwrap().to_string()}),
    );
    assert_eq!(f.ids(&f.tech, "lead", ""), vec![mine.id]);
    assert_eq!(
        block(f.svc.get(&f.tech, "lead", other.id)).unwrap_err().code(),
        "not_found"
    );
    let act = |lead: Id, owner: &str| {
        block(f.svc.create(&f.admin, "activity", &obj(json!({"kind": "visit", "occurred_at": "2025-05-30T10:00:00Z", "lead_id": lead.to_string(), "owner_id": owner}))))
            .unwrap()
    };
    let my_act = act(mine.id, &tech);
    act(other.id, &f.sales_a.user_id.unwrap().to_string());
    assert_eq!(f.ids(&f.tech, "activity", ""), vec![my_act.id]);
    // May move their lead along and log a visit, but not touch other fields or other leads.
    block(f.svc.update(
        &f.tech,
        "lead",
        mine.id,
        mine.version,
        &obj(json!({"status": "contacted", "notes": "on site"})),
    ))
    .unwrap();
    let err = block(
        f.svc
            .update(&f.tech, "lead", mine.id, 2, &obj(json!({"estimated_value": "1"}))),
    )
    .unwrap_err();
    assert_eq!(err, Error::forbidden("update", "lead", vec!["estimated_value".into()]));
    let logged = block(f.svc.log_activity(
        &f.tech,
        &obj(json!({"kind": "check_in", "occurred_at": "2025-06-01T11:00:00Z", "lead_id": mine.id.to_string()})),
    ))
    .unwrap();
    assert_eq!(logged.id_of("owner_id"), f.tech.user_id);
    let err = block(f.svc.log_activity(
        &f.tech,
        &obj(json!({"kind": "note", "occurred_at": "2025-06-01", "lead_id": other.id.to_string()})),
    ))
    .unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("lead_id".into(), codes::UNKNOWN_REFERENCE.into())],
        "cannot probe leads it cannot see"
    );
}

pub fn staff_may_update_only_notes<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = block(f.svc.create(
        &f.admin,
        "contact",
        &obj(json!({"first_name": "Kim", "email": "kim@example.com"})),
    ))
    .unwrap();
    let ok = block(
        f.svc
            .update(&f.staff, "contact", c.id, 1, &obj(json!({"notes": "prefers evenings"}))),
    )
    .unwrap();
    assert_eq!((ok.version, ok.str("notes")), (2, Some("prefers evenings")));
    let before = (block(f.svc.get(&f.admin, "contact", c.id)).unwrap(), f.writes_seen());
    let err = block(f.svc.update(
        &f.staff,
        "contact",
        c.id,
        2,
        &obj(json!({"notes": "x", "email": "evil@example.com"})),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        Error::forbidden("update", "contact", vec!["email".into()]),
        "Forbidden names the field"
    );
    let err = block(
        f.svc
            .update(&f.staff, "contact", c.id, 2, &obj(json!({"custom": {"anything": "x"}}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert_eq!(
        block(f.svc.create(&f.staff, "contact", &obj(json!({"first_name": "New"}))))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        (block(f.svc.get(&f.admin, "contact", c.id)).unwrap(), f.writes_seen()),
        before,
        "denied writes change nothing"
    );
}

pub fn sales_cannot_read_other_teams_leads<S: Store>(store: S) {
    let f = Fixture::new(store);
    let a = f.lead(&f.sales_a, json!({"first_name": "North lead"}));
    let b = f.lead(&f.sales_b, json!({"first_name": "South lead"}));
    let team_a = f.sales_a.team_id.unwrap().to_string();
    let mate = f.lead(
        &f.admin,
        json!({"first_name": "Mate", "owner_id": f.tech.user_id.unwrap().to_string(), "team_id": team_a}),
    );
    let mut mine = f.ids(&f.sales_a, "lead", "");
    mine.sort();
    let mut want = vec![a.id, mate.id];
    want.sort();
    assert_eq!(mine, want, "own team's leads only");
    assert_eq!(f.ids(&f.sales_b, "lead", ""), vec![b.id]);
    assert!(f.ids(&f.sales_a, "lead", "\"South lead\"").is_empty());
    assert_eq!(
        block(f.svc.get(&f.sales_a, "lead", b.id)).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.update(&f.sales_a, "lead", b.id, 1, &obj(json!({"notes": "x"}))))
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        block(
            f.svc
                .update(&f.sales_a, "lead", mate.id, 1, &obj(json!({"notes": "x"})))
        )
        .unwrap_err()
        .code(),
        "forbidden",
        "reads team, edits own"
    );
    let err = block(f.svc.update(
        &f.sales_a,
        "lead",
        a.id,
        1,
        &obj(json!({"owner_id": f.sales_b.user_id.unwrap().to_string()})),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden", "cannot hand a lead out of its own scope");
    assert_eq!(
        block(f.svc.create(&f.tech, "lead", &obj(json!({"first_name": "x"}))))
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

pub fn hidden_fields_are_absent_and_rejected_in_filters<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kim"})))).unwrap();
    let seen = block(f.svc.get(&f.staff, "contact", c.id)).unwrap();
    assert!(seen.get("lifetime_value").is_none());
    assert!(seen.to_json().get("lifetime_value").is_none(), "absent from results");
    assert!(seen.to_json().get("first_name").is_some());
    let err = block(f.svc.list(
        &f.staff,
        "contact",
        &ListRequest {
            q: Some("lifetime_value>0".into()),
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err, Error::forbidden("read", "contact", vec!["lifetime_value".into()]));
    let err = block(f.svc.list(
        &f.staff,
        "contact",
        &ListRequest {
            sort: vec![SortKey::desc("lifetime_value")],
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let mut out = Vec::new();
    assert_eq!(
        block(
            f.svc
                .export_csv(&f.staff, "contact", &ExportOptions::default(), &mut out)
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

pub fn keyset_pages_are_complete_and_ordered<S: Store>(store: S) {
    let f = Fixture::new(store);
    for i in 0..57 {
        let value = if i % 5 == 0 {
            Json::Null
        } else {
            json!(format!("{}", (i * 7919) % 23 * 1000))
        };
        f.lead(&f.admin, json!({"first_name": format!("L{i}"), "estimated_value": value, "source": if i % 2 == 0 { "referral" } else { "website" }}));
    }
    for sort in [
        vec![SortKey::desc("estimated_value")],
        vec![SortKey::asc("estimated_value"), SortKey::desc("first_name")],
        vec![],
    ] {
        let mut seen: Vec<Record> = Vec::new();
        let mut req = ListRequest {
            limit: Some(10),
            sort: sort.clone(),
            q: Some("source:referral,website".into()),
            ..Default::default()
        };
        loop {
            let page = block(f.svc.list(&f.admin, "lead", &req)).unwrap();
            assert!(page.items.len() <= 10);
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 57, "every row exactly once with sort {sort:?}");
        let mut expected = seen.clone();
        // The id tiebreak runs in the last key's direction.
        let keys: Vec<SortKey> = if sort.is_empty() {
            vec![SortKey::desc("created_at"), SortKey::desc("id")]
        } else {
            let tie = SortKey {
                field: "id".into(),
                desc: sort.last().unwrap().desc,
            };
            sort.iter().cloned().chain([tie]).collect()
        };
        expected.sort_by(|a, b| {
            keys.iter()
                .map(|k| {
                    let r = LEAD.resolve(&k.field).unwrap();
                    let o = a.value(&r).sort_cmp(&b.value(&r));
                    if k.desc { o.reverse() } else { o }
                })
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        assert_eq!(
            seen.iter().map(|r| r.id).collect::<Vec<_>>(),
            expected.iter().map(|r| r.id).collect::<Vec<_>>()
        );
    }
    let err = block(f.svc.list(
        &f.admin,
        "lead",
        &ListRequest {
            cursor: Some("garbage".into()),
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    let page = block(f.svc.list(
        &f.admin,
        "lead",
        &ListRequest {
            limit: Some(100_000),
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(page.items.len() <= crate::query::MAX_PAGE_SIZE as usize);
}

pub fn store_filters_match_in_memory_evaluation<S: Store>(store: S) {
    let f = Fixture::new(store);
    let tech = f.tech.user_id.unwrap().to_string();
    let rows = [
        json!({"first_name": "Ann", "company_name": "Acme Roofing", "source": "referral", "estimated_value": "20000", "tags": ["vip"], "owner_id": tech}),
        json!({"first_name": "Bob", "company_name": "acme roofing llc", "source": "website", "priority": "high"}),
        json!({"first_name": "Cy", "email": "cy@50off.test", "company_name": "50%_off\\ roofs", "source": "door_knock", "estimated_value": "500", "tags": ["storm", "vip"]}),
        json!({"last_name": "O'Neil_x", "source": "other", "notes": "100% sure"}),
        json!({"company_name": "Zed Co", "status": "contacted", "estimated_value": "7500"}),
    ];
    for r in rows {
        f.lead(&f.admin, r);
    }
    let all: Vec<Record> = block(
        f.svc
            .store()
            .query(f.tenant, &LEAD, &StoreQuery::by_id(Filter::All, 1000)),
    )
    .unwrap();
    for q in [
        "status:new",
        "-status:new",
        "source:referral,website",
        "estimated_value>=7500",
        "estimated_value<1000",
        "-estimated_value>1000",
        "estimated_value:*",
        "-estimated_value:*",
        "\"acme roofing\"",
        "acme",
        "tags:vip",
        "-tags:storm",
        "company_name^acme",
        "first_name~n",
        "notes~%",
        "last_name~_x",
        "owner:me",
        "priority:high OR source:other",
        "(source:referral OR source:website) -tags:vip",
        "created>2025-01-01",
        "email~50",
        "NOT first_name:Ann",
        "company_name~%_",
        "company_name~\\\\",
        "company_name^50%",
    ] {
        let got = f.ids(&f.tech_admin(), "lead", q);
        let bound = f.bound(q);
        let c = Compiled::compile(&bound, &LEAD).unwrap();
        let mut want: Vec<&Record> = all.iter().filter(|r| c.matches(r)).collect();
        want.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        assert_eq!(got, want.iter().map(|r| r.id).collect::<Vec<_>>(), "query {q}");
    }
}

impl<S: Store> Fixture<S> {
    /// An admin acting as the field tech's user id (so `owner:me` means the tech), with admin scope.
    fn tech_admin(&self) -> Actor {
        Actor {
            user_id: self.tech.user_id,
            ..self.admin.clone()
        }
    }

    fn bound(&self, q: &str) -> Filter {
        let vctx = crate::validate::Ctx {
            now: NOW,
            phone_country_code: "1".into(),
        };
        let custom = Default::default();
        let cx = crate::query::BindCtx {
            def: &LEAD,
            custom: &custom,
            readable: &|_| true,
            me: self.tech.user_id,
            vctx: &vctx,
        };
        crate::query::bind(crate::query::text::parse(q).unwrap(), &cx).unwrap()
    }
}

pub fn audit_chain_verifies_with_old_and_new_values<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "notes": "a"}));
    f.clock.advance_micros(1_000_000);
    block(f.svc.update(
        &f.sales_a,
        "lead",
        lead.id,
        1,
        &obj(json!({"notes": "b", "priority": "high"})),
    ))
    .unwrap();
    let trail = block(f.svc.audit_trail(
        &f.manager,
        &AuditQuery {
            entity: Some("lead".into()),
            entity_id: Some(lead.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(
        trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["create", "update"]
    );
    let upd = &trail[1];
    assert_eq!(upd.actor, f.sales_a.user_id);
    assert_eq!(upd.at, Timestamp(NOW.0 + 1_000_000));
    let notes = upd.changes.iter().find(|c| c.field == "notes").unwrap();
    assert_eq!((notes.old.clone(), notes.new.clone()), (json!("a"), json!("b")));
    assert!(
        upd.changes
            .iter()
            .any(|c| c.field == "priority" && c.old == json!("medium") && c.new == json!("high"))
    );
    let all = block(f.svc.store().audit(
        f.tenant,
        &AuditQuery {
            limit: u32::MAX,
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(all.len() >= 9);
    assert_eq!(
        all.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(verify_chain(&all), Ok(()));
    let mut tampered = all.clone();
    tampered[3].changes.clear();
    assert_eq!(verify_chain(&tampered), Err(tampered[3].seq), "tampering is detected");
    let report = block(f.svc.integrity_check(&f.admin)).unwrap();
    assert_eq!((report.audit_entries, report.audit_broken_at), (all.len() as u64, None));
}

pub fn events_are_sequenced_and_filtered<S: Store>(store: S) {
    let f = Fixture::new(store);
    let a = f.lead(&f.sales_a, json!({"first_name": "North"}));
    f.lead(&f.sales_b, json!({"first_name": "South"}));
    let all = block(f.svc.events_since(&f.admin, 0, 1000)).unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(all.last().unwrap().kind, "lead.created");
    let tail = block(f.svc.events_since(&f.admin, all.len() as u64 - 1, 1000)).unwrap();
    assert_eq!(tail.len(), 1);
    let sales_view: Vec<_> = block(f.svc.events_since(&f.sales_a, 0, 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.entity == "lead")
        .collect();
    assert_eq!(
        sales_view.iter().map(|e| e.entity_id).collect::<Vec<_>>(),
        vec![Some(a.id)],
        "only what the reader may read"
    );
    assert!(
        block(f.svc.events_since(&f.staff, 0, 1000))
            .unwrap()
            .iter()
            .all(|e| e.entity != "lead")
    );
}

const CSV_ROWS: &str = "First Name,Email,Source,Estimated Value,Ignored Col,external_id
Ann,ann@example.com,Referral,\"12,000\",x,A1
Bob,not-an-email,carrier pigeon,abc,y,A2
,,,,z,A3
Cy,cy@example.com,website,900,w,A4
";

pub fn import_dry_run_reports_rows_and_fields<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let r = block(
        f.svc
            .import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &ImportOptions::default()),
    )
    .unwrap();
    assert_eq!((r.rows, r.valid, r.invalid, r.applied), (4, 2, 2, false));
    assert_eq!(r.ignored_columns, vec!["Ignored Col".to_string()]);
    assert_eq!(r.columns.get("First Name").map(String::as_str), Some("first_name"));
    let per_row: Vec<(u64, u64, Vec<(String, String)>)> = r
        .errors
        .iter()
        .map(|e| {
            (
                e.row,
                e.line,
                e.errors.iter().map(|x| (x.path.clone(), x.code.clone())).collect(),
            )
        })
        .collect();
    assert_eq!(
        per_row,
        vec![
            (
                2,
                3,
                vec![
                    ("email".into(), "invalid_email".into()),
                    ("estimated_value".into(), "invalid_money".into()),
                    ("source".into(), "invalid_option".into())
                ]
            ),
            (3, 4, vec![("first_name".into(), "required".into())]),
        ]
    );
    assert_eq!((f.count("lead"), f.writes_seen()), before, "a dry run writes nothing");
    assert_eq!(
        block(
            f.svc
                .import_csv(&f.sales_a, "lead", CSV_ROWS.as_bytes(), &ImportOptions::default())
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

pub fn import_modes_and_upsert<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    let all = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &all)).unwrap();
    assert_eq!((r.applied, r.invalid), (false, 2));
    assert_eq!(
        (f.count("lead"), f.writes_seen()),
        before,
        "all-or-nothing with errors writes nothing"
    );
    let some = ImportOptions {
        mode: ImportMode::ValidRowsOnly,
        upsert: true,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &some)).unwrap();
    assert_eq!((r.applied, r.created, r.invalid), (true, 2, 2));
    assert_eq!(f.count("lead"), before.0 + 2);
    let again = "external_id,first_name,estimated_value\nA1,Ann,13000\nA4,Cy,900\nA5,Dee,\nA5,Dup,\n";
    let r = block(f.svc.import_csv(&f.manager, "lead", again.as_bytes(), &some)).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged, r.invalid), (1, 1, 1, 1));
    assert_eq!(r.errors[0].errors[0].code, codes::DUPLICATE);
    let ann = f.ids(&f.manager, "lead", "external_id:A1");
    let ann = block(f.svc.get(&f.manager, "lead", ann[0])).unwrap();
    assert_eq!(
        (ann.version, ann.get("estimated_value").cloned()),
        (2, Some(Value::Money(crate::value::Money(1_300_000))))
    );
    let trail = block(f.svc.audit_trail(
        &f.manager,
        &AuditQuery {
            entity: Some("lead".into()),
            entity_id: Some(ann.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(
        trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["import", "import"]
    );
    let bad_map = ImportOptions {
        mapping: [("First Name".to_string(), "score".to_string())].into(),
        ..Default::default()
    };
    let err = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &bad_map)).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("mapping.First Name".into(), codes::UNKNOWN_FIELD.into())]
    );
}

pub fn export_is_formula_safe_and_redacted<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(
        &f.sales_a,
        json!({"first_name": "=HYPERLINK(\"http://evil\")", "notes": "+1 call", "estimated_value": "12.50"}),
    );
    f.lead(&f.sales_b, json!({"first_name": "Other team"}));
    let mut out = Vec::new();
    let n = block(f.svc.export_csv(
        &f.sales_a,
        "lead",
        &ExportOptions {
            fields: vec!["first_name".into(), "notes".into(), "estimated_value".into()],
            ..Default::default()
        },
        &mut out,
    ))
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(n, 1, "only the exporter's team");
    assert_eq!(
        text,
        "first_name,notes,estimated_value\n\"'=HYPERLINK(\"\"http://evil\"\")\",'+1 call,12.50\n"
    );
    let mut raw = Vec::new();
    block(f.svc.export_csv(
        &f.sales_a,
        "lead",
        &ExportOptions {
            fields: vec!["notes".into()],
            raw: true,
            ..Default::default()
        },
        &mut raw,
    ))
    .unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), "notes\n+1 call\n");
    let mut all = Vec::new();
    assert_eq!(
        block(
            f.svc
                .export_csv(&f.manager, "lead", &ExportOptions::default(), &mut all)
        )
        .unwrap(),
        2
    );
    let header = String::from_utf8(all).unwrap().lines().next().unwrap().to_owned();
    assert!(
        header.starts_with("id,first_name,") && header.contains(",score,"),
        "{header}"
    );
}

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

pub fn bulk_session_rolls_back_on_drop<S: Store>(store: S) {
    let f = Fixture::new(store);
    let before = (f.count("lead"), f.writes_seen());
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(1), NOW);
        r.set("first_name", "Ghost");
        r.set("status", "new");
        r.set("temperature", "cold");
        let mut cs = ChangeSet::new(f.tenant);
        cs.writes.push(Write::Insert(r));
        bulk.apply(cs).await.unwrap();
        assert_eq!(
            bulk.query(&LEAD, &StoreQuery::by_id(Filter::eq("first_name", "Ghost"), 10))
                .await
                .unwrap()
                .len(),
            1,
            "visible inside"
        );
        drop(bulk);
    });
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(2), NOW);
        r.set("first_name", "Kept");
        let mut cs = ChangeSet::new(f.tenant);
        cs.writes.push(Write::Insert(r));
        bulk.apply(cs).await.unwrap();
        bulk.commit().await.unwrap();
    });
    assert_eq!(f.count("lead"), before.0 + 1);
}

/// A deterministic v7 id for records written straight to the store.
pub fn fixed_id(n: u64) -> Id {
    let mut rand = [0u8; 10];
    rand[0] = 0xfe;
    rand[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(NOW.as_millis() as u64, &rand).into_uuid()
}

pub fn unique_fields_are_enforced<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "A", "external_id": "X1"}));
    let before = (f.count("lead"), f.writes_seen());
    let err = block(
        f.svc
            .create(&f.admin, "lead", &obj(json!({"first_name": "B", "external_id": "X1"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    // The store enforces it too, for writers that race past the service's check.
    let mut r = Record::empty(&LEAD, f.tenant, fixed_id(9), NOW);
    r.set("first_name", "C");
    r.set("external_id", "X1");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Insert(r));
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    assert_eq!((f.count("lead"), f.writes_seen()), before);
    // Unique values are checked write by write, as SQL does: swapping two keys in one change set fails.
    let x = f.lead(&f.admin, json!({"first_name": "X", "external_id": "S1"}));
    let y = f.lead(&f.admin, json!({"first_name": "Y", "external_id": "S2"}));
    let (mut x2, mut y2) = (x.clone(), y.clone());
    x2.set("external_id", "S2");
    y2.set("external_id", "S1");
    x2.version += 1;
    y2.version += 1;
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Update {
        record: x2,
        expected_version: x.version,
    });
    cs.writes.push(Write::Update {
        record: y2,
        expected_version: y.version,
    });
    let err = block(f.svc.store().apply(cs)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("external_id".into(), codes::DUPLICATE.into())]);
    assert_eq!(
        block(f.svc.get(&f.admin, "lead", x.id)).unwrap().str("external_id"),
        Some("S1")
    );
    // Other tenants may use the same key.
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other"})))).unwrap();
    block(f.svc.create(
        &Actor::system(other.id),
        "lead",
        &obj(json!({"first_name": "B", "external_id": "X1"})),
    ))
    .unwrap();
}

pub fn integrity_checker_reports_broken_rows<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "Fine"}));
    let mut bad = Record::empty(&LEAD, f.tenant, fixed_id(3), NOW.plus_days(30));
    bad.set("first_name", "Legacy");
    bad.set("status", "imported_somehow");
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Insert(bad.clone()));
    block(f.svc.store().apply(cs)).unwrap();
    let report = block(f.svc.integrity_check(&f.admin)).unwrap();
    let mine: Vec<(&str, &str)> = report
        .issues
        .iter()
        .filter(|i| i.id == bad.id)
        .map(|i| (i.path.as_str(), i.code.as_str()))
        .collect();
    assert_eq!(
        mine,
        vec![
            ("created_at", codes::IN_FUTURE),
            ("temperature", codes::REQUIRED),
            ("status", codes::INVALID_OPTION)
        ]
    );
    assert_eq!(report.issue_count, 3);
    assert!(report.checked.iter().any(|(e, n)| e == "lead" && *n == 2));
    // The broken row can still be edited and fixed field by field.
    block(
        f.svc
            .update(&f.admin, "lead", bad.id, 1, &obj(json!({"notes": "checked"}))),
    )
    .unwrap();
    let err = block(
        f.svc
            .update(&f.admin, "lead", bad.id, 2, &obj(json!({"status": "bogus"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::INVALID_OPTION.into())]);
    block(
        f.svc
            .update(&f.admin, "lead", bad.id, 2, &obj(json!({"status": "new"}))),
    )
    .unwrap();
}

pub fn delete_refuses_records_in_use<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let act = block(f.svc.log_activity(
        &f.admin,
        &obj(json!({"kind": "call", "occurred_at": "2025-05-31", "lead_id": lead.id.to_string()})),
    ))
    .unwrap();
    let err = block(f.svc.delete(&f.admin, "lead", lead.id, lead.version)).unwrap_err();
    assert_eq!(codes_of(&err), vec![("id".into(), codes::IN_USE.into())]);
    block(f.svc.delete(&f.admin, "activity", act.id, 1)).unwrap();
    let lead = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    block(f.svc.delete(&f.admin, "lead", lead.id, lead.version)).unwrap();
    assert_eq!(
        block(f.svc.get(&f.admin, "lead", lead.id)).unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.delete(&f.sales_a, "team", f.sales_a.team_id.unwrap(), 1))
            .unwrap_err()
            .code(),
        "forbidden"
    );
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

pub fn derived_writes_skip_moved_rows<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann"}));
    let i = LEAD.index_of("score").unwrap();
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: 99,
        fields: vec![(i, Value::Int(77))],
    });
    let applied = block(f.svc.store().apply(cs)).unwrap();
    assert_eq!(applied.rows, 0);
    let mut cs = ChangeSet::new(f.tenant);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: 1,
        fields: vec![(i, Value::Int(77))],
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap().rows, 1);
    let now = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    assert_eq!((now.version, now.get("score")), (1, Some(&Value::Int(77))));
}

pub fn decayed_score_explained_and_models_published<S: Store>(store: S) {
    let f = Fixture::new(store);
    // No fit points: only the call counts.
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "other"}));
    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-15).to_rfc3339(), "lead_id": lead.id.to_string()});
    block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    // The default model's inbound call is worth 10 points, decaying linearly to 0 over 30 days.
    let why = block(f.svc.explain_score(&f.sales_a, lead.id, None)).unwrap();
    let lines: Vec<(&str, &str, f64)> = why
        .contributions
        .iter()
        .map(|c| (c.group.as_str(), c.rule.as_str(), c.points))
        .collect();
    assert_eq!(
        lines,
        vec![("engagement", "inbound_call", 5.0)],
        "15 days into a 30-day decay: half the points"
    );
    assert_eq!((why.score, why.temperature.as_str()), (5, "cold"));
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

pub fn sessions_keys_and_secrets<S: Store>(store: S) {
    let fx = Fixture::new(store);
    let svc = &fx.svc;
    let t = fx.tenant;
    let tom = fx.tech.user_id.unwrap();
    block(async {
        // Passwords: an admin sets one; it is found by sign-in email, never by an unknown one.
        let phc = |p: &str| -> crate::Result<String> { Ok(format!("$argon2id${p}")) };
        svc.set_password(&fx.admin, tom, "phc-one-long-enough", &phc)
            .await
            .unwrap();
        let cred = svc.stored_credential(t, "TOM@acme.test").await.unwrap().unwrap();
        assert_eq!(
            (cred.user_id, cred.password_hash.as_str()),
            (tom, "$argon2id$phc-one-long-enough")
        );
        assert_eq!(svc.stored_credential(t, "nobody@acme.test").await.unwrap(), None);
        // Someone else's password needs tenant-wide user updates.
        let e = svc
            .set_password(&fx.sales_a, tom, "phc-x-long-enough", &phc)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "forbidden");

        // Sessions: rotation, reuse detection, sign-out on password change, expiry.
        let later = Timestamp(NOW.0 + 86_400_000_000);
        let (sid, actor) = svc.start_session(t, tom, "hash-1", later).await.unwrap();
        assert_eq!(actor.user_id, Some(tom));
        svc.session_actor(t, sid, tom).await.unwrap();
        assert_eq!(
            svc.session_actor(t, sid, fx.staff.user_id.unwrap())
                .await
                .unwrap_err()
                .code(),
            "not_found"
        );
        svc.refresh_session(t, sid, "hash-1", "hash-2", later).await.unwrap();
        let reused = svc.refresh_session(t, sid, "hash-1", "hash-3", later).await;
        assert_eq!(reused.unwrap_err().code(), "not_found");
        assert!(
            svc.session_actor(t, sid, tom).await.is_err(),
            "a replayed refresh token ends the session"
        );
        let (s2, _) = svc.start_session(t, tom, "hash-4", later).await.unwrap();
        svc.set_password(&fx.tech, tom, "phc-two-long-enough", &phc)
            .await
            .unwrap();
        assert!(
            svc.session_actor(t, s2, tom).await.is_err(),
            "a password change signs sessions out"
        );
        let (s3, _) = svc
            .start_session(t, tom, "hash-5", Timestamp(NOW.0 + 1_000_000))
            .await
            .unwrap();
        svc.session_actor(t, s3, tom).await.unwrap();
        fx.clock.advance_micros(2_000_000);
        assert!(svc.session_actor(t, s3, tom).await.is_err(), "expired");
        let (s4, _) = svc.start_session(t, tom, "hash-6", later).await.unwrap();
        svc.end_session(&fx.tech, s4).await.unwrap();
        assert!(svc.session_actor(t, s4, tom).await.is_err(), "signed out");
        assert_eq!(
            svc.entity("session").unwrap_err().code(),
            "not_found",
            "internal types are not generic"
        );

        // API keys: bound to a role no stronger than the creator's, usable by hash only.
        let sam = fx.sales_a.user_id.unwrap();
        let e = svc
            .create_api_key(&fx.sales_a, "ci", Some("admin"), None, "kh")
            .await
            .unwrap_err();
        assert_eq!(e, Error::forbidden("create", "api_key", vec!["role".into()]));
        let key = svc
            .create_api_key(&fx.sales_a, "ci", None, None, "key-hash-1")
            .await
            .unwrap();
        assert!(key.to_json().get("key_hash").is_none());
        let as_key = svc.api_key_actor(t, key.id, "key-hash-1").await.unwrap();
        assert_eq!((as_key.user_id, as_key.role.name.as_str()), (Some(sam), "sales"));
        assert!(svc.api_key_actor(t, key.id, "key-hash-2").await.is_err());
        assert!(svc.api_key_actor(fx.sales_b.tenant, key.id, "key-hash-1").await.is_ok());
        let gen_create = svc
            .create(&fx.admin, "api_key", &obj(json!({"name": "x"})))
            .await
            .unwrap_err();
        assert_eq!(gen_create.code(), "forbidden");
        let u = svc.get(&fx.admin, "user", sam).await.unwrap();
        svc.update(&fx.admin, "user", sam, u.version, &obj(json!({"active": false})))
            .await
            .unwrap();
        assert!(
            svc.api_key_actor(t, key.id, "key-hash-1").await.is_err(),
            "deactivated owner"
        );

        // Webhooks: the secret is stored for signing, never shown; delivery state is recorded.
        let hook = svc
            .create_webhook(
                &fx.admin,
                &obj(json!({"url": "https://hooks.example.test/crm", "events": ["lead.*"]})),
                "s3cret-s3cret-s3cret",
            )
            .await
            .unwrap();
        assert!(hook.to_json().get("secret").is_none());
        assert_eq!(
            svc.create_webhook(
                &fx.sales_a,
                &obj(json!({"url": "https://x.test"})),
                "s3cret-s3cret-s3cret"
            )
            .await
            .unwrap_err()
            .code(),
            "forbidden"
        );
        let targets = svc.webhook_targets(t).await.unwrap();
        assert_eq!(targets.len(), 1);
        let start = targets[0].delivered_seq;
        assert!(start > 0, "starts after its own creation");
        assert!(targets[0].wants("lead.created") && !targets[0].wants("contact.created"));
        assert_eq!(targets[0].secret, "s3cret-s3cret-s3cret");
        fx.lead(&fx.admin, json!({"first_name": "Hook", "source": "website"}));
        let fail = crate::service::Delivery::Failed {
            seq: start + 1,
            status: Some(500),
            error: "server error".into(),
        };
        let policy = crate::delivery::RetryPolicy::default();
        let retry = svc.record_delivery(&targets[0], &fail, &policy, 0).await.unwrap();
        assert_eq!(
            retry,
            Some(Timestamp(svc.now().0 + 1_000_000)),
            "first retry a second later"
        );
        let t1 = svc.webhook_targets(t).await.unwrap().remove(0);
        assert_eq!((t1.delivered_seq, t1.attempts, t1.next_attempt_at), (start, 1, retry));
        assert!(svc.due_webhooks(t).await.unwrap().is_empty(), "waiting for the retry");
        svc.record_delivery(
            &t1,
            &crate::service::Delivery::Delivered {
                seq: start + 1,
                status: 200,
            },
            &policy,
            0,
        )
        .await
        .unwrap();
        let t2 = svc.webhook_targets(t).await.unwrap().remove(0);
        assert_eq!(
            (t2.delivered_seq, t2.attempts, t2.next_attempt_at),
            (start + 1, 0, None)
        );

        // No secret reaches the audit log or the outbox.
        let audit = svc
            .store()
            .audit(
                t,
                &AuditQuery {
                    limit: u32::MAX,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let events = svc.store().events(t, 0, u32::MAX).await.unwrap();
        let dump = format!(
            "{}{}",
            serde_json::to_string(&audit).unwrap(),
            serde_json::to_string(&events).unwrap()
        );
        for secret in ["phc-one", "phc-two", "hash-1", "hash-2", "key-hash-1", "s3cret"] {
            assert!(!dump.contains(secret), "{secret} leaked");
        }
        assert!(verify_chain(&audit).is_ok());
    });
}

// ---- the local change-set log (stores built with the log on, but the first case) ----

impl<S: Store> Fixture<S> {
    /// The tenant's pending sync log entries after `after`.
    pub fn pending(&self, after: u64) -> Vec<SyncEntry> {
        block(self.svc.store().pending_changes(self.tenant, after, u32::MAX)).unwrap()
    }

    fn last_sync_seq(&self) -> u64 {
        self.pending(0).last().map_or(0, |e| e.seq)
    }
}

pub fn sync_log_is_off_by_default<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(&f.admin, json!({"first_name": "Ann"}));
    assert!(f.pending(0).is_empty(), "a store logs only when asked to");
    assert_eq!(block(f.svc.store().mark_synced(f.tenant, u64::MAX)).unwrap(), 0);
}

pub fn sync_log_records_change_sets_in_order<S: Store>(store: S) {
    let f = Fixture::new(store);
    let start = f.last_sync_seq();
    assert!(start >= 8, "the fixture's own writes are logged: {start}");
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann", "source": "referral"}));
    block(
        f.svc
            .update(&f.sales_a, "lead", lead.id, 1, &obj(json!({"notes": "gate code 12"}))),
    )
    .unwrap();
    let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-1).to_rfc3339(), "lead_id": lead.id.to_string()});
    let act = block(f.svc.log_activity(&f.sales_a, &obj(call))).unwrap();
    block(f.svc.delete(&f.admin, "activity", act.id, 1)).unwrap();

    let log = f.pending(start);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (start + 1..=start + 4).collect::<Vec<_>>(),
        "one entry per change set, in commit order"
    );
    let ops: Vec<(&str, SyncOp, u64)> = log
        .iter()
        .flat_map(|e| e.writes.iter())
        .map(|w| (w.entity.as_str(), w.op, w.expected_version))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("lead", SyncOp::Insert, 0),
            ("lead", SyncOp::Update, 1),
            ("activity", SyncOp::Insert, 0),
            ("activity", SyncOp::Delete, 1),
        ],
        "derived writes (the lead's re-scores) are not logged"
    );
    let (create, update) = (&log[0], &log[1]);
    assert_eq!(create.writes[0].id, lead.id);
    assert_eq!(
        (create.actor, create.at, create.tenant),
        (f.sales_a.user_id, NOW, f.tenant)
    );
    assert_eq!(create.change_set.get_version_num(), 7, "change sets have UUIDv7 ids");
    let p = &create.writes[0].patch;
    assert_eq!(
        (p.get("first_name"), p.get("source"), p.get("status")),
        (Some(&json!("Ann")), Some(&json!("referral")), Some(&json!("new")))
    );
    assert_eq!(p.get("owner_id"), Some(&json!(f.sales_a.user_id.unwrap().to_string())));
    assert!(
        !p.contains_key("last_name") && !p.contains_key("id") && !p.contains_key("version"),
        "an insert's patch holds the non-null fields: {p:?}"
    );
    assert!(
        !p.contains_key("score") && !p.contains_key("temperature"),
        "derived fields are re-derived by whoever applies: {p:?}"
    );
    assert_eq!(
        update.writes[0].patch,
        obj(json!({"notes": "gate code 12"})),
        "an update's patch holds the changed fields"
    );
    assert_eq!(log[3].actor, None, "the system acted");
    assert!(log[3].writes[0].patch.is_empty());
    let mut ids: Vec<Id> = log.iter().map(|e| e.change_set).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    // The entry names the audit entries and events its change set produced.
    let audit = block(f.svc.store().audit(
        f.tenant,
        &AuditQuery {
            entity_id: Some(lead.id),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(create.audit, vec![audit[0].id]);
    assert_eq!(update.audit, vec![audit[1].id]);
    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    let created = events
        .iter()
        .find(|e| e.kind == "lead.created" && e.entity_id == Some(lead.id))
        .unwrap();
    assert_eq!(create.events, vec![created.id]);
    let logged_call: Vec<&str> = log[2]
        .events
        .iter()
        .map(|id| events.iter().find(|e| e.id == *id).unwrap().kind.as_str())
        .collect();
    assert_eq!(logged_call[0], "activity.created");
}

pub fn failed_change_sets_log_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let lead = f.lead(&f.admin, json!({"first_name": "Ann", "external_id": "X1"}));
    let before = f.pending(0);
    let err = block(
        f.svc
            .update(&f.admin, "lead", lead.id, 7, &obj(json!({"notes": "stale"}))),
    )
    .unwrap_err();
    assert_eq!(err.code(), "conflict");
    let err = block(f.svc.create(&f.admin, "lead", &obj(json!({"email": "x@"})))).unwrap_err();
    assert_eq!(err.code(), "validation");
    // Refused by the store itself: a stale update after an insert that went through, and a duplicate key.
    let mut fresh = Record::empty(&LEAD, f.tenant, fixed_id(21), NOW);
    fresh.set("first_name", "New");
    let mut stale = lead.clone();
    stale.version = 5;
    stale.set("notes", "sneaky");
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(22), None, NOW);
    cs.writes.push(Write::Insert(fresh.clone()));
    cs.writes.push(Write::Update {
        record: stale,
        expected_version: 4,
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap_err().code(), "conflict");
    let mut dup = Record::empty(&LEAD, f.tenant, fixed_id(23), NOW);
    dup.set("first_name", "Dup");
    dup.set("external_id", "X1");
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(24), None, NOW);
    cs.writes.push(Write::Insert(dup));
    assert_eq!(block(f.svc.store().apply(cs)).unwrap_err().code(), "validation");
    assert_eq!(f.pending(0), before, "failed change sets log nothing");
    assert!(block(f.svc.store().get(f.tenant, &LEAD, fresh.id)).unwrap().is_none());
    // A change set of derived writes only (re-scoring) has nothing to replay.
    let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(25), None, NOW);
    cs.writes.push(Write::Derived {
        entity: &LEAD,
        id: lead.id,
        expected_version: lead.version,
        fields: vec![(LEAD.index_of("score").unwrap(), Value::Int(99))],
    });
    assert_eq!(block(f.svc.store().apply(cs)).unwrap().rows, 1);
    assert_eq!(f.pending(0), before, "derived-only change sets are not logged");
}

pub fn mark_synced_removes_entries_up_to_a_seq<S: Store>(store: S) {
    let f = Fixture::new(store);
    let base = f.last_sync_seq();
    for name in ["A", "B", "C"] {
        f.lead(&f.admin, json!({ "first_name": name }));
    }
    assert_eq!(
        block(f.svc.store().pending_changes(f.tenant, base, 2))
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![base + 1, base + 2],
        "after_seq and limit page through the log"
    );
    let removed = block(f.svc.store().mark_synced(f.tenant, base + 2)).unwrap();
    assert_eq!(removed, base + 2, "everything up to and including the seq");
    let left = f.pending(0);
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![base + 3]);
    assert_eq!(left[0].writes[0].patch.get("first_name"), Some(&json!("C")));
    assert_eq!(
        block(f.svc.store().mark_synced(f.tenant, base + 2)).unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(block(f.svc.store().mark_synced(f.tenant, u64::MAX)).unwrap(), 1);
    assert!(f.pending(0).is_empty());
    f.lead(&f.admin, json!({"first_name": "D"}));
    assert_eq!(
        f.pending(0).iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![base + 4],
        "sequence numbers are never reused"
    );
}

pub fn sync_log_is_per_tenant<S: Store>(store: S) {
    let f = Fixture::new(store);
    let other = block(f.svc.create_organization(&obj(json!({"name": "Other Movers"})))).unwrap();
    let theirs = block(
        f.svc
            .create(&Actor::system(other.id), "lead", &obj(json!({"first_name": "Zed"}))),
    )
    .unwrap();
    let ours_before = f.pending(0);
    let log = block(f.svc.store().pending_changes(other.id, 0, u32::MAX)).unwrap();
    assert_eq!(
        log.iter().map(|e| (e.seq, e.tenant)).collect::<Vec<_>>(),
        vec![(1, other.id), (2, other.id)],
        "each tenant has its own sequence"
    );
    assert_eq!(log[1].writes[0].id, theirs.id);
    assert!(
        ours_before
            .iter()
            .all(|e| e.tenant == f.tenant && e.writes.iter().all(|w| w.id != theirs.id))
    );
    assert_eq!(block(f.svc.store().mark_synced(other.id, u64::MAX)).unwrap(), 2);
    assert_eq!(f.pending(0), ours_before, "marking one tenant leaves the others");
    f.lead(&f.admin, json!({"first_name": "Ours"}));
    assert!(
        block(f.svc.store().pending_changes(other.id, 0, u32::MAX))
            .unwrap()
            .is_empty()
    );
}

pub fn bulk_sessions_log_per_change_set_and_rollbacks_log_nothing<S: Store>(store: S) {
    let f = Fixture::new(store);
    let base = f.last_sync_seq();
    let insert = |n: u64, name: &str| {
        let mut r = Record::empty(&LEAD, f.tenant, fixed_id(n), NOW);
        r.set("first_name", name);
        r.set("status", "new");
        r.set("temperature", "cold");
        let mut cs = ChangeSet::new(f.tenant).with_origin(fixed_id(100 + n), None, NOW);
        cs.writes.push(Write::Insert(r));
        cs
    };
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        bulk.apply(insert(1, "Ghost")).await.unwrap();
        drop(bulk);
    });
    assert_eq!(f.last_sync_seq(), base, "a rolled-back session logs nothing");
    block(async {
        let mut bulk = f.svc.store().bulk(f.tenant).await.unwrap();
        bulk.apply(insert(2, "Kept")).await.unwrap();
        // A change set that fails inside the session logs nothing either.
        bulk.apply(insert(2, "Again")).await.unwrap_err();
        bulk.apply(insert(3, "Also kept")).await.unwrap();
        bulk.commit().await.unwrap();
    });
    let log = f.pending(base);
    assert_eq!(
        log.iter().map(|e| (e.seq, e.change_set)).collect::<Vec<_>>(),
        vec![(base + 1, fixed_id(102)), (base + 2, fixed_id(103))],
        "one entry per change set of the session"
    );
    // Imports: all-or-nothing with bad rows rolls back and logs nothing; a good import logs its
    // chunk of rows as one change set.
    let all = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &all)).unwrap();
    assert!(!r.applied);
    assert_eq!(f.last_sync_seq(), base + 2);
    let valid = ImportOptions {
        mode: ImportMode::ValidRowsOnly,
        ..Default::default()
    };
    let r = block(f.svc.import_csv(&f.manager, "lead", CSV_ROWS.as_bytes(), &valid)).unwrap();
    assert_eq!(r.created, 2);
    let log = f.pending(base + 2);
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].actor,
            log[0].writes.len(),
            log[0].audit.len(),
            log[0].events.len()
        ),
        (f.manager.user_id, 2, 2, 1)
    );
    assert!(log[0].writes.iter().all(|w| w.op == SyncOp::Insert));
}
