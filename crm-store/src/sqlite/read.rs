//! Decoding rows and the read queries, on any connection (readers, or the writer inside a bulk session).

use super::*;
use crate::rows::{self as log_row, BadColumn, RowAccess};
use crm_core::value::{FieldType, Money, Value};

pub(super) fn raw(v: ValueRef<'_>) -> Option<Raw<'_>> {
    Some(match v {
        ValueRef::Null => Raw::Null,
        ValueRef::Integer(i) => Raw::Int(i),
        ValueRef::Real(f) => Raw::Real(f),
        ValueRef::Text(t) => Raw::Text(std::str::from_utf8(t).ok()?),
        ValueRef::Blob(b) => Raw::Blob(b),
    })
}

pub(super) fn col<'r>(row: &'r Row<'_>, i: usize, table: &str, name: &str) -> Result<Raw<'r>> {
    let v = row.get_ref(i).map_err(db)?;
    raw(v).ok_or_else(|| corrupt(table, name))
}

pub(super) fn int_col(row: &Row<'_>, i: usize, table: &str, name: &str) -> Result<i64> {
    match col(row, i, table, name)? {
        Raw::Int(v) => Ok(v),
        _ => Err(corrupt(table, name)),
    }
}

pub(super) fn id_col(row: &Row<'_>, i: usize, table: &str, name: &str) -> Result<Option<Id>> {
    match col(row, i, table, name)? {
        Raw::Null => Ok(None),
        r => sql::uuid(r).map(Some).ok_or_else(|| corrupt(table, name)),
    }
}

/// The log tables' columns as [`log_row`] decodes them.
impl RowAccess for Row<'_> {
    fn int(&self, i: usize) -> Option<i64> {
        match self.get_ref(i).ok()? {
            ValueRef::Integer(v) => Some(v),
            _ => None,
        }
    }

    fn text(&self, i: usize) -> Option<String> {
        match self.get_ref(i).ok()? {
            ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
            _ => None,
        }
    }

    fn id(&self, i: usize) -> Option<Option<Id>> {
        match raw(self.get_ref(i).ok()?)? {
            Raw::Null => Some(None),
            r => sql::uuid(r).map(Some),
        }
    }

    fn json(&self, i: usize) -> Option<serde_json::Value> {
        match self.get_ref(i).ok()? {
            ValueRef::Text(t) => serde_json::from_slice(t).ok(),
            _ => None,
        }
    }
}

/// The storage error for a log table column that is not what the schema stores there.
fn bad(c: BadColumn) -> Error {
    corrupt(c.table, c.column)
}

/// Appends a declared field's value, read from its column: what [`sql::decode`] reads, with the
/// common cases (nulls, text, integers, ids) taken straight from the driver's value and built in
/// place (bulk reads decode tens of millions). `false` when the stored value is not what the type
/// stores.
#[inline]
fn push_field(values: &mut Vec<Value>, row: &Row<'_>, i: usize, ty: &FieldType) -> bool {
    let Ok(v) = row.get_ref(i) else {
        return false;
    };
    match (ty, v) {
        (_, ValueRef::Null) => values.push(Value::Null),
        (
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Enum,
            ValueRef::Text(s),
        ) => match std::str::from_utf8(s) {
            Ok(s) => values.push(Value::Text(s.to_owned())),
            Err(_) => return false,
        },
        (FieldType::Integer, ValueRef::Integer(n)) => values.push(Value::Int(n)),
        (FieldType::Money, ValueRef::Integer(n)) => values.push(Value::Money(Money(n))),
        (FieldType::Timestamp, ValueRef::Integer(n)) => values.push(Value::Timestamp(Timestamp(n))),
        (FieldType::Ref(_), ValueRef::Blob(b)) => match <[u8; 16]>::try_from(b) {
            Ok(bytes) => values.push(Value::Id(Id::from_bytes(bytes))),
            Err(_) => return false,
        },
        (ty, v) => match raw(v).and_then(|r| sql::decode(ty, r)) {
            Some(x) => values.push(x),
            None => return false,
        },
    }
    true
}

/// Decodes a row selected with [`sql::columns`].
pub(super) fn read_record(def: &'static EntityDef, tenant: Id, row: &Row<'_>) -> Result<Record> {
    let t = def.table;
    let id = id_col(row, 0, t, "id")?.ok_or_else(|| corrupt(t, "id"))?;
    let version = u64::try_from(int_col(row, 1, t, "version")?).map_err(|_| corrupt(t, "version"))?;
    let created_at = Timestamp(int_col(row, 2, t, "created_at")?);
    let updated_at = Timestamp(int_col(row, 3, t, "updated_at")?);
    // Bulk reads decode millions of rows: each value is pushed as decoded (no null-filled vector
    // to overwrite), into a vector allocated once at its final size.
    let mut values = Vec::with_capacity(def.fields.len());
    for (i, f) in def.fields.iter().enumerate() {
        if !push_field(&mut values, row, FIRST_FIELD + i, &f.spec.ty) {
            return Err(corrupt(t, f.name));
        }
    }
    let mut custom = std::collections::BTreeMap::new();
    if def.custom_fields {
        match col(row, FIRST_FIELD + def.fields.len(), t, schema::CUSTOM)? {
            Raw::Null => {}
            Raw::Text(s) => custom = sql::decode_custom(s).ok_or_else(|| corrupt(t, schema::CUSTOM))?,
            _ => return Err(corrupt(t, schema::CUSTOM)),
        }
    }
    Ok(Record {
        entity: def,
        id,
        tenant,
        version,
        created_at,
        updated_at,
        values,
        custom,
        hidden: 0,
        computed: Vec::new(),
    })
}

pub(super) fn bind(values: Vec<sea_query::Value>) -> Vec<RusqliteValue> {
    values.into_iter().map(RusqliteValue).collect()
}

pub(super) fn entity_sql(def: &EntityDef) -> Result<&'static sql::EntitySql> {
    sql::entity_sql(B, def).ok_or_else(|| Error::internal(format!("unknown entity type {}", def.name)))
}

pub(super) fn get_in(conn: &Connection, tenant: Id, def: &'static EntityDef, id: Id) -> Result<Option<Record>> {
    let mut stmt = conn.prepare_cached(&entity_sql(def)?.get).map_err(db)?;
    let mut rows = stmt.query((tenant, id)).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => read_record(def, tenant, row).map(Some),
        None => Ok(None),
    }
}

pub(super) fn query_in(conn: &Connection, tenant: Id, def: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Record>> {
    rows_of(conn, sql::select(def, tenant, q, B)?, q.limit, |row| {
        read_record(def, tenant, row)
    })
}

/// [`BulkWrite::ids`](crm_core::store::BulkWrite::ids): the ids of [`query_in`]'s rows.
pub(super) fn ids_in(conn: &Connection, tenant: Id, def: &'static EntityDef, q: &StoreQuery) -> Result<Vec<Id>> {
    rows_of(conn, sql::select_ids(def, tenant, q, B)?, q.limit, |row| {
        id_col(row, 0, def.table, "id")?.ok_or_else(|| corrupt(def.table, "id"))
    })
}

/// Runs a rendered SELECT (cached) and decodes each of its at most `limit` rows.
fn rows_of<T>(
    conn: &Connection,
    (text, values): (String, sea_query::Values),
    limit: u32,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(&text).map_err(db)?;
    let mut rows = stmt.query(params_from_iter(bind(values.0))).map_err(db)?;
    let mut out = Vec::with_capacity(limit.min(512) as usize);
    while let Some(row) = rows.next().map_err(db)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

pub(super) fn count_in(conn: &Connection, tenant: Id, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
    let (text, values) = B.build(&sql::count(def, tenant, filter, B)?);
    let mut stmt = conn.prepare_cached(&text).map_err(db)?;
    let n: i64 = stmt
        .query_row(params_from_iter(bind(values.0)), |r| r.get(0))
        .map_err(db)?;
    Ok(n.max(0) as u64)
}

/// [`Store::stamp`]: the rows of [`sql::stamp_select`] folded into one hash.
pub(super) fn stamp_in(conn: &Connection, tenant: Id, entities: &[&'static EntityDef]) -> Result<Option<u64>> {
    use std::hash::{Hash, Hasher};
    let Some(select) = sql::stamp_select(tenant, entities, B) else {
        return Ok(Some(0));
    };
    let (text, values) = B.build(&select);
    let mut stmt = conn.prepare_cached(&text).map_err(db)?;
    let mut rows = stmt.query(params_from_iter(bind(values.0))).map_err(db)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    while let Some(row) = rows.next().map_err(db)? {
        for i in 0..5 {
            match row.get_ref(i).map_err(db)? {
                ValueRef::Null => 0u8.hash(&mut h),
                ValueRef::Integer(v) => (1u8, v).hash(&mut h),
                ValueRef::Real(v) => (2u8, v.to_bits()).hash(&mut h),
                ValueRef::Text(t) | ValueRef::Blob(t) => (3u8, t).hash(&mut h),
            }
        }
    }
    Ok(Some(h.finish()))
}

pub(super) fn aggregate_in(
    conn: &Connection,
    tenant: Id,
    def: &'static EntityDef,
    q: &AggregateQuery,
) -> Result<Vec<Group>> {
    let a = sql::aggregate(def, tenant, q, B)?;
    let (text, values) = B.build(&a.select);
    let mut stmt = conn.prepare_cached(&text).map_err(db)?;
    let mut rows = stmt.query(params_from_iter(bind(values.0))).map_err(db)?;
    let mut out = Vec::new();
    let t = def.table;
    while let Some(row) = rows.next().map_err(db)? {
        let raws = (0..a.cols.len())
            .map(|i| col(row, i, t, "aggregate"))
            .collect::<Result<Vec<_>>>()?;
        out.push(a.group(&raws).ok_or_else(|| corrupt(t, "aggregate"))??);
    }
    aggregate::sort_groups(&mut out);
    Ok(out)
}

pub(super) fn audit_in(conn: &Connection, tenant: Id, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    rows_of(conn, sql::audit_select(tenant, q, B), q.limit, |row| {
        log_row::audit_entry(row).map_err(bad)
    })
}

pub(super) fn events_in(conn: &Connection, tenant: Id, after: u64, limit: u32) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(&sql::common_sql(B).events).map_err(db)?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut rows = stmt.query((tenant, after, i64::from(limit))).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(log_row::event(row).map_err(bad)?);
    }
    Ok(out)
}

pub(super) fn pending_in(conn: &Connection, tenant: Id, after: u64, limit: u32) -> Result<Vec<SyncEntry>> {
    let mut stmt = conn.prepare_cached(&sql::sync_sql(B).pending).map_err(db)?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut rows = stmt.query((tenant, after, i64::from(limit))).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(log_row::sync_entry(row).map_err(bad)?);
    }
    Ok(out)
}

pub(super) fn audit_head_in(conn: &Connection, tenant: Id) -> Result<AuditHead> {
    let head: Option<(i64, String)> = conn
        .prepare_cached(&sql::common_sql(B).heads)
        .and_then(|mut s| s.query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db)?;
    Ok(head.map_or_else(AuditHead::default, |(seq, hash)| AuditHead {
        seq: seq.max(0) as u64,
        hash,
    }))
}

pub(super) fn tenants_in(conn: &Connection) -> Result<Vec<Id>> {
    let mut stmt = conn.prepare_cached(&sql::common_sql(B).tenants).map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.extend(log_row::tenant(row).map_err(bad)?);
    }
    Ok(out)
}
