//! Decoding rows and the read queries, on any connection (pooled, or a bulk session's transaction).

use super::*;
use crate::rows::{self as log_row, BadColumn, RowAccess};
use serde_json::Value as Json;

/// The stored value of a column holding a field of type `ty` (not `Json`: see [`json_col`]).
pub(super) fn col<'r>(row: &'r PgRow, i: usize, ty: &FieldType) -> std::result::Result<Raw<'r>, sqlx::Error> {
    Ok(match ty {
        FieldType::Integer | FieldType::Money | FieldType::Decimal | FieldType::Timestamp => {
            row.try_get::<Option<i64>, _>(i)?.map_or(Raw::Null, Raw::Int)
        }
        FieldType::Number => row.try_get::<Option<f64>, _>(i)?.map_or(Raw::Null, Raw::Real),
        FieldType::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Raw::Null, Raw::Bool),
        FieldType::Ref(_) => row.try_get::<Option<Id>, _>(i)?.map_or(Raw::Null, Raw::Uuid),
        _ => row.try_get::<Option<&str>, _>(i)?.map_or(Raw::Null, Raw::Text),
    })
}

pub(super) fn json_col(row: &PgRow, i: usize) -> std::result::Result<Option<Json>, sqlx::Error> {
    row.try_get::<Option<Json>, _>(i)
}

pub(super) fn int_col(row: &PgRow, i: usize, table: &str, name: &str) -> Result<i64> {
    row.try_get::<i64, _>(i).map_err(|_| corrupt(table, name))
}

pub(super) fn text_col(row: &PgRow, i: usize, table: &str, name: &str) -> Result<String> {
    row.try_get::<String, _>(i).map_err(|_| corrupt(table, name))
}

pub(super) fn id_col(row: &PgRow, i: usize, table: &str, name: &str) -> Result<Option<Id>> {
    row.try_get::<Option<Id>, _>(i).map_err(|_| corrupt(table, name))
}

/// The log tables' columns as [`log_row`] decodes them.
impl RowAccess for PgRow {
    fn int(&self, i: usize) -> Option<i64> {
        self.try_get::<i64, _>(i).ok()
    }

    fn text(&self, i: usize) -> Option<String> {
        self.try_get::<String, _>(i).ok()
    }

    fn id(&self, i: usize) -> Option<Option<Id>> {
        self.try_get::<Option<Id>, _>(i).ok()
    }

    fn json(&self, i: usize) -> Option<Json> {
        json_col(self, i).ok().flatten()
    }
}

/// The storage error for a log table column that is not what the schema stores there.
fn bad(c: BadColumn) -> Error {
    corrupt(c.table, c.column)
}

/// A field value of type `ty` from column `i`.
pub(super) fn field(row: &PgRow, i: usize, ty: &FieldType, table: &str, name: &str) -> Result<crm_core::value::Value> {
    if *ty == FieldType::Json {
        return match json_col(row, i).map_err(|_| corrupt(table, name))? {
            None => Ok(crm_core::value::Value::Null),
            Some(j) => Ok(crm_core::value::Value::Json(j)),
        };
    }
    let raw = col(row, i, ty).map_err(|_| corrupt(table, name))?;
    sql::decode(ty, raw).ok_or_else(|| corrupt(table, name))
}

/// Decodes a row selected with [`sql::columns`].
pub(super) fn read_record(def: &'static EntityDef, tenant: Id, row: &PgRow) -> Result<Record> {
    let t = def.table;
    let id = id_col(row, 0, t, "id")?.ok_or_else(|| corrupt(t, "id"))?;
    let mut r = Record::empty(def, tenant, id, Timestamp(int_col(row, 2, t, "created_at")?));
    r.version = u64::try_from(int_col(row, 1, t, "version")?).map_err(|_| corrupt(t, "version"))?;
    r.updated_at = Timestamp(int_col(row, 3, t, "updated_at")?);
    for (i, f) in def.fields.iter().enumerate() {
        r.values[i] = field(row, FIRST_FIELD + i, &f.spec.ty, t, f.name)?;
    }
    if def.custom_fields {
        let c = json_col(row, FIRST_FIELD + def.fields.len()).map_err(|_| corrupt(t, schema::CUSTOM))?;
        if let Some(j) = c {
            r.custom = sql::decode_custom_json(j).ok_or_else(|| corrupt(t, schema::CUSTOM))?;
        }
    }
    Ok(r)
}

pub(super) fn entity_sql(def: &EntityDef) -> Result<&'static sql::EntitySql> {
    sql::entity_sql(B, def).ok_or_else(|| Error::internal(format!("unknown entity type {}", def.name)))
}

/// A statement built per call (filters, sorts): rendered for PostgreSQL with its values.
pub(super) fn built<'q>(text: String, values: sea_query::Values) -> sqlx::query::Query<'q, Postgres, SqlxValues> {
    sqlx::query_with(AssertSqlSafe(text), SqlxValues(values))
}

pub(super) async fn get_in(
    conn: &mut PgConnection,
    tenant: Id,
    def: &'static EntityDef,
    id: Id,
) -> Result<Option<Record>> {
    let row = sqlx::query(entity_sql(def)?.get.as_str())
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    row.map(|r| read_record(def, tenant, &r)).transpose()
}

pub(super) async fn query_in(
    conn: &mut PgConnection,
    tenant: Id,
    def: &'static EntityDef,
    q: &StoreQuery,
) -> Result<Vec<Record>> {
    let (text, values) = sql::select(def, tenant, q, B)?;
    let rows = built(text, values).fetch_all(conn).await.map_err(db)?;
    rows.iter().map(|r| read_record(def, tenant, r)).collect()
}

/// [`BulkWrite::ids`](crm_core::store::BulkWrite::ids): the ids of [`query_in`]'s rows.
pub(super) async fn ids_in(
    conn: &mut PgConnection,
    tenant: Id,
    def: &'static EntityDef,
    q: &StoreQuery,
) -> Result<Vec<Id>> {
    let (text, values) = sql::select_ids(def, tenant, q, B)?;
    let rows = built(text, values).fetch_all(conn).await.map_err(db)?;
    rows.iter()
        .map(|r| id_col(r, 0, def.table, "id")?.ok_or_else(|| corrupt(def.table, "id")))
        .collect()
}

pub(super) async fn count_in(
    conn: &mut PgConnection,
    tenant: Id,
    def: &'static EntityDef,
    filter: &Filter,
) -> Result<u64> {
    let (text, values) = B.build(&sql::count(def, tenant, filter, B)?);
    let row = built(text, values).fetch_one(conn).await.map_err(db)?;
    Ok(int_col(&row, 0, def.table, "count")?.max(0) as u64)
}

pub(super) async fn aggregate_in(
    conn: &mut PgConnection,
    tenant: Id,
    def: &'static EntityDef,
    q: &AggregateQuery,
) -> Result<Vec<Group>> {
    let a = sql::aggregate(def, tenant, q, B)?;
    let (text, values) = B.build(&a.select);
    let rows = built(text, values).fetch_all(conn).await.map_err(db)?;
    let t = def.table;
    let bad = || corrupt(t, "aggregate");
    let mut out = Vec::with_capacity(rows.len());
    let mut raws = Vec::with_capacity(a.cols.len());
    for row in &rows {
        raws.clear();
        for (i, c) in a.cols.iter().enumerate() {
            raws.push(match c {
                sql::AggCol::Field(ty) => col(row, i, ty).map_err(|_| bad())?,
                sql::AggCol::Text => col(row, i, &FieldType::Text).map_err(|_| bad())?,
                sql::AggCol::Int => col(row, i, &FieldType::Integer).map_err(|_| bad())?,
                sql::AggCol::Real => col(row, i, &FieldType::Number).map_err(|_| bad())?,
            });
        }
        out.push(a.group(&raws).ok_or_else(bad)??);
    }
    aggregate::sort_groups(&mut out);
    Ok(out)
}

/// [`Store::stamp`]: the rows of [`sql::stamp_select`] (measures as text) folded into one hash.
pub(super) async fn stamp_in(
    conn: &mut PgConnection,
    tenant: Id,
    entities: &[&'static EntityDef],
) -> Result<Option<u64>> {
    use std::hash::{Hash, Hasher};
    let Some(select) = sql::stamp_select(tenant, entities, B) else {
        return Ok(Some(0));
    };
    let (text, values) = B.build(&select);
    let rows = built(text, values).fetch_all(conn).await.map_err(db)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for row in &rows {
        for i in 1..5 {
            let v: Option<String> = row.try_get(i).map_err(db)?;
            v.hash(&mut h);
        }
    }
    Ok(Some(h.finish()))
}

pub(super) async fn audit_in(conn: &mut PgConnection, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let (text, values) = sql::audit_select(tenant, q, B);
    let rows = built(text, values).fetch_all(conn).await.map_err(db)?;
    rows.iter().map(|row| log_row::audit_entry(row).map_err(bad)).collect()
}

pub(super) async fn events_in(conn: &mut PgConnection, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = sqlx::query(sql::common_sql(B).events.as_str())
        .bind(tenant)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
        .map_err(db)?;
    rows.iter().map(|row| log_row::event(row).map_err(bad)).collect()
}

pub(super) async fn tenants_in(conn: &mut PgConnection) -> Result<Vec<Id>> {
    let rows = sqlx::query(sql::common_sql(B).tenants.as_str())
        .fetch_all(conn)
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.extend(log_row::tenant(row).map_err(bad)?);
    }
    Ok(out)
}

pub(super) async fn pending_in(conn: &mut PgConnection, tenant: Id, after: u64, limit: u32) -> Result<Vec<SyncEntry>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = sqlx::query(sql::sync_sql(B).pending.as_str())
        .bind(tenant)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
        .map_err(db)?;
    rows.iter().map(|row| log_row::sync_entry(row).map_err(bad)).collect()
}
