//! Values as stored: field values <-> `sea_query` values, decoding of stored values, and the
//! storage encoding of custom fields.

use crate::Backend;
use crm_core::value::{FieldType, Id, Money, Timestamp, Value, format_date, parse_date};
use sea_query::Value as SqlValue;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The SQL form of a value: money and timestamps as 64-bit integers, dates as `YYYY-MM-DD` text, ids
/// as UUIDs, lists as JSON array text, JSON as text in SQLite (`jsonb` in PostgreSQL).
pub fn to_sql_value(v: &Value, backend: Backend) -> SqlValue {
    match v {
        Value::Null => SqlValue::String(None),
        Value::Bool(b) => SqlValue::Bool(Some(*b)),
        Value::Int(i) => SqlValue::BigInt(Some(*i)),
        Value::Number(n) => SqlValue::Double(Some(*n)),
        Value::Money(m) => SqlValue::BigInt(Some(m.0)),
        // Validation keeps decimals within what millionths in 64 bits hold.
        Value::Decimal(d) => SqlValue::BigInt(crm_core::decimal::to_micros(*d)),
        Value::Text(s) => SqlValue::String(Some(s.clone())),
        Value::Date(d) => SqlValue::String(Some(format_date(*d))),
        Value::Timestamp(t) => SqlValue::BigInt(Some(t.0)),
        Value::Id(i) => SqlValue::Uuid(Some(*i)),
        Value::List(l) => SqlValue::String(Some(encode_list(l))),
        Value::Json(j) => match backend {
            Backend::Sqlite => SqlValue::String(Some(j.to_string())),
            Backend::Postgres => SqlValue::Json(Some(Box::new(j.clone()))),
        },
    }
}

/// A NULL of the SQL type a field of type `ty` is stored as (PostgreSQL wants typed NULLs).
pub fn null_of(ty: &FieldType, backend: Backend) -> SqlValue {
    match ty {
        FieldType::Integer | FieldType::Money | FieldType::Decimal | FieldType::Timestamp => SqlValue::BigInt(None),
        FieldType::Number => SqlValue::Double(None),
        FieldType::Bool => SqlValue::Bool(None),
        FieldType::Ref(_) => SqlValue::Uuid(None),
        FieldType::Json if backend == Backend::Postgres => SqlValue::Json(None),
        _ => SqlValue::String(None),
    }
}

/// The SQL value stored in a column of type `ty`.
pub fn field_value(ty: &FieldType, v: &Value, backend: Backend) -> SqlValue {
    if v.is_null() {
        null_of(ty, backend)
    } else {
        to_sql_value(v, backend)
    }
}

/// A stored SQL value as the drivers hand it over, borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Raw<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
    Uuid(Id),
}

/// Reads a stored value back for a field of type `ty`; `None` when it is not what that type stores.
pub fn decode(ty: &FieldType, raw: Raw<'_>) -> Option<Value> {
    if raw == Raw::Null {
        return Some(Value::Null);
    }
    Some(match ty {
        FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Enum => match raw {
            Raw::Text(s) => Value::Text(s.to_owned()),
            _ => return None,
        },
        FieldType::Integer => Value::Int(int(raw)?),
        FieldType::Money => Value::Money(Money(int(raw)?)),
        FieldType::Decimal => Value::Decimal(crm_core::decimal::from_micros(int(raw)?)),
        FieldType::Timestamp => Value::Timestamp(Timestamp(int(raw)?)),
        FieldType::Number => match raw {
            Raw::Real(f) => Value::Number(f),
            Raw::Int(i) => Value::Number(i as f64),
            _ => return None,
        },
        FieldType::Bool => match raw {
            Raw::Bool(b) => Value::Bool(b),
            Raw::Int(i) => Value::Bool(i != 0),
            _ => return None,
        },
        FieldType::Date => match raw {
            Raw::Text(s) => Value::Date(parse_date(s)?),
            _ => return None,
        },
        FieldType::Ref(_) => Value::Id(uuid(raw)?),
        FieldType::MultiEnum | FieldType::Tags => match raw {
            Raw::Text(s) => Value::List(decode_list(s)?),
            _ => return None,
        },
        FieldType::Json => match raw {
            Raw::Text(s) => Value::Json(serde_json::from_str(s).ok()?),
            _ => return None,
        },
    })
}

fn int(raw: Raw<'_>) -> Option<i64> {
    match raw {
        Raw::Int(i) => Some(i),
        _ => None,
    }
}

/// A UUID column value.
pub fn uuid(raw: Raw<'_>) -> Option<Id> {
    match raw {
        Raw::Uuid(u) => Some(u),
        Raw::Blob(b) => Id::from_slice(b).ok(),
        _ => None,
    }
}

/// The borrowed form of a [`SqlValue`] (for round trips and drivers that hand over `sea_query` values).
pub fn raw_of(v: &SqlValue) -> Raw<'_> {
    match v {
        SqlValue::Bool(Some(b)) => Raw::Bool(*b),
        SqlValue::BigInt(Some(i)) => Raw::Int(*i),
        SqlValue::Double(Some(f)) => Raw::Real(*f),
        SqlValue::String(Some(s)) => Raw::Text(s),
        SqlValue::Bytes(Some(b)) => Raw::Blob(b),
        SqlValue::Uuid(Some(u)) => Raw::Uuid(*u),
        _ => Raw::Null,
    }
}

/// A list as stored: a compact JSON array of strings.
pub fn encode_list(l: &[String]) -> String {
    serde_json::to_string(l).unwrap_or_else(|_| "[]".to_owned())
}

pub fn decode_list(s: &str) -> Option<Vec<String>> {
    serde_json::from_str(s).ok()
}

// Custom fields
//
// The `custom` column holds a JSON object `{"key": <storage json>, ...}` so that SQL can compare the
// values directly (`json_extract(custom, '$."key"')` in SQLite): money is stored as integer minor
// units and timestamps as integer microseconds (numeric comparisons), dates as `YYYY-MM-DD` strings
// (ordered like dates), text as strings, numbers as JSON numbers, bools as booleans, lists as arrays.
//
// The store does not know the tenant's custom field specs, and several types share a JSON type
// (money, timestamps and integers are all JSON integers; dates, ids and text are all strings). So the
// object also carries, under the key `$t` (never a custom field key: keys start with a lower-case
// letter), the type of each value whose JSON type alone would read back as another type:
// `{"budget": 125000, "due": "2025-03-01", "$t": {"budget": "money", "due": "date"}}`. Values without a
// tag decode by JSON type: strings -> Text, integers -> Int, other numbers -> Number, booleans ->
// Bool, arrays of strings -> List. Tags never affect comparisons. Data written without tags (by hand,
// or by another tool) reads back by JSON type, which loses money, dates and timestamps: re-type such
// values with the tenant's specs if that matters.

/// The key of the type tags in the stored custom object.
pub const CUSTOM_TAGS: &str = "$t";

/// The stored form of a record's custom fields as JSON text (`None` when there are none).
pub fn encode_custom(custom: &BTreeMap<String, Value>) -> Option<String> {
    custom_object(custom).map(|j| j.to_string())
}

/// The stored form of a record's custom fields as a JSON object (`None` when there are none): what
/// [`encode_custom`] spells as text, and what PostgreSQL stores as `jsonb`.
pub fn custom_object(custom: &BTreeMap<String, Value>) -> Option<Json> {
    if custom.is_empty() {
        return None;
    }
    let mut obj = Map::new();
    let mut tags = Map::new();
    for (k, v) in custom {
        let (j, tag) = custom_to_json(v);
        obj.insert(k.clone(), j);
        if let Some(t) = tag {
            tags.insert(k.clone(), Json::String(t.to_owned()));
        }
    }
    if !tags.is_empty() {
        obj.insert(CUSTOM_TAGS.to_owned(), Json::Object(tags));
    }
    Some(Json::Object(obj))
}

/// A custom value's storage JSON and, when its JSON type would read back as another type, its tag.
pub fn custom_to_json(v: &Value) -> (Json, Option<&'static str>) {
    match v {
        Value::Null => (Json::Null, None),
        Value::Bool(b) => (Json::Bool(*b), None),
        Value::Int(i) => (Json::from(*i), None),
        Value::Number(n) => (serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number), None),
        Value::Money(m) => (Json::from(m.0), Some("money")),
        Value::Decimal(d) => (Json::String(d.to_string()), Some("decimal")),
        Value::Text(s) => (Json::String(s.clone()), None),
        Value::Date(d) => (Json::String(format_date(*d)), Some("date")),
        Value::Timestamp(t) => (Json::from(t.0), Some("timestamp")),
        Value::Id(i) => (Json::String(i.to_string()), Some("id")),
        Value::List(l) => (Json::Array(l.iter().cloned().map(Json::String).collect()), None),
        Value::Json(j) => (j.clone(), Some("json")),
    }
}

/// Reads a stored custom value back, by its tag or else by its JSON type.
pub fn custom_from_json(j: &Json, tag: Option<&str>) -> Option<Value> {
    Some(match (tag, j) {
        (Some("json"), j) => Value::Json(j.clone()),
        (_, Json::Null) => Value::Null,
        (Some("money"), j) => Value::Money(Money(j.as_i64()?)),
        (Some("decimal"), j) => Value::Decimal(crm_core::decimal::parse(j.as_str()?)?),
        (Some("timestamp"), j) => Value::Timestamp(Timestamp(j.as_i64()?)),
        (Some("date"), j) => Value::Date(parse_date(j.as_str()?)?),
        (Some("id"), j) => Value::Id(j.as_str()?.parse().ok()?),
        (_, Json::Bool(b)) => Value::Bool(*b),
        (_, Json::Number(n)) => match n.as_i64() {
            Some(i) if !n.is_f64() => Value::Int(i),
            _ => Value::Number(n.as_f64()?),
        },
        (_, Json::String(s)) => Value::Text(s.clone()),
        (_, Json::Array(a)) => match a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
        {
            Some(l) => Value::List(l),
            None => Value::Json(j.clone()),
        },
        (_, Json::Object(_)) => Value::Json(j.clone()),
    })
}

/// Reads the stored custom object back.
pub fn decode_custom(s: &str) -> Option<BTreeMap<String, Value>> {
    decode_custom_json(serde_json::from_str(s).ok()?)
}

/// Reads the stored custom object back from its JSON value (PostgreSQL hands `jsonb` over parsed).
pub fn decode_custom_json(j: Json) -> Option<BTreeMap<String, Value>> {
    let Json::Object(mut obj) = j else {
        return None;
    };
    let tags = match obj.remove(CUSTOM_TAGS) {
        Some(Json::Object(t)) => t,
        _ => Map::new(),
    };
    obj.iter()
        .map(|(k, v)| Some((k.clone(), custom_from_json(v, tags.get(k).and_then(Json::as_str))?)))
        .collect()
}
