//! Queries: the typed filter tree, sorting, keyset pagination and the text filter language.
//!
//! A filter names fields by their API names and holds raw or typed values. [`bind`] checks it against
//! an entity declaration and the reader's field permissions and types its values; the service then adds
//! the record scope and the keyset predicate, so every store receives one bound [`Filter`] and evaluates
//! exactly what [`Compiled::eval`] evaluates in memory (SQL's three-valued logic included).

pub mod aggregate;
mod bind;
mod cursor;
mod eval;
pub mod text;

pub use aggregate::{AggregateQuery, Bucket, Fold, Group, GroupBy, Measure};
pub use bind::{BindCtx, bind, bind_sort, bind_text};
pub use cursor::{decode_cursor, encode_cursor, keyset_after};
pub use eval::Compiled;

use crate::value::Value;
use serde::{Deserialize, Serialize};

/// Hard cap on a page; larger requests are clamped, not refused.
pub const MAX_PAGE_SIZE: u32 = 500;
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Page cap for bulk consumers ([`crate::service::Service::list_bulk`], exports).
pub const MAX_BULK_PAGE_SIZE: u32 = 10_000;
/// Caps on filter complexity (nodes and nesting), against expensive queries.
pub const MAX_FILTER_NODES: usize = 64;
pub const MAX_FILTER_DEPTH: usize = 12;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Text: case-insensitive substring. Lists (tags, multi-enum): has the element.
    Contains,
    /// Text: case-insensitive prefix.
    StartsWith,
}

/// The filter tree. Field names are API names (`status`, `owner_id`, `created_at`, `custom.roof_type`).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Matches everything.
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp {
        field: String,
        op: Op,
        value: Value,
    },
    In {
        field: String,
        values: Vec<Value>,
    },
    IsNull {
        field: String,
    },
    /// Free text: any of the entity's search fields contains the term (case-insensitive).
    Search(String),
}

impl Filter {
    pub fn eq(field: &str, value: impl Into<Value>) -> Filter {
        Filter::Cmp {
            field: field.to_owned(),
            op: Op::Eq,
            value: value.into(),
        }
    }

    pub fn cmp(field: &str, op: Op, value: impl Into<Value>) -> Filter {
        Filter::Cmp {
            field: field.to_owned(),
            op,
            value: value.into(),
        }
    }

    /// Conjunction that flattens `All` away.
    pub fn and(parts: impl IntoIterator<Item = Filter>) -> Filter {
        let mut v: Vec<Filter> = Vec::new();
        for p in parts {
            match p {
                Filter::All => {}
                Filter::And(inner) => v.extend(inner),
                p => v.push(p),
            }
        }
        match v.len() {
            0 => Filter::All,
            1 => v.pop().unwrap_or(Filter::All),
            _ => Filter::And(v),
        }
    }

    /// Number of nodes and maximum depth.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().fold((1, 1), |(n, d), f| {
                let (fn_, fd) = f.size();
                (n + fn_, d.max(fd + 1))
            }),
            Filter::Not(f) => {
                let (n, d) = f.size();
                (n + 1, d + 1)
            }
            _ => (1, 1),
        }
    }

    /// Every field the filter names (`Search` names the entity's search fields implicitly).
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.fields(out)),
            Filter::Not(f) => f.fields(out),
            Filter::Cmp { field, .. } | Filter::In { field, .. } | Filter::IsNull { field } => out.push(field.clone()),
            Filter::All | Filter::Search(_) => {}
        }
    }
}

/// One sort key. Nulls sort first ascending (last descending) in every store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    pub field: String,
    #[serde(default)]
    pub desc: bool,
}

impl SortKey {
    pub fn asc(field: &str) -> Self {
        SortKey {
            field: field.to_owned(),
            desc: false,
        }
    }
    pub fn desc(field: &str) -> Self {
        SortKey {
            field: field.to_owned(),
            desc: true,
        }
    }

    /// Parses `-score,created_at` (a leading `-` means descending).
    /// An empty list (`""`) sorts by the default; an empty key (`",,"`, `"score,"`) is kept as an empty
    /// field name, which binding refuses, rather than silently dropped.
    pub fn parse_list(s: &str) -> Vec<SortKey> {
        if s.trim().is_empty() {
            return Vec::new();
        }
        s.split(',')
            .map(str::trim)
            .map(|p| match p.strip_prefix('-') {
                Some(f) => SortKey::desc(f.trim()),
                None => SortKey::asc(p.trim_start_matches('+')),
            })
            .collect()
    }
}

/// What a caller asks of a list use case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListRequest {
    /// Text filter language, e.g. `status:new score>=60 owner:me`.
    pub q: Option<String>,
    /// Typed filter, combined with `q` by AND.
    pub filter: Option<Filter>,
    pub sort: Vec<SortKey>,
    pub limit: Option<u32>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// What a store executes: a bound filter (access scope and keyset included), a total order ending in
/// `id`, and a limit.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreQuery {
    pub filter: Filter,
    pub sort: Vec<SortKey>,
    pub limit: u32,
}

impl StoreQuery {
    /// Every record matching `filter`, in id order, `limit` at a time (for scans).
    pub fn by_id(filter: Filter, limit: u32) -> Self {
        StoreQuery {
            filter,
            sort: vec![SortKey::asc("id")],
            limit,
        }
    }

    /// The records of `def` matching `filter`, which constrains the reference field `via` (equal to
    /// one target or in a list of them: a client's memberships), in the order of the index on that
    /// reference: `via`, the rest of the first of [`EntityDef::indexes`] leading with it (else the
    /// per-reference index `(via, id)`), then `id`.
    ///
    /// A store can then walk that index and stop. In `id` order, SQLite walks the primary key over
    /// every row of the tenant instead (the ordered scan looks cheaper to its planner than sorting
    /// the few matches): a client's memberships read that way cost a scan of all memberships.
    pub fn by_ref(def: &crate::schema::EntityDef, via: &str, filter: Filter, limit: u32) -> Self {
        let rest = def
            .indexes
            .iter()
            .find(|cols| cols.first() == Some(&via))
            .map_or(&[][..], |cols| &cols[1..]);
        let mut sort = vec![SortKey::asc(via)];
        sort.extend(rest.iter().filter(|c| **c != "id").map(|c| SortKey::asc(c)));
        sort.push(SortKey::asc("id"));
        StoreQuery { filter, sort, limit }
    }
}

/// A page of results.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The JSON form of a typed filter, for adapters (`{"cmp": {"field": "score", "op": "ge", "value": 60}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterSpec {
    And(Vec<FilterSpec>),
    Or(Vec<FilterSpec>),
    Not(Box<FilterSpec>),
    Cmp {
        field: String,
        op: Op,
        value: serde_json::Value,
    },
    In {
        field: String,
        values: Vec<serde_json::Value>,
    },
    IsNull {
        field: String,
    },
    Search(String),
}

/// The keys of [`FilterSpec`]'s JSON form, as [`FilterSpec::from_json`] names them in errors.
const SPEC_KINDS: &str = "and, or, not, cmp, in, is_null, search";
const OPS: &str = "eq, ne, lt, le, gt, ge, contains, starts_with";

impl FilterSpec {
    /// Reads the JSON form of a typed filter, with errors a person can act on: an
    /// [`Error::InvalidQuery`] naming the path of the bad part (`filter.and[1].cmp.op`), what was
    /// found and the keys or operators allowed there (`gte is not one of: eq, ne, …`).
    pub fn from_json(j: &serde_json::Value) -> crate::error::Result<FilterSpec> {
        spec_at(j, "filter", 0)
    }
}

fn spec_error(msg: String) -> crate::error::Error {
    crate::error::Error::invalid_query(msg, 0)
}

fn spec_at(j: &serde_json::Value, path: &str, depth: usize) -> crate::error::Result<FilterSpec> {
    use serde_json::Value as J;
    if depth > MAX_FILTER_DEPTH {
        return Err(crate::error::Error::LimitExceeded {
            what: "filter depth".into(),
            limit: MAX_FILTER_DEPTH as u64,
        });
    }
    let (key, v) = match j.as_object().map(|o| (o.len(), o.iter().next())) {
        Some((1, Some(kv))) => kv,
        _ => {
            return Err(spec_error(format!(
                "{path}: expected an object with one key, one of: {SPEC_KINDS}"
            )));
        }
    };
    let here = format!("{path}.{key}");
    let list = |v: &J| match v.as_array() {
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(i, f)| spec_at(f, &format!("{here}[{i}]"), depth + 1))
            .collect::<crate::error::Result<Vec<_>>>(),
        None => Err(spec_error(format!("{here}: expected a list of filters"))),
    };
    // The members of `cmp`, `in` and `is_null`: exactly the expected keys.
    let members = |v: &J, want: &[&str]| -> crate::error::Result<serde_json::Map<String, J>> {
        let obj = v
            .as_object()
            .ok_or_else(|| spec_error(format!("{here}: expected an object with keys {}", want.join(", "))))?;
        if let Some(k) = obj.keys().find(|k| !want.contains(&k.as_str())) {
            return Err(spec_error(format!(
                "{here}: unknown key {k}; expected {}",
                want.join(", ")
            )));
        }
        if let Some(k) = want.iter().find(|k| !obj.contains_key(**k)) {
            return Err(spec_error(format!("{here}.{k} is required")));
        }
        Ok(obj.clone())
    };
    let field = |m: &serde_json::Map<String, J>| match m.get("field") {
        Some(J::String(s)) => Ok(s.clone()),
        _ => Err(spec_error(format!("{here}.field: expected a field name"))),
    };
    Ok(match key.as_str() {
        "and" => FilterSpec::And(list(v)?),
        "or" => FilterSpec::Or(list(v)?),
        "not" => FilterSpec::Not(Box::new(spec_at(v, &here, depth + 1)?)),
        "cmp" => {
            let m = members(v, &["field", "op", "value"])?;
            let op = m
                .get("op")
                .and_then(|o| serde_json::from_value::<Op>(o.clone()).ok())
                .ok_or_else(|| {
                    let got = m.get("op").map(|o| o.as_str().map_or(o.to_string(), str::to_owned));
                    spec_error(format!("{here}.op: {} is not one of: {OPS}", got.unwrap_or_default()))
                })?;
            FilterSpec::Cmp {
                field: field(&m)?,
                op,
                value: m.get("value").cloned().unwrap_or_default(),
            }
        }
        "in" => {
            let m = members(v, &["field", "values"])?;
            let values = match m.get("values") {
                Some(J::Array(a)) => a.clone(),
                _ => return Err(spec_error(format!("{here}.values: expected a list of values"))),
            };
            FilterSpec::In {
                field: field(&m)?,
                values,
            }
        }
        "is_null" => FilterSpec::IsNull {
            field: field(&members(v, &["field"])?)?,
        },
        "search" => match v {
            J::String(s) => FilterSpec::Search(s.clone()),
            _ => return Err(spec_error(format!("{here}: expected the text to search for"))),
        },
        other => {
            return Err(spec_error(format!(
                "{path}: unknown key {other}; expected one of: {SPEC_KINDS}"
            )));
        }
    })
}

impl From<FilterSpec> for Filter {
    fn from(s: FilterSpec) -> Filter {
        let raw = |j: serde_json::Value| match j {
            serde_json::Value::String(s) => Value::Text(s),
            serde_json::Value::Null => Value::Null,
            j => Value::Json(j),
        };
        match s {
            FilterSpec::And(v) => Filter::And(v.into_iter().map(Into::into).collect()),
            FilterSpec::Or(v) => Filter::Or(v.into_iter().map(Into::into).collect()),
            FilterSpec::Not(f) => Filter::Not(Box::new((*f).into())),
            FilterSpec::Cmp { field, op, value } => Filter::Cmp {
                field,
                op,
                value: raw(value),
            },
            FilterSpec::In { field, values } => Filter::In {
                field,
                values: values.into_iter().map(raw).collect(),
            },
            FilterSpec::IsNull { field } => Filter::IsNull { field },
            FilterSpec::Search(s) => Filter::Search(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(j: serde_json::Value) -> String {
        match FilterSpec::from_json(&j) {
            Err(crate::error::Error::InvalidQuery { message, .. }) => message,
            other => panic!("{j}: {other:?}"),
        }
    }

    #[test]
    fn typed_filters_read_as_serde_writes_them() {
        let spec = FilterSpec::And(vec![
            FilterSpec::Cmp {
                field: "score".into(),
                op: Op::Ge,
                value: json!(60),
            },
            FilterSpec::Not(Box::new(FilterSpec::IsNull { field: "email".into() })),
            FilterSpec::Or(vec![
                FilterSpec::In {
                    field: "source".into(),
                    values: vec![json!("web"), json!("referral")],
                },
                FilterSpec::Search("acme".into()),
            ]),
        ]);
        let j = serde_json::to_value(&spec).unwrap();
        assert_eq!(FilterSpec::from_json(&j).unwrap(), spec);
    }

    #[test]
    fn typed_filter_typos_name_the_path_and_the_allowed_keys() {
        let m = msg(json!({"cmpp": {"field": "score", "op": "ge", "value": 1}}));
        assert!(
            m.contains("filter: unknown key cmpp") && m.contains("cmp, in, is_null"),
            "{m}"
        );
        let m = msg(json!({"and": [{"search": "x"}, {"cmp": {"field": "score", "op": "gte", "value": 1}}]}));
        assert!(m.starts_with("filter.and[1].cmp.op: gte is not one of: eq, ne,"), "{m}");
        let m = msg(json!({"cmp": {"feild": "score", "op": "ge", "value": 1}}));
        assert_eq!(m, "filter.cmp: unknown key feild; expected field, op, value");
        let m = msg(json!({"cmp": {"field": "score", "op": "ge"}}));
        assert_eq!(m, "filter.cmp.value is required");
        let m = msg(json!({"in": {"field": "source", "values": "web"}}));
        assert_eq!(m, "filter.in.values: expected a list of values");
        let m = msg(json!({"score": 5, "status": "new"}));
        assert!(m.starts_with("filter: expected an object with one key"), "{m}");
        let mut deep = json!({"search": "x"});
        for _ in 0..100 {
            deep = json!({ "not": deep });
        }
        assert!(matches!(
            FilterSpec::from_json(&deep),
            Err(crate::error::Error::LimitExceeded { .. })
        ));
    }
}
