//! Fuzzes a quote's totals: arbitrary lines, document discount and rounding policy. `compute` must
//! never panic; when it answers, the lines shown add up to the totals shown, under every policy.
#![no_main]

use crm_core::decimal::{Decimal, Rounding};
use crm_core::entity::quote::totals::{DocumentDiscount, LineInput, Policy, RoundingLevel, compute};
use crm_core::value::Money;
use libfuzzer_sys::fuzz_target;

/// Reads little-endian integers off the input, zero when it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take::<8>())
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    /// A decimal with up to 6 fractional digits (what the field type allows).
    fn decimal(&mut self) -> Decimal {
        Decimal::new(self.i64() % 1_000_000_000_000_000, u32::from(self.u8() % 7))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let flags = b.u8();
    let policy = Policy {
        rounding: if flags & 1 == 0 {
            RoundingLevel::PerLine
        } else {
            RoundingLevel::PerDocument
        },
        mode: if flags & 2 == 0 {
            Rounding::HalfUp
        } else {
            Rounding::HalfEven
        },
        prices_include_tax: flags & 4 != 0,
    };
    let discount = match b.u8() % 3 {
        0 => DocumentDiscount::None,
        1 => DocumentDiscount::Percent(b.decimal()),
        _ => DocumentDiscount::Amount(Money(b.i64())),
    };
    let mut lines = Vec::new();
    while !b.0.is_empty() && lines.len() < 200 {
        let kind = b.u8();
        lines.push(LineInput {
            quantity: b.decimal(),
            unit_price: Money(b.i64()),
            discount_percent: (kind & 1 != 0).then(|| b.decimal()),
            discount_amount: (kind & 2 != 0).then(|| Money(b.i64())),
            tax_rate: b.decimal(),
            optional: kind & 4 != 0,
        });
    }
    let Ok(t) = compute(&lines, discount, &policy) else {
        return;
    };
    let counted: Vec<_> = t
        .lines
        .iter()
        .zip(&lines)
        .filter(|(_, l)| !l.optional)
        .map(|(t, _)| *t)
        .collect();
    let sum = |f: fn(&crm_core::entity::quote::totals::LineTotals) -> i64| {
        counted.iter().map(|l| i128::from(f(l))).sum::<i128>()
    };
    assert_eq!(sum(|l| l.amount.0), i128::from(t.subtotal.0));
    assert_eq!(sum(|l| l.discount_share.0), i128::from(t.discount_total.0));
    assert_eq!(sum(|l| l.tax.0), i128::from(t.tax_total.0));
    assert_eq!(sum(|l| l.total.0), i128::from(t.total.0));
});
