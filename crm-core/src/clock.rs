//! The injected sources of time and identity. The core never reads the system clock or a random
//! source itself, so the same inputs give the same outputs everywhere and tests can pin time.

use crate::value::{Id, Timestamp};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Tells the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// Makes new record ids. Implementations must return UUIDv7 (time-ordered) ids.
pub trait IdGen: Send + Sync + std::fmt::Debug {
    fn new_id(&self, now: Timestamp) -> Id;
}

/// A clock that stands still until moved: for tests and replays.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self(AtomicI64::new(at.0))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
    pub fn advance_micros(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Deterministic UUIDv7s: the timestamp part from the clock, the random part from a counter.
#[derive(Debug, Default)]
pub struct SeqIds(AtomicU64);

impl SeqIds {
    /// Counting from `n`: a second generator over the same store (another "instance" in a test)
    /// that must not repeat the first one's ids.
    pub fn starting_at(n: u64) -> Self {
        SeqIds(AtomicU64::new(n))
    }
}

impl IdGen for SeqIds {
    fn new_id(&self, now: Timestamp) -> Id {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let mut rand = [0u8; 10];
        rand[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(now.as_millis().max(0) as u64, &rand).into_uuid()
    }
}

#[cfg(feature = "system")]
mod system {
    use super::*;

    /// The operating system's clock.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct SystemClock;

    impl Clock for SystemClock {
        fn now(&self) -> Timestamp {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timestamp(d.as_micros() as i64)
        }
    }

    /// UUIDv7s from the operating system's random source, monotonic within the process: ids made
    /// in the same millisecond (a whole import batch shares one `now`) follow a counter, so they
    /// append to B-tree indexes instead of scattering through them.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct RandomIds;

    static CONTEXT: std::sync::Mutex<uuid::ContextV7> = std::sync::Mutex::new(uuid::ContextV7::new());

    impl IdGen for RandomIds {
        fn new_id(&self, now: Timestamp) -> Id {
            let ts = uuid::Timestamp::from_unix(
                &CONTEXT,
                (now.0.div_euclid(1_000_000)) as u64,
                (now.0.rem_euclid(1_000_000) * 1000) as u32,
            );
            uuid::Uuid::new_v7(ts)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ids_are_monotonic_within_a_millisecond() {
            let now = Timestamp(1_700_000_000_000_000);
            let ids: Vec<Id> = (0..1000).map(|_| RandomIds.new_id(now)).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            assert!(ids.iter().all(|i| i.get_version_num() == 7));
        }
    }
}
#[cfg(feature = "system")]
pub use system::{RandomIds, SystemClock};
