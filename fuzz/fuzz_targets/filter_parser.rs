//! Fuzzes the text filter language: `parse` must never panic, errors must point at a char boundary
//! inside the input, and every tree it returns must print (`to_text`) and re-parse to itself.
#![no_main]

use crm_core::error::Error;
use crm_core::query::text::{parse, to_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match parse(&input) {
        Ok(f) => {
            if let Some(text) = to_text(&f) {
                assert_eq!(parse(&text), Ok(f.clone()), "{input:?} printed as {text:?}");
                assert_eq!(to_text(&f).as_deref(), Some(text.as_str()));
            }
        }
        Err(Error::InvalidQuery { position, .. }) => {
            assert!(
                position <= input.len() && input.is_char_boundary(position),
                "position {position} in {input:?}"
            );
        }
        Err(Error::LimitExceeded { .. }) => {}
        Err(e) => panic!("unexpected error kind for {input:?}: {e:?}"),
    }
});
