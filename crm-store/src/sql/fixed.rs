//! The fixed statements (built once per backend, cached as SQL text) and their parameters.

use super::read::*;
use super::value::*;
use crate::Backend;
use crate::schema::{AUDIT_LOG, OUTBOX, TENANT_HEADS};
use crm_core::change::{AuditEntry, Event};
use crm_core::entity;
use crm_core::error::{Error, Result};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::value::{Id, Value};
use sea_query::{Expr, ExprTrait, Order, Query, Value as SqlValue};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The hot statements of one entity type, as SQL text with positional parameters.
#[derive(Clone, Debug)]
pub struct EntitySql {
    /// `SELECT <columns> FROM t WHERE org_id = ? AND id = ?`.
    pub get: String,
    /// `INSERT INTO t (org_id, id, version, created_at, updated_at, <fields>, [custom]) VALUES (...)`;
    /// parameters from [`insert_params`]. The PostgreSQL store writes many rows a statement instead
    /// ([`pg_insert_values`]).
    pub insert: String,
    /// `UPDATE t SET version, created_at, updated_at, <fields>, [custom] WHERE org_id AND id AND
    /// version`; parameters from [`update_params`].
    pub update: String,
    /// `DELETE FROM t WHERE org_id = ? AND id = ? AND version = ?`.
    pub delete: String,
    /// `SELECT version FROM t WHERE org_id = ? AND id = ?`.
    pub version: String,
}

/// The fixed statements shared by all entities.
#[derive(Clone, Debug)]
pub struct CommonSql {
    /// `SELECT audit_seq, audit_hash, event_seq FROM tenant_heads WHERE org_id = ?`.
    pub heads: String,
    /// `INSERT INTO tenant_heads (org_id, audit_seq, audit_hash, event_seq) VALUES (?, ?, ?, ?)`.
    pub insert_heads: String,
    /// `UPDATE tenant_heads SET audit_seq = ?, audit_hash = ?, event_seq = ? WHERE org_id = ?`.
    pub update_heads: String,
    /// Parameters from [`audit_params`].
    pub insert_audit: String,
    /// Parameters from [`event_params`].
    pub insert_event: String,
    /// `SELECT <event columns> FROM outbox WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?`.
    pub events: String,
    /// `SELECT DISTINCT org_id FROM organizations ORDER BY org_id`.
    pub tenants: String,
}

struct Cache {
    entities: HashMap<&'static str, EntitySql>,
    common: CommonSql,
}

fn cache(backend: Backend) -> &'static Cache {
    static SQLITE: OnceLock<Cache> = OnceLock::new();
    static POSTGRES: OnceLock<Cache> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| Cache {
        entities: entity::all()
            .into_iter()
            .map(|d| (d.table, build_entity_sql(d, backend)))
            .collect(),
        common: build_common_sql(backend),
    })
}

/// The cached statements of an entity type (`None` for a type not in [`entity::all`]).
pub fn entity_sql(backend: Backend, def: &EntityDef) -> Option<&'static EntitySql> {
    cache(backend).entities.get(def.table)
}

pub fn common_sql(backend: Backend) -> &'static CommonSql {
    &cache(backend).common
}

/// Any value: the statements are rendered for their text, the parameters are bound separately.
fn p() -> SqlValue {
    SqlValue::BigInt(None)
}

fn by_key() -> [Expr; 2] {
    [Expr::col("org_id").eq(p()), Expr::col("id").eq(p())]
}

fn build_entity_sql(def: &EntityDef, backend: Backend) -> EntitySql {
    let [org, id] = by_key();
    let get = Query::select()
        .columns(columns(def))
        .from(def.table)
        .and_where(org.clone())
        .and_where(id.clone())
        .to_owned();
    let version = Query::select()
        .column("version")
        .from(def.table)
        .and_where(org.clone())
        .and_where(id.clone())
        .to_owned();
    let cols = insert_columns(def);
    let insert = Query::insert()
        .into_table(def.table)
        .columns(cols.clone())
        .values_panic(cols.iter().map(|_| p().into()))
        .to_owned();
    let mut update = Query::update();
    update.table(def.table);
    for c in cols.iter().skip(2) {
        update.value(*c, p());
    }
    update
        .and_where(org.clone())
        .and_where(id.clone())
        .and_where(Expr::col("version").eq(p()));
    let delete = Query::delete()
        .from_table(def.table)
        .and_where(org)
        .and_where(id)
        .and_where(Expr::col("version").eq(p()))
        .to_owned();
    EntitySql {
        get: backend.build(&get).0,
        insert: backend.build(&insert).0,
        update: backend.build(&update).0,
        delete: backend.build(&delete).0,
        version: backend.build(&version).0,
    }
}

fn build_common_sql(backend: Backend) -> CommonSql {
    let org = || Expr::col("org_id").eq(p());
    let heads = Query::select()
        .columns(["audit_seq", "audit_hash", "event_seq"])
        .from(TENANT_HEADS)
        .and_where(org())
        .to_owned();
    let head_cols = ["org_id", "audit_seq", "audit_hash", "event_seq"];
    let insert_heads = Query::insert()
        .into_table(TENANT_HEADS)
        .columns(head_cols)
        .values_panic(head_cols.map(|_| p().into()))
        .to_owned();
    let update_heads = Query::update()
        .table(TENANT_HEADS)
        .values([
            ("audit_seq", p().into()),
            ("audit_hash", p().into()),
            ("event_seq", p().into()),
        ])
        .and_where(org())
        .to_owned();
    let insert_audit = Query::insert()
        .into_table(AUDIT_LOG)
        .columns(AUDIT_COLUMNS)
        .values_panic(AUDIT_COLUMNS.map(|_| p().into()))
        .to_owned();
    let insert_event = Query::insert()
        .into_table(OUTBOX)
        .columns(EVENT_COLUMNS)
        .values_panic(EVENT_COLUMNS.map(|_| p().into()))
        .to_owned();
    let events = Query::select()
        .columns(EVENT_COLUMNS)
        .from(OUTBOX)
        .and_where(org())
        .and_where(Expr::col("seq").gt(p()))
        .order_by("seq", Order::Asc)
        .limit(0)
        .to_owned();
    let tenants = Query::select()
        .column("org_id")
        .distinct()
        .from(entity::ORGANIZATION.table)
        .order_by("org_id", Order::Asc)
        .to_owned();
    CommonSql {
        heads: backend.build(&heads).0,
        insert_heads: backend.build(&insert_heads).0,
        update_heads: backend.build(&update_heads).0,
        insert_audit: backend.build(&insert_audit).0,
        insert_event: backend.build(&insert_event).0,
        events: backend.build(&events).0,
        tenants: backend.build(&tenants).0,
    }
}

/// The columns [`EntitySql::insert`] and [`insert_params`] write, in order.
pub fn insert_columns(def: &EntityDef) -> Vec<&'static str> {
    let mut cols = vec!["org_id", "id"];
    cols.extend(columns(def).into_iter().skip(1));
    cols
}

/// PostgreSQL: `INSERT INTO <table> (<columns>) VALUES ($n, ...), ...` of `rows` rows whose
/// parameters are numbered from `first`; the caller adds what follows (a conflict clause).
pub fn pg_insert_values(table: &str, cols: &[&str], rows: usize, first: usize) -> String {
    use std::fmt::Write as _;
    let mut out = format!("INSERT INTO \"{table}\" (");
    for (i, c) in cols.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}\"{c}\"");
    }
    out.push_str(") VALUES ");
    let mut n = first;
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols.len() {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}${n}");
            n += 1;
        }
        out.push(')');
    }
    out
}

/// The record's stored values after `org_id, id` (or after nothing, for updates): `version`,
/// `created_at`, `updated_at`, the declared fields, `custom`.
fn row_values(r: &Record, backend: Backend, out: &mut Vec<SqlValue>) {
    out.push(SqlValue::BigInt(Some(r.version as i64)));
    out.push(SqlValue::BigInt(Some(r.created_at.0)));
    out.push(SqlValue::BigInt(Some(r.updated_at.0)));
    for (f, v) in r.entity.fields.iter().zip(&r.values) {
        out.push(field_value(&f.spec.ty, v, backend));
    }
    if r.entity.custom_fields {
        out.push(match backend {
            Backend::Sqlite => SqlValue::String(encode_custom(&r.custom)),
            Backend::Postgres => SqlValue::Json(custom_object(&r.custom).map(Box::new)),
        });
    }
}

/// Parameters of [`EntitySql::insert`].
pub fn insert_params(tenant: Id, r: &Record, backend: Backend) -> Vec<SqlValue> {
    let mut out = Vec::with_capacity(r.values.len() + 6);
    out.push(SqlValue::Uuid(Some(tenant)));
    out.push(SqlValue::Uuid(Some(r.id)));
    row_values(r, backend, &mut out);
    out
}

/// Parameters of [`EntitySql::update`].
pub fn update_params(tenant: Id, r: &Record, expected_version: u64, backend: Backend) -> Vec<SqlValue> {
    let mut out = Vec::with_capacity(r.values.len() + 7);
    row_values(r, backend, &mut out);
    out.push(SqlValue::Uuid(Some(tenant)));
    out.push(SqlValue::Uuid(Some(r.id)));
    out.push(SqlValue::BigInt(Some(expected_version as i64)));
    out
}

/// `UPDATE t SET <fields> WHERE org_id = ? AND id = ? AND version = ?` for derived fields (built per
/// call: the field set varies).
pub fn derived_update(
    def: &EntityDef,
    tenant: Id,
    id: Id,
    expected_version: u64,
    fields: &[(usize, Value)],
    backend: Backend,
) -> Result<(String, sea_query::Values)> {
    let mut u = Query::update();
    u.table(def.table);
    for (i, v) in fields {
        let f = def
            .fields
            .get(*i)
            .ok_or_else(|| Error::internal(format!("{} has no field #{i}", def.name)))?;
        u.value(f.name, field_value(&f.spec.ty, v, backend));
    }
    u.and_where(tenant_is(tenant))
        .and_where(Expr::col("id").eq(SqlValue::Uuid(Some(id))))
        .and_where(Expr::col("version").eq(expected_version as i64));
    Ok(backend.build(&u))
}

/// Parameters of [`CommonSql::insert_audit`].
pub fn audit_params(tenant: Id, a: &AuditEntry, backend: Backend) -> Vec<SqlValue> {
    // Text straight from the changes on SQLite (an import writes one entry per row); a JSON tree
    // only where the driver binds one.
    let changes = match backend {
        Backend::Sqlite => SqlValue::String(serde_json::to_string(&a.changes).ok()),
        Backend::Postgres => SqlValue::Json(serde_json::to_value(&a.changes).ok().map(Box::new)),
    };
    vec![
        SqlValue::Uuid(Some(tenant)),
        SqlValue::BigInt(Some(a.seq as i64)),
        SqlValue::Uuid(Some(a.id)),
        SqlValue::BigInt(Some(a.at.0)),
        SqlValue::Uuid(a.actor),
        SqlValue::String(Some(a.action.clone())),
        SqlValue::String(Some(a.entity.clone())),
        SqlValue::Uuid(a.entity_id),
        changes,
        SqlValue::String(Some(a.prev_hash.clone())),
        SqlValue::String(Some(a.hash.clone())),
    ]
}

/// Parameters of [`CommonSql::insert_event`].
pub fn event_params(tenant: Id, e: &Event, backend: Backend) -> Vec<SqlValue> {
    vec![
        SqlValue::Uuid(Some(tenant)),
        SqlValue::BigInt(Some(e.seq as i64)),
        SqlValue::Uuid(Some(e.id)),
        SqlValue::BigInt(Some(e.at.0)),
        SqlValue::String(Some(e.kind.clone())),
        SqlValue::String(Some(e.entity.clone())),
        SqlValue::Uuid(e.entity_id),
        match backend {
            Backend::Sqlite => SqlValue::String(Some(e.payload.to_string())),
            Backend::Postgres => SqlValue::Json(Some(Box::new(e.payload.clone()))),
        },
    ]
}
