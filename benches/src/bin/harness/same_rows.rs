//! Raw baselines that write the rows the service writes for a lead, straight into copies of their
//! tables (with the store's indexes, DDL copied from `sqlite_master`) with prepared statements:
//!
//! - the lead row;
//! - the stage change recording it entering its status (`stage_changes`);
//! - its audit entry: every set field's JSON value (the core's forms), sealed into the hash chain
//!   with `AuditEntry::seal`, the changes stored as JSON text as the SQLite store stores them;
//! - for a single create, also its `lead.created` event (the lead as JSON) in the outbox, with the
//!   tenant's head read and updated in the same transaction.
//!
//! The service's ratio against these is what it costs over writing what the rules require; these
//! baselines' ratio against the leads-only insert is what the rules' rows cost on their own.

use super::{LeadRow, Owner, Res, clone_table_into, insert_columns, insert_sql, lead_value, raw_fit_score};
use crm_core::change::{AuditEntry, FieldChange};
use crm_core::clock::{IdGen, RandomIds};
use crm_core::entity::{LEAD, STAGE_CHANGE};
use crm_core::value::{FieldType, Id, Money, Timestamp, Value};
use crm_store::schema::{AUDIT_LOG, OUTBOX, TENANT_HEADS};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, params};
use serde_json::{Map, Value as Json};
use std::time::{Duration, Instant};

const AUDIT_COLUMNS: &str = "org_id, seq, id, at, actor, action, entity, entity_id, changes, prev_hash, hash";
const EVENT_COLUMNS: &str = "org_id, seq, id, at, kind, entity, entity_id, payload";

/// Copies of the tables a lead's rows go to, and the statements that write them.
pub(super) struct Tables {
    names: Vec<String>,
    lead_cols: Vec<&'static str>,
    stage_cols: Vec<&'static str>,
    insert_lead: String,
    insert_stage: String,
    insert_audit: String,
    insert_event: String,
    read_head: String,
    update_head: String,
}

/// The tenant's chain heads (as `tenant_heads` holds them).
#[derive(Default)]
struct Head {
    audit_seq: u64,
    audit_hash: String,
    event_seq: u64,
}

/// Who writes, for whom, when.
pub(super) struct Ctx<'a> {
    pub tenant: Id,
    pub actor: Id,
    pub owners: &'a [Owner],
    pub now: Timestamp,
}

/// Mean stored sizes of what [`Tables::write`] wrote, to compare with the service's rows.
#[derive(Default)]
pub(super) struct Sizes {
    rows: usize,
    changes: usize,
    payload: usize,
}

impl Sizes {
    pub fn changes(&self) -> f64 {
        self.changes as f64 / self.rows.max(1) as f64
    }
    pub fn payload(&self) -> f64 {
        self.payload as f64 / self.rows.max(1) as f64
    }
}

impl Tables {
    /// Fresh, empty copies named `bench_same_<table>`, the head row of `tenant` included.
    pub fn copy(c: &Connection, tenant: Id) -> Res<Tables> {
        Self::copy_into(c, c, tenant)
    }

    /// [`Tables::copy`] made in `c` (another file) from the tables of `from`.
    pub fn copy_into(from: &Connection, c: &Connection, tenant: Id) -> Res<Tables> {
        let copy = |t: &str| clone_table_into(from, c, t, "same", true);
        let (leads, stages, audit) = (copy(LEAD.table)?, copy(STAGE_CHANGE.table)?, copy(AUDIT_LOG)?);
        let (outbox, heads) = (copy(OUTBOX)?, copy(TENANT_HEADS)?);
        c.execute(
            &format!("INSERT INTO {heads} (org_id, audit_seq, audit_hash, event_seq) VALUES (?1, 0, '', 0)"),
            [&tenant.as_bytes()[..]],
        )?;
        let (lead_cols, stage_cols) = (insert_columns(&LEAD), insert_columns(&STAGE_CHANGE));
        let params = |n: usize| (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        Ok(Tables {
            insert_lead: insert_sql(&leads, &lead_cols),
            insert_stage: insert_sql(&stages, &stage_cols),
            insert_audit: format!("INSERT INTO {audit} ({AUDIT_COLUMNS}) VALUES ({})", params(11)),
            insert_event: format!("INSERT INTO {outbox} ({EVENT_COLUMNS}) VALUES ({})", params(8)),
            read_head: format!("SELECT audit_seq, audit_hash, event_seq FROM {heads} WHERE org_id = ?1"),
            update_head: format!(
                "UPDATE {heads} SET audit_seq = ?1, audit_hash = ?2, event_seq = ?3 WHERE org_id = ?4"
            ),
            names: vec![leads, stages, audit, outbox, heads],
            lead_cols,
            stage_cols,
        })
    }

    pub fn remove(self, c: &Connection) -> Res<()> {
        for t in &self.names {
            c.execute_batch(&format!("DROP TABLE {t}"))?;
        }
        Ok(())
    }

    /// An import: every lead of `rows` with its stage change and audit entry, in one transaction
    /// (the head read once, as the store reads it once per change set). Returns the time from
    /// `BEGIN` to the commit's end.
    pub fn import(&self, c: &mut Connection, rows: &[LeadRow], cx: &Ctx<'_>, sizes: &mut Sizes) -> Res<Duration> {
        let start = Instant::now();
        let tx = c.transaction()?;
        let mut head = self.head(&tx, cx.tenant)?;
        for r in rows {
            self.write(&tx, r, cx, &mut head, false, sizes)?;
        }
        self.set_head(&tx, cx.tenant, &head)?;
        tx.commit()?;
        Ok(start.elapsed())
    }

    /// A single create: one `BEGIN IMMEDIATE` transaction that reads the head, writes the lead, its
    /// stage change, its audit entry and its event, and moves the head.
    pub fn create(&self, c: &Connection, r: &LeadRow, cx: &Ctx<'_>, sizes: &mut Sizes) -> Res<()> {
        c.execute_batch("BEGIN IMMEDIATE")?;
        let mut head = self.head(c, cx.tenant)?;
        self.write(c, r, cx, &mut head, true, sizes)?;
        self.set_head(c, cx.tenant, &head)?;
        c.execute_batch("COMMIT")?;
        Ok(())
    }

    fn head(&self, c: &Connection, tenant: Id) -> Res<Head> {
        let mut st = c.prepare_cached(&self.read_head)?;
        Ok(st.query_row([&tenant.as_bytes()[..]], |r| {
            Ok(Head {
                audit_seq: r.get::<_, i64>(0)? as u64,
                audit_hash: r.get(1)?,
                event_seq: r.get::<_, i64>(2)? as u64,
            })
        })?)
    }

    fn set_head(&self, c: &Connection, tenant: Id, h: &Head) -> Res<()> {
        let mut st = c.prepare_cached(&self.update_head)?;
        st.execute(params![
            h.audit_seq as i64,
            h.audit_hash,
            h.event_seq as i64,
            &tenant.as_bytes()[..]
        ])?;
        Ok(())
    }

    fn write(
        &self,
        c: &Connection,
        r: &LeadRow,
        cx: &Ctx<'_>,
        head: &mut Head,
        event: bool,
        sizes: &mut Sizes,
    ) -> Res<()> {
        let (tenant, actor, now) = (&cx.tenant.as_bytes()[..], &cx.actor.as_bytes()[..], cx.now);
        let (o, score) = (&cx.owners[r.owner], raw_fit_score(r.source, r.cents));
        let mut created = Created::new(event);
        {
            let mut st = c.prepare_cached(&self.insert_lead)?;
            for (i, col) in self.lead_cols.iter().enumerate() {
                let v = lead_value(col, r, &cx.tenant, o, score, now);
                if let Some(f) = LEAD.index_of(col).map(|f| &LEAD.fields[f]) {
                    created.field(f.name, stored_json(&f.spec.ty, &v));
                }
                st.raw_bind_parameter(i + 1, v)?;
            }
            st.raw_execute()?;
        }
        {
            let mut st = c.prepare_cached(&self.insert_stage)?;
            let (stage, record_id) = (RandomIds.new_id(now), r.id.to_string());
            for (i, col) in self.stage_cols.iter().enumerate() {
                let p = i + 1;
                match *col {
                    "id" => st.raw_bind_parameter(p, &stage.as_bytes()[..])?,
                    "org_id" => st.raw_bind_parameter(p, tenant)?,
                    "version" => st.raw_bind_parameter(p, 1i64)?,
                    "created_at" | "updated_at" | "at" => st.raw_bind_parameter(p, now.0)?,
                    "entity" => st.raw_bind_parameter(p, LEAD.name)?,
                    "record_id" => st.raw_bind_parameter(p, record_id.as_str())?,
                    "to_state" => st.raw_bind_parameter(p, r.status)?,
                    "changed_by" => st.raw_bind_parameter(p, actor)?,
                    "owner_id" => st.raw_bind_parameter(p, &o.id.as_bytes()[..])?,
                    "team_id" => st.raw_bind_parameter(p, &o.team.as_bytes()[..])?,
                    _ => st.raw_bind_parameter(p, rusqlite::types::Null)?,
                }
            }
            st.raw_execute()?;
        }
        let (changes, payload) = created.finish(r.id, now);
        let entry = created_entry(
            cx.tenant,
            cx.actor,
            r.id,
            changes,
            now,
            head.audit_seq + 1,
            &head.audit_hash,
        );
        let text = serde_json::to_string(&entry.changes)?;
        sizes.rows += 1;
        sizes.changes += text.len();
        c.prepare_cached(&self.insert_audit)?.execute(params![
            tenant,
            entry.seq as i64,
            &entry.id.as_bytes()[..],
            now.0,
            actor,
            entry.action,
            entry.entity,
            &r.id.as_bytes()[..],
            text,
            entry.prev_hash,
            entry.hash,
        ])?;
        head.audit_seq = entry.seq;
        head.audit_hash = entry.hash;
        if event {
            let text = payload.to_string();
            sizes.payload += text.len();
            head.event_seq += 1;
            c.prepare_cached(&self.insert_event)?.execute(params![
                tenant,
                head.event_seq as i64,
                &RandomIds.new_id(now).as_bytes()[..],
                now.0,
                "lead.created",
                LEAD.name,
                &r.id.as_bytes()[..],
                text,
            ])?;
        }
        Ok(())
    }
}

/// A created lead's audit changes (its set fields, old values null) and, for its event, the lead
/// as JSON (every field, then the system keys).
pub(super) struct Created {
    changes: Vec<FieldChange>,
    payload: Option<Map<String, Json>>,
}

impl Created {
    pub fn new(event: bool) -> Created {
        Created {
            changes: Vec::with_capacity(LEAD.fields.len()),
            payload: event.then(Map::new),
        }
    }

    /// The field `name` holds `new` (its JSON form; null when not set).
    pub fn field(&mut self, name: &str, new: Json) {
        if let Some(p) = &mut self.payload {
            p.insert(name.to_owned(), new.clone());
        }
        if !new.is_null() {
            self.changes.push(FieldChange {
                field: name.to_owned(),
                old: Json::Null,
                new,
            });
        }
    }

    /// The changes, and the payload of lead `id` created at `now` (null without an event).
    pub fn finish(self, id: Id, now: Timestamp) -> (Vec<FieldChange>, Json) {
        let payload = self.payload.map_or(Json::Null, |mut p| {
            let stamp = Json::String(now.to_rfc3339());
            p.insert("id".into(), Json::String(id.to_string()));
            p.insert("version".into(), Json::from(1));
            p.insert("created_at".into(), stamp.clone());
            p.insert("updated_at".into(), stamp);
            Json::Object(p)
        });
        (self.changes, payload)
    }
}

/// The audit entry of a lead's create by `actor` at `now`, sealed as entry `seq` after `prev_hash`.
pub(super) fn created_entry(
    tenant: Id,
    actor: Id,
    lead: Id,
    changes: Vec<FieldChange>,
    now: Timestamp,
    seq: u64,
    prev_hash: &str,
) -> AuditEntry {
    let mut entry = AuditEntry {
        id: RandomIds.new_id(now),
        tenant,
        seq: 0,
        at: now,
        actor: Some(actor),
        action: "create".into(),
        entity: LEAD.name.into(),
        entity_id: Some(lead),
        changes,
        prev_hash: String::new(),
        hash: String::new(),
    };
    entry.seal(seq, prev_hash);
    entry
}

/// A stored column value as the core's JSON form for a field of type `ty` (what an audit entry
/// records): money and timestamps from their integers, ids from their bytes.
fn stored_json(ty: &FieldType, v: &ToSqlOutput<'_>) -> Json {
    let ToSqlOutput::Borrowed(v) = v else {
        return Json::Null;
    };
    let value = match (*v, ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), FieldType::Money) => Value::Money(Money(i)),
        (ValueRef::Integer(i), FieldType::Timestamp) => Value::Timestamp(Timestamp(i)),
        (ValueRef::Integer(i), _) => Value::Int(i),
        (ValueRef::Blob(b), _) => Id::from_slice(b).map_or(Value::Null, Value::Id),
        (ValueRef::Text(t), _) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Real(x), _) => Value::Number(x),
    };
    value.to_json()
}
