//! The organization as presenting records reads it, kept for a short window.
//!
//! Every record handed back with computed fields (a lead's temperature, a membership's standing)
//! is evaluated against the tenant's organization record (its time zone, its thresholds), and a
//! list's filters and sort are bound against the same record (`bind_list`). Reading
//! that record on every get, page and write answer is one more statement per use case: a few
//! microseconds on SQLite, a network round trip on PostgreSQL, where it doubled the cost of a get.
//!
//! What may change the answer is a write to the organization. Every change set the service applies
//! goes through [`Service::apply`], which drops the tenant's entry after such a write (and moves an
//! epoch on, so a read that started before the write cannot put the old record back). In the
//! process that made the change it takes effect on the next call, exactly as without the cache. A
//! change made by another process over the same database is seen within the window given to
//! [`Service::with_org_cache`]. The window is 0 (nothing cached) unless a frontend asks; writes
//! and their rules always read the organization from the store (through the configuration cache,
//! which checks the tables' stamp).

use super::Service;
use crate::change::ChangeSet;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;

/// Most tenants kept (the cache starts over when full).
const MAX_ORGS: usize = 10_000;

/// The cache and the tenants' epochs.
#[derive(Debug, Default)]
pub(crate) struct Orgs {
    /// How long an organization is kept, in microseconds (0: nothing is cached).
    window: i64,
    entries: HashMap<Id, (u64, Timestamp, Arc<Record>)>,
    epochs: HashMap<Id, u64>,
}

/// Whether a change set writes a record computed fields are evaluated with (the organization).
pub(crate) fn touches_org(cs: &ChangeSet) -> bool {
    cs.writes.iter().any(|w| w.entity().feeds_computed)
}

impl<S: Store> Service<S> {
    /// Keeps the organization record that presenting records reads for up to `window` (see the
    /// module documentation for what that means across processes). A server sets it; the default
    /// (0) reads it every time.
    pub fn with_org_cache(self, window: std::time::Duration) -> Self {
        if let Ok(mut c) = self.orgs.lock() {
            c.window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        }
        self
    }

    /// The tenant's organization for presenting records: from the cache within its window, else
    /// from the store (and kept, unless it was written meanwhile).
    pub(crate) async fn presenting_org(&self, tenant: Id) -> Result<Arc<Record>> {
        let now = self.clock.now();
        let epoch = {
            let c = self
                .orgs
                .lock()
                .map_err(|_| Error::internal("organization cache poisoned"))?;
            let epoch = c.epochs.get(&tenant).copied().unwrap_or(0);
            match c.entries.get(&tenant) {
                Some((e, until, org)) if *e == epoch && now < *until => return Ok(org.clone()),
                _ if c.window == 0 => None,
                _ => Some(epoch),
            }
        };
        let org = Arc::new(self.org(tenant).await?);
        if let Some(epoch) = epoch
            && let Ok(mut c) = self.orgs.lock()
            && c.epochs.get(&tenant).copied().unwrap_or(0) == epoch
        {
            if c.entries.len() >= MAX_ORGS {
                c.entries.clear();
            }
            let until = Timestamp(now.0.saturating_add(c.window));
            c.entries.insert(tenant, (epoch, until, org.clone()));
        }
        Ok(org)
    }

    /// Drops the tenant's cached organization after a write to it.
    pub(crate) fn org_changed(&self, tenant: Id) {
        if let Ok(mut c) = self.orgs.lock() {
            let e = c.epochs.entry(tenant).or_insert(0);
            *e = e.wrapping_add(1);
            c.entries.remove(&tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::SeqIds;
    use crate::conformance::{Fixture, NOW, block, obj};
    use crate::memory::MemoryStore;
    use crate::service::Service;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    /// A membership ending in 20 days is active under the default 14-day window and expiring under a
    /// 30-day one. A service with the cache sees its own change to the window at once, another
    /// process's (a second service over the same store) once its window has passed; a list filters
    /// on the status a get shows.
    #[test]
    fn the_presenting_organization_is_kept_for_the_window() {
        let f = Fixture::new(MemoryStore::new());
        let cached = Service::new(
            f.svc.store().clone(),
            f.clock.clone(),
            Arc::new(SeqIds::starting_at(1 << 40)),
        )
        .with_org_cache(Duration::from_secs(5));
        let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Kai"})))).unwrap();
        let day = |d: i64| NOW.plus_days(d).date().to_string();
        let input = json!({"contact_id": contact.id.to_string(), "starts_on": day(-10), "ends_on": day(20)});
        let m = block(f.svc.create(&f.admin, "membership", &obj(input))).unwrap();
        let status = |svc: &Service<MemoryStore>| {
            let r = block(svc.get(&f.admin, "membership", m.id)).unwrap();
            r.str("status").unwrap().to_owned()
        };
        let window = |svc: &Service<MemoryStore>, days: i64| {
            let org = block(svc.get(&f.admin, "organization", f.tenant)).unwrap();
            let patch = obj(json!({"membership_expiring_days": days}));
            block(svc.update(&f.admin, "organization", f.tenant, org.version, &patch)).unwrap();
        };
        // The memberships a filter on the computed status finds.
        let listed = |svc: &Service<MemoryStore>, s: &str| {
            let req = crate::query::ListRequest {
                q: Some(format!("status:{s}")),
                ..Default::default()
            };
            block(svc.list(&f.admin, "membership", &req)).unwrap().items.len()
        };
        assert_eq!(status(&cached), "active");

        // Changed elsewhere: the cached answer stands until the window has passed, for the values
        // shown and for filters alike.
        window(&f.svc, 30);
        assert_eq!(status(&f.svc), "expiring", "the uncached service reads it every time");
        assert_eq!(listed(&f.svc, "expiring"), 1);
        assert_eq!(status(&cached), "active");
        assert_eq!((listed(&cached, "active"), listed(&cached, "expiring")), (1, 0));
        f.clock.set(crate::value::Timestamp(NOW.0 + 4_000_000));
        assert_eq!(status(&cached), "active", "4 s into a 5 s window");
        f.clock.set(crate::value::Timestamp(NOW.0 + 5_000_000));
        assert_eq!(status(&cached), "expiring");
        assert_eq!((listed(&cached, "active"), listed(&cached, "expiring")), (0, 1));

        // Changed here: the next call sees it.
        window(&cached, 14);
        assert_eq!(status(&cached), "active");
        window(&cached, 30);
        assert_eq!(status(&cached), "expiring");
    }
}
