//! Conversion and revenue by source, by owner or by team: for each group, how many leads, how many
//! are open, won and lost, the value won and the value still open, from one aggregate of leads
//! grouped by the key and status.

use super::percent;
use crate::decimal::Decimal;
use crate::pipeline::{Pipeline, StageKind};
use crate::value::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What leads are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakdownBy {
    /// The lead's `source`.
    Source,
    /// The owner's user id.
    Owner,
    /// The team's id.
    Team,
}

impl BreakdownBy {
    /// The lead field grouped by.
    pub fn field(self) -> &'static str {
        match self {
            BreakdownBy::Source => crate::entity::lead::fields::SOURCE,
            BreakdownBy::Owner => "owner_id",
            BreakdownBy::Team => "team_id",
        }
    }
}

impl std::str::FromStr for BreakdownBy {
    type Err = crate::error::Error;

    /// `source`, `owner` or `team`; anything else is a validation error on `by`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::parse_by(s, &["source", "owner", "team"])
    }
}

/// Leads with one key value (`None`: none) in one stage, and their estimated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStageCell {
    pub key: Option<String>,
    pub stage: Option<String>,
    pub leads: u64,
    pub value: Money,
}

/// One group's conversion and revenue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// The source, the owner's or the team's id; `None` for leads without one.
    pub key: Option<String>,
    pub leads: u64,
    /// In an open stage (or a status that is no stage of the pipeline), won, lost.
    pub open: u64,
    pub won: u64,
    pub lost: u64,
    /// Won out of every lead of the group, in percent.
    pub conversion_percent: Option<Decimal>,
    /// Won out of won and lost, in percent; `None` when none is closed.
    pub win_rate_percent: Option<Decimal>,
    /// The estimated value of the won leads (revenue) and of the open ones.
    pub won_value: Money,
    pub open_value: Money,
}

/// Conversion and revenue per group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub by: BreakdownBy,
    /// Ordered by key (none first).
    pub rows: Vec<BreakdownRow>,
}

/// Folds leads by key and stage into one row per key.
pub fn breakdown(pipeline: &Pipeline, by: BreakdownBy, cells: &[KeyStageCell]) -> Breakdown {
    let mut rows: BTreeMap<Option<String>, BreakdownRow> = BTreeMap::new();
    for c in cells {
        let r = rows.entry(c.key.clone()).or_insert_with(|| BreakdownRow {
            key: c.key.clone(),
            leads: 0,
            open: 0,
            won: 0,
            lost: 0,
            conversion_percent: None,
            win_rate_percent: None,
            won_value: Money(0),
            open_value: Money(0),
        });
        r.leads += c.leads;
        match c.stage.as_deref().and_then(|s| pipeline.stage(s)).map(|s| s.kind) {
            Some(StageKind::Won) => {
                r.won += c.leads;
                r.won_value.0 += c.value.0;
            }
            Some(StageKind::Lost) => r.lost += c.leads,
            _ => {
                r.open += c.leads;
                r.open_value.0 += c.value.0;
            }
        }
    }
    let rows = rows
        .into_values()
        .map(|mut r| {
            r.conversion_percent = percent(r.won, r.leads);
            r.win_rate_percent = percent(r.won, r.won + r.lost);
            r
        })
        .collect();
    Breakdown { by, rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::default_pipeline;

    fn c(key: Option<&str>, stage: &str, leads: u64, value: i64) -> KeyStageCell {
        KeyStageCell {
            key: key.map(str::to_owned),
            stage: Some(stage.into()),
            leads,
            value: Money(value),
        }
    }

    #[test]
    fn groups_count_open_won_and_lost_and_their_values() {
        let cells = [
            c(Some("referral"), "won", 3, 9_000),
            c(Some("referral"), "lost", 1, 500),
            c(Some("referral"), "qualified", 4, 2_000),
            c(Some("website"), "new", 2, 0),
            c(None, "lost", 2, 0),
            c(Some("website"), "elsewhere", 1, 100),
        ];
        let b = breakdown(&default_pipeline(), BreakdownBy::Source, &cells);
        let rows: Vec<_> = b
            .rows
            .iter()
            .map(|r| {
                (
                    r.key.as_deref(),
                    r.leads,
                    r.open,
                    r.won,
                    r.lost,
                    r.won_value.0,
                    r.open_value.0,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (None, 2, 0, 0, 2, 0, 0),
                (Some("referral"), 8, 4, 3, 1, 9_000, 2_000),
                (Some("website"), 3, 3, 0, 0, 0, 100),
            ]
        );
        assert_eq!(b.rows[1].conversion_percent, Some(Decimal::new(375, 1)));
        assert_eq!(b.rows[1].win_rate_percent, Some(Decimal::from(75)));
        assert_eq!(
            (b.rows[0].win_rate_percent, b.rows[2].win_rate_percent),
            (Some(Decimal::ZERO), None)
        );
        assert_eq!(
            "team".parse::<BreakdownBy>().map(BreakdownBy::field).ok(),
            Some("team_id")
        );
        assert!("stage".parse::<BreakdownBy>().is_err());
    }
}
