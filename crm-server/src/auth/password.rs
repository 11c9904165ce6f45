//! Password hashing: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane), stored as PHC strings,
//! computed on the blocking pool with a cap on how many run at once (each costs ~19 MiB and tens of
//! milliseconds, so unbounded hashing is a memory and CPU denial of service). The policy (length) is
//! the core's: [`crm_core::validate::check_password`]; passwords are never truncated.
//!
//! The 19 MiB of working memory are reused ([`with_blocks`]): allocated and freed per sign-in, glibc
//! kept them in each blocking thread's arena (a server that had signed in twelve users at once held
//! 243 MiB afterwards).

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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

/// Runs `f` on `count` blocks of working memory taken from a pool, and puts them back. The pool
/// never frees: it holds as many buffers as hashes ever ran at once, which [`Hashing`] caps.
fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
    let taken = POOL.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let mut buf = taken.unwrap_or_default();
    if buf.len() < count {
        buf.resize(count, Block::default());
    }
    let out = f(&mut buf[..count]);
    POOL.lock().unwrap_or_else(PoisonError::into_inner).push(buf);
    out
}

/// The PHC hash of `password` by `argon` with `salt`, its output `len` bytes long.
fn compute<'a>(
    argon: &Argon2<'_>,
    password: &str,
    salt: Salt<'a>,
    len: usize,
) -> password_hash::Result<PasswordHash<'a>> {
    let mut raw = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut raw)?;
    let output = with_blocks(argon.params().block_count(), |blocks| {
        Output::init_with(len, |out| {
            Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)?)
        })
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Hashes with a fresh 128-bit salt.
pub fn hash_now(password: &str) -> String {
    let salt = SaltString::encode_b64(&super::tokens::random_bytes(16)).unwrap_or_else(|_| unreachable!());
    compute(&hasher(), password, salt.as_salt(), Params::DEFAULT_OUTPUT_LEN)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Checks a password against a PHC string (algorithm, version and parameters are read from the
/// string, so hashes made with older parameters still verify; outputs compare in constant time).
pub fn verify_now(password: &str, phc: &str) -> bool {
    let check = || -> password_hash::Result<bool> {
        let h = PasswordHash::new(phc)?;
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
            return Ok(false);
        };
        let argon = Argon2::new(
            Algorithm::try_from(h.algorithm)?,
            Version::try_from(h.version.unwrap_or(Version::V0x13.into()))?,
            Params::try_from(&h)?,
        );
        let got = compute(&argon, password, salt, expected.len())?;
        Ok(got.hash.is_some_and(|g| g == expected))
    };
    check().unwrap_or(false)
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

    /// The pooled-memory hash is the argon2 crate's own: each verifies the other's.
    #[test]
    fn pooled_hashes_are_the_crates_hashes() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mine = hash_now("correct horse battery staple");
        let parsed = PasswordHash::new(&mine).unwrap();
        assert!(
            hasher()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        assert!(
            hasher()
                .verify_password(b"correct horse battery stapl", &parsed)
                .is_err()
        );
        // Older parameters (and another output length) are read from the string.
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, Some(24)).unwrap(),
        );
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let theirs = old.hash_password(b"hunter42 hunter42", &salt).unwrap().to_string();
        assert!(verify_now("hunter42 hunter42", &theirs), "{theirs}");
        assert!(!verify_now("hunter42 hunter43", &theirs));
    }
}
