//! The binding under wasm-bindgen-test, in Node: values and errors crossing the JS boundary.
//! Run with `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test -p crm-wasm --target wasm32-unknown-unknown`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use crm_wasm::{
    LocalDb, access, approval_level, is_crm_error, normalize, parse_filter, quote_totals, score_lead, validate,
};
use serde_json::{Value as Json, json};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn js(j: Json) -> JsValue {
    j.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap()
}

fn rs(v: JsValue) -> Json {
    serde_wasm_bindgen::from_value(v).unwrap()
}

fn prop(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

use serde::Serialize;

const NOW: &str = "2025-06-01T12:00:00Z";

#[wasm_bindgen_test]
fn validation_reports_every_field_with_codes_and_paths() {
    let input = json!({"email": "x@", "source": "pigeon", "estimated_value": "-5", "score": 100});
    let out = rs(validate("lead", js(input), Some(js(json!({"now": NOW})))).unwrap());
    assert_eq!(out["ok"], json!(false));
    let got: Vec<(String, String)> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().into(), e["code"].as_str().unwrap().into()))
        .collect();
    let want = [
        ("email", "invalid_email"),
        ("estimated_value", "too_small"),
        ("score", "read_only"),
        ("source", "invalid_option"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[wasm_bindgen_test]
fn normalize_returns_canonical_values_money_as_strings() {
    let input = json!({"first_name": " Ann ", "email": "ANN@Example.COM", "phone": "(303) 555-0123", "estimated_value": "18500"});
    let out = rs(normalize("lead", js(input), None).unwrap());
    assert_eq!(
        out,
        json!({"first_name": "Ann", "email": "ann@example.com", "phone": "+13035550123", "estimated_value": "18500.00"})
    );
}

#[wasm_bindgen_test]
fn errors_are_js_errors_with_code_and_fields() {
    let e = normalize("lead", js(json!({"email": "x@"})), None).unwrap_err();
    assert!(e.is_instance_of::<js_sys::Error>());
    assert_eq!(prop(&e, "code").as_string().unwrap(), "validation");
    assert_eq!(rs(prop(&e, "fields"))[0]["path"], json!("email"));
    let e = validate("nope", js(json!({})), None).unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "not_found");
}

#[wasm_bindgen_test]
fn scoring_decays_and_explains() {
    let input = json!({
        "lead": {"first_name": "Ann", "source": "other"},
        "activities": [{"kind": "call", "direction": "inbound", "occurred_at": "2025-05-17T12:00:00Z"}],
        "asOf": NOW,
    });
    let out = rs(score_lead(js(input)).unwrap());
    assert_eq!(
        (out["score"].clone(), out["temperature"].clone()),
        (json!(5), json!("cold"))
    );
    assert_eq!(out["contributions"][0]["rule"], json!("inbound_call"));
    assert_eq!(out["contributions"][0]["points"].as_f64(), Some(5.0));
}

#[wasm_bindgen_test]
fn access_lists_scopes_and_fields() {
    let out = rs(access(JsValue::from_str("sales"), "lead").unwrap());
    assert_eq!(out["role"], json!("sales"));
    assert!(out["actions"]["read"].is_string());
    assert_eq!(out["fields"]["score"]["write"], json!(false));
    let e = access(JsValue::from_str("nobody"), "lead").unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "validation");
}

#[wasm_bindgen_test]
fn filter_parses_to_tree_with_positioned_errors() {
    let out = rs(parse_filter("status:new score>=60").unwrap());
    assert_eq!(
        out["and"][1],
        json!({"cmp": {"field": "score", "op": "ge", "value": "60"}})
    );
    let e = parse_filter("status:").unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "invalid_query");
    assert_eq!(prop(&e, "position").as_f64().unwrap(), 6.0);
}

#[wasm_bindgen_test]
fn local_db_runs_the_service_with_js_clock_and_ids() {
    let db = LocalDb::new(None).unwrap();
    let org = rs(db.create_organization(js(json!({"name": "Acme Roofing"}))).unwrap());
    let admin = json!({"tenant": org["id"]});
    let lead = rs(db
        .create(
            js(admin.clone()),
            "lead",
            js(json!({"first_name": "Ann", "source": "referral", "estimated_value": "18500"})),
        )
        .unwrap());
    assert_eq!(lead["status"], json!("new"));
    assert_eq!(lead["estimated_value"], json!("18500.00"));
    let id = lead["id"].as_str().unwrap();
    assert_eq!(&id[14..15], "7", "UUIDv7 from crypto.getRandomValues");
    let page = rs(db
        .list(js(admin.clone()), "lead", Some(js(json!({"q": "score>=1"}))))
        .unwrap());
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let why = rs(db.explain_score(js(admin.clone()), id, None).unwrap());
    assert_eq!(why["score"], lead["score"]);
    let e = db
        .update(js(admin), "lead", id, 7, js(json!({"notes": "x"})))
        .unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "conflict");
}

#[wasm_bindgen_test]
fn local_db_pinned_clock_and_sequential_ids_are_deterministic() {
    let make = || {
        let db = LocalDb::new(Some(js(json!({"now": NOW, "deterministicIds": true})))).unwrap();
        rs(db.create_organization(js(json!({"name": "Acme"}))).unwrap())
    };
    let (a, b) = (make(), make());
    assert_eq!(a, b);
    assert_eq!(a["created_at"], json!(NOW));
}

#[wasm_bindgen_test]
fn quote_totals_cross_the_boundary_exactly() {
    let fixtures: Vec<Json> =
        serde_json::from_str(include_str!("../../../crm-core/testdata/quote_totals.json")).unwrap();
    for fx in fixtures {
        let discount = fx.get("discount").cloned().map(js);
        let t = rs(quote_totals(js(fx["lines"].clone()), discount, Some(js(fx["policy"].clone()))).unwrap());
        for f in ["subtotal", "discount_total", "tax_total", "total", "lines", "taxes"] {
            assert_eq!(t[f], fx["expected"][f], "{}: {f}", fx["name"]);
        }
    }
    // Omitted discount and policy: none, and the default policy.
    let t = rs(quote_totals(js(json!([{"quantity": "3", "unit_price": "19.99"}])), None, None).unwrap());
    assert_eq!(t["total"], json!("59.97"));
    let e = quote_totals(js(json!([{"quantity": 3}])), None, None).unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "validation");
    assert_eq!(rs(prop(&e, "errors"))[0]["path"], json!("lines[0]"));
}

#[wasm_bindgen_test]
fn approval_level_crosses_the_boundary() {
    let rules = js(json!([{"role": "manager", "total_above": "10000"}]));
    let d = rs(approval_level(rules, js(json!("10000.01")), None).unwrap());
    assert_eq!(d, json!({"level": 0, "role": "manager"}));
    let e = approval_level(js(json!({"role": "manager"})), js(json!("1.00")), None).unwrap_err();
    assert_eq!(prop(&e, "code").as_string().unwrap(), "validation");
}

/// `isCrmError` (the TypeScript guard) is true exactly for what the binding throws for crm-core's
/// errors: a JS Error named CrmError with a string code; not for other errors or look-alike objects.
#[wasm_bindgen_test]
fn is_crm_error_recognises_the_bindings_errors_only() {
    let thrown = normalize("lead", js(json!({"email": "x@"})), None).unwrap_err();
    assert!(is_crm_error(&thrown));
    let query = parse_filter("status:").unwrap_err();
    assert!(is_crm_error(&query));
    assert_eq!(prop(&query, "code"), JsValue::from_str("invalid_query"));
    assert!(!is_crm_error(&js_sys::Error::new("plain").into()));
    let renamed = js_sys::Error::new("no code");
    renamed.set_name("CrmError");
    assert!(!is_crm_error(&renamed.into()), "a CrmError name without a code");
    assert!(!is_crm_error(&js(json!({"name": "CrmError", "code": "validation"}))));
    assert!(!is_crm_error(&JsValue::UNDEFINED));
}
