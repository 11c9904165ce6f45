//! Aggregate queries: rows matching a bound filter, grouped by up to two keys (field values, or a
//! time bucket of a date or timestamp field), with several measures per group.
//!
//! Every store answers an [`AggregateQuery`] with the same [`Group`]s: SQL stores by `GROUP BY`, the
//! memory store by [`fold`]. The rules that must agree are defined here, once:
//!
//! - [`AggregateQuery::plan`] checks the query against the declaration (which fields may be keys,
//!   bucketed or measured) for every store;
//! - nulls are left out of every measure (a group whose values are all null measures null) and make
//!   a group of their own as a key;
//! - sums of integer, money and decimal fields are exact (decimals as the stored millionths), and an
//!   average is the exact sum over the count, rounded by [`average`] (stores compute the sum and the
//!   count and call it);
//! - a time bucket is the calendar day, ISO week (starting Monday) or month a value falls in at a
//!   fixed UTC offset ([`bucket_date`]); it is reported as the bucket's first day;
//! - groups come back ordered by their keys ([`Value::sort_cmp`], nulls first), whatever the store.
//!
//! Sums and averages of number (floating-point) fields may differ between stores in the last bits:
//! they add in whatever order the store scans. Minimums and maximums are exact.

use super::Filter;
use crate::decimal::{self, Decimal, Rounding};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::schema::{EntityDef, FieldRef};
use crate::value::{FieldType, Money, Timestamp, Value};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use time::UtcOffset;

/// Most group keys of one query.
pub const MAX_GROUP_KEYS: usize = 2;
/// Most measures of one query.
pub const MAX_MEASURES: usize = 16;

/// A calendar period a date or timestamp falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    /// ISO week: Monday to Sunday.
    Week,
    Month,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

impl FromStr for Bucket {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Bucket::Day),
            "week" => Ok(Bucket::Week),
            "month" => Ok(Bucket::Month),
            _ => Err(Error::invalid_query(
                format!("unknown time bucket {s:?} (day, week or month)"),
                0,
            )),
        }
    }
}

/// One group key: a field's value, or the bucket a date or timestamp field's value falls in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Field(String),
    Bucket(String, Bucket),
}

impl GroupBy {
    pub fn field(&self) -> &str {
        match self {
            GroupBy::Field(f) | GroupBy::Bucket(f, _) => f,
        }
    }
}

impl fmt::Display for GroupBy {
    /// The text form [`GroupBy::from_str`] reads: `owner_id`, `created_at:month`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::Field(n) => f.write_str(n),
            GroupBy::Bucket(n, b) => write!(f, "{n}:{}", b.name()),
        }
    }
}

impl FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.split_once(':') {
            Some((f, b)) => GroupBy::Bucket(f.to_owned(), b.parse()?),
            None => GroupBy::Field(s.to_owned()),
        })
    }
}

/// How a measure folds the values of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fold {
    /// Rows in the group (takes no field).
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Fold {
    pub fn name(self) -> &'static str {
        match self {
            Fold::Count => "count",
            Fold::Sum => "sum",
            Fold::Avg => "avg",
            Fold::Min => "min",
            Fold::Max => "max",
        }
    }
}

/// One measure of each group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Rows in the group.
    Count,
    /// Sum of an integer, money, decimal or number field.
    Sum(String),
    /// Average of an integer, money, decimal or number field, rounded by [`average`].
    Avg(String),
    /// Smallest value of a numeric, date or timestamp field.
    Min(String),
    /// Largest value of a numeric, date or timestamp field.
    Max(String),
}

impl Measure {
    pub fn new(fold: Fold, field: &str) -> Measure {
        let f = field.to_owned();
        match fold {
            Fold::Count => Measure::Count,
            Fold::Sum => Measure::Sum(f),
            Fold::Avg => Measure::Avg(f),
            Fold::Min => Measure::Min(f),
            Fold::Max => Measure::Max(f),
        }
    }

    pub fn fold(&self) -> Fold {
        match self {
            Measure::Count => Fold::Count,
            Measure::Sum(_) => Fold::Sum,
            Measure::Avg(_) => Fold::Avg,
            Measure::Min(_) => Fold::Min,
            Measure::Max(_) => Fold::Max,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Measure::Count => None,
            Measure::Sum(f) | Measure::Avg(f) | Measure::Min(f) | Measure::Max(f) => Some(f),
        }
    }
}

impl fmt::Display for Measure {
    /// `count`, `sum(estimated_value)`: the names results are labelled with.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field() {
            None => f.write_str(self.fold().name()),
            Some(n) => write!(f, "{}({n})", self.fold().name()),
        }
    }
}

/// What a store aggregates: a bound filter (scope included), the group keys and the measures.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateQuery {
    pub filter: Filter,
    /// At most [`MAX_GROUP_KEYS`], at most one of them a time bucket. Without keys the answer is
    /// one group of every matching row, there even when none matches (count 0, measures null), as
    /// SQL answers an aggregate without `GROUP BY`.
    pub group_by: Vec<GroupBy>,
    pub measures: Vec<Measure>,
    /// The UTC offset time buckets of timestamps are computed at. A fixed offset: the engine has no
    /// time zone database, so a bucket near a daylight saving change uses the offset given here, not
    /// the zone's offset on that day.
    pub offset: UtcOffset,
}

impl AggregateQuery {
    /// Counts rows matching `filter` per value of `field`.
    pub fn count_by(filter: Filter, field: &str) -> Self {
        AggregateQuery {
            filter,
            group_by: vec![GroupBy::Field(field.to_owned())],
            measures: vec![Measure::Count],
            offset: UtcOffset::UTC,
        }
    }

    /// Adds a measure.
    pub fn with(mut self, m: Measure) -> Self {
        self.measures.push(m);
        self
    }

    /// Checks the query against `def` and resolves its fields. Keys may be any field but JSON ones;
    /// buckets take declared or system date and timestamp fields; sums and averages take integer,
    /// money, decimal and number fields, minimums and maximums those and dates and timestamps.
    /// Custom fields may be keys, not measured or bucketed (their type varies per tenant).
    pub fn plan(&self, def: &EntityDef) -> Result<Plan> {
        if self.group_by.len() > MAX_GROUP_KEYS {
            return Err(Error::invalid_query(format!("at most {MAX_GROUP_KEYS} group keys"), 0));
        }
        if self
            .group_by
            .iter()
            .filter(|g| matches!(g, GroupBy::Bucket(..)))
            .count()
            > 1
        {
            return Err(Error::invalid_query("at most one time bucket", 0));
        }
        if self.measures.len() > MAX_MEASURES {
            return Err(Error::invalid_query(format!("at most {MAX_MEASURES} measures"), 0));
        }
        let resolve = |name: &str| {
            let f = def
                .resolve(name)
                .ok_or_else(|| Error::invalid_query(format!("{} has no field {name}", def.name), 0))?;
            let ty = def.type_of(&f);
            Ok::<_, Error>((f, ty))
        };
        let cannot = |name: &str, what: &str| Error::invalid_query(format!("{name} cannot be {what}"), 0);
        let mut keys = Vec::with_capacity(self.group_by.len());
        for g in &self.group_by {
            let (field, ty) = resolve(g.field())?;
            // What a store can address (and a custom field definition's key always is).
            if let FieldRef::Custom(k) = &field
                && !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(Error::invalid_query(format!("no custom field {k}"), 0));
            }
            let bucket = match g {
                GroupBy::Field(_) => None,
                GroupBy::Bucket(_, b) => Some(*b),
            };
            match (&ty, bucket) {
                (Some(FieldType::Json), _) => return Err(cannot(g.field(), "a group key")),
                (Some(FieldType::Date | FieldType::Timestamp), Some(_)) | (_, None) => {}
                (_, Some(_)) => return Err(cannot(g.field(), "bucketed by time (not a date or timestamp)")),
            }
            keys.push(KeyPlan { field, ty, bucket });
        }
        let mut measures = Vec::with_capacity(self.measures.len());
        for m in &self.measures {
            let fold = m.fold();
            let Some(name) = m.field() else {
                measures.push(MeasurePlan {
                    fold,
                    field: None,
                    ty: FieldType::Integer,
                });
                continue;
            };
            let (field, ty) = resolve(name)?;
            let numeric = matches!(
                ty,
                Some(FieldType::Integer | FieldType::Money | FieldType::Decimal | FieldType::Number)
            );
            let ordered = matches!(ty, Some(FieldType::Date | FieldType::Timestamp));
            let ok = match fold {
                Fold::Count => true,
                Fold::Sum | Fold::Avg => numeric,
                Fold::Min | Fold::Max => numeric || ordered,
            };
            match ty {
                Some(ty) if ok => measures.push(MeasurePlan {
                    fold,
                    field: Some(field),
                    ty,
                }),
                _ => return Err(cannot(name, &format!("measured by {}", fold.name()))),
            }
        }
        Ok(Plan {
            keys,
            measures,
            offset: self.offset,
        })
    }
}

/// A checked [`AggregateQuery`] with its fields resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub keys: Vec<KeyPlan>,
    pub measures: Vec<MeasurePlan>,
    pub offset: UtcOffset,
}

/// A resolved group key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPlan {
    pub field: FieldRef,
    /// `None` for a custom field.
    pub ty: Option<FieldType>,
    pub bucket: Option<Bucket>,
}

impl KeyPlan {
    /// The group key of a record.
    pub fn key_of(&self, r: &Record, offset: UtcOffset) -> Value {
        let v = r.value(&self.field);
        match self.bucket {
            None => v,
            Some(b) => bucket_date(&v, b, offset).map_or(Value::Null, Value::Date),
        }
    }
}

/// A resolved measure: its fold, field (none for a count) and the field's type.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurePlan {
    pub fold: Fold,
    pub field: Option<FieldRef>,
    pub ty: FieldType,
}

/// One group: its keys (in query order), how many rows it has, and one value per measure (in query
/// order): a count as [`Value::Int`]; sums, minimums and maximums in the field's type, null when
/// every value is null; averages by [`average`].
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub keys: Vec<Value>,
    pub count: u64,
    pub values: Vec<Value>,
}

/// The first day of the bucket a date or timestamp value falls in; timestamps are first moved to
/// local time at `offset`. `None` for a null (or another type, or a day out of the calendar's range).
pub fn bucket_date(v: &Value, bucket: Bucket, offset: UtcOffset) -> Option<time::Date> {
    let day = match v {
        Value::Date(d) => *d,
        Value::Timestamp(Timestamp(us)) => {
            let local = us.checked_add(i64::from(offset.whole_seconds()) * 1_000_000)?;
            let days = local.div_euclid(Timestamp::MICROS_PER_DAY);
            time::Date::from_julian_day(i32::try_from(days + UNIX_EPOCH_JULIAN_DAY).ok()?).ok()?
        }
        _ => return None,
    };
    Some(match bucket {
        Bucket::Day => day,
        Bucket::Week => day - time::Duration::days(i64::from(day.weekday().number_days_from_monday())),
        Bucket::Month => day.replace_day(1).ok()?,
    })
}

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The average of `n` values of type `ty` adding up to `sum` (null when `n` is 0): money rounded to
/// whole minor units, integers and decimals to [`decimal::MAX_SCALE`] fractional digits (as a
/// decimal), both half-even; numbers divided in floating point.
pub fn average(sum: &Value, n: u64, ty: &FieldType) -> Value {
    if n == 0 {
        return Value::Null;
    }
    let exact = |total: Decimal, scale: u32| {
        total
            .checked_div(Decimal::from(n))
            .map(|q| q.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointNearestEven))
    };
    match (ty, sum) {
        (FieldType::Money, Value::Money(m)) => exact(Decimal::from(m.0), 0)
            .and_then(|q| decimal::round_minor(q, Rounding::HalfEven))
            .map_or(Value::Null, |m| Value::Money(Money(m))),
        (FieldType::Integer, Value::Int(i)) => {
            exact(Decimal::from(*i), decimal::MAX_SCALE).map_or(Value::Null, |d| Value::Decimal(d.normalize()))
        }
        (FieldType::Decimal, Value::Decimal(d)) => {
            exact(*d, decimal::MAX_SCALE).map_or(Value::Null, |d| Value::Decimal(d.normalize()))
        }
        (FieldType::Number, Value::Number(x)) => Value::Number(x / n as f64),
        _ => Value::Null,
    }
}

/// A sum of the values of a field of type `ty`, as stores hand it over: integers (money and
/// decimals in their stored integer form, as 128 bits so that no store overflows before another)
/// or floating point. Integer sums beyond 64 bits are refused.
pub fn sum_value(ty: &FieldType, total: i128) -> Result<Value> {
    let v = i64::try_from(total).map_err(|_| Error::invalid_query("a sum is too large", 0))?;
    Ok(match ty {
        FieldType::Money => Value::Money(Money(v)),
        FieldType::Decimal => Value::Decimal(decimal::from_micros(v)),
        _ => Value::Int(v),
    })
}

/// Orders groups by their keys (nulls first), as every store returns them.
pub fn sort_groups(groups: &mut [Group]) {
    groups.sort_by(|a, b| cmp_keys(&a.keys, &b.keys));
}

fn cmp_keys(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.sort_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Group keys ordered as [`sort_groups`] orders them.
struct Keys(Vec<Value>);

impl PartialEq for Keys {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Keys {}
impl PartialOrd for Keys {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keys {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_keys(&self.0, &other.0)
    }
}

/// A measure being folded.
#[derive(Clone, Debug)]
enum Acc {
    Count,
    Exact { n: u64, total: i128 },
    Float { n: u64, total: f64 },
    Extreme(Value),
}

impl Acc {
    fn new(m: &MeasurePlan) -> Acc {
        match (m.fold, &m.ty) {
            (Fold::Count, _) => Acc::Count,
            (Fold::Sum | Fold::Avg, FieldType::Number) => Acc::Float { n: 0, total: 0.0 },
            (Fold::Sum | Fold::Avg, _) => Acc::Exact { n: 0, total: 0 },
            (Fold::Min | Fold::Max, _) => Acc::Extreme(Value::Null),
        }
    }

    fn add(&mut self, fold: Fold, v: Value) {
        if v.is_null() {
            return;
        }
        match self {
            Acc::Count => {}
            Acc::Exact { n, total } => {
                let x = match &v {
                    Value::Int(i) => i128::from(*i),
                    Value::Money(m) => i128::from(m.0),
                    Value::Decimal(d) => decimal::to_micros(*d).map_or(0, i128::from),
                    _ => return,
                };
                *n += 1;
                *total += x;
            }
            Acc::Float { n, total } => {
                if let Value::Number(x) = v {
                    *n += 1;
                    *total += x;
                }
            }
            Acc::Extreme(cur) => {
                let better = match fold {
                    Fold::Min => v.sort_cmp(cur) == Ordering::Less,
                    _ => v.sort_cmp(cur) == Ordering::Greater,
                };
                if cur.is_null() || better {
                    *cur = v;
                }
            }
        }
    }

    fn finish(self, m: &MeasurePlan, count: u64) -> Result<Value> {
        Ok(match self {
            Acc::Count => Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
            Acc::Exact { n: 0, .. } | Acc::Float { n: 0, .. } => Value::Null,
            Acc::Exact { n, total } => {
                let sum = sum_value(&m.ty, total)?;
                if m.fold == Fold::Avg {
                    average(&sum, n, &m.ty)
                } else {
                    sum
                }
            }
            Acc::Float { n, total } => {
                if m.fold == Fold::Avg {
                    average(&Value::Number(total), n, &m.ty)
                } else {
                    Value::Number(total)
                }
            }
            Acc::Extreme(v) => v,
        })
    }
}

/// The reference evaluation of a plan over the records that match the filter (the memory store's).
pub fn fold<'a>(plan: &Plan, rows: impl IntoIterator<Item = &'a Record>) -> Result<Vec<Group>> {
    let mut groups: BTreeMap<Keys, (u64, Vec<Acc>)> = BTreeMap::new();
    for r in rows {
        let keys = Keys(plan.keys.iter().map(|k| k.key_of(r, plan.offset)).collect());
        let (count, accs) = groups
            .entry(keys)
            .or_insert_with(|| (0, plan.measures.iter().map(Acc::new).collect()));
        *count += 1;
        for (acc, m) in accs.iter_mut().zip(&plan.measures) {
            if let Some(f) = &m.field {
                acc.add(m.fold, r.value(f));
            }
        }
    }
    if plan.keys.is_empty() && groups.is_empty() {
        groups.insert(Keys(Vec::new()), (0, plan.measures.iter().map(Acc::new).collect()));
    }
    groups
        .into_iter()
        .map(|(keys, (count, accs))| {
            Ok(Group {
                keys: keys.0,
                count,
                values: accs
                    .into_iter()
                    .zip(&plan.measures)
                    .map(|(a, m)| a.finish(m, count))
                    .collect::<Result<_>>()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::entity::LEAD;
    use time::macros::{date, offset};

    fn ts(s: &str) -> Value {
        Value::Timestamp(Timestamp::parse(s).unwrap())
    }

    #[test]
    fn buckets_are_local_calendar_periods_starting_monday() {
        let b = |v: &Value, bucket, off| bucket_date(v, bucket, off).unwrap();
        let sunday_late = ts("2025-06-01T23:30:00Z");
        assert_eq!(b(&sunday_late, Bucket::Day, offset!(UTC)), date!(2025 - 06 - 01));
        assert_eq!(b(&sunday_late, Bucket::Week, offset!(UTC)), date!(2025 - 05 - 26));
        // Half an hour east it is Monday: a new week (and day), the same month.
        assert_eq!(b(&sunday_late, Bucket::Week, offset!(+00:30)), date!(2025 - 06 - 02));
        assert_eq!(b(&sunday_late, Bucket::Month, offset!(+00:30)), date!(2025 - 06 - 01));
        assert_eq!(
            b(&ts("2025-06-30T23:00:00Z"), Bucket::Month, offset!(+01:00)),
            date!(2025 - 07 - 01)
        );
        // Before 1970 the day still rounds down, not toward zero.
        assert_eq!(
            b(&Value::Timestamp(Timestamp(-1)), Bucket::Day, offset!(UTC)),
            date!(1969 - 12 - 31)
        );
        assert_eq!(
            b(&Value::Timestamp(Timestamp(-1)), Bucket::Week, offset!(UTC)),
            date!(1969 - 12 - 29)
        );
        // Dates are calendar days: no offset applies.
        let d = Value::Date(date!(2025 - 01 - 01));
        assert_eq!(b(&d, Bucket::Week, offset!(-09:00)), date!(2024 - 12 - 30));
        assert_eq!(bucket_date(&Value::Null, Bucket::Day, offset!(UTC)), None);
    }

    #[test]
    fn averages_round_once_half_even() {
        let money = |c| Value::Money(Money(c));
        assert_eq!(average(&money(5), 2, &FieldType::Money), money(2));
        assert_eq!(average(&money(7), 2, &FieldType::Money), money(4));
        assert_eq!(average(&money(-7), 2, &FieldType::Money), money(-4));
        assert_eq!(average(&money(10), 3, &FieldType::Money), money(3));
        assert_eq!(
            average(&Value::Int(2), 3, &FieldType::Integer),
            Value::Decimal(decimal::parse("0.666667").unwrap())
        );
        assert_eq!(
            average(&Value::Int(121), 2, &FieldType::Integer),
            Value::Decimal(decimal::parse("60.5").unwrap())
        );
        assert_eq!(average(&Value::Number(1.0), 4, &FieldType::Number), Value::Number(0.25));
        assert_eq!(average(&money(5), 0, &FieldType::Money), Value::Null);
    }

    #[test]
    fn plans_refuse_what_no_store_can_group_or_measure() {
        let q = |keys: &[&str], m: Vec<Measure>| AggregateQuery {
            filter: Filter::All,
            group_by: keys.iter().map(|k| k.parse().unwrap()).collect(),
            measures: m,
            offset: UtcOffset::UTC,
        };
        assert!(
            q(&["status", "created_at:week"], vec![Measure::Avg("score".into())])
                .plan(&LEAD)
                .is_ok()
        );
        assert!(
            q(&["custom.roof_type"], vec![Measure::Max("converted_at".into())])
                .plan(&LEAD)
                .is_ok()
        );
        for bad in [
            q(&["status", "source", "city"], vec![]),
            q(&["created_at:day", "updated_at:day"], vec![]),
            q(&["score:day"], vec![]),
            q(&["custom.due:day"], vec![]),
            q(&["custom.bad-key"], vec![]),
            q(&["nope"], vec![]),
            q(&[], vec![Measure::Sum("status".into())]),
            q(&[], vec![Measure::Avg("created_at".into())]),
            q(&[], vec![Measure::Sum("custom.budget".into())]),
            q(&[], vec![Measure::Count; MAX_MEASURES + 1]),
        ] {
            assert_eq!(bad.plan(&LEAD).unwrap_err().code(), "invalid_query", "{bad:?}");
        }
    }

    #[test]
    fn text_forms_round_trip() {
        for s in ["owner_id", "created_at:month", "birth_date:week", "x:day"] {
            assert_eq!(s.parse::<GroupBy>().unwrap().to_string(), s);
        }
        assert!("created_at:year".parse::<GroupBy>().is_err());
        assert_eq!(Measure::Avg("score".into()).to_string(), "avg(score)");
        assert_eq!(Measure::Count.to_string(), "count");
    }
}
