//! Quote conversion: of the quotes that reached a customer (sent), how many were accepted, declined
//! or are still open, grouped by owner, by the source of the lead they came from, or by month.
//!
//! A quote counts once per number, whatever its revisions: it was sent if any revision was, it was
//! accepted if any revision was, declined if its latest revision was; otherwise it is open. Its group
//! is taken from its latest revision (owner, lead) and its first sending (month, UTC).

use crate::decimal::Decimal;
use crate::entity::quote::fields::{LEAD_ID, NUMBER, REVISION, SENT_AT, STATUS, TOTAL};
use crate::record::Record;
use crate::value::{Id, Money, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What quotes are grouped by (by month unless asked otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConversionBy {
    /// The owner's user id.
    Owner,
    /// The originating lead's `source` (none: quotes without a lead, or whose lead the reader may not see).
    Source,
    /// The month of the first sending, `YYYY-MM` (UTC).
    #[default]
    Month,
}

impl std::str::FromStr for ConversionBy {
    type Err = crate::error::Error;

    /// `owner`, `source` or `month`; anything else is a validation error on `by`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::parse_by(s, &["owner", "source", "month"])
    }
}

/// One group's conversion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionRow {
    /// The group's key; `None` when the quotes have none (no owner, no lead).
    pub key: Option<String>,
    pub sent: u64,
    pub accepted: u64,
    pub declined: u64,
    /// Sent, neither accepted nor declined yet (or expired unanswered).
    pub open: u64,
    /// Accepted over sent, in percent with one decimal.
    pub rate_percent: Decimal,
    /// The total of the accepted quotes.
    pub accepted_value: Money,
}

/// Folds quotes (any revisions, in any order) into conversion rows, ordered by key; `source_of`
/// gives a lead's source when the reader may see the lead.
pub fn fold(quotes: &[Record], by: ConversionBy, source_of: &dyn Fn(Id) -> Option<String>) -> Vec<ConversionRow> {
    struct Doc<'a> {
        latest: &'a Record,
        first_sent: Option<i64>,
        accepted: Option<&'a Record>,
    }
    let mut docs: BTreeMap<i64, Doc<'_>> = BTreeMap::new();
    let int = |r: &Record, f: &str| r.get(f).and_then(Value::as_i64);
    for q in quotes {
        let Some(number) = int(q, NUMBER) else { continue };
        let sent = q.get(SENT_AT).and_then(Value::as_timestamp).map(|t| t.0);
        let d = docs.entry(number).or_insert(Doc {
            latest: q,
            first_sent: None,
            accepted: None,
        });
        if int(q, REVISION) > int(d.latest, REVISION) {
            d.latest = q;
        }
        d.first_sent = match (d.first_sent, sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if q.str(STATUS) == Some("accepted") {
            d.accepted = Some(q);
        }
    }
    let mut rows: BTreeMap<Option<String>, ConversionRow> = BTreeMap::new();
    for d in docs.values() {
        let Some(first_sent) = d.first_sent else { continue };
        let key = match by {
            ConversionBy::Owner => d.latest.id_of("owner_id").map(|u| u.to_string()),
            ConversionBy::Source => d.latest.id_of(LEAD_ID).and_then(source_of),
            ConversionBy::Month => {
                let date = crate::value::Timestamp(first_sent).date();
                Some(format!("{:04}-{:02}", date.year(), u8::from(date.month())))
            }
        };
        let row = rows.entry(key.clone()).or_insert(ConversionRow {
            key,
            sent: 0,
            accepted: 0,
            declined: 0,
            open: 0,
            rate_percent: Decimal::ZERO,
            accepted_value: Money(0),
        });
        row.sent += 1;
        if let Some(a) = d.accepted {
            row.accepted += 1;
            row.accepted_value.0 += a.get(TOTAL).and_then(Value::as_i64).unwrap_or(0);
        } else if d.latest.str(STATUS) == Some("declined") {
            row.declined += 1;
        } else {
            row.open += 1;
        }
    }
    rows.into_values()
        .map(|mut r| {
            r.rate_percent = (Decimal::from(r.accepted) * Decimal::ONE_HUNDRED / Decimal::from(r.sent))
                .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .normalize();
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::QUOTE;
    use crate::value::Timestamp;

    fn quote(number: i64, revision: i64, status: &str, sent_day: Option<i64>, total: i64, lead: Option<Id>) -> Record {
        let mut r = Record::empty(
            &QUOTE,
            Id::nil(),
            Id::from_u128(((number as u128) << 8) + revision as u128),
            Timestamp(0),
        );
        r.set(NUMBER, number);
        r.set(REVISION, revision);
        r.set(STATUS, status);
        r.set(TOTAL, Money(total));
        if let Some(d) = sent_day {
            // 2025-01-01 plus `d` days.
            r.set(SENT_AT, Timestamp(1_735_689_600_000_000).plus_days(d));
        }
        if let Some(l) = lead {
            r.set(LEAD_ID, l);
        }
        r
    }

    #[test]
    fn each_quote_counts_once_whatever_its_revisions() {
        let lead = Id::from_u128(42);
        let quotes = [
            quote(1, 1, "superseded", Some(0), 1000, Some(lead)),
            quote(1, 2, "accepted", Some(40), 1200, Some(lead)),
            quote(2, 1, "declined", Some(3), 500, None),
            quote(3, 1, "sent", Some(35), 700, None),
            quote(4, 1, "draft", None, 900, None),
        ];
        let by_month = fold(&quotes, ConversionBy::Month, &|_| None);
        let summary: Vec<_> = by_month
            .iter()
            .map(|r| {
                (
                    r.key.as_deref(),
                    r.sent,
                    r.accepted,
                    r.declined,
                    r.open,
                    r.accepted_value,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("2025-01"), 2, 1, 1, 0, Money(1200)),
                (Some("2025-02"), 1, 0, 0, 1, Money(0))
            ]
        );
        assert_eq!(by_month[0].rate_percent, Decimal::from(50));
        let by_source = fold(&quotes, ConversionBy::Source, &|l| {
            (l == lead).then(|| "referral".to_owned())
        });
        let keys: Vec<_> = by_source.iter().map(|r| (r.key.as_deref(), r.sent)).collect();
        assert_eq!(keys, [(None, 2), (Some("referral"), 1)]);
        assert_eq!(by_source[0].rate_percent, Decimal::ZERO);
    }
}
