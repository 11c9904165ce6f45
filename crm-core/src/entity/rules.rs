//! The hook trait through which the service runs an entity type's own rules, and the tenant data those
//! rules read. The service calls the hooks of whatever declaration it handles; it never matches names.

use crate::computed::ComputeCtx;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::record::Record;
use crate::schema::EntityDef;
use crate::scoring::CompiledModel;
use crate::validate::{self, CustomSpecs};
use crate::value::Id;
use std::sync::Arc;

/// Tenant data that writes of an entity type need. The service loads what an entity's
/// [`EntityRules::needs`] lists, once per use case or per import, into a [`WriteCtx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The tenant's pipelines and its default pipeline.
    Pipelines,
    /// The names of the tenant's custom roles.
    Roles,
    /// The ids of the tenant's active users with the built-in admin role.
    ActiveAdmins,
    /// The tenant's settings (the organization record): approval rules, rounding policy.
    Settings,
    /// The tenant's custom field definitions of another entity type (a scoring model reads the lead's).
    CustomFieldsOf(&'static str),
    /// The tenant's users (id, team, active) and team ids (routing rules name them).
    Users,
    /// Every record of a small configuration type (a job's templates), at most
    /// [`MAX_CONFIG_RECORDS`].
    RecordsOf(&'static str),
}

/// Most records a [`Need::RecordsOf`] loads.
pub const MAX_CONFIG_RECORDS: u32 = 1000;

/// An entity type's rules beyond what its fields declare. Every method has a default that does
/// nothing, so a plain entity implements nothing.
pub trait EntityRules: Send + Sync + std::fmt::Debug {
    /// The tenant data [`EntityRules::check_tenant_rules`] reads.
    fn needs(&self) -> &'static [Need] {
        &[]
    }

    /// Rules that need tenant data (a lead's status is a stage of its pipeline; a user's role exists).
    /// `touched` tells whether a field changed in this write (every field on create and in the
    /// integrity checker), so a legacy row that breaks a rule can still be edited elsewhere.
    fn check_tenant_rules(&self, _rec: &Record, _touched: &dyn Fn(&str) -> bool, _ctx: &WriteCtx) -> Result<()> {
        Ok(())
    }

    /// The tenant data [`EntityRules::check_delete`] reads; when empty, deletes of this type load
    /// nothing and skip the check.
    fn delete_needs(&self) -> &'static [Need] {
        &[]
    }

    /// Rules a deletion must keep (the tenant keeps an active admin).
    fn check_delete(&self, _rec: &Record, _ctx: &WriteCtx) -> Result<()> {
        Ok(())
    }

    /// Recomputes a parent's derived fields from its children as they will be after the write (every
    /// child type of the parent, each with all its rows, in their declared order), and the children's
    /// own derived fields where they depend on their siblings (a line's share of a document
    /// discount). Runs in the change set of every write of the parent or of one of its children; the
    /// service writes every child it changed. `cx` carries the time and the tenant's settings.
    fn derive_from_children(
        &self,
        _parent: &mut Record,
        _children: &mut [(&'static EntityDef, Vec<Record>)],
        _cx: &ComputeCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// The inputs of the children of type `child` a new record starts with when its create names
    /// none of that type (a job's steps from its type's template); they are validated and
    /// authorized like children the client sent. `input` is the create's input.
    fn default_children(
        &self,
        _child: &'static EntityDef,
        _input: &serde_json::Map<String, serde_json::Value>,
        _ctx: &WriteCtx,
    ) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// Reference fields whose records the type's document shows (a quote's customer).
    fn document_refs(&self) -> &'static [&'static str] {
        &[]
    }

    /// The record as a self-contained, printable HTML page (a quote the customer reads); `None`
    /// for types without a document.
    fn document(&self, _cx: &DocumentCtx<'_>) -> Option<String> {
        None
    }

    /// Whether the type has a document (so adapters offer the route).
    fn has_document(&self) -> bool {
        false
    }

    /// Whether a new record of this type is routed to an owner by the tenant's routing rules
    /// ([`crate::entity::routing`]) in its create's change set.
    fn routed(&self) -> bool {
        false
    }

    /// The references through which a new record of this type sets the next follow-up of the record
    /// it names ([`crate::entity::followup`]): an activity logged with `next_followup_at` sets it
    /// on the first of these records that carries follow-ups, in the activity's change set.
    fn followup_links(&self) -> &'static [&'static str] {
        &[]
    }
}

/// What a document is made of, as the reader may see it (fields hidden from them are absent).
#[allow(missing_debug_implementations)]
pub struct DocumentCtx<'a> {
    pub record: &'a Record,
    pub children: &'a [(&'static EntityDef, Vec<Record>)],
    /// The tenant (its name, currency).
    pub org: &'a Record,
    /// The records named by [`EntityRules::document_refs`] that the reader may read, in that order.
    pub refs: &'a [Record],
}

/// The rules of an entity type that has none beyond its declaration.
#[derive(Debug)]
pub struct NoRules;

impl EntityRules for NoRules {}

/// Tenant data a write needs, loaded once (and kept by the service's configuration cache while
/// the tables it came from are unchanged).
#[derive(Clone, Debug)]
pub struct WriteCtx {
    pub vctx: validate::Ctx,
    pub custom: CustomSpecs,
    /// [`Need::Pipelines`]: every pipeline by id, and the default one.
    pub pipelines: Vec<(Id, Pipeline)>,
    pub default_pipeline: Option<Pipeline>,
    /// [`Need::Roles`]: the names of the tenant's custom roles.
    pub roles: Vec<String>,
    /// [`Need::ActiveAdmins`]: the active admins' user ids.
    pub active_admins: Vec<Id>,
    /// [`Need::CustomFieldsOf`]: custom field specs by entity type name.
    pub related_custom: std::collections::BTreeMap<&'static str, CustomSpecs>,
    /// [`Need::Users`]: the tenant's users as routing sees them.
    pub users: Vec<super::routing::Member>,
    /// [`Need::Users`]: the tenant's team ids.
    pub teams: Vec<Id>,
    /// [`Need::Settings`]: the organization record.
    pub settings: Option<Record>,
    /// The published scoring model and its version, for scored entity types.
    pub model: Option<(Arc<CompiledModel>, i64)>,
    /// [`Need::RecordsOf`]: the records by entity type name.
    pub records: std::collections::BTreeMap<&'static str, Vec<Record>>,
    /// Which addresses webhooks may target (the operator's setting, [`crate::service::Service::with_webhook_addresses`]).
    pub addresses: crate::address::AddressPolicy,
}

impl WriteCtx {
    /// The records a [`Need::RecordsOf`] loaded (none when the entity's rules did not ask).
    pub fn records_of(&self, entity: &str) -> &[Record] {
        self.records.get(entity).map_or(&[], Vec::as_slice)
    }

    /// Runs the entity's tenant rules; `changed` is the fields an update touched (`None`: all).
    pub fn check_tenant_rules(&self, rec: &Record, changed: Option<&[String]>) -> Result<()> {
        let touched = |f: &str| changed.is_none_or(|c| c.iter().any(|x| x == f));
        rec.entity.rules.check_tenant_rules(rec, &touched, self)
    }

    /// Applies `input` onto `rec` ([`validate::apply_input`]): the paths that changed. When some
    /// fields fail, the tenant rules still run on what did read, so one answer names every failing
    /// field (a bad email and a status that is no stage of the pipeline together); a rule's error
    /// on a field that already failed is dropped. On success the caller runs the tenant rules
    /// itself, after its own steps ([`WriteCtx::check_tenant_rules`]).
    pub fn apply_input(
        &self,
        rec: &mut Record,
        input: &serde_json::Map<String, serde_json::Value>,
        mode: validate::Mode,
    ) -> Result<Vec<String>> {
        let mut errs = match validate::apply_input(rec, input, &self.custom, &self.vctx, mode) {
            Ok(changed) => return Ok(changed),
            Err(errs) => errs,
        };
        let given: Vec<String> = input.keys().cloned().collect();
        let changed = (mode == validate::Mode::Update).then_some(given.as_slice());
        if let Err(Error::Validation(more)) = self.check_tenant_rules(rec, changed) {
            for e in more {
                if !errs.iter().any(|x| x.path == e.path) {
                    errs.push(e);
                }
            }
            errs.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Err(Error::Validation(errs))
    }

    /// Sets a scored record's derived score fields (no activities: new records, or callers that pass them).
    pub fn score(&self, rec: &mut Record, activities: &[Record]) {
        if let Some((m, version)) = &self.model {
            let (score, temp) = m.score(rec, activities, self.vctx.now);
            super::lead::set_score(rec, score, temp, *version, self.vctx.now);
        }
    }
}
