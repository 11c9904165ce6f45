//! Reports: pure folds over records and store aggregates, each with a typed result. The service
//! reads what the actor may read (aggregates pushed down to the store, scoped reads) and hands it
//! in (see `crate::service::reports`); nothing here reads a store.

pub mod breakdown;
pub mod cohort;
pub mod conversion;
pub mod field_work;
pub mod forecast;
pub mod funnel;
pub mod geo;
pub mod ltv;
pub mod memberships;
pub mod productivity;
pub mod velocity;

use crate::decimal::Decimal;
use crate::error::{Error, Result, codes};
use serde::de::DeserializeOwned;

/// Reads a report's `by` parameter as one of the snake_case variant names of `T` (`allowed`, in
/// the order the error lists them); anything else is a validation error on `by` naming them.
pub fn parse_by<T: DeserializeOwned>(s: &str, allowed: &[&str]) -> Result<T> {
    parse_choice("by", s, allowed)
}

/// Reads the parameter `field` as one of the snake_case variant names of `T` (`allowed`); anything
/// else is a validation error on `field` naming them.
pub fn parse_choice<T: DeserializeOwned>(field: &str, s: &str, allowed: &[&str]) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        Error::field(
            field,
            codes::INVALID_OPTION,
            format!("must be one of: {}", allowed.join(", ")),
        )
    })
}

/// The median of `v` (sorted in place): the middle value, or the average of the two middle ones
/// (rounded down); `None` when empty.
pub fn median(v: &mut [i64]) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(((i128::from(v[n / 2 - 1]) + i128::from(v[n / 2])).div_euclid(2)) as i64),
    }
}

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

    #[test]
    fn medians_and_choices() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        let e = parse_by::<breakdown::BreakdownBy>("stage", &["source", "owner", "team"]).unwrap_err();
        assert_eq!(e.field_errors()[0].path, "by");
        assert_eq!(e.field_errors()[0].message, "must be one of: source, owner, team");
    }
}
