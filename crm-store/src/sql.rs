//! Backend-neutral statement building: values, the filter tree as a SQL condition, the SELECTs of the
//! read methods, and the fixed per-entity statements (cached as SQL text, built once per backend).
//!
//! The SQL a filter becomes evaluates exactly what [`crm_core::query::Compiled::eval`] evaluates in
//! memory, for bound filters (whose values are typed by the fields they compare with):
//!
//! - comparisons with NULL are UNKNOWN and `AND`, `OR`, `NOT` follow SQL's three-valued logic;
//! - text compares by bytes (SQLite's default `BINARY` collation; PostgreSQL needs `COLLATE "C"`);
//! - `Contains` on text is a case-insensitive (ASCII) substring test, `lower(col) LIKE '%v%' ESCAPE '\'`
//!   with `%`, `_` and `\` escaped in `v`; `StartsWith` the same as a prefix;
//! - `Contains` on a list column (tags, multi-enum; a JSON array of strings) is element equality;
//! - ascending sorts put nulls first, descending ones last, ties are broken by `id`.
//!
//! Known differences, all outside what binding produces: comparing values of different types (in
//! memory ordered by type rank, in SQL by storage class), sorting by a list or JSON field (the stored
//! JSON text orders it), `-0.0` versus `0.0` (distinct in memory, equal in SQL), and NaN (SQLite
//! stores it as NULL).

mod aggregate;
mod filter;
mod fixed;
mod read;
mod sync;
mod value;

pub use aggregate::*;
pub use filter::*;
pub use fixed::*;
pub use read::*;
pub use sync::*;
pub use value::*;

#[cfg(test)]
mod tests;
