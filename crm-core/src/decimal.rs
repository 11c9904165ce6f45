//! Exact quantities and rates, and the money arithmetic over them. Money is integer minor units
//! ([`Money`]); quantities (2.5 hours, 1.75 m³), rates and percentages (8.875 % tax, 12.5 % discount)
//! are [`Decimal`]s, never floats. Every conversion back to money rounds once, by an explicit
//! [`Rounding`] the caller chooses from the tenant's policy, so every face gets the same cents.

use crate::value::Money;
pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

/// Most fractional digits a quantity or rate may carry (more is refused, not rounded).
pub const MAX_SCALE: u32 = 6;

/// How a value between two minor units becomes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Ties go to the even neighbour (banker's rounding): unbiased over many lines.
    #[default]
    HalfEven,
    /// Ties go away from zero (what most invoices and tax authorities print).
    HalfUp,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// Parses a quantity or rate from text (`"2.5"`, `"-0.125"`): plain decimal notation only, at most
/// [`MAX_SCALE`] fractional digits; no exponent, no thousands separators, no surrounding spaces.
pub fn parse(s: &str) -> Option<Decimal> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (frac.len() as u32) <= MAX_SCALE
        && !(digits.contains('.') && frac.is_empty());
    if !plain {
        return None;
    }
    s.parse::<Decimal>()
        .ok()
        .map(|d| d.normalize())
        .filter(|d| to_micros(*d).is_some())
}

/// Millionths per unit: how stores keep a decimal (an integer column sorts and compares exactly).
const MICROS: i64 = 1_000_000;

/// The decimal as an integer of millionths (its stored form); `None` when it has more than
/// [`MAX_SCALE`] fractional digits or does not fit.
pub fn to_micros(d: Decimal) -> Option<i64> {
    let m = d.checked_mul(Decimal::from(MICROS))?;
    if !m.fract().is_zero() {
        return None;
    }
    i64::try_from(m).ok()
}

/// The decimal of a stored integer of millionths.
pub fn from_micros(m: i64) -> Decimal {
    Decimal::new(m, MAX_SCALE).normalize()
}

/// Rounds an amount in minor units to a whole number of them; `None` when it does not fit.
pub fn round_minor(amount: Decimal, mode: Rounding) -> Option<i64> {
    let r = amount.round_dp_with_strategy(0, mode.strategy());
    i64::try_from(r).ok()
}

impl Money {
    /// This unit price times a quantity, rounded once (`None` on overflow).
    pub fn times(self, qty: Decimal, mode: Rounding) -> Option<Money> {
        let exact = Decimal::from(self.0).checked_mul(qty)?;
        round_minor(exact, mode).map(Money)
    }

    /// `pct` percent of this amount (`12.5` for 12.5 %), rounded once (`None` on overflow).
    pub fn percent(self, pct: Decimal, mode: Rounding) -> Option<Money> {
        let exact = Decimal::from(self.0)
            .checked_mul(pct)?
            .checked_div(Decimal::ONE_HUNDRED)?;
        round_minor(exact, mode).map(Money)
    }
}

/// Splits `total` minor units across parts in proportion to `weights` (a document discount over its
/// lines, tax over rates) so that the parts add up to `total` exactly: each part is rounded down, and
/// the remaining units go to the largest remainders (ties to the earlier part). All-zero weights give
/// everything to the first part. `None` on overflow or a negative weight.
pub fn allocate(total: i64, weights: &[i64]) -> Option<Vec<i64>> {
    if weights.is_empty() {
        return Some(Vec::new());
    }
    if weights.iter().any(|w| *w < 0) {
        return None;
    }
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 {
        let mut out = vec![0; weights.len()];
        out[0] = total;
        return Some(out);
    }
    let t = i128::from(total);
    let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let p = t * i128::from(*w);
        parts.push(p.div_euclid(sum));
        rems.push((p.rem_euclid(sum), i));
    }
    let mut left = t - parts.iter().sum::<i128>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts.into_iter().map(|p| i64::try_from(p).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        parse(s).unwrap()
    }

    #[test]
    fn parse_is_strict() {
        assert_eq!(parse("2.5"), Some(Decimal::new(25, 1)));
        assert_eq!(parse("-0.125"), Some(Decimal::new(-125, 3)));
        assert_eq!(parse("10"), Some(Decimal::from(10)));
        for bad in [
            "",
            "1e3",
            "1,5",
            " 1",
            "1.",
            ".5",
            "1.1234567",
            "+1",
            "NaN",
            "--1",
            "1.2.3",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rounding_is_explicit_at_the_midpoint() {
        // 3 × $0.125 = 37.5 cents.
        let price = Money(125);
        let q = d("0.3");
        assert_eq!(price.times(q, Rounding::HalfEven), Some(Money(38)));
        assert_eq!(Money(5).times(d("0.5"), Rounding::HalfEven), Some(Money(2)));
        assert_eq!(Money(5).times(d("0.5"), Rounding::HalfUp), Some(Money(3)));
        assert_eq!(Money(-5).times(d("0.5"), Rounding::HalfUp), Some(Money(-3)));
        assert_eq!(Money(-5).times(d("0.5"), Rounding::HalfEven), Some(Money(-2)));
        // 8.875 % of $19.99 = 177.41125 cents.
        assert_eq!(Money(1999).percent(d("8.875"), Rounding::HalfUp), Some(Money(177)));
        assert_eq!(Money(i64::MAX).times(d("2"), Rounding::HalfUp), None);
    }

    #[test]
    fn allocation_adds_up() {
        assert_eq!(allocate(100, &[1, 1, 1]), Some(vec![34, 33, 33]));
        assert_eq!(allocate(-100, &[1, 1, 1]), Some(vec![-33, -33, -34]));
        assert_eq!(allocate(7, &[0, 0]), Some(vec![7, 0]));
        assert_eq!(allocate(7, &[]), Some(vec![]));
        assert_eq!(allocate(7, &[1, -1]), None);
    }

    proptest! {
        #[test]
        fn allocated_parts_sum_to_the_total(total in -1_000_000_000i64..1_000_000_000, weights in prop::collection::vec(0i64..1_000_000, 1..20)) {
            let parts = allocate(total, &weights).unwrap();
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let sum: i64 = weights.iter().sum();
            if sum > 0 {
                for (p, w) in parts.iter().zip(&weights) {
                    // Each part is within one unit of its exact share.
                    let exact = total as f64 * *w as f64 / sum as f64;
                    prop_assert!((*p as f64 - exact).abs() <= 1.0 + 1e-6);
                }
            }
        }

        #[test]
        fn times_is_exact_before_one_rounding(price in -10_000_000i64..10_000_000, units in -100_000i64..100_000, scale in 0u32..=MAX_SCALE) {
            let qty = Decimal::new(units, scale);
            let exact = i128::from(price) * i128::from(units);
            let div = 10i128.pow(scale);
            for mode in [Rounding::HalfEven, Rounding::HalfUp] {
                let got = i128::from(Money(price).times(qty, mode).unwrap().0);
                // Within half a unit of the exact product.
                prop_assert!((got * div - exact).abs() * 2 <= div, "{price} x {qty} = {got}");
            }
        }

        #[test]
        fn micros_round_trip(units in -1_000_000_000i64..1_000_000_000, scale in 0u32..=MAX_SCALE) {
            let v = Decimal::new(units, scale).normalize();
            prop_assert_eq!(from_micros(to_micros(v).unwrap()), v);
        }

        #[test]
        fn parse_round_trips(units in -1_000_000_000i64..1_000_000_000, scale in 0u32..=MAX_SCALE) {
            let v = Decimal::new(units, scale).normalize();
            prop_assert_eq!(parse(&v.to_string()), Some(v));
        }
    }
}
