//! Access control as data. A [`Role`] grants, per entity type, actions with a record scope and
//! per-field read and write allow-lists. Deny by default: no grant, no access. Built-in roles are
//! declared in [`builtin`]; tenants define their own as `role` records with the same JSON shape.

use crate::entity::stage::STAGE_CHANGE;
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Compiled, Filter, Op};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure};
use crate::value::{Id, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Import,
    Export,
    Approve,
    // Workflow actions: each transition of a workflow is bound to one (see `crate::workflow`).
    Submit,
    Reject,
    Send,
    Accept,
    Decline,
    Start,
    Complete,
    Cancel,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 15] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Import,
        Action::Export,
        Action::Approve,
        Action::Submit,
        Action::Reject,
        Action::Send,
        Action::Accept,
        Action::Decline,
        Action::Start,
        Action::Complete,
        Action::Cancel,
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// Which records an action reaches. Ordered: `None < Own < Team < Tenant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    None,
    /// Records owned by or assigned to the actor.
    Own,
    /// Records of the actor's team, and their own.
    Team,
    /// Every record of the tenant.
    Tenant,
}

/// A field allow-list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fields {
    #[default]
    All,
    /// Only these fields (`custom.*` allows every custom field).
    Only(BTreeSet<String>),
    /// Every field but these.
    Except(BTreeSet<String>),
}

impl Fields {
    pub fn only(names: &[&str]) -> Fields {
        Fields::Only(names.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn allows(&self, field: &str) -> bool {
        let listed =
            |s: &BTreeSet<String>| s.contains(field) || (field.starts_with("custom.") && s.contains("custom.*"));
        match self {
            Fields::All => true,
            Fields::Only(s) => listed(s),
            Fields::Except(s) => !listed(s),
        }
    }

    /// Does `self` allow at least what `other` allows?
    fn covers(&self, other: &Fields) -> bool {
        match (self, other) {
            (Fields::All, _) => true,
            (Fields::Only(a), Fields::Only(b)) => b
                .iter()
                .all(|f| a.contains(f) || (f.starts_with("custom.") && a.contains("custom.*"))),
            (Fields::Except(a), Fields::Except(b)) => a.iter().all(|f| b.contains(f)),
            (Fields::Except(a), Fields::Only(b)) => b.iter().all(|f| !a.contains(f)),
            _ => false,
        }
    }
}

/// What a role may do with one entity type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Grant {
    pub actions: BTreeMap<Action, Scope>,
    #[serde(default)]
    pub read: Fields,
    #[serde(default)]
    pub write: Fields,
}

/// A named set of grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub grants: BTreeMap<String, Grant>,
}

impl Role {
    /// The scope of an action on an entity type. A child type the role does not grant takes its
    /// parent's scope, read for reads and update for every write; a child type the role grants takes
    /// its grant (see [`crate::schema::ChildOf`]).
    pub fn scope(&self, def: &EntityDef, action: Action) -> Scope {
        if def.name == STAGE_CHANGE.name {
            // Read (and exported) with the records it describes; written only by the core.
            return crate::entity::stage::derived_scope(self, action);
        }
        if let Some(parent) = def.parent()
            && !self.grants.contains_key(def.name)
        {
            let on_parent = if action == Action::Read {
                Action::Read
            } else {
                Action::Update
            };
            return self.scope(parent, on_parent);
        }
        self.grants
            .get(def.name)
            .and_then(|g| g.actions.get(&action))
            .copied()
            .unwrap_or(Scope::None)
    }

    pub fn can_read_field(&self, def: &EntityDef, field: &str) -> bool {
        // Secret fields (credential hashes) are readable by no role.
        if def.def(field).is_some_and(|f| f.secret) {
            return false;
        }
        // Every reader sees the system columns (id, version, timestamps).
        crate::schema::SystemField::from_name(field).is_some() || self.grant(def).is_some_and(|g| g.read.allows(field))
    }

    pub fn can_write_field(&self, def: &EntityDef, field: &str) -> bool {
        self.grant(def).is_some_and(|g| g.write.allows(field))
    }

    /// The grant that decides an entity type's field permissions. A child type without a grant of its
    /// own lets whoever may read its parent read every field, and whoever may write every field of its
    /// parent write every field (staff who may change only a membership's notes can't add freezes);
    /// grant the child type to refine that.
    fn grant(&self, def: &EntityDef) -> Option<std::borrow::Cow<'_, Grant>> {
        use std::borrow::Cow;
        if def.name == STAGE_CHANGE.name {
            let read = crate::entity::stage::derived_scope(self, Action::Read) != Scope::None;
            return read.then(|| {
                Cow::Owned(Grant {
                    actions: BTreeMap::new(),
                    read: Fields::All,
                    write: Fields::Only(BTreeSet::new()),
                })
            });
        }
        if let Some(g) = self.grants.get(def.name) {
            return Some(Cow::Borrowed(g));
        }
        let parent = self.grants.get(def.parent()?.name)?;
        let write = if parent.write == Fields::All {
            Fields::All
        } else {
            Fields::Only(BTreeSet::new())
        };
        Some(Cow::Owned(Grant {
            actions: BTreeMap::new(),
            read: Fields::All,
            write,
        }))
    }

    /// The role's effective access to an entity type: each action with its scope, and for each declared
    /// field (secret fields excluded) whether the role may read it and write it (writable fields only).
    pub fn access(&self, def: &EntityDef) -> EntityAccess {
        let actions = Action::ALL.iter().map(|a| (*a, self.scope(def, *a))).collect();
        let fields: BTreeMap<String, FieldAccess> = def
            .fields
            .iter()
            .filter(|f| !f.secret)
            .map(|f| {
                let access = FieldAccess {
                    read: self.can_read_field(def, f.name),
                    write: f.writable && self.can_write_field(def, f.name),
                };
                (f.name.to_owned(), access)
            })
            .collect();
        let pick = |p: fn(&FieldAccess) -> bool| fields.iter().filter(|(_, a)| p(a)).map(|(k, _)| k.clone()).collect();
        EntityAccess {
            role: self.name.clone(),
            entity: def.name.to_owned(),
            actions,
            readable: pick(|a| a.read),
            writable: pick(|a| a.write),
            fields,
        }
    }

    /// Is this role at least as strong as `other` (for API keys: never stronger than their creator)?
    pub fn covers(&self, other: &Role) -> bool {
        other.grants.iter().all(|(entity, g)| {
            let Some(mine) = self.grants.get(entity) else {
                return g.actions.values().all(|s| *s == Scope::None);
            };
            g.actions
                .iter()
                .all(|(a, s)| mine.actions.get(a).copied().unwrap_or(Scope::None) >= *s)
                && mine.read.covers(&g.read)
                && mine.write.covers(&g.write)
        })
    }
}

/// A role's effective access to one entity type (see [`Role::access`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntityAccess {
    pub role: String,
    pub entity: String,
    pub actions: BTreeMap<Action, Scope>,
    pub fields: BTreeMap<String, FieldAccess>,
    /// The readable fields, by name.
    pub readable: Vec<String>,
    /// The writable fields, by name.
    pub writable: Vec<String>,
}

/// Whether a role may read and write one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FieldAccess {
    pub read: bool,
    pub write: bool,
}

/// Who is acting, as the service sees it: resolved from a user (or the system) once per request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub tenant: Id,
    /// `None` for the system itself (CLI imports, scheduled jobs).
    pub user_id: Option<Id>,
    pub team_id: Option<Id>,
    pub role: Arc<Role>,
    /// The API key the request came with (a kiosk's), stamped on what it records (check-ins).
    pub api_key_id: Option<Id>,
}

impl Actor {
    /// The system acting inside a tenant with the admin role.
    pub fn system(tenant: Id) -> Actor {
        Actor {
            tenant,
            user_id: None,
            team_id: None,
            role: Arc::new(builtin::admin()),
            api_key_id: None,
        }
    }

    /// The actor's scope for an action ([`Role::scope`]), or `Forbidden` naming the action.
    pub fn authorize(&self, def: &EntityDef, action: Action) -> Result<Scope> {
        match self.role.scope(def, action) {
            Scope::None => Err(Error::forbidden(action, def.name, vec![])),
            s => Ok(s),
        }
    }

    /// The records a scope reaches, as a filter every store can run. Children are in scope with their
    /// parent, which a filter on the child's own columns can't express below tenant scope: such readers
    /// reach children through their parent (`Service::children`).
    pub fn scope_filter(&self, def: &EntityDef, scope: Scope) -> Filter {
        self.action_filter(def, Action::Read, scope)
    }

    /// [`Actor::scope_filter`] for an action beyond reading: derived rows that describe records of
    /// other types (stage changes) are reached only where the actor may do `action` on the type
    /// they describe (a technician who may export jobs exports no lead's stage history).
    pub fn action_filter(&self, def: &EntityDef, action: Action, scope: Scope) -> Filter {
        if def.name == STAGE_CHANGE.name {
            // Each described type's stage changes within the actor's scope on that type.
            return crate::entity::stage::read_filter(&self.role, action, |s| self.columns_filter(def, s));
        }
        self.columns_filter(def, scope)
    }

    /// A scope as a filter over the entity's own owner and team columns.
    fn columns_filter(&self, def: &EntityDef, scope: Scope) -> Filter {
        let nothing = Filter::Not(Box::new(Filter::All));
        let own = match (def.owner_field, self.user_id) {
            (Some(f), Some(me)) => match def.assignees_field {
                // Assigned (a job's crew member) counts as own.
                Some(a) => Filter::Or(vec![Filter::eq(f, me), Filter::cmp(a, Op::Contains, me.to_string())]),
                None => Filter::eq(f, me),
            },
            _ => nothing.clone(),
        };
        match scope {
            Scope::Tenant => Filter::All,
            Scope::None => nothing,
            Scope::Own => own,
            Scope::Team => match (def.team_field, self.team_id) {
                (Some(f), Some(team)) => Filter::Or(vec![Filter::cmp(f, Op::Eq, Value::Id(team)), own]),
                _ => own,
            },
        }
    }

    /// Is the record inside the scope?
    pub fn in_scope(&self, r: &Record, scope: Scope) -> bool {
        scope == Scope::Tenant
            || Compiled::compile(&self.scope_filter(r.entity, scope), r.entity).is_ok_and(|c| c.matches(r))
    }

    /// Checks that the actor may write every named field; `Forbidden` lists the ones it may not.
    pub fn check_writable(&self, def: &EntityDef, action: Action, fields: &[String]) -> Result<()> {
        let denied: Vec<String> = fields
            .iter()
            .map(|f| {
                if f.starts_with("custom.") {
                    f.clone()
                } else {
                    f.split('.').next().unwrap_or(f).to_owned()
                }
            })
            .filter(|f| !self.role.can_write_field(def, f))
            .collect();
        if denied.is_empty() {
            Ok(())
        } else {
            Err(Error::forbidden(action, def.name, denied))
        }
    }

    /// Hides what the actor may not read: declared fields are masked, custom fields removed. Secret
    /// fields are masked for everyone.
    pub fn redact(&self, mut r: Record) -> Record {
        let Some(g) = self.role.grant(r.entity) else {
            r.hidden = u64::MAX;
            r.custom.clear();
            return r;
        };
        for (i, f) in r.entity.fields.iter().enumerate() {
            if f.secret || !g.read.allows(f.name) {
                r.hidden |= 1 << i;
            }
        }
        let n = r.entity.fields.len();
        for (j, c) in r.entity.computed.iter().enumerate() {
            if !g.read.allows(c.name) {
                r.hidden |= 1 << (n + j);
            }
        }
        if g.read == Fields::All {
            return r;
        }
        r.custom.retain(|k, _| g.read.allows(&format!("custom.{k}")));
        r
    }
}

/// Parses and checks the `grants` of a `role` record.
pub fn check_role_record(r: &Record, errs: &mut Vec<FieldError>) {
    let Some(j) = r.get("grants").map(Value::to_json) else {
        return;
    };
    match serde_json::from_value::<BTreeMap<String, Grant>>(j) {
        Err(e) => errs.push(FieldError::new("grants", codes::INVALID_FORMAT, e.to_string())),
        Ok(grants) => {
            for (entity, g) in &grants {
                let def = crate::entity::entity(entity).filter(|d| d.exposure != Exposure::Internal);
                let Some(def) = def else {
                    errs.push(FieldError::new(
                        format!("grants.{entity}"),
                        codes::UNKNOWN_FIELD,
                        "no such entity type",
                    ));
                    continue;
                };
                for (which, fields) in [("read", &g.read), ("write", &g.write)] {
                    if let Fields::Only(s) | Fields::Except(s) = fields {
                        for f in s {
                            if f != "custom.*" && def.resolve(f).is_none() && def.computed_def(f).is_none() {
                                errs.push(FieldError::new(
                                    format!("grants.{entity}.{which}"),
                                    codes::UNKNOWN_FIELD,
                                    format!("no field {f}"),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The built-in roles. Custom roles (tenant `role` records) use the same shape.
pub mod builtin {
    use super::*;

    /// The built-in roles every demo tenant has a user of (`kiosk`, also built in, is used through
    /// API keys).
    pub const NAMES: &[&str] = &["admin", "manager", "sales", "field_tech", "staff"];
    /// The built-in role that may do everything in its tenant.
    pub const ADMIN: &str = "admin";
    const CRM: &[&str] = &["contact", "company", "lead", "activity"];
    const CONFIG: &[&str] = &[
        "organization",
        "location",
        "team",
        "user",
        "custom_field",
        "pipeline",
        "scoring_model",
        "role",
        "routing_rule",
        "job_template",
    ];

    fn grant(actions: &[(Action, Scope)], read: Fields, write: Fields) -> Grant {
        Grant {
            actions: actions.iter().copied().collect(),
            read,
            write,
        }
    }

    fn role(name: &str, grants: Vec<(&str, Grant)>) -> Role {
        Role {
            name: name.to_owned(),
            grants: grants.into_iter().map(|(e, g)| (e.to_owned(), g)).collect(),
        }
    }

    /// Everyone may hold API keys of their own (bound to a role no stronger than theirs).
    fn own_api_keys() -> (&'static str, Grant) {
        use Action::*;
        let acts = [
            (Read, Scope::Own),
            (Create, Scope::Own),
            (Update, Scope::Own),
            (Delete, Scope::Own),
        ];
        ("api_key", grant(&acts, Fields::All, Fields::only(&["name"])))
    }

    /// Everyone may hold a calendar feed of their own (their appointments and assignments).
    fn own_calendar_feed() -> (&'static str, Grant) {
        use Action::*;
        let acts = [(Read, Scope::Own), (Create, Scope::Own), (Delete, Scope::Own)];
        ("calendar_feed", grant(&acts, Fields::All, Fields::only(&[])))
    }

    fn read_config(except: &[&str]) -> Vec<(&'static str, Grant)> {
        CONFIG
            .iter()
            .filter(|e| !except.contains(e))
            .map(|e| (*e, grant(&[(Action::Read, Scope::Tenant)], Fields::All, Fields::All)))
            .collect()
    }

    /// Everything in the tenant.
    pub fn admin() -> Role {
        let all = Action::ALL.map(|a| (a, Scope::Tenant));
        role(
            "admin",
            crate::entity::all()
                .iter()
                .filter(|e| e.exposure != Exposure::Internal)
                .map(|e| (e.name, grant(&all, Fields::All, Fields::All)))
                .collect(),
        )
    }

    /// Runs the business: every customer record and quote (approves quotes up to the manager level);
    /// reads configuration, edits and publishes scoring models.
    pub fn manager() -> Role {
        use Action::*;
        let all = Action::ALL.map(|a| (a, Scope::Tenant));
        let mut g: Vec<_> = CRM
            .iter()
            .chain(&["membership", "quote", "plan", "check_in", "job", "appointment"])
            .map(|e| (*e, grant(&all, Fields::All, Fields::All)))
            .collect();
        g.extend(read_config(&[
            "scoring_model",
            "pipeline",
            "routing_rule",
            "job_template",
        ]));
        let edit = [Read, Create, Update, Approve].map(|a| (a, Scope::Tenant));
        g.push(("scoring_model", grant(&edit, Fields::All, Fields::All)));
        g.push(("pipeline", grant(&edit, Fields::All, Fields::All)));
        let manage = [Read, Create, Update, Delete].map(|a| (a, Scope::Tenant));
        g.push(("routing_rule", grant(&manage, Fields::All, Fields::All)));
        g.push(("job_template", grant(&manage, Fields::All, Fields::All)));
        g.push(own_api_keys());
        g.push(own_calendar_feed());
        role("manager", g)
    }

    /// Sells: reads their team's customers, leads and quotes, edits their own; submits and sends
    /// their own quotes and records the customer's answer, but approves none.
    pub fn sales() -> Role {
        use Action::*;
        let acts = [
            (Read, Scope::Team),
            (Create, Scope::Own),
            (Update, Scope::Own),
            (Export, Scope::Team),
        ];
        let mut g: Vec<_> = CRM
            .iter()
            .map(|e| (*e, grant(&acts, Fields::All, Fields::All)))
            .collect();
        let quoting = [Submit, Send, Accept, Decline].map(|a| (a, Scope::Own));
        let quote_acts: Vec<_> = acts.iter().chain(&quoting).copied().collect();
        g.push(("quote", grant(&quote_acts, Fields::All, Fields::All)));
        // Sells the job and plans it; the crew runs it.
        g.push(("job", grant(&acts, Fields::All, Fields::All)));
        // Books their own appointments (site visits, sales calls).
        g.push(("appointment", grant(&acts, Fields::All, Fields::All)));
        g.extend(read_config(&[]));
        g.push(own_api_keys());
        g.push(own_calendar_feed());
        role("sales", g)
    }

    /// Works in the field: sees only the leads and activities assigned to them, and the jobs whose
    /// crew they are on; on a lead may change only its status and notes; logs activities; on a job
    /// moves steps forward, logs step activities and records the customer's signature, but changes
    /// neither its budget nor its crew.
    pub fn field_tech() -> Role {
        use Action::*;
        let mut g = vec![
            (
                "job",
                grant(
                    &[
                        (Read, Scope::Own),
                        (Update, Scope::Own),
                        (Export, Scope::Own),
                        (Start, Scope::Own),
                        (Complete, Scope::Own),
                    ],
                    Fields::All,
                    Fields::only(&["notes"]),
                ),
            ),
            (
                "job_step",
                grant(
                    &[(Read, Scope::Own), (Start, Scope::Own), (Complete, Scope::Own)],
                    Fields::All,
                    Fields::only(&["skip_reason"]),
                ),
            ),
            (
                "step_activity",
                grant(
                    &[(Read, Scope::Own), (Create, Scope::Own), (Update, Scope::Own)],
                    Fields::All,
                    Fields::All,
                ),
            ),
            (
                "crew_assignment",
                grant(&[(Read, Scope::Own)], Fields::All, Fields::only(&[])),
            ),
            (
                "lead",
                grant(
                    &[(Read, Scope::Own), (Update, Scope::Own)],
                    Fields::All,
                    Fields::only(&["status", "notes", "lost_reason"]),
                ),
            ),
            (
                "activity",
                grant(
                    &[(Read, Scope::Own), (Create, Scope::Own), (Update, Scope::Own)],
                    Fields::All,
                    Fields::All,
                ),
            ),
            ("contact", grant(&[(Read, Scope::Own)], Fields::All, Fields::only(&[]))),
            // The appointments they attend or own: they confirm, complete and reschedule them.
            (
                "appointment",
                grant(
                    &[(Read, Scope::Own), (Create, Scope::Own), (Update, Scope::Own)],
                    Fields::All,
                    Fields::All,
                ),
            ),
        ];
        g.extend(read_config(&["role", "scoring_model", "routing_rule"]));
        g.push(own_api_keys());
        g.push(own_calendar_feed());
        role("field_tech", g)
    }

    /// The front desk: reads every contact, membership and plan but may change only a client's notes
    /// and language (and a membership's notes); checks clients in and logs activities; never sees
    /// leads or money.
    pub fn staff() -> Role {
        use Action::*;
        let no_money = |f: &str| Fields::Except([f.to_owned()].into());
        let mut g = vec![
            (
                "contact",
                grant(
                    &[(Read, Scope::Tenant), (Update, Scope::Tenant)],
                    no_money("lifetime_value"),
                    Fields::only(&["notes", "language"]),
                ),
            ),
            (
                "activity",
                grant(
                    &[(Read, Scope::Tenant), (Create, Scope::Tenant)],
                    Fields::All,
                    Fields::All,
                ),
            ),
            (
                "membership",
                grant(
                    &[(Read, Scope::Tenant), (Update, Scope::Tenant)],
                    no_money("price_paid"),
                    Fields::only(&["notes"]),
                ),
            ),
            (
                "plan",
                grant(&[(Read, Scope::Tenant)], no_money("price"), Fields::only(&[])),
            ),
            (
                "check_in",
                grant(
                    &[(Read, Scope::Tenant), (Create, Scope::Tenant)],
                    Fields::All,
                    Fields::only(&[]),
                ),
            ),
        ];
        g.extend(read_config(&["role", "scoring_model", "pipeline", "routing_rule"]));
        g.push(own_api_keys());
        role("staff", g)
    }

    /// A self-service kiosk at the door (used through an API key with this role): checks clients in
    /// and reads their name and membership status, nothing else.
    pub fn kiosk() -> Role {
        use Action::*;
        role(
            "kiosk",
            vec![
                (
                    "contact",
                    grant(
                        &[(Read, Scope::Tenant)],
                        Fields::only(&["first_name", "last_name", "membership"]),
                        Fields::only(&[]),
                    ),
                ),
                (
                    "check_in",
                    grant(&[(Create, Scope::Tenant)], Fields::only(&[]), Fields::only(&[])),
                ),
            ],
        )
    }

    /// A built-in role by name.
    pub fn by_name(name: &str) -> Option<Role> {
        Some(match name {
            "admin" => admin(),
            "manager" => manager(),
            "sales" => sales(),
            "field_tech" => field_tech(),
            "staff" => staff(),
            "kiosk" => kiosk(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_strength() {
        let (admin, sales, staff) = (builtin::admin(), builtin::sales(), builtin::staff());
        assert!(admin.covers(&sales) && admin.covers(&staff));
        assert!(!sales.covers(&admin));
        assert!(!staff.covers(&sales), "staff cannot read leads");
        assert!(!sales.covers(&staff), "staff reads all contacts, sales only its team's");
    }

    #[test]
    fn staff_writes_only_notes() {
        let staff = builtin::staff();
        use crate::entity::{CONTACT, LEAD};
        assert!(staff.can_write_field(&CONTACT, "notes"));
        assert!(!staff.can_write_field(&CONTACT, "email"));
        assert!(!staff.can_read_field(&CONTACT, "lifetime_value"));
        assert_eq!(staff.scope(&LEAD, Action::Read), Scope::None);
        let m = staff.access(&CONTACT);
        assert_eq!(m.writable, ["language", "notes"]);
        assert!(!m.readable.contains(&"lifetime_value".to_owned()) && m.readable.contains(&"email".to_owned()));
        assert_eq!(m.actions[&Action::Update], Scope::Tenant);
        assert_eq!(m.actions[&Action::Delete], Scope::None);
    }
}
