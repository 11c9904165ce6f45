//! Who is calling. Every API request carries `Authorization: Bearer <token>`: an access token (JWT)
//! from a sign-in, or an API key. Either is resolved against the store (session still open, user
//! still active, role as it is now), and the answer is kept by the core's caller cache for
//! `CRM_AUTH_CACHE` seconds: a request whose token is cached goes to the blocking pool once, for its
//! use case, and reads nothing to authenticate. Sign-out, revoked keys, password changes,
//! deactivation and role changes made through this instance take effect on the next request (they
//! clear the tenant's cached callers); made through another instance over the same database, within
//! `CRM_AUTH_CACHE` seconds. The core decides; this module only parses tokens.

pub mod password;
pub mod throttle;
pub mod tokens;

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, ServerStore};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use crm_core::access::Actor;
use crm_core::value::Id;
use tokens::{API_KEY_PREFIX, parse_opaque, sha256_hex};

/// The bearer token of a request, if well-formed.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Any failure to authenticate is `401` without saying why; only a failure of the server (an
/// unavailable or failing database, overload) is not.
pub(crate) fn unauthenticated(e: ApiError) -> ApiError {
    if e.is_server_failure() {
        e
    } else {
        ApiError::Unauthenticated
    }
}

/// An authenticated caller inside a tenant.
#[derive(Debug, Clone)]
pub struct Auth {
    pub actor: Actor,
    /// The sign-in session (access tokens); `None` for API keys.
    pub session: Option<Id>,
    /// The API key the caller authenticated with; `None` for access tokens.
    pub api_key: Option<Id>,
}

impl<S: ServerStore> FromRequestParts<AppState<S>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<S>) -> ApiResult<Auth> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let auth = resolve(app, token).await?;
        let span = tracing::Span::current();
        span.record("tenant", tracing::field::display(auth.actor.tenant));
        if let Some(u) = auth.actor.user_id {
            span.record("user", tracing::field::display(u));
        }
        Ok(auth)
    }
}

/// Resolves a bearer token to its caller, now (long-lived streams call this again to notice
/// sign-out, deactivation and role changes).
pub async fn resolve<S: ServerStore>(app: &AppState<S>, token: &str) -> ApiResult<Auth> {
    if let Some((tenant, key_id, secret)) = parse_opaque(API_KEY_PREFIX, token) {
        let hash = sha256_hex(&secret);
        let cached = app.svc.cached_api_key_actor(tenant, key_id, &hash);
        app.metrics.auth_lookup(cached.is_some());
        let actor = match cached {
            Some(actor) => actor,
            None => app
                .read_by_key(move |svc| async move { svc.api_key_actor(tenant, key_id, &hash).await })
                .await
                .map_err(unauthenticated)?,
        };
        return Ok(Auth {
            actor,
            session: None,
            api_key: Some(key_id),
        });
    }
    let c = app.jwt.check(token).ok_or(ApiError::Unauthenticated)?;
    let cached = app.svc.cached_session_actor(c.org, c.sid, c.sub);
    app.metrics.auth_lookup(cached.is_some());
    let actor = match cached {
        Some(actor) => actor,
        None => app
            .read_by_key(move |svc| async move { svc.session_actor(c.org, c.sid, c.sub).await })
            .await
            .map_err(unauthenticated)?,
    };
    Ok(Auth {
        actor,
        session: Some(c.sid),
        api_key: None,
    })
}

/// The platform super-admin (organizations API), authenticated by the configured admin token.
#[derive(Debug, Clone, Copy)]
pub struct Platform;

impl<S: ServerStore> FromRequestParts<AppState<S>> for Platform {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<S>) -> ApiResult<Platform> {
        let (Some(token), Some(expected)) = (bearer(&parts.headers), app.cfg.admin_token.as_deref()) else {
            return Err(ApiError::Unauthenticated);
        };
        // Compare digests so the comparison time says nothing about the token.
        if sha256_hex(token) == sha256_hex(expected) {
            Ok(Platform)
        } else {
            Err(ApiError::Unauthenticated)
        }
    }
}
