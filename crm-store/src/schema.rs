//! The SQL schema and its migrations, derived from the entity declarations.
//!
//! Every entity table has `id` and `org_id` (UUIDs), `version`, `created_at` and `updated_at`
//! (microseconds), one column per declared field, and `custom` (JSON text) when the entity takes custom
//! fields. Organizations are their own tenant: their `org_id` equals their `id`.
//!
//! Migrations are versioned and additive only (CREATE TABLE, ADD COLUMN, CREATE INDEX), derived from
//! the declarations: migration N creates the tables whose [`EntityDef::since`] is N (with the fields
//! declared up to N) and adds the columns whose [`FieldDef::since`] is N to older tables. Version 1
//! holds the tables (primary key `(org_id, id)`, which also serves every `org_id` lookup) and their
//! unique `(org_id, field)` indexes; version 2 the query indexes: `(org_id, created_at, id)`, each
//! `(org_id, ref, id)` and each `(org_id, cols..., id)` of [`EntityDef::indexes`]. An index of a later
//! table or column appears in the migration that adds it. An index added to the declaration of an
//! existing table needs an explicit step in [`extra_steps`], as does anything else that is not a
//! table or a column: version 3 adds the sync log tables ([`SYNC_LOG`], [`SYNC_HEADS`]), version 5
//! the [`LEASES`] table, version 6 the [`IDEMPOTENCY_KEYS`] table, version 15 the funnel's covering
//! index on leads, version 16 the sync log's `intent` column.

use crate::Backend;
use crm_core::entity;
use crm_core::schema::{EntityDef, FieldDef};
use crm_core::value::FieldType;
use sea_query::{ColumnDef, ColumnType, Index, IndexCreateStatement, Table, TableCreateStatement};

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 17;

/// Version of the first migration holding query indexes.
const QUERY_INDEXES: u32 = 2;

/// Version of the migration that adds the sync log tables.
const SYNC_TABLES: u32 = 3;

/// Version of the migration that adds the leases table.
const LEASE_TABLE: u32 = 5;

/// Version of the migration that adds the idempotency keys table.
const IDEMPOTENCY_TABLE: u32 = 6;

/// Version of the migration that adds the funnel's covering index on leads: `(org_id, status,
/// estimated_value)`, so leads by status with their value (the funnel, the pipeline summary) read
/// the index alone. Without it SQLite found the rows through `(org_id, status, score)` and read
/// each row for its value: 2.46 s against 0.25 s over 1,000,000 leads (benches/README.md).
const FUNNEL_INDEX: u32 = 15;

/// Version of the migration that adds the sync log's `intent` column (the use case a server
/// replays, [`crm_core::sync::Intent`]; JSON `null` for entries logged before) and the
/// `sync_rejections` table (from its declaration).
const SYNC_INTENT: u32 = 16;

/// The system tables.
pub const AUDIT_LOG: &str = "audit_log";
pub const OUTBOX: &str = "outbox";
pub const TENANT_HEADS: &str = "tenant_heads";
pub const SCHEMA_MIGRATIONS: &str = "schema_migrations";
/// The local change-set log ([`crm_core::sync`]): one row per logged change set, primary key
/// `(org_id, seq)`; `change_set_id`, `at`, `actor`, and JSON columns `writes` (the
/// [`crm_core::sync::SyncWrite`]s), `audit_ids` and `event_ids` (arrays of UUID strings) and, since
/// version 16, `intent` (the [`crm_core::sync::Intent`], JSON `null` when there is none).
pub const SYNC_LOG: &str = "sync_log";
/// The last sync log sequence per tenant (`org_id`, `seq`), so sequence numbers survive the removal
/// of synced entries.
pub const SYNC_HEADS: &str = "sync_heads";
/// Leases between server instances ([`crm_core::store::Store::lease`]): primary key `(org_id,
/// name)`, the `holder` (a UUID) and when the lease ends (`expires_at`, microseconds).
pub const LEASES: &str = "leases";
/// Idempotency keys ([`crm_core::store::Store::idempotency_claim`]): primary key `(org_id, caller,
/// idem_key)`, the request's `fingerprint`, when the key expires (`expires_at`, microseconds) and
/// the remembered `answer` (JSON text of [`crm_core::idempotency::Answer`], NULL while the first
/// request runs); indexed by `(org_id, expires_at)` for removing expired keys.
pub const IDEMPOTENCY_KEYS: &str = "idempotency_keys";

/// The column holding custom field values (JSON text).
pub const CUSTOM: &str = "custom";

/// One migration: its version and the statements it runs, in order, in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub statements: Vec<String>,
}

/// Every migration, oldest first, rendered for `backend`.
pub fn migrations(backend: Backend) -> Vec<Migration> {
    (1..=SCHEMA_VERSION)
        .map(|v| Migration {
            version: v,
            statements: migration(backend, v),
        })
        .collect()
}

/// The highest version the declarations and the extra steps ask for (must equal [`SCHEMA_VERSION`]).
pub fn declared_version() -> u32 {
    let defs = entity::all();
    let entities = defs.iter().map(|d| d.since);
    let fields = defs.iter().flat_map(|d| d.fields.iter().map(|f| f.since));
    entities
        .chain(fields)
        .chain([
            QUERY_INDEXES,
            SYNC_TABLES,
            LEASE_TABLE,
            IDEMPOTENCY_TABLE,
            FUNNEL_INDEX,
            SYNC_INTENT,
        ])
        .max()
        .unwrap_or(1)
}

/// `CREATE TABLE schema_migrations`, run before anything else (it records the applied versions).
pub fn migrations_table(backend: Backend) -> String {
    backend.schema(
        Table::create()
            .table(SCHEMA_MIGRATIONS)
            .if_not_exists()
            .col(
                ColumnDef::new_with_type("version", ColumnType::BigInteger)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new_with_type("applied_at", ColumnType::BigInteger).not_null()),
    )
}

fn migration(backend: Backend, version: u32) -> Vec<String> {
    let mut out = Vec::new();
    if version == 1 {
        out.extend(system_tables(backend).iter().map(|t| backend.schema(t)));
    }
    for def in entity::all() {
        if def.since == version {
            out.push(backend.schema(&create_table(backend, def, version)));
        } else if def.since < version {
            for f in def.fields.iter().filter(|f| f.since == version) {
                let add = Table::alter()
                    .table(def.table)
                    .add_column(column(backend, f))
                    .to_owned();
                out.push(backend.schema(&add));
            }
        }
        if def.since <= version {
            for f in def
                .fields
                .iter()
                .filter(|f| f.unique && f.since.max(def.since) == version)
            {
                out.push(backend.schema(&unique_index(def, f)));
            }
            for idx in query_indexes(def) {
                if index_version(def, &idx) == version {
                    out.push(backend.schema(&idx.statement(def)));
                }
            }
        }
    }
    out.extend(extra_steps(backend, version));
    out
}

/// Steps that are not derived from the declarations, by version.
pub fn extra_steps(backend: Backend, version: u32) -> Vec<String> {
    match version {
        // Record history: audit entries of one record, in order.
        2 => vec![
            backend.schema(
                Index::create()
                    .name("idx_audit_log_entity")
                    .table(AUDIT_LOG)
                    .col("org_id")
                    .col("entity_id")
                    .col("seq")
                    .if_not_exists(),
            ),
        ],
        // The local change-set log (created everywhere; written only by stores that enable it).
        SYNC_TABLES => sync_tables(backend).iter().map(|t| backend.schema(t)).collect(),
        LEASE_TABLE => vec![
            backend.schema(
                Table::create()
                    .table(LEASES)
                    .col(sys("org_id", uuid_type(backend)))
                    .col(sys("name", ColumnType::Text))
                    .col(sys("holder", uuid_type(backend)))
                    .col(sys("expires_at", ColumnType::BigInteger))
                    .primary_key(Index::create().col("org_id").col("name")),
            ),
        ],
        IDEMPOTENCY_TABLE => vec![
            backend.schema(
                Table::create()
                    .table(IDEMPOTENCY_KEYS)
                    .col(sys("org_id", uuid_type(backend)))
                    .col(sys("caller", ColumnType::Text))
                    .col(sys("idem_key", ColumnType::Text))
                    .col(sys("fingerprint", ColumnType::Text))
                    .col(sys("expires_at", ColumnType::BigInteger))
                    .col(ColumnDef::new_with_type("answer", ColumnType::Text).null())
                    .primary_key(Index::create().col("org_id").col("caller").col("idem_key")),
            ),
            backend.schema(
                Index::create()
                    .name("idx_idempotency_keys_expiry")
                    .table(IDEMPOTENCY_KEYS)
                    .col("org_id")
                    .col("expires_at")
                    .if_not_exists(),
            ),
        ],
        FUNNEL_INDEX => vec![
            backend.schema(
                Index::create()
                    .name("idx_leads_funnel")
                    .table(entity::LEAD.table)
                    .col("org_id")
                    .col(entity::lead::fields::STATUS)
                    .col(entity::lead::fields::ESTIMATED_VALUE)
                    .if_not_exists(),
            ),
        ],
        SYNC_INTENT => vec![
            backend.schema(
                Table::alter().table(SYNC_LOG).add_column(
                    ColumnDef::new_with_type("intent", json_type(backend))
                        .not_null()
                        .default(sea_query::Expr::cust("'null'"))
                        .to_owned(),
                ),
            ),
        ],
        STAGE_HISTORY => stage_backfill(backend),
        entity::auth::WEBHOOK_CREATOR_SINCE => vec![webhook_creator_backfill()],
        _ => Vec::new(),
    }
}

/// Version of the migration that adds the stage history and backfills it from the audit log.
const STAGE_HISTORY: u32 = 7;

/// Fills the new stage history from the audit log: one stage change per audit entry that set or
/// changed a staged field (`INSERT ... SELECT` over the entries' JSON changes). The row takes the
/// audit entry's id, time and actor, and the owner and team the record has now; the history of
/// deleted records is not kept (as a delete removes it).
fn stage_backfill(backend: Backend) -> Vec<String> {
    use entity::stage::{self, STAGE_CHANGE, fields as s};
    stage::staged()
        // Types added later start with an empty table and record their stages from their first write.
        .filter(|def| def.since <= STAGE_HISTORY)
        .filter_map(|def| {
            let field = stage::state_field(def)?;
            let col = |f: Option<&str>| f.map_or("NULL".to_owned(), |f| format!("r.{f}"));
            let (record_id, elems, get) = match backend {
                Backend::Sqlite => (
                    "lower(substr(hex(a.entity_id), 1, 8) || '-' || substr(hex(a.entity_id), 9, 4) || '-' || \
                     substr(hex(a.entity_id), 13, 4) || '-' || substr(hex(a.entity_id), 17, 4) || '-' || \
                     substr(hex(a.entity_id), 21))",
                    "json_each(a.changes) c",
                    (|k: &str| format!("json_extract(c.value, '$.{k}')")) as fn(&str) -> String,
                ),
                Backend::Postgres => (
                    "a.entity_id::text",
                    "jsonb_array_elements(a.changes) c",
                    (|k: &str| format!("(c.value ->> '{k}')")) as fn(&str) -> String,
                ),
            };
            Some(format!(
                "INSERT INTO {table} (id, org_id, version, created_at, updated_at, {entity}, {record}, {from}, \
                 {to}, {at}, {by}, {owner}, {team}) \
                 SELECT a.id, a.org_id, 1, a.at, a.at, a.entity, {record_id}, {old}, {new}, a.at, a.actor, \
                 {r_owner}, {r_team} \
                 FROM {audit} a JOIN {src} r ON r.org_id = a.org_id AND r.id = a.entity_id CROSS JOIN {elems} \
                 WHERE a.entity = '{name}' AND {fname} = '{field}' AND {new} IS NOT NULL",
                table = STAGE_CHANGE.table,
                entity = s::ENTITY,
                record = s::RECORD_ID,
                from = s::FROM_STATE,
                to = s::TO_STATE,
                at = s::AT,
                by = s::CHANGED_BY,
                owner = s::OWNER_ID,
                team = s::TEAM_ID,
                old = get("old"),
                new = get("new"),
                fname = get("field"),
                r_owner = col(def.owner_field),
                r_team = col(def.team_field),
                audit = AUDIT_LOG,
                src = def.table,
                name = def.name,
            ))
        })
        .collect()
}

/// Fills the new `created_by` of existing webhooks with the actor of each one's first audit entry
/// (its creation; NULL when the system created it, which keeps the system's reading of events).
fn webhook_creator_backfill() -> String {
    use entity::auth::webhook_fields::CREATED_BY;
    let t = entity::WEBHOOK.table;
    format!(
        "UPDATE {t} SET {CREATED_BY} = (SELECT a.actor FROM {AUDIT_LOG} a \
         WHERE a.org_id = {t}.org_id AND a.entity_id = {t}.id ORDER BY a.seq LIMIT 1)"
    )
}

fn sync_tables(backend: Backend) -> Vec<TableCreateStatement> {
    let uuid = || uuid_type(backend);
    let json = || json_type(backend);
    let big = || ColumnType::BigInteger;
    vec![
        Table::create()
            .table(SYNC_LOG)
            .col(sys("org_id", uuid()))
            .col(sys("seq", big()))
            .col(sys("change_set_id", uuid()))
            .col(sys("at", big()))
            .col(ColumnDef::new_with_type("actor", uuid()).null())
            .col(sys("writes", json()))
            .col(sys("audit_ids", json()))
            .col(sys("event_ids", json()))
            .primary_key(Index::create().col("org_id").col("seq"))
            .to_owned(),
        Table::create()
            .table(SYNC_HEADS)
            .col(ColumnDef::new_with_type("org_id", uuid()).not_null().primary_key())
            .col(sys("seq", big()))
            .to_owned(),
    ]
}

/// The SQL type of a declared field.
pub fn column_type(backend: Backend, ty: &FieldType) -> ColumnType {
    match ty {
        FieldType::Text
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Enum
        | FieldType::Date
        | FieldType::MultiEnum
        | FieldType::Tags => ColumnType::Text,
        FieldType::Integer | FieldType::Money | FieldType::Decimal | FieldType::Timestamp => ColumnType::BigInteger,
        FieldType::Number => ColumnType::Double,
        FieldType::Bool => ColumnType::Boolean,
        FieldType::Ref(_) => uuid_type(backend),
        FieldType::Json => json_type(backend),
    }
}

/// UUIDs: 16-byte blobs in SQLite, `uuid` in PostgreSQL.
pub fn uuid_type(backend: Backend) -> ColumnType {
    match backend {
        Backend::Sqlite => ColumnType::Binary(16),
        Backend::Postgres => ColumnType::Uuid,
    }
}

/// JSON documents: text in SQLite, `jsonb` in PostgreSQL.
pub fn json_type(backend: Backend) -> ColumnType {
    match backend {
        Backend::Sqlite => ColumnType::Text,
        Backend::Postgres => ColumnType::JsonBinary,
    }
}

fn column(backend: Backend, f: &FieldDef) -> ColumnDef {
    let ty = column_type(backend, &f.spec.ty);
    let mut c = ColumnDef::new_with_type(f.name, ty.clone()).null().to_owned();
    if backend == Backend::Postgres && ty == ColumnType::Text {
        // Text compares and sorts by bytes, as in memory and in SQLite (`BINARY`), whatever the
        // database's default collation; the indexes then serve those sorts.
        c.extra("COLLATE \"C\"");
    }
    c
}

fn sys(name: &'static str, ty: ColumnType) -> ColumnDef {
    ColumnDef::new_with_type(name, ty).not_null().to_owned()
}

/// `CREATE TABLE` for an entity as it is at `version` (fields declared since a later version are added
/// by their own migration).
pub fn create_table(backend: Backend, def: &EntityDef, version: u32) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(def.table)
        .col(sys("id", uuid_type(backend)))
        .col(sys("org_id", uuid_type(backend)))
        .col(sys("version", ColumnType::BigInteger))
        .col(sys("created_at", ColumnType::BigInteger))
        .col(sys("updated_at", ColumnType::BigInteger));
    for f in def.fields.iter().filter(|f| f.since <= version) {
        t.col(column(backend, f));
    }
    if def.custom_fields {
        t.col(ColumnDef::new_with_type(CUSTOM, json_type(backend)).null());
    }
    // Ids are unique per tenant, as in memory; the key also serves every `org_id` lookup and the
    // default order of a listing (by id).
    t.primary_key(Index::create().col("org_id").col("id"));
    t.to_owned()
}

fn unique_index(def: &EntityDef, f: &FieldDef) -> IndexCreateStatement {
    Index::create()
        .name(format!("uq_{}_{}", def.table, f.name))
        .table(def.table)
        .col("org_id")
        .col(f.name)
        .unique()
        .if_not_exists()
        .to_owned()
}

/// A query index: `(org_id, cols..., id)`. The trailing `id` matches the tie-break every sorted
/// query ends with (and the keyset predicate on it), so pages need no sort within ties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryIndex {
    pub cols: Vec<&'static str>,
}

impl QueryIndex {
    pub fn name(&self, def: &EntityDef) -> String {
        format!("idx_{}_{}", def.table, self.cols.join("_"))
    }

    fn statement(&self, def: &EntityDef) -> IndexCreateStatement {
        let mut i = Index::create();
        i.name(self.name(def)).table(def.table).col("org_id").if_not_exists();
        for c in &self.cols {
            i.col(*c);
        }
        if !self.cols.contains(&"id") {
            i.col("id");
        }
        i.to_owned()
    }
}

/// The query indexes of an entity: `created_at` (the default order of a listing, newest first), one
/// per reference field that no declared index already leads with, then the declared ones
/// (deduplicated). Every index costs every insert, so none is added twice.
pub fn query_indexes(def: &EntityDef) -> Vec<QueryIndex> {
    let refs = def
        .fields
        .iter()
        .filter(|f| matches!(f.spec.ty, FieldType::Ref(_)))
        .filter(|f| !def.indexes.iter().any(|cols| cols.first() == Some(&f.name)))
        .map(|f| vec![f.name]);
    let declared = def.indexes.iter().map(|cols| cols.to_vec());
    let mut out: Vec<QueryIndex> = Vec::new();
    for cols in std::iter::once(vec!["created_at"]).chain(refs).chain(declared) {
        if !out.iter().any(|i| i.cols == cols) {
            out.push(QueryIndex { cols });
        }
    }
    out
}

/// The migration that creates an index: the query-index migration, or the later one that adds its
/// table or one of its columns.
fn index_version(def: &EntityDef, idx: &QueryIndex) -> u32 {
    let cols = idx.cols.iter().filter_map(|c| def.def(c)).map(|f| f.since);
    cols.chain([def.since, QUERY_INDEXES]).max().unwrap_or(QUERY_INDEXES)
}

fn system_tables(backend: Backend) -> Vec<TableCreateStatement> {
    let uuid = || uuid_type(backend);
    let json = || json_type(backend);
    let big = || ColumnType::BigInteger;
    let pk = || Index::create().col("org_id").col("seq").to_owned();
    vec![
        Table::create()
            .table(AUDIT_LOG)
            .col(sys("org_id", uuid()))
            .col(sys("seq", big()))
            .col(sys("id", uuid()))
            .col(sys("at", big()))
            .col(ColumnDef::new_with_type("actor", uuid()).null())
            .col(sys("action", ColumnType::Text))
            .col(sys("entity", ColumnType::Text))
            .col(ColumnDef::new_with_type("entity_id", uuid()).null())
            .col(sys("changes", json()))
            .col(sys("prev_hash", ColumnType::Text))
            .col(sys("hash", ColumnType::Text))
            .primary_key(&mut pk())
            .to_owned(),
        Table::create()
            .table(OUTBOX)
            .col(sys("org_id", uuid()))
            .col(sys("seq", big()))
            .col(sys("id", uuid()))
            .col(sys("at", big()))
            .col(sys("kind", ColumnType::Text))
            .col(sys("entity", ColumnType::Text))
            .col(ColumnDef::new_with_type("entity_id", uuid()).null())
            .col(sys("payload", json()))
            .primary_key(&mut pk())
            .to_owned(),
        Table::create()
            .table(TENANT_HEADS)
            .col(ColumnDef::new_with_type("org_id", uuid()).not_null().primary_key())
            .col(sys("audit_seq", big()))
            .col(sys("audit_hash", ColumnType::Text))
            .col(sys("event_seq", big()))
            .to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_version_constant_matches_the_declarations() {
        assert_eq!(SCHEMA_VERSION, declared_version());
        assert_eq!(
            SCHEMA_VERSION,
            crm_core::sync::SCHEMA_VERSION,
            "what a push says it was written under"
        );
        assert_eq!(
            migrations(Backend::Sqlite)
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            (1..=SCHEMA_VERSION).collect::<Vec<_>>()
        );
    }

    #[test]
    fn migrations_only_add() {
        for b in [Backend::Sqlite, Backend::Postgres] {
            for m in migrations(b) {
                assert!(!m.statements.is_empty());
                // A backfill only fills a table the same migration creates.
                let created: Vec<&str> = m
                    .statements
                    .iter()
                    .filter_map(|s| s.strip_prefix("CREATE TABLE "))
                    .filter_map(|s| {
                        s.split_whitespace()
                            .find(|w| *w != "IF" && *w != "NOT" && *w != "EXISTS")
                    })
                    .map(|t| t.trim_matches(|c| c == '"' || c == '`'))
                    .collect();
                // ... or a column the same migration adds.
                let unquote = |w: &str| w.trim_matches(|c| c == '"' || c == '`').to_owned();
                let added: Vec<(String, String)> = m
                    .statements
                    .iter()
                    .filter_map(|s| {
                        let rest = s.strip_prefix("ALTER TABLE ")?;
                        let mut w = rest.split_whitespace();
                        let table = unquote(w.next()?);
                        let column = unquote(w.nth(2)?);
                        Some((table, column))
                    })
                    .collect();
                for s in &m.statements {
                    let filled_column = s.strip_prefix("UPDATE ").is_some_and(|rest| {
                        let w: Vec<&str> = rest.split_whitespace().take(3).collect();
                        w.len() == 3 && w[1] == "SET" && added.contains(&(unquote(w[0]), unquote(w[2])))
                    });
                    let backfill = filled_column
                        || s.strip_prefix("INSERT INTO ")
                            .and_then(|s| s.split_whitespace().next())
                            .is_some_and(|t| created.contains(&t));
                    let additive = s.starts_with("CREATE TABLE ")
                        || s.starts_with("CREATE INDEX ")
                        || s.starts_with("CREATE UNIQUE INDEX ")
                        || (s.starts_with("ALTER TABLE ") && s.contains(" ADD COLUMN "))
                        || backfill;
                    assert!(additive, "{s}");
                }
            }
        }
    }

    #[test]
    fn every_table_and_column_is_created_once() {
        let all: Vec<String> = migrations(Backend::Sqlite)
            .into_iter()
            .flat_map(|m| m.statements)
            .collect();
        for def in entity::all() {
            let create = format!("CREATE TABLE \"{}\" (", def.table);
            let creates: Vec<&String> = all.iter().filter(|s| s.starts_with(&create)).collect();
            assert_eq!(creates.len(), 1, "{}", def.table);
            for f in &def.fields {
                let col = format!("\"{}\" ", f.name);
                let n = all
                    .iter()
                    .filter(|s| s.contains(&format!("\"{}\"", def.table)) && !s.contains(" INDEX "))
                    .filter(|s| s.contains(&col))
                    .count();
                assert_eq!(n, 1, "{}.{}", def.table, f.name);
            }
            assert_eq!(creates[0].contains("\"custom\" text"), def.custom_fields);
            assert!(
                creates[0].contains("PRIMARY KEY (\"org_id\", \"id\")"),
                "{}",
                creates[0]
            );
            for f in def.fields.iter().filter(|f| f.unique) {
                assert!(all.iter().any(|s| s.starts_with(&format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS \"uq_{}_{}\" ON \"{}\" (\"org_id\", \"{}\")",
                    def.table, f.name, def.table, f.name
                ))));
            }
        }
        for t in [AUDIT_LOG, OUTBOX, TENANT_HEADS, SYNC_LOG, SYNC_HEADS] {
            assert!(
                all.iter().any(|s| s.starts_with(&format!("CREATE TABLE \"{t}\" ("))),
                "{t}"
            );
        }
    }

    #[test]
    fn version_two_holds_the_query_indexes() {
        let v2 = &migrations(Backend::Sqlite)[1].statements;
        assert!(v2.contains(&"CREATE INDEX IF NOT EXISTS \"idx_leads_status_score\" ON \"leads\" (\"org_id\", \"status\", \"score\", \"id\")".to_owned()));
        assert!(
            v2.contains(
                &"CREATE INDEX IF NOT EXISTS \"idx_leads_contact_id\" ON \"leads\" (\"org_id\", \"contact_id\", \"id\")"
                    .to_owned()
            )
        );
        let v1 = &migrations(Backend::Sqlite)[0].statements;
        assert!(!v1.iter().any(|s| s.starts_with("CREATE INDEX")), "{v1:?}");
        // No reference index where a declared index already leads with the field.
        let lead = query_indexes(&entity::LEAD);
        assert_eq!(lead.iter().filter(|i| i.cols[0] == "owner_id").count(), 1);
        assert!(lead.iter().any(|i| i.cols == ["owner_id", "status", "score"]));
    }

    #[test]
    fn postgres_gets_native_types() {
        let all = migrations(Backend::Postgres)
            .into_iter()
            .flat_map(|m| m.statements)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("\"id\" uuid NOT NULL"), "{all}");
        assert!(all.contains("\"custom\" jsonb NULL"));
        assert!(all.contains("\"created_at\" bigint NOT NULL"));
        assert!(all.contains("\"latitude\" double precision NULL"));
        assert!(all.contains("\"city\" text NULL COLLATE \"C\""), "{all}");
        assert!(all.contains("\"active\" bool NULL") || all.contains("\"active\" boolean NULL"));
        assert!(migrations_table(Backend::Postgres).starts_with("CREATE TABLE IF NOT EXISTS \"schema_migrations\""));
    }
}
