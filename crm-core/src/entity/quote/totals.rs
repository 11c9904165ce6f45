//! A quote's totals, exact: every amount in integer minor units, quantities and rates as decimals,
//! rounded by the tenant's [`Policy`] at defined points only, and allocated so that the lines shown
//! always add up to the totals shown (`Σ amount = subtotal`, `Σ discount_share = discount_total`,
//! `Σ tax = tax_total`, `Σ total = total`), under every policy. No floating point on the way.
//!
//! For each counted (non-optional) line: `gross = unit_price × quantity`, less its own discount (a
//! percent of gross, or an amount) gives its exact amount.
//! - **Per line**: each line's amount is rounded; the subtotal is their sum.
//! - **Per document**: the subtotal is the rounded sum of the exact amounts, and the lines' shown
//!   amounts are that subtotal allocated in proportion to their exact amounts.
//!
//! The document discount (a percent of the subtotal, rounded once, or an amount) is allocated over the
//! lines in proportion to their amounts. Tax is `base × rate / 100` on net prices, and the part
//! `base × rate / (100 + rate)` already inside tax-inclusive prices: per line, each line's tax is
//! rounded; per document, each rate's tax is rounded once on the sum of its lines' bases and then
//! allocated over them. With net prices `total = subtotal − discount + tax`; with tax-inclusive
//! prices `total = subtotal − discount` (the tax is shown, not added).

use crate::decimal::{Decimal, Rounding, allocate, round_minor};
use crate::value::Money;
use serde::{Deserialize, Serialize};

/// Where a quote's amounts are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RoundingLevel {
    /// Every line's amount and tax is rounded, and the document adds them up.
    #[default]
    PerLine,
    /// Only the document's subtotal and each rate's tax are rounded; lines show their allocated part.
    PerDocument,
}

impl RoundingLevel {
    pub const KEYS: &'static [&'static str] = &["per_line", "per_document"];
}

/// The tenant's rounding policy (organization settings `quote_rounding`, `quote_rounding_mode` and
/// `prices_include_tax`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub rounding: RoundingLevel,
    #[serde(default = "half_up")]
    pub mode: Rounding,
    #[serde(default)]
    pub prices_include_tax: bool,
}

fn half_up() -> Rounding {
    Rounding::HalfUp
}

impl Default for Policy {
    /// Per line, half up, net prices: what most printed quotes do.
    fn default() -> Self {
        Policy {
            rounding: RoundingLevel::PerLine,
            mode: Rounding::HalfUp,
            prices_include_tax: false,
        }
    }
}

/// One line as entered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineInput {
    pub quantity: Decimal,
    pub unit_price: Money,
    #[serde(default)]
    pub discount_percent: Option<Decimal>,
    #[serde(default)]
    pub discount_amount: Option<Money>,
    #[serde(default)]
    pub tax_rate: Decimal,
    /// Shown with its own amounts, left out of the totals.
    #[serde(default)]
    pub optional: bool,
}

/// The document-level discount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocumentDiscount {
    #[default]
    None,
    /// A percent of the subtotal (`12.5`).
    Percent(Decimal),
    Amount(Money),
}

/// One line's shown amounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTotals {
    /// After the line's own discount, before the document discount (tax included when prices are).
    pub amount: Money,
    /// Its part of the document discount.
    pub discount_share: Money,
    pub tax: Money,
    pub total: Money,
}

/// The tax of one rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    pub rate: Decimal,
    /// What the rate applies to (after discounts).
    pub base: Money,
    pub tax: Money,
}

/// A quote's totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// One per input line, in order (optional lines too: shown, not counted).
    pub lines: Vec<LineTotals>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub tax_total: Money,
    pub total: Money,
    /// Per tax rate, ascending.
    pub taxes: Vec<TaxLine>,
    /// Every discount (lines' and document's) as a percent of the undiscounted amount, two decimals:
    /// what approval rules compare.
    pub effective_discount_percent: Decimal,
}

/// Why totals cannot be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotalsError {
    /// The line (by index) is discounted below zero, or has a negative quantity, price, discount or
    /// tax rate.
    NegativeLine(usize),
    /// The document discount is larger than the subtotal.
    DiscountTooLarge,
    /// An amount does not fit in 64 bits of minor units.
    Overflow,
}

/// Why totals cannot be computed, as the field error every face shows (`lines[i]`,
/// `discount_amount`, `total`, each `too_large`).
impl From<TotalsError> for crate::error::Error {
    fn from(e: TotalsError) -> Self {
        use crate::error::{Error, codes};
        match e {
            TotalsError::NegativeLine(i) => Error::field(
                format!("lines[{i}]"),
                codes::TOO_LARGE,
                "the line's discount is more than the line is worth",
            ),
            TotalsError::DiscountTooLarge => Error::field(
                super::fields::DISCOUNT_AMOUNT,
                codes::TOO_LARGE,
                "the discount is more than the subtotal",
            ),
            TotalsError::Overflow => Error::field(super::fields::TOTAL, codes::TOO_LARGE, "the amounts are too large"),
        }
    }
}

/// Computes a quote's totals by the policy.
pub fn compute(lines: &[LineInput], discount: DocumentDiscount, policy: &Policy) -> Result<Totals, TotalsError> {
    use TotalsError::Overflow;
    let round = |d: Decimal| round_minor(d, policy.mode).ok_or(Overflow);
    let hundred = Decimal::ONE_HUNDRED;
    // Exact amounts after each line's own discount, and the undiscounted gross.
    let mut exact = Vec::with_capacity(lines.len());
    let mut gross_sum = Decimal::ZERO;
    for (i, l) in lines.iter().enumerate() {
        let gross = Decimal::from(l.unit_price.0).checked_mul(l.quantity).ok_or(Overflow)?;
        let own = match (l.discount_percent, l.discount_amount) {
            (Some(p), _) => gross.checked_mul(p).ok_or(Overflow)? / hundred,
            (None, Some(a)) => Decimal::from(a.0),
            (None, None) => Decimal::ZERO,
        };
        let negative = |d: Decimal| d.is_sign_negative() && !d.is_zero();
        if negative(gross) || negative(own) || negative(l.tax_rate) {
            return Err(TotalsError::NegativeLine(i));
        }
        let e = gross.checked_sub(own).ok_or(Overflow)?;
        if negative(e) {
            return Err(TotalsError::NegativeLine(i));
        }
        if !l.optional {
            gross_sum = gross_sum.checked_add(gross).ok_or(Overflow)?;
        }
        exact.push(e);
    }
    let counted: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].optional).collect();

    // Shown amounts of the counted lines, and the subtotal.
    let (amounts, subtotal) = match policy.rounding {
        RoundingLevel::PerLine => {
            let a = counted
                .iter()
                .map(|&i| round(exact[i]))
                .collect::<Result<Vec<_>, _>>()?;
            let s = a.iter().try_fold(0i64, |s, x| s.checked_add(*x)).ok_or(Overflow)?;
            (a, s)
        }
        RoundingLevel::PerDocument => {
            let sum = counted
                .iter()
                .try_fold(Decimal::ZERO, |s, &i| s.checked_add(exact[i]))
                .ok_or(Overflow)?;
            let s = round(sum)?;
            let weights = counted
                .iter()
                .map(|&i| {
                    let w = exact[i].checked_mul(Decimal::from(10_000)).ok_or(Overflow)?;
                    i64::try_from(w.round()).map_err(|_| Overflow)
                })
                .collect::<Result<Vec<_>, _>>()?;
            (allocate(s, &weights).ok_or(Overflow)?, s)
        }
    };

    // The document discount, allocated over the lines (a quote still without lines has nothing to
    // discount yet: its discount applies once lines arrive).
    let discount_total = match discount {
        _ if counted.is_empty() => 0,
        DocumentDiscount::None => 0,
        DocumentDiscount::Percent(p) => round(Decimal::from(subtotal).checked_mul(p).ok_or(Overflow)? / hundred)?,
        DocumentDiscount::Amount(a) => a.0,
    };
    if discount_total > subtotal || discount_total < 0 {
        return Err(TotalsError::DiscountTooLarge);
    }
    let shares = allocate(discount_total, &amounts).ok_or(Overflow)?;
    let bases: Vec<i64> = amounts.iter().zip(&shares).map(|(a, s)| a - s).collect();

    // Tax: the factor of a rate, on net or inside tax-inclusive prices.
    let factor = |rate: Decimal| -> Result<Decimal, TotalsError> {
        if policy.prices_include_tax {
            hundred
                .checked_add(rate)
                .and_then(|d| rate.checked_div(d))
                .ok_or(Overflow)
        } else {
            rate.checked_div(hundred).ok_or(Overflow)
        }
    };
    let mut rates: Vec<Decimal> = counted.iter().map(|&i| lines[i].tax_rate.normalize()).collect();
    let line_rates = rates.clone();
    rates.sort();
    rates.dedup();
    let mut taxes_of_lines = vec![0i64; counted.len()];
    let mut taxes = Vec::with_capacity(rates.len());
    for rate in rates {
        let members: Vec<usize> = (0..counted.len()).filter(|&k| line_rates[k] == rate).collect();
        let base = members
            .iter()
            .try_fold(0i64, |s, &k| s.checked_add(bases[k]))
            .ok_or(Overflow)?;
        let tax = match policy.rounding {
            RoundingLevel::PerLine => {
                let mut t = 0i64;
                for &k in &members {
                    let x = round(Decimal::from(bases[k]).checked_mul(factor(rate)?).ok_or(Overflow)?)?;
                    taxes_of_lines[k] = x;
                    t = t.checked_add(x).ok_or(Overflow)?;
                }
                t
            }
            RoundingLevel::PerDocument => {
                let t = round(Decimal::from(base).checked_mul(factor(rate)?).ok_or(Overflow)?)?;
                let weights: Vec<i64> = members.iter().map(|&k| bases[k]).collect();
                for (&k, x) in members.iter().zip(allocate(t, &weights).ok_or(Overflow)?) {
                    taxes_of_lines[k] = x;
                }
                t
            }
        };
        taxes.push(TaxLine {
            rate,
            base: Money(base),
            tax: Money(tax),
        });
    }
    let tax_total = taxes
        .iter()
        .try_fold(0i64, |s, t| s.checked_add(t.tax.0))
        .ok_or(Overflow)?;
    let line_total = |base: i64, tax: i64| {
        if policy.prices_include_tax {
            Ok(base)
        } else {
            base.checked_add(tax).ok_or(Overflow)
        }
    };

    // Every line's shown amounts; optional lines on their own (rounded per line, no discount share).
    let mut out = Vec::with_capacity(lines.len());
    let mut k = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.optional {
            let amount = round(exact[i])?;
            let tax = round(Decimal::from(amount).checked_mul(factor(l.tax_rate)?).ok_or(Overflow)?)?;
            out.push(LineTotals {
                amount: Money(amount),
                discount_share: Money(0),
                tax: Money(tax),
                total: Money(line_total(amount, tax)?),
            });
        } else {
            out.push(LineTotals {
                amount: Money(amounts[k]),
                discount_share: Money(shares[k]),
                tax: Money(taxes_of_lines[k]),
                total: Money(line_total(bases[k], taxes_of_lines[k])?),
            });
            k += 1;
        }
    }
    let total = line_total(subtotal - discount_total, tax_total)?;
    let effective_discount_percent = if gross_sum.is_zero() {
        Decimal::ZERO
    } else {
        let discounted = Decimal::from(subtotal - discount_total);
        gross_sum
            .checked_sub(discounted)
            .and_then(|d| d.checked_mul(hundred))
            .and_then(|d| d.checked_div(gross_sum))
            .ok_or(Overflow)?
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            .max(Decimal::ZERO)
            .normalize()
    };
    Ok(Totals {
        lines: out,
        subtotal: Money(subtotal),
        discount_total: Money(discount_total),
        tax_total: Money(tax_total),
        total: Money(total),
        taxes,
        effective_discount_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shared fixture set: the same inputs and expected totals are checked over HTTP, in Python
    /// and in WASM.
    pub const FIXTURES: &str = include_str!("../../../testdata/quote_totals.json");

    #[derive(Deserialize)]
    struct Fixture {
        name: String,
        policy: Policy,
        #[serde(default)]
        discount: DocumentDiscount,
        lines: Vec<LineInput>,
        expected: Expected,
    }

    #[derive(Deserialize)]
    struct Expected {
        subtotal: Money,
        discount_total: Money,
        tax_total: Money,
        total: Money,
        lines: Vec<LineTotals>,
        taxes: Vec<TaxLine>,
    }

    #[test]
    fn the_fixture_set_gives_its_expected_totals() {
        let fixtures: Vec<Fixture> = serde_json::from_str(FIXTURES).unwrap();
        assert!(fixtures.len() >= 6);
        for f in fixtures {
            let t = compute(&f.lines, f.discount, &f.policy).unwrap_or_else(|e| panic!("{}: {e:?}", f.name));
            let e = &f.expected;
            assert_eq!(
                (t.subtotal, t.discount_total, t.tax_total, t.total),
                (e.subtotal, e.discount_total, e.tax_total, e.total),
                "{}",
                f.name
            );
            assert_eq!(t.lines, e.lines, "{}", f.name);
            assert_eq!(t.taxes, e.taxes, "{}", f.name);
        }
    }

    #[test]
    fn refusals() {
        let line = |q: &str, p: i64| LineInput {
            quantity: crate::decimal::parse(q).unwrap(),
            unit_price: Money(p),
            discount_percent: None,
            discount_amount: None,
            tax_rate: Decimal::ZERO,
            optional: false,
        };
        let p = Policy::default();
        let mut l = line("1", 1000);
        l.discount_amount = Some(Money(1001));
        assert_eq!(
            compute(&[l], DocumentDiscount::None, &p),
            Err(TotalsError::NegativeLine(0))
        );
        assert_eq!(
            compute(&[line("1", 1000)], DocumentDiscount::Amount(Money(1001)), &p),
            Err(TotalsError::DiscountTooLarge)
        );
        assert_eq!(
            compute(&[line("-1", 1000)], DocumentDiscount::None, &p),
            Err(TotalsError::NegativeLine(0))
        );
        let empty = compute(&[], DocumentDiscount::Percent(Decimal::TEN), &p).unwrap();
        assert_eq!(
            (empty.total, empty.effective_discount_percent),
            (Money(0), Decimal::ZERO)
        );
        let empty = compute(&[], DocumentDiscount::Amount(Money(500)), &p).unwrap();
        assert_eq!((empty.discount_total, empty.total), (Money(0), Money(0)));
    }

    fn policies() -> impl Strategy<Value = Policy> {
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(doc, even, incl)| Policy {
            rounding: if doc {
                RoundingLevel::PerDocument
            } else {
                RoundingLevel::PerLine
            },
            mode: if even { Rounding::HalfEven } else { Rounding::HalfUp },
            prices_include_tax: incl,
        })
    }

    fn lines() -> impl Strategy<Value = Vec<LineInput>> {
        let rates = prop::sample::select(vec!["0", "5", "7.7", "8.875", "19", "20"]);
        let line = (
            1i64..100_000,
            0u32..=3,
            0i64..5_000_000,
            0u8..3,
            0i64..10_000,
            rates,
            prop::bool::weighted(0.1),
        )
            .prop_map(|(q, scale, price, dkind, d, rate, optional)| LineInput {
                quantity: Decimal::new(q, scale),
                unit_price: Money(price),
                discount_percent: (dkind == 1).then(|| Decimal::new(d % 10_001, 2)),
                discount_amount: (dkind == 2).then_some(Money(0)),
                tax_rate: crate::decimal::parse(rate).unwrap(),
                optional,
            });
        prop::collection::vec(line, 0..25)
    }

    proptest! {
        #[test]
        fn shown_lines_add_up_to_shown_totals(lines in lines(), policy in policies(), dp in 0i64..5000, pct in any::<bool>()) {
            let discount = if pct { DocumentDiscount::Percent(Decimal::new(dp, 2)) } else { DocumentDiscount::None };
            let t = compute(&lines, discount, &policy).unwrap();
            let counted: Vec<&LineTotals> = t.lines.iter().zip(&lines).filter(|(_, l)| !l.optional).map(|(t, _)| t).collect();
            let sum = |f: fn(&LineTotals) -> i64| counted.iter().map(|l| f(l)).sum::<i64>();
            prop_assert_eq!(sum(|l| l.amount.0), t.subtotal.0);
            prop_assert_eq!(sum(|l| l.discount_share.0), t.discount_total.0);
            prop_assert_eq!(sum(|l| l.tax.0), t.tax_total.0);
            prop_assert_eq!(sum(|l| l.total.0), t.total.0);
            prop_assert_eq!(t.taxes.iter().map(|x| x.tax.0).sum::<i64>(), t.tax_total.0);
            let expect = t.subtotal.0 - t.discount_total.0 + if policy.prices_include_tax { 0 } else { t.tax_total.0 };
            prop_assert_eq!(t.total.0, expect);
            for l in &t.lines {
                prop_assert!(l.amount.0 >= 0 && l.discount_share.0 >= 0 && l.tax.0 >= 0);
            }
        }
    }
}
