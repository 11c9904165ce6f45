//! PostgreSQL's raw create with the same rows as the service's (see `same_rows.rs` for SQLite's):
//! in one transaction, written the plain sqlx way (one statement a row), the tenant's head row read
//! `FOR UPDATE`, the lead, its stage change, its audit entry (every set field's JSON value, sealed
//! with `AuditEntry::seal`, stored as `jsonb`), its `lead.created` event (the lead as `jsonb`), and
//! the head updated.

use super::{LeadRow, Res, insert_columns};
use crm_core::clock::{IdGen, RandomIds};
use crm_core::entity::{LEAD, STAGE_CHANGE};
use crm_core::value::{FieldType, Id, Money, Timestamp, Value};
use crm_store::schema::{AUDIT_LOG, OUTBOX, TENANT_HEADS};
use crm_store::sql as ssql;
use sea_query::Value as SV;
use sea_query_sqlx::SqlxValues;
use serde_json::Value as Json;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection as _, Row};

/// Copies of the tables a create writes (`bench_raw_<table>`, indexes included) and its statements.
pub(super) struct Tables {
    names: Vec<String>,
    stage_cols: Vec<&'static str>,
    insert_lead: String,
    insert_stage: String,
    insert_audit: String,
    insert_event: String,
    lock_head: String,
    update_head: String,
}

/// Who creates, for whom, when (as for SQLite's baseline).
pub(super) use super::same_rows::Ctx;

impl Tables {
    /// Copies of `stage_changes`, `audit_log`, `outbox` and `tenant_heads` (with `tenant`'s head
    /// row); the leads go to `leads`, the copy the single-row baseline writes.
    pub async fn copy(c: &mut PgConnection, leads: &str, tenant: Id) -> Res<Tables> {
        let mut names = Vec::new();
        for t in [STAGE_CHANGE.table, AUDIT_LOG, OUTBOX, TENANT_HEADS] {
            names.push(super::pg::clone_table(c, t, true).await?);
        }
        let [stages, audit, outbox, heads] = [0, 1, 2, 3].map(|i| names[i].clone());
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO \"{heads}\" (org_id, audit_seq, audit_hash, event_seq) VALUES ($1, 0, '', 0)"
        )))
        .bind(tenant)
        .execute(&mut *c)
        .await?;
        let lead_cols = insert_columns(&LEAD);
        let stage_cols = insert_columns(&STAGE_CHANGE);
        let params = |n: usize| (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        Ok(Tables {
            insert_lead: ssql::pg_insert_values(leads, &lead_cols, 1, 1),
            insert_stage: ssql::pg_insert_values(&stages, &stage_cols, 1, 1),
            insert_audit: format!(
                "INSERT INTO \"{audit}\" (org_id, seq, id, at, actor, action, entity, entity_id, changes, prev_hash, hash) \
                 VALUES ({})",
                params(11)
            ),
            insert_event: format!(
                "INSERT INTO \"{outbox}\" (org_id, seq, id, at, kind, entity, entity_id, payload) VALUES ({})",
                params(8)
            ),
            lock_head: format!("SELECT audit_seq, audit_hash, event_seq FROM \"{heads}\" WHERE org_id = $1 FOR UPDATE"),
            update_head: format!(
                "UPDATE \"{heads}\" SET audit_seq = $1, audit_hash = $2, event_seq = $3 WHERE org_id = $4"
            ),
            names,
            stage_cols,
        })
    }

    pub async fn remove(self, c: &mut PgConnection) -> Res<()> {
        for t in &self.names {
            sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE \"{t}\"")))
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    }

    /// One create: `lead` holds the lead's column values in [`insert_columns`] order.
    pub async fn create(&self, c: &mut PgConnection, r: &LeadRow, lead: Vec<SV>, cx: &Ctx<'_>) -> Res<()> {
        let now = cx.now;
        let o = &cx.owners[r.owner];
        let mut created = super::same_rows::Created::new(true);
        for (col, v) in insert_columns(&LEAD).iter().zip(&lead) {
            if let Some(f) = LEAD.def(col) {
                created.field(f.name, json_of(&f.spec.ty, v));
            }
        }
        let (changes, payload) = created.finish(r.id, now);
        let stage: Vec<SV> = self
            .stage_cols
            .iter()
            .map(|col| match *col {
                "id" => SV::Uuid(Some(RandomIds.new_id(now))),
                "org_id" => SV::Uuid(Some(cx.tenant)),
                "version" => SV::BigInt(Some(1)),
                "created_at" | "updated_at" | "at" => SV::BigInt(Some(now.0)),
                "entity" => SV::String(Some(LEAD.name.into())),
                "record_id" => SV::String(Some(r.id.to_string())),
                "to_state" => SV::String(Some(r.status.into())),
                "changed_by" => SV::Uuid(Some(cx.actor)),
                "owner_id" => SV::Uuid(Some(o.id)),
                "team_id" => SV::Uuid(Some(o.team)),
                _ => SV::String(None),
            })
            .collect();

        let mut tx = c.begin().await?;
        let head = sqlx::query(AssertSqlSafe(self.lock_head.clone()))
            .bind(cx.tenant)
            .fetch_one(&mut *tx)
            .await?;
        let (audit_seq, audit_hash, event_seq): (i64, String, i64) =
            (head.try_get(0)?, head.try_get(1)?, head.try_get(2)?);
        for (sql, values) in [(&self.insert_lead, lead), (&self.insert_stage, stage)] {
            sqlx::query_with(AssertSqlSafe(sql.clone()), SqlxValues(sea_query::Values(values)))
                .execute(&mut *tx)
                .await?;
        }
        let entry = super::same_rows::created_entry(
            cx.tenant,
            cx.actor,
            r.id,
            changes,
            now,
            audit_seq as u64 + 1,
            &audit_hash,
        );
        sqlx::query(AssertSqlSafe(self.insert_audit.clone()))
            .bind(cx.tenant)
            .bind(entry.seq as i64)
            .bind(entry.id)
            .bind(now.0)
            .bind(cx.actor)
            .bind(&entry.action)
            .bind(&entry.entity)
            .bind(r.id)
            .bind(serde_json::to_value(&entry.changes)?)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(self.insert_event.clone()))
            .bind(cx.tenant)
            .bind(event_seq + 1)
            .bind(RandomIds.new_id(now))
            .bind(now.0)
            .bind("lead.created")
            .bind(LEAD.name)
            .bind(r.id)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(self.update_head.clone()))
            .bind(entry.seq as i64)
            .bind(&entry.hash)
            .bind(event_seq + 1)
            .bind(cx.tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A column value as the core's JSON form for a field of type `ty`.
fn json_of(ty: &FieldType, v: &SV) -> Json {
    let value = match (v, ty) {
        (SV::BigInt(Some(i)), FieldType::Money) => Value::Money(Money(*i)),
        (SV::BigInt(Some(i)), FieldType::Timestamp) => Value::Timestamp(Timestamp(*i)),
        (SV::BigInt(Some(i)), _) => Value::Int(*i),
        (SV::Uuid(Some(id)), _) => Value::Id(*id),
        (SV::String(Some(s)), _) => Value::Text(s.clone()),
        _ => Value::Null,
    };
    value.to_json()
}
