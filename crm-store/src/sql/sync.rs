//! The sync log statements (built once per backend, cached as SQL text), their parameters, and the
//! decoding of the stored JSON columns. See [`crm_core::sync`] for what is logged and
//! [`crm_core::store::Store::pending_changes`] for the contract a backend implements with them:
//!
//! 1. inside the change set's transaction, after its writes: [`SyncSql::next_seq`] (bind `org_id`,
//!    `1`; returns the tenant's next sequence), then [`SyncSql::insert`] with [`sync_params`];
//! 2. [`SyncSql::pending`] (bind `org_id`, `after_seq`, `limit`) and [`decode_writes`] /
//!    [`decode_ids`] to read entries back;
//! 3. [`SyncSql::mark_synced`] (bind `org_id`, `up_to_seq`) in a write transaction.

use super::value::to_sql_value;
use crate::Backend;
use crate::schema::{IDEMPOTENCY_KEYS, LEASES, SYNC_HEADS, SYNC_LOG};
use crm_core::error::{Error, Result};
use crm_core::idempotency::{Answer, StoredKey};
use crm_core::sync::{Intent, SyncEntry, SyncWrite};
use crm_core::value::{Id, Timestamp, Value};
use sea_query::{Expr, ExprTrait, OnConflict, Order, Query, Value as SqlValue};
use serde_json::Value as Json;
use std::sync::OnceLock;

/// The columns of [`SYNC_LOG`], in the order [`sync_params`] binds and [`SyncSql::pending`] selects.
pub const SYNC_COLUMNS: [&str; 9] = [
    "org_id",
    "seq",
    "change_set_id",
    "at",
    "actor",
    "writes",
    "audit_ids",
    "event_ids",
    "intent",
];

/// The sync log's fixed statements.
#[derive(Clone, Debug)]
pub struct SyncSql {
    /// `INSERT INTO sync_heads (org_id, seq) VALUES (?, ?) ON CONFLICT (org_id) DO UPDATE SET seq =
    /// sync_heads.seq + 1 RETURNING seq`: bind the tenant and `1`; answers the tenant's next sequence.
    pub next_seq: String,
    /// `INSERT INTO sync_log (<SYNC_COLUMNS>) VALUES (...)`; parameters from [`sync_params`].
    pub insert: String,
    /// `SELECT <SYNC_COLUMNS> FROM sync_log WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?`.
    pub pending: String,
    /// `DELETE FROM sync_log WHERE org_id = ? AND seq <= ?`.
    pub mark_synced: String,
}

/// Any value: the statements are rendered for their text, the parameters are bound separately.
fn p() -> SqlValue {
    SqlValue::BigInt(None)
}

/// The cached sync log statements for a backend.
pub fn sync_sql(backend: Backend) -> &'static SyncSql {
    static SQLITE: OnceLock<SyncSql> = OnceLock::new();
    static POSTGRES: OnceLock<SyncSql> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| build(backend))
}

fn build(backend: Backend) -> SyncSql {
    let org = || Expr::col("org_id").eq(p());
    let next_seq = Query::insert()
        .into_table(SYNC_HEADS)
        .columns(["org_id", "seq"])
        .values_panic([p().into(), p().into()])
        .on_conflict(
            OnConflict::column("org_id")
                .value("seq", Expr::cust(format!("\"{SYNC_HEADS}\".\"seq\" + 1")))
                .to_owned(),
        )
        .returning_col("seq")
        .to_owned();
    let insert = Query::insert()
        .into_table(SYNC_LOG)
        .columns(SYNC_COLUMNS)
        .values_panic(SYNC_COLUMNS.map(|_| p().into()))
        .to_owned();
    let pending = Query::select()
        .columns(SYNC_COLUMNS)
        .from(SYNC_LOG)
        .and_where(org())
        .and_where(Expr::col("seq").gt(p()))
        .order_by("seq", Order::Asc)
        .limit(0)
        .to_owned();
    let mark_synced = Query::delete()
        .from_table(SYNC_LOG)
        .and_where(org())
        .and_where(Expr::col("seq").lte(p()))
        .to_owned();
    SyncSql {
        next_seq: backend.build(&next_seq).0,
        insert: backend.build(&insert).0,
        pending: backend.build(&pending).0,
        mark_synced: backend.build(&mark_synced).0,
    }
}

fn ids_json(ids: &[Id]) -> Json {
    Json::Array(ids.iter().map(|i| Json::String(i.to_string())).collect())
}

/// Parameters of [`SyncSql::insert`] (the entry's `seq` must be assigned).
pub fn sync_params(tenant: Id, e: &SyncEntry, backend: Backend) -> Vec<SqlValue> {
    let writes = serde_json::to_value(&e.writes).unwrap_or(Json::Array(Vec::new()));
    let intent = serde_json::to_value(&e.intent).unwrap_or(Json::Null);
    vec![
        SqlValue::Uuid(Some(tenant)),
        SqlValue::BigInt(Some(i64::try_from(e.seq).unwrap_or(i64::MAX))),
        SqlValue::Uuid(Some(e.change_set)),
        SqlValue::BigInt(Some(e.at.0)),
        SqlValue::Uuid(e.actor),
        to_sql_value(&Value::Json(writes), backend),
        to_sql_value(&Value::Json(ids_json(&e.audit)), backend),
        to_sql_value(&Value::Json(ids_json(&e.events)), backend),
        to_sql_value(&Value::Json(intent), backend),
    ]
}

/// The stored `writes` column; `None` if it is not what [`sync_params`] stores.
pub fn decode_writes(j: Json) -> Option<Vec<SyncWrite>> {
    serde_json::from_value(j).ok()
}

/// The stored `intent` column; `None` if it is not what [`sync_params`] stores.
pub fn decode_intent(j: Json) -> Option<Option<Intent>> {
    serde_json::from_value(j).ok()
}

/// A stored `audit_ids` or `event_ids` column; `None` if it is not an array of UUID strings.
pub fn decode_ids(j: &Json) -> Option<Vec<Id>> {
    j.as_array()?
        .iter()
        .map(|v| v.as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// `INSERT INTO leases (org_id, name, holder, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (org_id,
/// name) DO UPDATE SET holder, expires_at WHERE leases.holder = excluded.holder OR
/// leases.expires_at <= ?`: bind tenant, name, holder, until, now; one row changed means the lease
/// is the holder's ([`crm_core::store::Store::lease`]). One statement, so it is atomic on both
/// backends.
pub fn lease_sql(backend: Backend) -> &'static str {
    static SQLITE: OnceLock<String> = OnceLock::new();
    static POSTGRES: OnceLock<String> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| {
        let q = Query::insert()
            .into_table(LEASES)
            .columns(["org_id", "name", "holder", "expires_at"])
            .values_panic([p().into(), p().into(), p().into(), p().into()])
            .on_conflict(
                OnConflict::columns(["org_id", "name"])
                    .update_columns(["holder", "expires_at"])
                    .action_and_where(
                        Expr::cust(format!("\"{LEASES}\".\"holder\" = excluded.\"holder\"")).or(Expr::col((
                            LEASES,
                            "expires_at",
                        ))
                        .lte(p())),
                    )
                    .to_owned(),
            )
            .to_owned();
        backend.build(&q).0
    })
}

/// The idempotency key statements ([`crm_core::store::Store::idempotency_claim`] and
/// [`crm_core::store::Store::idempotency_settle`]); a claim runs `expire`, `claim` and, if
/// `claim` changed no row, `find`, in one transaction.
#[derive(Clone, Debug)]
pub struct IdempotencySql {
    /// `DELETE FROM idempotency_keys WHERE org_id = ? AND expires_at <= ?` (tenant, now).
    pub expire: String,
    /// `INSERT INTO idempotency_keys (org_id, caller, idem_key, fingerprint, expires_at) VALUES
    /// (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`: one row changed means claimed.
    pub claim: String,
    /// `SELECT fingerprint, expires_at, answer FROM idempotency_keys WHERE org_id = ? AND caller =
    /// ? AND idem_key = ?`.
    pub find: String,
    /// `UPDATE idempotency_keys SET answer = ? WHERE org_id = ? AND caller = ? AND idem_key = ? AND
    /// answer IS NULL`.
    pub answer: String,
    /// `UPDATE idempotency_keys SET answer = ?, expires_at = ? WHERE org_id = ? AND caller = ? AND
    /// idem_key = ? AND answer IS NULL`: a change set's [`crm_core::idempotency::Settle`], in its
    /// transaction (no row changed: the claim was lost, the change set is refused).
    pub settle: String,
    /// `DELETE FROM idempotency_keys WHERE org_id = ? AND caller = ? AND idem_key = ? AND answer IS
    /// NULL`.
    pub release: String,
}

/// [`IdempotencySql`] for `backend`, built once.
pub fn idempotency_sql(backend: Backend) -> &'static IdempotencySql {
    static SQLITE: OnceLock<IdempotencySql> = OnceLock::new();
    static POSTGRES: OnceLock<IdempotencySql> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| {
        let key = || {
            Expr::col("org_id")
                .eq(p())
                .and(Expr::col("caller").eq(p()))
                .and(Expr::col("idem_key").eq(p()))
        };
        let expire = Query::delete()
            .from_table(IDEMPOTENCY_KEYS)
            .and_where(Expr::col("org_id").eq(p()))
            .and_where(Expr::col("expires_at").lte(p()))
            .to_owned();
        let claim = Query::insert()
            .into_table(IDEMPOTENCY_KEYS)
            .columns(["org_id", "caller", "idem_key", "fingerprint", "expires_at"])
            .values_panic([p().into(), p().into(), p().into(), p().into(), p().into()])
            .on_conflict(
                OnConflict::columns(["org_id", "caller", "idem_key"])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        let find = Query::select()
            .columns(["fingerprint", "expires_at", "answer"])
            .from(IDEMPOTENCY_KEYS)
            .cond_where(key())
            .to_owned();
        let answer = Query::update()
            .table(IDEMPOTENCY_KEYS)
            .value("answer", p())
            .cond_where(key().and(Expr::col("answer").is_null()))
            .to_owned();
        let settle = Query::update()
            .table(IDEMPOTENCY_KEYS)
            .value("answer", p())
            .value("expires_at", p())
            .cond_where(key().and(Expr::col("answer").is_null()))
            .to_owned();
        let release = Query::delete()
            .from_table(IDEMPOTENCY_KEYS)
            .cond_where(key().and(Expr::col("answer").is_null()))
            .to_owned();
        IdempotencySql {
            expire: backend.build(&expire).0,
            claim: backend.build(&claim).0,
            find: backend.build(&find).0,
            answer: backend.build(&answer).0,
            settle: backend.build(&settle).0,
            release: backend.build(&release).0,
        }
    })
}

/// A stored idempotency key from the columns [`IdempotencySql::find`] selects; an `answer` that
/// is not what the stores write is `Corrupt`.
pub fn stored_key(fingerprint: String, expires_at: i64, answer: Option<String>) -> Result<StoredKey> {
    let answer = match answer {
        Some(text) => Some(
            serde_json::from_str::<Answer>(&text)
                .map_err(|_| Error::corrupt("idempotency_keys: undecodable answer"))?,
        ),
        None => None,
    };
    Ok(StoredKey {
        fingerprint,
        expires_at: Timestamp(expires_at),
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_render_for_both_backends() {
        let s = sync_sql(Backend::Sqlite);
        assert_eq!(
            s.next_seq,
            "INSERT INTO \"sync_heads\" (\"org_id\", \"seq\") VALUES (?, ?) ON CONFLICT (\"org_id\") DO UPDATE SET \"seq\" = \"sync_heads\".\"seq\" + 1 RETURNING \"seq\""
        );
        assert_eq!(
            s.mark_synced,
            "DELETE FROM \"sync_log\" WHERE \"org_id\" = ? AND \"seq\" <= ?"
        );
        let pg = sync_sql(Backend::Postgres);
        assert!(pg.next_seq.contains("VALUES ($1, $2) ON CONFLICT"), "{}", pg.next_seq);
        assert!(pg.pending.ends_with("ORDER BY \"seq\" ASC LIMIT $3"), "{}", pg.pending);
    }
}
