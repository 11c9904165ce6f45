//! Feeds arbitrary bytes to the CSV import (dry run) of a fixed tenant: it must never panic, never
//! write, and its report must add up.
#![no_main]

use crm_core::conformance::{Fixture, block};
use crm_core::memory::MemoryStore;
use crm_core::service::ImportOptions;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FIXTURE: OnceLock<Fixture<MemoryStore>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(|| Fixture::new(MemoryStore::new()));
    for entity in ["lead", "contact", "activity"] {
        match block(f.svc.import_csv(&f.manager, entity, data, &ImportOptions::default())) {
            Ok(r) => {
                assert_eq!(r.rows, r.valid + r.invalid, "every row is valid or reported");
                assert!(!r.applied, "a dry run writes nothing");
            }
            Err(e) => assert!(
                matches!(e.code(), "validation" | "limit_exceeded"),
                "unexpected error kind: {e:?}"
            ),
        }
    }
});
