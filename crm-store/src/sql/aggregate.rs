//! The `GROUP BY` statement of an aggregate query ([`crm_core::query::aggregate`]) and the decoding
//! of its rows, shared by both backends: each backend only reads a column as [`Raw`] the way
//! [`AggCol`] says.
//!
//! Row layout: per key its column (a custom-field key adds its type tag), then `COUNT(*)`, then per
//! measure: nothing for a count, `SUM` for a sum, `SUM` and `COUNT` for an average (the core divides:
//! [`aggregate::average`]), `MIN` or `MAX`. Time buckets are computed in SQL as `YYYY-MM-DD` text with
//! the UTC offset written into the statement as a literal (so the `GROUP BY` expression is the
//! selected one), by the same integer arithmetic in both backends: the local day number is
//! `floor((t + offset) / day)`.

use super::filter::*;
use super::read::filtered;
use super::value::*;
use crate::Backend;
use crate::schema::CUSTOM;
use crm_core::error::Result;
use crm_core::query::aggregate::{self, AggregateQuery, Bucket, Fold, Group, KeyPlan, Plan};
use crm_core::schema::{EntityDef, FieldRef};
use crm_core::value::{FieldType, Id, Timestamp, Value};
use sea_query::{Expr, ExprTrait, SelectStatement};

/// How to read one column of an aggregate row.
#[derive(Clone, Debug, PartialEq)]
pub enum AggCol {
    /// A value stored as a field of this type (keys, buckets as `Date`, minimums and maximums).
    Field(FieldType),
    /// A custom-field key's JSON text, or its type tag (the next column): text.
    Text,
    /// A count, or a sum of an integer, money or decimal field (64-bit integer).
    Int,
    /// A sum of a number field (double).
    Real,
}

/// An aggregate statement with its plan and how to read each of its columns, in order.
#[derive(Clone, Debug)]
pub struct AggregateSql {
    pub select: SelectStatement,
    pub plan: Plan,
    pub cols: Vec<AggCol>,
}

/// The name of a column field (system or declared).
fn column(def: &EntityDef, f: &FieldRef) -> Option<&'static str> {
    match f {
        FieldRef::System(s) => Some(s.name()),
        FieldRef::Declared(i) => Some(def.fields[*i].name),
        FieldRef::Custom(_) => None,
    }
}

/// `SELECT keys, COUNT(*), measures ... WHERE org_id = ? AND <filter> GROUP BY keys`.
pub fn aggregate(def: &EntityDef, tenant: Id, q: &AggregateQuery, backend: Backend) -> Result<AggregateSql> {
    let plan = q.plan(def)?;
    let mut s = filtered(def, tenant, &q.filter, backend)?;
    let mut cols = Vec::new();
    let offset_us = i64::from(plan.offset.whole_seconds()) * 1_000_000;
    for k in &plan.keys {
        match (&k.field, backend) {
            (FieldRef::Custom(key), Backend::Sqlite) => {
                let e = Expr::cust(format!("(\"{CUSTOM}\" -> {})", custom_path(key)?));
                s.expr(e.clone()).add_group_by([e]);
                s.expr(Expr::cust(format!(
                    "max(json_extract(\"{CUSTOM}\", {}))",
                    custom_tag_path(key)
                )));
                cols.extend([AggCol::Text, AggCol::Text]);
            }
            (FieldRef::Custom(key), Backend::Postgres) => {
                // Grouped by the JSON value, selected as its text.
                let j = pg_typed(key, JsonAs::Json)?;
                s.expr(Expr::cust(format!("({j})::text"))).add_group_by([Expr::cust(j)]);
                s.expr(Expr::cust(format!("max({})", pg_tag(key)?)));
                cols.extend([AggCol::Text, AggCol::Text]);
            }
            (f, _) => {
                let name = column(def, f).unwrap_or("id");
                let e = match k.bucket {
                    None => Expr::col(name),
                    Some(b) => Expr::cust(bucket_sql(name, k, b, offset_us, backend)),
                };
                s.expr(e.clone()).add_group_by([e]);
                cols.push(match k.bucket {
                    None => AggCol::Field(k.ty.clone().unwrap_or(FieldType::Text)),
                    Some(_) => AggCol::Field(FieldType::Date),
                });
            }
        }
    }
    s.expr(Expr::col(sea_query::Asterisk).count());
    cols.push(AggCol::Int);
    for m in &plan.measures {
        let Some(name) = m.field.as_ref().and_then(|f| column(def, f)) else {
            continue;
        };
        let exact = m.ty != FieldType::Number;
        // PostgreSQL sums bigints as numeric: back to bigint (an overflow is an error, as in SQLite).
        let sum = match (backend, exact) {
            (Backend::Postgres, true) => Expr::cust(format!("CAST(SUM(\"{name}\") AS bigint)")),
            _ => Expr::col(name).sum(),
        };
        let sum_col = if exact { AggCol::Int } else { AggCol::Real };
        match m.fold {
            Fold::Count => {}
            Fold::Sum => {
                s.expr(sum);
                cols.push(sum_col);
            }
            Fold::Avg => {
                s.expr(sum).expr(Expr::col(name).count());
                cols.push(sum_col);
                cols.push(AggCol::Int);
            }
            Fold::Min => {
                s.expr(Expr::col(name).min());
                cols.push(AggCol::Field(m.ty.clone()));
            }
            Fold::Max => {
                s.expr(Expr::col(name).max());
                cols.push(AggCol::Field(m.ty.clone()));
            }
        }
    }
    Ok(AggregateSql { select: s, plan, cols })
}

/// The `YYYY-MM-DD` text of the first day of the bucket of column `name` (a date or timestamp).
fn bucket_sql(name: &str, k: &KeyPlan, b: Bucket, offset_us: i64, backend: Backend) -> String {
    const DAY: i64 = Timestamp::MICROS_PER_DAY;
    let is_date = k.ty == Some(FieldType::Date);
    // floor((t + offset) / day), exact for negative times too (`%` truncates in both backends).
    let x = format!("(\"{name}\" + {offset_us})");
    let day_number = format!("(({x} - ((({x}) % {DAY}) + {DAY}) % {DAY}) / {DAY})");
    match backend {
        Backend::Sqlite => {
            let modifiers = match b {
                Bucket::Day => "",
                Bucket::Week => ", '-6 days', 'weekday 1'",
                Bucket::Month => ", 'start of month'",
            };
            if is_date {
                format!("date(\"{name}\"{modifiers})")
            } else {
                format!("date({day_number} * 86400, 'unixepoch'{modifiers})")
            }
        }
        Backend::Postgres => {
            let d = if is_date {
                format!("(\"{name}\")::date")
            } else {
                format!("(DATE '1970-01-01' + ({day_number})::integer)")
            };
            let first = match b {
                Bucket::Day => d,
                Bucket::Week => format!("({d} - (extract(isodow from {d})::integer - 1))"),
                Bucket::Month => {
                    format!("make_date(extract(year from {d})::integer, extract(month from {d})::integer, 1)")
                }
            };
            format!("to_char({first}, 'YYYY-MM-DD')")
        }
    }
}

impl AggregateSql {
    /// Assembles a group from a row's columns, each read as [`AggregateSql::cols`] says; `None`
    /// when a column is not what the statement selects.
    pub fn group(&self, raws: &[Raw<'_>]) -> Option<Result<Group>> {
        let mut at = 0;
        let mut next = || {
            at += 1;
            raws.get(at - 1).copied()
        };
        let mut keys = Vec::with_capacity(self.plan.keys.len());
        for k in &self.plan.keys {
            keys.push(match (&k.field, k.bucket) {
                (FieldRef::Custom(_), _) => {
                    let (key, tag) = (next()?, next()?);
                    custom_key(key, tag)?
                }
                (_, Some(_)) => decode(&FieldType::Date, next()?)?,
                (_, None) => decode(k.ty.as_ref()?, next()?)?,
            });
        }
        let count = match next()? {
            Raw::Int(n) => u64::try_from(n).ok()?,
            _ => return None,
        };
        let mut values = Vec::with_capacity(self.plan.measures.len());
        for m in &self.plan.measures {
            let sum = |raw: Raw<'_>| match raw {
                Raw::Null => Some(Ok(Value::Null)),
                Raw::Int(i) if m.ty != FieldType::Number => Some(aggregate::sum_value(&m.ty, i128::from(i))),
                Raw::Real(x) if m.ty == FieldType::Number => Some(Ok(Value::Number(x))),
                _ => None,
            };
            values.push(match m.fold {
                Fold::Count => Value::Int(i64::try_from(count).ok()?),
                Fold::Sum => match sum(next()?)? {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e)),
                },
                Fold::Avg => {
                    let total = match sum(next()?)? {
                        Ok(v) => v,
                        Err(e) => return Some(Err(e)),
                    };
                    let n = match next()? {
                        Raw::Int(n) => u64::try_from(n).ok()?,
                        _ => return None,
                    };
                    aggregate::average(&total, n, &m.ty)
                }
                Fold::Min | Fold::Max => decode(&m.ty, next()?)?,
            });
        }
        Some(Ok(Group { keys, count, values }))
    }
}

/// A custom-field key from its JSON text and type tag.
fn custom_key(key: Raw<'_>, tag: Raw<'_>) -> Option<Value> {
    match key {
        Raw::Null => Some(Value::Null),
        Raw::Text(s) => {
            let tag = match tag {
                Raw::Text(t) => Some(t),
                _ => None,
            };
            custom_from_json(&serde_json::from_str(s).ok()?, tag)
        }
        _ => None,
    }
}
