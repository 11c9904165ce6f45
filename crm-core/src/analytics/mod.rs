//! Reports: pure folds over records and store aggregates, each with a typed result. The service
//! reads what the actor may read (aggregates pushed down to the store, scoped reads) and hands it
//! in (see `crate::service::reports`); nothing here reads a store.

pub mod breakdown;
pub mod conversion;
pub mod forecast;
pub mod funnel;
pub mod memberships;
pub mod velocity;

use crate::decimal::Decimal;

/// `part` over `whole` in percent with one decimal (half away from zero); `None` when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<Decimal> {
    (whole > 0).then(|| {
        (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole))
            .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            .normalize()
    })
}

/// A calendar month as reports name it: `YYYY-MM`.
pub fn month_key(d: time::Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_to_one_decimal_and_refuses_an_empty_whole() {
        assert_eq!(percent(1, 3), Some(Decimal::new(333, 1)));
        assert_eq!(percent(2, 3), Some(Decimal::new(667, 1)));
        assert_eq!(percent(3, 3), Some(Decimal::from(100)));
        assert_eq!(percent(0, 0), None);
    }
}
