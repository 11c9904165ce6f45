//! Back-testing a scoring model against history: how well would it have separated the leads that
//! were won from those that were lost?

use super::Service;
use crate::access::{Action, Actor};
use crate::entity::{ACTIVITY, LEAD};
use crate::error::{Error, Result};
use crate::pipeline::StageKind;
use crate::query::{Filter, Op, SortKey, StoreQuery};
use crate::record::Record;
use crate::scoring::ScoringModel;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Outcomes of the closed leads that fell in one tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierStats {
    pub tier: String,
    pub temperature: String,
    pub leads: u64,
    pub won: u64,
    pub lost: u64,
    /// `won / leads`.
    pub win_rate: Option<f64>,
    /// The tier's win rate over the overall win rate (above 1: the tier concentrates wins).
    pub lift: Option<f64>,
}

/// The result of a back-test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub model: String,
    /// Closed (won or lost) leads scored.
    pub evaluated: u64,
    pub won: u64,
    pub lost: u64,
    /// Area under the ROC curve: the chance that a random won lead outscores a random lost one
    /// (0.5 is no better than chance). `None` without both outcomes.
    pub auc: Option<f64>,
    pub tiers: Vec<TierStats>,
}

const BATCH: u32 = 1000;

impl<S: Store> Service<S> {
    /// Scores every closed lead the actor may read (created since `since`) with `model` as of its
    /// last change (when it closed), ignoring the model's reset rules (they would trivially mark the
    /// lost ones), and reports AUC and win rate and lift per tier. Without a model: the one that
    /// scores the tenant's leads ([`Service::published_model`], which needs read access to scoring
    /// models).
    pub async fn backtest(
        &self,
        actor: &Actor,
        model: Option<&ScoringModel>,
        since: Option<Timestamp>,
    ) -> Result<BacktestReport> {
        let scope = actor.authorize(&LEAD, Action::Read)?;
        for f in ["status", "score"] {
            if !actor.role.can_read_field(&LEAD, f) {
                return Err(Error::forbidden(Action::Read, "lead", vec![f.into()]));
            }
        }
        let mut m = match model {
            Some(m) => m.clone(),
            None => self.published_model(actor).await?,
        };
        m.reset_when.clear();
        let custom = self.custom_specs(actor.tenant, &LEAD).await?;
        let compiled = m.compile(&custom).map_err(Error::Validation)?;
        let pipeline = self.pipeline(actor.tenant, None).await?;
        let keys = |kind| pipeline.stage_keys(kind).map(Value::from).collect::<Vec<_>>();
        let won_keys = keys(StageKind::Won);
        let closed: Vec<Value> = won_keys.iter().cloned().chain(keys(StageKind::Lost)).collect();

        let mut scored: Vec<(i64, bool, String)> = Vec::new();
        let mut after: Option<Id> = None;
        loop {
            let mut parts = vec![
                Filter::In {
                    field: "status".into(),
                    values: closed.clone(),
                },
                actor.scope_filter(&LEAD, scope),
            ];
            if let Some(t) = since {
                parts.push(Filter::cmp("created_at", Op::Ge, t));
            }
            if let Some(id) = after {
                parts.push(Filter::cmp("id", Op::Gt, id));
            }
            let leads = self
                .store
                .query(actor.tenant, &LEAD, &StoreQuery::by_id(Filter::and(parts), BATCH))
                .await?;
            let Some(last) = leads.last() else { break };
            after = Some(last.id);
            let q = StoreQuery {
                filter: Filter::In {
                    field: "lead_id".into(),
                    values: leads.iter().map(|l| Value::Id(l.id)).collect(),
                },
                sort: vec![SortKey::desc("occurred_at"), SortKey::desc("id")],
                limit: u32::MAX,
            };
            let mut by_lead: HashMap<Id, Vec<Record>> = HashMap::new();
            for a in self.store.query(actor.tenant, &ACTIVITY, &q).await? {
                if let Some(l) = a.id_of("lead_id") {
                    by_lead.entry(l).or_default().push(a);
                }
            }
            for lead in &leads {
                let acts = by_lead.get(&lead.id).map_or(&[][..], Vec::as_slice);
                let r = compiled.evaluate(lead, acts, lead.updated_at);
                let won = lead.get("status").is_some_and(|s| won_keys.contains(s));
                scored.push((r.score, won, r.tier));
            }
        }
        let won = scored.iter().filter(|s| s.1).count() as u64;
        let lost = scored.len() as u64 - won;
        let overall = (!scored.is_empty()).then(|| won as f64 / scored.len() as f64);
        let tiers = m
            .tiers
            .iter()
            .map(|t| {
                let in_tier: Vec<_> = scored.iter().filter(|s| s.2 == t.name).collect();
                let w = in_tier.iter().filter(|s| s.1).count() as u64;
                let n = in_tier.len() as u64;
                let rate = (n > 0).then(|| w as f64 / n as f64);
                TierStats {
                    tier: t.name.clone(),
                    temperature: t.temperature.clone(),
                    leads: n,
                    won: w,
                    lost: n - w,
                    win_rate: rate,
                    lift: rate.zip(overall).filter(|(_, o)| *o > 0.0).map(|(r, o)| r / o),
                }
            })
            .collect();
        Ok(BacktestReport {
            model: m.name.clone(),
            evaluated: scored.len() as u64,
            won,
            lost,
            auc: auc(&scored),
            tiers,
        })
    }
}

/// Mann-Whitney AUC with ties counted half.
fn auc(scored: &[(i64, bool, String)]) -> Option<f64> {
    let won = scored.iter().filter(|s| s.1).count() as f64;
    let lost = scored.len() as f64 - won;
    if won == 0.0 || lost == 0.0 {
        return None;
    }
    let mut sorted: Vec<(i64, bool)> = scored.iter().map(|s| (s.0, s.1)).collect();
    sorted.sort_by_key(|s| s.0);
    let mut rank_sum_won = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..]
            .iter()
            .position(|s| s.0 != sorted[i].0)
            .map_or(sorted.len(), |k| i + k);
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_won += avg_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    Some((rank_sum_won - won * (won + 1.0) / 2.0) / (won * lost))
}

#[cfg(test)]
mod tests {
    use super::auc;

    #[test]
    fn auc_counts_pairs_and_ties() {
        let s = |v: &[(i64, bool)]| v.iter().map(|(a, b)| (*a, *b, String::new())).collect::<Vec<_>>();
        assert_eq!(auc(&s(&[(90, true), (10, false)])), Some(1.0));
        assert_eq!(auc(&s(&[(10, true), (90, false)])), Some(0.0));
        assert_eq!(auc(&s(&[(50, true), (50, false)])), Some(0.5));
        assert_eq!(
            auc(&s(&[(90, true), (50, true), (50, false), (10, false)])),
            Some(0.875)
        );
        assert_eq!(auc(&s(&[(1, true)])), None);
    }
}
