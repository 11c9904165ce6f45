//! Token formats. Access tokens are JWTs (HS256 only, iss/aud/exp/nbf checked) naming the tenant,
//! user and session. Refresh tokens and API keys are opaque: they name the tenant and the record,
//! and carry 256 random bits of which only a SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_core::value::Id;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ISSUER: &str = "crm-server";
pub const AUDIENCE: &str = "crm-api";
/// API keys start with this, so a leaked one is recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "crmk_";
pub const REFRESH_PREFIX: &str = "crmr_";

/// Fills a buffer from the operating system's random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS source failing is unrecoverable for a server that mints credentials.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// A new random secret, URL-safe.
pub fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// Hex SHA-256 of a high-entropy secret (refresh tokens, API keys). Such secrets need no slow hash.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `crmk_<tenant>_<key id>_<secret>` / `crmr_<tenant>_<session id>_<secret>`.
pub fn opaque(prefix: &str, tenant: Id, id: Id, secret: &str) -> String {
    format!("{prefix}{}_{}_{secret}", tenant.simple(), id.simple())
}

/// Splits an opaque token into tenant, record id and secret.
pub fn parse_opaque(prefix: &str, token: &str) -> Option<(Id, Id, String)> {
    let rest = token.strip_prefix(prefix)?;
    let mut parts = rest.splitn(3, '_');
    let tenant = Id::try_parse(parts.next()?).ok()?;
    let id = Id::try_parse(parts.next()?).ok()?;
    let secret = parts.next()?;
    (secret.len() >= 32).then(|| (tenant, id, secret.to_owned()))
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: Id,
    /// Tenant (organization) id.
    pub org: Id,
    /// Session id: deleting the session revokes the token on the next request.
    pub sid: Id,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs and checks access tokens with one pinned algorithm.
pub struct Jwt {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwt(HS256)")
    }
}

impl Jwt {
    pub fn new(secret: &[u8]) -> Jwt {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Jwt {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, tenant: Id, user: Id, session: Id, now_s: i64, ttl_s: i64) -> String {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user,
            org: tenant,
            sid: session,
            iat: now_s,
            nbf: now_s,
            exp: now_s + ttl_s,
        };
        // Encoding HS256 claims of plain types cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc).unwrap_or_default()
    }

    /// The claims of a valid token; `None` for anything else (forged, `alg: none`, another algorithm,
    /// expired, not yet valid, wrong issuer or audience).
    pub fn check(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let (t, u, s) = (Id::now_v7(), Id::now_v7(), Id::now_v7());
        let tok = jwt.issue(t, u, s, now(), 60);
        let c = jwt.check(&tok).unwrap();
        assert_eq!((c.org, c.sub, c.sid), (t, u, s));
        // Wrong key, expired, alg none, tampered payload.
        let other = Jwt::new(b"another-secret-another-secret-xx");
        assert!(other.check(&tok).is_none());
        assert!(jwt.check(&jwt.issue(t, u, s, now() - 3600, 60)).is_none());
        let parts: Vec<&str> = tok.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(jwt.check(&format!("{none_header}.{}.", parts[1])).is_none());
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: Id::now_v7(),
                ..c.clone()
            })
            .unwrap(),
        );
        assert!(jwt.check(&format!("{}.{forged}.{}", parts[0], parts[2])).is_none());
    }

    #[test]
    fn opaque_tokens_parse() {
        let (t, id, s) = (Id::now_v7(), Id::now_v7(), random_secret());
        let tok = opaque(API_KEY_PREFIX, t, id, &s);
        assert_eq!(parse_opaque(API_KEY_PREFIX, &tok), Some((t, id, s)));
        assert_eq!(parse_opaque(REFRESH_PREFIX, &tok), None);
        assert_eq!(parse_opaque(API_KEY_PREFIX, "crmk_x_y_z"), None);
    }
}
