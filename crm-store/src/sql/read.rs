//! The SELECTs of the read methods.

use super::filter::*;
use super::value::*;
use crate::Backend;
use crate::schema::{AUDIT_LOG, CUSTOM};
use crm_core::error::{Error, Result};
use crm_core::query::{Filter, StoreQuery};
use crm_core::schema::{EntityDef, FieldRef, SystemField};
use crm_core::value::{FieldType, Id, Value};
use sea_query::{Expr, ExprTrait, Func, NullOrdering, Order, Query, SelectStatement, Value as SqlValue};

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

/// `SELECT <columns> ... WHERE org_id = ? AND <filter> ORDER BY <sort>, id LIMIT ?`.
pub fn select(def: &EntityDef, tenant: Id, q: &StoreQuery, backend: Backend) -> Result<SelectStatement> {
    let mut s = filtered(def, tenant, &q.filter, backend)?;
    s.columns(columns(def));
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
    s.limit(u64::from(q.limit));
    Ok(s)
}

/// `SELECT COUNT(*) ... WHERE org_id = ? AND <filter>`.
pub fn count(def: &EntityDef, tenant: Id, filter: &Filter, backend: Backend) -> Result<SelectStatement> {
    let mut s = filtered(def, tenant, filter, backend)?;
    s.expr(Expr::col(sea_query::Asterisk).count());
    Ok(s)
}

/// How to read the group key of an aggregate back.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupKey {
    /// A column of this type.
    Column(FieldType),
    /// A custom field: the key column is the value's JSON text, the next one its type tag.
    Custom,
}

impl GroupKey {
    /// Decodes the key from its column(s).
    pub fn decode(&self, key: Raw<'_>, tag: Raw<'_>) -> Option<Value> {
        match self {
            GroupKey::Column(ty) => decode(ty, key),
            GroupKey::Custom => match key {
                Raw::Null => Some(Value::Null),
                Raw::Text(s) => {
                    let tag = match tag {
                        Raw::Text(t) => Some(t),
                        _ => None,
                    };
                    custom_from_json(&serde_json::from_str(s).ok()?, tag)
                }
                _ => None,
            },
        }
    }
}

/// `SELECT key, COUNT(*), COALESCE(SUM(sum), 0), [tag] ... GROUP BY key`. The sum adds integer and
/// money values only (others count as 0, as in memory). Groups come back unordered: sort them with
/// [`Value::sort_cmp`].
pub fn aggregate(
    def: &EntityDef,
    tenant: Id,
    filter: &Filter,
    group_by: &str,
    sum: Option<&str>,
    backend: Backend,
) -> Result<(SelectStatement, GroupKey)> {
    let mut s = filtered(def, tenant, filter, backend)?;
    let g = def
        .resolve(group_by)
        .ok_or_else(|| Error::invalid_query(format!("no field {group_by}"), 0))?;
    // The key as selected, and as grouped by (PostgreSQL groups JSON values, selects their text).
    let (key_expr, group_expr, key) = match (&g, backend) {
        (FieldRef::Custom(k), Backend::Sqlite) => {
            let e = Expr::cust(format!("(\"{CUSTOM}\" -> {})", custom_path(k)?));
            (e.clone(), e, GroupKey::Custom)
        }
        (FieldRef::Custom(k), Backend::Postgres) => {
            let j = pg_typed(k, JsonAs::Json)?;
            (Expr::cust(format!("({j})::text")), Expr::cust(j), GroupKey::Custom)
        }
        (other, _) => {
            let ty = def.type_of(other).unwrap_or(FieldType::Text);
            let name = match other {
                FieldRef::System(sf) => sf.name(),
                FieldRef::Declared(i) => def.fields[*i].name,
                FieldRef::Custom(_) => unreachable!("handled above"),
            };
            (Expr::col(name), Expr::col(name), GroupKey::Column(ty))
        }
    };
    let sum_expr = match sum.map(|f| {
        def.resolve(f)
            .ok_or_else(|| Error::invalid_query(format!("no field {f}"), 0))
    }) {
        None => Expr::val(0i64),
        Some(r) => match r? {
            FieldRef::System(SystemField::Version) => Expr::col("version").sum(),
            FieldRef::Declared(i) if matches!(def.fields[i].spec.ty, FieldType::Integer | FieldType::Money) => {
                Expr::col(def.fields[i].name).sum()
            }
            FieldRef::Custom(k) if backend == Backend::Sqlite => {
                let path = custom_path(&k)?;
                Expr::cust(format!(
                    "SUM(CASE WHEN json_type(\"{CUSTOM}\", {path}) = 'integer' \
                     AND coalesce(json_extract(\"{CUSTOM}\", {tag}), 'money') = 'money' \
                     THEN json_extract(\"{CUSTOM}\", {path}) ELSE 0 END)",
                    tag = custom_tag_path(&k)
                ))
            }
            FieldRef::Custom(k) => {
                // Integers are JSON numbers spelled without a fraction or exponent.
                let j = pg_json(&k)?;
                Expr::cust(format!(
                    "SUM(CASE WHEN jsonb_typeof({j}) = 'number' AND ({j})::text ~ '^-?[0-9]+$' \
                     AND coalesce({tag}, 'money') = 'money' THEN ({j})::numeric ELSE 0 END)",
                    tag = pg_tag(&k)?
                ))
            }
            _ => Expr::val(0i64),
        },
    };
    let sum = Func::coalesce([sum_expr, Expr::val(0i64)]);
    s.expr(key_expr)
        .expr(Expr::col(sea_query::Asterisk).count())
        .expr(match backend {
            Backend::Sqlite => sum.into(),
            // PostgreSQL sums bigints as numeric.
            Backend::Postgres => Expr::cust_with_expr("CAST($1 AS bigint)", sum),
        });
    if let FieldRef::Custom(k) = &g {
        s.expr(Expr::cust(match backend {
            Backend::Sqlite => format!("max(json_extract(\"{CUSTOM}\", {}))", custom_tag_path(k)),
            Backend::Postgres => format!("max({})", pg_tag(k)?),
        }));
    }
    s.add_group_by([group_expr]);
    Ok((s, key))
}

/// Audit entries of a tenant after `after_seq`, optionally of one entity type and record.
pub fn audit_select(tenant: Id, q: &crm_core::store::AuditQuery) -> SelectStatement {
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
    s.order_by("seq", Order::Asc).limit(u64::from(q.limit));
    s
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

    fn where_clause(f: Filter) -> String {
        let q = StoreQuery {
            filter: f,
            sort: vec![SortKey::desc("id")],
            limit: 10,
        };
        let (sql, _) = Backend::Sqlite.build(&select(&LEAD, Id::nil(), &q, Backend::Sqlite).unwrap());
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
