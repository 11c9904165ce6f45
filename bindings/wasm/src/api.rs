//! The binding's API at the JSON level: plain Rust, no JS types, so it runs (and is tested) natively as
//! well as in wasm. Every function converts its input, calls crm-core, and converts the result. No rule
//! is decided here.

use crm_core::access::{Actor, Role, builtin};
use crm_core::clock::{Clock, FixedClock, IdGen, SeqIds};
use crm_core::entity;
use crm_core::entity::quote::{approval, totals};
use crm_core::error::{Error, FieldError, Result, codes};
use crm_core::memory::{MemoryStore, SaveMark, Saved};
use crm_core::query::{Filter, FilterSpec, ListRequest, SortKey, text};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::scoring::{ScoringModel, UnsavedLead, default_model, preview_score};
use crm_core::service::Service;
use crm_core::sync::{Provision, PullPage, PushAnswer, PushRequest};
use crm_core::tenant;
use crm_core::validate::{self, CustomSpecs, Mode};
use crm_core::value::{Id, Money, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

/// Drives a crm-core future. Every future of the service over [`MemoryStore`] completes without
/// waiting (there is no I/O), so this never blocks.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn entity(name: &str) -> Result<&'static EntityDef> {
    entity::entity(name).ok_or_else(|| Error::not_found("entity type", name))
}

fn bad_input(path: &str, e: impl std::fmt::Display) -> Error {
    Error::field(path, codes::INVALID_FORMAT, e.to_string())
}

fn object(path: &str, j: &Json) -> Result<Map<String, Json>> {
    j.as_object()
        .cloned()
        .ok_or_else(|| Error::field(path, codes::INVALID_TYPE, format!("{path} must be an object")))
}

/// Parses an RFC 3339 time (`2025-06-01T12:00:00Z`) or a date (midnight UTC).
pub fn timestamp(path: &str, s: &str) -> Result<Timestamp> {
    Timestamp::parse(s)
        .ok_or_else(|| Error::field(path, codes::INVALID_DATE, format!("{path} is not an ISO date or time")))
}

/// Options of [`validate`] and [`normalize`].
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateOptions {
    /// `create` (default) or `update` (a patch: only the fields it touches must be present).
    pub mode: Option<String>,
    /// The record a patch applies to, in the form records are returned in.
    pub base: Option<Json>,
    /// "Now" for rules like "not in the future" (RFC 3339); the caller's clock when absent.
    pub now: Option<String>,
    /// Country calling code for phones written without one (default `1`).
    pub phone_country_code: Option<String>,
    /// The tenant's custom field definitions of this entity type, by key.
    pub custom: Option<CustomSpecs>,
}

/// The outcome of validating input: every field error at once, and the normalised values of the
/// fields that parsed.
#[derive(Debug, serde::Serialize)]
pub struct Validation {
    pub ok: bool,
    pub errors: Vec<FieldError>,
    /// The input's fields after normalisation (fields with errors are left out).
    pub normalized: Map<String, Json>,
    /// Paths the input changed (relative to `base` for a patch).
    pub changed: Vec<String>,
}

/// Normalises and validates `input` for `entity` (see [`ValidateOptions`]).
pub fn validate(entity_name: &str, input: &Json, opts: ValidateOptions, clock: &dyn Clock) -> Result<Validation> {
    let def = entity(entity_name)?;
    let input = object("input", input)?;
    let now = match &opts.now {
        Some(s) => timestamp("now", s)?,
        None => clock.now(),
    };
    let mode = match opts.mode.as_deref() {
        None | Some("create") => Mode::Create,
        Some("update") => Mode::Update,
        Some(m) => return Err(Error::field("mode", codes::INVALID_OPTION, format!("unknown mode {m}"))),
    };
    let custom = opts.custom.unwrap_or_default();
    let mut rec = match &opts.base {
        Some(b) => Record::from_json(def, Id::nil(), b, &custom)
            .ok_or_else(|| Error::field("base", codes::INVALID_FORMAT, "base is not a record of this type"))?,
        None => Record::empty(def, Id::nil(), Id::nil(), now),
    };
    let ctx = tenant::validation_ctx_with(now, opts.phone_country_code.as_deref());
    let result = validate::apply_input(&mut rec, &input, &custom, &ctx, mode);
    let (errors, changed) = match result {
        Ok(changed) => (Vec::new(), changed),
        Err(errors) => (errors, Vec::new()),
    };
    let shown = rec.to_json();
    let mut normalized = Map::new();
    for key in input.keys() {
        if errors
            .iter()
            .any(|e| e.path == *key || e.path.starts_with(&format!("{key}.")))
        {
            continue;
        }
        if let Some(v) = shown.get(key) {
            normalized.insert(key.clone(), v.clone());
        }
    }
    Ok(Validation {
        ok: errors.is_empty(),
        errors,
        normalized,
        changed,
    })
}

/// The normalised input, or a `validation` error listing every failing field.
pub fn normalize(
    entity_name: &str,
    input: &Json,
    opts: ValidateOptions,
    clock: &dyn Clock,
) -> Result<Map<String, Json>> {
    let v = validate(entity_name, input, opts, clock)?;
    if v.ok {
        Ok(v.normalized)
    } else {
        Err(Error::Validation(v.errors))
    }
}

/// A quote's totals, computed by crm-core's [`totals::compute`] (the same function that derives a
/// stored quote's totals): `lines` as entered (`[{quantity, unit_price, discount_percent?,
/// discount_amount?, tax_rate?, optional?}]`), the document `discount` (`"none"`, `{percent}` or
/// `{amount}`; none when null) and the tenant's rounding `policy` (`{rounding, mode,
/// prices_include_tax}`; the default policy when null). Returns crm-core's `Totals` as JSON (money
/// and decimals as strings). Unreadable input names its place (`lines[2]`, `discount`, `policy`);
/// lines that cannot be totalled are the core's field errors.
pub fn quote_totals(lines: &Json, discount: &Json, policy: &Json) -> Result<Json> {
    let items = lines
        .as_array()
        .ok_or_else(|| Error::field("lines", codes::INVALID_TYPE, "lines must be a list"))?;
    let mut parsed = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, l) in items.iter().enumerate() {
        match serde_json::from_value::<totals::LineInput>(l.clone()) {
            Ok(l) => parsed.push(l),
            Err(e) => errors.push(FieldError::new(
                format!("lines[{i}]"),
                codes::INVALID_FORMAT,
                e.to_string(),
            )),
        }
    }
    let discount = if discount.is_null() {
        Ok(totals::DocumentDiscount::None)
    } else {
        serde_json::from_value(discount.clone())
    };
    let discount = discount.unwrap_or_else(|e| {
        errors.push(FieldError::new("discount", codes::INVALID_FORMAT, e.to_string()));
        totals::DocumentDiscount::None
    });
    let policy = if policy.is_null() {
        Ok(totals::Policy::default())
    } else {
        serde_json::from_value(policy.clone())
    };
    let policy = policy.unwrap_or_else(|e| {
        errors.push(FieldError::new("policy", codes::INVALID_FORMAT, e.to_string()));
        totals::Policy::default()
    });
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(json!(totals::compute(&parsed, discount, &policy)?))
}

/// The approval level a quote with this `total` (money) and effective discount percent needs under
/// the tenant's approval `rules` (the organization's `quote_approval_rules`): crm-core's
/// [`approval::required_level`]. `{level: index into rules, role}`, or both null when the quote is
/// approved at once on submission.
pub fn approval_level(rules: &Json, total: &Json, discount_percent: &Json) -> Result<Json> {
    let mut errors = Vec::new();
    let rules = approval::parse(rules, "rules").unwrap_or_else(|e| {
        errors.extend(e);
        Vec::new()
    });
    let total = serde_json::from_value::<Money>(total.clone()).unwrap_or_else(|e| {
        errors.push(FieldError::new("total", codes::INVALID_FORMAT, e.to_string()));
        Money(0)
    });
    let discount = if discount_percent.is_null() {
        Ok(Default::default())
    } else {
        serde_json::from_value(discount_percent.clone())
    };
    let discount = discount.unwrap_or_else(|e| {
        errors.push(FieldError::new("discountPercent", codes::INVALID_FORMAT, e.to_string()));
        Default::default()
    });
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(match approval::required_level(&rules, total, discount) {
        Some(i) => json!({"level": i, "role": rules[i].role}),
        None => json!({"level": null, "role": null}),
    })
}

/// Input of [`score`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoreInput {
    /// A scoring model definition; the default model when absent.
    #[serde(default)]
    pub model: Option<Json>,
    pub lead: Json,
    #[serde(default)]
    pub activities: Vec<Json>,
    /// The time the score is computed as of (RFC 3339); `now` when absent.
    #[serde(default)]
    pub as_of: Option<String>,
    /// "Now" for validating the lead and activities (RFC 3339); the caller's clock when absent.
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default)]
    pub phone_country_code: Option<String>,
    /// The tenant's custom lead fields, for models with conditions on them.
    #[serde(default)]
    pub custom: Option<CustomSpecs>,
}

/// Scores a lead (validated and normalised like a create) with its activities as of a time, with the
/// explanation: the core's [`crm_core::scoring::preview_score`] (the default model when none is
/// given). Errors on the lead, the activities or the model come back at once, with paths
/// (`lead.email`, `activities[1].kind`, `model.groups[0].rules[2].condition`).
pub fn score(input: &Json, clock: &dyn Clock) -> Result<Json> {
    let input: ScoreInput = serde_json::from_value(input.clone()).map_err(|e| bad_input("input", e))?;
    let now = match &input.now {
        Some(s) => timestamp("now", s)?,
        None => clock.now(),
    };
    let as_of = match &input.as_of {
        Some(s) => timestamp("asOf", s)?,
        None => now,
    };
    let model = input
        .model
        .map(serde_json::from_value::<ScoringModel>)
        .transpose()
        .map_err(|e| bad_input("model", e))?;
    let ctx = tenant::validation_ctx_with(now, input.phone_country_code.as_deref());
    let lead = UnsavedLead {
        lead: input.lead,
        activities: input.activities,
    };
    let custom = input.custom.unwrap_or_default();
    Ok(json!(preview_score(model.as_ref(), &lead, &custom, &ctx, as_of)?))
}

/// An entity type's declared fields: `[{name, writable, type, required, max_len, min, max, options,
/// not_in_future}]` (crm-core's field specs), for building forms.
pub fn schema(entity_name: &str) -> Result<Json> {
    let def = entity(entity_name)?;
    let fields: Vec<Json> = def
        .fields
        .iter()
        .map(|f| {
            let mut j = json!(f.spec);
            if let Some(m) = j.as_object_mut() {
                m.insert("name".into(), json!(f.name));
                m.insert("writable".into(), json!(f.writable));
            }
            j
        })
        .collect();
    Ok(json!({"entity": def.name, "fields": fields}))
}

/// The default scoring model's definition.
pub fn default_scoring_model() -> Json {
    json!(default_model())
}

/// A built-in role's name, or a custom role `{name, grants}` (the shape of a tenant's `role` record).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RoleInput {
    Name(String),
    Custom { name: String, grants: Json },
}

pub fn role(input: &Json) -> Result<Role> {
    let r: RoleInput = serde_json::from_value(input.clone()).map_err(|e| bad_input("role", e))?;
    match r {
        RoleInput::Name(n) => builtin::by_name(&n)
            .ok_or_else(|| Error::field("role", codes::UNKNOWN_REFERENCE, format!("no built-in role {n}"))),
        RoleInput::Custom { name, grants } => Ok(Role {
            name,
            grants: serde_json::from_value(grants).map_err(|e| bad_input("grants", e))?,
        }),
    }
}

/// What a role may do with an entity type: each action with its record scope, and for each declared
/// field whether the role may read and write it (the core's [`Role::access`]).
pub fn access(role_input: &Json, entity_name: &str) -> Result<Json> {
    let role = role(role_input)?;
    let def = entity(entity_name)?;
    serde_json::to_value(role.access(def)).map_err(|e| Error::field("access", codes::INVALID_FORMAT, e.to_string()))
}

/// The JSON form of a filter tree: [`FilterSpec`]'s shape (`{"cmp": {"field", "op", "value"}}`, `{"and":
/// [...]}`, ...), with `"all"` for the empty filter. Values are shown as crm-core shows them.
pub fn filter_json(f: &Filter) -> Json {
    match f {
        Filter::All => json!("all"),
        Filter::And(v) => json!({"and": v.iter().map(filter_json).collect::<Vec<_>>()}),
        Filter::Or(v) => json!({"or": v.iter().map(filter_json).collect::<Vec<_>>()}),
        Filter::Not(x) => json!({"not": filter_json(x)}),
        Filter::Cmp { field, op, value } => json!({"cmp": {"field": field, "op": op, "value": value.to_json()}}),
        Filter::In { field, values } => {
            json!({"in": {"field": field, "values": values.iter().map(|v| v.to_json()).collect::<Vec<_>>()}})
        }
        Filter::IsNull { field } => json!({"is_null": {"field": field}}),
        Filter::Search(s) => json!({"search": s}),
    }
}

/// Parses the text filter language into its tree; errors are `invalid_query` with a byte `position`.
pub fn parse_filter(q: &str) -> Result<Json> {
    text::parse(q).map(|f| filter_json(&f))
}

/// Options of [`check_upload`].
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckUploadOptions {
    /// The tenant's settings the check reads (`attachment_max_bytes`), as the organization record
    /// holds them; the default limit when absent.
    pub settings: Option<Json>,
}

/// Checks a file before its upload to a record of type `entity`, with the code the upload runs
/// ([`crm_core::service::check_upload`]), writing nothing: `input` is the upload's input (`kind`,
/// `file_name`, `signer_name`, and the claims `media_type`, `size`, `sha256`). Returns `{ok, sha256,
/// size, media_type, limit, limit_exceeded, errors}`: the content's SHA-256, size and sniffed media
/// type, the tenant's limit, and every field error the upload would report.
pub fn check_upload(
    entity_name: &str,
    input: &Json,
    content: &[u8],
    opts: CheckUploadOptions,
    clock: &dyn Clock,
) -> Result<Json> {
    let def = entity(entity_name)?;
    let input: crm_core::service::AttachInput =
        serde_json::from_value(input.clone()).map_err(|e| Error::field("input", codes::INVALID_TYPE, e.to_string()))?;
    let now = clock.now();
    let mut org = Record::empty(&entity::ORGANIZATION, Id::nil(), Id::nil(), now);
    if let Some(settings) = &opts.settings {
        let settings = object("settings", settings)?;
        validate::apply_input(
            &mut org,
            &settings,
            &CustomSpecs::default(),
            &tenant::validation_ctx(now, None),
            Mode::Update,
        )
        .map_err(|e| Error::Validation(e.into_iter().map(|f| nested("settings", f)).collect()))?;
    }
    let limit = crm_core::service::max_bytes(Some(&org));
    let checked = crm_core::service::check_upload(def, &input, content, limit, now)?;
    let mut out = json!(checked);
    out["ok"] = json!(checked.ok());
    Ok(out)
}

/// Options of [`membership_status`].
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipStatusOptions {
    /// "Now" (RFC 3339, or a date); the caller's clock when absent.
    pub now: Option<String>,
    /// The tenant's settings the status reads (`membership_expiring_days`,
    /// `membership_freeze_extends`), as the organization record holds them; the defaults when absent.
    pub settings: Option<Json>,
}

/// A membership's status as the service computes it, for a form being filled in: `membership` holds
/// `starts_on`, `ends_on`, `cancelled` and optionally its `membership_freezes` (`[{starts_on,
/// ends_on}]`). The values go through the membership's declaration (validation, normalisation), its
/// freezes through the same derivation the service runs (the pending freeze, and a freeze moving the
/// end date when the tenant's policy says so), and the status through
/// [`crm_core::entity::membership::status`]. Returns `{status, ends_on, frozen_from, frozen_to,
/// frozen_days, errors}`; `status` is null while the dates are incomplete or invalid (see `errors`).
pub fn membership_status(input: &Json, opts: MembershipStatusOptions, clock: &dyn Clock) -> Result<Json> {
    use crm_core::entity::membership::{self as m, MEMBERSHIP, MEMBERSHIP_FREEZE};
    let now = match &opts.now {
        Some(s) => timestamp("now", s)?,
        None => clock.now(),
    };
    let mut input = object("membership", input)?;
    let freezes = match input.remove(MEMBERSHIP_FREEZE.table) {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items,
        Some(_) => {
            return Err(Error::field(
                MEMBERSHIP_FREEZE.table,
                codes::INVALID_TYPE,
                "expected a list of freezes",
            ));
        }
    };
    let vctx = tenant::validation_ctx(now, None);
    let none = CustomSpecs::default();
    let mut org = Record::empty(&entity::ORGANIZATION, Id::nil(), Id::nil(), now);
    if let Some(settings) = &opts.settings {
        let settings = object("settings", settings)?;
        validate::apply_input(&mut org, &settings, &none, &vctx, Mode::Update)
            .map_err(|e| Error::Validation(e.into_iter().map(|f| nested("settings", f)).collect()))?;
    }
    let cx = crm_core::computed::ComputeCtx::new(now, Some(org));
    // The form's own fields, as a patch: a membership's client and plan are not needed for its status.
    let mut rec = Record::empty(&MEMBERSHIP, Id::nil(), Id::nil(), now);
    let mut errors = validate::apply_input(&mut rec, &input, &none, &vctx, Mode::Update)
        .err()
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (i, f) in freezes.iter().enumerate() {
        let prefix = format!("{}[{i}]", MEMBERSHIP_FREEZE.table);
        let Some(f) = f.as_object() else {
            errors.push(FieldError::new(prefix, codes::INVALID_TYPE, "expected an object"));
            continue;
        };
        let mut child = Record::empty(&MEMBERSHIP_FREEZE, Id::nil(), Id::nil(), now);
        match validate::apply_input(&mut child, f, &none, &vctx, Mode::Update) {
            Ok(_) => rows.push(child),
            Err(e) => errors.extend(e.into_iter().map(|x| nested(&prefix, x))),
        }
    }
    if errors.is_empty() {
        let mut children = [(&*MEMBERSHIP_FREEZE, rows)];
        if let Err(e) = MEMBERSHIP.rules.derive_from_children(&mut rec, &mut children, &cx) {
            errors.extend(e.field_errors().iter().cloned());
        }
    }
    let complete = errors.is_empty()
        && rec.get(m::fields::STARTS_ON).is_some_and(|v| !v.is_null())
        && rec.get(m::fields::ENDS_ON).is_some_and(|v| !v.is_null());
    let field = |f: &str| rec.get(f).map_or(Json::Null, |v| v.to_json());
    Ok(json!({
        "status": if complete { json!(m::status(&rec, &cx).key()) } else { Json::Null },
        "ends_on": field(m::fields::ENDS_ON),
        "frozen_from": field(m::fields::FROZEN_FROM),
        "frozen_to": field(m::fields::FROZEN_TO),
        "frozen_days": field(m::fields::FROZEN_DAYS),
        "errors": errors,
    }))
}

/// An error of a part of the input under that part's path (`membership_freezes[0].ends_on`).
fn nested(prefix: &str, mut e: FieldError) -> FieldError {
    e.path = format!("{prefix}.{}", e.path);
    e
}

/// Who acts in the local database: the tenant, and a user of it (the tenant's system actor, with full
/// rights, when `user` is absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorInput {
    pub tenant: String,
    #[serde(default)]
    pub user: Option<String>,
}

/// A list request: the text filter `q`, a typed `filter` (FilterSpec JSON), `sort` (`-score,created_at`
/// or `[{field, desc}]`), `limit`, `cursor`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListInput {
    pub q: Option<String>,
    pub filter: Option<FilterSpec>,
    pub sort: Option<Json>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn id(path: &str, s: &str) -> Result<Id> {
    crm_core::value::parse_id(s)
        .ok_or_else(|| Error::field(path, codes::INVALID_FORMAT, format!("{path} is not a UUID")))
}

/// Options of a [`LocalDb`].
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct DbOptions {
    /// Pin the clock at this time (RFC 3339); it moves only with `setNow`. For tests and replays.
    pub now: Option<String>,
    /// Sequential, deterministic ids (for tests) instead of random UUIDv7s.
    pub deterministic_ids: bool,
    /// Keep the log of change sets to push to a server (a device that syncs; see `sync`).
    pub sync_log: bool,
}

/// The local database: crm-core's in-memory store driving the full service.
#[derive(Debug)]
pub struct LocalDb {
    svc: Arc<Service<MemoryStore>>,
    /// The service's store (shared data), for saving and restoring it.
    store: MemoryStore,
    fixed: Option<Arc<FixedClock>>,
}

impl LocalDb {
    /// `clock` and `ids` are the platform's (JS `Date.now`, `crypto.getRandomValues`); the options
    /// may replace them with a pinned clock and sequential ids.
    pub fn new(opts: DbOptions, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Result<Self> {
        let fixed = match &opts.now {
            Some(s) => Some(Arc::new(FixedClock::new(timestamp("now", s)?))),
            None => None,
        };
        let clock: Arc<dyn Clock> = match &fixed {
            Some(f) => f.clone(),
            None => clock,
        };
        let ids: Arc<dyn IdGen> = if opts.deterministic_ids {
            Arc::new(SeqIds::default())
        } else {
            ids
        };
        let store = MemoryStore::new().with_sync_log(opts.sync_log);
        Ok(LocalDb {
            // Attachment bytes stay in the page's memory, like the records.
            svc: Arc::new(
                Service::new(store.clone(), clock, ids)
                    .with_blob_store(Arc::new(crm_core::blob::MemoryBlobStore::new())),
            ),
            store,
            fixed,
        })
    }

    /// Moves a pinned clock (only for databases opened with `now`).
    pub fn set_now(&self, iso: &str) -> Result<()> {
        let at = timestamp("now", iso)?;
        match &self.fixed {
            Some(f) => {
                f.set(at);
                Ok(())
            }
            None => Err(Error::field(
                "now",
                codes::READ_ONLY,
                "the clock is pinned only when opened with `now`",
            )),
        }
    }

    pub fn now(&self) -> String {
        self.svc.now().to_rfc3339()
    }

    /// The service, for the calls that outlive a borrow (a sync round awaiting the network).
    pub fn service(&self) -> Arc<Service<MemoryStore>> {
        Arc::clone(&self.svc)
    }

    pub fn actor(&self, a: &Json) -> Result<Actor> {
        let a: ActorInput = serde_json::from_value(a.clone()).map_err(|e| bad_input("actor", e))?;
        let tenant = id("actor.tenant", &a.tenant)?;
        match a.user {
            None => Ok(Actor::system(tenant)),
            Some(u) => block(self.svc.actor(tenant, id("actor.user", &u)?)),
        }
    }

    pub fn create_organization(&self, input: &Json) -> Result<Json> {
        let input = object("input", input)?;
        Ok(block(self.svc.create_organization(&input))?.to_json())
    }

    /// Creates a record (a parent with its first children inline: `quote_lines: [...]`); records of
    /// a type with children come back with them under their table names, here and from `get`,
    /// `update` and `transition`.
    pub fn create(&self, actor: &Json, entity: &str, input: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let input = object("input", input)?;
        let r = block(self.svc.create(&actor, entity, &input))?;
        self.with_children(&actor, &r)
    }

    pub fn get(&self, actor: &Json, entity: &str, rec_id: &str) -> Result<Json> {
        let actor = self.actor(actor)?;
        let r = block(self.svc.get(&actor, entity, id("id", rec_id)?))?;
        self.with_children(&actor, &r)
    }

    pub fn update(&self, actor: &Json, entity: &str, rec_id: &str, version: u64, patch: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let patch = object("patch", patch)?;
        let r = block(self.svc.update(&actor, entity, id("id", rec_id)?, version, &patch))?;
        self.with_children(&actor, &r)
    }

    pub fn delete(&self, actor: &Json, entity: &str, rec_id: &str, version: u64) -> Result<()> {
        let actor = self.actor(actor)?;
        block(self.svc.delete(&actor, entity, id("id", rec_id)?, version))
    }

    pub fn list(&self, actor: &Json, entity: &str, req: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let req: ListInput = if req.is_null() {
            ListInput::default()
        } else {
            serde_json::from_value(req.clone()).map_err(|e| bad_input("request", e))?
        };
        let sort = match req.sort {
            None => Vec::new(),
            Some(Json::String(s)) => SortKey::parse_list(&s),
            Some(j) => serde_json::from_value(j).map_err(|e| bad_input("sort", e))?,
        };
        let lr = ListRequest {
            q: req.q,
            filter: req.filter.map(Into::into),
            sort,
            limit: req.limit,
            cursor: req.cursor,
        };
        let page = block(self.svc.list(&actor, entity, &lr))?;
        Ok(json!({
            "items": page.items.iter().map(Record::to_json).collect::<Vec<_>>(),
            "nextCursor": page.next_cursor,
        }))
    }

    /// A record's JSON with its children under their table names (a quote with `quote_lines`), as
    /// the HTTP API returns a parent.
    fn with_children(&self, actor: &Actor, r: &Record) -> Result<Json> {
        let mut j = r.to_json();
        if r.entity.children().next().is_some() {
            for (cdef, rows) in block(self.svc.children(actor, r.entity.name, r.id))? {
                j[cdef.table] = Json::Array(rows.iter().map(Record::to_json).collect());
            }
        }
        Ok(j)
    }

    /// Runs a workflow transition (`submit`, `approve`, ...) at `version` with its input; the record
    /// after it (for `revise` and `duplicate`: the new copy), with its children.
    pub fn transition(
        &self,
        actor: &Json,
        entity: &str,
        rec_id: &str,
        version: u64,
        name: &str,
        input: &Json,
    ) -> Result<Json> {
        let actor = self.actor(actor)?;
        let input = if input.is_null() {
            Map::new()
        } else {
            object("input", input)?
        };
        let r = block(
            self.svc
                .transition(&actor, entity, id("id", rec_id)?, version, name, &input),
        )?;
        self.with_children(&actor, &r)
    }

    /// A record's children by table name (`{quote_lines: [...]}`), each in its declared order.
    pub fn children(&self, actor: &Json, entity: &str, rec_id: &str) -> Result<Json> {
        let actor = self.actor(actor)?;
        let kids = block(self.svc.children(&actor, entity, id("id", rec_id)?))?;
        Ok(Json::Object(
            kids.into_iter()
                .map(|(d, rows)| (d.table.to_owned(), rows.iter().map(Record::to_json).collect()))
                .collect(),
        ))
    }

    /// Attaches `content` to a record (`input`: `kind`, `file_name`, `signer_name`, and the
    /// optional claims `media_type`, `size`, `sha256`); the core's rules as on a server.
    pub fn attach(&self, actor: &Json, entity: &str, rec_id: &str, input: &Json, content: &[u8]) -> Result<Json> {
        let actor = self.actor(actor)?;
        let input: crm_core::service::AttachInput = serde_json::from_value(input.clone())
            .map_err(|e| Error::field("input", codes::INVALID_TYPE, e.to_string()))?;
        let r = block(
            self.svc
                .attach(&actor, entity, id("id", rec_id)?, &input, &mut &content[..]),
        )?;
        Ok(r.to_json())
    }

    /// Upserts JSON rows from an external system (`request`: `{system, mode?, all_or_nothing?,
    /// dry_run?, rows}`, the body of `POST /api/v1/{table}/upsert`); the core's per-row report.
    pub fn upsert(&self, actor: &Json, entity: &str, request: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let req: crm_core::service::UpsertRequest =
            serde_json::from_value(request.clone()).map_err(|e| bad_input("request", e))?;
        Ok(json!(block(self.svc.upsert(&actor, entity, req))?))
    }

    /// A record's attachments, oldest first.
    pub fn attachments(&self, actor: &Json, entity: &str, rec_id: &str) -> Result<Json> {
        let actor = self.actor(actor)?;
        let rs = block(self.svc.attachments(&actor, entity, id("id", rec_id)?))?;
        Ok(Json::Array(rs.iter().map(Record::to_json).collect()))
    }

    pub fn log_activity(&self, actor: &Json, input: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let input = object("input", input)?;
        Ok(block(self.svc.log_activity(&actor, &input))?.to_json())
    }

    fn as_of(s: Option<&str>) -> Result<Option<Timestamp>> {
        s.map(|s| timestamp("asOf", s)).transpose()
    }

    pub fn explain_score(&self, actor: &Json, lead: &str, as_of: Option<&str>) -> Result<Json> {
        let actor = self.actor(actor)?;
        let r = block(self.svc.explain_score(&actor, id("leadId", lead)?, Self::as_of(as_of)?))?;
        Ok(json!(r))
    }

    /// Previews a draft model's score of a stored lead.
    pub fn explain_with(&self, actor: &Json, lead: &str, model: &Json, as_of: Option<&str>) -> Result<Json> {
        let actor = self.actor(actor)?;
        let m: ScoringModel = serde_json::from_value(model.clone()).map_err(|e| bad_input("model", e))?;
        let r = block(
            self.svc
                .explain_with(&actor, id("leadId", lead)?, &m, Self::as_of(as_of)?),
        )?;
        Ok(json!(r))
    }

    pub fn publish_model(&self, actor: &Json, model_id: &str, version: u64) -> Result<Json> {
        let actor = self.actor(actor)?;
        let (rec, report) = block(self.svc.publish_model(&actor, id("id", model_id)?, version))?;
        Ok(json!({"model": rec.to_json(), "report": report}))
    }

    pub fn pipeline_summary(&self, actor: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.pipeline_summary(&actor))?))
    }

    pub fn events_since(&self, actor: &Json, after: u64, limit: u32) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.events_since(&actor, after, limit))?))
    }

    pub fn integrity_check(&self, actor: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.integrity_check(&actor))?))
    }

    /// Writes a server's provision (`GET /api/v1/sync/provision`) into this database; the device
    /// user as an actor reference.
    pub fn apply_provision(&self, p: &Json) -> Result<Json> {
        let p: Provision = message("provision", p)?;
        let actor = block(self.svc.apply_provision(&p))?;
        Ok(actor_ref(&actor))
    }

    pub fn prepare_push(&self, actor: &Json, device: &str, limit: u32) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.prepare_push(&actor, device, limit))?))
    }

    pub fn apply_push_answer(&self, actor: &Json, request: &Json, answer: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let req: PushRequest = message("request", request)?;
        let answer: PushAnswer = message("answer", answer)?;
        Ok(json!(block(self.svc.apply_push_answer(&actor, &req, &answer))?))
    }

    pub fn pull_cursor(&self, actor: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.pull_cursor(&actor))?))
    }

    pub fn apply_pull(&self, actor: &Json, page: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let page: PullPage = message("page", page)?;
        Ok(json!(block(self.svc.apply_pull(&actor, &page))?))
    }

    pub fn pending_changes(&self, actor: &Json, limit: u32) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.pending_changes(&actor, 0, limit))?))
    }

    pub fn sync_rejections(&self, actor: &Json, limit: u32) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(json!(block(self.svc.sync_rejections(&actor, limit))?))
    }

    pub fn dismiss_sync_rejection(&self, actor: &Json, change_set: &str) -> Result<()> {
        let actor = self.actor(actor)?;
        block(self.svc.dismiss_sync_rejection(&actor, id("change_set", change_set)?))
    }

    /// What changed since the host last saved this database ([`MemoryStore::changes`]).
    pub fn changes(&self) -> Result<Json> {
        Ok(json!(self.store.changes()?))
    }

    pub fn saved(&self, tenant: &str, mark: &Json) -> Result<()> {
        let mark: SaveMark = message("mark", mark)?;
        self.store.saved(id("tenant", tenant)?, mark)
    }

    /// Puts back attachment bytes the host kept (the in-memory blob store does not outlive the
    /// page); refused when `sha256` is not the bytes' hash.
    pub fn put_blob(&self, tenant: &str, sha256: &str, bytes: &[u8]) -> Result<()> {
        self.svc.restore_blob(id("tenant", tenant)?, sha256, bytes).map(|_| ())
    }

    /// Rebuilds a tenant from what the host kept of it ([`MemoryStore::restore`]).
    pub fn restore(&self, saved: &Json) -> Result<()> {
        let saved: Saved = message("saved", saved)?;
        self.store.restore(saved)
    }
}

/// The JSON detail of an error: the core's description (`code`, `message` and the kind's members),
/// plus `fields` beside `errors` on a validation error: this binding's name for the same list before
/// the description was shared, kept for existing callers.
/// A sync or storage message in the core's JSON form.
fn message<T: serde::de::DeserializeOwned>(path: &str, j: &Json) -> Result<T> {
    serde_json::from_value(j.clone()).map_err(|e| Error::field(path, codes::INVALID_FORMAT, e.to_string()))
}

/// An actor as the JS side names it: `{tenant, user?}`.
pub fn actor_ref(a: &Actor) -> Json {
    match a.user_id {
        Some(u) => json!({"tenant": a.tenant.to_string(), "user": u.to_string()}),
        None => json!({"tenant": a.tenant.to_string()}),
    }
}

pub fn error_details(e: &Error) -> Json {
    let mut d = json!(e.details());
    if let Some(errors) = d.get("errors").filter(|_| matches!(e, Error::Validation(_))).cloned() {
        d["fields"] = errors;
    }
    d
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crm_core::conformance::NOW;

    #[derive(Debug)]
    struct At;
    impl Clock for At {
        fn now(&self) -> Timestamp {
            NOW
        }
    }

    /// The form's status is the stored membership's status, day for day on the boundaries (NOW is
    /// 2025-06-01; the window is 14 days): the local database computes the stored one.
    #[test]
    fn membership_status_is_the_services() {
        let db = LocalDb::new(DbOptions::default(), Arc::new(At), Arc::new(SeqIds::default())).unwrap();
        let org = db.create_organization(&json!({"name": "Pixel Arena"})).unwrap();
        let admin = json!({"tenant": org["id"]});
        let client = db.create(&admin, "contact", &json!({"first_name": "Ann"})).unwrap();
        let cases = [
            ("2025-06-01", "2025-07-31", None, false, "active"),   // starts today
            ("2025-06-02", "2025-07-31", None, false, "upcoming"), // starts tomorrow
            ("2025-05-01", "2025-06-01", None, false, "expiring"), // ends today
            ("2025-05-01", "2025-05-31", None, false, "expired"),  // ended yesterday
            ("2025-05-01", "2025-06-15", None, false, "expiring"), // ends in exactly 14 days
            ("2025-05-01", "2025-06-16", None, false, "active"),   // in 15 days
            (
                "2025-05-01",
                "2025-07-31",
                Some(("2025-06-01", "2025-06-05")),
                false,
                "frozen",
            ), // frozen today
            (
                "2025-05-01",
                "2025-07-31",
                Some(("2025-05-10", "2025-05-20")),
                false,
                "active",
            ), // an old freeze
            ("2025-05-01", "2025-07-31", None, true, "cancelled"),
        ];
        for (starts, ends, freeze, cancelled, want) in cases {
            let freezes: Vec<Json> = freeze
                .map(|(s, e)| json!({"starts_on": s, "ends_on": e}))
                .into_iter()
                .collect();
            let form =
                json!({"starts_on": starts, "ends_on": ends, "cancelled": cancelled, "membership_freezes": freezes});
            let live = membership_status(&form, MembershipStatusOptions::default(), &At).unwrap();
            let mut stored = form.clone();
            stored["contact_id"] = client["id"].clone();
            let stored = db.create(&admin, "membership", &stored).unwrap();
            assert_eq!(live["status"], json!(want), "{form}");
            assert_eq!(live["status"], stored["status"], "{form}");
            assert_eq!(
                live["ends_on"], stored["ends_on"],
                "a freeze moves the end by the same days: {form}"
            );
        }
        // The tenant's window and freeze policy are data.
        let opts = |v: Json| serde_json::from_value::<MembershipStatusOptions>(v).unwrap();
        let form = json!({"starts_on": "2025-05-01", "ends_on": "2025-06-20"});
        let wide = membership_status(&form, opts(json!({"settings": {"membership_expiring_days": 30}})), &At).unwrap();
        assert_eq!(wide["status"], "expiring");
        let frozen = json!({"starts_on": "2025-05-01", "ends_on": "2025-06-20",
            "membership_freezes": [{"starts_on": "2025-05-02", "ends_on": "2025-05-11"}]});
        let kept = opts(json!({"settings": {"membership_freeze_extends": false}}));
        assert_eq!(membership_status(&frozen, kept, &At).unwrap()["ends_on"], "2025-06-20");
        assert_eq!(
            membership_status(&frozen, MembershipStatusOptions::default(), &At).unwrap()["ends_on"],
            "2025-06-30"
        );
        // Incomplete or invalid dates: no status, the errors say why.
        let half = membership_status(
            &json!({"starts_on": "2025-05-01"}),
            MembershipStatusOptions::default(),
            &At,
        )
        .unwrap();
        assert_eq!(
            (half["status"].clone(), half["errors"].clone()),
            (Json::Null, json!([]))
        );
        let bad = membership_status(
            &json!({"starts_on": "2025-05-01", "ends_on": "2025-04-01"}),
            MembershipStatusOptions::default(),
            &At,
        )
        .unwrap();
        assert_eq!(
            (bad["status"].clone(), bad["errors"][0]["path"].clone()),
            (Json::Null, json!("ends_on"))
        );
        let typo = membership_status(
            &json!({"starts_on": "2025-13-01", "ends_on": "2025-06-20"}),
            MembershipStatusOptions::default(),
            &At,
        )
        .unwrap();
        assert_eq!(typo["errors"][0]["path"], "starts_on");
    }

    #[test]
    fn patch_validation_checks_only_touched_fields() {
        let opts = ValidateOptions {
            mode: Some("update".into()),
            ..Default::default()
        };
        let v = validate("lead", &json!({"email": " A@B.COM "}), opts, &At).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.normalized["email"], json!("a@b.com"));
        let bad = ValidateOptions {
            mode: Some("upsert".into()),
            ..Default::default()
        };
        assert_eq!(validate("lead", &json!({}), bad, &At).unwrap_err().code(), "validation");
    }

    #[test]
    fn score_is_as_of_and_validates_everything_at_once() {
        let call = json!({"kind": "call", "direction": "inbound", "occurred_at": NOW.plus_days(-15).to_rfc3339()});
        let r = score(&json!({"lead": {"first_name": "Ann"}, "activities": [call]}), &At).unwrap();
        assert_eq!(r["score"], json!(5));
        let e = score(&json!({"lead": {"email": "x@"}, "activities": [{"kind": "x"}]}), &At).unwrap_err();
        let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["activities[0].kind", "lead.email"],
            "occurred_at defaults to now"
        );
    }

    #[test]
    fn access_hides_derived_fields_from_writers() {
        let a = access(&json!("admin"), "lead").unwrap();
        assert_eq!(a["fields"]["score"], json!({"read": true, "write": false}));
        assert_eq!(a["actions"]["read"], json!("tenant"));
        assert_eq!(access(&json!("admin"), "nope").unwrap_err().code(), "not_found");
    }

    #[test]
    fn error_details_are_the_cores_description() {
        let e = Error::field("email", codes::INVALID_EMAIL, "not an email");
        let d = error_details(&e);
        assert_eq!(d["code"], json!("validation"));
        assert_eq!(d["errors"][0]["path"], json!("email"));
        assert_eq!(d["fields"], d["errors"], "the older name of the same list");
        let e = Error::unavailable(2, "sqlite: database is locked");
        assert_eq!(
            error_details(&e),
            json!({"code": "unavailable", "message": e.to_string(), "retry_after": 2})
        );
        let forbidden = error_details(&Error::forbidden("update", "lead", vec!["score".into()]));
        assert_eq!(forbidden["fields"], json!(["score"]));
        assert!(forbidden.get("errors").is_none());
    }

    #[test]
    fn filter_errors_are_positioned() {
        let e = parse_filter("status:").unwrap_err();
        assert_eq!(error_details(&e)["position"], json!(6));
        assert_eq!(parse_filter("").unwrap(), json!("all"));
    }

    #[test]
    fn quote_totals_are_the_cores_on_the_fixture_set() {
        let fixtures: Vec<Json> =
            serde_json::from_str(include_str!("../../../crm-core/testdata/quote_totals.json")).unwrap();
        for fx in fixtures {
            let discount = fx.get("discount").cloned().unwrap_or(Json::Null);
            let t = quote_totals(&fx["lines"], &discount, &fx["policy"]).unwrap();
            let e = &fx["expected"];
            for f in ["subtotal", "discount_total", "tax_total", "total", "lines", "taxes"] {
                assert_eq!(t[f], e[f], "{}: {f}", fx["name"]);
            }
        }
    }

    #[test]
    fn quote_totals_refuse_bad_input_with_paths() {
        let lines = json!([{"quantity": "1", "unit_price": "10.00"}, {"quantity": "x", "unit_price": "1"}]);
        let e = quote_totals(&lines, &json!({"percent": "ten"}), &json!({"rounding": "sideways"})).unwrap_err();
        let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["lines[1]", "discount", "policy"]);
        let e = quote_totals(
            &json!([{"quantity": "1", "unit_price": "10.00"}]),
            &json!({"amount": "11.00"}),
            &Json::Null,
        )
        .unwrap_err();
        assert_eq!(
            (e.field_errors()[0].path.as_str(), e.field_errors()[0].code.as_str()),
            ("discount_amount", "too_large")
        );
        assert_eq!(
            quote_totals(&json!({}), &Json::Null, &Json::Null).unwrap_err().code(),
            "validation"
        );
    }

    #[test]
    fn approval_level_is_the_cores_decision() {
        let rules = json!([{"role": "manager", "total_above": "10000", "discount_percent_above": "15"},
                           {"role": "admin", "total_above": "50000"}]);
        let level = |t: &str, d: Json| approval_level(&rules, &json!(t), &d).unwrap();
        assert_eq!(level("10000.00", json!("15")), json!({"level": null, "role": null}));
        assert_eq!(level("10000.01", Json::Null), json!({"level": 0, "role": "manager"}));
        assert_eq!(level("1.00", json!("15.01")), json!({"level": 0, "role": "manager"}));
        assert_eq!(level("50000.01", json!("0")), json!({"level": 1, "role": "admin"}));
        let e = approval_level(&json!([{"role": ""}]), &json!("x"), &json!("y")).unwrap_err();
        let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["rules[0].role", "total", "discountPercent"]);
    }

    #[test]
    fn local_db_quote_workflow() {
        let opts = DbOptions {
            now: Some(NOW.to_rfc3339()),
            deterministic_ids: true,
            ..Default::default()
        };
        let db = LocalDb::new(opts, Arc::new(At), Arc::new(SeqIds::default())).unwrap();
        let org = db.create_organization(&json!({"name": "Acme Movers"})).unwrap();
        let admin = json!({"tenant": org["id"]});
        let c = db.create(&admin, "contact", &json!({"first_name": "Carla"})).unwrap();
        let q = db
            .create(
                &admin,
                "quote",
                &json!({"contact_id": c["id"], "valid_until": "2099-01-01",
                        "quote_lines": [{"description": "Move", "quantity": "2.5", "unit_price": "100.00"}]}),
            )
            .unwrap();
        assert_eq!(q["quote_lines"][0]["amount"], json!("250.00"));
        let qid = q["id"].as_str().unwrap();
        let v = q["version"].as_u64().unwrap();
        let sent = db.transition(&admin, "quote", qid, v, "send", &Json::Null).unwrap_err();
        assert_eq!(sent.field_errors()[0].code, "invalid_transition");
        let s = db.transition(&admin, "quote", qid, v, "submit", &Json::Null).unwrap();
        assert_eq!(
            (s["status"].as_str(), s["total"].as_str()),
            (Some("approved"), Some("250.00"))
        );
        assert_eq!(s["quote_lines"], q["quote_lines"]);
        assert_eq!(
            db.children(&admin, "quote", qid).unwrap()["quote_lines"],
            q["quote_lines"]
        );
    }

    #[test]
    fn local_db_round_trip_with_pinned_clock() {
        let opts = DbOptions {
            now: Some(NOW.to_rfc3339()),
            deterministic_ids: true,
            ..Default::default()
        };
        let db = LocalDb::new(opts, Arc::new(At), Arc::new(SeqIds::default())).unwrap();
        let org = db.create_organization(&json!({"name": "Acme"})).unwrap();
        let admin = json!({"tenant": org["id"]});
        let lead = db.create(&admin, "lead", &json!({"first_name": "Ann"})).unwrap();
        let id = lead["id"].as_str().unwrap();
        assert_eq!(db.get(&admin, "lead", id).unwrap(), lead);
        let e = db.update(&admin, "lead", id, 9, &json!({"notes": "x"})).unwrap_err();
        assert_eq!(e.code(), "conflict");
        db.set_now("2025-07-01T00:00:00Z").unwrap();
        assert_eq!(db.now(), "2025-07-01T00:00:00Z");
    }

    /// What `changes` hands out, kept as local.js keeps it, rebuilds the same database in a new
    /// one with `restore`, its queue included.
    #[test]
    fn local_db_saves_and_restores_through_changes() {
        let opts = || DbOptions {
            now: Some(NOW.to_rfc3339()),
            deterministic_ids: true,
            sync_log: true,
        };
        let db = LocalDb::new(opts(), Arc::new(At), Arc::new(SeqIds::default())).unwrap();
        let org = db.create_organization(&json!({"name": "Acme Roofing"})).unwrap();
        let tenant = org["id"].as_str().unwrap().to_owned();
        let admin = json!({"tenant": tenant});
        let lead = db
            .create(
                &admin,
                "lead",
                &json!({"first_name": "Ann", "estimated_value": "1200.50"}),
            )
            .unwrap();
        let changes = db.changes().unwrap();
        let c = &changes[0];
        assert!(c["rows"].as_array().unwrap().len() >= 2, "{c}");
        assert_eq!(
            c["sync"].as_array().unwrap().len(),
            2,
            "the organization's and the lead's change sets are queued"
        );
        db.saved(&tenant, &c["mark"]).unwrap();
        assert_eq!(db.changes().unwrap(), json!([]), "nothing left to save");
        let saved = json!({"tenant": tenant, "rows": c["rows"], "audit": c["audit"], "events": c["events"],
            "sync": c["sync"], "sync_seq": c["sync_seq"]});
        let again = LocalDb::new(opts(), Arc::new(At), Arc::new(SeqIds::default())).unwrap();
        again.restore(&saved).unwrap();
        let id = lead["id"].as_str().unwrap();
        assert_eq!(
            again.get(&admin, "lead", id).unwrap(),
            db.get(&admin, "lead", id).unwrap()
        );
        assert_eq!(
            again.pending_changes(&admin, 10).unwrap(),
            db.pending_changes(&admin, 10).unwrap()
        );
        // Attachment bytes the host kept go back under their hash, and only under it.
        let sha = "ecab53b2e5d66f2bd4e3a8e94fdc7bdba1e5d1a3fd54c3ad7a5d3ff6ea0b12e8";
        assert!(matches!(
            again.put_blob(&tenant, sha, b"photo"),
            Err(Error::Validation(_))
        ));
        again
            .put_blob(
                &tenant,
                "55c64d0fcd6f9d5f7c828093857e3fdfda68478bb4e9bd24d481ef391c7804e8",
                b"photo",
            )
            .unwrap();
        let bad = again.restore(&json!({"tenant": tenant, "rows": [{"entity": "lead", "id": id, "record": {}}]}));
        assert!(matches!(bad, Err(Error::Validation(_))), "{bad:?}");
    }
}
