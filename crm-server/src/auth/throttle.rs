//! Failed sign-in throttling, per account and per client address: after `max` failures within
//! `window`, further attempts are refused (429 with Retry-After) until the window ends, even with
//! the right password, so guessing is slow and a lockout cannot be detected by success. Kept in
//! memory per instance (see docs/scaling.md for what that means behind a load balancer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept (bounds memory under a spraying attack).
const SWEEP_AT: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(max: u32, window: Duration) -> Throttle {
        Throttle {
            max: max.max(1),
            window,
            failures: Mutex::default(),
        }
    }

    /// Seconds to wait if any of `keys` is throttled now.
    pub fn blocked(&self, keys: &[&str]) -> Option<u64> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| map.get(*k))
            .filter(|(n, since)| *n >= self.max && now.duration_since(*since) < self.window)
            .map(|(_, since)| (self.window - now.duration_since(*since)).as_secs().max(1))
            .max()
    }

    pub fn failed(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for k in keys {
            let e = map.entry((*k).to_owned()).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, account: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_per_key() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(t.blocked(&["acct", "ip"]), None);
            t.failed(&["acct", "ip"]);
        }
        assert!(t.blocked(&["acct"]).is_some_and(|s| s <= 60));
        assert!(
            t.blocked(&["other", "ip"]).is_some(),
            "the address is throttled for every account"
        );
        assert_eq!(t.blocked(&["other"]), None);
        t.succeeded("acct");
        assert_eq!(t.blocked(&["acct"]), None);
    }
}
