//! Applying a change set inside the caller's transaction.

use super::*;

const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// Maps the failure of an insert or update of `id`: a unique index names the field (from the
/// constraint's column list, never its values), a primary key clash is a conflict.
pub(super) fn write_err(e: rusqlite::Error, def: &EntityDef, id: Id) -> Error {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY {
            return Error::Conflict {
                entity: def.name.into(),
                id: id.to_string(),
                expected: 0,
                actual: 1,
            };
        }
        if f.extended_code == SQLITE_CONSTRAINT_UNIQUE {
            // "UNIQUE constraint failed: leads.org_id, leads.external_id"
            let cols = msg
                .as_deref()
                .and_then(|m| m.split_once(": "))
                .map(|(_, c)| c)
                .unwrap_or("");
            let field = cols
                .split(", ")
                .filter_map(|c| c.rsplit('.').next())
                .find_map(|c| def.fields.iter().find(|f| f.unique && f.name == c));
            return match field {
                Some(f) => Error::Validation(vec![FieldError::new(
                    f.name,
                    codes::DUPLICATE,
                    format!("another {} has this {}", def.name, f.name),
                )]),
                None => Error::Conflict {
                    entity: def.name.into(),
                    id: id.to_string(),
                    expected: 0,
                    actual: 1,
                },
            };
        }
    }
    db(e)
}

pub(super) fn stored_version(conn: &Connection, tenant: Id, def: &EntityDef, id: Id) -> Result<Option<u64>> {
    let mut stmt = conn.prepare_cached(&entity_sql(def)?.version).map_err(db)?;
    let v: Option<i64> = stmt.query_row((tenant, id), |r| r.get(0)).optional().map_err(db)?;
    Ok(v.map(|v| v.max(0) as u64))
}

/// Why a versioned update or delete touched no row: a conflict, or no such row.
pub(super) fn missed(conn: &Connection, tenant: Id, def: &EntityDef, id: Id, expected: u64) -> Error {
    match stored_version(conn, tenant, def, id) {
        Ok(Some(actual)) => Error::Conflict {
            entity: def.name.into(),
            id: id.to_string(),
            expected,
            actual,
        },
        Ok(None) => Error::not_found(def.name, id),
        Err(e) => e,
    }
}

pub(super) fn exec(conn: &Connection, text: &str, values: Vec<sea_query::Value>) -> rusqlite::Result<usize> {
    conn.prepare_cached(text)?.execute(params_from_iter(bind(values)))
}

pub(super) fn own(tenant: Id, r: &Record) -> Result<()> {
    if r.tenant == tenant {
        Ok(())
    } else {
        Err(Error::internal("a change set may only write records of its own tenant"))
    }
}

/// Applies a change set inside the caller's transaction (with `log`, also its sync log entry). On
/// error the caller rolls back.
pub(super) fn apply_in(conn: &Connection, cs: ChangeSet, log: bool) -> Result<Applied> {
    let tenant = cs.tenant;
    // Built before the writes: updates diff against the rows as stored.
    let entry = if log {
        SyncEntry::for_change_set(&cs, |def, id| get_in(conn, tenant, def, id))?
    } else {
        None
    };
    if let Some(st) = &cs.settle {
        // The answer first: a lost claim refuses the change set before anything is written.
        let text = serde_json::to_string(&st.answer).map_err(|e| Error::internal(e.to_string()))?;
        let n = conn
            .prepare_cached(&sql::idempotency_sql(B).settle)
            .and_then(|mut s| s.execute((text, st.expires_at.0, tenant, &st.caller, &st.key)))
            .map_err(db)?;
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
                exec(conn, &entity_sql(def)?.insert, sql::insert_params(tenant, r, B)).map_err(|e| {
                    // An existing id is a conflict whichever constraint SQLite happened to check first.
                    match stored_version(conn, tenant, def, r.id) {
                        Ok(Some(actual)) => Error::Conflict {
                            entity: def.name.into(),
                            id: r.id.to_string(),
                            expected: 0,
                            actual,
                        },
                        _ => write_err(e, def, r.id),
                    }
                })?;
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
                .map_err(|e| write_err(e, def, r.id))?;
                if n == 0 {
                    return Err(missed(conn, tenant, def, r.id, *expected_version));
                }
                rows += 1;
            }
            Write::Delete {
                id, expected_version, ..
            } => {
                let params = vec![
                    sea_query::Value::Uuid(Some(tenant)),
                    sea_query::Value::Uuid(Some(*id)),
                    sea_query::Value::BigInt(Some(*expected_version as i64)),
                ];
                if exec(conn, &entity_sql(def)?.delete, params).map_err(db)? == 0 {
                    return Err(missed(conn, tenant, def, *id, *expected_version));
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
                    rows += u64::from(stored_version(conn, tenant, def, *id)? == Some(*expected_version));
                } else {
                    let (text, values) = sql::derived_update(def, tenant, *id, *expected_version, fields, B)?;
                    rows += exec(conn, &text, values.0).map_err(db)? as u64;
                }
            }
        }
    }
    let common = sql::common_sql(B);
    let heads: Option<(i64, String, i64)> = conn
        .prepare_cached(&common.heads)
        .and_then(|mut s| {
            s.query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db)?;
    let exists = heads.is_some();
    let (audit_seq, mut audit_hash, event_seq) = heads.unwrap_or((0, String::new(), 0));
    let (mut audit_seq, mut event_seq) = (audit_seq.max(0) as u64, event_seq.max(0) as u64);
    let changed = !cs.audit.is_empty() || !cs.events.is_empty();
    for mut a in cs.audit {
        a.tenant = tenant;
        a.seal(audit_seq + 1, &audit_hash);
        exec(conn, &common.insert_audit, sql::audit_params(tenant, &a, B)).map_err(db)?;
        audit_seq = a.seq;
        audit_hash = a.hash;
    }
    for mut e in cs.events {
        event_seq += 1;
        e.seq = event_seq;
        e.tenant = tenant;
        exec(conn, &common.insert_event, sql::event_params(tenant, &e, B)).map_err(db)?;
    }
    if changed {
        let (a, h, e) = (audit_seq as i64, audit_hash, event_seq as i64);
        let mut stmt = if exists {
            conn.prepare_cached(&common.update_heads).map_err(db)?
        } else {
            conn.prepare_cached(&common.insert_heads).map_err(db)?
        };
        let n = if exists {
            stmt.execute((a, h, e, tenant))
        } else {
            stmt.execute((tenant, a, h, e))
        };
        n.map_err(db)?;
    }
    if let Some(mut e) = entry {
        let s = sql::sync_sql(B);
        let seq: i64 = conn
            .prepare_cached(&s.next_seq)
            .and_then(|mut st| st.query_row((tenant, 1i64), |r| r.get(0)))
            .map_err(db)?;
        e.seq = seq.max(0) as u64;
        e.tenant = tenant;
        exec(conn, &s.insert, sql::sync_params(tenant, &e, B)).map_err(db)?;
    }
    Ok(Applied {
        last_event_seq: event_seq,
        rows,
    })
}
