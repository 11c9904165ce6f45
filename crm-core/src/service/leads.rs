//! Lead-specific use cases: scoring (on write, on demand, for the whole tenant), publishing scoring
//! models, conversion to a customer, and the pipeline summary.

use super::Service;
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, FieldChange, Write};
use crate::entity::lead::{fields as lead_fields, set_score};
use crate::entity::{self, ACTIVITY, LEAD, SCORING_MODEL};
use crate::error::{Error, FieldError, Result, codes};
use crate::pipeline::{Pipeline, StageKind, default_pipeline};
use crate::progress::{Progress, Unit};
use crate::query::{AggregateQuery, Filter, Measure, Op, SortKey, StoreQuery};
use crate::record::Record;
use crate::scoring::{CompiledModel, ScoreResult, ScoringModel, default_model};
use crate::store::Store;
use crate::validate::{self, Mode};
use crate::value::{Id, Money, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Options of a lead conversion.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertOptions {
    /// Also create a company from the lead's `company_name` (if it has one).
    #[serde(default)]
    pub create_company: bool,
}

/// The result of converting a lead.
#[derive(Clone, Debug)]
pub struct Conversion {
    pub lead: Record,
    pub contact: Record,
    pub company: Option<Record>,
}

/// The result of re-scoring a tenant's leads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescoreReport {
    pub scanned: u64,
    pub changed: u64,
    pub model_version: i64,
}

/// One stage of the pipeline summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    pub key: String,
    pub label: String,
    pub kind: StageKind,
    pub count: u64,
    /// Sum of estimated values (absent when the reader may not see values).
    pub value: Option<Money>,
}

const RESCORE_BATCH: u32 = 1000;
const MAX_ACTIVITIES_PER_LEAD: u32 = 1000;
const MODEL_CACHE_SIZE: usize = 256;

impl<S: Store> Service<S> {
    /// The tenant's published scoring model (compiled) and its version; the built-in default model
    /// (version 0) when none is published.
    pub async fn scoring_model(&self, tenant: Id) -> Result<(Arc<CompiledModel>, i64)> {
        let custom = self.custom_specs(tenant, &LEAD).await?;
        let published = self.published_record(tenant).await?;
        let version = published
            .as_ref()
            .and_then(|r| r.get("model_version"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        // Compiling is pure, so a compiled model is reused for as long as the model record and the
        // custom fields it may refer to are unchanged.
        let key = (
            tenant,
            published.as_ref().map(|r| (r.id, r.version)),
            fingerprint(&custom),
        );
        if let Some(c) = self.models.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((c, version));
        }
        let m = match &published {
            Some(r) => parse_model(r)?,
            None => default_model(),
        };
        let c = Arc::new(
            m.compile(&custom)
                .map_err(|e| Error::Validation(prefix("definition", e)))?,
        );
        if let Ok(mut cache) = self.models.lock() {
            if cache.len() >= MODEL_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(key, c.clone());
        }
        Ok((c, version))
    }

    /// The tenant's published scoring model record (the latest model version), if any.
    async fn published_record(&self, tenant: Id) -> Result<Option<Record>> {
        let q = StoreQuery {
            filter: Filter::eq("status", "published"),
            sort: vec![SortKey::desc("model_version"), SortKey::asc("id")],
            limit: 1,
        };
        Ok(self.store.query(tenant, &SCORING_MODEL, &q).await?.into_iter().next())
    }

    /// The definition of the model that scores the tenant's leads: the published scoring model, or
    /// the built-in default model when none is published. What a back-test or a preview starts
    /// from. Needs read access to scoring models and their `definition`.
    pub async fn published_model(&self, actor: &Actor) -> Result<ScoringModel> {
        let scope = actor.authorize(&SCORING_MODEL, Action::Read)?;
        if !actor.role.can_read_field(&SCORING_MODEL, "definition") {
            return Err(Error::forbidden(
                Action::Read,
                SCORING_MODEL.name,
                vec!["definition".into()],
            ));
        }
        match self.published_record(actor.tenant).await? {
            Some(r) if actor.in_scope(&r, scope) => parse_model(&r),
            Some(r) => Err(Error::not_found(SCORING_MODEL.name, r.id)),
            None => Ok(default_model()),
        }
    }

    /// The definition of a stored scoring model the actor may read (a draft or a published one), for
    /// back-tests and previews. Needs read access to its `definition`.
    pub async fn stored_model(&self, actor: &Actor, id: Id) -> Result<ScoringModel> {
        let rec = self.visible(actor, &SCORING_MODEL, id).await?;
        if !actor.role.can_read_field(&SCORING_MODEL, "definition") {
            return Err(Error::forbidden(
                Action::Read,
                SCORING_MODEL.name,
                vec!["definition".into()],
            ));
        }
        parse_model(&rec)
    }

    /// Scores an unsaved lead with its activities (validated and normalised as a create would, with
    /// the tenant's settings and custom fields) as of `as_of` (default now), under `model` or, when
    /// `None`, the model that scores the tenant's leads. Writes nothing; needs read access to leads'
    /// scores.
    pub async fn preview_score(
        &self,
        actor: &Actor,
        input: &crate::scoring::UnsavedLead,
        model: Option<&ScoringModel>,
        as_of: Option<Timestamp>,
    ) -> Result<ScoreResult> {
        actor.authorize(&LEAD, Action::Read)?;
        if !actor.role.can_read_field(&LEAD, "score") {
            return Err(Error::forbidden(Action::Read, "lead", vec!["score".into()]));
        }
        let vctx = self.vctx(actor.tenant).await?;
        let custom = self.custom_specs(actor.tenant, &LEAD).await?;
        let as_of = as_of.unwrap_or(vctx.now);
        match model {
            Some(m) => crate::scoring::preview_score(Some(m), input, &custom, &vctx, as_of),
            None => {
                let (m, _) = self.scoring_model(actor.tenant).await?;
                crate::scoring::preview::preview_with(Ok(&m), input, &custom, &vctx, as_of)
            }
        }
    }

    /// The filter of the tenant's open leads: a status that is an open stage of the tenant's
    /// pipeline (not won, not lost).
    pub async fn open_leads_filter(&self, tenant: Id) -> Result<Filter> {
        let pipeline = self.pipeline(tenant, None).await?;
        Ok(Filter::In {
            field: "status".into(),
            values: pipeline.stage_keys(StageKind::Open).map(Value::from).collect(),
        })
    }

    /// The pipeline a lead moves through: its own, the tenant's default, or the built-in one.
    pub async fn pipeline(&self, tenant: Id, id: Option<Id>) -> Result<Pipeline> {
        let rec = match id {
            Some(id) => self.store.get(tenant, &entity::PIPELINE, id).await?,
            None => {
                let q = StoreQuery::by_id(Filter::eq("is_default", true), 1);
                self.store
                    .query(tenant, &entity::PIPELINE, &q)
                    .await?
                    .into_iter()
                    .next()
            }
        };
        Ok(rec
            .and_then(|r| Pipeline::from_record(&r))
            .unwrap_or_else(default_pipeline))
    }

    /// A lead's activities that can still count (newest first).
    async fn activities_for(&self, tenant: Id, lead: Id, m: &CompiledModel, now: Timestamp) -> Result<Vec<Record>> {
        let mut parts = vec![Filter::eq("lead_id", lead)];
        if let Some(days) = m.lookback_days() {
            parts.push(Filter::cmp("occurred_at", Op::Ge, now.plus_days(-days)));
        }
        let q = StoreQuery {
            filter: Filter::and(parts),
            sort: vec![SortKey::desc("occurred_at"), SortKey::asc("id")],
            limit: MAX_ACTIVITIES_PER_LEAD,
        };
        self.store.query(tenant, &ACTIVITY, &q).await
    }

    /// Scores a stored lead being changed, counting its stored activities.
    pub(crate) async fn score_into(&self, rec: &mut Record, model: Option<&(Arc<CompiledModel>, i64)>) -> Result<()> {
        let now = self.clock.now();
        let loaded;
        let (m, version) = match model {
            Some(m) => m,
            None => {
                loaded = self.scoring_model(rec.tenant).await?;
                &loaded
            }
        };
        let acts = self.activities_for(rec.tenant, rec.id, m, now).await?;
        let (score, temp) = m.score(rec, &acts, now);
        set_score(rec, score, temp, *version, now);
        Ok(())
    }

    /// After a write to a record that feeds another's score (an activity of a lead), adds the parent's
    /// new score to the change set. `removed` is a child leaving the parent (deleted or moved).
    pub(crate) async fn rescore_parent(&self, child: &Record, removed: Option<Id>, cs: &mut ChangeSet) -> Result<()> {
        let Some(field) = child.entity.rescores else {
            return Ok(());
        };
        let Some(parent_id) = child.id_of(field) else {
            return Ok(());
        };
        // The lead may already be written in this change set (an activity that sets its next
        // follow-up): score that state, in that write.
        let staged = cs.staged_mut(&LEAD, parent_id).map(|r| r.clone());
        let parent = match staged.clone() {
            Some(r) => r,
            None => match self.store.get(child.tenant, &LEAD, parent_id).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        let now = self.clock.now();
        let (m, version) = self.scoring_model(child.tenant).await?;
        let mut acts = self.activities_for(child.tenant, parent_id, &m, now).await?;
        acts.retain(|a| a.id != child.id);
        if removed.is_none() {
            // Keep newest-first order (the engine's fast path).
            let at = |r: &Record| r.get("occurred_at").and_then(Value::as_timestamp);
            let pos = acts.iter().position(|a| at(a) < at(child)).unwrap_or(acts.len());
            acts.insert(pos, child.clone());
        }
        let (score, temp) = m.score(&parent, &acts, now);
        let mut next = parent.clone();
        set_score(&mut next, score, temp, version, now);
        if removed.is_none() {
            entity::lead::touch(&mut next, child);
        }
        if next.values != parent.values {
            match (staged, cs.staged_mut(&LEAD, parent_id)) {
                (Some(_), Some(slot)) => *slot = next.clone(),
                _ => cs.writes.push(derived(&parent, &next)),
            }
            cs.events.push(self.event("lead.scored", &next));
        }
        Ok(())
    }

    /// Explains a lead's score as of a time (now by default) under the tenant's published model.
    pub async fn explain_score(&self, actor: &Actor, lead_id: Id, as_of: Option<Timestamp>) -> Result<ScoreResult> {
        let (m, _) = self.scoring_model(actor.tenant).await?;
        self.explain_with_compiled(actor, lead_id, &m, as_of).await
    }

    /// Explains what a (draft) model would score a lead: previews before publishing.
    pub async fn explain_with(
        &self,
        actor: &Actor,
        lead_id: Id,
        model: &ScoringModel,
        as_of: Option<Timestamp>,
    ) -> Result<ScoreResult> {
        let custom = self.custom_specs(actor.tenant, &LEAD).await?;
        let m = model.compile(&custom).map_err(Error::Validation)?;
        self.explain_with_compiled(actor, lead_id, &m, as_of).await
    }

    async fn explain_with_compiled(
        &self,
        actor: &Actor,
        lead_id: Id,
        m: &CompiledModel,
        as_of: Option<Timestamp>,
    ) -> Result<ScoreResult> {
        let lead = self.visible(actor, &LEAD, lead_id).await?;
        if !actor.role.can_read_field(&LEAD, "score") {
            return Err(Error::forbidden(Action::Read, "lead", vec!["score".into()]));
        }
        let as_of = as_of.unwrap_or_else(|| self.clock.now());
        let acts = self.activities_for(actor.tenant, lead_id, m, as_of).await?;
        let acts: Vec<Record> = acts
            .into_iter()
            .filter(|a| {
                a.get("occurred_at")
                    .and_then(Value::as_timestamp)
                    .is_some_and(|t| t <= as_of)
            })
            .collect();
        Ok(m.evaluate(&lead, &acts, as_of))
    }

    /// Re-scores every lead of the tenant as of now (scores decay, so run it periodically). Writes
    /// only scores that changed, in batches, without bumping versions (no conflicts with editors).
    pub async fn rescore_all(&self, actor: &Actor) -> Result<RescoreReport> {
        self.rescore_all_with(actor, &Progress::none()).await
    }

    /// [`Self::rescore_all`], reporting the leads scanned of the tenant's leads after each batch.
    pub async fn rescore_all_with(&self, actor: &Actor, progress: &Progress) -> Result<RescoreReport> {
        if actor.authorize(&LEAD, Action::Update)? != Scope::Tenant {
            return Err(Error::forbidden(Action::Update, "lead", vec![]));
        }
        let report = self.rescore(actor.tenant, None, progress).await?;
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let summary = serde_json::to_value(&report).unwrap_or_default();
        cs.audit.push(self.audit_raw(
            actor,
            "rescore",
            "lead",
            None,
            vec![FieldChange {
                field: "score".into(),
                old: Json::Null,
                new: summary.clone(),
            }],
        ));
        cs.events
            .push(self.event_raw("lead.rescored", actor.tenant, "lead", None, summary));
        self.apply(cs).await?;
        Ok(report)
    }

    /// Re-scores the given leads (after an import of their activities). Scores are derived data, so
    /// this runs as the system whatever the importer's lead permissions.
    pub(crate) async fn rescore_ids(&self, actor: &Actor, ids: Vec<Id>) -> Result<RescoreReport> {
        self.rescore(actor.tenant, Some(ids), &Progress::none()).await
    }

    async fn rescore(&self, tenant: Id, ids: Option<Vec<Id>>, progress: &Progress) -> Result<RescoreReport> {
        let now = self.clock.now();
        let total = match (&ids, progress.is_none()) {
            (_, true) => None,
            (Some(ids), false) => Some(ids.len() as u64),
            (None, false) => Some(self.store.count(tenant, &LEAD, &Filter::All).await?),
        };
        let (m, version) = self.scoring_model(tenant).await?;
        let mut report = RescoreReport {
            model_version: version,
            ..Default::default()
        };
        let mut after: Option<Id> = None;
        let mut chunks = ids.as_ref().map(|ids| ids.chunks(RESCORE_BATCH as usize));
        loop {
            let filter = match chunks.as_mut() {
                Some(c) => match c.next() {
                    Some(batch) => Filter::In {
                        field: "id".into(),
                        values: batch.iter().copied().map(Value::Id).collect(),
                    },
                    None => break,
                },
                None => after.map_or(Filter::All, |id| Filter::cmp("id", Op::Gt, id)),
            };
            let leads = self
                .store
                .query(tenant, &LEAD, &StoreQuery::by_id(filter, RESCORE_BATCH))
                .await?;
            let Some(last) = leads.last() else {
                if chunks.is_some() { continue } else { break }
            };
            after = Some(last.id);
            let mut parts = vec![Filter::In {
                field: "lead_id".into(),
                values: leads.iter().map(|l| Value::Id(l.id)).collect(),
            }];
            if let Some(days) = m.lookback_days() {
                parts.push(Filter::cmp("occurred_at", Op::Ge, now.plus_days(-days)));
            }
            let q = StoreQuery {
                filter: Filter::and(parts),
                sort: vec![SortKey::desc("occurred_at"), SortKey::asc("id")],
                limit: u32::MAX,
            };
            let mut by_lead: HashMap<Id, Vec<Record>> = HashMap::new();
            for a in self.store.query(tenant, &ACTIVITY, &q).await? {
                if let Some(l) = a.id_of("lead_id") {
                    by_lead.entry(l).or_default().push(a);
                }
            }
            let mut cs = self.change_set(tenant, None);
            for lead in &leads {
                report.scanned += 1;
                let acts = by_lead.get(&lead.id).map_or(&[][..], Vec::as_slice);
                let (score, temp) = m.score(lead, acts, now);
                let mut next = lead.clone();
                set_score(&mut next, score, temp, version, now);
                // Activities written in bulk (an import) touch a hot lead as a logged one does.
                for a in acts {
                    entity::lead::touch(&mut next, a);
                }
                let moved = |f: &str| next.get(f) != lead.get(f);
                if moved("score") || moved("temperature") || moved(lead_fields::HOT_UNTOUCHED_SINCE) {
                    report.changed += 1;
                    cs.writes.push(derived(lead, &next));
                }
            }
            if !cs.writes.is_empty() {
                self.apply(cs).await?;
            }
            // Leads created meanwhile may pass the count: never report above the total.
            progress.report(report.scanned, total.map(|t| t.max(report.scanned)), Unit::Records);
        }
        progress.report(report.scanned, Some(report.scanned), Unit::Records);
        Ok(report)
    }

    /// Publishes a draft (or retired) scoring model: its workflow's `publish` transition (the
    /// previously published model is retired, the new one gets the next model version), after which
    /// every lead is re-scored with it.
    pub async fn publish_model(
        &self,
        actor: &Actor,
        model_id: Id,
        expected_version: u64,
    ) -> Result<(Record, RescoreReport)> {
        let (rec, report) = self
            .run_transition(
                actor,
                SCORING_MODEL.name,
                model_id,
                expected_version,
                "publish",
                &Map::new(),
            )
            .await?;
        Ok((rec, report.unwrap_or_default()))
    }

    /// Converts a lead into a contact (and optionally a company) in one change set: the lead moves to
    /// the pipeline's won stage and records what it became.
    pub async fn convert_lead(
        &self,
        actor: &Actor,
        lead_id: Id,
        expected_version: u64,
        opts: &ConvertOptions,
    ) -> Result<Conversion> {
        self.convert_lead_as(actor, lead_id, expected_version, opts, None).await
    }

    /// [`Service::convert_lead`], creating the contact (and the company) under the given ids when
    /// there are (a sync replay creates them under the device's ids); the change set carries its
    /// [`Intent::Convert`](crate::sync::Intent::Convert).
    pub(crate) async fn convert_lead_as(
        &self,
        actor: &Actor,
        lead_id: Id,
        expected_version: u64,
        opts: &ConvertOptions,
        ids: Option<(Id, Option<Id>)>,
    ) -> Result<Conversion> {
        let scope = actor.authorize(&LEAD, Action::Update)?;
        actor.authorize(&entity::CONTACT, Action::Create)?;
        let lead = self.visible(actor, &LEAD, lead_id).await?;
        if !actor.in_scope(&lead, scope) {
            return Err(Error::forbidden(Action::Update, "lead", vec![]));
        }
        if lead.version != expected_version {
            return Err(Error::Conflict {
                entity: "lead".into(),
                id: lead_id.to_string(),
                expected: expected_version,
                actual: lead.version,
            });
        }
        if lead.id_of("contact_id").is_some() {
            return Err(Error::field(
                "contact_id",
                codes::INVALID_TRANSITION,
                "lead is already converted",
            ));
        }
        let vctx = self.vctx(actor.tenant).await?;
        let now = vctx.now;
        let carry = |fields: &[&str]| -> Map<String, Json> {
            fields
                .iter()
                .filter_map(|f| {
                    lead.get(f)
                        .filter(|v| !v.is_null())
                        .map(|v| ((*f).to_owned(), v.to_json()))
                })
                .collect()
        };
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let company = match (opts.create_company, lead.str("company_name")) {
            (true, Some(name)) => {
                actor.authorize(&entity::COMPANY, Action::Create)?;
                let mut input = carry(&[
                    "email",
                    "phone",
                    "address_line",
                    "city",
                    "region",
                    "postal_code",
                    "country",
                    "owner_id",
                    "team_id",
                    "location_id",
                ]);
                input.insert("name".into(), json!(name));
                input.insert("customer_type".into(), json!("commercial"));
                let id = ids.and_then(|(_, c)| c).unwrap_or_else(|| self.ids.new_id(now));
                let mut c = Record::empty(&entity::COMPANY, actor.tenant, id, now);
                validate::apply_input(&mut c, &input, &Default::default(), &vctx, Mode::Create)
                    .map_err(|e| Error::Validation(prefix("company", e)))?;
                self.push_change(actor, "create", "company.created", None, &c, &mut cs);
                Some(c)
            }
            _ => None,
        };
        let mut input = carry(&[
            "first_name",
            "last_name",
            "email",
            "phone",
            "address_line",
            "city",
            "region",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "notes",
            "tags",
            "owner_id",
            "team_id",
            "location_id",
        ]);
        if !input.contains_key("first_name") {
            let fallback = lead
                .str("company_name")
                .or(lead.str("last_name"))
                .or(lead.str("email"))
                .or(lead.str("phone"))
                .unwrap_or("Unknown");
            input.insert("first_name".into(), json!(fallback));
            input.remove("last_name");
        }
        input.insert(
            "customer_type".into(),
            json!(if company.is_some() { "commercial" } else { "residential" }),
        );
        if let Some(c) = &company {
            input.insert("company_id".into(), json!(c.id.to_string()));
        }
        let contact_id = ids.map_or_else(|| self.ids.new_id(now), |(c, _)| c);
        let mut contact = Record::empty(&entity::CONTACT, actor.tenant, contact_id, now);
        validate::apply_input(&mut contact, &input, &Default::default(), &vctx, Mode::Create)
            .map_err(|e| Error::Validation(prefix("contact", e)))?;
        contact.set("source_lead_id", lead.id);
        self.push_change(actor, "create", "contact.created", None, &contact, &mut cs);

        let pipeline = self.pipeline(actor.tenant, lead.id_of("pipeline_id")).await?;
        let won = pipeline
            .stages
            .iter()
            .find(|s| s.kind == StageKind::Won)
            .map(|s| s.key.clone());
        let mut next = lead.clone();
        next.set("contact_id", contact.id);
        next.set("company_id", company.as_ref().map(|c| c.id));
        next.set("converted_at", now);
        if let Some(w) = won {
            next.set("status", w);
        }
        next.version += 1;
        next.updated_at = now;
        self.score_into(&mut next, None).await?;
        self.push_change(actor, "convert", "lead.converted", Some(&lead), &next, &mut cs);
        cs.intent = Some(crate::sync::Intent::Convert {
            lead: lead.id,
            expected_version,
            create_company: opts.create_company,
            contact: contact.id,
            company: company.as_ref().map(|c| c.id),
        });
        self.apply(cs).await?;
        Ok(Conversion {
            lead: actor.redact(next),
            contact: actor.redact(contact),
            company: company.map(|c| actor.redact(c)),
        })
    }

    /// Leads per pipeline stage with their estimated value, within the actor's read scope.
    pub async fn pipeline_summary(&self, actor: &Actor) -> Result<Vec<StageSummary>> {
        let scope = actor.authorize(&LEAD, Action::Read)?;
        if !actor.role.can_read_field(&LEAD, "status") {
            return Err(Error::forbidden(Action::Read, "lead", vec!["status".into()]));
        }
        let with_value = actor.role.can_read_field(&LEAD, "estimated_value");
        let groups = self
            .store
            .aggregate(actor.tenant, &LEAD, &{
                let q = AggregateQuery::count_by(actor.scope_filter(&LEAD, scope), "status");
                if with_value {
                    q.with(Measure::Sum(lead_fields::ESTIMATED_VALUE.into()))
                } else {
                    q
                }
            })
            .await?;
        let pipeline = self.pipeline(actor.tenant, None).await?;
        let mut out: Vec<StageSummary> = pipeline
            .stages
            .iter()
            .map(|s| StageSummary {
                key: s.key.clone(),
                label: s.label.clone(),
                kind: s.kind,
                count: 0,
                value: with_value.then_some(Money(0)),
            })
            .collect();
        for g in groups {
            let key = g.keys[0].as_str().unwrap_or_default().to_owned();
            let i = match out.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    out.push(StageSummary {
                        key: key.clone(),
                        label: key,
                        kind: StageKind::Open,
                        count: 0,
                        value: with_value.then_some(Money(0)),
                    });
                    out.len() - 1
                }
            };
            out[i].count += g.count;
            let sum = g.values.get(1).and_then(Value::as_i64).unwrap_or(0);
            out[i].value = out[i].value.map(|v| Money(v.0 + sum));
        }
        Ok(out)
    }
}

/// A derived-fields write from `old` to `new`: only the declared derived fields, no version bump.
fn derived(old: &Record, new: &Record) -> Write {
    let fields = old
        .entity
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.derived)
        .map(|(i, _)| (i, new.values[i].clone()))
        .collect();
    Write::Derived {
        entity: old.entity,
        id: old.id,
        expected_version: old.version,
        fields,
    }
}

fn parse_model(r: &Record) -> Result<ScoringModel> {
    let j = r.get("definition").map(Value::to_json).unwrap_or_default();
    serde_json::from_value(j).map_err(|e| Error::field("definition", codes::INVALID_FORMAT, e.to_string()))
}

fn prefix(p: &str, errs: Vec<FieldError>) -> Vec<FieldError> {
    errs.into_iter()
        .map(|mut e| {
            e.path = format!("{p}.{}", e.path);
            e
        })
        .collect()
}

fn fingerprint(custom: &crate::validate::CustomSpecs) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(custom).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use crate::conformance::{Fixture, block, obj};
    use crate::memory::MemoryStore;
    use crate::scoring::default_model;
    use serde_json::json;

    #[test]
    fn published_model_is_the_default_until_one_is_published() {
        let f = Fixture::new(MemoryStore::new());
        assert_eq!(block(f.svc.published_model(&f.manager)).unwrap(), default_model());
        assert_eq!(block(f.svc.published_model(&f.sales_a)).unwrap(), default_model());

        let mut m = default_model();
        m.name = "Calls matter".into();
        let draft = block(f.svc.create(
            &f.manager,
            "scoring_model",
            &obj(json!({"name": "Calls matter", "definition": serde_json::to_value(&m).unwrap()})),
        ))
        .unwrap();
        assert_eq!(
            block(f.svc.published_model(&f.manager)).unwrap(),
            default_model(),
            "a draft is not published"
        );
        block(f.svc.publish_model(&f.manager, draft.id, draft.version)).unwrap();
        assert_eq!(block(f.svc.published_model(&f.manager)).unwrap(), m);
        assert_eq!(block(f.svc.published_model(&f.admin)).unwrap(), m);
        // What back-tests start from when no model is given: the published one.
        let bt = block(f.svc.backtest(&f.manager, None, None)).unwrap();
        assert_eq!(bt.model, "Calls matter");
        let stored = block(f.svc.stored_model(&f.manager, draft.id)).unwrap();
        assert_eq!(block(f.svc.backtest(&f.manager, Some(&stored), None)).unwrap(), bt);
        assert_eq!(
            block(f.svc.backtest(&f.staff, None, None)).unwrap_err().code(),
            "forbidden"
        );

        // Reading the definition needs read access to scoring models.
        for actor in [&f.staff, &f.tech] {
            assert_eq!(block(f.svc.published_model(actor)).unwrap_err().code(), "forbidden");
        }
    }

    #[test]
    fn preview_scores_an_unsaved_lead_under_the_tenants_model() {
        use crate::scoring::UnsavedLead;
        let f = Fixture::new(MemoryStore::new());
        let lead = UnsavedLead {
            lead: json!({"first_name": "Ann", "source": "referral", "phone": "555 010 7788"}),
            activities: vec![json!({"kind": "call", "direction": "inbound"})],
        };
        // An activity without a time happened now, as on create.
        block(f.svc.preview_score(&f.sales_a, &lead, None, None)).unwrap();
        let lead = UnsavedLead {
            activities: vec![json!({"kind": "call", "direction": "inbound", "occurred_at": "yesterday"})],
            ..lead
        };
        let e = block(f.svc.preview_score(&f.sales_a, &lead, None, None)).unwrap_err();
        assert_eq!(e.field_errors()[0].path, "activities[0].occurred_at");
        let lead = UnsavedLead {
            activities: vec![
                json!({"kind": "call", "direction": "inbound", "occurred_at": crate::conformance::NOW.to_rfc3339()}),
            ],
            ..lead
        };
        let preview = block(f.svc.preview_score(&f.sales_a, &lead, None, None)).unwrap();
        // The same score a create gives (with the same activity logged).
        let saved = f.lead(&f.sales_a, lead.lead.clone());
        let act = obj(json!({"kind": "call", "direction": "inbound", "lead_id": saved.id.to_string()}));
        block(f.svc.log_activity(&f.sales_a, &act)).unwrap();
        let explained = block(f.svc.explain_score(&f.sales_a, saved.id, None)).unwrap();
        assert_eq!(preview.score, explained.score);
        assert!(preview.score > 1, "{preview:?}");
        let mut capped = default_model();
        capped.total_cap = 1;
        capped.tiers.retain(|t| t.min_score == 0);
        let r = block(f.svc.preview_score(&f.sales_a, &lead, Some(&capped), None)).unwrap();
        assert_eq!(r.score, 1, "the model given");
        assert_eq!(
            block(f.svc.preview_score(&f.staff, &lead, None, None))
                .unwrap_err()
                .code(),
            "forbidden"
        );
    }

    #[test]
    fn open_leads_are_the_open_stages_of_the_tenants_pipeline() {
        let f = Fixture::new(MemoryStore::new());
        for status in ["new", "negotiation", "won", "lost"] {
            f.lead(&f.admin, json!({"first_name": status, "status": status}));
        }
        let filter = block(f.svc.open_leads_filter(f.tenant)).unwrap();
        let req = crate::query::ListRequest {
            filter: Some(filter),
            ..Default::default()
        };
        let page = block(f.svc.list(&f.admin, "lead", &req)).unwrap();
        let mut got: Vec<&str> = page.items.iter().filter_map(|r| r.str("status")).collect();
        got.sort_unstable();
        assert_eq!(got, ["negotiation", "new"]);
    }
}
