//! Plans: what the centre sells (a monthly pass, ten visits). A membership names the plan it was sold
//! from; a renewal lasts the plan's `duration_days`, and a plan's `visit_allowance` is counted at
//! check-in.

use super::declare;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::FieldType as T;

declare!(PLAN, plan);

/// Field names of a plan.
pub mod fields {
    pub const NAME: &str = "name";
    pub const DURATION_DAYS: &str = "duration_days";
    pub const PRICE: &str = "price";
    /// Visits a membership of the plan includes (none: unlimited).
    pub const VISIT_ALLOWANCE: &str = "visit_allowance";
    /// Still sold.
    pub const ACTIVE: &str = "active";
}
use fields::*;

fn plan() -> EntityDef {
    let mut e = EntityDef::new("plan", "plans")
        .field(F::new(NAME, T::Text).required().max_len(100).unique())
        .field(F::new(DURATION_DAYS, T::Integer).required().range(Some(1), Some(3660)))
        .field(F::new(PRICE, T::Money).range(Some(0), None))
        .field(F::new(VISIT_ALLOWANCE, T::Integer).range(Some(1), Some(100_000)))
        .field(F::new(ACTIVE, T::Bool).required().default(true))
        .field(F::new("description", T::Text).max_len(2000));
    e.since = 7;
    e.search_fields = &[NAME];
    e
}
