//! Follow-ups set by activities, and due items fired once (see [`crate::due`] and
//! [`crate::entity::followup`]).

use super::Service;
use crate::access::Actor;
use crate::change::{ChangeSet, Write};
use crate::computed::ComputeCtx;
use crate::due::{self, DueItem};
use crate::entity::{DUE_MARK, due_mark, followup};
use crate::error::{Error, Result, codes};
use crate::query::{Filter, Op, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};

/// Records one due scan reads per query (a scan pages through every due record).
const DUE_PAGE: u32 = 500;

/// The most records [`Service::my_followups`] returns.
pub const MAX_MY_FOLLOWUPS: u32 = crate::query::MAX_PAGE_SIZE;

/// The lease the due scheduler takes per tenant (see [`Service::claim_scheduler`]).
pub const SCHEDULER_LEASE: &str = "scheduler:due";

impl<S: Store> Service<S> {
    /// In the change set of a new record whose type names follow-up links (an activity): when it
    /// carries `next_followup_at`, sets the next follow-up (and `followup_owner_id`, if given) of
    /// the first record it references that carries follow-ups, as an update by the actor (who
    /// needs update access to that record and its follow-up fields). Runs before the record's
    /// rescoring and rollups, which then derive onto that update.
    pub(crate) async fn followup_into(&self, actor: &Actor, rec: &Record, cs: &mut ChangeSet) -> Result<()> {
        let Some(plan) = followup::planned(rec) else {
            return Ok(());
        };
        if let Some(staged) = cs.staged_mut(plan.target, plan.id) {
            // Written earlier in this change set (created with it): the write carries it.
            plan.apply(staged);
            return Ok(());
        }
        let cur = self.visible(actor, plan.target, plan.id).await?;
        self.prepare_update_into(actor, plan.target, plan.id, cur.version, &plan.patch(), cs)
            .await?;
        Ok(())
    }

    /// "My follow-ups today": the records whose follow-up the actor owes ([`followup::owed_by`]:
    /// its follow-up owner, else its owner) and that are overdue or due today in the tenant's day
    /// ([`followup::TODAY`]), of every type that carries follow-ups and the actor may read (leads,
    /// contacts), earliest follow-up first, at most `limit` ([`MAX_MY_FOLLOWUPS`] when `None` or
    /// more). Read with the actor's scope, as a list is. The system actor owes none.
    pub async fn my_followups(&self, actor: &Actor, limit: Option<u32>) -> Result<Vec<Record>> {
        let Some(me) = actor.user_id else {
            return Ok(Vec::new());
        };
        let limit = limit.unwrap_or(MAX_MY_FOLLOWUPS).min(MAX_MY_FOLLOWUPS);
        let q = followup::TODAY
            .iter()
            .map(|s| format!("{}:{}", followup::fields::FOLLOWUP, s.key()))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut out: Vec<Record> = Vec::new();
        for def in crate::entity::all().into_iter().filter(|d| followup::carries(d)) {
            if actor.authorize(def, crate::access::Action::Read).is_err() {
                continue;
            }
            let req = crate::query::ListRequest {
                q: Some(q.clone()),
                filter: Some(followup::owed_by(def, me)),
                sort: vec![crate::query::SortKey::asc(followup::fields::NEXT_FOLLOWUP_AT)],
                limit: Some(limit),
                cursor: None,
            };
            out.extend(self.list(actor, def.name, &req).await?.items);
        }
        let at = |r: &Record| r.get(followup::fields::NEXT_FOLLOWUP_AT).and_then(Value::as_timestamp);
        out.sort_by(|a, b| {
            at(a)
                .cmp(&at(b))
                .then(a.entity.name.cmp(b.entity.name))
                .then(a.id.cmp(&b.id))
        });
        out.truncate(limit as usize);
        Ok(out)
    }

    /// What is due in the tenant as of the service's clock and has not fired yet (system use: the
    /// scheduler). Each entity type's due predicates ([`crate::due::DueDef`]) run in the store;
    /// [`due::due_items`] decides each record's occurrence; occurrences with a
    /// [`DUE_MARK`] are left out.
    pub async fn due(&self, tenant: Id) -> Result<Vec<(DueItem, Record)>> {
        let cx = ComputeCtx::new(self.clock.now(), Some(self.org(tenant).await?));
        let mut out = Vec::new();
        for def in due::types() {
            let select = Filter::Or(def.due.iter().map(|d| (d.select)(&cx)).collect());
            let mut after: Option<Id> = None;
            loop {
                let mut parts = vec![select.clone()];
                if let Some(a) = after {
                    parts.push(Filter::cmp("id", Op::Gt, a));
                }
                let page = self
                    .store
                    .query(tenant, def, &StoreQuery::by_id(Filter::and(parts), DUE_PAGE))
                    .await?;
                after = page.last().map(|r| r.id);
                let items = due::due_items(def, &page, &cx);
                if !items.is_empty() {
                    let keys: Vec<Value> = items.iter().map(|i| Value::Text(i.key.clone())).collect();
                    let q = StoreQuery::by_ref(
                        &DUE_MARK,
                        due_mark::fields::KEY,
                        Filter::In {
                            field: due_mark::fields::KEY.into(),
                            values: keys,
                        },
                        DUE_PAGE * def.due.len() as u32,
                    );
                    let fired: Vec<String> = self
                        .store
                        .query(tenant, &DUE_MARK, &q)
                        .await?
                        .iter()
                        .filter_map(|m| m.str(due_mark::fields::KEY).map(str::to_owned))
                        .collect();
                    for item in items {
                        if fired.contains(&item.key) {
                            continue;
                        }
                        if let Some(r) = page.iter().find(|r| r.id == item.id) {
                            out.push((item, r.clone()));
                        }
                    }
                }
                if (page.len() as u32) < DUE_PAGE {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Fires what is due in the tenant ([`Service::due`]): per occurrence, one change set with its
    /// outbox event (`<entity>.<kind>`, the record as payload, so streams and webhooks show it only
    /// to whoever may read the record) and its [`DUE_MARK`]. An occurrence another instance fired
    /// meanwhile fails as a duplicate mark and is skipped, so each fires once however many
    /// schedulers run. Returns what this call fired.
    pub async fn fire_due(&self, tenant: Id) -> Result<Vec<DueItem>> {
        let mut fired = Vec::new();
        for (item, rec) in self.due(tenant).await? {
            let mut cs = self.change_set(tenant, None);
            let now = cs.at;
            let mut mark = Record::empty(&DUE_MARK, tenant, self.ids.new_id(now), now);
            mark.set(due_mark::fields::KEY, item.key.as_str());
            mark.set(due_mark::fields::KIND, item.event_kind());
            mark.set(due_mark::fields::RECORD_ID, item.id.to_string());
            cs.writes.push(Write::Insert(mark));
            cs.events.push(self.event(&item.event_kind(), &rec));
            match self.apply(cs).await {
                Ok(_) => fired.push(item),
                Err(Error::Validation(errs))
                    if errs
                        .iter()
                        .any(|e| e.code == codes::DUPLICATE && e.path == due_mark::fields::KEY) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    }

    /// Takes or renews the tenant's due-scheduler lease for `holder` for `secs` seconds; `false`
    /// while another holder's lease runs. With several server instances over one database, one at
    /// a time scans a tenant; the duplicate-mark rule of [`Service::fire_due`] keeps each
    /// occurrence to one event even if two scan at once (a lease that expired mid-scan).
    pub async fn claim_scheduler(&self, tenant: Id, holder: Id, secs: i64) -> Result<bool> {
        let now = self.clock.now();
        let until = Timestamp(now.0.saturating_add(secs.max(1).saturating_mul(1_000_000)));
        self.store.lease(tenant, SCHEDULER_LEASE, holder, now, until).await
    }
}
