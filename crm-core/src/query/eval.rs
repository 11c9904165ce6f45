//! In-memory evaluation of a bound filter, with SQL's three-valued logic so that the in-memory store,
//! the scoring engine and the SQL stores agree on every row.

use super::{Filter, Op};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::schema::{EntityDef, FieldRef, SystemField};
use crate::value::Value;
use std::cmp::Ordering;

/// A bound filter with its fields resolved, ready to evaluate against records of one entity type.
#[derive(Clone, Debug)]
pub enum Compiled {
    All,
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
    Cmp(FieldRef, Op, Value),
    In(FieldRef, Vec<Value>),
    IsNull(FieldRef),
}

impl Compiled {
    pub fn compile(f: &Filter, def: &EntityDef) -> Result<Compiled> {
        let field = |name: &str| {
            def.resolve(name)
                .ok_or_else(|| Error::invalid_query(format!("{} has no field {name}", def.name), 0))
        };
        Ok(match f {
            Filter::All => Compiled::All,
            Filter::And(v) => Compiled::And(v.iter().map(|f| Compiled::compile(f, def)).collect::<Result<_>>()?),
            Filter::Or(v) => Compiled::Or(v.iter().map(|f| Compiled::compile(f, def)).collect::<Result<_>>()?),
            Filter::Not(f) => Compiled::Not(Box::new(Compiled::compile(f, def)?)),
            Filter::Cmp { field: n, op, value } => Compiled::Cmp(field(n)?, *op, value.clone()),
            Filter::In { field: n, values } => Compiled::In(field(n)?, values.clone()),
            Filter::IsNull { field: n } => Compiled::IsNull(field(n)?),
            Filter::Search(_) => return Err(Error::invalid_query("unbound search term", 0)),
        })
    }

    /// True only when the filter is definitely true for the record (SQL `WHERE` semantics).
    pub fn matches(&self, r: &Record) -> bool {
        self.eval(r) == Some(true)
    }

    /// Three-valued evaluation: `None` is SQL's UNKNOWN (a comparison with NULL).
    pub fn eval(&self, r: &Record) -> Option<bool> {
        match self {
            Compiled::All => Some(true),
            Compiled::And(v) => {
                let mut unknown = false;
                for f in v {
                    match f.eval(r) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown { None } else { Some(true) }
            }
            Compiled::Or(v) => {
                let mut unknown = false;
                for f in v {
                    match f.eval(r) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown { None } else { Some(false) }
            }
            Compiled::Not(f) => f.eval(r).map(|b| !b),
            Compiled::IsNull(f) => Some(with_value(r, f, Value::is_null)),
            Compiled::Cmp(f, op, v) => with_value(r, f, |x| compare(x, *op, v)),
            Compiled::In(f, vs) => with_value(r, f, |x| {
                if x.is_null() {
                    return None;
                }
                Some(vs.iter().any(|v| x.sort_cmp(v) == Ordering::Equal))
            }),
        }
    }
}

fn with_value<T>(r: &Record, f: &FieldRef, k: impl FnOnce(&Value) -> T) -> T {
    match f {
        FieldRef::System(s) => k(&match s {
            SystemField::Id => Value::Id(r.id),
            SystemField::Version => Value::Int(r.version as i64),
            SystemField::CreatedAt => Value::Timestamp(r.created_at),
            SystemField::UpdatedAt => Value::Timestamp(r.updated_at),
        }),
        other => k(r.value_ref(other).unwrap_or(&Value::Null)),
    }
}

fn compare(x: &Value, op: Op, v: &Value) -> Option<bool> {
    if x.is_null() || v.is_null() {
        return None;
    }
    let ord = || x.sort_cmp(v);
    Some(match op {
        Op::Eq => ord() == Ordering::Equal,
        Op::Ne => ord() != Ordering::Equal,
        Op::Lt => ord() == Ordering::Less,
        Op::Le => ord() != Ordering::Greater,
        Op::Gt => ord() == Ordering::Greater,
        Op::Ge => ord() != Ordering::Less,
        Op::Contains => match (x, v) {
            (Value::List(l), Value::Text(t)) => l.iter().any(|i| i == t),
            (Value::Text(s), Value::Text(t)) => contains_ignore_ascii_case(s.as_bytes(), t.as_bytes()),
            _ => false,
        },
        Op::StartsWith => match (x, v) {
            (Value::Text(s), Value::Text(t)) => {
                s.len() >= t.len() && s.as_bytes()[..t.len()].eq_ignore_ascii_case(t.as_bytes())
            }
            _ => false,
        },
    })
}

/// Case-insensitive (ASCII only, like SQLite's `LIKE`) substring test without allocating.
fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}
