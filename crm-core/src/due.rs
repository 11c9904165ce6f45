//! Due items: what falls due on a record as time passes — a follow-up whose time has come, a hot lead
//! nobody has touched, a membership about to expire. An entity type opts in by listing [`DueDef`]s
//! in its declaration (`EntityDef::due`); the core decides what is due as of a time (pure: a
//! predicate on stored columns that every store runs, and the occurrence key of each due record),
//! and `Service::fire_due` raises each occurrence once as an outbox event (`lead.followup_due`),
//! recording it as a [`crate::entity::DUE_MARK`] in the same change set. The server's scheduler
//! only wakes up and asks (see docs/followups.md and ADR 0009).

use crate::computed::ComputeCtx;
use crate::query::{Compiled, Filter};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::value::Id;

/// How far back an occurrence may have fallen due and still fire: a scheduler that was stopped
/// for longer does not replay older ones (each [`DueDef::select`] bounds its window by it).
pub const LOOKBACK_DAYS: i64 = 7;

/// One kind of due item of an entity type.
#[derive(Debug)]
pub struct DueDef {
    /// The event kind's suffix: the event is `<entity>.<kind>` (`lead.followup_due`).
    pub kind: &'static str,
    /// The records due as of the context's time (fallen due within [`LOOKBACK_DAYS`]), as a
    /// predicate on stored columns.
    pub select: fn(&ComputeCtx) -> Filter,
    /// What makes a due record's occurrence this one (the follow-up time it is for, the day the
    /// lead became hot): the record fires once per occurrence, and again only when it falls due
    /// anew (a follow-up set again). `None` when the record is not due.
    pub occurrence: fn(&Record, &ComputeCtx) -> Option<String>,
}

/// One occurrence of a due item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueItem {
    pub entity: &'static str,
    pub id: Id,
    /// [`DueDef::kind`].
    pub kind: &'static str,
    /// Unique per tenant: `<entity>.<kind>:<id>:<occurrence>`.
    pub key: String,
}

impl DueItem {
    /// The outbox event kind (`lead.followup_due`).
    pub fn event_kind(&self) -> String {
        format!("{}.{}", self.entity, self.kind)
    }
}

/// The due items among `records` (of one entity type) as of the context's time: each record the
/// type's [`DueDef::select`] predicate selects, once per kind, with its occurrence key. Pure.
pub fn due_items(def: &'static EntityDef, records: &[Record], cx: &ComputeCtx) -> Vec<DueItem> {
    let mut out = Vec::new();
    for d in &def.due {
        let Ok(selected) = Compiled::compile(&(d.select)(cx), def) else {
            continue;
        };
        for r in records {
            if selected.eval(r) != Some(true) {
                continue;
            }
            if let Some(occ) = (d.occurrence)(r, cx) {
                out.push(DueItem {
                    entity: def.name,
                    id: r.id,
                    kind: d.kind,
                    key: format!("{}.{}:{}:{occ}", def.name, d.kind, r.id),
                });
            }
        }
    }
    out
}

/// Every entity type with due items.
pub fn types() -> impl Iterator<Item = &'static EntityDef> {
    crate::entity::all().into_iter().filter(|d| !d.due.is_empty())
}
