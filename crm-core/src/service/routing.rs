//! Lead routing as a step of the lead's create and import (and on demand): load the tenant's rules
//! and roster once per use case, decide with [`routing::decide`], set the owner and team, advance
//! the round-robin cursors in the same change set, name the rule in the audit entry.

use super::Service;
use super::exclusive::retrying;
use crate::access::{Action, Actor};
use crate::change::{ChangeSet, Write, diff};
use crate::entity::routing::{self, Assign, Decision, Roster, Rule};
use crate::entity::{self, LEAD, ROUTING_CURSOR, ROUTING_RULE, WriteCtx};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::validate::CustomSpecs;
use crate::value::Id;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// Most users (and teams) routing reads per tenant.
pub(crate) const MAX_USERS: u32 = 10_000;
/// Most routing rules a tenant's leads are routed with.
pub const MAX_RULES: u32 = 500;
/// Most rows a routing dry run reads.
pub const MAX_DRY_RUN_ROWS: usize = 10_000;

/// The routing of one use case: the tenant's active rules, compiled and in order, what it knows
/// about the users, and the cursor rows as read (to advance them in the change set).
#[derive(Debug)]
pub(crate) struct Router {
    rules: Vec<Rule>,
    roster: Roster,
    /// The stored cursor rows of round-robin rules, as last read or written by this use case.
    rows: BTreeMap<Id, Record>,
    /// Rules whose cursor moved since the last [`Router::flush`].
    moved: BTreeSet<Id>,
}

impl Router {
    /// Replaces the cursors with rows read now (inside an import's session, or from the store).
    pub(crate) fn set_cursors(&mut self, rows: Vec<Record>) {
        self.roster.cursors = rows.iter().map(|r| (r.id, routing::cursor_next(r))).collect();
        self.rows = rows.into_iter().map(|r| (r.id, r)).collect();
    }

    /// Decides a new lead's owner unless its input named one, sets it (and the team, unless the
    /// input named one), and records the decision for the next lead of this use case.
    pub(crate) fn route(&mut self, rec: &mut Record, input: &Map<String, Json>) -> Option<Decision> {
        if routing::explicit_owner(input) {
            return None;
        }
        self.route_always(rec, routing::explicit_team(input))
    }

    fn route_always(&mut self, rec: &mut Record, keep_team: bool) -> Option<Decision> {
        let d = routing::decide(&self.rules, rec, &self.roster)?;
        routing::assign(rec, &d, keep_team);
        routing::advance(&mut self.roster, &d);
        if d.turn.is_some() {
            self.moved.insert(d.rule_id);
        }
        Some(d)
    }

    /// Adds one write per moved cursor to `cs` (an insert the first time, else an update expecting
    /// the version read), and keeps the written rows as the next expected state.
    pub(crate) fn flush(&mut self, cs: &mut ChangeSet) {
        for rule in std::mem::take(&mut self.moved) {
            let next = self.roster.cursors.get(&rule).copied().unwrap_or(0);
            let w = routing::cursor_write(cs.tenant, rule, next, self.rows.get(&rule), cs.at);
            if let Write::Insert(r) | Write::Update { record: r, .. } = &w {
                self.rows.insert(rule, r.clone());
            }
            cs.writes.push(w);
        }
    }
}

/// Who gets a lead: its owner and team after routing, and the decision (`None`: no rule decided;
/// the input's owner or the creator's default stands).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Routed {
    pub owner_id: Option<Id>,
    pub team_id: Option<Id>,
    pub decision: Option<Decision>,
}

impl Routed {
    fn of(rec: &Record, decision: Option<Decision>) -> Routed {
        Routed {
            owner_id: rec.id_of("owner_id"),
            team_id: rec.id_of("team_id"),
            decision,
        }
    }
}

/// One row of a routing dry run over a CSV file.
#[derive(Clone, Debug, Serialize)]
pub struct DryRunRow {
    /// The data row's number (1: the first row after the header).
    pub row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed: Option<Routed>,
    /// Why the row is not a valid lead (then nothing is routed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl<S: Store> Service<S> {
    /// The routing of one use case over the tenant's rules; `None` when the tenant has no active
    /// rule (then nothing else is read). Cursors are read from the store (an import reads its own
    /// inside its session, [`Router::set_cursors`]).
    pub(crate) async fn router(&self, tenant: Id, lead_custom: &CustomSpecs) -> Result<Option<Router>> {
        let active = Filter::Or(vec![
            Filter::eq(routing::fields::ACTIVE, true),
            Filter::IsNull {
                field: routing::fields::ACTIVE.into(),
            },
        ]);
        let stored = self
            .store
            .query(tenant, &ROUTING_RULE, &StoreQuery::by_id(active, MAX_RULES))
            .await?;
        self.router_of(tenant, lead_custom, &stored).await
    }

    /// [`Service::router`] over the rules `stored` (in id order; the first [`MAX_RULES`] active
    /// ones count).
    async fn router_of(&self, tenant: Id, lead_custom: &CustomSpecs, stored: &[Record]) -> Result<Option<Router>> {
        let now = self.clock.now();
        let mut rules: Vec<Rule> = stored
            .iter()
            .filter_map(|r| Rule::from_record(r, lead_custom, now))
            .take(MAX_RULES as usize)
            .collect();
        if rules.is_empty() {
            return Ok(None);
        }
        routing::sort_rules(&mut rules);
        let users = self
            .store
            .query(tenant, &entity::USER, &StoreQuery::by_id(Filter::All, MAX_USERS))
            .await?;
        let mut roster = Roster {
            members: users.iter().map(routing::Member::from_record).collect(),
            ..Default::default()
        };
        // Open leads of the members of teams that a load-balancing rule may pick from.
        let mut teams = BTreeSet::new();
        for r in &rules {
            match &r.assign {
                Assign::FewestOpen(t) => {
                    teams.insert(*t);
                }
                Assign::Territory(map) => teams.extend(map.iter().map(|(_, t)| *t)),
                Assign::User(_) | Assign::RoundRobin(_) => {}
            }
        }
        if !teams.is_empty() {
            let open = self.open_leads_filter(tenant).await?;
            for t in teams {
                for m in roster.team(t).into_iter().map(|m| m.id).collect::<Vec<_>>() {
                    let f = Filter::and([open.clone(), Filter::eq("owner_id", m)]);
                    let n = self.store.count(tenant, &LEAD, &f).await?;
                    roster.open.insert(m, n);
                }
            }
        }
        let mut router = Router {
            rules,
            roster,
            rows: BTreeMap::new(),
            moved: BTreeSet::new(),
        };
        if router.rules.iter().any(|r| matches!(r.assign, Assign::RoundRobin(_))) {
            let q = StoreQuery::by_id(Filter::All, MAX_RULES);
            router.set_cursors(self.store.query(tenant, &ROUTING_CURSOR, &q).await?);
        }
        Ok(Some(router))
    }

    /// The routing step of a create: routes `rec` (in `cs` already, by its last audit entry and
    /// write) and adds the decision to its audit entry and the cursor writes to `cs`.
    ///
    /// The rules come from the lead's configuration (`ctx`, cached while the rules are unchanged):
    /// most tenants have none, and then a create reads nothing for routing.
    pub(crate) async fn route_create(
        &self,
        tenant: Id,
        ctx: &WriteCtx,
        input: &Map<String, Json>,
        rec: &mut Record,
    ) -> Result<Option<(Decision, Router)>> {
        if routing::explicit_owner(input) {
            return Ok(None);
        }
        // Inactive rules among the cached ones are dropped by `Rule::from_record`.
        let router = match ctx.records.get(ROUTING_RULE.name) {
            Some(stored) => self.router_of(tenant, &ctx.custom, stored).await?,
            None => self.router(tenant, &ctx.custom).await?,
        };
        let Some(mut router) = router else {
            return Ok(None);
        };
        Ok(router.route(rec, input).map(|d| (d, router)))
    }

    /// Re-routes a stored lead by the tenant's rules now (an owner set by hand is replaced): one
    /// change set with the update, its audit entry naming the rule, and the cursor's move. The lead
    /// is unchanged when no rule decides or the decision is its current owner and team. Needs the
    /// permission to update the lead and write its owner and team.
    pub async fn route_lead(&self, actor: &Actor, id: Id) -> Result<(Record, Routed)> {
        let scope = actor.authorize(&LEAD, Action::Update)?;
        actor.check_writable(&LEAD, Action::Update, &["owner_id".into(), "team_id".into()])?;
        // A concurrent create took the round-robin turn this one read: decide again.
        retrying(|| async {
            let cur = self.visible(actor, &LEAD, id).await?;
            if !self.in_scope_of(actor, &cur, scope).await? {
                return Err(Error::forbidden(Action::Update, LEAD.name, vec![]));
            }
            let custom = self.custom_specs(actor.tenant, &LEAD).await?;
            let Some(mut router) = self.router(actor.tenant, &custom).await? else {
                return Ok((self.present(actor, cur.clone()).await?, Routed::of(&cur, None)));
            };
            let mut rec = cur.clone();
            let Some(d) = router.route_always(&mut rec, false) else {
                return Ok((self.present(actor, cur.clone()).await?, Routed::of(&cur, None)));
            };
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            if rec.values != cur.values {
                rec.version = cur.version + 1;
                rec.updated_at = cs.at;
                let mut changes = diff(Some(&cur), Some(&rec));
                changes.push(d.audit_change());
                cs.audit.push(self.audit_entry(actor, "route", &rec, changes));
                cs.events.push(self.event("lead.updated", &rec));
                cs.writes.push(Write::Update {
                    record: rec.clone(),
                    expected_version: cur.version,
                });
                self.restage_scope(&cur, &rec, &mut cs).await?;
            }
            router.flush(&mut cs);
            self.apply(cs).await?;
            let routed = Routed::of(&rec, Some(d));
            Ok((self.present(actor, rec).await?, routed))
        })
        .await
    }

    /// Who would get each lead: the leads are validated like a create by the actor (each one's
    /// errors are its own), scored, and routed by the tenant's rules in order, each decision counting
    /// for the next (round-robin turns, open leads), without writing anything. Needs the permission
    /// to read routing rules and create leads.
    pub async fn route_dry_run(&self, actor: &Actor, leads: &[Map<String, Json>]) -> Result<Vec<Result<Routed>>> {
        actor.authorize(&ROUTING_RULE, Action::Read)?;
        if leads.len() > MAX_DRY_RUN_ROWS {
            return Err(Error::LimitExceeded {
                what: "dry run leads".into(),
                limit: MAX_DRY_RUN_ROWS as u64,
            });
        }
        let ctx = self.write_ctx(actor.tenant, &LEAD).await?;
        self.dry_run_with(actor, leads.iter(), &ctx).await
    }

    /// [`Service::route_dry_run`] over CSV rows (a header row of lead field names, then one lead per
    /// row; cells are text read by each field's type, empty cells are not set), for `crm route
    /// --dry-run`.
    pub async fn route_dry_run_csv<R: std::io::Read + Send>(&self, actor: &Actor, input: R) -> Result<Vec<DryRunRow>> {
        actor.authorize(&ROUTING_RULE, Action::Read)?;
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|e| Error::field("csv", codes::INVALID_FORMAT, super::transfer::csv_msg(&e)))?
            .clone();
        let mut rows: Vec<std::result::Result<Map<String, Json>, FieldError>> = Vec::new();
        for rec in rdr.records() {
            if rows.len() == MAX_DRY_RUN_ROWS {
                return Err(Error::LimitExceeded {
                    what: "dry run rows".into(),
                    limit: MAX_DRY_RUN_ROWS as u64,
                });
            }
            rows.push(match rec {
                Ok(r) => Ok(headers
                    .iter()
                    .zip(r.iter())
                    .filter(|(_, c)| !c.trim().is_empty())
                    .map(|(h, c)| (h.trim().to_owned(), Json::String(c.to_owned())))
                    .collect()),
                Err(e) => Err(FieldError::new(
                    "csv",
                    codes::INVALID_FORMAT,
                    super::transfer::csv_msg(&e),
                )),
            });
        }
        let mut ctx = self.write_ctx(actor.tenant, &LEAD).await?;
        ctx.vctx.source = crate::validate::Source::Text;
        let valid: Vec<&Map<String, Json>> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut answers = self.dry_run_with(actor, valid.into_iter(), &ctx).await?.into_iter();
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let row = i as u64 + 1;
                let answer = match r {
                    Ok(_) => answers
                        .next()
                        .unwrap_or_else(|| Err(Error::internal("a dry run row went missing"))),
                    Err(e) => Err(Error::Validation(vec![e])),
                };
                match answer {
                    Ok(routed) => DryRunRow {
                        row,
                        routed: Some(routed),
                        errors: Vec::new(),
                    },
                    Err(e) => DryRunRow {
                        row,
                        routed: None,
                        errors: super::transfer::row_errors(e),
                    },
                }
            })
            .collect())
    }

    async fn dry_run_with<'a>(
        &self,
        actor: &Actor,
        leads: impl Iterator<Item = &'a Map<String, Json>>,
        ctx: &crate::entity::WriteCtx,
    ) -> Result<Vec<Result<Routed>>> {
        let mut router = self.router(actor.tenant, &ctx.custom).await?;
        let mut out = Vec::new();
        for input in leads {
            let built = self.build_create(actor, &LEAD, input, ctx);
            out.push(match built {
                Ok(mut rec) => {
                    let d = router.as_mut().and_then(|r| r.route(&mut rec, input));
                    Ok(Routed::of(&rec, d))
                }
                Err(e) if e.is_storage_failure() => return Err(e),
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }
}

/// Most leads one routing back-test routes.
pub const MAX_BACKTEST_LEADS: usize = 50_000;

/// One past lead of a routing back-test ([`Service::routing_backtest`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoutingBacktestRow {
    pub lead_id: Id,
    pub created_at: crate::value::Timestamp,
    /// Who owns the lead now.
    pub actual_owner_id: Option<Id>,
    /// Who today's rules give it to (`None`: no rule decides).
    pub routed_owner_id: Option<Id>,
    pub routed_team_id: Option<Id>,
    /// The deciding rule's name and strategy.
    pub rule: Option<String>,
    pub strategy: Option<&'static str>,
}

impl<S: Store> Service<S> {
    /// How today's routing rules would have spread past leads: the leads the actor may read that
    /// match the filter language `q` (all when `None`), oldest first, each routed by the tenant's
    /// active rules as if it arrived now — every member starting at zero open leads and every round
    /// robin at its first turn, each decision counting for the next, as in a dry run. Nothing is
    /// written. Needs read access to leads and routing rules; `LimitExceeded` past
    /// [`MAX_BACKTEST_LEADS`].
    pub async fn routing_backtest(&self, actor: &Actor, q: Option<&str>) -> Result<Vec<RoutingBacktestRow>> {
        actor.authorize(&ROUTING_RULE, Action::Read)?;
        let custom = self.custom_specs(actor.tenant, &LEAD).await?;
        let mut router = self.router(actor.tenant, &custom).await?;
        if let Some(r) = router.as_mut() {
            r.roster.open.clear();
            r.roster.cursors.clear();
        }
        let mut req = crate::query::ListRequest {
            q: q.map(str::to_owned),
            sort: vec![
                crate::query::SortKey::asc("created_at"),
                crate::query::SortKey::asc("id"),
            ],
            limit: Some(crate::query::MAX_BULK_PAGE_SIZE),
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.list_bulk(actor, LEAD.name, &req).await?;
            for lead in page.items {
                if out.len() == MAX_BACKTEST_LEADS {
                    return Err(Error::LimitExceeded {
                        what: "routing back-test leads".into(),
                        limit: MAX_BACKTEST_LEADS as u64,
                    });
                }
                let mut rec = lead.clone();
                let d = router.as_mut().and_then(|r| r.route_always(&mut rec, false));
                out.push(RoutingBacktestRow {
                    lead_id: lead.id,
                    created_at: lead.created_at,
                    actual_owner_id: lead.id_of("owner_id"),
                    routed_owner_id: d.as_ref().map(|d| d.owner_id),
                    routed_team_id: d.as_ref().and_then(|d| d.team_id),
                    rule: d.as_ref().map(|d| d.rule.clone()),
                    strategy: d.as_ref().map(|d| d.strategy),
                });
            }
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }
}
