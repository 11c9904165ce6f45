//! Stage changes: one derived row per change of a record's stage (a lead's pipeline status, a
//! workflow's state), written by the core in the change set of the write that moved it, so time in
//! stage and velocity are queries over this table rather than scans of the audit log. Never written
//! by clients; read with the read access of the record it describes (see [`read_filter`] and
//! `docs/adr/0007-stage-history.md`).

use super::declare;
use crate::access::{Action, Role, Scope};
use crate::change::Write;
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::{FieldType as T, Id, Timestamp, Value};

declare!(STAGE_CHANGE, stage_change);

/// Field names of a stage change.
pub mod fields {
    /// The described record's entity type (`lead`, `quote`).
    pub const ENTITY: &str = "entity";
    /// The described record's id, as text: not a reference, so it names records of any type.
    pub const RECORD_ID: &str = "record_id";
    /// The stage it left (`None` when the record was created).
    pub const FROM_STATE: &str = "from_state";
    /// The stage it entered.
    pub const TO_STATE: &str = "to_state";
    /// When (the time of the change set).
    pub const AT: &str = "at";
    /// The user whose write moved it (`None` for the system).
    pub const CHANGED_BY: &str = "changed_by";
    /// The record's owner and team after the change: what scoped reads filter on.
    pub const OWNER_ID: &str = "owner_id";
    pub const TEAM_ID: &str = "team_id";
}
use fields::*;

fn stage_change() -> EntityDef {
    let mut e = EntityDef::new("stage_change", "stage_changes")
        .field(F::new(ENTITY, T::Text).required().max_len(64).read_only())
        .field(F::new(RECORD_ID, T::Text).required().max_len(36).read_only())
        .field(F::new(FROM_STATE, T::Text).max_len(64).read_only())
        .field(F::new(TO_STATE, T::Text).required().max_len(64).read_only())
        .field(F::new(AT, T::Timestamp).required().read_only())
        .field(F::new(CHANGED_BY, T::Ref("user")).read_only())
        .field(F::new(OWNER_ID, T::Ref("user")).read_only())
        .field(F::new(TEAM_ID, T::Ref("team")).read_only());
    e.since = 7;
    e.owner_field = Some(OWNER_ID);
    e.team_field = Some(TEAM_ID);
    // Read and listed through the generic use cases; written only by the core.
    e.exposure = Exposure::Managed;
    e.indexes = vec![&[ENTITY, RECORD_ID, AT], &[ENTITY, TO_STATE, AT]];
    // Whoever applies a change set (a server replaying a device's) records its own stage changes.
    e.stays_local = true;
    e
}

/// The field whose changes are recorded for an entity type: its declared stage field, else its
/// workflow's state field.
pub fn state_field(def: &EntityDef) -> Option<&'static str> {
    def.stage_field.or(def.workflow.map(|w| w.field))
}

/// Every entity type whose stage changes are recorded.
pub fn staged() -> impl Iterator<Item = &'static EntityDef> {
    super::all().into_iter().filter(|d| state_field(d).is_some())
}

/// The stages a write moves a record between (`from` is `None` on create), if it moves it.
pub fn moved(old: Option<&Record>, new: &Record) -> Option<(Option<String>, String)> {
    let field = state_field(new.entity)?;
    let to = new.str(field)?;
    let from = old.and_then(|o| o.str(field));
    (from != Some(to)).then(|| (from.map(str::to_owned), to.to_owned()))
}

/// The stage change row for `rec` moving from `from` to `to` at `at`, by `by`.
pub fn row(rec: &Record, from: Option<String>, to: String, by: Option<Id>, id: Id, at: Timestamp) -> Record {
    let mut r = Record::empty(&STAGE_CHANGE, rec.tenant, id, at);
    r.set(ENTITY, rec.entity.name);
    r.set(RECORD_ID, rec.id.to_string());
    r.set(FROM_STATE, from.map_or(Value::Null, Value::Text));
    r.set(TO_STATE, to);
    r.set(AT, at);
    r.set(CHANGED_BY, by.map_or(Value::Null, Value::Id));
    for (own, theirs) in [(OWNER_ID, rec.entity.owner_field), (TEAM_ID, rec.entity.team_field)] {
        let v = theirs.and_then(|f| rec.get(f)).cloned().unwrap_or_default();
        r.set(own, v);
    }
    r
}

/// The query of a staged record's stage changes (`None` for other types), up to `limit` of them.
pub fn history_query(rec: &Record, limit: u32) -> Option<StoreQuery> {
    state_field(rec.entity)?;
    let of = Filter::and([
        Filter::eq(ENTITY, rec.entity.name),
        Filter::eq(RECORD_ID, rec.id.to_string()),
    ]);
    Some(StoreQuery::by_id(of, limit))
}

/// The owner and team (as stage change field positions and values) a write from `old` to `new`
/// gives a staged record, when it changes either; empty otherwise.
pub fn rescoped(old: &Record, new: &Record) -> Vec<(usize, Value)> {
    let def = new.entity;
    if state_field(def).is_none() {
        return Vec::new();
    }
    [(OWNER_ID, def.owner_field), (TEAM_ID, def.team_field)]
        .into_iter()
        .filter_map(|(own, theirs)| {
            let f = theirs?;
            let now = new.get(f).cloned().unwrap_or_default();
            if old.get(f).cloned().unwrap_or_default() == now {
                return None;
            }
            Some((STAGE_CHANGE.index_of(own)?, now))
        })
        .collect()
}

/// Derived writes giving each of a record's stage changes its new owner and team ([`rescoped`]).
pub fn rescope_writes(history: Vec<Record>, fields: &[(usize, Value)]) -> impl Iterator<Item = Write> + '_ {
    history.into_iter().map(move |row| Write::Derived {
        entity: &STAGE_CHANGE,
        id: row.id,
        expected_version: row.version,
        fields: fields.to_vec(),
    })
}

/// The role's scope for reading (or exporting) stage changes, which have no grants of their own
/// (like a child type): `None` when it reads (exports) no staged type's state field; `Tenant` only
/// when it does so for every staged type across the tenant; else the narrowest of its scopes on the
/// staged types it reaches (at most `Team`), so that which stage changes it reaches is always decided
/// by [`read_filter`]. No other action reaches them.
pub(crate) fn derived_scope(role: &Role, action: Action) -> Scope {
    if !matches!(action, Action::Read | Action::Export) {
        return Scope::None;
    }
    let scopes: Vec<Scope> = staged()
        .map(|d| match role.can_read_field(d, state_field(d).unwrap_or_default()) {
            true => role.scope(d, action).min(role.scope(d, Action::Read)),
            false => Scope::None,
        })
        .collect();
    if scopes.iter().all(|s| *s == Scope::Tenant) {
        return Scope::Tenant;
    }
    scopes
        .into_iter()
        .filter(|s| *s != Scope::None)
        .min()
        .map_or(Scope::None, |s| s.min(Scope::Team))
}

/// The filter of the stage changes an actor may read (see [`derived_scope`]); an export reaches the
/// same rows; `columns` turns a scope
/// into the filter over the stage change's own owner and team columns.
pub(crate) fn read_filter(role: &Role, action: Action, columns: impl Fn(Scope) -> Filter) -> Filter {
    let parts: Vec<Filter> = staged()
        .filter(|d| role.can_read_field(d, state_field(d).unwrap_or_default()))
        .filter_map(|d| match role.scope(d, Action::Read).min(role.scope(d, action)) {
            Scope::None => None,
            s => Some(Filter::and([Filter::eq(ENTITY, d.name), columns(s)])),
        })
        .collect();
    if parts.is_empty() {
        Filter::Not(Box::new(Filter::All))
    } else {
        Filter::Or(parts)
    }
}
