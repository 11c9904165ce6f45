//! Fuzzes typed JSON input (HTTP bodies, Python, mobile, WASM and sync patches all go through it):
//! arbitrary bytes that parse as a JSON object are applied to a new record of every entity type, on
//! create and on update. It must never panic, every refusal must name fields, and an accepted value
//! must survive its own JSON form (`to_json` then `from_json` of the field's type).
#![no_main]

use crm_core::entity;
use crm_core::record::Record;
use crm_core::validate::{self, CustomSpecs, Mode};
use crm_core::value::{Id, Timestamp, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(input)) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let now = Timestamp(1_748_779_200_000_000);
    let ctx = crm_core::tenant::validation_ctx(now, None);
    let custom = CustomSpecs::new();
    for def in entity::all() {
        for mode in [Mode::Create, Mode::Update] {
            let mut rec = Record::empty(def, Id::nil(), Id::from_u128(1), now);
            match validate::apply_input(&mut rec, &input, &custom, &ctx, mode) {
                Ok(_) => {
                    for (i, f) in def.fields.iter().enumerate() {
                        let v = &rec.values[i];
                        if matches!(v, Value::Null) {
                            continue;
                        }
                        let back = Value::from_json(&f.spec.ty, &v.to_json());
                        assert_eq!(
                            back.as_ref(),
                            Some(v),
                            "{}.{} does not survive its JSON form",
                            def.name,
                            f.name
                        );
                    }
                }
                Err(errs) => {
                    assert!(!errs.is_empty(), "a refusal names what it refuses");
                    assert!(errs.iter().all(|e| !e.path.is_empty() && !e.code.is_empty()));
                }
            }
        }
    }
});
