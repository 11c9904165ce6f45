//! The SELECTs of the read methods.

use super::filter::*;
use crate::Backend;
use crate::schema::{AUDIT_LOG, CUSTOM};
use crm_core::error::Result;
use crm_core::query::{Filter, StoreQuery};
use crm_core::schema::EntityDef;
use crm_core::value::Id;
use sea_query::{Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement, Value as SqlValue, Values};

/// The columns a record is read from, in the order [`decode`] expects them: `id`, `version`,
/// `created_at`, `updated_at`, the declared fields, then `custom` when the entity has custom fields.
pub fn columns(def: &EntityDef) -> Vec<&'static str> {
    let mut c = vec!["id", "version", "created_at", "updated_at"];
    c.extend(def.fields.iter().map(|f| f.name));
    if def.custom_fields {
        c.push(CUSTOM);
    }
    c
}

/// Position of the first declared field in [`columns`].
pub const FIRST_FIELD: usize = 4;

pub(super) fn tenant_is(tenant: Id) -> Expr {
    Expr::col("org_id").eq(SqlValue::Uuid(Some(tenant)))
}

pub(super) fn filtered(def: &EntityDef, tenant: Id, filter: &Filter, backend: Backend) -> Result<SelectStatement> {
    let mut s = Query::select();
    s.from(def.table).and_where(tenant_is(tenant));
    if *filter != Filter::All {
        s.and_where(condition(def, filter, backend)?);
    }
    Ok(s)
}

/// `SELECT <columns> ... WHERE org_id = ? AND <filter> ORDER BY <sort>, id LIMIT <n>`, rendered.
pub fn select(def: &EntityDef, tenant: Id, q: &StoreQuery, backend: Backend) -> Result<(String, Values)> {
    let mut s = ordered(def, tenant, q, backend)?;
    s.columns(columns(def));
    Ok(limited(&s, q.limit, backend))
}

/// `SELECT id ...`: the rows [`select`] finds, in its order, without reading them. Where an index
/// holds the filter's columns (a primary key range, `id IN (...)`), the table is not read at all.
pub fn select_ids(def: &EntityDef, tenant: Id, q: &StoreQuery, backend: Backend) -> Result<(String, Values)> {
    let mut s = ordered(def, tenant, q, backend)?;
    s.column("id");
    Ok(limited(&s, q.limit, backend))
}

/// A query's text with its row limit written in, not bound: SQLite (3.51) plans a `LIMIT ?` with the
/// value bound at the time, so binding it again expires the statement, and every run of a cached
/// statement was parsed and planned anew (a page of 50: 11 µs against 6 µs; a thousand-id `IN` list:
/// 660 µs against 430 µs, measured on the bundled SQLite). The text then differs per limit, and the
/// statement cache keeps one per limit in use.
fn limited(s: &SelectStatement, limit: u32, backend: Backend) -> (String, Values) {
    let (mut text, values) = backend.build(s);
    text.push_str(" LIMIT ");
    text.push_str(&limit.to_string());
    (text, values)
}

/// The filter and order of [`select`] and [`select_ids`], without columns or limit.
fn ordered(def: &EntityDef, tenant: Id, q: &StoreQuery, backend: Backend) -> Result<SelectStatement> {
    let mut s = filtered(def, tenant, &q.filter, backend)?;
    let mut by_id = false;
    for k in &q.sort {
        let t = target(def, &k.field)?;
        by_id |= matches!(t, Target::Column { name: "id", .. });
        let (order, nulls) = if k.desc {
            (Order::Desc, NullOrdering::Last)
        } else {
            (Order::Asc, NullOrdering::First)
        };
        match (&t, backend) {
            (Target::Custom(k), Backend::Postgres) => {
                for e in pg_sort_keys(k)? {
                    s.order_by_expr_with_nulls(e, order.clone(), nulls);
                }
            }
            _ => {
                s.order_by_expr_with_nulls(target_expr(&t, backend)?, order.clone(), nulls);
            }
        }
        if by_id {
            break;
        }
    }
    if !by_id {
        // The in-memory order is a stable sort of rows in id order: ties go by id.
        s.order_by_expr_with_nulls(Expr::col("id"), Order::Asc, NullOrdering::First);
    }
    Ok(s)
}

/// `SELECT COUNT(*) ... WHERE org_id = ? AND <filter>`.
pub fn count(def: &EntityDef, tenant: Id, filter: &Filter, backend: Backend) -> Result<SelectStatement> {
    let mut s = filtered(def, tenant, filter, backend)?;
    s.expr(Expr::col(sea_query::Asterisk).count());
    Ok(s)
}

/// The fingerprint of [`crm_core::store::Store::stamp`]: per entity type, in the order given, one row
/// `(position, COUNT(*), SUM(version), MAX(id), MAX(updated_at))` of the tenant's rows, the tables
/// joined with `UNION ALL` and ordered by position. Each part is a range of the primary key
/// `(org_id, id)`.
pub fn stamp_select(tenant: Id, entities: &[&'static EntityDef], backend: Backend) -> Option<SelectStatement> {
    // PostgreSQL reads every measure as text (it has no MAX of a uuid, and SUM of a bigint is a
    // numeric); SQLite as stored.
    let measures: [&str; 4] = match backend {
        Backend::Postgres => [
            "COUNT(*)::text",
            "COALESCE(SUM(version), 0)::text",
            "MAX(id::text)",
            "MAX(updated_at)::text",
        ],
        Backend::Sqlite => ["COUNT(*)", "COALESCE(SUM(version), 0)", "MAX(id)", "MAX(updated_at)"],
    };
    let part = |i: usize, def: &EntityDef| {
        let mut s = Query::select();
        // The position as a literal: a bound parameter has no type in a UNION on PostgreSQL.
        s.expr(Expr::cust(i.to_string()));
        for m in measures {
            s.expr(Expr::cust(m));
        }
        s.from(def.table).and_where(tenant_is(tenant));
        s
    };
    let (first, rest) = entities.split_first()?;
    let mut s = part(0, first);
    for (i, def) in rest.iter().enumerate() {
        s.union(sea_query::UnionType::All, part(i + 1, def));
    }
    s.order_by_expr(Expr::cust("1"), Order::Asc);
    Some(s)
}

/// Audit entries of a tenant after `after_seq`, optionally of one entity type and record, rendered
/// with the limit in the text as [`select`] does.
pub fn audit_select(tenant: Id, q: &crm_core::store::AuditQuery, backend: Backend) -> (String, Values) {
    let mut s = Query::select();
    s.columns(AUDIT_COLUMNS)
        .from(AUDIT_LOG)
        .and_where(tenant_is(tenant))
        .and_where(Expr::col("seq").gt(q.after_seq as i64));
    if let Some(e) = &q.entity {
        s.and_where(Expr::col("entity").eq(e.as_str()));
    }
    if let Some(id) = q.entity_id {
        s.and_where(Expr::col("entity_id").eq(SqlValue::Uuid(Some(id))));
    }
    s.order_by("seq", Order::Asc);
    limited(&s, q.limit, backend)
}

/// Columns of an audit entry, in the order [`insert_audit`](super::CommonSql::insert_audit) binds them.
pub const AUDIT_COLUMNS: [&str; 11] = [
    "org_id",
    "seq",
    "id",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "changes",
    "prev_hash",
    "hash",
];

/// Columns of an outbox event.
pub const EVENT_COLUMNS: [&str; 8] = ["org_id", "seq", "id", "at", "kind", "entity", "entity_id", "payload"];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crm_core::entity::LEAD;
    use crm_core::query::{SortKey, keyset_after};
    use crm_core::value::Value;

    fn where_clause(f: Filter) -> String {
        let q = StoreQuery {
            filter: f,
            sort: vec![SortKey::desc("id")],
            limit: 10,
        };
        let (sql, _) = select(&LEAD, Id::nil(), &q, Backend::Sqlite).unwrap();
        let from = sql.find(" WHERE ").unwrap();
        sql[from..sql.find(" ORDER BY ").unwrap()].to_owned()
    }

    #[test]
    fn a_cursor_after_a_descending_key_is_an_index_range_on_system_columns_only() {
        let last = Id::from_u128(7);
        // What a cursor after a descending id reads: a plain range (ids are never null).
        let after = keyset_after(&[SortKey::desc("id")], &[Value::Id(last)]);
        assert_eq!(where_clause(after), " WHERE \"org_id\" = ? AND \"id\" < ?");
        // Declared fields may be null: after a descending score the nulls (sorted last) still follow.
        let after = keyset_after(
            &[SortKey::desc("score"), SortKey::desc("id")],
            &[Value::Int(5), Value::Id(last)],
        );
        assert!(where_clause(after).contains("\"score\" IS NULL"));
    }
}
