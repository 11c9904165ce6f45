//! Computed fields: never stored, evaluated at read "as of" the service clock (a membership is active,
//! expiring or expired today), and still filterable and sortable because the binder expands them into
//! predicates and sort keys on stored columns. The declaration carries both halves, and the conformance
//! suite checks on every store that a filter's expansion selects exactly the records whose evaluation
//! gives that value.

use crate::query::Filter;
use crate::record::Record;
use crate::value::{Timestamp, Value};

/// One computed field of an entity type: an enum-like value from a fixed list of options.
#[derive(Debug)]
pub struct ComputedDef {
    pub name: &'static str,
    /// Every value the evaluation may give, in a meaningful order (what clients may filter by).
    pub options: &'static [&'static str],
    /// The value of a stored record as of the context's time.
    pub eval: fn(&Record, &ComputeCtx) -> &'static str,
    /// The predicate on stored columns that holds exactly when `eval` gives `option`, as of the
    /// context's time. Called only with one of [`ComputedDef::options`].
    pub expand: fn(option: &str, &ComputeCtx) -> Filter,
    /// Sorting by the field sorts by these stored fields (in the requested direction).
    pub sort_by: &'static [&'static str],
}

/// What an evaluation or expansion may read besides the record: the time it is evaluated at and the
/// tenant's settings (the organization record).
#[derive(Clone, Debug)]
pub struct ComputeCtx {
    pub now: Timestamp,
    pub org: Option<Record>,
}

impl ComputeCtx {
    pub fn new(now: Timestamp, org: Option<Record>) -> Self {
        ComputeCtx { now, org }
    }

    /// Today's date (UTC) as of the context's time.
    pub fn today(&self) -> time::Date {
        self.now.date()
    }

    /// An integer setting of the tenant, or `default` when unset.
    pub fn setting_i64(&self, name: &str, default: i64) -> i64 {
        self.org
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_i64)
            .unwrap_or(default)
    }
}

/// Sets every computed field of a record as of the context's time.
pub fn evaluate(rec: &mut Record, cx: &ComputeCtx) {
    let def = rec.entity;
    if def.computed.is_empty() {
        return;
    }
    let values = def
        .computed
        .iter()
        .map(|c| Value::Text((c.eval)(rec, cx).to_owned()))
        .collect();
    rec.computed = values;
}
