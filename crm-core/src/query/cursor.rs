//! Keyset pagination: the cursor carries the sort keys' values of the last row; the next page is
//! "rows after that tuple" in the total order (nulls smallest), expressed as a filter every store runs.

use super::{Filter, Op, SortKey};
use crate::error::{Error, Result};
use crate::schema::SystemField;
use crate::value::{FieldType, Value};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

fn sort_sig(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| {
            if k.desc {
                format!("-{}", k.field)
            } else {
                k.field.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Opaque cursor for the row whose sort-key values are `last`.
pub fn encode_cursor(sort: &[SortKey], last: &[Value]) -> String {
    let body = serde_json::json!({ "s": sort_sig(sort), "v": last.iter().map(Value::to_json).collect::<Vec<_>>() });
    B64.encode(body.to_string())
}

/// Reads a cursor back; it must have been made for the same sort. `ty` gives each sort field's type.
pub fn decode_cursor(cursor: &str, sort: &[SortKey], ty: &dyn Fn(&str) -> FieldType) -> Result<Vec<Value>> {
    let bad = || Error::invalid_query("invalid cursor", 0);
    let bytes = B64.decode(cursor.trim()).map_err(|_| bad())?;
    let j: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if j.get("s").and_then(|s| s.as_str()) != Some(sort_sig(sort).as_str()) {
        return Err(Error::invalid_query("cursor was made for another sort order", 0));
    }
    let vals = j.get("v").and_then(|v| v.as_array()).ok_or_else(bad)?;
    if vals.len() != sort.len() {
        return Err(bad());
    }
    sort.iter()
        .zip(vals)
        .map(|(k, v)| Value::from_json(&ty(&k.field), v).ok_or_else(bad))
        .collect()
}

/// The filter "strictly after `last`" in the order `sort` (nulls smallest).
pub fn keyset_after(sort: &[SortKey], last: &[Value]) -> Filter {
    let mut alternatives = Vec::new();
    for i in 0..sort.len() {
        let mut conj: Vec<Filter> = sort[..i]
            .iter()
            .zip(last)
            .map(|(k, v)| match v {
                Value::Null => Filter::IsNull { field: k.field.clone() },
                v => Filter::cmp(&k.field, Op::Eq, v.clone()),
            })
            .collect();
        let (k, v) = (&sort[i], &last[i]);
        let after = match (v, k.desc) {
            (Value::Null, false) => Some(Filter::Not(Box::new(Filter::IsNull { field: k.field.clone() }))),
            (Value::Null, true) => None,
            (v, false) => Some(Filter::cmp(&k.field, Op::Gt, v.clone())),
            // Nulls sort last, so "after" a descending key includes them, except on system columns,
            // which are never null: there the bare comparison lets the database range-scan an index.
            (v, true) if SystemField::from_name(&k.field).is_some() => Some(Filter::cmp(&k.field, Op::Lt, v.clone())),
            (v, true) => Some(Filter::Or(vec![
                Filter::cmp(&k.field, Op::Lt, v.clone()),
                Filter::IsNull { field: k.field.clone() },
            ])),
        };
        if let Some(a) = after {
            conj.push(a);
            alternatives.push(Filter::and(conj));
        }
    }
    match alternatives.len() {
        1 => alternatives.pop().unwrap_or(Filter::All),
        _ => Filter::Or(alternatives),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_descending_key_nulls_follow_except_on_system_columns() {
        let id = crate::value::Id::from_u128(7);
        assert_eq!(
            keyset_after(&[SortKey::desc("id")], &[Value::Id(id)]),
            Filter::cmp("id", Op::Lt, Value::Id(id))
        );
        assert_eq!(
            keyset_after(&[SortKey::desc("score")], &[Value::Int(5)]),
            Filter::Or(vec![
                Filter::cmp("score", Op::Lt, Value::Int(5)),
                Filter::IsNull { field: "score".into() }
            ])
        );
    }
}
