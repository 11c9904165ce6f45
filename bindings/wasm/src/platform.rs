//! Time and ids from the JS host: crm-core's `system` feature reads the OS clock and random source,
//! which wasm32-unknown-unknown does not have.

use crm_core::clock::{Clock, IdGen};
use crm_core::value::{Id, Timestamp};
use std::sync::Mutex;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// The JS clock (`Date.now()`, millisecond resolution).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsClock;

impl Clock for JsClock {
    fn now(&self) -> Timestamp {
        Timestamp(date_now() as i64 * 1000)
    }
}

/// UUIDv7s with their random part from `crypto.getRandomValues`. Within one millisecond (or if the
/// clock steps back) the previous id's random part is incremented, so ids stay time-ordered.
#[derive(Debug, Default)]
pub struct JsIds(Mutex<(u64, u128)>);

const RAND_BITS: u32 = 80;

impl IdGen for JsIds {
    fn new_id(&self, now: Timestamp) -> Id {
        let ms = now.as_millis().max(0) as u64;
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (ms, rand) = if last.1 != 0 && ms <= last.0 && last.1 + 1 < (1u128 << RAND_BITS) {
            (last.0, last.1 + 1)
        } else {
            let mut buf = [0u8; 10];
            get_random_values(&mut buf);
            let mut r = [0u8; 16];
            r[6..].copy_from_slice(&buf);
            // Leave headroom for increments within the millisecond.
            (ms, (u128::from_be_bytes(r) >> 1).max(1))
        };
        *last = (ms, rand);
        let bytes = rand.to_be_bytes();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&bytes[6..]);
        uuid::Builder::from_unix_timestamp_millis(ms, &tail).into_uuid()
    }
}
