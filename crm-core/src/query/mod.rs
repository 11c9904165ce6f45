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
pub use bind::{BindCtx, bind, bind_sort};
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
