//! The weighted forecast: the estimated value of open leads times the probability of their stage,
//! by the month they are expected to close, beside what was actually won in each month.
//!
//! A stage's probability is the tenant's override (the organization's `stage_probabilities`), else
//! the default declared in the lead module ([`crate::entity::lead::DEFAULT_STAGE_PROBABILITIES`]),
//! else 100 for a won stage and 0 for any other (see [`crate::entity::lead::stage_probability`]).
//! Leads without an expected close date, or without a value, are counted in a month of their own
//! (`month: None`) and add nothing to a sum.

use super::month_key;
use crate::decimal::{self, Rounding};
use crate::entity::lead::stage_probability;
use crate::pipeline::Pipeline;
use crate::value::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Leads of one stage expected to close in one month (the first day of it; `None`: no date), and
/// their estimated value: one group of an aggregate of open leads by status and month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCell {
    pub stage: Option<String>,
    pub month: Option<time::Date>,
    pub leads: u64,
    pub value: Money,
}

/// Leads won in one month (`None`: when is not known) and their value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WonCell {
    pub month: Option<time::Date>,
    pub leads: u64,
    pub value: Money,
}

/// A stage and the probability the forecast gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageProbability {
    pub stage: String,
    /// 0 to 100.
    pub percent: u8,
}

/// One month of the forecast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastMonth {
    /// `YYYY-MM`; `None` for leads without an expected close date (or wins of unknown date).
    pub month: Option<String>,
    /// Open leads expected to close in the month, and their estimated value.
    pub open_leads: u64,
    pub pipeline_value: Money,
    /// Their value weighted by their stage's probability (rounded half-even to the cent).
    pub weighted_value: Money,
    /// Leads won in the month, and their value (the actual to hold the forecast against).
    pub won_leads: u64,
    pub won_value: Money,
}

/// The forecast of a set of leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// The probability of each stage of the pipeline, in pipeline order.
    pub probabilities: Vec<StageProbability>,
    /// Months in order (the month without a date first).
    pub months: Vec<ForecastMonth>,
    pub pipeline_value: Money,
    pub weighted_value: Money,
    pub won_value: Money,
}

/// Folds open leads by stage and month, and won leads by month, into the forecast; `overrides` are
/// the tenant's probabilities by stage key.
pub fn forecast(pipeline: &Pipeline, overrides: &BTreeMap<String, u8>, open: &[OpenCell], won: &[WonCell]) -> Forecast {
    #[derive(Default)]
    struct Acc {
        open: u64,
        value: i64,
        // Value times percent: exact until the division by 100.
        weighted: i128,
        won: u64,
        won_value: i64,
    }
    let mut months: BTreeMap<Option<time::Date>, Acc> = BTreeMap::new();
    for c in open {
        let p = c
            .stage
            .as_deref()
            .map_or(0, |s| stage_probability(pipeline, overrides, s));
        let m = months.entry(c.month.map(first_of_month)).or_default();
        m.open += c.leads;
        m.value += c.value.0;
        m.weighted += i128::from(c.value.0) * i128::from(p);
    }
    for c in won {
        let m = months.entry(c.month.map(first_of_month)).or_default();
        m.won += c.leads;
        m.won_value += c.value.0;
    }
    let weighted = |x: i128| {
        decimal::round_minor(decimal::Decimal::from_i128_with_scale(x, 2), Rounding::HalfEven).map_or(Money(0), Money)
    };
    let months: Vec<ForecastMonth> = months
        .into_iter()
        .map(|(month, a)| ForecastMonth {
            month: month.map(month_key),
            open_leads: a.open,
            pipeline_value: Money(a.value),
            weighted_value: weighted(a.weighted),
            won_leads: a.won,
            won_value: Money(a.won_value),
        })
        .collect();
    Forecast {
        probabilities: pipeline
            .stages
            .iter()
            .map(|s| StageProbability {
                stage: s.key.clone(),
                percent: stage_probability(pipeline, overrides, &s.key),
            })
            .collect(),
        pipeline_value: Money(months.iter().map(|m| m.pipeline_value.0).sum()),
        weighted_value: Money(months.iter().map(|m| m.weighted_value.0).sum()),
        won_value: Money(months.iter().map(|m| m.won_value.0).sum()),
        months,
    }
}

fn first_of_month(d: time::Date) -> time::Date {
    d.replace_day(1).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::default_pipeline;
    use time::macros::date;

    fn open(stage: &str, month: Option<time::Date>, leads: u64, value: i64) -> OpenCell {
        OpenCell {
            stage: Some(stage.into()),
            month,
            leads,
            value: Money(value),
        }
    }

    #[test]
    fn weights_by_stage_probability_with_tenant_overrides() {
        let cells = [
            // new: 10 % by default; negotiation: 80 %; proposal_sent overridden to 55 %.
            open("new", Some(date!(2025 - 03 - 01)), 2, 10_000),
            open("negotiation", Some(date!(2025 - 03 - 15)), 1, 5_005),
            open("proposal_sent", Some(date!(2025 - 04 - 01)), 1, 2_000),
            open("new", None, 3, 0),
        ];
        let won = [
            WonCell {
                month: Some(date!(2025 - 03 - 01)),
                leads: 2,
                value: Money(7_000),
            },
            WonCell {
                month: Some(date!(2025 - 02 - 01)),
                leads: 1,
                value: Money(1_000),
            },
        ];
        let overrides = BTreeMap::from([("proposal_sent".to_owned(), 55u8)]);
        let f = forecast(&default_pipeline(), &overrides, &cells, &won);
        let rows: Vec<_> = f
            .months
            .iter()
            .map(|m| {
                (
                    m.month.as_deref(),
                    m.open_leads,
                    m.pipeline_value.0,
                    m.weighted_value.0,
                    m.won_leads,
                    m.won_value.0,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (None, 3, 0, 0, 0, 0),
                (Some("2025-02"), 0, 0, 0, 1, 1_000),
                // 10_000 * 10 % + 5_005 * 80 % = 1_000 + 4_004.
                (Some("2025-03"), 3, 15_005, 5_004, 2, 7_000),
                (Some("2025-04"), 1, 2_000, 1_100, 0, 0),
            ]
        );
        assert_eq!(
            (f.pipeline_value, f.weighted_value, f.won_value),
            (Money(17_005), Money(6_104), Money(8_000))
        );
        let p: Vec<_> = f.probabilities.iter().map(|p| (p.stage.as_str(), p.percent)).collect();
        assert_eq!(p[4], ("proposal_sent", 55));
        assert_eq!(p[6..], [("won", 100), ("lost", 0)]);
    }

    #[test]
    fn weighted_cents_round_half_even_per_month() {
        // 5 cents at 10 % is half a cent: rounds to 0; 15 cents at 10 % rounds to 2.
        let a = forecast(
            &default_pipeline(),
            &BTreeMap::new(),
            &[open("new", Some(date!(2025 - 01 - 01)), 1, 5)],
            &[],
        );
        assert_eq!(a.weighted_value, Money(0));
        let b = forecast(
            &default_pipeline(),
            &BTreeMap::new(),
            &[open("new", Some(date!(2025 - 01 - 01)), 1, 15)],
            &[],
        );
        assert_eq!(b.weighted_value, Money(2));
    }
}
