//! The reports ([`crate::analytics`]) over what the actor may read: each takes a filter-language
//! query over leads (`q`) and computes from store aggregates ([`Service::aggregate`], which applies
//! the actor's scope and field permissions) and scoped reads of the stage history, then folds them
//! with the report's pure function.

use super::{AggregateRequest, Service};
use crate::access::Action;
use crate::access::Actor;
use crate::analytics::breakdown::{self, Breakdown, BreakdownBy, KeyStageCell};
use crate::analytics::cohort::{self, ClosedLead, CohortCell, Cohorts};
use crate::analytics::forecast::{self, Forecast, OpenCell, WonCell};
use crate::analytics::funnel::{self, Funnel, StageTotal};
use crate::analytics::geo::{self, GeoGrid, Point};
use crate::analytics::ltv::{self, CustomerValue, LifetimeValue};
use crate::analytics::parse_choice;
use crate::analytics::productivity::{self, KindWeekCell, LeadCreated, Productivity, TouchCell};
use crate::analytics::velocity::{self, StageEvent, Velocity};
use crate::decimal::Decimal;
use crate::entity::activity::fields as act;
use crate::entity::lead::{self, fields as lead_fields};
use crate::entity::quote::fields as quote_fields;
use crate::entity::stage::{STAGE_CHANGE, fields as sc};
use crate::entity::{ACTIVITY, ACTIVITY_KINDS, COMPANY, CONTACT, LEAD, PIPELINE, QUOTE, QuoteStatus};
use crate::error::{Error, FieldError, Result, codes};
use crate::pipeline::{Pipeline, StageKind, default_pipeline};
use crate::query::aggregate::{Bucket, Group, GroupBy, Measure, bucket_date};
use crate::query::{Filter, ListRequest, MAX_BULK_PAGE_SIZE, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::value::{Money, Timestamp, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use time::UtcOffset;

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
    /// [`Service::productivity`].
    Productivity,
    /// [`Service::cohorts`].
    Cohort,
    /// [`Service::geo_grid`].
    Geo,
    /// [`Service::lifetime_value`].
    LifetimeValue,
}

impl ReportKind {
    /// Every report, by name.
    pub const ALL: [(&'static str, ReportKind); 8] = [
        ("funnel", ReportKind::Funnel),
        ("velocity", ReportKind::Velocity),
        ("forecast", ReportKind::Forecast),
        ("breakdown", ReportKind::Breakdown),
        ("productivity", ReportKind::Productivity),
        ("cohort", ReportKind::Cohort),
        ("geo", ReportKind::Geo),
        ("lifetime_value", ReportKind::LifetimeValue),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("", |(n, _)| n)
    }

    /// The parameters the report takes besides `q`.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            ReportKind::Funnel | ReportKind::Velocity | ReportKind::Forecast => &[],
            ReportKind::Breakdown => &["by"],
            ReportKind::Productivity | ReportKind::Cohort => &["tz"],
            ReportKind::Geo => &["entity", "cell"],
            ReportKind::LifetimeValue => &["entity", "bins"],
        }
    }

    /// The entity types `q` may be over (the first is the default).
    pub fn entities(self) -> &'static [ReportEntity] {
        match self {
            ReportKind::Productivity => &[ReportEntity::Activity],
            ReportKind::Geo => &[ReportEntity::Lead, ReportEntity::Contact, ReportEntity::Company],
            ReportKind::LifetimeValue => &[ReportEntity::Contact, ReportEntity::Company],
            _ => &[ReportEntity::Lead],
        }
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

/// What a report counts (`entity=`): `q` is a filter over this entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportEntity {
    Lead,
    Contact,
    Company,
    Activity,
}

impl ReportEntity {
    pub fn def(self) -> &'static EntityDef {
        match self {
            ReportEntity::Lead => &LEAD,
            ReportEntity::Contact => &CONTACT,
            ReportEntity::Company => &COMPANY,
            ReportEntity::Activity => &ACTIVITY,
        }
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// What a caller asks of a report, read from text parameters by [`ReportRequest::from_params`].
/// Each report takes `q` and the parameters [`ReportKind::parameters`] names; others are refused.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportRequest {
    /// Filter language over what the report counts (leads unless said otherwise), e.g.
    /// `source:referral created>=2025-01-01`.
    pub q: Option<String>,
    /// What the breakdown groups by (default by source).
    pub by: Option<BreakdownBy>,
    /// The UTC offset weeks and months are cut at (productivity, cohort; default UTC).
    pub offset: Option<UtcOffset>,
    /// What the geographic grid counts (`lead`, `contact`, `company`; default leads) or whose
    /// lifetime value is distributed (`contact`, `company`; default contacts).
    pub entity: Option<ReportEntity>,
    /// The geographic grid's cell size in degrees (default [`geo::DEFAULT_CELL`]).
    pub cell: Option<Decimal>,
    /// The lifetime value histogram's bins (default [`ltv::DEFAULT_BINS`], at most [`ltv::MAX_BINS`]).
    pub bins: Option<u32>,
}

impl ReportRequest {
    /// Reads `q=`, `by=` (`source`, `owner`, `team`), `tz=` (`+02:00`), `entity=`, `cell=`
    /// (degrees) and `bins=`; every malformed parameter is reported at once.
    pub fn from_params<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<ReportRequest> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut keep = |r: Result<Option<()>>| {
            if let Err(e) = r {
                match e {
                    Error::Validation(f) => errors.extend(f),
                    Error::InvalidQuery { message, .. } => {
                        errors.push(FieldError::new("tz", codes::INVALID_FORMAT, message))
                    }
                    other => errors.push(FieldError::new("", codes::INVALID_FORMAT, other.to_string())),
                }
            }
        };
        let mut req = ReportRequest {
            q: get("q").filter(|q| !q.trim().is_empty()).map(str::to_owned),
            ..Default::default()
        };
        keep(get("by").map(|s| s.parse().map(|b| req.by = Some(b))).transpose());
        keep(
            get("tz")
                .map(|s| super::parse_offset(s).map(|o| req.offset = Some(o)))
                .transpose(),
        );
        keep(
            get("entity")
                .map(|s| parse_choice("entity", s, &["lead", "contact", "company"]).map(|e| req.entity = Some(e)))
                .transpose(),
        );
        keep(
            get("cell")
                .map(|s| {
                    s.trim()
                        .parse::<Decimal>()
                        .map_err(|_| Error::field("cell", codes::INVALID_FORMAT, "must be a number of degrees"))
                        .and_then(geo::check_cell)
                        .map(|c| req.cell = Some(c))
                })
                .transpose(),
        );
        keep(
            get("bins")
                .map(|s| match s.trim().parse::<u32>() {
                    Ok(b) if (1..=ltv::MAX_BINS).contains(&b) => {
                        req.bins = Some(b);
                        Ok(())
                    }
                    Ok(0) => Err(Error::field("bins", codes::TOO_SMALL, "must be at least 1")),
                    Ok(_) => Err(Error::field(
                        "bins",
                        codes::TOO_LARGE,
                        format!("must be at most {}", ltv::MAX_BINS),
                    )),
                    Err(_) => Err(Error::field("bins", codes::INVALID_FORMAT, "must be a whole number")),
                })
                .transpose(),
        );
        if errors.is_empty() {
            Ok(req)
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// Refuses every parameter `kind` does not take, and an entity it does not count, all at once.
    fn check(&self, kind: ReportKind) -> Result<()> {
        let takes = kind.parameters();
        let given = [
            ("by", self.by.is_some()),
            ("tz", self.offset.is_some()),
            ("entity", self.entity.is_some()),
            ("cell", self.cell.is_some()),
            ("bins", self.bins.is_some()),
        ];
        let mut errors: Vec<FieldError> = given
            .iter()
            .filter(|(p, set)| *set && !takes.contains(p))
            .map(|(p, _)| {
                FieldError::new(
                    *p,
                    codes::UNKNOWN_FIELD,
                    format!("the {} report takes no `{p}`", kind.name()),
                )
            })
            .collect();
        if let Some(e) = self.entity
            && takes.contains(&"entity")
            && !kind.entities().contains(&e)
        {
            let names: Vec<&str> = kind.entities().iter().map(|e| e.name()).collect();
            errors.push(FieldError::new(
                "entity",
                codes::INVALID_OPTION,
                format!("must be one of: {}", names.join(", ")),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    fn entity_for(&self, kind: ReportKind) -> ReportEntity {
        self.entity.unwrap_or(kind.entities()[0])
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
    Productivity(Productivity),
    Cohort(Cohorts),
    Geo(GeoGrid),
    LifetimeValue(LifetimeValue),
}

impl<S: Store> Service<S> {
    /// Runs the report `kind` (see [`ReportKind`]).
    pub async fn report(&self, actor: &Actor, kind: ReportKind, req: &ReportRequest) -> Result<ReportAnswer> {
        req.check(kind)?;
        let q = req.q.as_deref();
        let offset = req.offset.unwrap_or(UtcOffset::UTC);
        Ok(match kind {
            ReportKind::Funnel => ReportAnswer::Funnel(self.funnel(actor, q).await?),
            ReportKind::Velocity => ReportAnswer::Velocity(self.velocity(actor, q).await?),
            ReportKind::Forecast => ReportAnswer::Forecast(self.forecast(actor, q).await?),
            ReportKind::Breakdown => {
                let by = req.by.unwrap_or(BreakdownBy::Source);
                ReportAnswer::Breakdown(self.breakdown(actor, by, q).await?)
            }
            ReportKind::Productivity => ReportAnswer::Productivity(self.productivity(actor, q, offset).await?),
            ReportKind::Cohort => ReportAnswer::Cohort(self.cohorts(actor, q, offset).await?),
            ReportKind::Geo => {
                let cell = req.cell.unwrap_or(geo::DEFAULT_CELL);
                ReportAnswer::Geo(self.geo_grid(actor, req.entity_for(kind), q, cell).await?)
            }
            ReportKind::LifetimeValue => {
                let bins = req.bins.unwrap_or(ltv::DEFAULT_BINS);
                ReportAnswer::LifetimeValue(self.lifetime_value(actor, req.entity_for(kind), q, bins).await?)
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
        // The won leads (id and value), and when each was won: its latest change into a won stage.
        // Two aggregates joined here, not a read per lead (the store seam has no join).
        let won_filter = Filter::In {
            field: lead_fields::STATUS.into(),
            values: won_keys.clone(),
        };
        let won_leads = self
            .scoped_groups(
                actor,
                &LEAD,
                q,
                Some(won_filter),
                vec![GroupBy::Field("id".into())],
                vec![Measure::Sum(lead_fields::ESTIMATED_VALUE.into())],
                UtcOffset::UTC,
            )
            .await?;
        let won_at = self.latest_changes_into(actor, won_keys).await?;
        let mut won: BTreeMap<Option<time::Date>, (u64, i64)> = BTreeMap::new();
        for g in &won_leads {
            let month = key_text(&g.keys[0])
                .and_then(|id| won_at.get(&id))
                .map(|at| at.date().replace_day(1).unwrap_or(at.date()));
            let e = won.entry(month).or_default();
            e.0 += 1;
            e.1 += money(&g.values[0]).0;
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
                key: key_text(&g.keys[0]),
                stage: text(&g.keys[1]),
                leads: g.count,
                value: money(&g.values[1]),
            })
            .collect();
        Ok(breakdown::breakdown(&pipeline, by, &cells))
    }

    /// Team productivity over the activities the actor may read that match `q` (filter language
    /// over activities; see [`crate::analytics::productivity`]): one aggregate per activity kind by
    /// owner and week (at `offset`), one by owner and lead with each pair's first activity, and the
    /// creation time of the touched leads the actor may read.
    pub async fn productivity(&self, actor: &Actor, q: Option<&str>, offset: UtcOffset) -> Result<Productivity> {
        let week = GroupBy::Bucket(act::OCCURRED_AT.into(), Bucket::Week);
        let mut cells = Vec::new();
        for kind in ACTIVITY_KINDS {
            let groups = self
                .scoped_groups(
                    actor,
                    &ACTIVITY,
                    q,
                    Some(Filter::eq(act::KIND, *kind)),
                    vec![GroupBy::Field(OWNER.into()), week.clone()],
                    vec![Measure::Count],
                    offset,
                )
                .await?;
            cells.extend(groups.iter().map(|g| KindWeekCell {
                user: key_text(&g.keys[0]),
                week: date(&g.keys[1]),
                kind: (*kind).to_owned(),
                activities: g.count,
            }));
        }
        let touched = self
            .scoped_groups(
                actor,
                &ACTIVITY,
                q,
                Some(not_null(act::LEAD_ID)),
                vec![GroupBy::Field(OWNER.into()), GroupBy::Field(act::LEAD_ID.into())],
                vec![Measure::Min(act::OCCURRED_AT.into())],
                offset,
            )
            .await?;
        let touches: Vec<TouchCell> = touched
            .iter()
            .filter_map(|g| {
                Some(TouchCell {
                    user: key_text(&g.keys[0]),
                    lead: key_text(&g.keys[1])?,
                    first_at: g.values[0].as_timestamp()?,
                })
            })
            .collect();
        let leads = if actor.authorize(&LEAD, Action::Read).is_ok() {
            let mut ids: Vec<&str> = touches.iter().map(|t| t.lead.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            self.lead_creation_times(actor, &ids).await?
        } else {
            Vec::new()
        };
        Ok(productivity::productivity(&cells, &touches, &leads))
    }

    /// When each of the leads `ids` the actor may read was created: by `IN` lists for a few, else
    /// one aggregate of every lead the actor may read (cheaper than thousands of lists).
    async fn lead_creation_times(&self, actor: &Actor, ids: &[&str]) -> Result<Vec<LeadCreated>> {
        let created = vec![Measure::Min("created_at".into())];
        let by_id = || vec![GroupBy::Field("id".into())];
        let groups = if ids.len() <= IN_CHUNK * 20 {
            let mut out = Vec::new();
            for c in ids.chunks(IN_CHUNK) {
                let of = Filter::In {
                    field: "id".into(),
                    values: c.iter().map(|i| Value::Text((*i).to_owned())).collect(),
                };
                out.extend(
                    self.scoped_groups(actor, &LEAD, None, Some(of), by_id(), created.clone(), UtcOffset::UTC)
                        .await?,
                );
            }
            out
        } else {
            self.scoped_groups(actor, &LEAD, None, None, by_id(), created, UtcOffset::UTC)
                .await?
        };
        Ok(groups
            .iter()
            .filter_map(|g| {
                Some(LeadCreated {
                    lead: key_text(&g.keys[0])?,
                    created_at: g.values[0].as_timestamp()?,
                })
            })
            .collect())
    }

    /// Cohort retention of the leads the actor may read that match `q` (see
    /// [`crate::analytics::cohort`]), months cut at `offset`, up to the current month: one aggregate
    /// by creation month and status, the leads in won and in lost stages with their creation month,
    /// and their stage changes into won or lost stages.
    pub async fn cohorts(&self, actor: &Actor, q: Option<&str>, offset: UtcOffset) -> Result<Cohorts> {
        let pipeline = self.report_pipeline(actor).await?;
        let month = GroupBy::Bucket("created_at".into(), Bucket::Month);
        let groups = self
            .scoped_groups(
                actor,
                &LEAD,
                q,
                None,
                vec![month.clone(), GroupBy::Field(lead_fields::STATUS.into())],
                vec![Measure::Count],
                offset,
            )
            .await?;
        let cells: Vec<CohortCell> = groups
            .iter()
            .filter_map(|g| {
                Some(CohortCell {
                    month: date(&g.keys[0])?,
                    stage: text(&g.keys[1]),
                    leads: g.count,
                })
            })
            .collect();
        // The leads closed now, with their cohort.
        let mut closed_now: HashMap<String, (time::Date, bool)> = HashMap::new();
        let mut closed_keys = Vec::new();
        for (kind, won) in [(StageKind::Won, true), (StageKind::Lost, false)] {
            let keys: Vec<Value> = pipeline.stage_keys(kind).map(|k| Value::Text(k.to_owned())).collect();
            closed_keys.extend(keys.iter().cloned());
            let of = Filter::In {
                field: lead_fields::STATUS.into(),
                values: keys,
            };
            let groups = self
                .scoped_groups(
                    actor,
                    &LEAD,
                    q,
                    Some(of),
                    vec![GroupBy::Field("id".into()), month.clone()],
                    vec![Measure::Count],
                    offset,
                )
                .await?;
            for g in &groups {
                if let (Some(id), Some(m)) = (key_text(&g.keys[0]), date(&g.keys[1])) {
                    closed_now.insert(id, (m, won));
                }
            }
        }
        // When each closed: its latest change into a won or lost stage.
        let closed_at = self.latest_changes_into(actor, closed_keys).await?;
        let closed: Vec<ClosedLead> = closed_now
            .iter()
            .map(|(id, (cohort, won))| ClosedLead {
                cohort: *cohort,
                closed: closed_at
                    .get(id)
                    .and_then(|at| bucket_date(&Value::Timestamp(*at), Bucket::Month, offset)),
                won: *won,
            })
            .collect();
        let today = bucket_date(&Value::Timestamp(self.clock.now()), Bucket::Day, offset)
            .unwrap_or_else(|| self.clock.now().date());
        Ok(cohort::cohorts(&cells, &closed, today))
    }

    /// The records of `entity` (leads, contacts or companies) the actor may read that match `q`
    /// and have coordinates, in a grid of `cell` degrees (see [`crate::analytics::geo`]): one
    /// aggregate by latitude and longitude (leads' estimated value summed).
    pub async fn geo_grid(
        &self,
        actor: &Actor,
        entity: ReportEntity,
        q: Option<&str>,
        cell: Decimal,
    ) -> Result<GeoGrid> {
        let cell = geo::check_cell(cell)?;
        let def = entity.def();
        let mut measures = vec![Measure::Count];
        let valued = entity == ReportEntity::Lead;
        if valued {
            measures.push(Measure::Sum(lead_fields::ESTIMATED_VALUE.into()));
        }
        let located = Filter::and([not_null(LATITUDE), not_null(LONGITUDE)]);
        let groups = self
            .scoped_groups(
                actor,
                def,
                q,
                Some(located),
                vec![GroupBy::Field(LATITUDE.into()), GroupBy::Field(LONGITUDE.into())],
                measures,
                UtcOffset::UTC,
            )
            .await?;
        let points: Vec<Point> = groups
            .iter()
            .filter_map(|g| {
                Some(Point {
                    latitude: number(&g.keys[0])?,
                    longitude: number(&g.keys[1])?,
                    records: g.count,
                    value: valued.then(|| money(&g.values[1])),
                })
            })
            .collect();
        Ok(geo::grid(def.name, cell, &points))
    }

    /// The lifetime value distribution of the contacts or companies the actor may read that match
    /// `q` (see [`crate::analytics::ltv`]): the estimated value of the won leads and the totals of
    /// the accepted quotes the actor may read, each one aggregate by customer.
    pub async fn lifetime_value(
        &self,
        actor: &Actor,
        entity: ReportEntity,
        q: Option<&str>,
        bins: u32,
    ) -> Result<LifetimeValue> {
        let (def, link) = match entity {
            ReportEntity::Contact => (&*CONTACT, lead_fields::CONTACT_ID),
            ReportEntity::Company => (&*COMPANY, lead_fields::COMPANY_ID),
            _ => {
                return Err(Error::field(
                    "entity",
                    codes::INVALID_OPTION,
                    "must be one of: contact, company",
                ));
            }
        };
        let customers = self
            .scoped_groups(
                actor,
                def,
                q,
                None,
                vec![GroupBy::Field("id".into())],
                vec![Measure::Count],
                UtcOffset::UTC,
            )
            .await?;
        let mut values: HashMap<String, CustomerValue> = customers
            .iter()
            .filter_map(|g| key_text(&g.keys[0]))
            .map(|id| {
                (
                    id,
                    CustomerValue {
                        from_leads: Money(0),
                        from_quotes: Money(0),
                    },
                )
            })
            .collect();
        if actor.authorize(&LEAD, Action::Read).is_ok() {
            let pipeline = self.report_pipeline(actor).await?;
            let won = Filter::In {
                field: lead_fields::STATUS.into(),
                values: pipeline
                    .stage_keys(StageKind::Won)
                    .map(|k| Value::Text(k.to_owned()))
                    .collect(),
            };
            let groups = self
                .scoped_groups(
                    actor,
                    &LEAD,
                    None,
                    Some(Filter::and([won, not_null(link)])),
                    vec![GroupBy::Field(link.into())],
                    vec![Measure::Sum(lead_fields::ESTIMATED_VALUE.into())],
                    UtcOffset::UTC,
                )
                .await?;
            for g in &groups {
                if let Some(v) = key_text(&g.keys[0]).and_then(|id| values.get_mut(&id)) {
                    v.from_leads = money(&g.values[0]);
                }
            }
        }
        if actor.authorize(&QUOTE, Action::Read).is_ok() {
            let accepted = Filter::eq(quote_fields::STATUS, QuoteStatus::Accepted.key());
            let groups = self
                .scoped_groups(
                    actor,
                    &QUOTE,
                    None,
                    Some(Filter::and([accepted, not_null(link)])),
                    vec![GroupBy::Field(link.into())],
                    vec![Measure::Sum(quote_fields::TOTAL.into())],
                    UtcOffset::UTC,
                )
                .await?;
            for g in &groups {
                if let Some(v) = key_text(&g.keys[0]).and_then(|id| values.get_mut(&id)) {
                    v.from_quotes = money(&g.values[0]);
                }
            }
        }
        let values: Vec<CustomerValue> = values.into_values().collect();
        Ok(ltv::distribution(def.name, &values, bins))
    }

    /// The groups of an aggregate over the records of `def` the actor may read matching `q` and
    /// `filter` (no cap on the groups: see [`Service::aggregate_list`]).
    #[allow(clippy::too_many_arguments)]
    async fn scoped_groups(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        q: Option<&str>,
        filter: Option<Filter>,
        group_by: Vec<GroupBy>,
        measures: Vec<Measure>,
        offset: UtcOffset,
    ) -> Result<Vec<Group>> {
        let list = ListRequest {
            q: q.map(str::to_owned),
            filter,
            ..Default::default()
        };
        Ok(self
            .aggregate_list(actor, def, &list, group_by, measures, offset)
            .await?
            .groups)
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
            filter: None,
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
    /// narrowed by `filter`. Few matching leads are read by `IN` lists of their ids; many (more than
    /// twenty lists) by one read of every lead's changes kept by id here, since thousands of
    /// queries cost more than one pass.
    async fn lead_stage_changes(&self, actor: &Actor, q: Option<&str>, filter: Option<Filter>) -> Result<Vec<Record>> {
        let filter = filter.unwrap_or(Filter::All);
        let Some(q) = q else {
            return self.stage_changes_of(actor, None, filter).await;
        };
        let ids: Vec<String> = self
            .read_all_leads(actor, Some(q), None)
            .await?
            .iter()
            .map(|l| l.id.to_string())
            .collect();
        if ids.len() <= IN_CHUNK * 20 {
            return self.stage_changes_of(actor, Some(&ids), filter).await;
        }
        let ids: std::collections::HashSet<String> = ids.into_iter().collect();
        let mut rows = self.stage_changes_of(actor, None, filter).await?;
        rows.retain(|r| r.str(sc::RECORD_ID).is_some_and(|id| ids.contains(id)));
        Ok(rows)
    }

    /// When each lead the actor may read last changed into one of the stages `keys`, by lead id:
    /// one aggregate of the stage history (the latest `at` per lead), whatever the number of leads.
    async fn latest_changes_into(&self, actor: &Actor, keys: Vec<Value>) -> Result<HashMap<String, Timestamp>> {
        let into = Filter::and([
            Filter::eq(sc::ENTITY, LEAD.name),
            Filter::In {
                field: sc::TO_STATE.into(),
                values: keys,
            },
        ]);
        let groups = self
            .scoped_groups(
                actor,
                &STAGE_CHANGE,
                None,
                Some(into),
                vec![GroupBy::Field(sc::RECORD_ID.into())],
                vec![Measure::Max(sc::AT.into())],
                UtcOffset::UTC,
            )
            .await?;
        Ok(groups
            .iter()
            .filter_map(|g| Some((key_text(&g.keys[0])?, g.values[0].as_timestamp()?)))
            .collect())
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

const OWNER: &str = "owner_id";
const LATITUDE: &str = "latitude";
const LONGITUDE: &str = "longitude";

fn not_null(field: &str) -> Filter {
    Filter::Not(Box::new(Filter::IsNull { field: field.into() }))
}

/// A key as text: ids in their text form, `None` for a null.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Id(id) => Some(id.to_string()),
        v => text(v),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(x) => Some(*x),
        Value::Int(i) => Some(*i as f64),
        _ => None,
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
