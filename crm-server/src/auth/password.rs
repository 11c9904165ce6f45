//! Password hashing: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane), stored as PHC strings,
//! computed on the blocking pool with a cap on how many run at once (each costs ~19 MiB and tens of
//! milliseconds, so unbounded hashing is a memory and CPU denial of service). The policy (length) is
//! the core's: [`crm_core::validate::check_password`]; passwords are never truncated.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet, argon2id minimum: m=19456 KiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19_456;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    // Constant, valid parameters.
    #[allow(clippy::expect_used)]
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with a fresh 128-bit salt.
pub fn hash_now(password: &str) -> String {
    let salt = SaltString::encode_b64(&super::tokens::random_bytes(16)).unwrap_or_else(|_| unreachable!());
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Checks a password against a PHC string (parameters are read from the string, so hashes made with
/// older parameters still verify).
pub fn verify_now(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => hasher().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, so that a sign-in for an unknown user costs what a real one does.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_now(&super::tokens::random_secret()))
}

/// Runs hashing on the blocking pool, at most `permits` at once; callers beyond wait their turn.
#[derive(Clone, Debug)]
pub struct Hashing {
    permits: Arc<Semaphore>,
}

impl Hashing {
    pub fn new(max: usize) -> Hashing {
        Hashing {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let _permit = self.permits.acquire().await.map_err(|_| ApiError::Unavailable(1))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| ApiError::Unavailable(1))
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || hash_now(&password)).await
    }

    /// Verifies against `phc`, or against a decoy when there is no stored hash (always false then).
    pub async fn verify(&self, password: String, phc: Option<String>) -> ApiResult<bool> {
        self.run(move || match phc {
            Some(p) => verify_now(&password, &p),
            None => {
                verify_now(&password, decoy());
                false
            }
        })
        .await
    }
}

/// The core's password use cases call this to hash (after they checked the policy), on the blocking
/// pool like every hash.
impl crm_core::service::PasswordHasher for Hashing {
    fn hash(&self, password: &str) -> impl std::future::Future<Output = crm_core::Result<String>> + Send {
        let (me, password) = (self.clone(), password.to_owned());
        async move {
            me.hash(password)
                .await
                .map_err(|_| crm_core::Error::unavailable(1, "password hashing is unavailable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_at_owasp_minimum_and_not_truncated() {
        let long = "x".repeat(1000);
        let h = hash_now(&long);
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_now(&long, &h));
        let mut almost = long.clone();
        almost.push('y');
        assert!(!verify_now(&almost, &h), "a longer password is a different password");
        assert!(!verify_now(&long[..999], &h));
        assert!(!verify_now("anything", "not a phc string"));
    }
}
