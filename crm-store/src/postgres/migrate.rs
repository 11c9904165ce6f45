//! Versioned migrations (the same versions and steps as SQLite, rendered for PostgreSQL), guarded
//! against concurrent migrators.
//!
//! Each version is applied in its own transaction, which first takes a transaction-level advisory
//! lock keyed by the schema (`pg_advisory_xact_lock(class, hashtext(current_schema()))`), then reads
//! the recorded version: of several processes opening a new database at once, one applies each
//! version while the others wait, see it recorded and move on. PostgreSQL's DDL is transactional, so
//! a failed migration leaves nothing behind.

use super::*;

/// The advisory lock class of crm-store migrations (an arbitrary constant: "CRM" in ASCII).
pub(super) const LOCK_CLASS: i32 = 0x0043_524D;

pub(super) async fn current_version(conn: &mut PgConnection) -> Result<u32> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(schema::SCHEMA_MIGRATIONS)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if !exists {
        return Ok(0);
    }
    let sql = format!(
        "SELECT COALESCE(MAX(version), 0) FROM \"{}\"",
        schema::SCHEMA_MIGRATIONS
    );
    let v: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    u32::try_from(v).map_err(|_| corrupt(schema::SCHEMA_MIGRATIONS, "version"))
}

fn newer(v: u32) -> Error {
    Error::corrupt(format!(
        "database schema version {v} is newer than this build ({SCHEMA_VERSION})"
    ))
}

/// Applies the migrations after the database's version up to `target`; returns the version reached.
pub(super) async fn migrate(pool: &PgPool, target: u32) -> Result<u32> {
    let mut conn = pool.acquire().await.map_err(db)?;
    let all = schema::migrations(B);
    loop {
        let mut tx = conn.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(LOCK_CLASS)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::raw_sql(AssertSqlSafe(schema::migrations_table(B)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let v = current_version(&mut tx).await?;
        if v > SCHEMA_VERSION {
            return Err(newer(v));
        }
        let Some(m) = all.iter().find(|m| m.version == v + 1 && m.version <= target) else {
            tx.commit().await.map_err(db)?;
            return Ok(v);
        };
        for s in &m.statements {
            sqlx::raw_sql(AssertSqlSafe(s.clone()))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let record = format!(
            "INSERT INTO \"{}\" (version, applied_at) VALUES ($1, $2)",
            schema::SCHEMA_MIGRATIONS
        );
        sqlx::query(AssertSqlSafe(record))
            .bind(i64::from(m.version))
            .bind(Timestamp::from_datetime(time::OffsetDateTime::now_utc()).0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
}
