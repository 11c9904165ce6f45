//! Conformance cases of quotes: exact totals read back identically, the approval workflow that no
//! edit, copy or role slips past, revisions, and lifetime value.

use super::{Fixture, NOW, block, codes_of, obj};
use crate::access::Actor;
use crate::error::codes;
use crate::record::Record;
use crate::service::ChildOp;
use crate::store::Store;
use crate::value::{Money, Value};
use serde_json::{Value as Json, json};

fn contact<S: Store>(f: &Fixture<S>, actor: &Actor) -> Record {
    block(f.svc.create(
        actor,
        "contact",
        &obj(json!({"first_name": "Carla", "last_name": "Client"})),
    ))
    .unwrap()
}

fn set_org<S: Store>(f: &Fixture<S>, patch: Json) {
    let org = block(f.svc.get(&f.admin, "organization", f.tenant)).unwrap();
    block(
        f.svc
            .update(&f.admin, "organization", f.tenant, org.version, &obj(patch)),
    )
    .unwrap();
}

/// A quote for `customer` with the given lines (one batch), as `actor`.
fn quote<S: Store>(f: &Fixture<S>, actor: &Actor, customer: &Record, extra: Json, lines: &[Json]) -> Record {
    let mut input = obj(json!({"contact_id": customer.id.to_string(), "valid_until": "2025-06-30"}));
    input.extend(obj(extra));
    let q = block(f.svc.create(actor, "quote", &input)).unwrap();
    let ops: Vec<ChildOp> = lines
        .iter()
        .map(|l| ChildOp::Create {
            entity: "quote_line".into(),
            input: obj(l.clone()),
        })
        .collect();
    block(f.svc.write_children(actor, "quote", q.id, q.version, &ops)).unwrap()
}

fn lines_of<S: Store>(f: &Fixture<S>, actor: &Actor, q: &Record) -> Vec<Record> {
    block(f.svc.children(actor, "quote", q.id))
        .unwrap()
        .into_iter()
        .find(|(d, _)| d.name == "quote_line")
        .map(|(_, rows)| rows)
        .unwrap_or_default()
}

fn money(r: &Record, field: &str) -> String {
    r.get(field)
        .map(|v| v.to_json().as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn step<S: Store>(f: &Fixture<S>, actor: &Actor, q: &Record, name: &str, input: Json) -> crate::error::Result<Record> {
    block(f.svc.transition(actor, "quote", q.id, q.version, name, &obj(input)))
}

/// The shared fixture set (`crm-core/testdata/quote_totals.json`), written through the service and
/// read back from the store: every line and total as expected, under each rounding policy.
pub fn quote_totals_follow_the_policy_and_read_back_exactly<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = contact(&f, &f.sales_a);
    let fixtures: Vec<Json> = serde_json::from_str(include_str!("../../testdata/quote_totals.json")).unwrap();
    for fx in fixtures {
        let name = fx["name"].as_str().unwrap();
        let p = &fx["policy"];
        set_org(
            &f,
            json!({"quote_rounding": p["rounding"], "quote_rounding_mode": p["mode"], "prices_include_tax": p["prices_include_tax"]}),
        );
        let discount = match fx.get("discount") {
            Some(Json::Object(d)) if d.contains_key("percent") => json!({"discount_percent": d["percent"]}),
            Some(Json::Object(d)) => json!({"discount_amount": d["amount"]}),
            _ => json!({}),
        };
        let lines: Vec<Json> = fx["lines"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut l = l.clone();
                l["description"] = json!(format!("Line {i}"));
                l
            })
            .collect();
        let written = quote(&f, &f.sales_a, &c, discount, &lines);
        let q = block(f.svc.get(&f.sales_a, "quote", written.id)).unwrap();
        assert_eq!(q.values, written.values, "{name}: read back as written");
        let e = &fx["expected"];
        for field in ["subtotal", "discount_total", "tax_total", "total"] {
            assert_eq!(money(&q, field), e[field].as_str().unwrap(), "{name}: {field}");
        }
        let taxes = q.get("taxes").unwrap().to_json();
        let norm = |j: &Json| -> Vec<(String, String, String)> {
            j.as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let rate = crate::decimal::parse(t["rate"].as_str().unwrap())
                        .unwrap()
                        .normalize()
                        .to_string();
                    (
                        rate,
                        t["base"].as_str().unwrap().into(),
                        t["tax"].as_str().unwrap().into(),
                    )
                })
                .collect()
        };
        assert_eq!(norm(&taxes), norm(&e["taxes"]), "{name}: taxes");
        let got = lines_of(&f, &f.sales_a, &q);
        let want = e["lines"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (l, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(l.get("position"), Some(&Value::Int(i as i64 + 1)), "{name}: order kept");
            for field in ["amount", "discount_share", "tax", "total"] {
                assert_eq!(money(l, field), w[field].as_str().unwrap(), "{name}: line {i} {field}");
            }
        }
    }
}

/// The approval bypass catalogue: each attempt is refused and writes nothing.
pub fn quote_approval_cannot_be_bypassed<S: Store>(store: S) {
    let f = Fixture::new(store);
    set_org(
        &f,
        json!({"quote_approval_rules": [
            {"role": "manager", "total_above": "10000", "discount_percent_above": "15"},
            {"role": "admin", "total_above": "50000"}]}),
    );
    let c = contact(&f, &f.sales_a);
    let line = |price: &str| json!({"description": "Move", "quantity": "1", "unit_price": price});

    // Small quotes are approved at once.
    let small = quote(&f, &f.sales_a, &c, json!({}), &[line("900")]);
    let small = step(&f, &f.sales_a, &small, "submit", json!({})).unwrap();
    assert_eq!(small.str("status"), Some("approved"));

    // Self-approval: a manager's own large quote waits for a manager other than its submitter.
    let own = quote(&f, &f.manager, &c, json!({}), &[line("12000")]);
    let own = step(&f, &f.manager, &own, "submit", json!({})).unwrap();
    assert_eq!(
        (own.str("status"), own.str("approval_level")),
        (Some("pending_approval"), Some("manager"))
    );
    let seen = f.writes_seen();
    let err = step(&f, &f.manager, &own, "approve", json!({})).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("submitted_by".into(), codes::SELF_APPROVAL.into())]
    );
    assert_eq!(f.writes_seen(), seen);

    // A role below the level: a 60,000 quote needs an admin.
    let big = quote(&f, &f.sales_a, &c, json!({}), &[line("60000")]);
    let big = step(&f, &f.sales_a, &big, "submit", json!({})).unwrap();
    assert_eq!(big.str("approval_level"), Some("admin"));
    let seen = f.writes_seen();
    let err = step(&f, &f.manager, &big, "approve", json!({})).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("approval_level".into(), codes::APPROVAL_LEVEL.into())]
    );
    // Sales may not approve at all, nor reject without a reason.
    assert_eq!(
        step(&f, &f.sales_a, &big, "approve", json!({})).unwrap_err().code(),
        "forbidden"
    );
    let err = step(&f, &f.admin, &big, "reject", json!({})).unwrap_err();
    assert_eq!(
        codes_of(&err),
        vec![("rejection_reason".into(), codes::REQUIRED.into())]
    );
    assert_eq!(f.writes_seen(), seen);

    // A discount above 15 % needs a manager even on a small total.
    let disc = quote(&f, &f.sales_a, &c, json!({"discount_percent": "20"}), &[line("1000")]);
    let disc = step(&f, &f.sales_a, &disc, "submit", json!({})).unwrap();
    assert_eq!(disc.str("approval_level"), Some("manager"));

    // Approving a stale version: the quote was edited (and so withdrawn) after the approver read it.
    let q = quote(&f, &f.sales_a, &c, json!({}), &[line("12000")]);
    let pending = step(&f, &f.sales_a, &q, "submit", json!({})).unwrap();
    let edited = block(f.svc.update(
        &f.sales_a,
        "quote",
        q.id,
        pending.version,
        &obj(json!({"notes": "2 more boxes"})),
    ))
    .unwrap();
    assert_eq!(edited.str("status"), Some("draft"), "an edit withdraws a pending quote");
    let seen = f.writes_seen();
    assert_eq!(
        step(&f, &f.manager, &pending, "approve", json!({})).unwrap_err().code(),
        "conflict"
    );
    assert_eq!(
        step(&f, &f.manager, &edited, "approve", json!({})).unwrap_err().code(),
        "validation"
    );
    assert_eq!(f.writes_seen(), seen);

    // Editing an approved quote (its lines too) sends it back through approval before it can go out.
    let again = step(&f, &f.sales_a, &edited, "submit", json!({})).unwrap();
    let approved = step(&f, &f.manager, &again, "approve", json!({})).unwrap();
    assert_eq!(approved.str("status"), Some("approved"));
    let line_id = lines_of(&f, &f.sales_a, &approved)[0].id;
    let changed = block(f.svc.write_children(
        &f.sales_a,
        "quote",
        q.id,
        approved.version,
        &[ChildOp::Update {
            entity: "quote_line".into(),
            id: line_id,
            version: 1,
            patch: obj(json!({"unit_price": "15000"})),
        }],
    ))
    .unwrap();
    assert_eq!(changed.str("status"), Some("draft"));
    let seen = f.writes_seen();
    assert_eq!(
        step(&f, &f.sales_a, &changed, "send", json!({})).unwrap_err().code(),
        "validation"
    );
    assert_eq!(f.writes_seen(), seen);

    // Duplicating an approved quote yields a draft that must be approved on its own.
    let copy = step(&f, &f.sales_a, &small, "duplicate", json!({})).unwrap();
    assert_ne!(copy.id, small.id);
    assert_eq!(
        (copy.str("status"), copy.get("revision")),
        (Some("draft"), Some(&Value::Int(1)))
    );
    assert_ne!(copy.get("number"), small.get("number"));
    assert_eq!(money(&copy, "total"), money(&small, "total"));
    assert_eq!(lines_of(&f, &f.sales_a, &copy).len(), 1);
    let seen = f.writes_seen();
    assert_eq!(
        step(&f, &f.sales_a, &copy, "send", json!({})).unwrap_err().code(),
        "validation"
    );
    assert_eq!(f.writes_seen(), seen);

    // A sent quote does not change in place: not its fields, not its lines.
    let sent = step(&f, &f.sales_a, &small, "send", json!({})).unwrap();
    let seen = f.writes_seen();
    let err = block(
        f.svc
            .update(&f.sales_a, "quote", sent.id, sent.version, &obj(json!({"notes": "x"}))),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::LOCKED.into())]);
    let add = ChildOp::Create {
        entity: "quote_line".into(),
        input: obj(line("1")),
    };
    let err = block(
        f.svc
            .write_children(&f.sales_a, "quote", sent.id, sent.version, std::slice::from_ref(&add)),
    )
    .unwrap_err();
    assert_eq!(codes_of(&err), vec![("status".into(), codes::LOCKED.into())]);
    let mut direct = obj(line("1"));
    direct.insert("quote_id".into(), json!(sent.id.to_string()));
    assert!(block(f.svc.create(&f.sales_a, "quote_line", &direct)).is_err());
    assert_eq!(f.writes_seen(), seen);

    // Another team's quote does not exist for a sales user.
    assert_eq!(
        step(&f, &f.sales_b, &sent, "accept", json!({})).unwrap_err().code(),
        "not_found"
    );
    assert!(block(f.svc.get(&f.sales_b, "quote", sent.id)).is_err());
    assert!(f.ids(&f.sales_b, "quote", "").is_empty());

    // An expired quote is not accepted; its state is computed, filterable, and moves with the clock.
    assert!(f.ids(&f.sales_a, "quote", "state:expired").is_empty());
    f.clock.set(NOW.plus_days(30));
    assert_eq!(f.ids(&f.sales_a, "quote", "state:expired"), vec![sent.id]);
    let seen = f.writes_seen();
    let err = step(&f, &f.sales_a, &sent, "accept", json!({})).unwrap_err();
    assert_eq!(codes_of(&err), vec![("valid_until".into(), codes::EXPIRED.into())]);
    assert_eq!(f.writes_seen(), seen);
    assert_eq!(
        block(f.svc.get(&f.sales_a, "quote", sent.id)).unwrap().str("state"),
        Some("expired")
    );
}

/// A revision supersedes a sent quote (which stays readable and unchanged), keeps its number and
/// copies its lines; accepting a quote rolls its total into the customer's lifetime value in the
/// same change set; every transition is audited with its event.
pub fn quote_revisions_and_lifetime_value<S: Store>(store: S) {
    let f = Fixture::new(store);
    let c = contact(&f, &f.sales_a);
    let lines = [
        json!({"description": "Truck, 4 h", "quantity": "4", "unit": "h", "unit_price": "120.00"}),
        json!({"description": "Boxes", "quantity": "30", "unit_price": "2.50", "tax_rate": "8"}),
    ];
    // A quote comes with its lines in one create: every error of both at once, nothing written.
    let seen = f.writes_seen();
    let bad = obj(json!({"valid_until": "2025-06-31", "contact_id": c.id.to_string(),
        "quote_lines": [lines[0], {"description": "Boxes", "quantity": "lots", "unit_price": "2.50"}]}));
    let err = block(f.svc.create(&f.sales_a, "quote", &bad)).unwrap_err();
    let mut got = codes_of(&err);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("quote_lines[1].quantity".into(), codes::INVALID_TYPE.into()),
            ("valid_until".into(), codes::INVALID_DATE.into())
        ]
    );
    assert_eq!(f.writes_seen(), seen);
    let input = obj(
        json!({"title": "Move to Boulder", "valid_until": "2025-06-30", "contact_id": c.id.to_string(), "quote_lines": lines}),
    );
    let q = block(f.svc.create(&f.sales_a, "quote", &input)).unwrap();
    assert_eq!((q.version, lines_of(&f, &f.sales_a, &q).len()), (1, 2));
    assert_eq!(f.writes_seen().0, seen.0 + 3, "one audit entry per row, one change set");
    let q = step(&f, &f.sales_a, &q, "submit", json!({})).unwrap();
    let sent = step(&f, &f.sales_a, &q, "send", json!({})).unwrap();
    let rev = step(&f, &f.sales_a, &sent, "revise", json!({})).unwrap();
    assert_eq!(rev.get("number"), sent.get("number"));
    assert_eq!(
        (rev.get("revision"), rev.str("status")),
        (Some(&Value::Int(2)), Some("draft"))
    );
    assert_eq!(rev.id_of("supersedes_id"), Some(sent.id));
    assert_ne!(rev.str("reference"), sent.str("reference"));
    let old = block(f.svc.get(&f.sales_a, "quote", sent.id)).unwrap();
    assert_eq!(old.str("status"), Some("superseded"));
    assert_eq!(
        money(&old, "total"),
        money(&sent, "total"),
        "the sent document is unchanged"
    );
    assert_eq!(lines_of(&f, &f.sales_a, &old).len(), 2);
    let new_lines = lines_of(&f, &f.sales_a, &rev);
    assert_eq!(new_lines.len(), 2);
    assert!(new_lines.iter().all(|l| l.id_of("quote_id") == Some(rev.id)));
    assert_eq!(money(&rev, "total"), money(&sent, "total"));

    // Accept the revision: the contact's lifetime value is its total.
    let rev = step(&f, &f.sales_a, &rev, "submit", json!({})).unwrap();
    let rev = step(&f, &f.sales_a, &rev, "send", json!({})).unwrap();
    let before = block(f.svc.get(&f.sales_a, "contact", c.id)).unwrap();
    assert_eq!(before.get("lifetime_value").and_then(Value::as_i64).unwrap_or(0), 0);
    let accepted = step(&f, &f.sales_a, &rev, "accept", json!({})).unwrap();
    assert_eq!(accepted.str("status"), Some("accepted"));
    let after = block(f.svc.get(&f.sales_a, "contact", c.id)).unwrap();
    let total = accepted.get("total").cloned().unwrap();
    assert_eq!(after.get("lifetime_value"), Some(&total));
    assert_eq!(total, Value::Money(Money(48_000 + 7_500 + 600)));
    // Final: no further transition, no edit.
    assert!(step(&f, &f.sales_a, &accepted, "decline", json!({})).is_err());

    // Conversion counts the quote once (two revisions, accepted); another team sees nothing.
    use crate::analytics::conversion::ConversionBy;
    let rows = block(f.svc.quote_conversion(&f.sales_a, ConversionBy::Owner)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].sent, rows[0].accepted, rows[0].accepted_value),
        (1, 1, Money(56_100))
    );
    assert_eq!(rows[0].key, f.sales_a.user_id.map(|u| u.to_string()));
    assert!(
        block(f.svc.quote_conversion(&f.sales_b, ConversionBy::Month))
            .unwrap()
            .is_empty()
    );

    // The document the customer reads: tenant, customer, lines (escaped), totals, revision.
    let html = block(f.svc.document(&f.sales_a, "quote", accepted.id)).unwrap();
    for needle in [
        "Acme Roofing",
        "Carla Client",
        "Truck, 4 h",
        "561.00",
        "Revision 2",
        "Q-00001-R2",
        "Tax 8 % on 75.00",
    ] {
        assert!(html.contains(needle), "{needle} in the document");
    }
    assert!(
        !html.contains("<script") && !html.contains("http"),
        "self-contained, no script"
    );
    assert_eq!(
        block(f.svc.document(&f.sales_b, "quote", accepted.id))
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        block(f.svc.document(&f.sales_a, "lead", accepted.id))
            .unwrap_err()
            .code(),
        "validation"
    );

    let events = block(f.svc.store().events(f.tenant, 0, u32::MAX)).unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.kind.as_str())
        .filter(|k| k.starts_with("quote."))
        .collect();
    for k in [
        "quote.submitted",
        "quote.sent",
        "quote.revised",
        "quote.accepted",
        "quote.created",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}
