//! Validation and compilation of a [`ScoringModel`]: every problem is reported at once, with a path
//! into the definition (`groups[0].rules[2].condition`); conditions are bound and resolved once.

use super::engine::{
    ActivityFields, CEngRule, CFitRule, CGroup, CGroupBody, CReset, CTier, CompiledModel, DIR_ANY, DIR_IN, DIR_OUT,
    KIND_ANY,
};
use super::model::{Condition, GroupKind, Rule, ScoringModel};
use crate::entity::{ACTIVITY, ACTIVITY_KINDS, LEAD, TEMPERATURES, Temperature};
use crate::error::{Error, FieldError, codes};
use crate::query::{BindCtx, Compiled, Filter, bind, text};
use crate::schema::{EntityDef, FieldRef, FieldSpec};
use crate::validate::CustomSpecs;
use crate::value::{FieldType, Timestamp};
use std::collections::HashSet;

/// At most this many groups per model.
pub const MAX_GROUPS: usize = 16;
/// At most this many rules per group (engagement rules keep their tallies on the stack).
pub const MAX_RULES_PER_GROUP: usize = 32;
pub const MAX_TIERS: usize = 10;
pub const MAX_RESETS: usize = 16;
/// Bound on `|points|` of a rule.
pub const MAX_POINTS: i64 = 1000;
/// Bound on `within_days` and `decay_days` (100 years).
pub const MAX_DAYS: i64 = 36_500;
const MAX_NAME: usize = 100;

/// Lead fields a condition may not read: the score would depend on itself.
const DERIVED: &[&str] = &["score", "temperature", "score_model_version", "scored_at"];

impl ScoringModel {
    /// Validates the model and compiles it against the tenant's lead custom fields.
    pub fn compile(&self, custom: &CustomSpecs) -> Result<CompiledModel, Vec<FieldError>> {
        compile(self, custom, false)
    }

    /// Validates the model without the tenant's custom field definitions: conditions on `custom.*`
    /// fields are checked as text fields (their real types are checked when the model is compiled
    /// for a tenant, e.g. on publish). Used by the `scoring_model` record check.
    pub fn check(&self) -> Vec<FieldError> {
        match compile(self, &CustomSpecs::new(), true) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        }
    }
}

struct Cx<'a> {
    custom: &'a CustomSpecs,
    /// Accept unknown lead custom fields (typed as text).
    lenient: bool,
    errs: Vec<FieldError>,
}

impl Cx<'_> {
    fn err(&mut self, path: impl Into<String>, code: &str, msg: impl Into<String>) {
        self.errs.push(FieldError::new(path, code, msg));
    }

    fn name(&mut self, path: String, name: &str, seen: &mut HashSet<String>) {
        if name.trim().is_empty() {
            self.err(path, codes::REQUIRED, "a name is required");
        } else if name.chars().count() > MAX_NAME {
            self.err(path, codes::TOO_LONG, format!("at most {MAX_NAME} characters"));
        } else if !seen.insert(name.to_owned()) {
            self.err(path, codes::DUPLICATE, format!("the name {name} is used twice"));
        }
    }

    fn days(&mut self, path: String, d: Option<i64>) -> Option<i64> {
        let d = d?;
        if d <= 0 {
            self.err(path, codes::TOO_SMALL, "at least 1 day");
        } else if d > MAX_DAYS {
            self.err(path, codes::TOO_LARGE, format!("at most {MAX_DAYS} days"));
        } else {
            return Some(d * Timestamp::MICROS_PER_DAY);
        }
        None
    }

    /// Binds and compiles a condition against `def` (lead or activity).
    fn condition(&mut self, path: String, c: &Condition, def: &'static EntityDef) -> Compiled {
        match self.try_condition(c, def) {
            Ok(c) => c,
            Err(e) => {
                self.errs.push(FieldError { path, ..e });
                Compiled::All
            }
        }
    }

    fn try_condition(&self, c: &Condition, def: &'static EntityDef) -> Result<Compiled, FieldError> {
        let bad = |code: &str, msg: String| FieldError::new("", code, msg);
        let filter: Filter = match c {
            Condition::Filter(spec) => spec.clone().into(),
            Condition::Text(s) if s.trim().is_empty() => {
                return Err(bad(codes::REQUIRED, "a condition is required".into()));
            }
            Condition::Text(s) => text::parse(s).map_err(|e| bad(codes::INVALID_FORMAT, e.to_string()))?,
        };
        let is_lead = std::ptr::eq(def, &*LEAD);
        let mut names = Vec::new();
        filter.fields(&mut names);
        let mut extra: Option<CustomSpecs> = None;
        for n in &names {
            match canonical(def, n, self.custom) {
                Some(c) if is_lead && DERIVED.contains(&c.as_str()) => {
                    return Err(bad(
                        codes::INVALID_FORMAT,
                        format!("{c} is the score itself and cannot be a condition"),
                    ));
                }
                Some(_) => {}
                None => match n.trim().strip_prefix("custom.") {
                    Some(k) if is_lead && self.lenient && def.custom_fields && !k.is_empty() => {
                        extra
                            .get_or_insert_with(|| self.custom.clone())
                            .insert(k.to_owned(), FieldSpec::new(FieldType::Text));
                    }
                    _ => {
                        return Err(bad(
                            codes::UNKNOWN_FIELD,
                            format!("{} has no field {}", def.name, n.trim()),
                        ));
                    }
                },
            }
        }
        let no_custom = CustomSpecs::new();
        let custom = match (&extra, is_lead) {
            (Some(x), _) => x,
            (None, true) => self.custom,
            (None, false) => &no_custom,
        };
        let vctx = crate::tenant::validation_ctx_with(Timestamp(0), Some("1"));
        let cx = BindCtx {
            def,
            custom,
            readable: &|_| true,
            me: None,
            vctx: &vctx,
            compute: None,
            stages: None,
        };
        let bound = bind(filter, &cx).map_err(|e| match e {
            Error::InvalidQuery { message, .. } => bad(codes::INVALID_FORMAT, message),
            Error::LimitExceeded { what, limit } => bad(codes::TOO_LARGE, format!("at most {limit} {what}")),
            e => bad(codes::INVALID_FORMAT, e.to_string()),
        })?;
        Compiled::compile(&bound, def).map_err(|e| bad(codes::INVALID_FORMAT, e.to_string()))
    }
}

/// The canonical name a filter field resolves to, as binding resolves it (`owner` -> `owner_id`).
fn canonical(def: &EntityDef, name: &str, custom: &CustomSpecs) -> Option<String> {
    let name = name.trim();
    [name.to_owned(), format!("{name}_id"), format!("{name}_at")]
        .into_iter()
        .find(|cand| match def.resolve(cand) {
            Some(FieldRef::Custom(k)) => custom.contains_key(&k),
            Some(_) => true,
            None => false,
        })
}

fn compile(m: &ScoringModel, custom: &CustomSpecs, lenient: bool) -> Result<CompiledModel, Vec<FieldError>> {
    let mut cx = Cx {
        custom,
        lenient,
        errs: Vec::new(),
    };
    if m.total_cap < 1 {
        cx.err("total_cap", codes::TOO_SMALL, "at least 1");
    } else if m.total_cap > 100 {
        cx.err("total_cap", codes::TOO_LARGE, "at most 100 (lead scores are 0 to 100)");
    }
    if m.groups.is_empty() {
        cx.err("groups", codes::REQUIRED, "at least one group of rules");
    } else if m.groups.len() > MAX_GROUPS {
        cx.err("groups", codes::TOO_LARGE, format!("at most {MAX_GROUPS} groups"));
    }
    let mut group_names = HashSet::new();
    let mut groups = Vec::with_capacity(m.groups.len());
    // The longest engagement timeframe; `None` inside: some rule is unbounded.
    let mut lookback: Option<Option<i64>> = None;
    for (gi, g) in m.groups.iter().enumerate() {
        let gp = format!("groups[{gi}]");
        cx.name(format!("{gp}.name"), &g.name, &mut group_names);
        if g.cap.is_some_and(|c| c < 0) {
            cx.err(format!("{gp}.cap"), codes::TOO_SMALL, "a cap is at least 0");
        }
        if g.floor.is_some_and(|f| f > 0) {
            cx.err(format!("{gp}.floor"), codes::TOO_LARGE, "a floor is at most 0");
        }
        if g.rules.is_empty() {
            cx.err(format!("{gp}.rules"), codes::REQUIRED, "at least one rule");
        } else if g.rules.len() > MAX_RULES_PER_GROUP {
            cx.err(
                format!("{gp}.rules"),
                codes::TOO_LARGE,
                format!("at most {MAX_RULES_PER_GROUP} rules"),
            );
        }
        let mut rule_names = HashSet::new();
        let body = match g.kind {
            GroupKind::Fit => {
                let mut rules = Vec::with_capacity(g.rules.len());
                for (ri, r) in g.rules.iter().enumerate() {
                    let rp = format!("{gp}.rules[{ri}]");
                    common(&mut cx, &rp, r, &mut rule_names);
                    let engagement_only = [
                        ("kind", r.kind.is_some()),
                        ("direction", r.direction.is_some()),
                        ("outcome", r.outcome.is_some()),
                        ("limit", r.limit.is_some()),
                        ("min_count", r.min_count.is_some()),
                        ("within_days", r.within_days.is_some()),
                        ("decay_days", r.decay_days.is_some()),
                    ];
                    for (k, set) in engagement_only {
                        if set {
                            cx.err(
                                format!("{rp}.{k}"),
                                codes::INVALID_FORMAT,
                                format!("{k} is for engagement rules; this is a fit group"),
                            );
                        }
                    }
                    let cond = match &r.condition {
                        Some(c) => cx.condition(format!("{rp}.condition"), c, &LEAD),
                        None => {
                            cx.err(
                                format!("{rp}.condition"),
                                codes::REQUIRED,
                                "a fit rule needs a condition on the lead",
                            );
                            Compiled::All
                        }
                    };
                    rules.push(CFitRule {
                        name: r.name.clone(),
                        points: r.points,
                        cond,
                    });
                }
                CGroupBody::Fit(rules.into_boxed_slice())
            }
            GroupKind::Engagement => {
                let mut rules = Vec::with_capacity(g.rules.len());
                let mut group_window: Option<Option<i64>> = None;
                for (ri, r) in g.rules.iter().enumerate() {
                    let rp = format!("{gp}.rules[{ri}]");
                    let rule = engagement_rule(&mut cx, &rp, r, &mut rule_names);
                    let w = rule.window_us;
                    group_window = Some(match group_window {
                        None => w,
                        Some(g) => g.zip(w).map(|(a, b)| a.max(b)),
                    });
                    rules.push(rule);
                }
                let window_us = group_window.flatten();
                lookback = Some(match (lookback, group_window) {
                    (None, g) => g.flatten(),
                    (Some(l), None) => l,
                    (Some(l), Some(g)) => l.zip(g).map(|(a, b)| a.max(b)),
                });
                CGroupBody::Engagement {
                    rules: rules.into_boxed_slice(),
                    window_us,
                }
            }
        };
        groups.push(CGroup {
            name: g.name.clone(),
            cap: g.cap,
            floor: g.floor,
            body,
        });
    }

    if m.tiers.is_empty() {
        cx.err("tiers", codes::REQUIRED, "at least one tier, the last with min_score 0");
    } else if m.tiers.len() > MAX_TIERS {
        cx.err("tiers", codes::TOO_LARGE, format!("at most {MAX_TIERS} tiers"));
    }
    let mut tier_names = HashSet::new();
    let mut tiers = Vec::with_capacity(m.tiers.len());
    let mut prev: Option<i64> = None;
    for (ti, t) in m.tiers.iter().enumerate() {
        let tp = format!("tiers[{ti}]");
        cx.name(format!("{tp}.name"), &t.name, &mut tier_names);
        if let Some(temp) = Temperature::from_key(&t.temperature) {
            tiers.push(CTier {
                name: t.name.clone(),
                min_score: t.min_score,
                temperature: temp,
            });
        } else {
            cx.err(
                format!("{tp}.temperature"),
                codes::INVALID_OPTION,
                format!("must be one of: {}", TEMPERATURES.join(", ")),
            );
        }
        if t.min_score < 0 {
            cx.err(format!("{tp}.min_score"), codes::TOO_SMALL, "at least 0");
        } else if t.min_score > m.total_cap {
            cx.err(
                format!("{tp}.min_score"),
                codes::TOO_LARGE,
                format!("at most the total cap, {}", m.total_cap),
            );
        } else if prev.is_some_and(|p| t.min_score >= p) {
            cx.err(
                format!("{tp}.min_score"),
                codes::INVALID_FORMAT,
                "tiers are listed from the highest min_score down",
            );
        }
        prev = Some(t.min_score);
    }
    if !m.tiers.is_empty() && !m.tiers.iter().any(|t| t.min_score == 0) {
        cx.err("tiers", codes::REQUIRED, "a tier with min_score 0 (the lowest tier)");
    }

    if m.reset_when.len() > MAX_RESETS {
        cx.err(
            "reset_when",
            codes::TOO_LARGE,
            format!("at most {MAX_RESETS} conditions"),
        );
    }
    let mut reset_names = HashSet::new();
    let mut resets = Vec::with_capacity(m.reset_when.len());
    for (i, r) in m.reset_when.iter().enumerate() {
        let p = format!("reset_when[{i}]");
        cx.name(format!("{p}.name"), &r.name, &mut reset_names);
        let cond = cx.condition(format!("{p}.condition"), &r.condition, &LEAD);
        resets.push(CReset {
            name: r.name.clone(),
            cond,
        });
    }

    if !cx.errs.is_empty() {
        return Err(cx.errs);
    }
    let field = |n: &str| ACTIVITY.index_of(n).unwrap_or(usize::MAX);
    Ok(CompiledModel {
        name: m.name.clone(),
        total_cap: m.total_cap,
        groups: groups.into_boxed_slice(),
        tiers: tiers.into_boxed_slice(),
        resets: resets.into_boxed_slice(),
        lookback_days: match lookback {
            // No engagement group: activities never count.
            None => Some(0),
            Some(w) => w.map(|us| (us + Timestamp::MICROS_PER_DAY - 1) / Timestamp::MICROS_PER_DAY),
        },
        fields: ActivityFields {
            occurred_at: field("occurred_at"),
            kind: field("kind"),
            direction: field("direction"),
            outcome: field("outcome"),
        },
    })
}

/// Checks shared by fit and engagement rules.
fn common(cx: &mut Cx<'_>, rp: &str, r: &Rule, names: &mut HashSet<String>) {
    cx.name(format!("{rp}.name"), &r.name, names);
    if r.points > MAX_POINTS {
        cx.err(
            format!("{rp}.points"),
            codes::TOO_LARGE,
            format!("at most {MAX_POINTS}"),
        );
    } else if r.points < -MAX_POINTS {
        cx.err(
            format!("{rp}.points"),
            codes::TOO_SMALL,
            format!("at least -{MAX_POINTS}"),
        );
    }
}

fn engagement_rule(cx: &mut Cx<'_>, rp: &str, r: &Rule, names: &mut HashSet<String>) -> CEngRule {
    common(cx, rp, r, names);
    let mut kinds = KIND_ANY;
    if let Some(k) = &r.kind {
        kinds = 0;
        if k.as_slice().is_empty() {
            cx.err(format!("{rp}.kind"), codes::REQUIRED, "at least one activity kind");
        }
        for s in k.as_slice() {
            match ACTIVITY_KINDS.iter().position(|x| x == s) {
                Some(i) => kinds |= 1 << i,
                None => cx.err(
                    format!("{rp}.kind"),
                    codes::INVALID_OPTION,
                    format!("{s} is not one of: {}", ACTIVITY_KINDS.join(", ")),
                ),
            }
        }
    }
    let direction = match r.direction.as_deref() {
        None => DIR_ANY,
        Some("inbound") => DIR_IN,
        Some("outbound") => DIR_OUT,
        Some(_) => {
            cx.err(
                format!("{rp}.direction"),
                codes::INVALID_OPTION,
                "must be one of: inbound, outbound",
            );
            DIR_ANY
        }
    };
    let outcomes: Box<[String]> = match &r.outcome {
        None => Box::new([]),
        Some(o) => {
            let o = o.as_slice();
            if o.is_empty() || o.iter().any(|s| s.trim().is_empty()) {
                cx.err(format!("{rp}.outcome"), codes::REQUIRED, "outcomes are not empty");
            }
            o.iter().map(|s| s.trim().to_owned()).collect()
        }
    };
    if r.limit == Some(0) {
        cx.err(format!("{rp}.limit"), codes::TOO_SMALL, "at least 1");
    }
    if r.min_count == Some(0) {
        cx.err(format!("{rp}.min_count"), codes::TOO_SMALL, "at least 1");
    }
    let within = cx.days(format!("{rp}.within_days"), r.within_days);
    let decay = cx.days(format!("{rp}.decay_days"), r.decay_days);
    let cond = r
        .condition
        .as_ref()
        .map(|c| cx.condition(format!("{rp}.condition"), c, &ACTIVITY));
    CEngRule {
        name: r.name.clone(),
        points: r.points,
        kinds,
        direction,
        outcomes,
        cond,
        limit: r.limit.unwrap_or(u32::MAX),
        min_count: r.min_count.unwrap_or(0),
        // Without a timeframe, decay is one: older activities are worth nothing.
        window_us: within.or(decay),
        decay_us: decay,
    }
}
