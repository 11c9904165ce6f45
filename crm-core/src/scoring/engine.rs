//! Evaluation of a compiled model. One generic core serves both [`CompiledModel::evaluate`] (with an
//! explanation) and [`CompiledModel::score`] (no explanation, no allocation), so they cannot disagree.
//!
//! Arithmetic is integer: an activity's decayed points are milli-points (truncated toward zero), summed
//! per rule and rounded half away from zero to whole points; caps, floors and tiers work on whole points.

use super::compile::MAX_RULES_PER_GROUP;
use super::model::{Contribution, ContributionKind, ScoreResult};
use crate::entity::{ACTIVITY_KINDS, Temperature};
use crate::query::Compiled;
use crate::record::Record;
use crate::value::{Timestamp, Value};

/// Rule kind mask matching every activity kind (unknown kinds included).
pub(super) const KIND_ANY: u16 = u16::MAX;
/// Kind bit of an activity whose kind is missing or not in [`ACTIVITY_KINDS`].
const KIND_OTHER: u16 = 1 << 15;
pub(super) const DIR_IN: u8 = 1;
pub(super) const DIR_OUT: u8 = 2;
/// Direction bit of an activity without a (known) direction.
const DIR_OTHER: u8 = 4;
pub(super) const DIR_ANY: u8 = DIR_IN | DIR_OUT | DIR_OTHER;

static NULL: Value = Value::Null;

/// A validated model, resolved for fast evaluation. Cheap to evaluate many times; share it (`Arc`).
#[derive(Clone, Debug)]
pub struct CompiledModel {
    pub(super) name: String,
    pub(super) total_cap: i64,
    pub(super) groups: Box<[CGroup]>,
    /// From the highest `min_score` down; the last has `min_score` 0.
    pub(super) tiers: Box<[CTier]>,
    pub(super) resets: Box<[CReset]>,
    pub(super) lookback_days: Option<i64>,
    pub(super) fields: ActivityFields,
}

/// Positions of the activity fields the engine reads.
#[derive(Clone, Copy, Debug)]
pub(super) struct ActivityFields {
    pub occurred_at: usize,
    pub kind: usize,
    pub direction: usize,
    pub outcome: usize,
}

#[derive(Clone, Debug)]
pub(super) struct CGroup {
    pub name: String,
    pub cap: Option<i64>,
    pub floor: Option<i64>,
    pub body: CGroupBody,
}

#[derive(Clone, Debug)]
pub(super) enum CGroupBody {
    Fit(Box<[CFitRule]>),
    Engagement {
        rules: Box<[CEngRule]>,
        /// The longest rule timeframe (`None`: some rule has none), to skip old activities early.
        window_us: Option<i64>,
    },
}

#[derive(Clone, Debug)]
pub(super) struct CFitRule {
    pub name: String,
    pub points: i64,
    pub cond: Compiled,
}

#[derive(Clone, Debug)]
pub(super) struct CEngRule {
    pub name: String,
    pub points: i64,
    /// Bit i: `ACTIVITY_KINDS[i]`; [`KIND_ANY`] for any.
    pub kinds: u16,
    /// [`DIR_IN`], [`DIR_OUT`] or [`DIR_ANY`].
    pub direction: u8,
    /// Empty: any outcome.
    pub outcomes: Box<[String]>,
    /// A further condition on activity fields.
    pub cond: Option<Compiled>,
    /// `u32::MAX` when unlimited.
    pub limit: u32,
    /// 0 when there is no minimum.
    pub min_count: u32,
    /// Only activities at most this old count (microseconds, inclusive).
    pub window_us: Option<i64>,
    pub decay_us: Option<i64>,
}

#[derive(Clone, Debug)]
pub(super) struct CTier {
    pub name: String,
    pub min_score: i64,
    pub temperature: Temperature,
}

#[derive(Clone, Debug)]
pub(super) struct CReset {
    pub name: String,
    pub cond: Compiled,
}

/// An activity as the rules see it.
struct Act<'a> {
    rec: &'a Record,
    /// `occurred_at`, microseconds.
    t: i64,
    /// Age at `as_of`, microseconds (>= 0).
    age: i64,
    kind: u16,
    dir: u8,
    outcome: Option<&'a str>,
}

impl CEngRule {
    #[inline]
    fn accepts(&self, x: &Act<'_>) -> bool {
        self.kinds & x.kind != 0
            && self.direction & x.dir != 0
            && self.window_us.is_none_or(|w| x.age <= w)
            && (self.outcomes.is_empty()
                || x.outcome
                    .is_some_and(|o| self.outcomes.iter().any(|r| r.eq_ignore_ascii_case(o))))
            && self.cond.as_ref().is_none_or(|c| c.matches(x.rec))
    }

    /// Milli-points of one activity of this age: linear decay, truncated toward zero.
    #[inline]
    fn milli(&self, age: i64) -> i64 {
        let full = self.points * 1000;
        match self.decay_us {
            None => full,
            Some(d) if age >= d => 0,
            // i64 unless the product overflows (huge points with decades of decay).
            Some(d) => match full.checked_mul(d - age) {
                Some(p) => p / d,
                None => (full as i128 * (d - age) as i128 / d as i128) as i64,
            },
        }
    }
}

/// Whole points from milli-points, half away from zero.
fn round_milli(m: i64) -> i64 {
    if m >= 0 { (m + 500) / 1000 } else { (m - 500) / 1000 }
}

/// A rule's tally over one scan.
#[derive(Clone, Copy, Default)]
struct Tally {
    /// Matching activities in the rule's timeframe.
    matched: u32,
    /// Of those, the ones that counted (at most `limit`).
    counted: u32,
    milli: i64,
}

/// Where the core reports what it did: nowhere (`score`) or into an explanation (`evaluate`).
trait Explain {
    fn add(&mut self, group: &str, rule: &str, count: u32, points: i64, kind: ContributionKind);
}

impl Explain for () {
    #[inline(always)]
    fn add(&mut self, _: &str, _: &str, _: u32, _: i64, _: ContributionKind) {}
}

impl Explain for Vec<Contribution> {
    fn add(&mut self, group: &str, rule: &str, count: u32, points: i64, kind: ContributionKind) {
        self.push(Contribution {
            group: group.to_owned(),
            rule: rule.to_owned(),
            count,
            points,
            kind,
        });
    }
}

/// Outcome of the core: score, index of the tier, whether a reset matched.
struct Outcome {
    score: i64,
    tier: usize,
    reset: bool,
}

impl CompiledModel {
    /// Scores a lead as of a time, with an explanation whose points add up to the score.
    /// Activities after `as_of`, or without an `occurred_at`, never count; their order does not matter.
    pub fn evaluate(&self, lead: &Record, activities: &[Record], as_of: Timestamp) -> ScoreResult {
        let mut contributions = Vec::new();
        let o = self.run(lead, activities, as_of, &mut contributions);
        let tier = &self.tiers[o.tier];
        ScoreResult {
            score: o.score,
            tier: tier.name.clone(),
            temperature: tier.temperature,
            reset: o.reset,
            contributions,
        }
    }

    /// The score and temperature [`CompiledModel::evaluate`] gives, without the explanation and
    /// without allocating. Fastest when activities come newest first (as stores return them).
    pub fn score(&self, lead: &Record, activities: &[Record], as_of: Timestamp) -> (i64, &'static str) {
        let o = self.run(lead, activities, as_of, &mut ());
        (o.score, self.tiers[o.tier].temperature.key())
    }

    /// The longest engagement timeframe in days: activities older than this never count. `None`:
    /// some engagement rule has no timeframe (neither `within_days` nor `decay_days`).
    pub fn lookback_days(&self) -> Option<i64> {
        self.lookback_days
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn run<E: Explain>(&self, lead: &Record, acts: &[Record], as_of: Timestamp, e: &mut E) -> Outcome {
        let lowest = self.tiers.len() - 1;
        if let Some(r) = self.resets.iter().find(|r| r.cond.matches(lead)) {
            e.add("reset", &r.name, 1, 0, ContributionKind::Reset);
            return Outcome {
                score: 0,
                tier: lowest,
                reset: true,
            };
        }
        let mut total = 0i64;
        for g in self.groups.iter() {
            let mut sum = match &g.body {
                CGroupBody::Fit(rules) => {
                    let mut sum = 0;
                    for r in rules.iter() {
                        if r.cond.matches(lead) {
                            if r.points != 0 {
                                e.add(&g.name, &r.name, 1, r.points, ContributionKind::Rule);
                            }
                            sum += r.points;
                        }
                    }
                    sum
                }
                CGroupBody::Engagement { rules, window_us } => {
                    self.engagement(&g.name, rules, *window_us, acts, as_of, e)
                }
            };
            if let Some(cap) = g.cap
                && sum > cap
            {
                e.add(&g.name, "cap", 0, cap - sum, ContributionKind::Cap);
                sum = cap;
            }
            if let Some(floor) = g.floor
                && sum < floor
            {
                e.add(&g.name, "floor", 0, floor - sum, ContributionKind::Floor);
                sum = floor;
            }
            total += sum;
        }
        if total > self.total_cap {
            e.add("total", "cap", 0, self.total_cap - total, ContributionKind::Cap);
            total = self.total_cap;
        }
        if total < 0 {
            e.add("total", "floor", 0, -total, ContributionKind::Floor);
            total = 0;
        }
        let tier = self.tiers.iter().position(|t| t.min_score <= total).unwrap_or(lowest);
        Outcome {
            score: total,
            tier,
            reset: false,
        }
    }

    /// Reads an activity's scoring fields; `None` when it cannot count (no time, after `as_of`, or
    /// older than `window_us`).
    #[inline]
    fn classify<'a>(&self, a: &'a Record, as_of: Timestamp, window_us: Option<i64>) -> Option<Act<'a>> {
        let field = |i: usize| -> &'a Value {
            if i < 64 && a.hidden & (1 << i) != 0 {
                return &NULL;
            }
            a.values.get(i).unwrap_or(&NULL)
        };
        let Value::Timestamp(t) = field(self.fields.occurred_at) else {
            return None;
        };
        let age = as_of.0.saturating_sub(t.0);
        if age < 0 || window_us.is_some_and(|w| age > w) {
            return None;
        }
        let kind = match field(self.fields.kind) {
            Value::Text(k) => ACTIVITY_KINDS
                .iter()
                .position(|x| x == k)
                .map_or(KIND_OTHER, |i| 1 << i),
            _ => KIND_OTHER,
        };
        let dir = match field(self.fields.direction) {
            Value::Text(d) if d == "inbound" => DIR_IN,
            Value::Text(d) if d == "outbound" => DIR_OUT,
            _ => DIR_OTHER,
        };
        Some(Act {
            rec: a,
            t: t.0,
            age,
            kind,
            dir,
            outcome: field(self.fields.outcome).as_str(),
        })
    }

    /// One scan of the activities for all rules of an engagement group; returns the group's points.
    fn engagement<E: Explain>(
        &self,
        group: &str,
        rules: &[CEngRule],
        window_us: Option<i64>,
        acts: &[Record],
        as_of: Timestamp,
        e: &mut E,
    ) -> i64 {
        let mut tallies = [Tally::default(); MAX_RULES_PER_GROUP];
        let tallies = &mut tallies[..rules.len()];
        // Newest first (ties allowed): the first `limit` matches of a rule are its most recent ones.
        let mut newest_first = true;
        let mut prev = i64::MAX;
        for a in acts {
            let Some(x) = self.classify(a, as_of, window_us) else {
                continue;
            };
            newest_first &= x.t <= prev;
            prev = x.t;
            for (r, c) in rules.iter().zip(tallies.iter_mut()) {
                if r.accepts(&x) {
                    c.matched += 1;
                    if c.counted < r.limit {
                        c.counted += 1;
                        c.milli += r.milli(x.age);
                    }
                }
            }
        }
        let mut sum = 0;
        for (r, c) in rules.iter().zip(tallies.iter()) {
            if c.matched == 0 || c.matched < r.min_count {
                continue;
            }
            // Out of order, with more matches than the limit and points that depend on age, the
            // first `limit` seen are not necessarily the most recent: sum the most recent exactly.
            let milli = if !newest_first && c.matched > r.limit && r.decay_us.is_some() {
                self.most_recent_milli(r, acts, as_of, window_us)
            } else {
                c.milli
            };
            let points = round_milli(milli);
            if points != 0 {
                e.add(group, &r.name, c.counted, points, ContributionKind::Rule);
            }
            sum += points;
        }
        sum
    }

    /// Sum of the milli-points of a rule's `limit` most recent matching activities, for input that is
    /// not newest first, without allocating: one scan per distinct time taken for small limits, else a
    /// binary search for the time of the `limit`-th most recent.
    fn most_recent_milli(&self, r: &CEngRule, acts: &[Record], as_of: Timestamp, window_us: Option<i64>) -> i64 {
        let matching = || {
            acts.iter()
                .filter_map(move |a| self.classify(a, as_of, window_us))
                .filter(|x| r.accepts(x))
        };
        let limit = u64::from(r.limit);
        let worth = |t: i64| r.milli(as_of.0.saturating_sub(t));
        if limit <= 16 {
            // Take the newest remaining time (with its ties) until `limit` are taken.
            let (mut taken, mut milli, mut before) = (0u64, 0i64, i64::MAX);
            while taken < limit {
                let (mut newest, mut ties) = (i64::MIN, 0u64);
                for x in matching().filter(|x| x.t < before) {
                    if ties == 0 || x.t > newest {
                        (newest, ties) = (x.t, 1);
                    } else if x.t == newest {
                        ties += 1;
                    }
                }
                if ties == 0 {
                    break;
                }
                let take = ties.min(limit - taken);
                milli += take as i64 * worth(newest);
                taken += take;
                before = newest;
            }
            return milli;
        }
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for x in matching() {
            lo = lo.min(x.t);
            hi = hi.max(x.t);
        }
        // Invariant: at least `limit` matches at or after `lo`; fewer than `limit` after `hi`.
        while lo < hi {
            let mid = (lo as i128 + (hi as i128 - lo as i128 + 1) / 2) as i64;
            if matching().filter(|x| x.t >= mid).count() as u64 >= limit {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let (mut newer, mut milli) = (0u64, 0i64);
        for x in matching().filter(|x| x.t > lo) {
            newer += 1;
            milli += r.milli(x.age);
        }
        // Activities at the threshold time are worth the same, so which of them count is moot.
        milli + (limit - newer) as i64 * worth(lo)
    }
}
