//! The webhook delivery schedule: when a webhook is due, when a failed attempt is retried, and when an
//! event is given up on. Pure functions of the webhook's retry state and the clock; the frontend that
//! sends (the server's worker) supplies the randomness for the jitter, since the core has none.

use crate::value::Timestamp;

/// How failed deliveries are retried: exponential backoff from `first_delay_secs`, doubling up to
/// `max_delay_secs`, each delay lengthened by up to a quarter (jitter, so that failing receivers are
/// not hit in lockstep), until `max_attempts` attempts at one event have failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts at one event after which it is given up on (at least 1).
    pub max_attempts: u32,
    pub first_delay_secs: u64,
    pub max_delay_secs: u64,
}

impl Default for RetryPolicy {
    /// 8 attempts, 1 s doubling, at most an hour apart.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_delay_secs: 1,
            max_delay_secs: 3600,
        }
    }
}

/// How long a delivery worker's claim on a webhook lasts ([`crate::service::Service::claim_webhook`]):
/// renewed before every attempt, so it must outlast one attempt (the server's request timeout) with
/// room to spare; a worker that died lets another take over after this long.
pub const CLAIM_SECS: i64 = 60;

/// Is a webhook whose next attempt is at `next_attempt_at` (none: not waiting) due at `now`?
pub fn is_due(next_attempt_at: Option<Timestamp>, now: Timestamp) -> bool {
    next_attempt_at.is_none_or(|at| at <= now)
}

/// The delay before the retry that follows failed attempt number `attempts` (1-based), without jitter.
pub fn backoff_secs(policy: &RetryPolicy, attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(63);
    policy
        .first_delay_secs
        .max(1)
        .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX))
        .min(policy.max_delay_secs.max(1))
}

/// After failed attempt number `attempts` at an event (1-based, counting the one that just failed) at
/// `now`: when to try again, or `None` to give up on the event and move on. `jitter_seed` is any
/// random number; it lengthens the delay by up to a quarter.
pub fn next_attempt(policy: &RetryPolicy, attempts: u32, now: Timestamp, jitter_seed: u64) -> Option<Timestamp> {
    if attempts >= policy.max_attempts.max(1) {
        return None;
    }
    let delay = i64::try_from(backoff_secs(policy, attempts))
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let jitter = i64::try_from(jitter_seed % 1024)
        .unwrap_or(0)
        .saturating_mul(delay / 4096);
    Some(Timestamp(now.0.saturating_add(delay).saturating_add(jitter)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000_000);

    #[test]
    fn retries_back_off_with_bounded_jitter_then_give_up() {
        let p = RetryPolicy::default();
        let secs = |a, seed| next_attempt(&p, a, NOW, seed).map(|t| (t.0 - NOW.0) as f64 / 1e6);
        assert_eq!(secs(1, 0), Some(1.0));
        assert_eq!(secs(2, 0), Some(2.0));
        assert_eq!(secs(5, 0), Some(16.0));
        let jittered = secs(5, 1023).unwrap();
        assert!(jittered > 16.0 && jittered < 20.0, "{jittered}");
        assert_eq!(secs(7, 0), Some(64.0));
        assert_eq!(secs(8, 0), None, "the eighth failure gives up");
        let long = RetryPolicy { max_attempts: 100, ..p };
        assert_eq!(backoff_secs(&long, 13), 3600, "capped at an hour");
        assert_eq!(backoff_secs(&long, 99), 3600);
        let once = RetryPolicy { max_attempts: 0, ..p };
        assert_eq!(
            next_attempt(&once, 1, NOW, 0),
            None,
            "at least one attempt, never fewer"
        );
    }

    #[test]
    fn due_when_not_waiting_or_the_time_has_come() {
        assert!(is_due(None, NOW));
        assert!(is_due(Some(NOW), NOW));
        assert!(!is_due(Some(Timestamp(NOW.0 + 1)), NOW));
    }
}
