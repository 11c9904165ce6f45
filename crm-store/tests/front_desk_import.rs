//! The point-of-sale import's cases (crm-core's `front_desk_import_cases`) on SQLite, and on
//! PostgreSQL when `CRM_TEST_POSTGRES` names a database (each case on a fresh schema).

#[cfg(feature = "sqlite")]
#[test]
fn point_of_sale_import_on_sqlite() {
    crm_core::service::front_desk_import_cases::run_all(|| crm_store::SqliteStore::open_in_memory().unwrap());
}

#[cfg(feature = "postgres")]
mod pg;

#[cfg(feature = "postgres")]
#[test]
fn point_of_sale_import_on_postgres() {
    let Some(url) = pg::url() else { return };
    crm_core::service::front_desk_import_cases::run_all(move || crm_store::PgStore::open_temporary(&url).unwrap());
}
