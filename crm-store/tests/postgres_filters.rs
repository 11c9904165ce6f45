//! The filter property (`filter_props/mod.rs`) on the PostgreSQL store: random records and random
//! filters and sorts give exactly the rows, in exactly the order, the in-memory evaluator gives. Runs
//! in the schema `crm_test_filter_proptest` of the database named by `CRM_TEST_POSTGRES` (recreated
//! on each run; skipped without the variable, a failure under CI; see `pg/mod.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;
mod filter_props;
mod pg;

use crm_store::{PgOptions, PgStore};
use filter_props::{agrees_with_memory, filter, row, sort};
use proptest::prelude::*;
use std::sync::LazyLock;

const SCHEMA: &str = "crm_test_filter_proptest";

/// One store for every case (each case writes its own tenant), on a schema emptied at first use.
static STORE: LazyLock<Option<PgStore>> = LazyLock::new(|| {
    let url = pg::url()?;
    let s = PgStore::open_with(PgOptions::new(&url).schema(SCHEMA)).unwrap();
    let pool = s.pool().clone();
    s.runtime().block_on(async {
        let drop = format!("DROP SCHEMA \"{SCHEMA}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&pool).await.unwrap();
    });
    drop(s);
    Some(PgStore::open_with(PgOptions::new(&url).schema(SCHEMA)).unwrap())
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn postgres_filters_and_sorts_agree_with_memory(rows in prop::collection::vec(row(), 0..30), f in filter(), sort in sort(), limit in 1u32..40) {
        let Some(store) = STORE.as_ref() else { return Ok(()) };
        agrees_with_memory(store, &rows, &f, &sort, limit)?;
    }
}
