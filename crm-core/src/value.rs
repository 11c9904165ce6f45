//! Field values: the small closed set of types every store, adapter and engine understands.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use time::format_description::well_known::Rfc3339;

/// Record ids are UUIDv7: unique and ordered by creation time.
pub type Id = uuid::Uuid;

/// Reads an id written the one way ids are written and documented (`format: uuid`): RFC 9562's
/// hyphenated form, 8-4-4-4-12 hex digits in either case. The other forms the `uuid` crate reads
/// (32 bare digits, `{braced}`, `urn:uuid:`) are refused, so every face (HTTP paths, queries and
/// bodies, CSV cells, bindings) takes exactly what the API document allows.
pub fn parse_id(s: &str) -> Option<Id> {
    let b = s.as_bytes();
    let hyphenated = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if hyphenated { Id::try_parse(s).ok() } else { None }
}

/// Serde reader for an id in input (`#[serde(deserialize_with = "crate::value::deserialize_id")]`):
/// the string form [`parse_id`] reads, where the `uuid` crate's own would take any of its forms.
pub fn deserialize_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    let s = String::deserialize(d)?;
    parse_id(&s).ok_or_else(|| serde::de::Error::custom("expected an id (8-4-4-4-12 hex digits)"))
}

/// A point in time, UTC, in microseconds since the Unix epoch. Stored as a 64-bit integer everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MICROS_PER_DAY: i64 = 86_400_000_000;

    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn from_datetime(dt: time::OffsetDateTime) -> Self {
        Timestamp((dt.unix_timestamp_nanos() / 1000) as i64)
    }

    pub fn to_datetime(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses RFC 3339 (`2025-01-31T12:00:00Z`) or a plain date (`2025-01-31`, midnight UTC).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(dt) = time::OffsetDateTime::parse(s, &Rfc3339) {
            return Some(Self::from_datetime(dt));
        }
        parse_date(s).map(Self::from_date)
    }

    pub fn from_date(d: time::Date) -> Self {
        Self::from_datetime(d.midnight().assume_utc())
    }

    pub fn date(self) -> time::Date {
        self.to_datetime().date()
    }

    pub fn plus_days(self, days: i64) -> Self {
        Timestamp(self.0 + days * Self::MICROS_PER_DAY)
    }

    pub fn plus_hours(self, hours: i64) -> Self {
        Timestamp(self.0 + hours * 3_600_000_000)
    }

    pub fn plus_minutes(self, minutes: i64) -> Self {
        Timestamp(self.0 + minutes * 60_000_000)
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime().format(&Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses an ISO 8601 calendar date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()
}

pub fn format_date(d: time::Date) -> String {
    d.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// An exact amount of money in minor units (cents). Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

impl Money {
    /// Parses `1234`, `1234.5`, `1,234.50`, `-12.30`, `$99.99` into cents. More than two decimals is an error,
    /// not a rounding.
    pub fn parse(s: &str) -> Option<Money> {
        let s = s.trim().trim_start_matches('$').replace([',', '_'], "");
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, s),
        };
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s.as_str(), ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
            return None;
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let cents = whole.checked_mul(100)?.checked_add(frac)?;
        Some(Money(if neg { -cents } else { cents }))
    }

    pub fn from_major(units: i64) -> Option<Money> {
        units.checked_mul(100).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// The type of a field, which decides parsing, normalisation, storage and comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// Whole number.
    Integer,
    /// Real number (measurements, coordinates). Not for money.
    Number,
    Money,
    /// Exact quantity or rate (`2.5`, `8.875`), at most [`crate::decimal::MAX_SCALE`] fractional
    /// digits; stored as an integer of millionths so every store sorts and compares it exactly.
    Decimal,
    Date,
    Timestamp,
    Bool,
    /// One of the field's options.
    Enum,
    /// Any subset of the field's options.
    MultiEnum,
    /// Free-form labels, normalised to lower case.
    Tags,
    Email,
    Phone,
    Url,
    /// Id of a record of the named entity type in the same tenant.
    Ref(&'static str),
    /// Structured configuration (pipeline stages, scoring model, permissions), checked by the entity.
    Json,
}

/// Money crosses every boundary as a decimal string (`"1234.50"`), never a float.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Money::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an amount like \"1234.50\""))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time"))
    }
}

const TYPE_NAMES: &[(&str, FieldType)] = &[
    ("text", FieldType::Text),
    ("integer", FieldType::Integer),
    ("number", FieldType::Number),
    ("money", FieldType::Money),
    ("decimal", FieldType::Decimal),
    ("date", FieldType::Date),
    ("timestamp", FieldType::Timestamp),
    ("bool", FieldType::Bool),
    ("enum", FieldType::Enum),
    ("multi_enum", FieldType::MultiEnum),
    ("tags", FieldType::Tags),
    ("email", FieldType::Email),
    ("phone", FieldType::Phone),
    ("url", FieldType::Url),
    ("json", FieldType::Json),
];

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Reads the snake-case type name; references are not a user-declarable type.
impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TYPE_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| serde::de::Error::custom(format!("unknown field type {s}")))
    }
}

impl FieldType {
    /// The snake-case name (`multi_enum`); references are `ref`.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Ref(_) => "ref",
            t => TYPE_NAMES.iter().find(|(_, x)| x == t).map_or("text", |(n, _)| n),
        }
    }

    /// Whether values of this type cross JSON boundaries as strings (see [`Value::to_json`]): text-like
    /// types, enums, money, dates, times and references. For these an empty string means "not set".
    pub fn is_string_form(&self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Enum
                | FieldType::Money
                | FieldType::Decimal
                | FieldType::Date
                | FieldType::Timestamp
                | FieldType::Ref(_)
        )
    }

    /// Types a user may give a custom field.
    pub fn allowed_for_custom(&self) -> bool {
        !matches!(
            self,
            FieldType::Ref(_)
                | FieldType::Json
                | FieldType::Integer
                | FieldType::Decimal
                | FieldType::Timestamp
                | FieldType::Tags
        )
    }
}

/// A field's value. `Null` is "not set".
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Number(f64),
    Money(Money),
    Decimal(rust_decimal::Decimal),
    Text(String),
    Date(time::Date),
    Timestamp(Timestamp),
    Id(Id),
    /// Multi-enum options or tags.
    List(Vec<String>),
    Json(serde_json::Value),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Money(m) => Some(m.0),
            _ => None,
        }
    }

    pub fn as_id(&self) -> Option<Id> {
        match self {
            Value::Id(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// The JSON form adapters show: money as a decimal string, times as RFC 3339, dates as `YYYY-MM-DD`.
    pub fn to_json(&self) -> serde_json::Value {
        // One definition of the JSON form: its serialisation (`JsonForm`) into a tree.
        serde_json::to_value(self.json_form()).unwrap_or(serde_json::Value::Null)
    }

    /// The JSON form of the value (what [`Value::to_json`] builds), serialised without building a
    /// tree: a record's response is written straight from its values.
    pub fn json_form(&self) -> JsonForm<'_> {
        JsonForm(self)
    }

    /// Reads the JSON form back for a field of type `ty`, strictly (no guessing across types).
    /// Used for stored JSON (custom fields, audit values); user input goes through validation instead.
    pub fn from_json(ty: &FieldType, j: &serde_json::Value) -> Option<Value> {
        use serde_json::Value as J;
        if j.is_null() {
            return Some(Value::Null);
        }
        Some(match ty {
            FieldType::Text | FieldType::Enum | FieldType::Email | FieldType::Phone | FieldType::Url => {
                Value::Text(j.as_str()?.to_owned())
            }
            FieldType::Integer => Value::Int(j.as_i64()?),
            FieldType::Number => Value::Number(j.as_f64()?),
            FieldType::Money => Value::Money(match j {
                J::String(s) => Money::parse(s)?,
                J::Number(n) => Money::from_major(n.as_i64()?)?,
                _ => return None,
            }),
            FieldType::Decimal => Value::Decimal(match j {
                J::String(s) => crate::decimal::parse(s)?,
                J::Number(n) => crate::decimal::parse(&n.to_string())?,
                _ => return None,
            }),
            FieldType::Date => Value::Date(parse_date(j.as_str()?)?),
            FieldType::Timestamp => Value::Timestamp(Timestamp::parse(j.as_str()?)?),
            FieldType::Bool => Value::Bool(j.as_bool()?),
            FieldType::MultiEnum | FieldType::Tags => Value::List(
                j.as_array()?
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?,
            ),
            FieldType::Ref(_) => Value::Id(j.as_str()?.parse().ok()?),
            FieldType::Json => Value::Json(j.clone()),
        })
    }

    /// Total order used for sorting and keyset pagination, identical in every store:
    /// `Null` first, then values of the same type by their natural order (text by bytes).
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Less,
            (_, Null) => Ordering::Greater,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Number(a), Number(b)) => a.total_cmp(b),
            (Int(a), Number(b)) => (*a as f64).total_cmp(b),
            (Number(a), Int(b)) => a.total_cmp(&(*b as f64)),
            (Money(a), Money(b)) => a.cmp(b),
            (Decimal(a), Decimal(b)) => a.cmp(b),
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Date(a), Date(b)) => a.cmp(b),
            (Timestamp(a), Timestamp(b)) => a.cmp(b),
            (Id(a), Id(b)) => a.as_bytes().cmp(b.as_bytes()),
            (List(a), List(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Number(_) => 2,
            Value::Money(_) | Value::Decimal(_) => 3,
            Value::Text(_) => 4,
            Value::Date(_) => 5,
            Value::Timestamp(_) => 6,
            Value::Id(_) => 7,
            Value::List(_) => 8,
            Value::Json(_) => 9,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Id> for Value {
    fn from(i: Id) -> Self {
        Value::Id(i)
    }
}
impl From<Money> for Value {
    fn from(m: Money) -> Self {
        Value::Money(m)
    }
}
impl From<rust_decimal::Decimal> for Value {
    fn from(d: rust_decimal::Decimal) -> Self {
        Value::Decimal(d)
    }
}
impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Self {
        Value::Timestamp(t)
    }
}
impl From<time::Date> for Value {
    fn from(d: time::Date) -> Self {
        Value::Date(d)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

/// See [`Value::json_form`]: a money amount, a decimal, a date, a timestamp or an id as its string,
/// a list as strings, a non-finite number as `null`.
#[derive(Debug)]
pub struct JsonForm<'a>(&'a Value);

impl serde::Serialize for JsonForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Number(n) if n.is_finite() => s.serialize_f64(*n),
            Value::Number(_) => s.serialize_unit(),
            Value::Money(m) => s.collect_str(m),
            Value::Decimal(d) => s.collect_str(&d.normalize()),
            Value::Text(t) => s.serialize_str(t),
            Value::Date(d) => s.serialize_str(&format_date(*d)),
            Value::Timestamp(t) => s.serialize_str(&t.to_rfc3339()),
            Value::Id(i) => s.collect_str(i),
            Value::List(l) => s.collect_seq(l),
            Value::Json(j) => j.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_only_in_the_hyphenated_form() {
        let id = Id::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(parse_id("01234567-89ab-cdef-0123-456789abcdef"), Some(id));
        assert_eq!(parse_id("01234567-89AB-CDEF-0123-456789ABCDEF"), Some(id));
        for other in [
            "0123456789abcdef0123456789abcdef",
            "{01234567-89ab-cdef-0123-456789abcdef}",
            "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
            " 01234567-89ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456789-ab-cdef-0123-456789abcdef",
            "",
        ] {
            assert_eq!(parse_id(other), None, "{other:?}");
        }
    }

    #[test]
    fn money_parses_exactly() {
        assert_eq!(Money::parse("1,234.5"), Some(Money(123450)));
        assert_eq!(Money::parse("$0.07"), Some(Money(7)));
        assert_eq!(Money::parse("-12"), Some(Money(-1200)));
        assert_eq!(Money::parse("1.234"), None);
        assert_eq!(Money::parse("abc"), None);
        assert_eq!(Money::parse(""), None);
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Money(123450).to_string(), "1234.50");
    }

    #[test]
    fn timestamps_round_trip_rfc3339() {
        let t = Timestamp::parse("2025-03-04T05:06:07.123456Z").unwrap();
        assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        assert_eq!(
            Timestamp::parse("2025-01-01").unwrap().to_rfc3339(),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn nulls_sort_first() {
        assert_eq!(Value::Null.sort_cmp(&Value::Int(-5)), Ordering::Less);
        assert_eq!(Value::from("B").sort_cmp(&Value::from("a")), Ordering::Less);
    }
}
