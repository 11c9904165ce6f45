//! Listing and filtering: keyset pages, and store filters against the in-memory evaluator.

use super::{Fixture, NOW, block};
use crate::access::Actor;
use crate::entity::LEAD;
use crate::query::{Compiled, Filter, ListRequest, SortKey, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use serde_json::{Value as Json, json};

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
        let vctx = crate::tenant::validation_ctx_with(NOW, Some("1"));
        let custom = Default::default();
        let cx = crate::query::BindCtx {
            def: &LEAD,
            custom: &custom,
            readable: &|_| true,
            me: self.tech.user_id,
            vctx: &vctx,
            compute: None,
            stages: None,
        };
        crate::query::bind(crate::query::text::parse(q).unwrap(), &cx).unwrap()
    }
}

/// A list that names a custom field filters, sorts and pages it by the type its declaration gives
/// (numbers as numbers, not as text), and a custom field the tenant has not declared is a query
/// error, as an unknown declared field is.
pub fn custom_fields_filter_and_sort_by_their_type<S: Store>(store: S) {
    let f = Fixture::new(store);
    block(f.svc.create(
        &f.admin,
        "custom_field",
        &super::obj(json!({"entity": "lead", "key": "roof_age", "spec": {"type": "number"}})),
    ))
    .unwrap();
    let ages = [5, 40, 12, 25];
    let ids: Vec<_> = ages
        .iter()
        .map(|a| {
            f.lead(
                &f.admin,
                json!({"first_name": format!("A{a}"), "custom": {"roof_age": a}}),
            )
            .id
        })
        .collect();
    let no_age = f.lead(&f.admin, json!({"first_name": "No age"})).id;
    let by_age = |a: i32| ids[ages.iter().position(|x| *x == a).unwrap()];
    let mut got = f.ids(&f.admin, "lead", "custom.roof_age>=20");
    got.sort();
    let mut want = vec![by_age(40), by_age(25)];
    want.sort();
    assert_eq!(got, want, "compared as numbers: \"5\" >= \"20\" as text");

    let mut req = ListRequest {
        limit: Some(2),
        sort: vec![SortKey::asc("custom.roof_age")],
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = block(f.svc.list(&f.admin, "lead", &req)).unwrap();
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<_> = [no_age].into_iter().chain([5, 12, 25, 40].map(by_age)).collect();
    assert_eq!(seen, want, "sorted (nulls first) and paged as numbers");

    let req = ListRequest {
        q: Some("custom.storeys>1".into()),
        ..Default::default()
    };
    let err = block(f.svc.list(&f.admin, "lead", &req)).unwrap_err();
    assert_eq!(err.code(), "invalid_query", "{err:?}");
}

/// A text query's errors found when binding (an unknown field, a value that is not of the field's
/// type, an enum option or a pipeline stage that does not exist) are query errors at the place of
/// the bad term, never an empty answer.
pub fn query_errors_point_at_the_term<S: Store>(store: S) {
    let f = Fixture::new(store);
    f.lead(
        &f.admin,
        json!({"first_name": "Ann", "status": "contacted", "source": "referral"}),
    );
    let err = |q: &str| {
        let req = ListRequest {
            q: Some(q.into()),
            ..Default::default()
        };
        match block(f.svc.list(&f.admin, "lead", &req)) {
            Err(crate::error::Error::InvalidQuery { message, position }) => (position, message),
            other => panic!("{q}: {other:?}"),
        }
    };
    let (pos, msg) = err("score>=60 status:neww");
    assert_eq!(pos, 17, "{msg}");
    assert!(msg.contains("neww is not one of: new, contacted,"), "{msg}");
    assert_eq!(err("status:new,neww").0, 11, "the bad value of a list");
    assert_eq!(err("(status:new OR  bogus:1)").0, 16, "an unknown field, at its name");
    assert_eq!(err("score>=abc").0, 7, "a value of the wrong type");
    let (pos, msg) = err("-source:pigeon");
    assert_eq!(pos, 8);
    assert!(
        msg.contains("pigeon is not one of:") && msg.contains("referral"),
        "{msg}"
    );
    assert_eq!(err("\"é\" score>x").0, 11, "byte offsets in the core");
    // Options match as typed or by their key form; the typed filter is checked the same way.
    assert_eq!(f.ids(&f.admin, "lead", "status:Contacted source:Referral").len(), 1);
    let typed = ListRequest {
        filter: Some(Filter::eq("status", "neww")),
        ..Default::default()
    };
    let e = block(f.svc.list(&f.admin, "lead", &typed)).unwrap_err();
    assert_eq!(e.code(), "invalid_query");
    // A stage of a stored pipeline is a known status.
    block(f.svc.create(
        &f.admin,
        "pipeline",
        &super::obj(json!({"name": "Storm", "stages": [
            {"key": "inspected", "kind": "open"}, {"key": "signed", "kind": "won"}, {"key": "gone", "kind": "lost"}
        ]})),
    ))
    .unwrap();
    assert!(f.ids(&f.admin, "lead", "status:inspected").is_empty());
    assert!(
        f.ids(&f.admin, "lead", "status:new").is_empty(),
        "the built-in stages stay"
    );
    assert!(err("status:neww").1.contains("inspected"));
}
