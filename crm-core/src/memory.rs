//! The in-memory store: the reference backend (tests, the browser, quick embedding). It evaluates
//! filters with the same [`Compiled`] evaluator as everything else, so it defines the semantics the
//! SQL stores must reproduce.

use crate::change::{Applied, AuditEntry, ChangeSet, Event, Write};
use crate::error::{Error, FieldError, Result, codes};
use crate::idempotency::{Answer, StoredKey};
use crate::query::{AggregateQuery, Compiled, Filter, StoreQuery, aggregate};
use crate::record::Record;
use crate::schema::{EntityDef, FieldRef};
use crate::store::{AuditHead, AuditQuery, BulkWrite, Group, Store};
use crate::sync::SyncEntry;
use crate::value::{Id, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

mod persist;
pub use persist::{Changes, SaveMark, Saved, SavedRow};

#[derive(Clone, Debug, Default)]
struct Tenant {
    tables: HashMap<&'static str, BTreeMap<Id, Record>>,
    audit: Vec<AuditEntry>,
    events: Vec<Event>,
    /// The sync log (entries not yet marked synced) and the last sequence it assigned.
    sync: Vec<SyncEntry>,
    sync_seq: u64,
    /// What changed since the host last saved the tenant ([`persist`]).
    dirty: persist::Dirty,
}

/// A store that keeps everything in process memory. Cloning shares the data (and keeps the sync log
/// setting).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    tenants: Arc<RwLock<HashMap<Id, Tenant>>>,
    sync_log: bool,
    leases: Arc<Mutex<Leases>>,
    idempotency: Arc<Mutex<IdempotencyKeys>>,
}

/// Idempotency keys by (tenant, caller, key).
type IdempotencyKeys = HashMap<(Id, String, String), StoredKey>;

/// Leases by (tenant, name): holder and end.
type Leases = HashMap<(Id, String), (Id, Timestamp)>;

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the local change-set log on or off for writes through this handle (off by default; see
    /// [`crate::sync`]). With it on, every applied change set with a row write also appends a
    /// [`SyncEntry`], read with [`Store::pending_changes`].
    pub fn with_sync_log(mut self, on: bool) -> Self {
        self.sync_log = on;
        self
    }

    fn read<T>(&self, tenant: Id, f: impl FnOnce(Option<&Tenant>) -> Result<T>) -> Result<T> {
        let g = self
            .tenants
            .read()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        f(g.get(&tenant))
    }
}

fn sorted(t: Option<&Tenant>, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
    let filter = Compiled::compile(&q.filter, entity)?;
    let keys: Vec<(FieldRef, bool)> = q
        .sort
        .iter()
        .map(|k| {
            entity
                .resolve(&k.field)
                .map(|f| (f, k.desc))
                .ok_or_else(|| Error::invalid_query(format!("no field {}", k.field), 0))
        })
        .collect::<Result<_>>()?;
    let Some(rows) = t.and_then(|t| t.tables.get(entity.name)) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<&Record> = rows.values().filter(|r| filter.matches(r)).collect();
    out.sort_by(|a, b| {
        for (f, desc) in &keys {
            let o = a.value(f).sort_cmp(&b.value(f));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(out.into_iter().take(q.limit as usize).cloned().collect())
}

/// Applies a change set to a tenant, checking everything before changing anything; with `log`, appends
/// its sync log entry.
fn apply_to(t: &mut Tenant, tenant: Id, cs: ChangeSet, log: bool) -> Result<Applied> {
    // Check phase: versions, existence, uniqueness.
    for (k, w) in cs.writes.iter().enumerate() {
        let e = w.entity();
        let table = t.tables.get(e.name);
        match w {
            Write::Insert(r) => {
                if table.is_some_and(|tb| tb.contains_key(&r.id)) {
                    return Err(Error::Conflict {
                        entity: e.name.into(),
                        id: r.id.to_string(),
                        expected: 0,
                        actual: 1,
                    });
                }
                check_unique(t, r, &cs.writes[..k])?;
            }
            Write::Update {
                record,
                expected_version,
            } => match table.and_then(|tb| tb.get(&record.id)) {
                None => return Err(Error::not_found(e.name, record.id)),
                Some(cur) if cur.version != *expected_version => {
                    return Err(Error::Conflict {
                        entity: e.name.into(),
                        id: record.id.to_string(),
                        expected: *expected_version,
                        actual: cur.version,
                    });
                }
                Some(_) => check_unique(t, record, &cs.writes[..k])?,
            },
            Write::Delete {
                id, expected_version, ..
            } => match table.and_then(|tb| tb.get(id)) {
                None => return Err(Error::not_found(e.name, id)),
                Some(cur) if cur.version != *expected_version => {
                    return Err(Error::Conflict {
                        entity: e.name.into(),
                        id: id.to_string(),
                        expected: *expected_version,
                        actual: cur.version,
                    });
                }
                Some(_) => {}
            },
            Write::Derived { .. } => {}
        }
    }
    let entry = if log {
        let tables = &t.tables;
        SyncEntry::for_change_set(&cs, |e, id| Ok(tables.get(e.name).and_then(|tb| tb.get(&id)).cloned()))?
    } else {
        None
    };
    // Write phase: cannot fail.
    let mut rows = 0;
    for w in cs.writes {
        let e = w.entity();
        let tb = t.tables.entry(e.name).or_default();
        match w {
            Write::Insert(mut r) | Write::Update { record: mut r, .. } => {
                r.hidden = 0;
                t.dirty.touch(e.name, r.id);
                tb.insert(r.id, r);
                rows += 1;
            }
            Write::Delete { id, .. } => {
                t.dirty.touch(e.name, id);
                tb.remove(&id);
                rows += 1;
            }
            Write::Derived {
                id,
                expected_version,
                fields,
                ..
            } => {
                if let Some(r) = tb.get_mut(&id).filter(|r| r.version == expected_version) {
                    t.dirty.touch(e.name, id);
                    for (i, v) in fields {
                        r.values[i] = v;
                    }
                    rows += 1;
                }
            }
        }
    }
    for mut a in cs.audit {
        let (seq, prev) = t.audit.last().map_or((0, String::new()), |l| (l.seq, l.hash.clone()));
        a.seal(seq + 1, &prev);
        t.audit.push(a);
    }
    let mut last = t.events.last().map_or(0, |e| e.seq);
    for mut e in cs.events {
        last += 1;
        e.seq = last;
        e.tenant = tenant;
        t.events.push(e);
    }
    if let Some(mut entry) = entry {
        t.sync_seq += 1;
        entry.seq = t.sync_seq;
        entry.tenant = tenant;
        t.sync.push(entry);
    }
    Ok(Applied {
        last_event_seq: last,
        rows,
    })
}

/// Checks a row's unique fields against the table as the earlier writes of the same change set
/// leave it, statement by statement, as SQL does (so a swap of two unique values fails everywhere).
fn check_unique(t: &Tenant, r: &Record, earlier: &[Write]) -> Result<()> {
    let touched = |id: Id| {
        earlier.iter().any(|w| match w {
            Write::Insert(x) | Write::Update { record: x, .. } => x.id == id,
            Write::Delete { id: d, .. } => *d == id,
            Write::Derived { .. } => false,
        })
    };
    for (i, f) in r.entity.fields.iter().enumerate() {
        if !f.unique || r.values[i].is_null() {
            continue;
        }
        let v = &r.values[i];
        let stored = t
            .tables
            .get(r.entity.name)
            .into_iter()
            .flat_map(|tb| tb.values())
            .filter(|o| !touched(o.id));
        // The latest staged state of each row the earlier writes touched.
        let staged = earlier.iter().enumerate().filter_map(|(j, w)| match w {
            Write::Insert(x) | Write::Update { record: x, .. } if x.entity.name == r.entity.name => {
                let superseded = earlier[j + 1..].iter().any(|l| match l {
                    Write::Insert(y) | Write::Update { record: y, .. } => y.id == x.id,
                    Write::Delete { id, .. } => *id == x.id,
                    Write::Derived { .. } => false,
                });
                (!superseded).then_some(x)
            }
            _ => None,
        });
        if stored.chain(staged).any(|o| o.id != r.id && &o.values[i] == v) {
            return Err(Error::Validation(vec![FieldError::new(
                f.name,
                codes::DUPLICATE,
                format!("another {} has this {}", r.entity.name, f.name),
            )]));
        }
    }
    Ok(())
}

impl Store for MemoryStore {
    type Bulk<'a> = MemoryBulk<'a>;

    async fn get(&self, tenant: Id, entity: &'static EntityDef, id: Id) -> Result<Option<Record>> {
        self.read(tenant, |t| {
            Ok(t.and_then(|t| t.tables.get(entity.name))
                .and_then(|tb| tb.get(&id))
                .cloned())
        })
    }

    async fn query(&self, tenant: Id, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        self.read(tenant, |t| sorted(t, entity, q))
    }

    async fn count(&self, tenant: Id, entity: &'static EntityDef, filter: &Filter) -> Result<u64> {
        let c = Compiled::compile(filter, entity)?;
        self.read(tenant, |t| {
            Ok(t.and_then(|t| t.tables.get(entity.name))
                .map_or(0, |tb| tb.values().filter(|r| c.matches(r)).count() as u64))
        })
    }

    async fn aggregate(&self, tenant: Id, entity: &'static EntityDef, q: &AggregateQuery) -> Result<Vec<Group>> {
        let c = Compiled::compile(&q.filter, entity)?;
        let plan = q.plan(entity)?;
        self.read(tenant, |t| {
            let rows = t
                .and_then(|t| t.tables.get(entity.name))
                .into_iter()
                .flat_map(|tb| tb.values());
            aggregate::fold(&plan, rows.filter(|r| c.matches(r)))
        })
    }

    async fn stamp(&self, tenant: Id, entities: &[&'static EntityDef]) -> Result<Option<u64>> {
        use std::hash::{Hash, Hasher};
        self.read(tenant, |t| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for e in entities {
                let tb = t.and_then(|t| t.tables.get(e.name));
                let rows = tb.into_iter().flat_map(|tb| tb.values());
                let (n, versions, updated) = rows.fold((0u64, 0u64, Timestamp::default()), |(n, v, u), r| {
                    (n + 1, v.wrapping_add(r.version), u.max(r.updated_at))
                });
                (e.name, n, versions, tb.and_then(|tb| tb.keys().next_back()), updated).hash(&mut h);
            }
            Ok(Some(h.finish()))
        })
    }

    async fn apply(&self, changes: ChangeSet) -> Result<Applied> {
        let mut g = self
            .tenants
            .write()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let tenant = changes.tenant;
        let Some(settle) = changes.settle.clone() else {
            return apply_to(g.entry(tenant).or_default(), tenant, changes, self.sync_log);
        };
        // The answer lands with the writes: both under the locks, the key checked first.
        let mut keys = self
            .idempotency
            .lock()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let id = (tenant, settle.caller, settle.key);
        match keys.get_mut(&id) {
            Some(k) if k.answer.is_none() => {
                let applied = apply_to(g.entry(tenant).or_default(), tenant, changes, self.sync_log)?;
                k.answer = Some(settle.answer);
                k.expires_at = settle.expires_at;
                Ok(applied)
            }
            _ => Err(crate::idempotency::claim_lost(&id.2)),
        }
    }

    async fn bulk(&self, tenant: Id) -> Result<MemoryBulk<'_>> {
        let work = self.read(tenant, |t| Ok(t.cloned().unwrap_or_default()))?;
        let base = heads(&work);
        let base_sync = work.sync_seq;
        Ok(MemoryBulk {
            store: self,
            tenant,
            work,
            base,
            base_sync,
            applied: Applied::default(),
        })
    }

    async fn audit(&self, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.read(tenant, |t| {
            Ok(t.into_iter()
                .flat_map(|t| t.audit.iter())
                .filter(|a| a.seq > q.after_seq)
                .filter(|a| q.entity.as_ref().is_none_or(|e| &a.entity == e))
                .filter(|a| q.entity_id.is_none_or(|id| a.entity_id == Some(id)))
                .take(q.limit as usize)
                .cloned()
                .collect())
        })
    }

    async fn audit_head(&self, tenant: Id) -> Result<AuditHead> {
        // The log is this store's only record of the chain: the head is its last entry.
        self.read(tenant, |t| {
            Ok(t.and_then(|t| t.audit.last())
                .map(|a| AuditHead {
                    seq: a.seq,
                    hash: a.hash.clone(),
                })
                .unwrap_or_default())
        })
    }

    async fn events(&self, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
        self.read(tenant, |t| {
            Ok(t.into_iter()
                .flat_map(|t| t.events.iter())
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    async fn tenants(&self) -> Result<Vec<Id>> {
        let g = self
            .tenants
            .read()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let mut v: Vec<Id> = g.keys().copied().collect();
        v.sort();
        Ok(v)
    }

    async fn pending_changes(&self, tenant: Id, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        self.read(tenant, |t| {
            Ok(t.into_iter()
                .flat_map(|t| t.sync.iter())
                .filter(|e| e.seq > after_seq)
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    async fn mark_synced(&self, tenant: Id, up_to_seq: u64) -> Result<u64> {
        let mut g = self
            .tenants
            .write()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let Some(t) = g.get_mut(&tenant) else {
            return Ok(0);
        };
        let before = t.sync.len();
        t.sync.retain(|e| e.seq > up_to_seq);
        Ok((before - t.sync.len()) as u64)
    }

    async fn lease(&self, tenant: Id, name: &str, holder: Id, now: Timestamp, until: Timestamp) -> Result<bool> {
        let mut g = self.leases.lock().map_err(|_| Error::internal("store lock poisoned"))?;
        let lease = g.entry((tenant, name.to_owned())).or_insert((holder, until));
        if lease.0 == holder || lease.1 <= now {
            *lease = (holder, until);
            return Ok(true);
        }
        Ok(false)
    }

    async fn idempotency_claim(
        &self,
        tenant: Id,
        caller: &str,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Option<StoredKey>> {
        let mut g = self
            .idempotency
            .lock()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        g.retain(|(t, _, _), k| *t != tenant || k.expires_at > now);
        let id = (tenant, caller.to_owned(), key.to_owned());
        if let Some(found) = g.get(&id) {
            return Ok(Some(found.clone()));
        }
        g.insert(
            id,
            StoredKey {
                fingerprint: fingerprint.to_owned(),
                expires_at,
                answer: None,
            },
        );
        Ok(None)
    }

    async fn idempotency_settle(&self, tenant: Id, caller: &str, key: &str, answer: Option<&Answer>) -> Result<()> {
        let mut g = self
            .idempotency
            .lock()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let id = (tenant, caller.to_owned(), key.to_owned());
        if g.get(&id).is_none_or(|k| k.answer.is_some()) {
            return Ok(());
        }
        match answer {
            Some(a) => {
                if let Some(k) = g.get_mut(&id) {
                    k.answer = Some(a.clone());
                }
            }
            None => {
                g.remove(&id);
            }
        }
        Ok(())
    }
}

/// A bulk session over a private copy of the tenant, swapped in on commit (if nobody wrote meanwhile).
#[derive(Debug)]
pub struct MemoryBulk<'a> {
    store: &'a MemoryStore,
    tenant: Id,
    work: Tenant,
    /// (audit seq, event seq) when the session began.
    base: (u64, u64),
    /// The last sync log sequence when the session began.
    base_sync: u64,
    applied: Applied,
}

fn heads(t: &Tenant) -> (u64, u64) {
    (
        t.audit.last().map_or(0, |a| a.seq),
        t.events.last().map_or(0, |e| e.seq),
    )
}

impl BulkWrite for MemoryBulk<'_> {
    async fn query(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
        sorted(Some(&self.work), entity, q)
    }

    async fn ids(&mut self, entity: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Id>> {
        Ok(sorted(Some(&self.work), entity, q)?.into_iter().map(|r| r.id).collect())
    }

    async fn apply(&mut self, changes: ChangeSet) -> Result<Applied> {
        if changes.settle.is_some() {
            return Err(Error::internal("a bulk session stores no idempotency answer"));
        }
        // apply_to checks everything before it changes anything, so a failed set leaves `work` as it was.
        let a = apply_to(&mut self.work, self.tenant, changes, self.store.sync_log)?;
        self.applied.rows += a.rows;
        self.applied.last_event_seq = a.last_event_seq;
        Ok(a)
    }

    async fn commit(self) -> Result<Applied> {
        let mut g = self
            .store
            .tenants
            .write()
            .map_err(|_| Error::internal("store lock poisoned"))?;
        let cur = g.entry(self.tenant).or_default();
        // The session worked on a snapshot: refuse to overwrite writes made by others meanwhile.
        if heads(cur) != self.base {
            let (expected, actual) = (self.base.0, heads(cur).0);
            return Err(Error::Conflict {
                entity: "tenant".into(),
                id: self.tenant.to_string(),
                expected,
                actual,
            });
        }
        let mut work = self.work;
        // Sync log entries marked synced while the session ran stay removed.
        work.sync
            .retain(|e| e.seq > self.base_sync || cur.sync.iter().any(|c| c.seq == e.seq));
        *cur = work;
        Ok(self.applied)
    }
}
