//! A bound filter as a SQL condition.

use super::value::*;
use crate::Backend;
use crate::schema::CUSTOM;
use crm_core::error::{Error, Result};
use crm_core::query::{Filter, Op};
use crm_core::schema::{EntityDef, FieldRef};
use crm_core::value::{FieldType, Value};
use sea_query::{Expr, ExprTrait, Func, LikeExpr, Value as SqlValue};

/// The JSON path of a custom field key, checked so it can be spelled inside SQL: custom field keys are
/// lower-case letters, digits and `_`; anything else names no custom field.
pub(super) fn custom_path(key: &str) -> Result<String> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::invalid_query(format!("no custom field {key}"), 0));
    }
    Ok(format!("'$.\"{key}\"'"))
}

pub(super) fn custom_tag_path(key: &str) -> String {
    format!("'$.\"{CUSTOM_TAGS}\".\"{key}\"'")
}

pub(super) fn sqlite_only(backend: Backend) -> Result<()> {
    match backend {
        Backend::Sqlite => Ok(()),
        Backend::Postgres => Err(Error::Storage(
            "custom field queries are not supported by this backend yet".into(),
        )),
    }
}

/// `json_extract(custom, '$."key"')`: the custom value as a SQL scalar (SQL NULL when absent).
pub(super) fn custom_value(key: &str, backend: Backend) -> Result<Expr> {
    sqlite_only(backend)?;
    Ok(Expr::cust(format!("json_extract(\"{CUSTOM}\", {})", custom_path(key)?)))
}

/// What a filter or sort names, resolved against the table.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Column { name: &'static str, kind: Kind },
    Custom(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    List,
    Other,
}

pub(super) fn target(def: &EntityDef, name: &str) -> Result<Target> {
    let r = def
        .resolve(name)
        .ok_or_else(|| Error::invalid_query(format!("{} has no field {name}", def.name), 0))?;
    Ok(match r {
        FieldRef::System(s) => Target::Column {
            name: s.name(),
            kind: Kind::Other,
        },
        FieldRef::Declared(i) => {
            let f = &def.fields[i];
            let kind = match f.spec.ty {
                FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Enum => Kind::Text,
                FieldType::MultiEnum | FieldType::Tags => Kind::List,
                _ => Kind::Other,
            };
            Target::Column { name: f.name, kind }
        }
        FieldRef::Custom(k) => Target::Custom(k),
    })
}

pub(super) fn target_expr(t: &Target, backend: Backend) -> Result<Expr> {
    match t {
        Target::Column { name, .. } => Ok(Expr::col(*name)),
        Target::Custom(k) => custom_value(k, backend),
    }
}

fn always() -> Expr {
    Expr::cust("1 = 1")
}

fn never() -> Expr {
    Expr::cust("1 = 0")
}

fn unknown() -> Expr {
    Expr::cust("NULL")
}

/// UNKNOWN when `e` is NULL, else false: what a test that cannot hold gives in memory.
fn null_or_false(e: Expr) -> Expr {
    Expr::case(e.is_null(), unknown()).finally(never()).into()
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `LIKE` pattern of a case-insensitive substring (`prefix == false`) or prefix test.
pub fn like_pattern(s: &str, prefix: bool) -> String {
    let body = like_escape(&s.to_ascii_lowercase());
    if prefix {
        format!("{body}%")
    } else {
        format!("%{body}%")
    }
}

/// `lower(e) LIKE pattern ESCAPE '\'`; the pattern is lower-cased (ASCII, as in memory) in Rust, so
/// SQLite's ASCII-only `lower` and case-folding `LIKE` agree with it.
fn like(e: Expr, pattern: String) -> Expr {
    Expr::expr(Func::lower(e)).like(LikeExpr::new(pattern).escape('\\'))
}

/// Element equality on a compact JSON array of strings: the element's JSON encoding right after `[`
/// or `,`. Exact: outside strings those characters only precede elements, and inside a string a `"`
/// is always escaped, so `["x` / `,"x` can only start an element; a JSON string token ends at its
/// first unescaped quote, so a match covers the whole element. `instr` (`strpos` in PostgreSQL) rather
/// than `LIKE`: SQLite's `LIKE` ignores ASCII case, and tags and options compare exactly.
fn list_contains(col: Expr, item: &str, backend: Backend) -> Expr {
    let enc = serde_json::to_string(item).unwrap_or_default();
    let find = match backend {
        Backend::Sqlite => "instr",
        Backend::Postgres => "strpos",
    };
    let at = |prefix: char| Expr::expr(Func::cust(find).arg(col.clone()).arg(format!("{prefix}{enc}"))).gt(0);
    at('[').or(at(','))
}

/// Contains / StartsWith on a custom field, whose JSON type decides the test at run time.
fn custom_text_test(key: &str, op: Op, s: &str, backend: Backend) -> Result<Expr> {
    sqlite_only(backend)?;
    let path = custom_path(key)?;
    // Tagged values (money, dates, ...) are not text or lists in memory: the test is false for them.
    let like_sql = format!(
        "CASE WHEN json_type(\"{CUSTOM}\", {tag}) IS NOT NULL THEN 1 = 0 \
         WHEN json_type(\"{CUSTOM}\", {path}) IS NULL OR json_type(\"{CUSTOM}\", {path}) = 'null' THEN NULL \
         WHEN json_type(\"{CUSTOM}\", {path}) = 'text' THEN lower(json_extract(\"{CUSTOM}\", {path})) LIKE ? ESCAPE '\\' ",
        tag = custom_tag_path(key)
    );
    Ok(match op {
        Op::Contains => Expr::cust_with_values(
            format!(
                "({like_sql}WHEN json_type(\"{CUSTOM}\", {path}) = 'array' \
                 THEN EXISTS (SELECT 1 FROM json_each(\"{CUSTOM}\", {path}) WHERE json_each.value = ? AND json_each.type = 'text') \
                 ELSE 1 = 0 END)"
            ),
            [like_pattern(s, false), s.to_owned()],
        ),
        _ => Expr::cust_with_values(format!("({like_sql}ELSE 1 = 0 END)"), [like_pattern(s, true)]),
    })
}

/// The SQL condition of a bound filter over the rows of `def`.
pub fn condition(def: &EntityDef, f: &Filter, backend: Backend) -> Result<Expr> {
    Ok(match f {
        Filter::All => always(),
        Filter::And(v) => match v.len() {
            0 => always(),
            _ => fold(v.iter().map(|f| condition(def, f, backend)), ExprTrait::and)?,
        },
        Filter::Or(v) => match v.len() {
            0 => never(),
            _ => fold(v.iter().map(|f| condition(def, f, backend)), ExprTrait::or)?,
        },
        Filter::Not(inner) => match inner.as_ref() {
            Filter::All => never(),
            inner => Expr::expr(condition(def, inner, backend)?).not(),
        },
        Filter::IsNull { field } => target_expr(&target(def, field)?, backend)?.is_null(),
        Filter::In { field, values } => {
            let t = target(def, field)?;
            let e = target_expr(&t, backend)?;
            // A NULL in the list never equals anything (in memory): leave it out rather than let it
            // turn a miss into UNKNOWN.
            let vals: Vec<SqlValue> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| to_sql_value(v, backend))
                .collect();
            if vals.is_empty() {
                null_or_false(e)
            } else {
                e.is_in(vals)
            }
        }
        Filter::Cmp { field, op, value } => cmp(&target(def, field)?, *op, value, backend)?,
        Filter::Search(_) => return Err(Error::invalid_query("unbound search term", 0)),
    })
}

fn fold(mut parts: impl Iterator<Item = Result<Expr>>, join: fn(Expr, Expr) -> Expr) -> Result<Expr> {
    let first = parts.next().unwrap_or_else(|| Ok(always()))?;
    parts.try_fold(first, |acc, p| Ok(join(acc, p?)))
}

fn cmp(t: &Target, op: Op, v: &Value, backend: Backend) -> Result<Expr> {
    if v.is_null() {
        return Ok(unknown());
    }
    let e = || target_expr(t, backend);
    let val = || to_sql_value(v, backend);
    Ok(match op {
        Op::Eq => e()?.eq(val()),
        Op::Ne => e()?.ne(val()),
        Op::Lt => e()?.lt(val()),
        Op::Le => e()?.lte(val()),
        Op::Gt => e()?.gt(val()),
        Op::Ge => e()?.gte(val()),
        Op::Contains | Op::StartsWith => match (t, v) {
            (Target::Column { name, kind: Kind::Text }, Value::Text(s)) => {
                like(Expr::col(*name), like_pattern(s, op == Op::StartsWith))
            }
            (Target::Column { name, kind: Kind::List }, Value::Text(s)) if op == Op::Contains => {
                list_contains(Expr::col(*name), s, backend)
            }
            (Target::Custom(k), Value::Text(s)) => custom_text_test(k, op, s, backend)?,
            _ => null_or_false(e()?),
        },
    })
}
