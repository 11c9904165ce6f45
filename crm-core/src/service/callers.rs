//! The caller cache: resolved sessions and API keys kept for a short window, so that a server does
//! not read the session (or key), the user and the role from the store on every request.
//!
//! What may change a cached answer is a write to a session, API key, credential, user or role
//! (sign-out, a revoked key, a password change ending sessions, deactivation, a role change). Every
//! change set the service applies goes through [`Service::apply`], which moves the tenant's epoch
//! on when it updates or deletes a row of those types; an answer cached under an older epoch is not
//! used. So in the process that made the change it takes effect on the next request, exactly as
//! without the cache. A change made by another process over the same database (another server
//! instance, the CLI) is not seen by this epoch: this process keeps answering from its cache until
//! the entry's window ends, at most the window given to [`Service::with_caller_cache`] (and never
//! past the session's or key's own expiry). The window is 0 (nothing cached) unless a frontend asks.

use super::Service;
use crate::access::Actor;
use crate::change::{Applied, ChangeSet, Write};
use crate::error::Result;
use crate::store::Store;
use crate::value::{Id, Timestamp};
use std::collections::HashMap;

/// Most cached callers (the cache starts over when full).
const MAX_CALLERS: usize = 10_000;

/// What a cached answer was resolved from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CallerKey {
    /// An access token's session, user and tenant.
    Session { tenant: Id, session: Id, user: Id },
    /// An API key and the hash of the secret presented with it.
    ApiKey { tenant: Id, key: Id, hash: String },
}

impl CallerKey {
    fn tenant(&self) -> Id {
        match self {
            CallerKey::Session { tenant, .. } | CallerKey::ApiKey { tenant, .. } => *tenant,
        }
    }
}

#[derive(Debug)]
struct Entry {
    actor: Actor,
    epoch: u64,
    until: Timestamp,
}

/// The cache and the tenants' epochs.
#[derive(Debug, Default)]
pub(crate) struct Callers {
    /// How long an answer is kept, in microseconds (0: nothing is cached).
    window: i64,
    entries: HashMap<CallerKey, Entry>,
    epochs: HashMap<Id, u64>,
}

/// Whether a change set may change who a token or key resolves to.
fn touches_callers(cs: &ChangeSet) -> bool {
    // A new row changes no earlier answer (a new session or key is resolved when first used).
    cs.writes
        .iter()
        .any(|w| !matches!(w, Write::Insert(_)) && w.entity().resolves_callers)
}

impl<S: Store> Service<S> {
    /// Keeps resolved callers ([`Service::session_actor`], [`Service::api_key_actor`]) for up to
    /// `window` (see the module documentation for what that means across processes). A server
    /// sets it; the default (0) caches nothing.
    pub fn with_caller_cache(self, window: std::time::Duration) -> Self {
        if let Ok(mut c) = self.callers.lock() {
            c.window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        }
        self
    }

    /// The cached caller of an access token's session, if resolved within the window and nothing
    /// that could change the answer was written since. Never reads the store (a frontend may call
    /// it on an async worker and go to the store only when it answers `None`).
    pub fn cached_session_actor(&self, tenant: Id, session: Id, user: Id) -> Option<Actor> {
        self.cached(&CallerKey::Session { tenant, session, user })
    }

    /// The cached caller of an API key and the hash of the presented secret, like
    /// [`Service::cached_session_actor`].
    pub fn cached_api_key_actor(&self, tenant: Id, key: Id, presented_hash: &str) -> Option<Actor> {
        self.cached(&CallerKey::ApiKey {
            tenant,
            key,
            hash: presented_hash.to_owned(),
        })
    }

    fn cached(&self, key: &CallerKey) -> Option<Actor> {
        let c = self.callers.lock().ok()?;
        let e = c.entries.get(key)?;
        let epoch = c.epochs.get(&key.tenant()).copied().unwrap_or(0);
        (e.epoch == epoch && self.clock.now() < e.until).then(|| e.actor.clone())
    }

    /// The tenant's epoch now, read before resolving a caller (`None`: nothing is cached).
    pub(crate) fn caller_epoch(&self, tenant: Id) -> Option<u64> {
        let c = self.callers.lock().ok()?;
        (c.window > 0).then(|| c.epochs.get(&tenant).copied().unwrap_or(0))
    }

    /// Keeps a caller resolved under `epoch` until the window ends or `expires` (the session's or
    /// key's own end), whichever is first.
    pub(crate) fn remember_caller(
        &self,
        key: CallerKey,
        epoch: Option<u64>,
        actor: &Actor,
        expires: Option<Timestamp>,
    ) {
        let Some(epoch) = epoch else { return };
        let Ok(mut c) = self.callers.lock() else { return };
        let now = self.clock.now();
        let until = Timestamp(now.0.saturating_add(c.window));
        let until = expires.map_or(until, |e| e.min(until));
        if until <= now {
            return;
        }
        if c.entries.len() >= MAX_CALLERS {
            c.entries.clear();
        }
        let entry = Entry {
            actor: actor.clone(),
            epoch,
            until,
        };
        c.entries.insert(key, entry);
    }

    /// Moves the tenant's epoch on: every cached caller of the tenant is resolved again.
    pub(crate) fn callers_changed(&self, tenant: Id) {
        if let Ok(mut c) = self.callers.lock() {
            let e = c.epochs.entry(tenant).or_insert(0);
            *e = e.wrapping_add(1);
            c.entries.retain(|k, _| k.tenant() != tenant);
        }
    }

    /// Applies a change set: every use case's single write goes through here, so that what it
    /// changes reaches the caches (the caller cache's epoch moves on after a write that may change
    /// who a token is, the organization cache's after a write to the organization, once it
    /// committed).
    pub(crate) async fn apply(&self, cs: ChangeSet) -> Result<Applied> {
        let tenant = cs.tenant;
        let touches = touches_callers(&cs);
        let org = super::org_cache::touches_org(&cs);
        let out = self.store.apply(cs).await;
        if touches {
            self.callers_changed(tenant);
        }
        if org {
            self.org_changed(tenant);
        }
        out
    }
}
