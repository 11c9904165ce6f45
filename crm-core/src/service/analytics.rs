//! Ad-hoc aggregates for readers: group and measure what the actor may read, pushed down to the
//! store ([`crate::query::aggregate`]).

use super::Service;
use crate::access::{Action, Actor};
use crate::error::{Error, Result};
use crate::query::aggregate::{AggregateQuery, Fold, Group, GroupBy, Measure};
use crate::query::{self, Filter, ListRequest};
use crate::schema::EntityDef;
use crate::store::Store;
use serde_json::{Map, Value as Json};
use time::UtcOffset;

/// Most groups one aggregate answers; a query with more (grouped by something nearly unique) is
/// refused rather than streamed: it is a listing, not an aggregate.
pub const MAX_GROUPS: usize = 10_000;

/// What a caller asks of an aggregate, read from text parameters by [`AggregateRequest::from_params`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggregateRequest {
    /// Text filter language, e.g. `status:new owner:me`.
    pub q: Option<String>,
    /// Typed filter, ANDed with `q` (bindings pass a query's filter as they list it).
    pub filter: Option<Filter>,
    pub group_by: Vec<GroupBy>,
    /// Measures in order; none means a count.
    pub measures: Vec<Measure>,
    /// The fixed UTC offset of time buckets (`None`: UTC): callers pass the offset they want
    /// (`tz=+02:00`), and buckets near a daylight saving change use it as given. (The
    /// organization's `timezone`, an IANA zone name, decides the tenant's day for follow-ups,
    /// [`crate::computed::ComputeCtx::local_day`]; buckets do not read it.)
    pub offset: Option<UtcOffset>,
}

impl AggregateRequest {
    /// Reads `by=owner_id,created_at:month`, `count` (present with no value or any but `false`, `0`,
    /// `no`), `sum=`, `avg=`, `min=`,
    /// `max=` (each a comma-separated list of fields), `q=` (filter language) and `tz=` (`Z`, `UTC`,
    /// `+02:00`, `-05:30`). Measures come in the order count, sums, averages, minimums, maximums.
    pub fn from_params<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<AggregateRequest> {
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        let group_by = list("by").iter().map(|k| k.parse()).collect::<Result<Vec<GroupBy>>>()?;
        let mut measures = Vec::new();
        if get("count").is_some_and(|v| !matches!(v, "false" | "0" | "no")) {
            measures.push(Measure::Count);
        }
        for fold in [Fold::Sum, Fold::Avg, Fold::Min, Fold::Max] {
            measures.extend(list(fold.name()).iter().map(|f| Measure::new(fold, f)));
        }
        Ok(AggregateRequest {
            q: get("q").filter(|q| !q.trim().is_empty()).map(str::to_owned),
            filter: None,
            group_by,
            measures,
            offset: get("tz").map(parse_offset).transpose()?,
        })
    }
}

/// A fixed UTC offset: `Z`, `UTC`, `+02:00`, `-0530`, `+02`, within ±18:00, with any spaces, tabs
/// and line breaks around it (exactly those: the HTTP document's pattern says the same).
pub fn parse_offset(s: &str) -> Result<UtcOffset> {
    let bad = || Error::invalid_query(format!("tz: expected a UTC offset like +02:00, not {s:?}"), 0);
    let s = s.trim_matches([' ', '\t', '\n', '\r']);
    if matches!(s, "Z" | "z" | "UTC" | "utc") {
        return Ok(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let digits = match (rest.len(), rest.as_bytes().get(2)) {
        (2 | 4, _) => rest.to_owned(),
        (5, Some(b':')) => rest.replacen(':', "", 1),
        _ => return Err(bad()),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let h: i8 = digits[..2].parse().map_err(|_| bad())?;
    let m: i8 = match &digits[2..] {
        "" => 0,
        m => m.parse().map_err(|_| bad())?,
    };
    // Offsets in use lie within ±14:00; ±18:00 is the widest any standard admits.
    if m >= 60 || h > 18 || (h == 18 && m > 0) {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

/// An aggregate's answer: what it grouped by and measured, and the groups in key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub group_by: Vec<GroupBy>,
    pub measures: Vec<Measure>,
    pub groups: Vec<Group>,
}

impl Aggregate {
    /// The JSON adapters answer: `{"by": ["status"], "measures": ["count", "sum(estimated_value)"],
    /// "groups": [{"keys": ["new"], "count": 3, "values": [3, "1200.00"]}]}`, values in their JSON
    /// form ([`crate::value::Value::to_json`]: money as a decimal string).
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert(
            "by".into(),
            Json::Array(self.group_by.iter().map(|g| Json::String(g.to_string())).collect()),
        );
        m.insert(
            "measures".into(),
            Json::Array(self.measures.iter().map(|g| Json::String(g.to_string())).collect()),
        );
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let mut o = Map::new();
                o.insert("keys".into(), g.keys.iter().map(|v| v.to_json()).collect());
                o.insert("count".into(), Json::from(g.count));
                o.insert("values".into(), g.values.iter().map(|v| v.to_json()).collect());
                Json::Object(o)
            })
            .collect();
        m.insert("groups".into(), Json::Array(groups));
        Json::Object(m)
    }
}

impl<S: Store> Service<S> {
    /// Groups and measures the records of `entity` the actor may read and that match `req.q`.
    /// `Forbidden` (naming the field) for a key or measure over a field the actor may not read;
    /// `InvalidQuery` for one that cannot be a key or measured; `LimitExceeded` for more than
    /// [`MAX_GROUPS`] groups (or a text filter over its limits).
    pub async fn aggregate(&self, actor: &Actor, entity: &str, req: &AggregateRequest) -> Result<Aggregate> {
        let def = self.entity(entity)?;
        let list = ListRequest {
            q: req.q.clone(),
            filter: req.filter.clone(),
            ..Default::default()
        };
        let measures = if req.measures.is_empty() {
            vec![Measure::Count]
        } else {
            req.measures.clone()
        };
        let agg = self
            .aggregate_list(
                actor,
                def,
                &list,
                req.group_by.clone(),
                measures,
                req.offset.unwrap_or(UtcOffset::UTC),
            )
            .await?;
        if agg.groups.len() > MAX_GROUPS {
            return Err(Error::LimitExceeded {
                what: "groups".into(),
                limit: MAX_GROUPS as u64,
            });
        }
        Ok(agg)
    }

    /// Groups and measures the records of `def` the actor may read that match `list`'s text and
    /// typed filters, with no limit on the groups: for reports that fold per-record groups (a
    /// lead's first activity, a customer's value) themselves. `Forbidden` (naming the field) for a
    /// key or measure over a field the actor may not read.
    pub(crate) async fn aggregate_list(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        list: &ListRequest,
        group_by: Vec<GroupBy>,
        measures: Vec<Measure>,
        offset: UtcOffset,
    ) -> Result<Aggregate> {
        actor.authorize(def, Action::Read)?;
        let fields = group_by
            .iter()
            .map(GroupBy::field)
            .chain(measures.iter().filter_map(Measure::field));
        for f in fields {
            if def.resolve(f).is_some() && !actor.role.can_read_field(def, f) {
                return Err(Error::forbidden(Action::Read, def.name, vec![f.to_owned()]));
            }
        }
        // The list's binding: the filter language, field permissions in filters, and the scope.
        let list = ListRequest {
            q: list.q.clone(),
            filter: list.filter.clone(),
            ..Default::default()
        };
        let (bound, _, _) = self.bind_list(actor, def, &list, query::MAX_PAGE_SIZE).await?;
        let q = AggregateQuery {
            filter: bound.filter,
            group_by,
            measures,
            offset,
        };
        let groups = self.store.aggregate(actor.tenant, def, &q).await?;
        Ok(Aggregate {
            group_by: q.group_by,
            measures: q.measures,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::query::Bucket;

    #[test]
    fn parameters_read_keys_measures_and_offsets() {
        let params = [
            ("by", "owner_id, created_at:month"),
            ("sum", "estimated_value"),
            ("avg", "score"),
            ("count", ""),
            ("tz", "-05:30"),
        ];
        let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let r = AggregateRequest::from_params(get).unwrap();
        assert_eq!(
            r.group_by,
            vec![
                GroupBy::Field("owner_id".into()),
                GroupBy::Bucket("created_at".into(), Bucket::Month)
            ]
        );
        assert_eq!(
            r.measures,
            vec![
                Measure::Count,
                Measure::Sum("estimated_value".into()),
                Measure::Avg("score".into())
            ]
        );
        assert_eq!(r.offset, Some(UtcOffset::from_hms(-5, -30, 0).unwrap()));
        for ok in ["Z", "UTC", "+02", "+0200", "+14:00", " +02:00\n", "\tZ\r"] {
            assert!(parse_offset(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "02:00",
            "+2",
            "+02:60",
            "+25:00",
            "Europe/Berlin",
            "+02:00:00",
            "+0:200",
            " ",
            "\u{a0}+02:00",
            "+02:00\u{1c}",
        ] {
            assert_eq!(parse_offset(bad).unwrap_err().code(), "invalid_query", "{bad}");
        }
        let no_count = [("count", "false"), ("sum", "estimated_value")];
        let get = |k: &str| no_count.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(
            AggregateRequest::from_params(get).unwrap().measures,
            vec![Measure::Sum("estimated_value".into())]
        );
        let by_year = [("by", "created_at:year")];
        let get = |k: &str| by_year.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(AggregateRequest::from_params(get).unwrap_err().code(), "invalid_query");
    }
}
