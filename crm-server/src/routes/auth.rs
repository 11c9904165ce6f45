//! Sign-in, token refresh, sign-out, passwords, the caller's identity, and the two credentials that
//! are shown once: API keys and webhook signing secrets.

use crate::api::{Api, Op, Security, schema_ref};
use crate::auth::Auth;
use crate::auth::tokens::{API_KEY_PREFIX, REFRESH_PREFIX, opaque, parse_opaque, random_secret, sha256_hex};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, PathId};
use crate::routes::records::record_response;
use crate::state::{AppState, ServerStore};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use crm_core::value::{Id, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(deserialize_with = "crm_core::value::deserialize_id")]
    organization: Id,
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    /// Defaults to the creator's role.
    role: Option<String>,
    expires_at: Option<Timestamp>,
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Issues the token pair for a session.
fn tokens<S: ServerStore>(app: &AppState<S>, tenant: Id, user: Id, sid: Id, secret: &str, expires: Timestamp) -> Json {
    let ttl = app.cfg.access_ttl.as_secs() as i64;
    json!({
        "access_token": app.jwt.issue(tenant, user, sid, app.now_s(), ttl),
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": opaque(REFRESH_PREFIX, tenant, sid, secret),
        "refresh_expires_at": expires,
    })
}

async fn login<S: ServerStore>(
    State(app): State<AppState<S>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(req): Body<Login>,
) -> ApiResult<impl IntoResponse> {
    let account = format!("{}/{}", req.organization, req.email.trim().to_lowercase());
    let ip = format!("ip/{}", addr.ip());
    if let Some(wait) = app.throttle.blocked(&[&account, &ip]) {
        return Err(ApiError::TooMany(wait));
    }
    let (tenant, email) = (req.organization, req.email.clone());
    let stored = app
        .run(move |svc| async move { svc.stored_credential(tenant, &email).await })
        .await?;
    let user = stored.as_ref().map(|c| c.user_id);
    let ok = app
        .hashing
        .verify(req.password, stored.map(|c| c.password_hash))
        .await?;
    let Some(user) = user.filter(|_| ok) else {
        app.throttle.failed(&[&account, &ip]);
        tracing::info!(tenant = %tenant, "sign-in failed");
        return Err(ApiError::Unauthenticated);
    };
    app.throttle.succeeded(&account);
    let secret = random_secret();
    let hash = sha256_hex(&secret);
    let expires = Timestamp(app.svc.now().0 + micros(app.cfg.session_ttl));
    let (sid, _) = app
        .write(move |svc| async move { svc.start_session(tenant, user, &hash, expires).await })
        .await
        .map_err(crate::auth::unauthenticated)?;
    Ok(axum::Json(tokens(&app, tenant, user, sid, &secret, expires)))
}

async fn refresh<S: ServerStore>(
    State(app): State<AppState<S>>,
    Body(req): Body<Refresh>,
) -> ApiResult<impl IntoResponse> {
    let (tenant, sid, secret) = parse_opaque(REFRESH_PREFIX, &req.refresh_token).ok_or(ApiError::Unauthenticated)?;
    let presented = sha256_hex(&secret);
    let new_secret = random_secret();
    let new_hash = sha256_hex(&new_secret);
    let expires = Timestamp(app.svc.now().0 + micros(app.cfg.session_ttl));
    let actor = app
        .run(move |svc| async move { svc.refresh_session(tenant, sid, &presented, &new_hash, expires).await })
        .await
        .map_err(crate::auth::unauthenticated)?;
    let user = actor.user_id.ok_or(ApiError::Unauthenticated)?;
    Ok(axum::Json(tokens(&app, tenant, user, sid, &new_secret, expires)))
}

async fn logout<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<StatusCode> {
    let sid = auth
        .session
        .ok_or_else(|| ApiError::BadRequest("API keys do not sign out; delete the key to revoke it".into()))?;
    let actor = auth.actor;
    app.write(move |svc| async move { svc.end_session(&actor, sid).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(req): Body<ChangePassword>,
) -> ApiResult<StatusCode> {
    if auth.session.is_none() {
        return Err(ApiError::Core(crm_core::error::Error::forbidden(
            "update",
            "user",
            vec!["password".into()],
        )));
    }
    let actor = auth.actor.clone();
    let stored = app
        .run(move |svc| async move { svc.own_password_hash(&actor).await })
        .await?;
    if !app.hashing.verify(req.current_password, stored).await? {
        return Err(ApiError::Core(crm_core::error::Error::field(
            "current_password",
            crm_core::error::codes::INVALID_FORMAT,
            "does not match the current password",
        )));
    }
    let actor = auth.actor;
    let user = actor.user_id.ok_or(ApiError::Unauthenticated)?;
    let hasher = app.hashing.clone();
    app.write(move |svc| async move { svc.set_password(&actor, user, &req.new_password, &hasher).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    PathId(user): PathId,
    Body(req): Body<SetPassword>,
) -> ApiResult<StatusCode> {
    let actor = auth.actor;
    let hasher = app.hashing.clone();
    app.write(move |svc| async move { svc.set_password(&actor, user, &req.password, &hasher).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(auth: Auth) -> ApiResult<impl IntoResponse> {
    let a = &auth.actor;
    Ok(axum::Json(json!({
        "organization": a.tenant,
        "user_id": a.user_id,
        "team_id": a.team_id,
        "session": auth.session,
        "role": { "name": a.role.name, "grants": a.role.grants },
    })))
}

async fn create_key<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(req): Body<NewKey>,
) -> ApiResult<impl IntoResponse> {
    let secret = random_secret();
    let hash = sha256_hex(&secret);
    let actor = auth.actor;
    let tenant = actor.tenant;
    let rec = app
        .write(move |svc| async move {
            svc.create_api_key(&actor, &req.name, req.role.as_deref(), req.expires_at, &hash)
                .await
        })
        .await?;
    let key = opaque(API_KEY_PREFIX, tenant, rec.id, &secret);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "key": key, "api_key": rec.to_json() })),
    ))
}

async fn create_webhook<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(input): Body<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    let secret = random_secret();
    let actor = auth.actor;
    let s = secret.clone();
    let rec = app
        .write(move |svc| async move { svc.create_webhook(&actor, &input, &s).await })
        .await?;
    let mut res = record_response(StatusCode::CREATED, &rec, Some(format!("/api/v1/webhooks/{}", rec.id)));
    *res.body_mut() = axum::body::Body::from(json!({ "secret": secret, "webhook": rec.to_json() }).to_string());
    Ok(res)
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    let tokens = schema_ref("Tokens");
    api.add(
        Op::new(
            "post",
            "/api/v1/auth/login",
            "login",
            "auth",
            "Sign in with email and password",
        )
        .security(Security::None)
        .json_body(schema_ref("Login"))
        .ok(200, "Signed in", tokens.clone())
        .errors(&[401, 429]),
        post(login::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/auth/refresh",
            "refresh",
            "auth",
            "Trade a refresh token for new tokens (rotation)",
        )
        .security(Security::None)
        .json_body(schema_ref("RefreshRequest"))
        .ok(200, "New tokens; the old refresh token is spent", tokens)
        .errors(&[401]),
        post(refresh::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/auth/logout",
            "logout",
            "auth",
            "End the current session",
        )
        .no_content("Signed out: the access and refresh tokens stop working")
        .errors(&[400, 404]),
        post(logout::<S>),
    )
    .add(
        Op::new(
            "put",
            "/api/v1/auth/password",
            "change_password",
            "auth",
            "Change your password (signs every session out)",
        )
        .json_body(schema_ref("ChangePassword"))
        .no_content("Changed; sign in again")
        .errors(&[403, 404, 422]),
        put(change_password::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/auth/me",
            "me",
            "auth",
            "The caller: tenant, user, team and role with its grants",
        )
        .ok(200, "The caller", schema_ref("Me")),
        get(me),
    )
    .add(
        Op::new(
            "put",
            "/api/v1/users/{id}/password",
            "set_user_password",
            "users",
            "Set a user's password (admins)",
        )
        .path_id("User id")
        .json_body(schema_ref("SetPassword"))
        .no_content("Set; the user's sessions are signed out")
        .errors(&[403, 404, 422]),
        put(set_password::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/api_keys",
            "create_api_key",
            "api_keys",
            "Create an API key (shown once)",
        )
        .json_body(schema_ref("NewApiKey"))
        .ok(
            201,
            "The key (store it now: only its hash is kept) and its record",
            schema_ref("CreatedApiKey"),
        )
        .errors(&[403, 422]),
        post(create_key::<S>),
    )
    .add(
        Op::new(
            "post",
            "/api/v1/webhooks",
            "create_webhook",
            "webhooks",
            "Register a webhook (its signing secret is shown once)",
        )
        .json_body(schema_ref("WebhookInput"))
        .ok(201, "The signing secret and the webhook", schema_ref("CreatedWebhook"))
        .errors(&[403, 422]),
        post(create_webhook::<S>),
    )
}
