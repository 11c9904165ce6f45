//! Who may act: password credentials, sign-in sessions, API keys and webhook endpoints.
//!
//! The core decides (which user a credential belongs to, whether a session or key is still good,
//! that a key's role is no stronger than its creator's, who may change a password, the password
//! policy); the frontend does the cryptography it owns (argon2id hashing and verification, token
//! generation, JWTs): it hands the core a [`PasswordHasher`] and otherwise only hashes. Every check runs against the store on every request, so sign-out,
//! password changes, deactivation and role changes take effect on the next call; a server may keep
//! the answers for a short window ([`Service::with_caller_cache`], `callers.rs`), and changes made
//! through this service still take effect on the next call.
//!
//! Authentication failures are `NotFound` (no such session, key or credential) or `Forbidden`
//! (deactivated user); frontends map every failure of this step to "unauthenticated" without saying
//! which.

use super::Service;
use super::callers::CallerKey;
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, Event, Write, diff};
use crate::entity;
use crate::error::{Error, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use serde_json::{Map, Value as Json};

/// What a frontend needs to verify a sign-in: the user and their stored password hash (PHC string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredential {
    pub user_id: Id,
    pub password_hash: String,
}

/// A webhook as the delivery worker sees it (including its signing secret).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookTarget {
    pub tenant: Id,
    pub id: Id,
    pub version: u64,
    pub url: String,
    /// Event kinds it receives (`lead.created`, `lead.*`); empty means every kind.
    pub events: Vec<String>,
    pub secret: String,
    /// Every event up to this outbox sequence has been delivered (or given up on).
    pub delivered_seq: u64,
    /// Failed attempts at the next event.
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    /// Whose reading of the events it receives ([`Service::webhook_events`]): the user who created
    /// it, or the system (every event) for one the system created.
    pub created_by: Option<Id>,
}

impl WebhookTarget {
    /// Does this webhook receive events of `kind`?
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty()
            || self.events.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => p == kind,
            })
    }
}

/// The outcome of one delivery attempt, recorded by [`Service::record_delivery`] (which decides,
/// with [`crate::delivery`], when a failed event is retried or given up on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing up to `seq` is for this webhook: move past it.
    Skipped { seq: u64 },
    /// The event at `seq` (and every skipped one before it) is done.
    Delivered { seq: u64, status: u16 },
    /// The attempt at the event at `seq` failed (`status`: the receiver's answer, if any).
    Failed {
        seq: u64,
        status: Option<u16>,
        error: String,
    },
}

/// Hashes a new password (argon2id, PHC string): the frontend's cryptography, handed to the use
/// cases that write a password ([`Service::set_password`], [`Service::create_user_with_password`]),
/// which check the password policy before they call it. A plain function or closure
/// `Fn(&str) -> Result<String>` is a hasher.
pub trait PasswordHasher: Sync {
    fn hash(&self, password: &str) -> impl std::future::Future<Output = Result<String>> + Send;
}

impl<F: Fn(&str) -> Result<String> + Sync> PasswordHasher for F {
    fn hash(&self, password: &str) -> impl std::future::Future<Output = Result<String>> + Send {
        std::future::ready(self(password))
    }
}

/// The password policy ([`crate::validate::check_password`]) as a use case error.
pub(crate) fn check_policy(password: &str) -> Result<()> {
    crate::validate::check_password(password).map_err(|e| Error::Validation(vec![e]))
}

/// Hashes a password that passed the policy; an empty hash is refused (a broken hasher must not
/// leave an account that no password opens, or that any opens).
pub(crate) async fn hash_password(hasher: &impl PasswordHasher, password: &str) -> Result<String> {
    let phc = hasher.hash(password).await?;
    if phc.is_empty() {
        return Err(Error::internal("the password hasher returned nothing"));
    }
    Ok(phc)
}

/// Constant-time comparison of two hashes, so a mismatch position leaks nothing.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S: Store> Service<S> {
    async fn credential_of(&self, tenant: Id, user_id: Id) -> Result<Option<Record>> {
        let q = StoreQuery::by_id(Filter::eq("user_id", user_id), 1);
        Ok(self
            .store
            .query(tenant, &entity::CREDENTIAL, &q)
            .await?
            .into_iter()
            .next())
    }

    /// The stored password hash of the active user with this sign-in email, if they have one.
    /// `None` for an unknown email, a deactivated user or a user without a password; the frontend
    /// should still spend the time of a verification so the three cannot be told apart.
    pub async fn stored_credential(&self, tenant: Id, email: &str) -> Result<Option<StoredCredential>> {
        let actor = match self.actor_by_email(tenant, email).await {
            Ok(a) => a,
            Err(Error::NotFound { .. } | Error::Forbidden { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(user_id) = actor.user_id else {
            return Ok(None);
        };
        let cred = self.credential_of(tenant, user_id).await?;
        Ok(cred
            .and_then(|c| c.str("password_hash").map(str::to_owned))
            .map(|password_hash| StoredCredential { user_id, password_hash }))
    }

    /// The acting user's own stored password hash (to verify the current password before a change).
    pub async fn own_password_hash(&self, actor: &Actor) -> Result<Option<String>> {
        let Some(user_id) = actor.user_id else {
            return Ok(None);
        };
        let cred = self.credential_of(actor.tenant, user_id).await?;
        Ok(cred.and_then(|c| c.str("password_hash").map(str::to_owned)))
    }

    /// Sets a user's password: checks the policy ([`crate::validate::check_password`], error path
    /// `password`), hashes it with the frontend's `hasher` and stores the hash. Users change their
    /// own; changing someone else's takes update rights on users across the tenant. Signs every
    /// session of the user out.
    pub async fn set_password(
        &self,
        actor: &Actor,
        user_id: Id,
        password: &str,
        hasher: &impl PasswordHasher,
    ) -> Result<()> {
        let own = actor.user_id == Some(user_id);
        if !own && actor.role.scope(&entity::USER, Action::Update) != Scope::Tenant {
            return Err(Error::forbidden(
                Action::Update,
                entity::USER.name,
                vec!["password".into()],
            ));
        }
        if !own {
            self.visible(actor, &entity::USER, user_id).await?;
        } else {
            self.store
                .get(actor.tenant, &entity::USER, user_id)
                .await?
                .ok_or_else(|| Error::not_found("user", user_id))?;
        }
        check_policy(password)?;
        let phc = hash_password(hasher, password).await?;
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        self.credential_into(actor, user_id, &phc, &mut cs).await?;
        self.end_sessions_into(actor.tenant, user_id, &mut cs).await?;
        self.apply(cs).await?;
        Ok(())
    }

    /// Adds the write of a user's password hash (insert or replace) with its audit entry.
    pub(crate) async fn credential_into(
        &self,
        actor: &Actor,
        user_id: Id,
        phc: &str,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let now = self.clock.now();
        let old = self.credential_of(actor.tenant, user_id).await?;
        let mut rec = match &old {
            Some(o) => {
                let mut r = o.clone();
                r.version += 1;
                r.updated_at = now;
                r
            }
            None => {
                let mut r = Record::empty(&entity::CREDENTIAL, actor.tenant, self.ids.new_id(now), now);
                r.set("user_id", user_id);
                r
            }
        };
        rec.set("password_hash", Value::Text(phc.to_owned()));
        cs.audit
            .push(self.audit_entry(actor, "password_change", &rec, diff(old.as_ref(), Some(&rec))));
        cs.writes.push(match &old {
            None => Write::Insert(rec),
            Some(o) => Write::Update {
                record: rec,
                expected_version: o.version,
            },
        });
        Ok(())
    }

    async fn end_sessions_into(&self, tenant: Id, user_id: Id, cs: &mut ChangeSet) -> Result<()> {
        let q = StoreQuery::by_id(Filter::eq("user_id", user_id), 10_000);
        for s in self.store.query(tenant, &entity::SESSION, &q).await? {
            cs.writes.push(Write::Delete {
                entity: &entity::SESSION,
                id: s.id,
                expected_version: s.version,
            });
        }
        Ok(())
    }

    /// Starts a session for a user whose password the frontend verified. `token_hash` is the hash of
    /// the refresh token handed to the client. Returns the session id and the signed-in actor.
    pub async fn start_session(
        &self,
        tenant: Id,
        user_id: Id,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(Id, Actor)> {
        let actor = self.actor(tenant, user_id).await?;
        let now = self.clock.now();
        let mut rec = Record::empty(&entity::SESSION, tenant, self.ids.new_id(now), now);
        rec.set("user_id", user_id);
        rec.set("token_hash", Value::Text(token_hash.to_owned()));
        rec.set("expires_at", expires_at);
        let mut cs = self.change_set(tenant, None);
        cs.audit
            .push(self.audit_entry(&actor, "sign_in", &rec, diff(None, Some(&rec))));
        cs.writes.push(Write::Insert(rec.clone()));
        self.apply(cs).await?;
        Ok((rec.id, actor))
    }

    async fn live_session(&self, tenant: Id, session_id: Id) -> Result<Record> {
        let s = self.store.get(tenant, &entity::SESSION, session_id).await?;
        match s {
            Some(s) if s.get("expires_at").and_then(Value::as_timestamp) > Some(self.clock.now()) => Ok(s),
            _ => Err(Error::not_found("session", session_id)),
        }
    }

    /// The actor of a request that carries an access token for `session_id` of `user_id`: the session
    /// must still exist and be unexpired, the user active. Resolved on every request.
    ///
    /// With the caller cache on ([`Service::with_caller_cache`]) the answer is also kept for
    /// [`Service::cached_session_actor`].
    pub async fn session_actor(&self, tenant: Id, session_id: Id, user_id: Id) -> Result<Actor> {
        let epoch = self.caller_epoch(tenant);
        let s = self.live_session(tenant, session_id).await?;
        if s.id_of("user_id") != Some(user_id) {
            return Err(Error::not_found("session", session_id));
        }
        let actor = self.actor(tenant, user_id).await?;
        let key = CallerKey::Session {
            tenant,
            session: session_id,
            user: user_id,
        };
        self.remember_caller(key, epoch, &actor, s.get("expires_at").and_then(Value::as_timestamp));
        Ok(actor)
    }

    /// Renews a session: the presented refresh token's hash must match, and is replaced by
    /// `new_hash` (rotation). A token that was already rotated away ends the session, since only a
    /// copy can present it. Two concurrent renewals: one wins, the other is a `Conflict`.
    pub async fn refresh_session(
        &self,
        tenant: Id,
        session_id: Id,
        presented_hash: &str,
        new_hash: &str,
        expires_at: Timestamp,
    ) -> Result<Actor> {
        let cur = self.live_session(tenant, session_id).await?;
        let user_id = cur
            .id_of("user_id")
            .ok_or_else(|| Error::not_found("session", session_id))?;
        if !same_hash(cur.str("token_hash").unwrap_or_default(), presented_hash) {
            let mut cs = self.change_set(tenant, None);
            cs.audit.push(self.audit_raw(
                &Actor::system(tenant),
                "session_reuse",
                entity::SESSION.name,
                Some(session_id),
                vec![],
            ));
            cs.writes.push(Write::Delete {
                entity: &entity::SESSION,
                id: session_id,
                expected_version: cur.version,
            });
            self.apply(cs).await?;
            return Err(Error::not_found("session", session_id));
        }
        let actor = self.actor(tenant, user_id).await?;
        let mut rec = cur.clone();
        rec.version += 1;
        rec.updated_at = self.clock.now();
        rec.set("token_hash", Value::Text(new_hash.to_owned()));
        rec.set("expires_at", expires_at);
        let mut cs = self.change_set(tenant, None);
        cs.writes.push(Write::Update {
            record: rec,
            expected_version: cur.version,
        });
        self.apply(cs).await?;
        Ok(actor)
    }

    /// Signs one session out (the actor's own, or any of the tenant's for an actor who may update
    /// users tenant-wide). Unknown sessions are `NotFound`.
    pub async fn end_session(&self, actor: &Actor, session_id: Id) -> Result<()> {
        let s = self
            .store
            .get(actor.tenant, &entity::SESSION, session_id)
            .await?
            .ok_or_else(|| Error::not_found("session", session_id))?;
        let own = s.id_of("user_id").is_some() && s.id_of("user_id") == actor.user_id;
        if !own && actor.role.scope(&entity::USER, Action::Update) != Scope::Tenant {
            return Err(Error::not_found("session", session_id));
        }
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        cs.audit.push(self.audit_entry(actor, "sign_out", &s, vec![]));
        cs.writes.push(Write::Delete {
            entity: &entity::SESSION,
            id: session_id,
            expected_version: s.version,
        });
        self.apply(cs).await.map(|_| ())
    }

    /// Creates an API key for the acting user, bound to `role` (built-in or custom; default: the
    /// actor's own role), which must be no stronger than the actor's own role. `key_hash` is the hash of the key the frontend
    /// generated and shows once. Returns the key record (without the hash).
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        name: &str,
        role: Option<&str>,
        expires_at: Option<Timestamp>,
        key_hash: &str,
    ) -> Result<Record> {
        let def = &entity::API_KEY;
        actor.authorize(def, Action::Create)?;
        let Some(owner) = actor.user_id else {
            return Err(Error::forbidden(Action::Create, def.name, vec!["user_id".into()]));
        };
        let bound = self.role(actor.tenant, role.unwrap_or(&actor.role.name)).await?;
        if !actor.role.covers(&bound) {
            return Err(Error::forbidden(Action::Create, def.name, vec!["role".into()]));
        }
        let now = self.clock.now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(Error::field(
                "expires_at",
                codes::INVALID_DATE,
                "must lie in the future",
            ));
        }
        let mut input = Map::new();
        input.insert("name".into(), Json::String(name.to_owned()));
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let mut rec = Record::empty(def, actor.tenant, self.ids.new_id(now), now);
        crate::validate::apply_input(&mut rec, &input, &ctx.custom, &ctx.vctx, crate::validate::Mode::Create)
            .map_err(Error::Validation)?;
        rec.set("role", Value::Text(bound.name.clone()));
        rec.set("user_id", owner);
        if let Some(t) = expires_at {
            rec.set("expires_at", t);
        }
        rec.set("key_hash", Value::Text(key_hash.to_owned()));
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        self.push_change(actor, "create", "api_key.created", None, &rec, &mut cs);
        self.apply(cs).await?;
        Ok(actor.redact(rec))
    }

    /// The actor of a request carrying API key `key_id` whose secret hashes to `presented_hash`: the
    /// key's owner (who must still be active) acting with the key's role. A key whose owner has since
    /// lost the rights the key grants stops working.
    pub async fn api_key_actor(&self, tenant: Id, key_id: Id, presented_hash: &str) -> Result<Actor> {
        let epoch = self.caller_epoch(tenant);
        let not_found = || Error::not_found("api_key", key_id);
        let key = self
            .store
            .get(tenant, &entity::API_KEY, key_id)
            .await?
            .ok_or_else(not_found)?;
        if !same_hash(key.str("key_hash").unwrap_or_default(), presented_hash) {
            return Err(not_found());
        }
        if key
            .get("expires_at")
            .and_then(Value::as_timestamp)
            .is_some_and(|t| t <= self.clock.now())
        {
            return Err(not_found());
        }
        let owner = self.actor(tenant, key.id_of("user_id").ok_or_else(not_found)?).await?;
        let role = self.role(tenant, key.str("role").unwrap_or_default()).await?;
        if !owner.role.covers(&role) {
            return Err(Error::forbidden("use", entity::API_KEY.name, vec!["role".into()]));
        }
        let actor = Actor {
            role: std::sync::Arc::new(role),
            api_key_id: Some(key_id),
            ..owner
        };
        let cache_key = CallerKey::ApiKey {
            tenant,
            key: key_id,
            hash: presented_hash.to_owned(),
        };
        let expires = key.get("expires_at").and_then(Value::as_timestamp);
        self.remember_caller(cache_key, epoch, &actor, expires);
        Ok(actor)
    }

    /// Creates a webhook from `input` (url, events, active) with the signing `secret` the frontend
    /// generated and shows once.
    pub async fn create_webhook(&self, actor: &Actor, input: &Map<String, Json>, secret: &str) -> Result<Record> {
        let def = &entity::WEBHOOK;
        actor.authorize(def, Action::Create)?;
        actor.check_writable(def, Action::Create, &super::input_paths(input))?;
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let now = self.clock.now();
        let mut rec = Record::empty(def, actor.tenant, self.ids.new_id(now), now);
        crate::validate::apply_input(&mut rec, input, &ctx.custom, &ctx.vctx, crate::validate::Mode::Create)
            .map_err(Error::Validation)?;
        ctx.check_tenant_rules(&rec, None)?;
        if secret.len() < 16 {
            return Err(Error::field("secret", codes::TOO_SMALL, "at least 16 characters"));
        }
        rec.set("secret", Value::Text(secret.to_owned()));
        rec.set(entity::webhook_fields::CREATED_BY, actor.user_id);
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        self.push_change(actor, "create", "webhook.created", None, &rec, &mut cs);
        let applied = self.apply(cs).await?;
        // A new webhook receives what happens after its creation, not the tenant's history.
        let seq = Value::Int(applied.last_event_seq as i64);
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        cs.writes.push(Write::Derived {
            entity: def,
            id: rec.id,
            expected_version: rec.version,
            fields: vec![(def.index_of("delivered_seq").unwrap_or_default(), seq.clone())],
        });
        self.apply(cs).await?;
        rec.set("delivered_seq", seq);
        Ok(actor.redact(rec))
    }

    /// Every active webhook of the tenant, with what delivery needs (system use: the delivery worker).
    pub async fn webhook_targets(&self, tenant: Id) -> Result<Vec<WebhookTarget>> {
        let q = StoreQuery::by_id(Filter::eq("active", true), 10_000);
        let rows = self.store.query(tenant, &entity::WEBHOOK, &q).await?;
        Ok(rows
            .into_iter()
            .map(|r| WebhookTarget {
                tenant,
                id: r.id,
                version: r.version,
                url: r.str("url").unwrap_or_default().to_owned(),
                events: match r.get("events") {
                    Some(Value::List(l)) => l.clone(),
                    _ => Vec::new(),
                },
                secret: r.str("secret").unwrap_or_default().to_owned(),
                delivered_seq: r.get("delivered_seq").and_then(Value::as_i64).unwrap_or(0).max(0) as u64,
                attempts: r
                    .get("attempts")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .clamp(0, u32::MAX as i64) as u32,
                next_attempt_at: r.get("next_attempt_at").and_then(Value::as_timestamp),
                created_by: r.id_of(entity::webhook_fields::CREATED_BY),
            })
            .collect())
    }

    /// The next events for `target` after its delivered position, as its creator may read them
    /// ([`Service::events_page`]: records outside their scope are left out, fields they may not
    /// read are redacted), with the last sequence scanned. `None` while the creator is deactivated
    /// or deleted: delivery waits, and the events stay for when a user who may receive them takes
    /// the webhook over (an admin re-creating it) or the creator is reactivated. A webhook without a
    /// creator (registered by the system; see the declaration in `entity::auth`) reads as the system.
    pub async fn webhook_events(&self, target: &WebhookTarget, limit: u32) -> Result<Option<(Vec<Event>, u64)>> {
        let actor = match target.created_by {
            None => Actor::system(target.tenant),
            Some(user) => match self.actor(target.tenant, user).await {
                Ok(a) => a,
                Err(Error::Forbidden { .. } | Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        self.events_page(&actor, target.delivered_seq, limit).await.map(Some)
    }

    /// The active webhooks of the tenant that are due for delivery now ([`crate::delivery::is_due`]):
    /// not waiting for a retry, or whose retry time has come.
    pub async fn due_webhooks(&self, tenant: Id) -> Result<Vec<WebhookTarget>> {
        let now = self.clock.now();
        let mut all = self.webhook_targets(tenant).await?;
        all.retain(|t| crate::delivery::is_due(t.next_attempt_at, now));
        Ok(all)
    }

    /// Claims (or renews the claim on) delivering `target` for the delivery worker `worker` for
    /// [`crate::delivery::CLAIM_SECS`]; `false` when another worker holds an unexpired claim. With
    /// several server instances over one database, each webhook is delivered by one of them at a
    /// time, in order, and a claim of an instance that died expires.
    pub async fn claim_webhook(&self, target: &WebhookTarget, worker: Id) -> Result<bool> {
        let now = self.clock.now();
        let until = Timestamp(
            now.0
                .saturating_add(crate::delivery::CLAIM_SECS.saturating_mul(1_000_000)),
        );
        self.store
            .lease(target.tenant, &format!("webhook:{}", target.id), worker, now, until)
            .await
    }

    /// Records a delivery attempt in the webhook's state (no audit entry, no event: delivery is
    /// operations, not a business change). A failure is retried per `policy` (see
    /// [`crate::delivery::next_attempt`]; `jitter_seed` is any random number) or, after the last
    /// attempt, given up on: the event is skipped with the error kept. Returns when the failed event
    /// is retried (`None`: delivered, skipped or given up on). If the webhook was edited meanwhile
    /// the state write is skipped and the event is delivered again: delivery is at least once.
    pub async fn record_delivery(
        &self,
        target: &WebhookTarget,
        outcome: &Delivery,
        policy: &crate::delivery::RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Option<Timestamp>> {
        let def = &entity::WEBHOOK;
        let idx = |f: &str| {
            def.index_of(f)
                .ok_or_else(|| Error::internal(format!("webhook has no {f}")))
        };
        let mut retry = None;
        let fields = match outcome {
            Delivery::Skipped { seq } => vec![(idx("delivered_seq")?, Value::Int(*seq as i64))],
            Delivery::Delivered { seq, status } => vec![
                (idx("delivered_seq")?, Value::Int(*seq as i64)),
                (idx("attempts")?, Value::Int(0)),
                (idx("next_attempt_at")?, Value::Null),
                (idx("last_status")?, Value::Int(i64::from(*status))),
                (idx("last_error")?, Value::Null),
            ],
            Delivery::Failed { seq, status, error } => {
                let attempts = target.attempts.saturating_add(1);
                retry = crate::delivery::next_attempt(policy, attempts, self.clock.now(), jitter_seed);
                let (done, attempts, next) = match retry {
                    None => (*seq, 0, Value::Null),
                    Some(at) => (target.delivered_seq, i64::from(attempts), Value::Timestamp(at)),
                };
                let mut msg = error.clone();
                if msg.len() > 500 {
                    let mut cut = 500;
                    while !msg.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    msg.truncate(cut);
                }
                vec![
                    (idx("delivered_seq")?, Value::Int(done as i64)),
                    (idx("attempts")?, Value::Int(attempts)),
                    (idx("next_attempt_at")?, next),
                    (
                        idx("last_status")?,
                        status.map_or(Value::Null, |s| Value::Int(i64::from(s))),
                    ),
                    (idx("last_error")?, Value::Text(msg)),
                ]
            }
        };
        let mut cs = self.change_set(target.tenant, None);
        cs.writes.push(Write::Derived {
            entity: def,
            id: target.id,
            expected_version: target.version,
            fields,
        });
        self.apply(cs).await?;
        Ok(retry)
    }
}
