//! A bound filter as a SQL condition.

use super::value::*;
use crate::Backend;
use crate::schema::CUSTOM;
use crm_core::error::{Error, Result};
use crm_core::query::{Filter, Op};
use crm_core::schema::{EntityDef, FieldRef};
use crm_core::value::{FieldType, Value};
use sea_query::{Expr, ExprTrait, Func, LikeExpr, Value as SqlValue};

/// Checks a custom field key so it can be spelled inside SQL: custom field keys are lower-case
/// letters, digits and `_`; anything else names no custom field.
fn check_key(key: &str) -> Result<&str> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::invalid_query(format!("no custom field {key}"), 0));
    }
    Ok(key)
}

/// The SQLite JSON path of a custom field key.
pub(super) fn custom_path(key: &str) -> Result<String> {
    Ok(format!("'$.\"{}\"'", check_key(key)?))
}

pub(super) fn custom_tag_path(key: &str) -> String {
    format!("'$.\"{CUSTOM_TAGS}\".\"{key}\"'")
}

/// `json_extract(custom, '$."key"')`: the custom value as a SQL scalar (SQL NULL when absent; SQLite).
pub(super) fn custom_value(key: &str) -> Result<Expr> {
    Ok(Expr::cust(format!("json_extract(\"{CUSTOM}\", {})", custom_path(key)?)))
}

// Custom fields in PostgreSQL: `custom` is `jsonb`. A JSON value has no SQL type of its own, so a
// comparison extracts it as the type of the value it is compared with (`numeric` for integers, money
// and timestamps, `float8` for numbers, text in byte order for text, dates and ids, `boolean`), and a
// stored value of another JSON type compares as UNKNOWN. Sorts order by JSON type first (booleans,
// numbers, strings, arrays, objects; absent and JSON null as SQL NULL), then by value.

/// `("custom" -> 'key')`: the stored JSON value (SQL NULL when absent; PostgreSQL).
pub(super) fn pg_json(key: &str) -> Result<String> {
    Ok(format!("(\"{CUSTOM}\" -> '{}')", check_key(key)?))
}

/// `("custom" -> '$t' ->> 'key')`: the type tag of a custom value (PostgreSQL).
pub(super) fn pg_tag(key: &str) -> Result<String> {
    Ok(format!("(\"{CUSTOM}\" -> '{CUSTOM_TAGS}' ->> '{}')", check_key(key)?))
}

/// The SQL type a custom value is extracted as in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JsonAs {
    Numeric,
    Float,
    Text,
    Bool,
    Json,
}

impl JsonAs {
    fn of(v: &Value) -> JsonAs {
        match v {
            Value::Int(_) | Value::Money(_) | Value::Timestamp(_) => JsonAs::Numeric,
            // Decimals are never custom fields (see `FieldType::allowed_for_custom`).
            Value::Decimal(_) => JsonAs::Text,
            Value::Number(_) => JsonAs::Float,
            Value::Text(_) | Value::Date(_) | Value::Id(_) => JsonAs::Text,
            Value::Bool(_) => JsonAs::Bool,
            Value::Null | Value::List(_) | Value::Json(_) => JsonAs::Json,
        }
    }
}

/// The custom value as SQL of type `to`, NULL when it is absent or of another JSON type (PostgreSQL).
pub(super) fn pg_typed(key: &str, to: JsonAs) -> Result<String> {
    let j = pg_json(key)?;
    let when = |ty: &str, then: String| format!("(CASE WHEN jsonb_typeof({j}) = '{ty}' THEN {then} END)");
    Ok(match to {
        JsonAs::Numeric => when("number", format!("({j})::numeric")),
        JsonAs::Float => when("number", format!("({j})::float8")),
        JsonAs::Bool => when("boolean", format!("({j})::boolean")),
        JsonAs::Text => format!(
            "({} COLLATE \"C\")",
            when("string", format!("(\"{CUSTOM}\" ->> '{key}')"))
        ),
        JsonAs::Json => format!("NULLIF({j}, 'null'::jsonb)"),
    })
}

/// A value compared with a custom value in PostgreSQL, bound as the type [`JsonAs::of`] extracts.
fn pg_custom_value(v: &Value) -> SqlValue {
    match v {
        Value::Date(_) | Value::Id(_) => SqlValue::String(Some(v.to_json().as_str().unwrap_or_default().to_owned())),
        Value::List(_) | Value::Json(_) => SqlValue::Json(Some(Box::new(custom_to_json(v).0))),
        other => to_sql_value(other, Backend::Postgres),
    }
}

/// The sort keys of a custom value in PostgreSQL: JSON type, then the value as that type.
pub(super) fn pg_sort_keys(key: &str) -> Result<Vec<Expr>> {
    let j = pg_json(key)?;
    Ok(vec![
        Expr::cust(format!(
            "(CASE jsonb_typeof({j}) WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3 \
             WHEN 'array' THEN 4 WHEN 'object' THEN 5 END)"
        )),
        Expr::cust(pg_typed(key, JsonAs::Bool)?),
        Expr::cust(pg_typed(key, JsonAs::Numeric)?),
        Expr::cust(pg_typed(key, JsonAs::Text)?),
        Expr::cust(format!(
            "(CASE WHEN jsonb_typeof({j}) IN ('array', 'object') THEN {j} END)"
        )),
    ])
}

/// True when the target holds no value (SQL NULL, or an absent or JSON null custom value).
fn is_null(t: &Target, backend: Backend) -> Result<Expr> {
    Ok(match (t, backend) {
        (Target::Custom(k), Backend::Postgres) => {
            Expr::cust(format!("(coalesce(jsonb_typeof({}), 'null') = 'null')", pg_json(k)?))
        }
        _ => target_expr(t, backend)?.is_null(),
    })
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

/// The target as one SQL expression: a column, or a custom value (SQLite's `json_extract`; in
/// PostgreSQL the JSON value itself, JSON null as SQL NULL).
pub(super) fn target_expr(t: &Target, backend: Backend) -> Result<Expr> {
    match (t, backend) {
        (Target::Column { name, .. }, _) => Ok(Expr::col(*name)),
        (Target::Custom(k), Backend::Sqlite) => custom_value(k),
        (Target::Custom(k), Backend::Postgres) => Ok(Expr::cust(pg_typed(k, JsonAs::Json)?)),
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

/// UNKNOWN when the target is NULL (`null` is its null test), else false: what a test that cannot hold
/// gives in memory.
fn null_or_false(null: Expr) -> Expr {
    Expr::case(null, unknown()).finally(never()).into()
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
    if backend == Backend::Postgres {
        return pg_custom_text_test(key, op, s);
    }
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

/// The PostgreSQL form of [`custom_text_test`]: `lower` on a `"C"`-collated string folds ASCII only
/// (as in memory), and `@>` with a one-string array is element equality on a top-level array.
fn pg_custom_text_test(key: &str, op: Op, s: &str) -> Result<Expr> {
    let j = pg_json(key)?;
    let like_sql = format!(
        "CASE WHEN {tag} IS NOT NULL THEN 1 = 0 \
         WHEN coalesce(jsonb_typeof({j}), 'null') = 'null' THEN NULL \
         WHEN jsonb_typeof({j}) = 'string' THEN lower((\"{CUSTOM}\" ->> '{key}') COLLATE \"C\") LIKE $1 ESCAPE '\\' ",
        tag = pg_tag(key)?
    );
    Ok(match op {
        Op::Contains => Expr::cust_with_values(
            format!(
                "({like_sql}WHEN jsonb_typeof({j}) = 'array' THEN {j} @> jsonb_build_array(($2)::text) ELSE 1 = 0 END)"
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
        Filter::IsNull { field } => is_null(&target(def, field)?, backend)?,
        Filter::In { field, values } => {
            let t = target(def, field)?;
            // A NULL in the list never equals anything (in memory): leave it out rather than let it
            // turn a miss into UNKNOWN.
            let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
            if values.is_empty() {
                null_or_false(is_null(&t, backend)?)
            } else if let (Target::Custom(k), Backend::Postgres) = (&t, backend) {
                // Each value compares as its own type: `x = a OR x = b ...` (UNKNOWN when x is NULL).
                let eqs = values
                    .iter()
                    .map(|v| Ok(Expr::cust(pg_typed(k, JsonAs::of(v))?).eq(pg_custom_value(v))));
                fold(eqs, ExprTrait::or)?
            } else {
                let vals: Vec<SqlValue> = values.iter().map(|v| to_sql_value(v, backend)).collect();
                target_expr(&t, backend)?.is_in(vals)
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
    if matches!(op, Op::Contains | Op::StartsWith) {
        return Ok(match (t, v) {
            (Target::Column { name, kind: Kind::Text }, Value::Text(s)) => {
                like(Expr::col(*name), like_pattern(s, op == Op::StartsWith))
            }
            (Target::Column { name, kind: Kind::List }, Value::Text(s)) if op == Op::Contains => {
                list_contains(Expr::col(*name), s, backend)
            }
            (Target::Custom(k), Value::Text(s)) => custom_text_test(k, op, s, backend)?,
            _ => null_or_false(is_null(t, backend)?),
        });
    }
    let (e, val) = match (t, backend) {
        (Target::Custom(k), Backend::Postgres) => (Expr::cust(pg_typed(k, JsonAs::of(v))?), pg_custom_value(v)),
        _ => (target_expr(t, backend)?, to_sql_value(v, backend)),
    };
    Ok(match op {
        Op::Eq => e.eq(val),
        Op::Ne => e.ne(val),
        Op::Lt => e.lt(val),
        Op::Le => e.lte(val),
        Op::Gt => e.gt(val),
        Op::Ge => e.gte(val),
        Op::Contains | Op::StartsWith => never(), // answered above
    })
}
