//! The binding's API at the JSON level: plain Rust, no JS types, so it runs (and is tested) natively as
//! well as in wasm. Every function converts its input, calls crm-core, and converts the result. No rule
//! is decided here.

use crm_core::access::{Actor, Role, builtin};
use crm_core::clock::{Clock, FixedClock, IdGen, SeqIds};
use crm_core::entity;
use crm_core::error::{Error, FieldError, Result, codes};
use crm_core::memory::MemoryStore;
use crm_core::query::{Filter, FilterSpec, ListRequest, SortKey, text};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::scoring::{ScoringModel, UnsavedLead, default_model, preview_score};
use crm_core::service::Service;
use crm_core::tenant;
use crm_core::validate::{self, CustomSpecs, Mode};
use crm_core::value::{Id, Timestamp};
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
    s.parse()
        .map_err(|_| Error::field(path, codes::INVALID_FORMAT, format!("{path} is not a UUID")))
}

/// Options of a [`LocalDb`].
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct DbOptions {
    /// Pin the clock at this time (RFC 3339); it moves only with `setNow`. For tests and replays.
    pub now: Option<String>,
    /// Sequential, deterministic ids (for tests) instead of random UUIDv7s.
    pub deterministic_ids: bool,
}

/// The local database: crm-core's in-memory store driving the full service.
#[derive(Debug)]
pub struct LocalDb {
    svc: Service<MemoryStore>,
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
        Ok(LocalDb {
            svc: Service::new(MemoryStore::new(), clock, ids),
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

    fn actor(&self, a: &Json) -> Result<Actor> {
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

    pub fn create(&self, actor: &Json, entity: &str, input: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let input = object("input", input)?;
        Ok(block(self.svc.create(&actor, entity, &input))?.to_json())
    }

    pub fn get(&self, actor: &Json, entity: &str, rec_id: &str) -> Result<Json> {
        let actor = self.actor(actor)?;
        Ok(block(self.svc.get(&actor, entity, id("id", rec_id)?))?.to_json())
    }

    pub fn update(&self, actor: &Json, entity: &str, rec_id: &str, version: u64, patch: &Json) -> Result<Json> {
        let actor = self.actor(actor)?;
        let patch = object("patch", patch)?;
        Ok(block(self.svc.update(&actor, entity, id("id", rec_id)?, version, &patch))?.to_json())
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
}

/// The JSON detail of an error: the core's description (`code`, `message` and the kind's members),
/// plus `fields` beside `errors` on a validation error: this binding's name for the same list before
/// the description was shared, kept for existing callers.
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
    fn local_db_round_trip_with_pinned_clock() {
        let opts = DbOptions {
            now: Some(NOW.to_rfc3339()),
            deterministic_ids: true,
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
}
