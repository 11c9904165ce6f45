//! Leads: a prospect moving through a pipeline, scored by the tenant's model (score and temperature are
//! derived by the core), converted to a customer when won.

use super::{EntityRules, Need, WriteCtx, address, declare, followup, keyed_enum, scoped};
use crate::computed::{ComputeCtx, ComputedDef};
use crate::due::DueDef;
use crate::error::{Error, FieldError, Result, codes};
use crate::pipeline::default_pipeline;
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Timestamp, Value};

declare!(LEAD, lead);

pub const LEAD_SOURCES: &[&str] = &[
    "website",
    "referral",
    "google_ads",
    "facebook",
    "door_knock",
    "storm_canvass",
    "home_show",
    "phone_in",
    "yard_sign",
    "partner",
    "walk_in",
    "other",
];
pub const PROJECT_TYPES: &[&str] = &[
    "roof_replacement",
    "roof_repair",
    "roof_inspection",
    "storm_damage",
    "gutters",
    "siding",
    "windows",
    "commercial_roofing",
    "local_move",
    "long_distance_move",
    "packing",
    "storage",
    "membership",
    "other",
];

keyed_enum!(
    /// How close a lead is to buying, from its score and the model's tiers.
    Temperature {
        Hot = "hot",
        Warm = "warm",
        Cold = "cold",
    }
);

pub const TEMPERATURES: &[&str] = Temperature::KEYS;

/// A temperature crosses every boundary as its key (`"hot"`), as the lead's field stores it.
impl serde::Serialize for Temperature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for Temperature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        Temperature::from_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("expected one of: {}", TEMPERATURES.join(", "))))
    }
}

keyed_enum!(
    /// Whether a hot lead has been touched since it became hot (see [`is_touch`]) — the
    /// computed `hot_status`: `hot_status:untouched` is the "untouched hot leads" view.
    HotStatus {
        /// Not hot.
        NotHot = "not_hot",
        /// Hot, and touched ([`is_touch`]) at or after it became hot (or it became hot before
        /// follow-ups existed, so the time is unknown).
        Touched = "touched",
        /// Hot, untouched, for less than the tenant's `hot_lead_untouched_hours`.
        Waiting = "waiting",
        /// Hot and untouched for the tenant's `hot_lead_untouched_hours` or longer.
        Untouched = "untouched",
    }
);

/// Hours a hot lead may wait for its first touch before it counts as untouched, when the tenant
/// has not set `hot_lead_untouched_hours`.
pub const DEFAULT_UNTOUCHED_HOURS: i64 = 24;

/// The organization setting: hours a hot lead may wait for a touch.
pub const UNTOUCHED_HOURS: &str = "hot_lead_untouched_hours";

/// The due kind raised when a hot lead has waited `hot_lead_untouched_hours` for a touch.
pub const UNTOUCHED_DUE_KIND: &str = "hot_untouched";

/// Field names of a lead that code reads.
pub mod fields {
    pub const STATUS: &str = "status";
    pub const PIPELINE_ID: &str = "pipeline_id";
    pub const SCORE: &str = "score";
    pub const TEMPERATURE: &str = "temperature";
    pub const SCORE_MODEL_VERSION: &str = "score_model_version";
    pub const SCORED_AT: &str = "scored_at";
    pub const ESTIMATED_VALUE: &str = "estimated_value";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
    pub const CONVERTED_AT: &str = "converted_at";
    pub const SOURCE: &str = "source";
    /// The day the lead is expected to close (won or lost): what the forecast groups by.
    pub const EXPECTED_CLOSE_DATE: &str = "expected_close_date";
    /// Derived: when the lead became hot, while no touch has happened since (else empty): set by
    /// the scoring write that makes it hot, cleared by one that cools it and by the first touch
    /// ([`super::is_touch`]: an activity that is neither inbound nor a note) at or after that time.
    pub const HOT_UNTOUCHED_SINCE: &str = "hot_untouched_since";
    /// Computed: see [`super::HotStatus`].
    pub const HOT_STATUS: &str = "hot_status";
}
use fields::*;

fn lead() -> EntityDef {
    let e = address(
        EntityDef::new("lead", "leads")
            .field(F::new("first_name", T::Text).max_len(100))
            .field(F::new("last_name", T::Text).max_len(100))
            .field(F::new("company_name", T::Text).max_len(200))
            .field(F::new("email", T::Email))
            .field(F::new("phone", T::Phone)),
    )
    .field(F::new(SOURCE, T::Enum).options(LEAD_SOURCES).default("other"))
    .field(F::new(STATUS, T::Text).required().max_len(64).default("new"))
    .field(F::new(PIPELINE_ID, T::Ref("pipeline")))
    .field(
        F::new(SCORE, T::Integer)
            .derived()
            .range(Some(0), Some(100))
            .default(0i64),
    )
    .field(
        F::new(TEMPERATURE, T::Enum)
            .required()
            .derived()
            .options(TEMPERATURES)
            .default(Temperature::Cold.key()),
    )
    .field(F::new(SCORE_MODEL_VERSION, T::Integer).derived())
    .field(F::new(SCORED_AT, T::Timestamp).derived())
    .field(F::new("owner_id", T::Ref("user")))
    .field(F::new("team_id", T::Ref("team")))
    .field(F::new("location_id", T::Ref("location")))
    .field(F::new("project_type", T::Enum).options(PROJECT_TYPES))
    .field(F::new(ESTIMATED_VALUE, T::Money).range(Some(0), None))
    .field(
        F::new("priority", T::Enum)
            .options(&["low", "medium", "high", "urgent"])
            .default("medium"),
    )
    .field(F::new("notes", T::Text).max_len(10_000))
    .field(F::new("tags", T::Tags))
    .field(F::new("external_id", T::Text).max_len(100).unique())
    .field(F::new("lost_reason", T::Text).max_len(500))
    .field(F::new(CONTACT_ID, T::Ref("contact")).read_only())
    .field(F::new(COMPANY_ID, T::Ref("company")).read_only())
    .field(F::new(CONVERTED_AT, T::Timestamp).read_only())
    .field(F::new(EXPECTED_CLOSE_DATE, T::Date).since(8))
    .field(
        F::new(HOT_UNTOUCHED_SINCE, T::Timestamp)
            .derived()
            .since(followup::SINCE),
    );
    let mut e = followup::declare(e);
    scoped(&mut e);
    e.scored = true;
    e.search_fields = &["first_name", "last_name", "company_name", "email", "phone"];
    e.check = Some(lead_check);
    e.rules = &LeadRules;
    e.stage_field = Some(STATUS);
    e.attachments = Some(Default::default());
    // Serve the common pages (by status, an owner's or a team's leads by status) in score order.
    e.indexes.extend::<[&'static [&'static str]; 5]>([
        &["status", "score"],
        &["owner_id", "status", "score"],
        &["team_id", "status", "score"],
        &["score"],
        &[TEMPERATURE, HOT_UNTOUCHED_SINCE],
    ]);
    e.computed.push(ComputedDef {
        name: HOT_STATUS,
        options: HotStatus::KEYS,
        eval: |r, cx| hot_status(r, cx).key(),
        expand: |option, cx| match HotStatus::from_key(option) {
            Some(s) => expand_hot(s, cx),
            None => Filter::Not(Box::new(Filter::All)),
        },
        sort_by: &[HOT_UNTOUCHED_SINCE],
    });
    e.due.push(DueDef {
        kind: UNTOUCHED_DUE_KIND,
        select: |cx| {
            let since = untouched_cutoff(cx).plus_days(-crate::due::LOOKBACK_DAYS);
            Filter::and([
                expand_hot(HotStatus::Untouched, cx),
                Filter::cmp(HOT_UNTOUCHED_SINCE, Op::Gt, since),
            ])
        },
        occurrence: |r, cx| {
            (hot_status(r, cx) == HotStatus::Untouched)
                .then(|| untouched_since(r).map(|t| t.0.to_string()))
                .flatten()
        },
    });
    e
}

fn untouched_since(r: &Record) -> Option<Timestamp> {
    r.get(HOT_UNTOUCHED_SINCE).and_then(Value::as_timestamp)
}

/// The latest time a hot lead may have become hot and count as untouched now: the context's time
/// less the tenant's `hot_lead_untouched_hours`.
fn untouched_cutoff(cx: &ComputeCtx) -> Timestamp {
    let hours = cx.setting_i64(UNTOUCHED_HOURS, DEFAULT_UNTOUCHED_HOURS);
    Timestamp(cx.now.0.saturating_sub(hours.saturating_mul(3_600_000_000)))
}

/// A lead's [`HotStatus`] as of the context's time.
pub fn hot_status(r: &Record, cx: &ComputeCtx) -> HotStatus {
    if r.str(TEMPERATURE) != Some(Temperature::Hot.key()) {
        return HotStatus::NotHot;
    }
    match untouched_since(r) {
        None => HotStatus::Touched,
        Some(t) if t > untouched_cutoff(cx) => HotStatus::Waiting,
        Some(_) => HotStatus::Untouched,
    }
}

/// The predicate on stored columns that holds exactly when [`hot_status`] gives `status`
/// (two-valued, so a negation selects exactly the rest).
pub fn expand_hot(status: HotStatus, cx: &ComputeCtx) -> Filter {
    let null = |f: &str| Filter::IsNull { field: f.into() };
    let set = |f: &str| Filter::Not(Box::new(null(f)));
    let hot = Filter::and([set(TEMPERATURE), Filter::eq(TEMPERATURE, Temperature::Hot.key())]);
    let cutoff = untouched_cutoff(cx);
    match status {
        HotStatus::NotHot => Filter::Or(vec![
            null(TEMPERATURE),
            Filter::cmp(TEMPERATURE, Op::Ne, Temperature::Hot.key()),
        ]),
        HotStatus::Touched => Filter::and([hot, null(HOT_UNTOUCHED_SINCE)]),
        HotStatus::Waiting => Filter::and([
            hot,
            set(HOT_UNTOUCHED_SINCE),
            Filter::cmp(HOT_UNTOUCHED_SINCE, Op::Gt, cutoff),
        ]),
        HotStatus::Untouched => Filter::and([
            hot,
            set(HOT_UNTOUCHED_SINCE),
            Filter::cmp(HOT_UNTOUCHED_SINCE, Op::Le, cutoff),
        ]),
    }
}

/// Whether an activity is the team reaching the lead (a touch): anything but an inbound activity
/// (the lead reaching the team, which is what makes a lead hot and calls for an answer) or a note.
pub fn is_touch(activity: &Record) -> bool {
    use super::activity::{ActivityKind, fields};
    activity.str(fields::DIRECTION) != Some("inbound") && activity.str(fields::KIND) != Some(ActivityKind::Note.key())
}

/// A touch ([`is_touch`]) logged against a hot lead that happened at or after it became hot ends
/// its wait.
pub(crate) fn touch(lead: &mut Record, activity: &Record) {
    if !is_touch(activity) {
        return;
    }
    let at = activity.get("occurred_at").and_then(Value::as_timestamp);
    if let (Some(since), Some(at)) = (untouched_since(lead), at)
        && at >= since
    {
        lead.set(HOT_UNTOUCHED_SINCE, Value::Null);
    }
}

/// The chance (in percent) that a lead in each stage of the built-in pipeline is won, which the
/// weighted forecast multiplies its value by ([`crate::analytics::forecast`]). A tenant overrides
/// any of them, or gives its own stages one, in the organization's `stage_probabilities`.
pub const DEFAULT_STAGE_PROBABILITIES: &[(&str, u8)] = &[
    ("new", 10),
    ("contacted", 20),
    ("qualified", 40),
    ("appointment_set", 50),
    ("proposal_sent", 60),
    ("negotiation", 80),
];

/// The probability of a stage: the tenant's override, else the declared default, else 100 for a
/// won stage of `pipeline` and 0 for any other.
pub fn stage_probability(
    pipeline: &crate::pipeline::Pipeline,
    overrides: &std::collections::BTreeMap<String, u8>,
    stage: &str,
) -> u8 {
    use crate::pipeline::StageKind;
    if let Some(p) = overrides.get(stage) {
        return *p;
    }
    if let Some((_, p)) = DEFAULT_STAGE_PROBABILITIES.iter().find(|(k, _)| *k == stage) {
        return *p;
    }
    match pipeline.stage(stage).map(|s| s.kind) {
        Some(StageKind::Won) => 100,
        _ => 0,
    }
}

/// The organization setting holding the tenant's stage probabilities: a JSON object from stage
/// key to a whole percent (`{"proposal_sent": 55}`).
pub const STAGE_PROBABILITIES: &str = "stage_probabilities";

/// Reads the tenant's stage probabilities from the organization record (none set: empty). What
/// [`check_stage_probabilities`] would refuse is left out.
pub fn stage_probabilities(org: &Record) -> std::collections::BTreeMap<String, u8> {
    org.get(STAGE_PROBABILITIES)
        .map(|v| v.to_json())
        .and_then(|j| parse_probabilities(&j).ok())
        .unwrap_or_default()
}

fn parse_probabilities(
    j: &serde_json::Value,
) -> std::result::Result<std::collections::BTreeMap<String, u8>, Vec<FieldError>> {
    let mut out = std::collections::BTreeMap::new();
    let mut errs = Vec::new();
    match j {
        serde_json::Value::Null => {}
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v.as_u64() {
                    Some(p) if p <= 100 => {
                        out.insert(k.clone(), p as u8);
                    }
                    p => errs.push(FieldError::new(
                        format!("{STAGE_PROBABILITIES}.{k}"),
                        if p.is_some() {
                            codes::TOO_LARGE
                        } else {
                            codes::INVALID_FORMAT
                        },
                        "a whole percent from 0 to 100",
                    )),
                }
            }
        }
        _ => errs.push(FieldError::new(
            STAGE_PROBABILITIES,
            codes::INVALID_FORMAT,
            "an object from stage key to a whole percent",
        )),
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Cross-field check of the organization's stage probabilities (every value a whole 0..=100).
pub fn check_stage_probabilities(org: &Record, errs: &mut Vec<FieldError>) {
    if let Some(v) = org.get(STAGE_PROBABILITIES)
        && let Err(e) = parse_probabilities(&v.to_json())
    {
        errs.extend(e);
    }
}

/// A lead needs something to call it by.
fn lead_check(r: &Record, errs: &mut Vec<FieldError>) {
    let named = ["first_name", "last_name", "company_name", "email", "phone"]
        .iter()
        .any(|f| r.get(f).is_some_and(|v| !v.is_null()));
    if !named {
        errs.push(FieldError::new(
            "first_name",
            codes::REQUIRED,
            "a lead needs a name, a company, an email or a phone",
        ));
    }
}

/// A lead's status is a stage of its pipeline (its own, the tenant's default, or the built-in one).
#[derive(Debug)]
pub struct LeadRules;

impl EntityRules for LeadRules {
    fn needs(&self) -> &'static [Need] {
        // The routing rules: a create routes a lead whose input names no owner.
        &[Need::Pipelines, Need::RecordsOf("routing_rule")]
    }

    fn routed(&self) -> bool {
        true
    }

    fn check_tenant_rules(&self, rec: &Record, touched: &dyn Fn(&str) -> bool, ctx: &WriteCtx) -> Result<()> {
        if !touched(STATUS) && !touched(PIPELINE_ID) {
            return Ok(());
        }
        let chosen = rec
            .id_of(PIPELINE_ID)
            .and_then(|id| ctx.pipelines.iter().find(|(pid, _)| *pid == id).map(|(_, p)| p));
        let fallback;
        let pipeline = match chosen.or(ctx.default_pipeline.as_ref()) {
            Some(p) => p,
            None => {
                fallback = default_pipeline();
                &fallback
            }
        };
        let status = rec.str(STATUS).unwrap_or_default();
        if pipeline.stage(status).is_none() {
            let keys: Vec<&str> = pipeline.stages.iter().map(|s| s.key.as_str()).collect();
            return Err(Error::field(
                STATUS,
                codes::INVALID_OPTION,
                format!("must be one of: {}", keys.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Sets a lead's derived score fields.
pub(crate) fn set_score(rec: &mut Record, score: i64, temperature: &str, model_version: i64, now: Timestamp) {
    // A lead that becomes hot waits for a touch from now; one that cools waits for nothing.
    let was_hot = rec.str(TEMPERATURE) == Some(Temperature::Hot.key());
    if temperature != Temperature::Hot.key() {
        rec.set(HOT_UNTOUCHED_SINCE, Value::Null);
    } else if !was_hot {
        rec.set(HOT_UNTOUCHED_SINCE, now);
    }
    rec.set(SCORE, score);
    rec.set(TEMPERATURE, temperature);
    rec.set(SCORE_MODEL_VERSION, model_version);
    rec.set(SCORED_AT, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::ORGANIZATION;
    use crate::pipeline::{Stage, StageKind, default_pipeline};
    use crate::value::{Id, Value};
    use std::collections::BTreeMap;

    /// Around the tenant's window (nulls included), exactly one option's expansion holds, it is the
    /// evaluated one, and every negation holds on the rest; the due item is the `untouched` one.
    #[test]
    fn every_hot_status_expansion_selects_exactly_what_evaluates() {
        use crate::computed::ComputeCtx;
        use crate::query::Compiled;
        let now = Timestamp::parse("2025-06-01T12:00:00Z").unwrap();
        let mut org = Record::empty(&ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
        org.set(UNTOUCHED_HOURS, 4i64);
        let cx = ComputeCtx::new(now, Some(org));
        let hours = |h: i64| Some(Timestamp(now.0 - h * 3_600_000_000));
        let mut seen = std::collections::BTreeSet::new();
        for temp in [None, Some("hot"), Some("warm")] {
            for since in [None, hours(0), hours(3), hours(4), hours(5), hours(24 * 8)] {
                let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
                r.set(TEMPERATURE, temp.map(Value::from).unwrap_or(Value::Null));
                r.set(HOT_UNTOUCHED_SINCE, since);
                let want = hot_status(&r, &cx);
                seen.insert(want.key());
                for s in HotStatus::ALL {
                    let f = Compiled::compile(&expand_hot(*s, &cx), &LEAD).unwrap();
                    assert_eq!(f.eval(&r), Some(*s == want), "{s:?} vs {want:?}: {temp:?} {since:?}");
                    let not = Compiled::compile(&Filter::Not(Box::new(expand_hot(*s, &cx))), &LEAD).unwrap();
                    assert_eq!(not.eval(&r), Some(*s != want));
                }
                let due = crate::due::due_items(&LEAD, std::slice::from_ref(&r), &cx);
                let fresh = since.is_some_and(|t| t.0 > now.plus_days(-8).0);
                assert_eq!(
                    due.len(),
                    usize::from(want == HotStatus::Untouched && fresh),
                    "{temp:?} {since:?}"
                );
            }
        }
        assert_eq!(seen.len(), HotStatus::KEYS.len());
    }

    #[test]
    fn becoming_hot_starts_the_wait_and_a_touch_or_cooling_ends_it() {
        let t0 = Timestamp::parse("2025-06-01T12:00:00Z").unwrap();
        let mut r = Record::empty(&LEAD, Id::nil(), Id::nil(), Timestamp(0));
        r.set(TEMPERATURE, "cold");
        set_score(&mut r, 90, "hot", 1, t0);
        assert_eq!(untouched_since(&r), Some(t0));
        set_score(&mut r, 92, "hot", 1, t0.plus_days(1));
        assert_eq!(untouched_since(&r), Some(t0), "still hot: the wait goes on");
        let act = |dir: &str, kind: &str, at: Timestamp| {
            let mut a = Record::empty(&crate::entity::ACTIVITY, Id::nil(), Id::nil(), Timestamp(0));
            a.set("direction", dir);
            a.set("kind", kind);
            a.set("occurred_at", at);
            a
        };
        touch(&mut r, &act("inbound", "call", t0.plus_days(1)));
        touch(&mut r, &act("outbound", "note", t0.plus_days(1)));
        touch(&mut r, &act("outbound", "call", t0.plus_days(-1)));
        assert_eq!(
            untouched_since(&r),
            Some(t0),
            "inbound, notes and earlier calls are no touch"
        );
        touch(&mut r, &act("outbound", "call", t0));
        assert_eq!(untouched_since(&r), None);
        set_score(&mut r, 40, "warm", 1, t0.plus_days(2));
        set_score(&mut r, 90, "hot", 1, t0.plus_days(3));
        assert_eq!(untouched_since(&r), Some(t0.plus_days(3)), "hot again: a new wait");
        set_score(&mut r, 40, "warm", 1, t0.plus_days(4));
        assert_eq!(untouched_since(&r), None);
    }

    #[test]
    fn stage_probabilities_take_the_override_then_the_default_then_the_kind() {
        let mut p = default_pipeline();
        p.stages.push(Stage {
            key: "signed".into(),
            label: "Signed".into(),
            kind: StageKind::Won,
        });
        p.stages.push(Stage {
            key: "site_visit".into(),
            label: "Site visit".into(),
            kind: StageKind::Open,
        });
        let overrides = BTreeMap::from([("qualified".to_owned(), 35u8), ("site_visit".to_owned(), 45)]);
        let got: Vec<u8> = [
            "qualified",
            "negotiation",
            "won",
            "signed",
            "lost",
            "site_visit",
            "elsewhere",
        ]
        .iter()
        .map(|s| stage_probability(&p, &overrides, s))
        .collect();
        assert_eq!(got, [35, 80, 100, 100, 0, 45, 0]);
    }

    #[test]
    fn the_organization_setting_is_checked_and_read() {
        let mut org = Record::empty(&ORGANIZATION, Id::nil(), Id::nil(), Timestamp(0));
        let json = Value::Json;
        org.set(
            STAGE_PROBABILITIES,
            json(serde_json::json!({"new": 15, "won": 101, "lost": -1})),
        );
        let mut errs = Vec::new();
        check_stage_probabilities(&org, &mut errs);
        let paths: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            paths,
            [
                ("stage_probabilities.lost", codes::INVALID_FORMAT),
                ("stage_probabilities.won", codes::TOO_LARGE)
            ]
        );
        assert!(stage_probabilities(&org).is_empty(), "a refused setting is not used");
        org.set(STAGE_PROBABILITIES, json(serde_json::json!({"new": 15})));
        let mut errs = Vec::new();
        check_stage_probabilities(&org, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(stage_probabilities(&org), BTreeMap::from([("new".to_owned(), 15)]));
        org.set(STAGE_PROBABILITIES, json(serde_json::json!([15])));
        check_stage_probabilities(&org, &mut errs);
        assert_eq!(errs[0].path, STAGE_PROBABILITIES);
    }
}
