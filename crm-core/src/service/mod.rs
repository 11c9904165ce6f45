//! The use cases, written once for every store and every frontend. Each write runs the same steps:
//! authorize, validate and normalise, derive (scores), build one [`ChangeSet`], apply it atomically
//! (optimistic concurrency on versions). Reads are narrowed by the actor's scope before they reach the
//! store and redacted by its field permissions after.

mod activities;
mod analytics;
mod attachments;
mod auth;
mod backtest;
mod calendar;
mod callers;
mod check_ins;
mod children;
mod compliance;
mod documents;
mod due;
mod exclusive;
mod field_work;
mod front_desk_import;
mod leads;
mod memberships;
mod nested;
mod org_cache;
mod people;
mod provision;
mod pull;
mod quote_jobs;
mod quotes;
mod receive;
mod records;
mod reports;
mod rollups;
mod routing;
mod settling;
mod sync;
mod sync_round;
mod transfer;
mod upsert;
mod workflow;

pub use activities::{CheckIn, CheckedIn};
pub use analytics::{Aggregate, AggregateRequest, MAX_GROUPS, parse_offset};
pub use attachments::{
    AttachInput, BlobUpload, CHUNK, ContentCheck, ContentFacts, MAX_ATTACHMENTS, Upload, UploadCheck, check_upload,
    max_bytes,
};
pub use auth::{Delivery, PasswordHasher, StoredCredential, WebhookTarget};
pub use backtest::{BacktestReport, TierStats};
pub use calendar::{AppointmentItem, AppointmentPage, CalendarFeed, MAX_FEED_ITEMS, MAX_RANGE_DAYS};
pub use check_ins::{CheckInAnswer, CheckInInput};
pub use children::{ChildOp, MAX_CHILD_OPS, MAX_CHILDREN};
pub use compliance::{IntegrityIssue, IntegrityReport};
pub use due::{MAX_MY_FOLLOWUPS, SCHEDULER_LEASE};
pub use field_work::{Board, BoardJob, DayItem, MAX_DAY_ITEMS, MAX_REPORT_JOBS};
#[cfg(any(test, feature = "conformance"))]
pub use front_desk_import::cases as front_desk_import_cases;
pub use front_desk_import::{Counts, PosImportOptions, PosImportReport};
pub use leads::{Conversion, ConvertOptions, RescoreReport, StageSummary};
pub use memberships::{FREEZE_ACCEPTS, RENEW_ACCEPTS};
pub use receive::PullApplied;
pub use reports::{ReportAnswer, ReportEntity, ReportKind, ReportRequest};
pub use rollups::{MAX_REFRESH, REFRESH_PAGE};
pub use routing::{DryRunRow, MAX_BACKTEST_LEADS, MAX_DRY_RUN_ROWS, MAX_RULES, Routed, RoutingBacktestRow};
pub use sync::{
    MAX_REJECTIONS, MAX_SYNC_BATCH, PushApplied, SYNC_ANSWER_TTL_SECS, SYNC_CLAIM_LEASE_SECS, SyncRejection,
};
pub use sync_round::{
    ROUND_MAX_REQUESTS, ROUND_PULL_LIMIT, ROUND_PUSH_BATCH, RemoteError, RoundError, SyncReport, SyncTransport,
    server_base,
};
pub use transfer::{
    ExportOptions, ImportMode, ImportOptions, ImportReport, RowError, check_import_disk, formula_like, formula_safe,
    import_disk_need,
};
pub use upsert::{RowOutcome, UpsertMode, UpsertOptions, UpsertReport, UpsertRequest, UpsertRow};

use crate::access::{Action, Actor, Grant, Role, builtin};
use crate::change::{AuditEntry, ChangeSet, Event, FieldChange};
use crate::clock::{Clock, IdGen};
use crate::entity;
use crate::entity::{Need, WriteCtx};
use crate::error::{Error, FieldError, Result, codes};
use crate::pipeline::Pipeline;
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::scoring::CompiledModel;
use crate::store::Store;
use crate::validate::{self, CustomSpecs, Mode};
use crate::value::{FieldType, Id, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The CRM service over a store. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Service<S> {
    store: S,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    /// Compiled scoring models by (tenant, model record id and version, custom specs fingerprint).
    models: Arc<std::sync::Mutex<ModelCache>>,
    /// Write contexts by (tenant, entity type), valid while their tables' stamp is unchanged
    /// ([`Service::write_ctx`]).
    configs: Arc<std::sync::Mutex<ConfigCache>>,
    /// Resolved callers and the tenants' epochs ([`Service::with_caller_cache`]).
    callers: Arc<std::sync::Mutex<callers::Callers>>,
    /// The organizations presenting records reads ([`Service::with_org_cache`]).
    orgs: Arc<std::sync::Mutex<org_cache::Orgs>>,
    /// Which addresses webhooks may target.
    addresses: crate::address::AddressPolicy,
    /// Where attachment bytes go ([`Service::with_blob_store`]).
    blobs: Option<Arc<dyn crate::blob::BlobStore>>,
}

type ModelCache = std::collections::HashMap<(Id, Option<(Id, u64)>, u64), Arc<CompiledModel>>;

impl<S: Store> Service<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        Service {
            store,
            clock,
            ids,
            models: Default::default(),
            configs: Default::default(),
            callers: Default::default(),
            orgs: Default::default(),
            addresses: Default::default(),
            blobs: None,
        }
    }

    /// This service over another store (a view of this one's, such as a sync replay's
    /// [`settling::Settling`]), sharing its clock, ids, caches and settings.
    pub(crate) fn over<T: Store>(&self, store: T) -> Service<T> {
        Service {
            store,
            clock: self.clock.clone(),
            ids: self.ids.clone(),
            models: self.models.clone(),
            configs: self.configs.clone(),
            callers: self.callers.clone(),
            orgs: self.orgs.clone(),
            addresses: self.addresses,
            blobs: self.blobs.clone(),
        }
    }

    /// Which addresses webhooks may target: public internet addresses only (the default), or any
    /// (an operator's choice for testing against local receivers).
    pub fn with_webhook_addresses(mut self, policy: crate::address::AddressPolicy) -> Self {
        self.addresses = policy;
        self
    }

    pub fn webhook_addresses(&self) -> crate::address::AddressPolicy {
        self.addresses
    }

    /// The underlying store (for operations and tests; use cases go through the service).
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn now(&self) -> crate::value::Timestamp {
        self.clock.now()
    }

    /// Resolves an entity type the generic use cases may reach by name, or `NotFound` (internal types
    /// such as credentials and sessions are reachable only through their own use cases).
    pub fn entity(&self, name: &str) -> Result<&'static EntityDef> {
        entity::entity(name)
            .filter(|d| d.exposure != crate::schema::Exposure::Internal)
            .ok_or_else(|| Error::not_found("entity type", name))
    }

    /// Creates a tenant (platform super-admin use case). The organization's id is the tenant id.
    pub async fn create_organization(&self, input: &Map<String, Json>) -> Result<Record> {
        let now = self.clock.now();
        let id = self.ids.new_id(now);
        let mut rec = Record::empty(&entity::ORGANIZATION, id, id, now);
        let vctx = crate::tenant::validation_ctx(now, None);
        validate::apply_input(&mut rec, input, &CustomSpecs::new(), &vctx, Mode::Create).map_err(Error::Validation)?;
        let actor = Actor::system(id);
        let mut cs = self.change_set(id, None);
        self.push_change(&actor, "create", "organization.created", None, &rec, &mut cs);
        self.apply(cs).await?;
        Ok(rec)
    }

    /// Every tenant id (platform operations).
    pub async fn tenants(&self) -> Result<Vec<Id>> {
        self.store.tenants().await
    }

    /// Resolves the acting user once per request: an active user of the tenant with their role.
    /// Deactivation and role changes take effect on the next call.
    pub async fn actor(&self, tenant: Id, user_id: Id) -> Result<Actor> {
        let user = self
            .store
            .get(tenant, &entity::USER, user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", user_id))?;
        if user.get("active") == Some(&Value::Bool(false)) {
            return Err(Error::forbidden("sign_in", "user", vec!["active".into()]));
        }
        let role_name = user.str("role").unwrap_or_default();
        let role = self.role(tenant, role_name).await?;
        Ok(Actor {
            tenant,
            user_id: Some(user_id),
            team_id: user.id_of("team_id"),
            role: Arc::new(role),
            api_key_id: None,
        })
    }

    /// Resolves the acting user by sign-in email (case-insensitive), like [`Service::actor`].
    pub async fn actor_by_email(&self, tenant: Id, email: &str) -> Result<Actor> {
        let email = validate::normalize_email(email).ok_or_else(|| Error::not_found("user", email))?;
        let q = StoreQuery::by_id(Filter::eq("email", email.as_str()), 1);
        let user = self.store.query(tenant, &entity::USER, &q).await?.into_iter().next();
        let user = user.ok_or_else(|| Error::not_found("user", &email))?;
        self.actor(tenant, user.id).await
    }

    /// A built-in role, or the tenant's custom role of that name.
    pub async fn role(&self, tenant: Id, name: &str) -> Result<Role> {
        if let Some(r) = builtin::by_name(name) {
            return Ok(r);
        }
        let q = StoreQuery::by_id(Filter::eq("name", name), 1);
        let rec = self.store.query(tenant, &entity::ROLE, &q).await?.into_iter().next();
        let grants = rec.and_then(|r| r.get("grants").map(Value::to_json));
        let grants: BTreeMap<String, Grant> = grants
            .and_then(|g| serde_json::from_value(g).ok())
            .ok_or_else(|| Error::field("role", codes::UNKNOWN_REFERENCE, format!("no role {name}")))?;
        Ok(Role {
            name: name.to_owned(),
            grants,
        })
    }

    // ---- shared steps ----

    pub(crate) async fn org(&self, tenant: Id) -> Result<Record> {
        self.store
            .get(tenant, &entity::ORGANIZATION, tenant)
            .await?
            .ok_or_else(|| Error::not_found("organization", tenant))
    }

    pub(crate) async fn vctx(&self, tenant: Id) -> Result<validate::Ctx> {
        let org = self.org(tenant).await?;
        Ok(crate::tenant::validation_ctx(self.clock.now(), Some(&org)))
    }

    /// The tenant's custom field specs for an entity type.
    pub async fn custom_specs(&self, tenant: Id, def: &EntityDef) -> Result<CustomSpecs> {
        if !def.custom_fields {
            return Ok(CustomSpecs::new());
        }
        let q = StoreQuery::by_id(Filter::eq("entity", def.name), 500);
        let mut out = CustomSpecs::new();
        for r in self.store.query(tenant, &entity::CUSTOM_FIELD, &q).await? {
            if let Some((_, key, spec)) = entity::config::custom_field_spec(&r) {
                out.insert(key.to_owned(), spec);
            }
        }
        Ok(out)
    }

    /// Loads a record the actor may read, or `NotFound` (missing, other tenant, or outside read scope).
    pub(crate) async fn visible(&self, actor: &Actor, def: &'static EntityDef, id: Id) -> Result<Record> {
        let scope = actor.authorize(def, Action::Read)?;
        match self.store.get(actor.tenant, def, id).await? {
            Some(r) if self.in_scope_of(actor, &r, scope).await? => Ok(r),
            _ => Err(Error::not_found(def.name, id)),
        }
    }

    /// Checks that changed reference fields point at records of the tenant that the actor can see,
    /// and that unique fields are free. Collects every failure.
    ///
    /// Each field's reads are one check, and the checks are awaited together: on a networked store
    /// (PostgreSQL) they go out at once on pooled connections, so a lead's owner, team and external
    /// id cost one round trip's wait rather than three. An in-process store answers each as it is
    /// polled, in field order, as before.
    pub(crate) async fn check_links(&self, actor: &Actor, rec: &Record, old: Option<&Record>) -> Result<()> {
        let checks = rec.entity.fields.iter().enumerate().filter_map(|(i, f)| {
            let v = &rec.values[i];
            let unchanged = v.is_null() || old.is_some_and(|o| &o.values[i] == v);
            (!unchanged).then(|| self.check_link(actor, rec, f, v))
        });
        let mut errs = Vec::new();
        for found in futures_util::future::join_all(checks).await {
            errs.extend(found?);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errs))
        }
    }

    /// [`Service::check_links`] of one changed field `f` holding `v`: its failures.
    async fn check_link(
        &self,
        actor: &Actor,
        rec: &Record,
        f: &crate::schema::FieldDef,
        v: &Value,
    ) -> Result<Vec<FieldError>> {
        let mut errs = Vec::new();
        if let (FieldType::Ref(target), Value::Id(id)) = (&f.spec.ty, v) {
            let tdef = entity::entity(target).ok_or_else(|| Error::internal(format!("undeclared entity {target}")))?;
            let found = match actor.role.scope(tdef, Action::Read) {
                crate::access::Scope::None => self.store.get(actor.tenant, tdef, *id).await?.is_some(),
                _ => self.visible(actor, tdef, *id).await.is_ok(),
            };
            if !found {
                errs.push(FieldError::new(
                    f.name,
                    codes::UNKNOWN_REFERENCE,
                    format!("no {target} with this id"),
                ));
            }
        }
        if f.unique {
            let q = StoreQuery::by_id(
                Filter::Cmp {
                    field: f.name.into(),
                    op: crate::query::Op::Eq,
                    value: v.clone(),
                },
                2,
            );
            let clash = self
                .store
                .query(actor.tenant, rec.entity, &q)
                .await?
                .iter()
                .any(|o| o.id != rec.id);
            if clash {
                errs.push(FieldError::new(
                    f.name,
                    codes::DUPLICATE,
                    format!("another {} has this {}", rec.entity.name, f.name),
                ));
            }
        }
        Ok(errs)
    }

    /// Loads what writes of one entity type need from the tenant (what its rules list in
    /// [`crate::entity::EntityRules::needs`]), once per use case or per import.
    ///
    /// The configuration cache: what was loaded is kept per tenant and entity type with the
    /// store's [`Store::stamp`] of the tables it was read from ([`config_tables`]), and reused while
    /// the stamp read at the start of the next write is the same. The stamp is read from the
    /// database on every call, so a configuration change made by any process (another server
    /// over the same database, the CLI) is seen by the next write that starts after it committed,
    /// as when everything was read every time. A store without stamps (`None`) caches nothing.
    pub(crate) async fn write_ctx(&self, tenant: Id, def: &'static EntityDef) -> Result<WriteCtx> {
        let tables = config_tables(def);
        // Read before loading: a change committed in between leaves the entry under the older
        // stamp, which the next write no longer matches.
        let stamp = self.store.stamp(tenant, &tables).await?;
        let key = (tenant, def.name);
        if let Some(stamp) = stamp
            && let Some(hit) = self.configs.lock().ok().and_then(|c| c.get(&key).cloned())
            && hit.stamp == stamp
        {
            // What is not the tenant's is the service's now: the time, the webhook address policy.
            let mut ctx = hit.ctx.clone();
            ctx.vctx = crate::tenant::validation_ctx(self.clock.now(), Some(&hit.org));
            ctx.addresses = self.addresses;
            return Ok(ctx);
        }
        let org = self.org(tenant).await?;
        let ctx = self.load_write_ctx(tenant, def, &org).await?;
        if let Some(stamp) = stamp
            && let Ok(mut cache) = self.configs.lock()
        {
            if cache.len() >= CONFIG_CACHE_SIZE {
                cache.clear();
            }
            let entry = CachedCtx {
                stamp,
                org,
                ctx: ctx.clone(),
            };
            cache.insert(key, Arc::new(entry));
        }
        Ok(ctx)
    }

    /// [`Service::write_ctx`] read from the store.
    async fn load_write_ctx(&self, tenant: Id, def: &'static EntityDef, org: &Record) -> Result<WriteCtx> {
        let vctx = crate::tenant::validation_ctx(self.clock.now(), Some(org));
        let custom = self.custom_specs(tenant, def).await?;
        let mut ctx = WriteCtx {
            vctx,
            custom,
            pipelines: Vec::new(),
            default_pipeline: None,
            roles: Vec::new(),
            active_admins: Vec::new(),
            users: Vec::new(),
            teams: Vec::new(),
            related_custom: BTreeMap::new(),
            settings: None,
            model: None,
            records: BTreeMap::new(),
            addresses: self.addresses,
        };
        self.load_needs(tenant, def.rules.needs(), &mut ctx).await?;
        if def.scored {
            ctx.model = Some(self.scoring_model(tenant).await?);
        }
        Ok(ctx)
    }

    /// What a deletion's rules read ([`crate::entity::EntityRules::delete_needs`]); `None` when they
    /// read nothing, so deletes of most types load no tenant data.
    pub(crate) async fn delete_ctx(&self, tenant: Id, def: &'static EntityDef) -> Result<Option<WriteCtx>> {
        let needs = def.rules.delete_needs();
        if needs.is_empty() {
            return Ok(None);
        }
        let mut ctx = WriteCtx {
            vctx: crate::tenant::validation_ctx(self.clock.now(), None),
            custom: CustomSpecs::new(),
            pipelines: Vec::new(),
            default_pipeline: None,
            roles: Vec::new(),
            active_admins: Vec::new(),
            users: Vec::new(),
            teams: Vec::new(),
            related_custom: BTreeMap::new(),
            settings: None,
            model: None,
            records: BTreeMap::new(),
            addresses: self.addresses,
        };
        self.load_needs(tenant, needs, &mut ctx).await?;
        Ok(Some(ctx))
    }

    /// Loads each listed kind of tenant data into the context.
    async fn load_needs(&self, tenant: Id, needs: &[Need], ctx: &mut WriteCtx) -> Result<()> {
        for need in needs {
            match need {
                Need::Pipelines => {
                    let all = self
                        .store
                        .query(tenant, &entity::PIPELINE, &StoreQuery::by_id(Filter::All, 1000))
                        .await?;
                    ctx.default_pipeline = all
                        .iter()
                        .find(|r| r.get("is_default") == Some(&Value::Bool(true)))
                        .and_then(Pipeline::from_record);
                    ctx.pipelines = all
                        .iter()
                        .filter_map(|r| Some((r.id, Pipeline::from_record(r)?)))
                        .collect();
                }
                Need::Settings => ctx.settings = Some(self.org(tenant).await?),
                Need::Roles => {
                    let all = self
                        .store
                        .query(tenant, &entity::ROLE, &StoreQuery::by_id(Filter::All, 1000))
                        .await?;
                    ctx.roles = all.iter().filter_map(|r| r.str("name").map(str::to_owned)).collect();
                }
                Need::ActiveAdmins => {
                    let admins = Filter::and([
                        Filter::eq("role", entity::people::ADMIN_ROLE),
                        Filter::Or(vec![
                            Filter::eq("active", true),
                            Filter::IsNull { field: "active".into() },
                        ]),
                    ]);
                    let q = StoreQuery::by_id(admins, 2);
                    ctx.active_admins = self
                        .store
                        .query(tenant, &entity::USER, &q)
                        .await?
                        .iter()
                        .map(|r| r.id)
                        .collect();
                }
                Need::Users => {
                    let q = StoreQuery::by_id(Filter::All, routing::MAX_USERS);
                    ctx.users = self
                        .store
                        .query(tenant, &entity::USER, &q)
                        .await?
                        .iter()
                        .map(entity::routing::Member::from_record)
                        .collect();
                    let q = StoreQuery::by_id(Filter::All, routing::MAX_USERS);
                    ctx.teams = self
                        .store
                        .query(tenant, &entity::TEAM, &q)
                        .await?
                        .iter()
                        .map(|r| r.id)
                        .collect();
                }
                Need::RecordsOf(name) => {
                    let def = entity::entity(name).ok_or_else(|| Error::not_found("entity type", name))?;
                    let q = StoreQuery::by_id(Filter::All, entity::MAX_CONFIG_RECORDS);
                    ctx.records.insert(def.name, self.store.query(tenant, def, &q).await?);
                }
                Need::CustomFieldsOf(name) => {
                    let other = entity::entity(name).ok_or_else(|| Error::not_found("entity type", name))?;
                    ctx.related_custom.insert(name, self.custom_specs(tenant, other).await?);
                }
            }
        }
        Ok(())
    }

    /// A new change set of a use case: its id (from the id generator), the acting user and the time.
    /// Every use case builds its change set here (the sync log replays and de-duplicates by them).
    pub(crate) fn change_set(&self, tenant: Id, actor: Option<Id>) -> ChangeSet {
        let now = self.clock.now();
        ChangeSet::new(tenant).with_origin(self.ids.new_id(now), actor, now)
    }

    pub(crate) fn audit_entry(
        &self,
        actor: &Actor,
        action: &str,
        rec: &Record,
        changes: Vec<FieldChange>,
    ) -> AuditEntry {
        self.audit_raw(actor, action, rec.entity.name, Some(rec.id), changes)
    }

    pub(crate) fn audit_raw(
        &self,
        actor: &Actor,
        action: &str,
        entity: &str,
        id: Option<Id>,
        changes: Vec<FieldChange>,
    ) -> AuditEntry {
        let now = self.clock.now();
        AuditEntry {
            id: self.ids.new_id(now),
            tenant: actor.tenant,
            seq: 0,
            at: now,
            actor: actor.user_id,
            action: action.to_owned(),
            entity: entity.to_owned(),
            entity_id: id,
            changes,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    pub(crate) fn event(&self, kind: &str, rec: &Record) -> Event {
        self.event_raw(kind, rec.tenant, rec.entity.name, Some(rec.id), rec.to_json())
    }

    pub(crate) fn event_raw(&self, kind: &str, tenant: Id, entity: &str, id: Option<Id>, payload: Json) -> Event {
        let now = self.clock.now();
        Event {
            seq: 0,
            tenant,
            id: self.ids.new_id(now),
            at: now,
            kind: kind.to_owned(),
            entity: entity.to_owned(),
            entity_id: id,
            payload,
        }
    }
}

/// Most (tenant, entity type) write contexts the configuration cache keeps (it starts over when full).
const CONFIG_CACHE_SIZE: usize = 4096;

/// A cached [`WriteCtx`] with the stamp of the tables it was loaded from and the organization
/// record its validation context is rebuilt from (today's date moves on).
#[derive(Debug)]
struct CachedCtx {
    stamp: u64,
    org: Record,
    ctx: WriteCtx,
}

type ConfigCache = std::collections::HashMap<(Id, &'static str), Arc<CachedCtx>>;

/// The tables [`Service::write_ctx`] reads for writes of `def`: the organization, custom fields,
/// what each [`Need`] of its rules loads (kept in step with `load_needs`), and for scored types
/// the scoring models. A change to any of them invalidates the cached context.
fn config_tables(def: &'static EntityDef) -> Vec<&'static EntityDef> {
    let mut out: Vec<&'static EntityDef> = vec![&entity::ORGANIZATION];
    let mut add = |d: &'static EntityDef| {
        if !out.iter().any(|o| std::ptr::eq(*o, d)) {
            out.push(d);
        }
    };
    if def.custom_fields || def.scored {
        add(&entity::CUSTOM_FIELD);
    }
    if def.scored {
        add(&entity::SCORING_MODEL);
    }
    for need in def.rules.needs() {
        match need {
            Need::Pipelines => add(&entity::PIPELINE),
            Need::Settings => {}
            Need::Roles => add(&entity::ROLE),
            Need::ActiveAdmins => add(&entity::USER),
            Need::Users => {
                add(&entity::USER);
                add(&entity::TEAM);
            }
            Need::RecordsOf(name) => {
                if let Some(d) = entity::entity(name) {
                    add(d);
                }
            }
            Need::CustomFieldsOf(_) => add(&entity::CUSTOM_FIELD),
        }
    }
    out
}

/// Optimistic concurrency: the caller must name the version the record is at, else `Conflict`.
pub(crate) fn expect_version(cur: &Record, expected: u64) -> Result<()> {
    if cur.version == expected {
        return Ok(());
    }
    Err(Error::Conflict {
        entity: cur.entity.name.into(),
        id: cur.id.to_string(),
        expected,
        actual: cur.version,
    })
}

/// The field paths an input object names (`custom.x` for custom fields), for write permission checks.
pub(crate) fn input_paths(input: &Map<String, Json>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in input {
        match (k.as_str(), v.as_object()) {
            ("custom", Some(obj)) => out.extend(obj.keys().map(|c| format!("custom.{c}"))),
            _ => out.push(k.clone()),
        }
    }
    out
}

/// Collects a validation error's field errors under `prefix` (`ops[2].quantity`,
/// `quote_lines[1].quantity`), so a batch reports every item's errors at once; any other error is
/// returned as it is.
pub(crate) fn nest(prefix: &str, e: Error, errs: &mut Vec<FieldError>) -> Result<()> {
    match e {
        Error::Validation(fs) => {
            errs.extend(fs.into_iter().map(|mut f| {
                f.path = format!("{prefix}.{}", f.path);
                f
            }));
            Ok(())
        }
        other => Err(other),
    }
}
