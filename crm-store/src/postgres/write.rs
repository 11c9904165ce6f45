//! Applying a change set inside the caller's transaction.

use super::*;
use crm_core::sync::SyncEntry;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::OnceLock;

/// The tenant's chain and sequence heads, read from its locked `tenant_heads` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Heads {
    audit_seq: u64,
    audit_hash: String,
    event_seq: u64,
}

/// `SELECT ... FROM tenant_heads WHERE org_id = $1 FOR UPDATE`.
fn heads_for_update() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("{} FOR UPDATE", sql::common_sql(B).heads))
}

/// `INSERT INTO tenant_heads ... ON CONFLICT (org_id) DO NOTHING`: a tenant's first head row, which
/// two first writers may race to create.
fn create_heads() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "{} ON CONFLICT (\"org_id\") DO NOTHING",
            sql::common_sql(B).insert_heads
        )
    })
}

/// The tenant's recorded audit chain head, without locking its row.
pub(super) async fn audit_head_in(conn: &mut PgConnection, tenant: Id) -> Result<AuditHead> {
    let row = sqlx::query(sql::common_sql(B).heads.as_str())
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return Ok(AuditHead::default());
    };
    let t = schema::TENANT_HEADS;
    Ok(AuditHead {
        seq: int_col(&row, 0, t, "audit_seq")?.max(0) as u64,
        hash: text_col(&row, 1, t, "audit_hash")?,
    })
}

/// Locks the tenant's head row (creating it if needed) until the transaction ends, and reads it.
pub(super) async fn lock_heads(conn: &mut PgConnection, tenant: Id) -> Result<Heads> {
    for _ in 0..2 {
        let row = sqlx::query(heads_for_update())
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        if let Some(row) = row {
            let t = schema::TENANT_HEADS;
            return Ok(Heads {
                audit_seq: int_col(&row, 0, t, "audit_seq")?.max(0) as u64,
                audit_hash: text_col(&row, 1, t, "audit_hash")?,
                event_seq: int_col(&row, 2, t, "event_seq")?.max(0) as u64,
            });
        }
        sqlx::query(create_heads())
            .bind(tenant)
            .bind(0i64)
            .bind("")
            .bind(0i64)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Err(Error::internal("postgres: tenant head row missing"))
}

/// The field a unique index guards, from the index name (`uq_<table>_<field>`).
fn unique_field<'d>(def: &'d EntityDef, constraint: &str) -> Option<&'d crm_core::schema::FieldDef> {
    let name = constraint
        .strip_prefix("uq_")?
        .strip_prefix(def.table)?
        .strip_prefix('_')?;
    def.fields.iter().find(|f| f.unique && f.name == name)
}

fn conflict(def: &EntityDef, id: Id, expected: u64, actual: u64) -> Error {
    Error::Conflict {
        entity: def.name.into(),
        id: id.to_string(),
        expected,
        actual,
    }
}

/// Maps the failure of a write of `id`: a unique index names the field (from the index name, never
/// the values), a primary key clash or a lost race with a concurrent writer is a conflict.
pub(super) fn write_err(e: sqlx::Error, def: &EntityDef, id: Id, expected: u64) -> Error {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => {
                return match d.constraint().and_then(|c| unique_field(def, c)) {
                    Some(f) => Error::Validation(vec![FieldError::new(
                        f.name,
                        codes::DUPLICATE,
                        format!("another {} has this {}", def.name, f.name),
                    )]),
                    None => conflict(def, id, expected, expected + 1),
                };
            }
            // Deadlock (rows locked in opposite orders) or serialization failure: the other writer
            // won; the caller re-reads and retries, as after any conflict.
            Some("40P01") | Some("40001") => return conflict(def, id, expected, expected),
            _ => {}
        }
    }
    db(e)
}

pub(super) async fn stored_version(
    conn: &mut PgConnection,
    tenant: Id,
    def: &EntityDef,
    id: Id,
) -> Result<Option<u64>> {
    let row = sqlx::query(entity_sql(def)?.version.as_str())
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.map(|r| int_col(&r, 0, def.table, "version").map(|v| v.max(0) as u64))
        .transpose()
}

/// Why a versioned update or delete touched no row: a conflict, or no such row.
async fn missed(conn: &mut PgConnection, tenant: Id, def: &EntityDef, id: Id, expected: u64) -> Error {
    match stored_version(conn, tenant, def, id).await {
        Ok(Some(actual)) => conflict(def, id, expected, actual),
        Ok(None) => Error::not_found(def.name, id),
        Err(e) => e,
    }
}

async fn exec(
    conn: &mut PgConnection,
    text: &'static str,
    values: Vec<sea_query::Value>,
) -> std::result::Result<u64, sqlx::Error> {
    sqlx::query_with(text, SqlxValues(sea_query::Values(values)))
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}

fn own(tenant: Id, r: &Record) -> Result<()> {
    if r.tenant == tenant {
        Ok(())
    } else {
        Err(Error::internal("a change set may only write records of its own tenant"))
    }
}

/// Applies a change set inside the caller's transaction; on error the caller rolls back (to a
/// savepoint in a bulk session). `heads` is the tenant's locked head row if the transaction already
/// holds it (bulk sessions), and is left holding the new heads.
pub(super) async fn apply_in(
    conn: &mut PgConnection,
    cs: ChangeSet,
    heads: &mut Option<Heads>,
    sync_log: bool,
) -> Result<Applied> {
    let tenant = cs.tenant;
    let entry = if sync_log { sync_entry(conn, &cs).await? } else { None };
    if let Some(st) = &cs.settle {
        // The answer first: a lost claim refuses the change set before anything is written.
        let text = serde_json::to_string(&st.answer).map_err(|e| Error::internal(e.to_string()))?;
        let n = sqlx::query(sql::idempotency_sql(B).settle.as_str())
            .bind(text)
            .bind(st.expires_at.0)
            .bind(tenant)
            .bind(st.caller.as_str())
            .bind(st.key.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
        if n == 0 {
            return Err(crm_core::idempotency::claim_lost(&st.key));
        }
    }
    let mut rows = 0u64;
    for w in &cs.writes {
        let def = w.entity();
        match w {
            Write::Insert(r) => {
                own(tenant, r)?;
                // `ON CONFLICT (org_id, id) DO NOTHING`: an existing id touches no row (and leaves the
                // transaction usable to read its version).
                let n = exec(conn, &entity_sql(def)?.insert, sql::insert_params(tenant, r, B))
                    .await
                    .map_err(|e| write_err(e, def, r.id, 0))?;
                if n == 0 {
                    let actual = stored_version(conn, tenant, def, r.id).await?.unwrap_or(1);
                    return Err(conflict(def, r.id, 0, actual));
                }
                rows += 1;
            }
            Write::Update {
                record: r,
                expected_version,
            } => {
                own(tenant, r)?;
                let n = exec(
                    conn,
                    &entity_sql(def)?.update,
                    sql::update_params(tenant, r, *expected_version, B),
                )
                .await
                .map_err(|e| write_err(e, def, r.id, *expected_version))?;
                if n == 0 {
                    return Err(missed(conn, tenant, def, r.id, *expected_version).await);
                }
                rows += 1;
            }
            Write::Delete {
                id, expected_version, ..
            } => {
                let n = sqlx::query(entity_sql(def)?.delete.as_str())
                    .bind(tenant)
                    .bind(*id)
                    .bind(*expected_version as i64)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| write_err(e, def, *id, *expected_version))?
                    .rows_affected();
                if n == 0 {
                    return Err(missed(conn, tenant, def, *id, *expected_version).await);
                }
                rows += 1;
            }
            Write::Derived {
                id,
                expected_version,
                fields,
                ..
            } => {
                if fields.is_empty() {
                    rows += u64::from(stored_version(conn, tenant, def, *id).await? == Some(*expected_version));
                } else {
                    let (text, values) = sql::derived_update(def, tenant, *id, *expected_version, fields, B)?;
                    rows += built(text, values)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| write_err(e, def, *id, *expected_version))?
                        .rows_affected();
                }
            }
        }
    }
    let last_event_seq = sequence(conn, tenant, cs.audit, cs.events, heads).await?;
    if let Some(entry) = entry {
        log(conn, tenant, entry).await?;
    }
    Ok(Applied { last_event_seq, rows })
}

/// The sync log entry of a change set about to be applied (rows it updates read as stored before).
async fn sync_entry(conn: &mut PgConnection, cs: &ChangeSet) -> Result<Option<SyncEntry>> {
    let mut stored: HashMap<(&'static str, Id), Option<Record>> = HashMap::new();
    for w in &cs.writes {
        if let Write::Update { record, .. } = w
            && let Entry::Vacant(slot) = stored.entry((record.entity.name, record.id))
        {
            slot.insert(get_in(&mut *conn, cs.tenant, record.entity, record.id).await?);
        }
    }
    SyncEntry::for_change_set(cs, |e, id| Ok(stored.get(&(e.name, id)).cloned().flatten()))
}

/// Appends a sync log entry with the tenant's next log sequence (`sync_heads`, row-locked by the
/// upsert until commit).
async fn log(conn: &mut PgConnection, tenant: Id, mut entry: SyncEntry) -> Result<()> {
    let s = sql::sync_sql(B);
    let seq: i64 = sqlx::query_scalar(s.next_seq.as_str())
        .bind(tenant)
        .bind(1i64)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    entry.seq = seq.max(0) as u64;
    entry.tenant = tenant;
    exec(conn, &s.insert, sql::sync_params(tenant, &entry, B))
        .await
        .map_err(db)?;
    Ok(())
}

/// Seals the audit entries into the tenant's chain and numbers the events, under the tenant's head
/// row lock; returns the tenant's last event sequence.
async fn sequence(
    conn: &mut PgConnection,
    tenant: Id,
    audit: Vec<AuditEntry>,
    events: Vec<Event>,
    heads: &mut Option<Heads>,
) -> Result<u64> {
    if audit.is_empty() && events.is_empty() {
        // Nothing to sequence: report the tenant's last event without locking its head row.
        return Ok(match heads {
            Some(h) => h.event_seq,
            None => sqlx::query(sql::common_sql(B).heads.as_str())
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .map(|row| int_col(&row, 2, schema::TENANT_HEADS, "event_seq"))
                .transpose()?
                .map_or(0, |s| s.max(0) as u64),
        });
    }
    // Locked after the row writes (held to commit): a writer waiting here holds no head, so waiting
    // writers never deadlock on it, and sequence order is commit order.
    let mut h = match heads.take() {
        Some(h) => h,
        None => lock_heads(conn, tenant).await?,
    };
    let common = sql::common_sql(B);
    for mut a in audit {
        a.tenant = tenant;
        a.seal(h.audit_seq + 1, &h.audit_hash);
        exec(conn, &common.insert_audit, sql::audit_params(tenant, &a, B))
            .await
            .map_err(db)?;
        h.audit_seq = a.seq;
        h.audit_hash = a.hash;
    }
    for mut e in events {
        h.event_seq += 1;
        e.seq = h.event_seq;
        e.tenant = tenant;
        exec(conn, &common.insert_event, sql::event_params(tenant, &e, B))
            .await
            .map_err(db)?;
    }
    sqlx::query(common.update_heads.as_str())
        .bind(h.audit_seq as i64)
        .bind(h.audit_hash.as_str())
        .bind(h.event_seq as i64)
        .bind(tenant)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let last_event_seq = h.event_seq;
    *heads = Some(h);
    Ok(last_event_seq)
}
