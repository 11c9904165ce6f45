//! Decoding the rows of the log tables (audit entries, outbox events, sync log entries) once for
//! every driver, through [`RowAccess`], which each backend implements for its row type. Record rows
//! stay with each backend: bulk reads decode millions of them, straight from the driver's values.

use crate::schema::{AUDIT_LOG, OUTBOX, SYNC_LOG};
use crate::sql;
use crm_core::change::{AuditEntry, Event};
use crm_core::sync::SyncEntry;
use crm_core::value::{Id, Timestamp};
use serde_json::Value as Json;

/// Typed reads of a result row's columns by position: `None` when the column does not hold a
/// (non-NULL, except for [`RowAccess::id`]) value of that type.
pub(crate) trait RowAccess {
    /// A 64-bit integer column.
    fn int(&self, i: usize) -> Option<i64>;
    /// A text column.
    fn text(&self, i: usize) -> Option<String>;
    /// A nullable UUID column: `Some(None)` for NULL.
    fn id(&self, i: usize) -> Option<Option<Id>>;
    /// A JSON column (text in SQLite, `jsonb` in PostgreSQL).
    fn json(&self, i: usize) -> Option<Json>;
}

/// A column that does not hold what the schema stores there; the backend turns it into its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadColumn {
    pub table: &'static str,
    pub column: &'static str,
}

/// A row of `table`, read column by column, naming the column that is not what it should be.
struct Cols<'r, R> {
    row: &'r R,
    table: &'static str,
}

impl<R: RowAccess> Cols<'_, R> {
    fn bad(&self, column: &'static str) -> BadColumn {
        BadColumn {
            table: self.table,
            column,
        }
    }

    fn int(&self, i: usize, column: &'static str) -> Result<i64, BadColumn> {
        self.row.int(i).ok_or_else(|| self.bad(column))
    }

    fn text(&self, i: usize, column: &'static str) -> Result<String, BadColumn> {
        self.row.text(i).ok_or_else(|| self.bad(column))
    }

    fn opt_id(&self, i: usize, column: &'static str) -> Result<Option<Id>, BadColumn> {
        self.row.id(i).ok_or_else(|| self.bad(column))
    }

    fn id(&self, i: usize, column: &'static str) -> Result<Id, BadColumn> {
        self.opt_id(i, column)?.ok_or_else(|| self.bad(column))
    }

    fn json(&self, i: usize, column: &'static str) -> Result<Json, BadColumn> {
        self.row.json(i).ok_or_else(|| self.bad(column))
    }
}

/// An audit entry selected with [`sql::AUDIT_COLUMNS`].
pub(crate) fn audit_entry(row: &impl RowAccess) -> Result<AuditEntry, BadColumn> {
    let c = Cols { row, table: AUDIT_LOG };
    Ok(AuditEntry {
        tenant: c.id(0, "org_id")?,
        seq: c.int(1, "seq")? as u64,
        id: c.id(2, "id")?,
        at: Timestamp(c.int(3, "at")?),
        actor: c.opt_id(4, "actor")?,
        action: c.text(5, "action")?,
        entity: c.text(6, "entity")?,
        entity_id: c.opt_id(7, "entity_id")?,
        changes: serde_json::from_value(c.json(8, "changes")?).map_err(|_| c.bad("changes"))?,
        prev_hash: c.text(9, "prev_hash")?,
        hash: c.text(10, "hash")?,
    })
}

/// An outbox event selected with [`sql::EVENT_COLUMNS`].
pub(crate) fn event(row: &impl RowAccess) -> Result<Event, BadColumn> {
    let c = Cols { row, table: OUTBOX };
    Ok(Event {
        tenant: c.id(0, "org_id")?,
        seq: c.int(1, "seq")? as u64,
        id: c.id(2, "id")?,
        at: Timestamp(c.int(3, "at")?),
        kind: c.text(4, "kind")?,
        entity: c.text(5, "entity")?,
        entity_id: c.opt_id(6, "entity_id")?,
        payload: c.json(7, "payload")?,
    })
}

/// A sync log entry selected by [`sql::SyncSql::pending`].
pub(crate) fn sync_entry(row: &impl RowAccess) -> Result<SyncEntry, BadColumn> {
    let c = Cols { row, table: SYNC_LOG };
    Ok(SyncEntry {
        tenant: c.id(0, "org_id")?,
        seq: c.int(1, "seq")?.max(0) as u64,
        change_set: c.id(2, "change_set_id")?,
        at: Timestamp(c.int(3, "at")?),
        actor: c.opt_id(4, "actor")?,
        writes: sql::decode_writes(c.json(5, "writes")?).ok_or_else(|| c.bad("writes"))?,
        audit: sql::decode_ids(&c.json(6, "audit_ids")?).ok_or_else(|| c.bad("audit_ids"))?,
        events: sql::decode_ids(&c.json(7, "event_ids")?).ok_or_else(|| c.bad("event_ids"))?,
        intent: sql::decode_intent(c.json(8, "intent")?).ok_or_else(|| c.bad("intent"))?,
    })
}

/// A tenant id selected by [`sql::CommonSql::tenants`] (`None` for a NULL).
pub(crate) fn tenant(row: &impl RowAccess) -> Result<Option<Id>, BadColumn> {
    Cols {
        row,
        table: "organizations",
    }
    .opt_id(0, "org_id")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    /// A row of plain values, as a driver would hand them over.
    struct Fake(Vec<Json>);

    impl RowAccess for Fake {
        fn int(&self, i: usize) -> Option<i64> {
            self.0.get(i)?.as_i64()
        }
        fn text(&self, i: usize) -> Option<String> {
            self.0.get(i)?.as_str().map(str::to_owned)
        }
        fn id(&self, i: usize) -> Option<Option<Id>> {
            match self.0.get(i)? {
                Json::Null => Some(None),
                v => v.as_str()?.parse().ok().map(Some),
            }
        }
        fn json(&self, i: usize) -> Option<Json> {
            self.0.get(i).cloned()
        }
    }

    fn sync_row(audit_ids: Json) -> Fake {
        let id = Id::from_u128(7).to_string();
        Fake(vec![
            json!(id),
            json!(3),
            json!(id),
            json!(1_000),
            Json::Null,
            json!([]),
            audit_ids,
            json!([id]),
            Json::Null,
        ])
    }

    #[test]
    fn rows_decode_and_bad_columns_are_named() {
        let e = sync_entry(&sync_row(json!([]))).unwrap();
        assert_eq!((e.seq, e.actor, e.events), (3, None, vec![Id::from_u128(7)]));
        assert_eq!(e.intent, None, "JSON null: no intent");
        // A use case this build does not know (an app downgraded over its log) reads back as such:
        // the server refuses that entry alone.
        let mut newer = sync_row(json!([]));
        newer.0[8] = json!({"use_case": "teleport"});
        assert_eq!(
            sync_entry(&newer).unwrap().intent,
            Some(crm_core::sync::Intent::Unknown)
        );
        let mut bad = sync_row(json!([]));
        bad.0[8] = json!({"use_case": "create", "entity": 42});
        assert_eq!(
            sync_entry(&bad).unwrap_err(),
            BadColumn {
                table: SYNC_LOG,
                column: "intent"
            }
        );
        assert_eq!(
            sync_entry(&sync_row(json!(["not an id"]))).unwrap_err(),
            BadColumn {
                table: SYNC_LOG,
                column: "audit_ids"
            }
        );
        // A NULL where a value is required (the event's own id).
        let id = Id::from_u128(7).to_string();
        let row = Fake(vec![
            json!(id),
            json!(1),
            Json::Null,
            json!(5),
            json!("lead.created"),
            json!("lead"),
            Json::Null,
            json!({}),
        ]);
        assert_eq!(
            event(&row).unwrap_err(),
            BadColumn {
                table: OUTBOX,
                column: "id"
            }
        );
        assert_eq!(tenant(&Fake(vec![Json::Null])), Ok(None));
    }
}
