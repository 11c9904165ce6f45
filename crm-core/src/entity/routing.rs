//! Lead routing: the tenant's ordered rules that give a new lead an owner (and a team), and the
//! rotation cursors of its round-robin rules.
//!
//! A rule has a condition in the filter language (`source:referral`, `postal_code:80*`,
//! `estimated_value>=20000`, `score>=60`; empty: every lead) and a strategy: a named user, round
//! robin within a team, the team member with the fewest open leads, or a territory (postal-code
//! prefixes mapped to teams; within the team, the member with the fewest open leads). The first
//! active rule, in `position` order, whose condition matches and whose strategy finds an active user
//! of the tenant decides ([`decide`], pure). Deactivated users never receive a lead.
//!
//! A round-robin rule's rotation is a row of [`ROUTING_CURSOR`] (same id as the rule) that the
//! deciding write advances in its own change set, expecting the version it read: of two concurrent
//! creates one conflicts and is decided again, so a team's counts never differ by more than one (see
//! ADR 0008).
//!
//! ```
//! use crm_core::{access::Actor, clock::{FixedClock, SeqIds}, memory::MemoryStore, service::Service};
//! use serde_json::json;
//! use std::sync::Arc;
//!
//! let obj = |j: serde_json::Value| j.as_object().unwrap().clone();
//! let svc = Service::new(MemoryStore::new(), Arc::new(FixedClock::new(Default::default())), Arc::new(SeqIds::default()));
//! pollster::block_on(async {
//!     let org = svc.create_organization(&obj(json!({"name": "Acme Roofing"}))).await?;
//!     let admin = Actor::system(org.id);
//!     let team = svc.create(&admin, "team", &obj(json!({"name": "North"}))).await?;
//!     let sasha = svc.create(&admin, "user", &obj(json!({"name": "Sasha", "email": "sasha@acme.example",
//!         "role": "sales", "team_id": team.id.to_string()}))).await?;
//!     // The rules are records; creating a lead routes it, and the audit entry names the rule.
//!     svc.create(&admin, "routing_rule", &obj(json!({"name": "Referrals to Sasha", "position": 10,
//!         "condition": "source:referral", "strategy": "user", "user_id": sasha.id.to_string()}))).await?;
//!     let lead = svc.create(&admin, "lead", &obj(json!({"first_name": "Ann", "source": "referral"}))).await?;
//!     assert_eq!(lead.id_of("owner_id"), Some(sasha.id));
//!     // Who would get this one? Nothing is written.
//!     let answers = svc.route_dry_run(&admin, &[obj(json!({"first_name": "Bo", "source": "referral"}))]).await?;
//!     assert_eq!(answers[0].as_ref().unwrap().decision.as_ref().unwrap().rule, "Referrals to Sasha");
//!     // Route a stored lead again by today's rules.
//!     let (_, routed) = svc.route_lead(&admin, lead.id).await?;
//!     assert_eq!(routed.owner_id, Some(sasha.id));
//!     Ok::<_, crm_core::Error>(())
//! })?;
//! # Ok::<_, crm_core::Error>(())
//! ```

use super::{EntityRules, Need, WriteCtx, declare, keyed_enum};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{BindCtx, Compiled, bind, text};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::validate::CustomSpecs;
use crate::value::{FieldType as T, Id, Timestamp, Value};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

declare!(ROUTING_RULE, routing_rule);
declare!(ROUTING_CURSOR, routing_cursor);

/// The schema version that added routing.
pub const SINCE: u32 = 8;

/// Most postal-code prefixes one territory rule maps.
pub const MAX_TERRITORIES: usize = 200;

keyed_enum!(
    /// How a matching rule picks the owner.
    Strategy {
        /// The rule's `user_id`.
        User = "user",
        /// The next member of the rule's `team_id`, in turn.
        RoundRobin = "round_robin",
        /// The member of the rule's `team_id` with the fewest open leads.
        FewestOpen = "fewest_open",
        /// The team of the longest postal-code prefix in `territories` that the lead's
        /// `postal_code` starts with; within it, the member with the fewest open leads.
        Territory = "territory",
    }
);

/// Field names of a routing rule.
pub mod fields {
    pub const NAME: &str = "name";
    pub const POSITION: &str = "position";
    pub const ACTIVE: &str = "active";
    pub const CONDITION: &str = "condition";
    pub const STRATEGY: &str = "strategy";
    pub const USER_ID: &str = "user_id";
    pub const TEAM_ID: &str = "team_id";
    pub const TERRITORIES: &str = "territories";
    /// A cursor's next turn (a count of the leads the rule has handed out).
    pub const NEXT: &str = "next";
}
use fields::*;

fn routing_rule() -> EntityDef {
    let mut e = EntityDef::new("routing_rule", "routing_rules")
        .field(F::new(NAME, T::Text).required().max_len(200))
        .field(
            F::new(POSITION, T::Integer)
                .range(Some(0), Some(1_000_000))
                .default(100i64),
        )
        .field(F::new(ACTIVE, T::Bool).default(true))
        .field(F::new(CONDITION, T::Text).max_len(1000))
        .field(F::new(STRATEGY, T::Enum).required().options(Strategy::KEYS))
        .field(F::new(USER_ID, T::Ref("user")))
        .field(F::new(TEAM_ID, T::Ref("team")))
        .field(F::new(TERRITORIES, T::Json));
    e.since = SINCE;
    e.check = Some(check_rule);
    e.rules = &RoutingRuleRules;
    e.indexes = vec![&[POSITION]];
    e
}

fn routing_cursor() -> EntityDef {
    let mut e = EntityDef::new("routing_cursor", "routing_cursors").field(F::new(NEXT, T::Integer).required());
    e.since = SINCE;
    // Written only by routing, in the deciding change set; never a record of the generic use cases.
    e.exposure = Exposure::Internal;
    // The team's turn: two concurrent routings of one team take turns through this row, and the
    // applier of a replayed change set routes on its own turns.
    e.serialises = true;
    e.stays_local = true;
    e
}

/// A rule's own fields agree: the strategy's parameters are there, the territories are a map of
/// postal-code prefixes to team ids, the condition parses.
fn check_rule(r: &Record, errs: &mut Vec<FieldError>) {
    let strategy = r.str(STRATEGY).and_then(Strategy::from_key);
    let needs = |f: &str| r.get(f).is_none_or(Value::is_null);
    match strategy {
        Some(Strategy::User) if needs(USER_ID) => {
            errs.push(FieldError::new(USER_ID, codes::REQUIRED, "the user who gets the leads"));
        }
        Some(Strategy::RoundRobin | Strategy::FewestOpen) if needs(TEAM_ID) => {
            errs.push(FieldError::new(
                TEAM_ID,
                codes::REQUIRED,
                "the team whose members get the leads",
            ));
        }
        Some(Strategy::Territory) => {
            if let Err(e) = territories(r.get(TERRITORIES)) {
                errs.push(e);
            }
        }
        _ => {}
    }
    if let Some(c) = r.str(CONDITION)
        && let Err(e) = text::parse(c)
    {
        errs.push(FieldError::new(CONDITION, codes::INVALID_FORMAT, e.to_string()));
    }
}

/// A territory rule's map (`{"80": "<team id>", "802": "<team id>"}`), longest prefix first.
fn territories(v: Option<&Value>) -> std::result::Result<Vec<(String, Id)>, FieldError> {
    let bad = |m: &str| FieldError::new(TERRITORIES, codes::INVALID_FORMAT, m);
    let Some(Value::Json(Json::Object(map))) = v else {
        return Err(FieldError::new(
            TERRITORIES,
            codes::REQUIRED,
            "an object of postal-code prefixes to team ids",
        ));
    };
    if map.is_empty() || map.len() > MAX_TERRITORIES {
        return Err(bad(&format!("between 1 and {MAX_TERRITORIES} prefixes")));
    }
    let mut out = Vec::with_capacity(map.len());
    for (prefix, team) in map {
        let p = prefix.trim();
        if p.is_empty() || p.len() > 20 {
            return Err(bad("a prefix has 1 to 20 characters"));
        }
        let id = team
            .as_str()
            .and_then(crate::value::parse_id)
            .ok_or_else(|| FieldError::new(format!("{TERRITORIES}.{p}"), codes::INVALID_FORMAT, "a team id"))?;
        out.push((p.to_owned(), id));
    }
    out.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// Compiles a condition against the lead's fields (and the tenant's lead custom fields).
pub fn compile_condition(condition: &str, custom: &CustomSpecs, now: Timestamp) -> Result<Compiled> {
    let bad = |m: String| Error::field(CONDITION, codes::INVALID_FORMAT, m);
    let filter = text::parse(condition).map_err(|e| bad(e.to_string()))?;
    let vctx = crate::tenant::validation_ctx_with(now, None);
    let cx = BindCtx {
        def: &super::LEAD,
        custom,
        readable: &|_| true,
        me: None,
        vctx: &vctx,
        compute: None,
        // The tenant's pipeline stages are not loaded here: a `status:` term is checked when the
        // rule runs against a lead, not when it is saved.
        stages: None,
    };
    let bound = bind(filter, &cx).map_err(|e| match e {
        Error::InvalidQuery { message, .. } => bad(message),
        e => bad(e.to_string()),
    })?;
    Compiled::compile(&bound, &super::LEAD).map_err(|e| bad(e.to_string()))
}

/// A routing rule's tenant rules: the condition binds to the lead's fields; the named user and the
/// territories' teams are the tenant's, and the user is active.
#[derive(Debug)]
pub struct RoutingRuleRules;

impl EntityRules for RoutingRuleRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::CustomFieldsOf("lead"), Need::Users]
    }

    fn check_tenant_rules(&self, rec: &Record, _touched: &dyn Fn(&str) -> bool, ctx: &WriteCtx) -> Result<()> {
        let mut errs = Vec::new();
        if let Some(c) = rec.str(CONDITION) {
            let custom = ctx.related_custom.get("lead").cloned().unwrap_or_default();
            if let Err(Error::Validation(e)) = compile_condition(c, &custom, ctx.vctx.now) {
                errs.extend(e);
            }
        }
        let strategy = rec.str(STRATEGY).and_then(Strategy::from_key);
        if strategy == Some(Strategy::User)
            && let Some(u) = rec.id_of(USER_ID)
        {
            match ctx.users.iter().find(|m| m.id == u) {
                None => errs.push(FieldError::new(
                    USER_ID,
                    codes::UNKNOWN_REFERENCE,
                    "no user with this id",
                )),
                Some(m) if !m.active => errs.push(FieldError::new(
                    USER_ID,
                    codes::INACTIVE_USER,
                    "this user is deactivated and cannot receive leads",
                )),
                Some(_) => {}
            }
        }
        if strategy == Some(Strategy::Territory)
            && let Ok(map) = territories(rec.get(TERRITORIES))
        {
            for (p, team) in map {
                if !ctx.teams.contains(&team) {
                    errs.push(FieldError::new(
                        format!("{TERRITORIES}.{p}"),
                        codes::UNKNOWN_REFERENCE,
                        "no team with this id",
                    ));
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errs))
        }
    }
}

/// A user as routing sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: Id,
    pub team: Option<Id>,
    pub active: bool,
}

impl Member {
    /// A user record as a member (`active` unset counts as active).
    pub fn from_record(r: &Record) -> Member {
        Member {
            id: r.id,
            team: r.id_of("team_id"),
            active: r.get("active") != Some(&Value::Bool(false)),
        }
    }
}

/// How a rule assigns.
#[derive(Clone, Debug)]
pub enum Assign {
    User(Id),
    RoundRobin(Id),
    FewestOpen(Id),
    Territory(Vec<(String, Id)>),
}

/// An active rule, compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: Id,
    pub version: u64,
    pub name: String,
    pub position: i64,
    pub condition: Option<Compiled>,
    pub assign: Assign,
}

impl Rule {
    /// Compiles a stored rule; `None` for an inactive rule or one that no longer compiles (a custom
    /// field it names was removed), which never matches.
    pub fn from_record(r: &Record, custom: &CustomSpecs, now: Timestamp) -> Option<Rule> {
        if r.get(ACTIVE) == Some(&Value::Bool(false)) {
            return None;
        }
        let condition = match r.str(CONDITION).map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(compile_condition(c, custom, now).ok()?),
            None => None,
        };
        let assign = match Strategy::from_key(r.str(STRATEGY)?)? {
            Strategy::User => Assign::User(r.id_of(USER_ID)?),
            Strategy::RoundRobin => Assign::RoundRobin(r.id_of(TEAM_ID)?),
            Strategy::FewestOpen => Assign::FewestOpen(r.id_of(TEAM_ID)?),
            Strategy::Territory => Assign::Territory(territories(r.get(TERRITORIES)).ok()?),
        };
        Some(Rule {
            id: r.id,
            version: r.version,
            name: r.str(NAME).unwrap_or_default().to_owned(),
            position: match r.get(POSITION) {
                Some(Value::Int(p)) => *p,
                _ => 0,
            },
            condition,
            assign,
        })
    }

    pub fn strategy(&self) -> Strategy {
        match self.assign {
            Assign::User(_) => Strategy::User,
            Assign::RoundRobin(_) => Strategy::RoundRobin,
            Assign::FewestOpen(_) => Strategy::FewestOpen,
            Assign::Territory(_) => Strategy::Territory,
        }
    }
}

/// Orders rules as they are tried: by position, then by id (creation order).
pub fn sort_rules(rules: &mut [Rule]) {
    rules.sort_by(|a, b| a.position.cmp(&b.position).then(a.id.cmp(&b.id)));
}

/// What routing knows about the tenant when it decides: its users, the open leads of each user,
/// and the round-robin rules' next turns.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    pub members: Vec<Member>,
    /// Open leads per user (users without any may be absent).
    pub open: BTreeMap<Id, u64>,
    /// Next turn per round-robin rule (absent: 0).
    pub cursors: BTreeMap<Id, u64>,
}

impl Roster {
    /// The active members of a team, in id order (the round-robin order).
    pub fn team(&self, team: Id) -> Vec<&Member> {
        let mut m: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.active && m.team == Some(team))
            .collect();
        m.sort_by_key(|m| m.id);
        m
    }

    fn fewest_open(&self, team: Id) -> Option<Id> {
        self.team(team)
            .into_iter()
            .min_by_key(|m| (self.open.get(&m.id).copied().unwrap_or(0), m.id))
            .map(|m| m.id)
    }
}

/// Who gets a lead and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub rule_id: Id,
    pub rule: String,
    /// The rule's record version when it decided.
    pub rule_version: u64,
    pub strategy: &'static str,
    pub owner_id: Id,
    pub team_id: Option<Id>,
    /// The round-robin turn this decision took (the cursor moves to `turn + 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<u64>,
}

impl Decision {
    /// The audit entry's record of the decision (a change of the pseudo-field `routing`).
    pub fn audit_change(&self) -> crate::change::FieldChange {
        crate::change::FieldChange {
            field: "routing".into(),
            old: Json::Null,
            new: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

/// The first active rule (in order) whose condition matches the lead and whose strategy finds an
/// active member decides; `None` if none does. A rule whose user is deactivated or whose team has no
/// active member is passed over. Pure: the caller advances the cursor and counts what it decided.
pub fn decide(rules: &[Rule], lead: &Record, roster: &Roster) -> Option<Decision> {
    for rule in rules {
        if rule.condition.as_ref().is_some_and(|c| !c.matches(lead)) {
            continue;
        }
        let (owner, team, turn) = match &rule.assign {
            Assign::User(u) => match roster.members.iter().find(|m| m.id == *u && m.active) {
                Some(m) => (m.id, m.team, None),
                None => continue,
            },
            Assign::RoundRobin(team) => {
                let members = roster.team(*team);
                if members.is_empty() {
                    continue;
                }
                let turn = roster.cursors.get(&rule.id).copied().unwrap_or(0);
                (
                    members[(turn % members.len() as u64) as usize].id,
                    Some(*team),
                    Some(turn),
                )
            }
            Assign::FewestOpen(team) => match roster.fewest_open(*team) {
                Some(u) => (u, Some(*team), None),
                None => continue,
            },
            Assign::Territory(map) => {
                let postal = lead.str("postal_code").map(str::trim).unwrap_or_default();
                let team = map
                    .iter()
                    .find(|(p, _)| postal.starts_with(p.as_str()))
                    .map(|(_, t)| *t);
                match team.and_then(|t| Some((roster.fewest_open(t)?, t))) {
                    Some((u, t)) => (u, Some(t), None),
                    None => continue,
                }
            }
        };
        return Some(Decision {
            rule_id: rule.id,
            rule: rule.name.clone(),
            rule_version: rule.version,
            strategy: rule.strategy().key(),
            owner_id: owner,
            team_id: team,
            turn,
        });
    }
    None
}

/// Applies a decision to a lead: its owner, and its team unless `keep_team` (the input named one).
pub fn assign(lead: &mut Record, d: &Decision, keep_team: bool) {
    lead.set("owner_id", d.owner_id);
    if !keep_team {
        lead.set("team_id", d.team_id.map_or(Value::Null, Value::Id));
    }
}

/// Records what a decision changes in the roster, for the next lead decided with it (an import's
/// rows, a dry run over a file): the rule's cursor moves on, the owner has one more open lead.
pub fn advance(roster: &mut Roster, d: &Decision) {
    if let Some(t) = d.turn {
        roster.cursors.insert(d.rule_id, t + 1);
    }
    *roster.open.entry(d.owner_id).or_insert(0) += 1;
}

/// The cursor row of a round-robin rule at its next turn: an insert if it has none yet, else an
/// update of the row read at `cur`.
pub fn cursor_write(tenant: Id, rule: Id, next: u64, cur: Option<&Record>, now: Timestamp) -> crate::change::Write {
    use crate::change::Write;
    match cur {
        None => {
            let mut r = Record::empty(&ROUTING_CURSOR, tenant, rule, now);
            r.set(NEXT, next as i64);
            Write::Insert(r)
        }
        Some(c) => {
            let mut r = c.clone();
            r.set(NEXT, next as i64);
            r.version = c.version + 1;
            r.updated_at = now;
            Write::Update {
                record: r,
                expected_version: c.version,
            }
        }
    }
}

/// A cursor row's next turn.
pub fn cursor_next(r: &Record) -> u64 {
    match r.get(NEXT) {
        Some(Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    }
}

/// Whether a create's input names an owner (which then wins over routing; writing it needs the
/// permission to write `owner_id`, checked with every other field).
pub fn explicit_owner(input: &serde_json::Map<String, Json>) -> bool {
    input
        .get("owner_id")
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

/// Whether a create's input names a team (kept when routing picks the owner).
pub fn explicit_team(input: &serde_json::Map<String, Json>) -> bool {
    input
        .get("team_id")
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::LEAD;
    use crate::value::Timestamp;

    fn id(n: u128) -> Id {
        Id::from_u128(n)
    }

    fn lead(fields: &[(&str, Value)]) -> Record {
        let mut r = Record::empty(&LEAD, id(1), id(999), Timestamp(0));
        for (f, v) in fields {
            r.set(f, v.clone());
        }
        r
    }

    fn rule(n: u128, pos: i64, cond: Option<&str>, assign: Assign) -> Rule {
        Rule {
            id: id(n),
            version: 1,
            name: format!("r{n}"),
            position: pos,
            condition: cond.map(|c| compile_condition(c, &CustomSpecs::new(), Timestamp(0)).unwrap()),
            assign,
        }
    }

    fn roster() -> Roster {
        let team = Some(id(50));
        Roster {
            members: vec![
                Member {
                    id: id(10),
                    team,
                    active: true,
                },
                Member {
                    id: id(11),
                    team,
                    active: false,
                },
                Member {
                    id: id(12),
                    team,
                    active: true,
                },
                Member {
                    id: id(13),
                    team: Some(id(60)),
                    active: true,
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_deactivated_users_are_passed_over() {
        let mut rules = vec![
            rule(3, 20, None, Assign::User(id(13))),
            rule(2, 10, Some("source:referral"), Assign::User(id(11))),
            rule(1, 10, Some("source:referral"), Assign::User(id(10))),
        ];
        sort_rules(&mut rules);
        let r = roster();
        let referral = lead(&[("source", Value::Text("referral".into()))]);
        let d = decide(&rules, &referral, &r).unwrap();
        assert_eq!((d.rule_id, d.owner_id, d.team_id), (id(1), id(10), Some(id(50))));
        // Rule 2 names a deactivated user: never chosen, even when it comes first.
        rules.remove(0);
        assert_eq!(decide(&rules, &referral, &r).unwrap().rule_id, id(3));
        let other = lead(&[("source", Value::Text("website".into()))]);
        assert_eq!(decide(&rules, &other, &r).unwrap().owner_id, id(13));
        assert!(decide(&[], &other, &r).is_none());
    }

    #[test]
    fn round_robin_takes_turns_among_active_members() {
        let rules = vec![rule(1, 0, None, Assign::RoundRobin(id(50)))];
        let mut r = roster();
        let mut got = Vec::new();
        for _ in 0..4 {
            let d = decide(&rules, &lead(&[]), &r).unwrap();
            advance(&mut r, &d);
            got.push(d.owner_id);
        }
        assert_eq!(got, [id(10), id(12), id(10), id(12)]);
        assert_eq!(r.cursors[&id(1)], 4);
    }

    #[test]
    fn fewest_open_and_territory_balance_load() {
        let mut r = roster();
        r.open.insert(id(10), 3);
        r.open.insert(id(12), 1);
        let rules = vec![rule(1, 0, Some("estimated_value>=20000"), Assign::FewestOpen(id(50)))];
        let big = lead(&[("estimated_value", Value::Money(crate::value::Money(2_500_000)))]);
        assert_eq!(decide(&rules, &big, &r).unwrap().owner_id, id(12));
        assert!(
            decide(&rules, &lead(&[]), &r).is_none(),
            "no value: the condition is unknown"
        );

        let map = vec![("802".to_owned(), id(60)), ("80".to_owned(), id(50))];
        let rules = vec![rule(2, 0, None, Assign::Territory(map))];
        let at = |p: &str| decide(&rules, &lead(&[("postal_code", Value::Text(p.into()))]), &r);
        assert_eq!(at("80211").unwrap().owner_id, id(13));
        assert_eq!(at("80301").unwrap().owner_id, id(12));
        assert!(at("90210").is_none());
    }

    #[test]
    fn a_rule_checks_its_parameters_and_condition() {
        let mut r = Record::empty(&ROUTING_RULE, id(1), id(2), Timestamp(0));
        r.set(NAME, "x");
        r.set(STRATEGY, "round_robin");
        r.set(CONDITION, "source:(");
        let mut errs = Vec::new();
        check_rule(&r, &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, [TEAM_ID, CONDITION]);
        r.set(STRATEGY, "territory");
        r.set(CONDITION, Value::Null);
        r.set(TERRITORIES, Value::Json(serde_json::json!({"80": "nope"})));
        errs.clear();
        check_rule(&r, &mut errs);
        assert_eq!(errs[0].path, "territories.80");
        let err = compile_condition("no_such_field:1", &CustomSpecs::new(), Timestamp(0)).unwrap_err();
        assert_eq!(err.code(), "validation");
    }
}
