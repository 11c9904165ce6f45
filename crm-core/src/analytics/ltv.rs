//! Lifetime value distribution: what each contact (or company) has brought in, the estimated value
//! of its won leads plus the totals of its accepted quotes, as a histogram with percentiles, from
//! store aggregates of leads and quotes by customer (see `Service::lifetime_value`).
//!
//! Every customer counted is in the distribution, those that brought in nothing too (at 0). A won
//! lead and an accepted quote made for it both count: the engine cannot tell one sale recorded
//! twice from two sales, so [`LifetimeValue::from_leads`] and [`LifetimeValue::from_quotes`] give the
//! two parts apart. Percentiles are by nearest rank (the smallest value with at least p % of the
//! customers at or below it), so each is a value some customer has.

use crate::value::Money;
use serde::{Deserialize, Serialize};

/// Histogram bins when none are asked for.
pub const DEFAULT_BINS: u32 = 10;
/// Most bins.
pub const MAX_BINS: u32 = 100;
/// The percentiles reported.
pub const PERCENTILES: [u8; 6] = [25, 50, 75, 90, 95, 99];

/// One customer's value, in its two parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerValue {
    pub from_leads: Money,
    pub from_quotes: Money,
}

/// One percentile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentile {
    pub percentile: u8,
    pub value: Money,
}

/// One histogram bin: customers whose value is at least `from` and below `to` (the last bin
/// includes `to`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bin {
    pub from: Money,
    pub to: Money,
    pub customers: u64,
    /// Their summed value.
    pub value: Money,
}

/// The distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifetimeValue {
    /// `contact` or `company`.
    pub entity: String,
    pub customers: u64,
    pub total: Money,
    /// The parts of the total from won leads and from accepted quotes.
    pub from_leads: Money,
    pub from_quotes: Money,
    /// `None` without customers.
    pub average: Option<Money>,
    pub minimum: Option<Money>,
    pub maximum: Option<Money>,
    /// [`PERCENTILES`], in order; empty without customers.
    pub percentiles: Vec<Percentile>,
    /// Equal-width bins from the minimum to the maximum (one bin when they are equal, none without
    /// customers).
    pub histogram: Vec<Bin>,
}

/// The distribution of `values` in `bins` bins (1 to [`MAX_BINS`]; clamped).
pub fn distribution(entity: &str, values: &[CustomerValue], bins: u32) -> LifetimeValue {
    let mut v: Vec<i64> = values.iter().map(|c| c.from_leads.0 + c.from_quotes.0).collect();
    v.sort_unstable();
    let n = v.len();
    let total: i64 = v.iter().sum();
    let sum = |f: fn(&CustomerValue) -> Money| Money(values.iter().map(|c| f(c).0).sum());
    let percentiles = if n == 0 {
        Vec::new()
    } else {
        PERCENTILES
            .iter()
            .map(|&p| {
                // Nearest rank: ceil(p / 100 * n), 1-based.
                let rank = (usize::from(p) * n).div_ceil(100).max(1);
                Percentile {
                    percentile: p,
                    value: Money(v[rank - 1]),
                }
            })
            .collect()
    };
    let histogram = match (v.first(), v.last()) {
        (Some(&lo), Some(&hi)) => {
            let bins = i64::from(bins.clamp(1, MAX_BINS));
            let bins = if lo == hi { 1 } else { bins };
            // Whole cents, wide enough that `bins` bins cover [lo, hi].
            let width = ((hi - lo) / bins + i64::from((hi - lo) % bins != 0)).max(1);
            let mut out: Vec<Bin> = (0..bins)
                .map(|i| Bin {
                    from: Money(lo + i * width),
                    to: Money(if i == bins - 1 { hi } else { lo + (i + 1) * width }),
                    customers: 0,
                    value: Money(0),
                })
                .collect();
            for x in &v {
                let i = usize::try_from(((x - lo) / width).min(bins - 1)).unwrap_or(0);
                out[i].customers += 1;
                out[i].value.0 += x;
            }
            out
        }
        _ => Vec::new(),
    };
    LifetimeValue {
        entity: entity.to_owned(),
        customers: n as u64,
        total: Money(total),
        from_leads: sum(|c| c.from_leads),
        from_quotes: sum(|c| c.from_quotes),
        average: (n > 0).then(|| Money(average(total, n))),
        minimum: v.first().copied().map(Money),
        maximum: v.last().copied().map(Money),
        percentiles,
        histogram,
    }
}

/// `total / n` rounded half away from zero to whole cents.
fn average(total: i64, n: usize) -> i64 {
    let n = n as i64;
    let (q, r) = (total / n, total % n);
    if 2 * r.abs() >= n { q + total.signum() } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cv(leads: i64, quotes: i64) -> CustomerValue {
        CustomerValue {
            from_leads: Money(leads),
            from_quotes: Money(quotes),
        }
    }

    #[test]
    fn histogram_percentiles_and_parts() {
        // Values 0, 100, 250, 1000 (cents).
        let values = [cv(0, 0), cv(100, 0), cv(200, 50), cv(0, 1000)];
        let d = distribution("contact", &values, 3);
        assert_eq!(
            (d.customers, d.total, d.from_leads, d.from_quotes),
            (4, Money(1350), Money(300), Money(1050))
        );
        assert_eq!(
            (d.minimum, d.maximum, d.average),
            (Some(Money(0)), Some(Money(1000)), Some(Money(338)))
        );
        let p: Vec<_> = d.percentiles.iter().map(|p| (p.percentile, p.value.0)).collect();
        assert_eq!(p, [(25, 0), (50, 100), (75, 250), (90, 1000), (95, 1000), (99, 1000)]);
        let bins: Vec<_> = d
            .histogram
            .iter()
            .map(|b| (b.from.0, b.to.0, b.customers, b.value.0))
            .collect();
        assert_eq!(bins, [(0, 334, 3, 350), (334, 668, 0, 0), (668, 1000, 1, 1000)]);
        let one = distribution("company", &[cv(500, 0), cv(0, 500)], 10);
        assert_eq!(one.histogram.len(), 1);
        assert_eq!((one.histogram[0].customers, one.percentiles[0].value), (2, Money(500)));
        let none = distribution("contact", &[], 10);
        assert!(none.histogram.is_empty() && none.percentiles.is_empty() && none.average.is_none());
    }
}
