//! Idempotency keys: a client names a write with a key it chooses, and a repeat of the same request
//! with the same key gets the first request's answer instead of writing again. So a client that
//! lost an answer (a timeout, a dropped connection) may retry any write safely.
//!
//! The rules, decided here for every face:
//! - a key is 1 to 255 visible ASCII characters, and belongs to one caller: the tenant and the API
//!   key, or the tenant and the user (two callers may use the same key for different requests);
//! - a request is identified by a fingerprint of what the face says makes it the same request (the
//!   server: method, path and query, `If-Match`, body); the same key with another fingerprint is a
//!   validation error (`idempotency_key_reused`), never a replay of an unrelated answer;
//! - while the first request runs, a repeat is a conflict on `idempotency_key` (try again later);
//! - an answer is remembered when it is final ([`remembered`]: not a failure underneath, not a
//!   "slow down"), for [`KEY_TTL_SECS`]; otherwise the key is released and a repeat runs anew,
//!   which is safe because such a request wrote nothing;
//! - a key whose first request never settled (the process died between its write and storing the
//!   answer) stays claimed until it expires: a repeat is refused, never run twice.

use crate::access::Actor;
use crate::error::{Error, FieldError, Result};
use crate::service::Service;
use crate::store::Store;
use crate::value::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long an answer (or a claim) is kept: a day, the window in which clients retry.
pub const KEY_TTL_SECS: i64 = 24 * 3600;

/// The longest key.
pub const MAX_KEY_LEN: usize = 255;

/// The answer a face gave to a request, as it will give it again: a status and what the face
/// needs to rebuild it (the server: selected headers and the body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A key as the store keeps it (see [`Store::idempotency_claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub expires_at: Timestamp,
    /// `None` while the first request still runs.
    pub answer: Option<Answer>,
}

/// An answer stored by the same transaction as the writes it answers ([`ChangeSet::settle`]): the
/// claimed key (still unanswered) gets `answer` and lives until `expires_at`. If the key is not
/// there unanswered (its claim expired and another run took it, or it was answered meanwhile), the
/// store refuses the whole change set with [`claim_lost`]: the writes and their answer land
/// together or not at all, so a process dying between the two cannot leave either alone.
///
/// [`ChangeSet::settle`]: crate::change::ChangeSet::settle
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settle {
    pub caller: String,
    pub key: String,
    pub answer: Answer,
    pub expires_at: Timestamp,
}

/// The error a store gives for a change set whose [`Settle`] found its key gone or answered.
pub fn claim_lost(key: &str) -> Error {
    Error::Conflict {
        entity: CLAIM_ENTITY.into(),
        id: key.to_owned(),
        expected: 0,
        actual: 0,
    }
}

/// Whether `e` is [`claim_lost`] (not a record's conflict: retrying cannot help).
pub fn is_claim_lost(e: &Error) -> bool {
    matches!(e, Error::Conflict { entity, .. } if entity == CLAIM_ENTITY)
}

const CLAIM_ENTITY: &str = "idempotency_key";

/// A key this caller now holds for its request: settle it with [`Service::idempotency_settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub tenant: Id,
    pub caller: String,
    pub key: String,
}

/// What to do with a request that carries a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begin {
    /// First time: run it, then settle the claim with its answer.
    Run(Claim),
    /// Seen before: give this answer, run nothing.
    Replay(Answer),
}

/// Whether an answer with this status is final and remembered: successes and refusals of the
/// request itself are; failures underneath (5xx), rate limiting (429) and request timeouts (408) are
/// not, since the same request may succeed later and nothing was written.
pub fn remembered(status: u16) -> bool {
    status < 500 && status != 429 && status != 408
}

/// The fingerprint of a request from the parts a face says identify it (hashed, so the store
/// keeps no body).
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a key's form: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Validation(vec![FieldError::new(
            "idempotency_key",
            "invalid_idempotency_key",
            format!("an idempotency key is 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )]));
    }
    Ok(())
}

/// Who a key belongs to: the API key the actor acts through, else the user (the system actor of
/// a tenant is one caller).
pub fn caller(actor: &Actor, api_key: Option<Id>) -> String {
    match (api_key, actor.user_id) {
        (Some(k), _) => format!("api_key:{k}"),
        (None, Some(u)) => format!("user:{u}"),
        (None, None) => "system".to_owned(),
    }
}

impl<S: Store> Service<S> {
    /// Starts a request carrying idempotency key `key` (see the module's rules): run it, replay the
    /// remembered answer, or refuse (`idempotency_key_reused`; a conflict while the first runs).
    pub async fn idempotency_begin(
        &self,
        actor: &Actor,
        api_key: Option<Id>,
        key: &str,
        fingerprint: &str,
    ) -> Result<Begin> {
        check_key(key)?;
        let now = self.now();
        let caller = caller(actor, api_key);
        let expires = Timestamp(now.0.saturating_add(KEY_TTL_SECS * 1_000_000));
        let found = self
            .store()
            .idempotency_claim(actor.tenant, &caller, key, fingerprint, now, expires)
            .await?;
        let Some(found) = found else {
            return Ok(Begin::Run(Claim {
                tenant: actor.tenant,
                caller,
                key: key.to_owned(),
            }));
        };
        if found.fingerprint != fingerprint {
            return Err(Error::Validation(vec![FieldError::new(
                "idempotency_key",
                "idempotency_key_reused",
                "this idempotency key was used for a different request",
            )]));
        }
        match found.answer {
            Some(a) => Ok(Begin::Replay(a)),
            None => Err(Error::Conflict {
                entity: "idempotency_key".into(),
                id: key.to_owned(),
                expected: 0,
                actual: 0,
            }),
        }
    }

    /// Settles a claim with the request's answer: remembered if [`remembered`], else released so a
    /// repeat runs anew.
    pub async fn idempotency_settle(&self, claim: &Claim, answer: Answer) -> Result<()> {
        let keep = remembered(answer.status).then_some(&answer);
        self.store()
            .idempotency_settle(claim.tenant, &claim.caller, &claim.key, keep)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_statuses_and_fingerprints() {
        assert!(check_key("a-b_c.1~X").is_ok());
        for bad in ["", "with space", "tab\t", "é", &"k".repeat(256)] {
            let e = check_key(bad).unwrap_err();
            assert_eq!(e.field_errors()[0].code, "invalid_idempotency_key", "{bad:?}");
        }
        assert!(remembered(201) && remembered(422) && remembered(409) && remembered(404));
        assert!(!remembered(503) && !remembered(500) && !remembered(429) && !remembered(408));
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"x"]), fingerprint(&[b"x"]));
    }
}
