//! The filter property (`filter_props/mod.rs`) on one in-memory SQLite store: random records and
//! random filters and sorts give exactly the rows, in exactly the order, the in-memory evaluator gives,
//! and random aggregates over them the groups the core's reference fold gives.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod common;
mod filter_props;

use crm_store::SqliteStore;
use filter_props::{aggregate_query, aggregates_agree_with_memory, agrees_with_memory, filter, row, sort};
use proptest::prelude::*;
use std::sync::LazyLock;

/// One store for every case (each case writes its own tenant).
static STORE: LazyLock<SqliteStore> = LazyLock::new(|| SqliteStore::open_in_memory().unwrap());

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn sql_filters_and_sorts_agree_with_memory(rows in prop::collection::vec(row(), 0..30), f in filter(), sort in sort(), limit in 1u32..40) {
        agrees_with_memory(&*STORE, &rows, &f, &sort, limit)?;
    }

    #[test]
    fn sql_aggregates_agree_with_memory(rows in prop::collection::vec(row(), 0..30), q in filter().prop_flat_map(aggregate_query)) {
        aggregates_agree_with_memory(&*STORE, &rows, &q)?;
    }
}
