//! Authentication records: password credentials and sign-in sessions (internal: only their own use
//! cases reach them), API keys and webhooks (managed: created by their own use cases).

use super::{EntityRules, WriteCtx, declare};
use crate::address::{self, HostRefusal};
use crate::error::{Error, Result, codes};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(CREDENTIAL, credential);
declare!(SESSION, session);
declare!(API_KEY, api_key);
declare!(WEBHOOK, webhook);

/// A user's password, as a PHC string (`$argon2id$v=19$m=...`). Hashing is the frontend's job (the
/// core has no randomness); the core owns the policy ([`crate::validate::check_password`]) and who may
/// change it.
fn credential() -> EntityDef {
    let mut e = EntityDef::new("credential", "credentials")
        .field(F::new("user_id", T::Ref("user")).required().unique())
        .field(F::new("password_hash", T::Text).secret());
    e.resolves_callers = true;
    e.since = 3;
    e.exposure = Exposure::Internal;
    e
}

/// A signed-in session: what a refresh token renews and what every access token names. Deleting it
/// signs the session out on the next request.
fn session() -> EntityDef {
    let mut e = EntityDef::new("session", "sessions")
        .field(F::new("user_id", T::Ref("user")).required())
        .field(F::new("token_hash", T::Text).secret())
        .field(F::new("expires_at", T::Timestamp).required());
    e.resolves_callers = true;
    e.since = 3;
    e.exposure = Exposure::Internal;
    e.owner_field = Some("user_id");
    e
}

/// A long-lived key for programs, bound to a role no stronger than its creator's. Only a hash of the
/// key is stored; the key itself is shown once, at creation.
fn api_key() -> EntityDef {
    let mut e = EntityDef::new("api_key", "api_keys")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("role", T::Text).max_len(64).read_only())
        .field(F::new("user_id", T::Ref("user")).read_only())
        .field(F::new("expires_at", T::Timestamp).read_only())
        .field(F::new("key_hash", T::Text).secret());
    e.resolves_callers = true;
    e.since = 3;
    e.exposure = Exposure::Managed;
    e.owner_field = Some("user_id");
    e
}

/// Field names of a webhook.
pub mod webhook_fields {
    pub const URL: &str = "url";
    /// The user who created the webhook (stamped by the core): events are delivered as that user
    /// may read them.
    pub const CREATED_BY: &str = "created_by";
}

/// Schema version that adds [`webhook_fields::CREATED_BY`] (the store backfills it from the audit log).
pub const WEBHOOK_CREATOR_SINCE: u32 = 10;

/// An HTTP endpoint that receives the tenant's events, signed with a per-webhook secret. The delivery
/// state (read-only) lets delivery resume after a restart without losing or reordering events. It
/// receives only what its creator may read, redacted as for them; while the creator is deactivated
/// (or deleted) nothing is delivered and nothing is skipped.
///
/// A webhook without a creator was registered by the system itself, with no user acting (a
/// platform operation; at the schema-10 migration, one whose creating audit entry names no user):
/// its receiver is the operator's, and it receives the tenant's events as the system reads them.
/// Every webhook a user or a user's API key registers carries that user, so no user's webhook
/// falls back to the system's reading.
fn webhook() -> EntityDef {
    let mut e = EntityDef::new("webhook", "webhooks")
        .field(F::new(webhook_fields::URL, T::Url).required())
        .field(F::new("events", T::Tags))
        .field(F::new("active", T::Bool).default(true))
        .field(F::new("secret", T::Text).secret())
        .field(F::new("delivered_seq", T::Integer).read_only().default(0i64))
        .field(F::new("attempts", T::Integer).read_only().default(0i64))
        .field(F::new("next_attempt_at", T::Timestamp).read_only())
        .field(F::new("last_status", T::Integer).read_only())
        .field(F::new("last_error", T::Text).read_only())
        .field(
            F::new(webhook_fields::CREATED_BY, T::Ref("user"))
                .read_only()
                .since(WEBHOOK_CREATOR_SINCE),
        );
    e.since = 3;
    e.exposure = Exposure::Managed;
    e.rules = &WebhookRules;
    e
}

/// A webhook's URL must name a public internet address unless the operator allows any
/// ([`crate::address`]); the delivery worker checks the resolved address again.
#[derive(Debug)]
struct WebhookRules;

impl EntityRules for WebhookRules {
    fn check_tenant_rules(&self, rec: &Record, touched: &dyn Fn(&str) -> bool, ctx: &WriteCtx) -> Result<()> {
        if !touched(webhook_fields::URL) {
            return Ok(());
        }
        let url = rec.str(webhook_fields::URL).unwrap_or_default();
        let Some(host) = address::url_host(url) else {
            return Ok(()); // `required` and the URL type report a missing or malformed URL
        };
        address::check_host(host, ctx.addresses).map_err(|refusal| {
            let code = match refusal {
                HostRefusal::Restricted(_) => codes::ADDRESS_NOT_ALLOWED,
                HostRefusal::AmbiguousNumeric => codes::INVALID_URL,
            };
            Error::field(webhook_fields::URL, code, refusal.to_string())
        })
    }
}
