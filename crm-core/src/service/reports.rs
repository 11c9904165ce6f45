//! The reports ([`crate::analytics`]) over what the actor may read: each takes a filter-language
//! query over leads (`q`) and computes from store aggregates ([`Service::aggregate`], which applies
//! the actor's scope and field permissions) and scoped reads of the stage history, then folds them
//! with the report's pure function.

use super::{AggregateRequest, Service};
use crate::access::Actor;
use crate::analytics::breakdown::{self, Breakdown, BreakdownBy, KeyStageCell};
use crate::analytics::forecast::{self, Forecast, OpenCell, WonCell};
use crate::analytics::funnel::{self, Funnel, StageTotal};
use crate::analytics::velocity::{self, StageEvent, Velocity};
use crate::entity::lead::{self, fields as lead_fields};
use crate::entity::stage::{STAGE_CHANGE, fields as sc};
use crate::entity::{LEAD, PIPELINE};
use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, StageKind, default_pipeline};
use crate::query::aggregate::{Bucket, Group, GroupBy, Measure};
use crate::query::{Filter, ListRequest, MAX_BULK_PAGE_SIZE, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Money, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Most ids in one `IN` list of a bound filter (the binder refuses longer lists).
const IN_CHUNK: usize = 100;

/// The reports a caller may ask for by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// [`Service::funnel`].
    Funnel,
    /// [`Service::velocity`].
    Velocity,
    /// [`Service::forecast`].
    Forecast,
    /// [`Service::breakdown`].
    Breakdown,
}

impl ReportKind {
    /// Every report, by name.
    pub const ALL: [(&'static str, ReportKind); 4] = [
        ("funnel", ReportKind::Funnel),
        ("velocity", ReportKind::Velocity),
        ("forecast", ReportKind::Forecast),
        ("breakdown", ReportKind::Breakdown),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("", |(n, _)| n)
    }
}

impl std::str::FromStr for ReportKind {
    type Err = Error;

    /// A report's name; anything else is `NotFound` (of entity `report`).
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| Error::not_found("report", s))
    }
}

/// What a caller asks of a report, read from text parameters by [`ReportRequest::from_params`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportRequest {
    /// Filter language over leads, e.g. `source:referral created>=2025-01-01`.
    pub q: Option<String>,
    /// What the breakdown groups by (default by source); other reports refuse it.
    pub by: Option<BreakdownBy>,
}

impl ReportRequest {
    /// Reads `q=` and `by=` (`source`, `owner`, `team`).
    pub fn from_params<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<ReportRequest> {
        Ok(ReportRequest {
            q: get("q").filter(|q| !q.trim().is_empty()).map(str::to_owned),
            by: get("by").map(str::parse).transpose()?,
        })
    }
}

/// A report's answer (serialized as the report's own result).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReportAnswer {
    Funnel(Funnel),
    Velocity(Velocity),
    Forecast(Forecast),
    Breakdown(Breakdown),
}

impl<S: Store> Service<S> {
    /// Runs the report `kind` (see [`ReportKind`]).
    pub async fn report(&self, actor: &Actor, kind: ReportKind, req: &ReportRequest) -> Result<ReportAnswer> {
        if req.by.is_some() && kind != ReportKind::Breakdown {
            return Err(Error::field(
                "by",
                crate::error::codes::UNKNOWN_FIELD,
                format!("the {} report takes no `by`", kind.name()),
            ));
        }
        let q = req.q.as_deref();
        Ok(match kind {
            ReportKind::Funnel => ReportAnswer::Funnel(self.funnel(actor, q).await?),
            ReportKind::Velocity => ReportAnswer::Velocity(self.velocity(actor, q).await?),
            ReportKind::Forecast => ReportAnswer::Forecast(self.forecast(actor, q).await?),
            ReportKind::Breakdown => {
                let by = req.by.unwrap_or(BreakdownBy::Source);
                ReportAnswer::Breakdown(self.breakdown(actor, by, q).await?)
            }
        })
    }

    /// The funnel of the tenant's default pipeline over the leads the actor may read that match `q`
    /// (see [`crate::analytics::funnel`]): one aggregate by status.
    pub async fn funnel(&self, actor: &Actor, q: Option<&str>) -> Result<Funnel> {
        let pipeline = self.report_pipeline(actor).await?;
        let groups = self
            .lead_aggregate(actor, q, vec![GroupBy::Field(lead_fields::STATUS.into())])
            .await?;
        let totals: Vec<StageTotal> = groups
            .iter()
            .map(|g| StageTotal {
                stage: text(&g.keys[0]),
                leads: g.count,
                value: money(&g.values[1]),
            })
            .collect();
        Ok(funnel::funnel(&pipeline, &totals))
    }

    /// Time in each stage, win rate and time to close (see [`crate::analytics::velocity`]) from the
    /// stage history of the leads the actor may read that match `q`. Without `q` the stage changes
    /// are read alone (their scope is their lead's); with it, the matching leads are read first.
    pub async fn velocity(&self, actor: &Actor, q: Option<&str>) -> Result<Velocity> {
        let pipeline = self.report_pipeline(actor).await?;
        let rows = self.lead_stage_changes(actor, q, None).await?;
        let events: Vec<StageEvent> = rows
            .iter()
            .filter_map(|r| {
                Some(StageEvent {
                    record: r.str(sc::RECORD_ID)?.to_owned(),
                    to: r.str(sc::TO_STATE)?.to_owned(),
                    at: r.get(sc::AT).and_then(Value::as_timestamp)?,
                })
            })
            .collect();
        Ok(velocity::velocity(&pipeline, &events))
    }

    /// The weighted forecast by expected close month beside the value won per month (see
    /// [`crate::analytics::forecast`]), over the leads the actor may read that match `q`: one
    /// aggregate of leads by status and expected close month, and the won leads with the time of
    /// their latest change into a won stage (UTC month; a won lead without one counts as won in no
    /// known month).
    pub async fn forecast(&self, actor: &Actor, q: Option<&str>) -> Result<Forecast> {
        let pipeline = self.report_pipeline(actor).await?;
        let overrides = lead::stage_probabilities(&self.org(actor.tenant).await?);
        let groups = self
            .lead_aggregate(
                actor,
                q,
                vec![
                    GroupBy::Field(lead_fields::STATUS.into()),
                    GroupBy::Bucket(lead_fields::EXPECTED_CLOSE_DATE.into(), Bucket::Month),
                ],
            )
            .await?;
        let open_keys: Vec<&str> = pipeline.stage_keys(StageKind::Open).collect();
        let open: Vec<OpenCell> = groups
            .iter()
            .filter(|g| text(&g.keys[0]).is_some_and(|s| open_keys.contains(&s.as_str())))
            .map(|g| OpenCell {
                stage: text(&g.keys[0]),
                month: date(&g.keys[1]),
                leads: g.count,
                value: money(&g.values[1]),
            })
            .collect();
        let won_keys: Vec<Value> = pipeline
            .stage_keys(StageKind::Won)
            .map(|k| Value::Text(k.to_owned()))
            .collect();
        let won_filter = Filter::In {
            field: lead_fields::STATUS.into(),
            values: won_keys.clone(),
        };
        let won_leads = self.read_all_leads(actor, q, Some(won_filter)).await?;
        // When each won lead was won: its latest change into a won stage.
        let mut won_at: HashMap<String, time::Date> = HashMap::new();
        let into_won = Filter::In {
            field: sc::TO_STATE.into(),
            values: won_keys,
        };
        let ids: Vec<String> = won_leads.iter().map(|l| l.id.to_string()).collect();
        for r in self.stage_changes_of(actor, Some(&ids), into_won).await? {
            let (Some(id), Some(at)) = (r.str(sc::RECORD_ID), r.get(sc::AT).and_then(Value::as_timestamp)) else {
                continue;
            };
            let d = at.date();
            won_at
                .entry(id.to_owned())
                .and_modify(|e| *e = (*e).max(d))
                .or_insert(d);
        }
        let mut won: BTreeMap<Option<time::Date>, (u64, i64)> = BTreeMap::new();
        for l in &won_leads {
            let month = won_at.get(&l.id.to_string()).map(|d| d.replace_day(1).unwrap_or(*d));
            let v = l.get(lead_fields::ESTIMATED_VALUE).map_or(Money(0), money);
            let e = won.entry(month).or_default();
            e.0 += 1;
            e.1 += v.0;
        }
        let won: Vec<WonCell> = won
            .into_iter()
            .map(|(month, (leads, v))| WonCell {
                month,
                leads,
                value: Money(v),
            })
            .collect();
        Ok(forecast::forecast(&pipeline, &overrides, &open, &won))
    }

    /// Conversion and revenue by source, owner or team over the leads the actor may read that match
    /// `q` (see [`crate::analytics::breakdown`]): one aggregate by the key and status.
    pub async fn breakdown(&self, actor: &Actor, by: BreakdownBy, q: Option<&str>) -> Result<Breakdown> {
        let pipeline = self.report_pipeline(actor).await?;
        let groups = self
            .lead_aggregate(
                actor,
                q,
                vec![
                    GroupBy::Field(by.field().into()),
                    GroupBy::Field(lead_fields::STATUS.into()),
                ],
            )
            .await?;
        let cells: Vec<KeyStageCell> = groups
            .iter()
            .map(|g| KeyStageCell {
                key: match &g.keys[0] {
                    Value::Null => None,
                    Value::Id(id) => Some(id.to_string()),
                    v => text(v),
                },
                stage: text(&g.keys[1]),
                leads: g.count,
                value: money(&g.values[1]),
            })
            .collect();
        Ok(breakdown::breakdown(&pipeline, by, &cells))
    }

    /// The pipeline reports follow: the tenant's default pipeline, else the built-in one.
    async fn report_pipeline(&self, actor: &Actor) -> Result<Pipeline> {
        let all = self
            .store
            .query(actor.tenant, &PIPELINE, &StoreQuery::by_id(Filter::All, 1000))
            .await?;
        Ok(all
            .iter()
            .find(|r| r.get("is_default") == Some(&Value::Bool(true)))
            .and_then(Pipeline::from_record)
            .unwrap_or_else(default_pipeline))
    }

    /// Leads the actor may read matching `q`, grouped by `by`, counted and their estimated value
    /// summed (values: count, sum).
    async fn lead_aggregate(&self, actor: &Actor, q: Option<&str>, by: Vec<GroupBy>) -> Result<Vec<Group>> {
        let req = AggregateRequest {
            q: q.map(str::to_owned),
            group_by: by,
            measures: vec![Measure::Count, Measure::Sum(lead_fields::ESTIMATED_VALUE.into())],
            offset: None,
        };
        Ok(self.aggregate(actor, LEAD.name, &req).await?.groups)
    }

    /// Every lead the actor may read matching `q` and `filter`, page by page.
    async fn read_all_leads(&self, actor: &Actor, q: Option<&str>, filter: Option<Filter>) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut req = ListRequest {
            q: q.map(str::to_owned),
            filter,
            limit: Some(MAX_BULK_PAGE_SIZE),
            ..Default::default()
        };
        loop {
            let page = self.list_bulk(actor, LEAD.name, &req).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The stage changes of the leads the actor may read matching `q` (all of them without `q`),
    /// narrowed by `filter`.
    async fn lead_stage_changes(&self, actor: &Actor, q: Option<&str>, filter: Option<Filter>) -> Result<Vec<Record>> {
        let ids = match q {
            None => None,
            Some(_) => Some(
                self.read_all_leads(actor, q, None)
                    .await?
                    .iter()
                    .map(|l| l.id.to_string())
                    .collect::<Vec<_>>(),
            ),
        };
        self.stage_changes_of(actor, ids.as_deref(), filter.unwrap_or(Filter::All))
            .await
    }

    /// The lead stage changes the actor may read, of the leads `ids` (every lead's when `None`),
    /// matching `filter`.
    async fn stage_changes_of(&self, actor: &Actor, ids: Option<&[String]>, filter: Filter) -> Result<Vec<Record>> {
        let of_leads = Filter::and([Filter::eq(sc::ENTITY, LEAD.name), filter]);
        let chunks: Vec<Filter> = match ids {
            None => vec![of_leads],
            Some(ids) => ids
                .chunks(IN_CHUNK)
                .map(|c| {
                    Filter::and([
                        of_leads.clone(),
                        Filter::In {
                            field: sc::RECORD_ID.into(),
                            values: c.iter().map(|i| Value::Text(i.clone())).collect(),
                        },
                    ])
                })
                .collect(),
        };
        let mut out = Vec::new();
        for f in chunks {
            let mut req = ListRequest {
                filter: Some(f),
                limit: Some(MAX_BULK_PAGE_SIZE),
                ..Default::default()
            };
            loop {
                let page = self.list_bulk(actor, STAGE_CHANGE.name, &req).await?;
                out.extend(page.items);
                match page.next_cursor {
                    Some(c) => req.cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(
            other
                .to_json()
                .as_str()
                .map_or_else(|| other.to_json().to_string(), str::to_owned),
        ),
    }
}

fn money(v: &Value) -> Money {
    match v {
        Value::Money(m) => *m,
        _ => Money(0),
    }
}

fn date(v: &Value) -> Option<time::Date> {
    match v {
        Value::Date(d) => Some(*d),
        _ => None,
    }
}
