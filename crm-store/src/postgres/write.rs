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

/// Rows per multi-row statement: a run of inserts, an import chunk's audit entries and events go
/// to the server a statement (one round trip) per this many rows, not one per row.
const ROWS_PER_STATEMENT: usize = 200;

/// PostgreSQL binds at most this many parameters per statement.
const MAX_PARAMS: usize = 65_535;

/// Inserts a run of new records (consecutive inserts of a change set), those of one type in
/// multi-row parts; types in the order they first appear, each type's rows in their order (a run
/// has no update or delete in between, so the end state is the same as one at a time). Parts of
/// different types go in one statement while it stays within [`ROWS_PER_STATEMENT`] rows and
/// [`MAX_PARAMS`] parameters, so a create and its stage change are one round trip.
async fn insert_run(conn: &mut PgConnection, tenant: Id, run: &[&Record]) -> Result<u64> {
    let mut types: Vec<&'static EntityDef> = Vec::new();
    for r in run {
        own(tenant, r)?;
        if !types.iter().any(|d| std::ptr::eq(*d, r.entity)) {
            types.push(r.entity);
        }
    }
    let mut parts: Vec<(&'static EntityDef, Vec<&Record>)> = Vec::new();
    for def in types {
        let of_type: Vec<&Record> = run.iter().filter(|r| std::ptr::eq(r.entity, def)).copied().collect();
        let per = (MAX_PARAMS / sql::insert_columns(def).len()).clamp(1, ROWS_PER_STATEMENT);
        parts.extend(of_type.chunks(per).map(|c| (def, c.to_vec())));
    }
    let mut rows = 0u64;
    let mut rest = &parts[..];
    while !rest.is_empty() {
        // Two parts of one type never share a statement: its parts cannot see each other's rows,
        // so an id taken by an earlier part would not be told apart from one stored before.
        let (mut n_rows, mut n_params, mut take) = (0, 0, 0);
        for (def, chunk) in rest {
            let params = sql::insert_columns(def).len() * chunk.len();
            let repeats = rest[..take].iter().any(|(d, _)| std::ptr::eq(*d, *def));
            if take > 0 && (repeats || n_rows + chunk.len() > ROWS_PER_STATEMENT || n_params + params > MAX_PARAMS) {
                break;
            }
            (n_rows, n_params, take) = (n_rows + chunk.len(), n_params + params, take + 1);
        }
        let (statement, next) = rest.split_at(take);
        rows += insert_parts(conn, tenant, statement).await?;
        rest = next;
    }
    Ok(rows)
}

/// One statement inserting each part as a data-modifying `WITH` part, `ON CONFLICT (org_id, id)
/// DO NOTHING RETURNING id`, answering `(part, id)` for every row inserted: an existing id inserts
/// no row and leaves the transaction usable to read its version for the conflict.
async fn insert_parts(
    conn: &mut PgConnection,
    tenant: Id,
    parts: &[(&'static EntityDef, Vec<&Record>)],
) -> Result<u64> {
    let mut inserts = Vec::with_capacity(parts.len());
    let mut values = Vec::new();
    let mut next = 1;
    for (k, (def, chunk)) in parts.iter().enumerate() {
        let cols = sql::insert_columns(def);
        inserts.push(format!(
            "{} ON CONFLICT (\"org_id\", \"id\") DO NOTHING RETURNING {k}, \"id\"",
            sql::pg_insert_values(def.table, &cols, chunk.len(), next)
        ));
        next += cols.len() * chunk.len();
        for r in chunk {
            values.extend(sql::insert_params(tenant, r, B));
        }
    }
    // One part is the insert itself (an import's chunks); several are `WITH` parts of a union.
    let text = match &inserts[..] {
        [one] => one.clone(),
        _ => {
            let with: Vec<String> = inserts
                .iter()
                .enumerate()
                .map(|(k, i)| format!("p{k} AS ({i})"))
                .collect();
            let answer: Vec<String> = (0..inserts.len()).map(|k| format!("SELECT * FROM p{k}")).collect();
            format!("WITH {} {}", with.join(", "), answer.join(" UNION ALL "))
        }
    };
    let inserted: Vec<(i32, Id)> = sqlx::query_as_with(AssertSqlSafe(text), SqlxValues(sea_query::Values(values)))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| {
            // A unique index names its table: the part of that type reports the field.
            let named = match &e {
                sqlx::Error::Database(d) => d
                    .constraint()
                    .and_then(|c| parts.iter().find(|(def, _)| unique_field(def, c).is_some())),
                _ => None,
            };
            let (def, chunk) = named.unwrap_or(&parts[0]);
            write_err(e, def, chunk[0].id, 0)
        })?;
    let mut rows = 0u64;
    for (k, (def, chunk)) in parts.iter().enumerate() {
        if inserted.iter().filter(|(p, _)| *p as usize == k).count() < chunk.len() {
            // The first row whose id was taken (before, or by an earlier row of the part).
            let mut left: HashMap<Id, usize> = HashMap::new();
            for (_, id) in inserted.iter().filter(|(p, _)| *p as usize == k) {
                *left.entry(*id).or_default() += 1;
            }
            for r in chunk {
                match left.get_mut(&r.id) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => {
                        let actual = stored_version(conn, tenant, def, r.id).await?.unwrap_or(1);
                        return Err(conflict(def, r.id, 0, actual));
                    }
                }
            }
        }
        rows += chunk.len() as u64;
    }
    Ok(rows)
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
    // Consecutive inserts go in together (a run of them), every other write alone.
    let both_inserts = |a: &Write, b: &Write| matches!((a, b), (Write::Insert(_), Write::Insert(_)));
    for group in cs.writes.chunk_by(both_inserts) {
        let w = &group[0];
        let def = w.entity();
        match w {
            Write::Insert(_) => {
                let run: Vec<&Record> = group
                    .iter()
                    .filter_map(|w| match w {
                        Write::Insert(r) => Some(r),
                        _ => None,
                    })
                    .collect();
                rows += insert_run(conn, tenant, &run).await?;
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
    let mut audit_rows = Vec::with_capacity(audit.len());
    for mut a in audit {
        a.tenant = tenant;
        a.seal(h.audit_seq + 1, &h.audit_hash);
        audit_rows.push(sql::audit_params(tenant, &a, B));
        h.audit_seq = a.seq;
        h.audit_hash = a.hash;
    }
    let mut event_rows = Vec::with_capacity(events.len());
    for mut e in events {
        h.event_seq += 1;
        e.seq = h.event_seq;
        e.tenant = tenant;
        event_rows.push(sql::event_params(tenant, &e, B));
    }
    // Entries and events in statements of many rows each; the last statement also moves the head
    // row, so a single write's log is one round trip after the lock.
    let statements = audit_rows
        .len()
        .div_ceil(ROWS_PER_STATEMENT)
        .max(event_rows.len().div_ceil(ROWS_PER_STATEMENT))
        .max(1);
    let (mut audit_chunks, mut event_chunks) = (
        audit_rows.chunks(ROWS_PER_STATEMENT),
        event_rows.chunks(ROWS_PER_STATEMENT),
    );
    for k in 0..statements {
        let last = (k + 1 == statements).then_some(&h);
        let (text, values) = log_statement(
            tenant,
            audit_chunks.next().unwrap_or_default(),
            event_chunks.next().unwrap_or_default(),
            last,
        );
        sqlx::query_with(AssertSqlSafe(text), SqlxValues(sea_query::Values(values)))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    let last_event_seq = h.event_seq;
    *heads = Some(h);
    Ok(last_event_seq)
}

/// One statement writing audit entries and events (their [`sql::audit_params`] and
/// [`sql::event_params`] rows) and, with `heads`, setting the tenant's head row: the inserts as
/// data-modifying `WITH` parts of the last one, which PostgreSQL runs exactly once each.
fn log_statement(
    tenant: Id,
    audit: &[Vec<sea_query::Value>],
    events: &[Vec<sea_query::Value>],
    heads: Option<&Heads>,
) -> (String, Vec<sea_query::Value>) {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    let mut next = 1;
    for (table, cols, rows) in [
        (schema::AUDIT_LOG, &sql::AUDIT_COLUMNS[..], audit),
        (schema::OUTBOX, &sql::EVENT_COLUMNS[..], events),
    ] {
        if !rows.is_empty() {
            parts.push(sql::pg_insert_values(table, cols, rows.len(), next));
            next += cols.len() * rows.len();
            values.extend(rows.iter().flatten().cloned());
        }
    }
    if let Some(h) = heads {
        parts.push(format!(
            "UPDATE \"{}\" SET \"audit_seq\" = ${}, \"audit_hash\" = ${}, \"event_seq\" = ${} WHERE \"org_id\" = ${}",
            schema::TENANT_HEADS,
            next,
            next + 1,
            next + 2,
            next + 3
        ));
        values.extend([
            sea_query::Value::BigInt(Some(h.audit_seq as i64)),
            sea_query::Value::String(Some(h.audit_hash.clone())),
            sea_query::Value::BigInt(Some(h.event_seq as i64)),
            sea_query::Value::Uuid(Some(tenant)),
        ]);
    }
    let main = parts.pop().unwrap_or_default();
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        text.push_str(if i == 0 { "WITH " } else { ", " });
        text.push_str(&format!("w{i} AS ({p})"));
    }
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(&main);
    (text, values)
}
