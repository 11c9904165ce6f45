//! Entity declarations. An entity type is data: its fields with their rules, which fields carry record
//! scope, what text search looks at, and an optional cross-field check. Validation, access control,
//! queries, import/export, audit and the SQL schema all read these declarations; adding an entity type
//! is adding one module to [`crate::entity`].

use crate::error::FieldError;
use crate::record::Record;
use crate::value::{FieldType, Timestamp, Value};
use serde::{Deserialize, Serialize};

/// The rules of one field, shared by built-in fields and tenant-defined custom fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Maximum length in characters (text-like types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u32>,
    /// Inclusive lower bound (integer, number; money in minor units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Inclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Allowed values for enum and multi-enum fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Dates and timestamps may not lie in the future.
    #[serde(default)]
    pub not_in_future: bool,
}

impl FieldSpec {
    pub fn new(ty: FieldType) -> Self {
        Self {
            ty,
            required: false,
            max_len: None,
            min: None,
            max: None,
            options: Vec::new(),
            not_in_future: false,
        }
    }
}

/// A field's label for people (column headers, DataFrame metadata): its name in words, the first
/// capitalised, with `id` written `ID`: `first_name` -> `First name`, `owner_id` -> `Owner ID`.
/// The one rule for declared, system and computed fields; a tenant's custom field may declare its
/// own label ([`crate::service::Service::custom_labels`]).
pub fn label_of(name: &str) -> String {
    let words: Vec<String> = name
        .split('_')
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, w)| match (i, w) {
            (_, "id") => "ID".to_owned(),
            (0, w) => {
                let mut chars = w.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                }
            }
            (_, w) => w.to_owned(),
        })
        .collect();
    words.join(" ")
}

/// One declared field of an entity type.
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub spec: FieldSpec,
    /// Clients may set it. Derived and system-managed fields (score, lifetime value) are not writable:
    /// an attempt is a `read_only` validation error, never a silent change.
    pub writable: bool,
    /// Value used on create when the input leaves the field out.
    pub default: Option<Value>,
    /// Schema version that added the column (migrations are derived from this).
    pub since: u32,
    /// Unique per tenant (e.g. `external_id`, user `email`).
    pub unique: bool,
    /// A credential (password or token hash): never readable by any role, never in results, events or
    /// exports, masked in audit entries, written only by the use case that owns it.
    pub secret: bool,
    /// Derived by the core from other data (score, temperature, totals, lifetime value): stored,
    /// recomputed in the change set that changes its inputs, never writable, and left out of sync
    /// patches (whoever applies a change set re-derives it).
    pub derived: bool,
    /// On create, a timestamp or date left out defaults to the service clock's now (an activity
    /// happened now unless the caller says when).
    pub default_now: bool,
}

impl FieldDef {
    /// The field's label for people ([`label_of`] its name).
    pub fn label(&self) -> String {
        label_of(self.name)
    }

    pub fn new(name: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            spec: FieldSpec::new(ty),
            writable: true,
            default: None,
            since: 1,
            unique: false,
            secret: false,
            derived: false,
            default_now: false,
        }
    }
    pub fn required(mut self) -> Self {
        self.spec.required = true;
        self
    }
    pub fn max_len(mut self, n: u32) -> Self {
        self.spec.max_len = Some(n);
        self
    }
    pub fn range(mut self, min: Option<i64>, max: Option<i64>) -> Self {
        self.spec.min = min;
        self.spec.max = max;
        self
    }
    pub fn options(mut self, opts: &[&str]) -> Self {
        self.spec.options = opts.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    pub fn past(mut self) -> Self {
        self.spec.not_in_future = true;
        self
    }
    pub fn read_only(mut self) -> Self {
        self.writable = false;
        self
    }
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn since(mut self, v: u32) -> Self {
        self.since = v;
        self
    }
    /// See [`FieldDef::default_now`].
    pub fn default_now(mut self) -> Self {
        self.default_now = true;
        self
    }
    /// See [`FieldDef::derived`]; implies read-only.
    pub fn derived(mut self) -> Self {
        self.derived = true;
        self.writable = false;
        self
    }
    /// See [`FieldDef::secret`]; implies read-only.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self.writable = false;
        self
    }
}

/// A cross-field rule of an entity, run after field validation.
pub type EntityCheck = fn(&Record, &mut Vec<FieldError>);

/// The declaration of an entity type.
#[derive(Debug)]
pub struct EntityDef {
    /// Singular, snake-case name used in APIs, permissions and events: `lead`.
    pub name: &'static str,
    /// Table name: `leads`.
    pub table: &'static str,
    pub fields: Vec<FieldDef>,
    /// Schema version that added the table.
    pub since: u32,
    /// Field holding the user a record is owned by or assigned to ("own" scope).
    pub owner_field: Option<&'static str>,
    /// Field holding the team a record belongs to ("team" scope).
    pub team_field: Option<&'static str>,
    /// A derived list of user ids the record is assigned to besides its owner (a job's crew): each
    /// of them has the record in their "own" scope.
    pub assignees_field: Option<&'static str>,
    /// No two records of this type for the same key may overlap in time (a crew member holds one
    /// assignment at a time): see [`Exclusive`].
    pub exclusive: Option<Exclusive>,
    /// Fields the free-text search term (`"acme roofing"`) looks in.
    pub search_fields: &'static [&'static str],
    /// Field used as the upsert key by imports.
    pub external_key: Option<&'static str>,
    /// Tenants may declare custom fields on this entity.
    pub custom_fields: bool,
    /// Records get a score from the tenant's scoring model.
    pub scored: bool,
    /// Writing a record of this type re-scores the record its named field points at (activity -> lead).
    pub rescores: Option<&'static str>,
    /// Cross-field rules.
    pub check: Option<EntityCheck>,
    /// Extra indexes beyond the per-field ones: each a list of columns after `org_id`.
    pub indexes: Vec<&'static [&'static str]>,
    /// How the generic record use cases may touch this type (see [`Exposure`]).
    pub exposure: Exposure,
    /// The entity's own rules, called by the service (see [`crate::entity::EntityRules`]).
    pub rules: &'static dyn crate::entity::EntityRules,
    /// Set on a child entity type (line items, steps, freezes): rows of their own type that live in a
    /// parent record's scope and change set (see [`ChildOf`]).
    pub child_of: Option<ChildOf>,
    /// Fields evaluated at read, never stored (see [`crate::computed`]).
    pub computed: Vec<crate::computed::ComputedDef>,
    /// The state machine of its status field, run by `Service::transition` (see [`crate::workflow`]).
    pub workflow: Option<&'static crate::workflow::Workflow>,
    /// A stage field outside a workflow (a lead's pipeline status): every change of it is recorded
    /// as a stage change, like a workflow's state (see [`crate::entity::stage`]).
    pub stage_field: Option<&'static str>,
    /// Sums this type's records contribute to a derived field of the records they reference.
    pub rollups: Vec<Rollup>,
    /// What falls due on a record of this type as time passes (a follow-up, a hot lead left
    /// untouched, a membership about to expire): see [`crate::due`].
    pub due: Vec<crate::due::DueDef>,
    /// Records of this type accept attachments (photos, documents, signatures: see
    /// [`crate::entity::attachment`]), which take the record's read scope and go with it.
    pub attachments: Option<Attachments>,
    /// Its rows decide who an access token or API key is (a session, a key, a credential, a user,
    /// a role): a write that changes or removes one invalidates the service's cached callers.
    pub resolves_callers: bool,
    /// Its record is what computed fields are evaluated with (the organization: time zone,
    /// windows): a write to one drops the service's cached copy ([`crate::service`]'s organization
    /// cache).
    pub feeds_computed: bool,
    /// Its rows serialise concurrent use cases (a round-robin turn, a booking): each write of one
    /// expects the version read, and a use case that loses the race for it (a version conflict on
    /// such a row) is decided again on what the other left ([`crate::service`]'s retry).
    pub serialises: bool,
    /// Its rows stay with the store that wrote them and never travel in a sync entry: whoever
    /// applies a change set derives its own (stage changes, round-robin turns), and a device's
    /// record of the server's refusals is its own bookkeeping.
    pub stays_local: bool,
    /// The keys of its records' JSON objects, sorted, built on first use ([`EntityDef::json_keys`]).
    json_keys: std::sync::OnceLock<Vec<(&'static str, crate::record::JsonKey)>>,
}

/// How an entity type takes attachments ([`EntityDef::attachments`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Attachments {
    /// A derived boolean field of the owner kept true while it has a signature attachment (a job's
    /// `customer_signed`, which its completion guard reads), recomputed in the change set that
    /// attaches or deletes a signature.
    pub signed: Option<&'static str>,
}

/// A value kept in derived fields of the record a reference points at, recomputed in the change set
/// of every write of a referencing record (a create, an update, a delete, a child write of it).
#[derive(Clone, Copy, Debug)]
pub enum Rollup {
    /// See [`Sum`].
    Sum(Sum),
    /// See [`Fold`].
    Fold(Fold),
}

/// A sum over records of one type kept in a derived field of the record they reference (accepted
/// quotes' totals in their customer's lifetime value). Several sums may feed one target field
/// (quotes and, later, jobs): the field holds the sum of all of them.
#[derive(Clone, Copy, Debug)]
pub struct Sum {
    /// The reference field naming the target record (its type is the target type).
    pub via: &'static str,
    /// The target's derived money or integer field.
    pub field: &'static str,
    /// The money or integer field summed.
    pub sum: &'static str,
    /// Only records whose enum field has this value count (`("status", "accepted")`).
    pub when: (&'static str, &'static str),
}

impl Sum {
    /// Does this record count towards its target?
    pub fn counts(&self, r: &Record) -> bool {
        r.str(self.when.0) == Some(self.when.1)
    }
}

/// Derived fields of the target that are a function of every record referencing it through `via`
/// (a client's membership standing mirrored on the contact, a membership's visits used). The fold
/// sees the records as they will be after the write, may refuse the write (a typed error), and
/// gives one value per field of `fields`, in order.
#[derive(Clone, Copy, Debug)]
pub struct Fold {
    pub via: &'static str,
    /// The target's derived fields the fold sets.
    pub fields: &'static [&'static str],
    pub fold: FoldFn,
}

/// See [`Fold`]: the referencing records and the time and tenant settings of the write.
pub type FoldFn = fn(&[Record], &crate::computed::ComputeCtx) -> crate::error::Result<Vec<Value>>;

impl Rollup {
    /// The reference field naming the target record.
    pub fn via(&self) -> &'static str {
        match self {
            Rollup::Sum(s) => s.via,
            Rollup::Fold(f) => f.via,
        }
    }
}

/// Time ranges that may not overlap for the same key: a user's crew assignments and the
/// appointments they attend. The core checks every insert and update against the stored rows of
/// every exclusive type with the same [`Exclusive::of`] and against the rest of the change set, and
/// writes a [`crate::entity::booking`] row per key in the same change set, expecting the version it
/// read, so of two concurrent writers for one key one conflicts and is checked again.
#[derive(Clone, Copy, Debug)]
pub struct Exclusive {
    /// The field the ranges are exclusive per: a reference (`user_id`) or a list of ids
    /// (`attendee_user_ids`, each of them a key).
    pub key: &'static str,
    /// Timestamp fields of the half-open range `[start, end)` (for a series, from its first start
    /// to its last end).
    pub start: &'static str,
    pub end: &'static str,
    /// What the keys name (`"user"`): ranges of all exclusive types naming the same thing clash.
    pub of: &'static str,
    /// Records with this field in one of these states hold no time (a cancelled appointment).
    pub free_when: Option<(&'static str, &'static [&'static str])>,
    /// The ranges a record really holds within `[from, to)` (a series' occurrences); `None`: the
    /// one range `[start, end)`.
    pub occurrences: Option<Occurrences>,
    /// A tenant setting that turns a clash into a warning written on the record; `None`: refused.
    pub warn: Option<Overlaps>,
}

/// The `[start, end)` ranges a record holds within `[from, to)`, in time order.
pub type Occurrences = fn(&Record, Timestamp, Timestamp) -> Vec<(Timestamp, Timestamp)>;

/// When a clash of an [`Exclusive`] type is only a warning: the organization field `setting` holds
/// `when`; the clash is then described in the record's (derived) text field `field`.
#[derive(Clone, Copy, Debug)]
pub struct Overlaps {
    pub setting: &'static str,
    pub when: &'static str,
    pub field: &'static str,
}

/// How a child entity type hangs off its parent. By default a child has no access grants of its own:
/// reading it needs read access to its parent, writing it (create, update, delete) needs update access
/// to the parent, with the parent in scope. A role that grants the child type itself narrows this:
/// its grant decides the child's actions (a field technician starts and completes a job's steps but
/// does not change its crew), still with the parent in scope. Every child write is one change set with the parent's version bump
/// and the parent's derived fields recomputed from all its children; deleting the parent deletes its
/// children in the same change set.
#[derive(Clone, Copy, Debug)]
pub struct ChildOf {
    /// The parent entity type's name.
    pub parent: &'static str,
    /// The reference field holding the parent's id (set on create, never changed).
    pub field: &'static str,
    /// The order children are returned in (stored fields; `id` breaks ties).
    pub order_by: &'static [&'static str],
}

/// Which use cases reach an entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Generic create, read, update, delete, list, import and export, under the actor's role.
    Public,
    /// Generic read, update, list and delete; created only by its own use case (API keys, which
    /// need a generated secret; webhooks, whose signing secret is generated).
    Managed,
    /// Never through the generic use cases nor grantable to roles: written and read only by the
    /// service's own use cases (password credentials, sign-in sessions).
    Internal,
}

impl EntityDef {
    pub fn new(name: &'static str, table: &'static str) -> Self {
        Self {
            name,
            table,
            fields: Vec::new(),
            since: 1,
            owner_field: None,
            team_field: None,
            assignees_field: None,
            exclusive: None,
            search_fields: &[],
            external_key: None,
            custom_fields: false,
            scored: false,
            rescores: None,
            check: None,
            indexes: Vec::new(),
            exposure: Exposure::Public,
            rules: &crate::entity::NoRules,
            child_of: None,
            computed: Vec::new(),
            workflow: None,
            stage_field: None,
            rollups: Vec::new(),
            due: Vec::new(),
            attachments: None,
            resolves_callers: false,
            feeds_computed: false,
            serialises: false,
            stays_local: false,
            json_keys: std::sync::OnceLock::new(),
        }
    }

    /// Every key a record of this type may show in JSON, sorted by name (stably: where a declared
    /// field shares a system key's name, the later one wins, as in a JSON tree), secret fields left
    /// out. Built once: serialising a record only skips the keys its reader may not see.
    pub(crate) fn json_keys(&self) -> &[(&'static str, crate::record::JsonKey)] {
        self.json_keys.get_or_init(|| crate::record::JsonKey::sorted(self))
    }

    pub fn field(mut self, f: FieldDef) -> Self {
        debug_assert!(self.fields.len() < 64, "records track hidden fields in a u64 mask");
        self.fields.push(f);
        self
    }

    /// Position of a declared field.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    pub fn def(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The parent entity type of a child type.
    pub fn parent(&self) -> Option<&'static EntityDef> {
        self.child_of.and_then(|c| crate::entity::entity(c.parent))
    }

    /// The child entity types of this type.
    pub fn children(&self) -> impl Iterator<Item = &'static EntityDef> + '_ {
        crate::entity::all()
            .into_iter()
            .filter(move |d| d.child_of.is_some_and(|c| c.parent == self.name))
    }

    /// A computed field by name, with its position among the computed fields.
    pub fn computed_def(&self, name: &str) -> Option<(usize, &crate::computed::ComputedDef)> {
        self.computed.iter().enumerate().find(|(_, c)| c.name == name)
    }

    /// Resolves a field name as used in filters, sorts and field lists.
    pub fn resolve(&self, name: &str) -> Option<FieldRef> {
        Some(match name {
            "id" => FieldRef::System(SystemField::Id),
            "version" => FieldRef::System(SystemField::Version),
            "created_at" => FieldRef::System(SystemField::CreatedAt),
            "updated_at" => FieldRef::System(SystemField::UpdatedAt),
            _ => match name.strip_prefix("custom.") {
                Some(key) if self.custom_fields && !key.is_empty() => FieldRef::Custom(key.to_owned()),
                _ => FieldRef::Declared(self.index_of(name)?),
            },
        })
    }

    /// Type of a resolvable field (custom fields need the tenant's definitions, so they are not here).
    pub fn type_of(&self, r: &FieldRef) -> Option<FieldType> {
        match r {
            FieldRef::System(SystemField::Id) => Some(FieldType::Ref(self.name)),
            FieldRef::System(SystemField::Version) => Some(FieldType::Integer),
            FieldRef::System(_) => Some(FieldType::Timestamp),
            FieldRef::Declared(i) => Some(self.fields[*i].spec.ty.clone()),
            FieldRef::Custom(_) => None,
        }
    }
}

/// Columns every table has, managed by the core and the stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemField {
    Id,
    Version,
    CreatedAt,
    UpdatedAt,
}

impl SystemField {
    pub const ALL: [SystemField; 4] = [
        SystemField::Id,
        SystemField::Version,
        SystemField::CreatedAt,
        SystemField::UpdatedAt,
    ];

    /// The system column of this name, if it is one. System columns are never null.
    pub fn from_name(name: &str) -> Option<SystemField> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            SystemField::Id => "id",
            SystemField::Version => "version",
            SystemField::CreatedAt => "created_at",
            SystemField::UpdatedAt => "updated_at",
        }
    }
}

/// A field name resolved against an entity declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldRef {
    System(SystemField),
    Declared(usize),
    Custom(String),
}

#[cfg(test)]
mod tests {
    use super::label_of;

    #[test]
    fn labels_are_the_name_in_words() {
        assert_eq!(label_of("first_name"), "First name");
        assert_eq!(label_of("owner_id"), "Owner ID");
        assert_eq!(label_of("id"), "ID");
        assert_eq!(label_of("score"), "Score");
        assert_eq!(label_of("hot_status"), "Hot status");
        assert_eq!(label_of(""), "");
    }
}
