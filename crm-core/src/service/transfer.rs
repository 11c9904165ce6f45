//! CSV import and export. Import maps columns to fields, validates every row through the same build
//! steps as single writes, and applies in one bulk transaction: a dry run or an all-or-nothing import
//! with errors rolls everything back; valid-rows-only commits the rows that passed. Export streams
//! what the actor may read, formula-safe by default.
//!
//! An import reads, checks and writes its file a chunk of rows at a time. An import that writes
//! writes each chunk's valid rows into the bulk transaction (an all-or-nothing import with errors
//! too, rolled back at the end): the duplicate checks of later chunks find them in the store, so its
//! memory stays flat in the row count; only an upsert's keys are remembered, as 16-byte
//! fingerprints. A dry run writes nothing, so it remembers the values of unique fields (and upsert
//! keys) it has met as fingerprints: about 20 bytes a row per such column, nothing otherwise.
//! Before its first write an import checks the database has the disk it will need
//! ([`import_disk_need`]).

use super::{Service, WriteCtx};
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, Write, diff};
use crate::entity;
use crate::error::{Error, FieldError, Result, codes};
use crate::progress::{Progress, Unit};
use crate::query::{Filter, ListRequest, MAX_BULK_PAGE_SIZE, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, FieldRef};
use crate::store::{BulkWrite, Store};
use crate::value::{FieldType, Id, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What an import does with what it validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Validate everything, write nothing.
    #[default]
    DryRun,
    /// Write everything, or nothing if any row fails.
    AllOrNothing,
    /// Write the rows that pass; report the others.
    ValidRowsOnly,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportOptions {
    pub mode: ImportMode,
    /// CSV header -> field path (`email`, `custom.roof_type`), or `""` to ignore the column. Columns
    /// it does not name are matched to field names (case and spaces ignored: `First Name` ->
    /// `first_name`, then `custom.first_name`), except to a field the mapping gives another column;
    /// unmatched columns are ignored and reported.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Update records whose external key (`external_id`) matches a row instead of creating duplicates.
    #[serde(default)]
    pub upsert: bool,
    /// Refuse files with more data rows than this.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// The input's size in bytes, when the caller knows it (a file's length, an upload's): the
    /// import then checks the database has the disk it needs before it writes
    /// ([`import_disk_need`]). `None`: no check.
    #[serde(skip)]
    pub input_bytes: Option<u64>,
    /// Skip that check (an operator who knows better: a compressing file system, a quota the probe
    /// does not see). A full disk is still reported as such, with nothing written.
    #[serde(skip)]
    pub skip_disk_check: bool,
    /// Called after each batch of rows: bytes read of `input_bytes` when that is known, rows read
    /// otherwise; the last call (after the commit) is at the total.
    #[serde(skip)]
    pub progress: Progress,
}

fn default_max_rows() -> u64 {
    2_000_000
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::DryRun,
            mapping: BTreeMap::new(),
            upsert: false,
            max_rows: default_max_rows(),
            input_bytes: None,
            skip_disk_check: false,
            progress: Progress::none(),
        }
    }
}

/// The errors of one CSV row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    /// 1-based line in the file.
    pub line: u64,
    pub errors: Vec<FieldError>,
}

/// The per-row, per-field outcome of an import. Its size is bounded whatever the file's: the first
/// [`MAX_REPORTED_ROWS`] invalid rows are listed in full in `errors`, the rest only counted
/// (`errors_omitted`), and `error_counts` counts the invalid rows by field and code over the whole
/// file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub mode: ImportMode,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Whether anything was written.
    pub applied: bool,
    /// Column -> field as used.
    pub columns: BTreeMap<String, String>,
    pub ignored_columns: Vec<String>,
    /// Row errors, the first [`MAX_REPORTED_ROWS`] invalid rows in file order (`invalid` counts
    /// them all).
    pub errors: Vec<RowError>,
    /// Invalid rows past the first [`MAX_REPORTED_ROWS`]: counted in `invalid` and
    /// `error_counts`, not listed in `errors`.
    #[serde(default)]
    pub errors_omitted: u64,
    /// Field -> error code -> invalid rows with that error, over every invalid row of the file
    /// (listed or not).
    #[serde(default)]
    pub error_counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Invalid rows an [`ImportReport`] lists in full.
pub const MAX_REPORTED_ROWS: usize = 10_000;
const CHUNK: usize = 2_000;

/// Export options.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExportOptions {
    /// Columns to export (field paths); empty: every field the actor may read.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Text filter language.
    #[serde(default)]
    pub q: Option<String>,
    #[serde(skip)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub sort: Vec<SortKey>,
    /// Write cells exactly as stored. By default text cells that a spreadsheet could run as a formula
    /// are prefixed with `'` (see [`formula_like`]).
    #[serde(default)]
    pub raw: bool,
    /// Called after each page of rows written, with the rows written of the rows matching (counted
    /// first, only when a callback is given).
    #[serde(skip)]
    pub progress: Progress,
}

/// One input row of the shared import pipeline ([`Ingest`]).
#[derive(Debug)]
pub(super) struct Row {
    /// 1-based data row.
    pub(super) row: u64,
    /// 1-based line in the input.
    pub(super) line: u64,
    /// The field values (the key field left out when the key names a binding).
    pub(super) input: Map<String, Json>,
    /// The upsert key: the external key's value, or the external id of a binding.
    pub(super) key: Option<String>,
    /// SHA-256 of the row as received (bindings only: an equal hash is an unchanged row).
    pub(super) hash: Option<String>,
    /// Children nested in an upsert row ([`super::nested`]).
    pub(super) nested: Vec<super::nested::NestedRows>,
}

enum Built {
    /// A new record, with its row's input (routing reads which fields it names).
    Insert(Record, Map<String, Json>),
    Update(Record, Record),
    Unchanged(Id),
}

/// How the pipeline finds the record a row updates.
#[derive(Clone, Debug)]
pub(super) enum Keyed {
    /// Every row creates a record.
    Create,
    /// By the entity's external key field (`import_csv` with `upsert`).
    Field(&'static str),
    /// By the row's binding to `system` ([`entity::binding`]), in `mode`.
    Binding {
        system: String,
        mode: super::upsert::UpsertMode,
    },
}

/// What became of one row.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    Created(Id),
    Updated(Id),
    Unchanged(Id),
    Rejected(Vec<FieldError>),
}

/// A row's binding, as read at the start of its chunk.
#[derive(Clone)]
struct Bind {
    external_id: String,
    hash: String,
    binding: Option<Record>,
}

/// The import pipeline shared by the CSV import and the JSON upsert: one bulk session; rows come in
/// chunks ([`Ingest::chunk`]) that are matched to existing records, built by the same steps as
/// single writes, checked in batches (references, unique values, follow-ups, exclusive ranges),
/// and written as one change set per chunk; [`Ingest::finish`] commits or rolls back the whole.
pub(super) struct Ingest<'s, S: Store> {
    svc: &'s Service<S>,
    actor: &'s Actor,
    def: &'static EntityDef,
    ctx: WriteCtx,
    followup_ctxs: Vec<(&'static str, WriteCtx)>,
    bulk: S::Bulk<'s>,
    router: Option<super::routing::Router>,
    keyed: Keyed,
    import_scope: Scope,
    update_scope: Scope,
    /// Upsert keys met so far: an earlier row's key is in the store by now, as a record this
    /// import wrote, which only this set tells from one that was there before.
    keys: Fingerprints,
    /// Unique values met: in this chunk (earlier chunks' are in the store), or in a dry run all.
    seen: HashMap<&'static str, Fingerprints>,
    writing: bool,
    /// In id order: the re-scoring reads and writes them a thousand at a time, and ids close together
    /// share pages (ids are time-ordered), so a chunk's leads are read and written once each.
    parents: BTreeSet<Id>,
    /// The action audit entries name (`import`, `upsert`).
    action: &'static str,
    /// The child types' write contexts, for children nested in upsert rows.
    child_ctxs: Vec<(&'static str, WriteCtx)>,
    /// The binding keys of the children nested in the rows so far (a child id in two rows).
    child_keys: Fingerprints,
}

impl<'s, S: Store> Ingest<'s, S> {
    /// Authorizes the actor (import, and update when rows may update) and opens the bulk session.
    pub(super) async fn open(
        svc: &'s Service<S>,
        actor: &'s Actor,
        def: &'static EntityDef,
        ctx: WriteCtx,
        keyed: Keyed,
        writing: bool,
        action: &'static str,
    ) -> Result<Self> {
        if def.child_of.is_some() {
            // A child row is written with its parent's version bump, which row-by-row imports don't do.
            return Err(Error::forbidden(Action::Import, def.name, vec![]));
        }
        let import_scope = actor.authorize(def, Action::Import)?;
        let updates = match &keyed {
            Keyed::Create => false,
            Keyed::Field(_) => true,
            Keyed::Binding { mode, .. } => *mode != super::upsert::UpsertMode::CreateOnly,
        };
        let update_scope = match updates {
            true => actor.authorize(def, Action::Update)?,
            false => Scope::None,
        };
        // The write contexts of the records this type's rows may plan a follow-up on (an
        // activity's lead or contact), read before the session opens.
        let mut followup_ctxs: Vec<(&'static str, WriteCtx)> = Vec::new();
        for link in def.rules.followup_links() {
            if let Some(FieldType::Ref(t)) = def.def(link).map(|f| f.spec.ty.clone())
                && let Some(tdef) = entity::entity(t).filter(|t| entity::followup::carries(t))
                && !followup_ctxs.iter().any(|(n, _)| *n == tdef.name)
            {
                followup_ctxs.push((tdef.name, svc.write_ctx(actor.tenant, tdef).await?));
            }
        }
        let child_ctxs = super::nested::child_ctxs(svc, actor.tenant, def).await?;
        let mut bulk = svc.store.bulk(actor.tenant).await?;
        // New leads are routed as single creates are; the cursors are read inside the session.
        let mut router = match def.rules.routed() {
            true => svc.router(actor.tenant, &ctx.custom).await?,
            false => None,
        };
        if let Some(r) = router.as_mut() {
            let q = StoreQuery::by_id(Filter::All, super::routing::MAX_RULES);
            r.set_cursors(bulk.query(&entity::ROUTING_CURSOR, &q).await?);
        }
        Ok(Ingest {
            svc,
            actor,
            def,
            ctx,
            followup_ctxs,
            bulk,
            router,
            keyed,
            import_scope,
            update_scope,
            keys: Fingerprints::default(),
            seen: HashMap::new(),
            writing,
            parents: BTreeSet::new(),
            action,
            child_ctxs,
            child_keys: Fingerprints::default(),
        })
    }

    /// Rows a chunk holds: [`CHUNK`], or one for a type with exclusive ranges (each row's overlap
    /// check then reads what the rows before it wrote, and refuses that row alone).
    pub(super) fn chunk_size(&self) -> usize {
        if self.def.exclusive.is_some() { 1 } else { CHUNK }
    }

    /// The stored records (and bindings) the chunk's keys name, by key.
    async fn existing(&mut self, chunk: &[Row]) -> Result<HashMap<String, (Option<Record>, Option<Record>)>> {
        let keys: Vec<&String> = chunk.iter().filter_map(|r| r.key.as_ref()).collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let def = self.def;
        match &self.keyed {
            Keyed::Create => Ok(HashMap::new()),
            Keyed::Field(k) => {
                let values: Vec<Value> = keys.iter().map(|k| Value::Text((*k).clone())).collect();
                // Along the key's index (in id order SQLite would walk every record of the tenant).
                let q = StoreQuery::by_ref(
                    def,
                    k,
                    Filter::In {
                        field: (*k).into(),
                        values: values.clone(),
                    },
                    values.len() as u32 + 1,
                );
                Ok(self
                    .bulk
                    .query(def, &q)
                    .await?
                    .into_iter()
                    .filter_map(|r| Some((r.str(k)?.to_owned(), (None, Some(r)))))
                    .collect())
            }
            Keyed::Binding { system, .. } => {
                use entity::binding::{self, Binding, fields};
                let values: Vec<Value> = keys
                    .iter()
                    .map(|k| Value::Text(binding::key(def.name, system, k)))
                    .collect();
                let q = StoreQuery::by_ref(
                    &entity::EXTERNAL_BINDING,
                    fields::KEY,
                    Filter::In {
                        field: fields::KEY.into(),
                        values: values.clone(),
                    },
                    values.len() as u32 + 1,
                );
                let bindings = self.bulk.query(&entity::EXTERNAL_BINDING, &q).await?;
                let ids: Vec<Value> = bindings
                    .iter()
                    .filter_map(|b| Binding(b).record_id())
                    .map(Value::Id)
                    .collect();
                let mut records: HashMap<Id, Record> = HashMap::new();
                if !ids.is_empty() {
                    let q = StoreQuery::by_id(
                        Filter::In {
                            field: "id".into(),
                            values: ids.clone(),
                        },
                        ids.len() as u32 + 1,
                    );
                    records.extend(self.bulk.query(def, &q).await?.into_iter().map(|r| (r.id, r)));
                }
                Ok(bindings
                    .into_iter()
                    .filter_map(|b| {
                        let rec = Binding(&b).record_id().and_then(|id| records.remove(&id));
                        Some((b.str(fields::EXTERNAL_ID)?.to_owned(), (Some(b), rec)))
                    })
                    .collect())
            }
        }
    }

    /// Matches, builds, checks and (when writing) writes one chunk of rows; returns each row's
    /// outcome in row order.
    pub(super) async fn chunk(&mut self, chunk: Vec<Row>) -> Result<Vec<(u64, u64, Outcome)>> {
        if self.writing {
            self.seen.clear();
        }
        let (svc, actor, def) = (self.svc, self.actor, self.def);
        let key_field = def.external_key.unwrap_or("external_id");
        let mut existing = self.existing(&chunk).await?;
        let mut out: Vec<(u64, u64, Outcome)> = Vec::new();
        let mut built: Vec<(u64, u64, Built)> = Vec::new();
        let mut binds: Vec<Option<Bind>> = Vec::new();
        // A parent type's rows derive from their children (and may carry them: `nest_row`).
        let has_children = def.children().next().is_some();
        // Each built row's nested children's writes.
        let mut parts: Vec<Option<ChangeSet>> = Vec::new();
        // Refused rows whose binding exists: the binding records their errors.
        let mut refused: Vec<(Bind, Vec<FieldError>)> = Vec::new();
        for r in chunk {
            if let Some(k) = &r.key
                && !self.keys.insert(k)
            {
                let errs = vec![FieldError::new(
                    key_field,
                    codes::DUPLICATE,
                    "this key appears earlier in the input",
                )];
                out.push((r.row, r.line, Outcome::Rejected(errs)));
                continue;
            }
            let (binding, cur) = r.key.as_ref().and_then(|k| existing.remove(k)).unwrap_or((None, None));
            let bind = match (&self.keyed, &r.key, &r.hash) {
                (Keyed::Binding { .. }, Some(k), Some(h)) => Some(Bind {
                    external_id: k.clone(),
                    hash: h.clone(),
                    binding,
                }),
                _ => None,
            };
            let mode = match &self.keyed {
                Keyed::Binding { mode, .. } => Some(*mode),
                _ => None,
            };
            // The row the binding last applied: nothing to write.
            let same = bind
                .as_ref()
                .and_then(|b| b.binding.as_ref())
                .and_then(|b| entity::binding::Binding(b).hash())
                .is_some_and(|h| Some(h) == r.hash.as_deref());
            let outcome = match (&cur, mode) {
                (Some(_), Some(super::upsert::UpsertMode::CreateOnly)) => {
                    Err(Error::Validation(vec![FieldError::new(
                        key_field,
                        codes::ALREADY_BOUND,
                        "a record is bound to this external id already (create-only)",
                    )]))
                }
                (None, Some(super::upsert::UpsertMode::UpdateOnly)) => Err(Error::Validation(vec![FieldError::new(
                    key_field,
                    codes::NOT_BOUND,
                    "no record is bound to this external id (update-only)",
                )])),
                (Some(cur), _) if same => {
                    // Unchanged, once the caller may still update the record.
                    if actor.in_scope(cur, self.update_scope) && actor.in_scope(cur, self.import_scope) {
                        Ok(Built::Unchanged(cur.id))
                    } else {
                        Err(Error::forbidden(Action::Update, def.name, vec![]))
                    }
                }
                (Some(cur), _) => {
                    svc.build_upsert(actor, cur, &r.input, &self.ctx, self.update_scope, self.import_scope)
                }
                (None, _) => svc.build_create(actor, def, &r.input, &self.ctx).and_then(|rec| {
                    if actor.in_scope(&rec, self.import_scope) {
                        Ok(Built::Insert(rec, r.input.clone()))
                    } else {
                        Err(Error::forbidden(Action::Import, def.name, vec![]))
                    }
                }),
            };
            // The children nested in the row, unless the whole row is the one last applied.
            let (outcome, part) = match outcome {
                Ok(b) if has_children && !same => match self.nest_row(cur.as_ref(), b, r.nested).await {
                    Ok((b, part)) => (Ok(b), part),
                    Err(e) => (Err(e), None),
                },
                o => (o, None),
            };
            match outcome {
                Ok(b) => {
                    built.push((r.row, r.line, b));
                    binds.push(bind);
                    parts.push(part);
                }
                Err(e) if e.is_storage_failure() || matches!(e, Error::LimitExceeded { .. }) => return Err(e),
                Err(e) => {
                    let errs = row_errors(e);
                    if let Some(b) = bind.filter(|b| b.binding.is_some()) {
                        refused.push((b, errs.clone()));
                    }
                    out.push((r.row, r.line, Outcome::Rejected(errs)));
                }
            }
        }
        let mut bad = svc
            .check_links_batch(&mut self.bulk, actor, &built, &mut self.seen)
            .await?;
        let followups = svc
            .followups_batch(&mut self.bulk, actor, &built, &self.followup_ctxs, &mut bad)
            .await?;
        // What the rows roll up into (a client's standing from their memberships), as single
        // writes derive it; a fold's refusal refuses the rows feeding it.
        let rolled = {
            let rows: Vec<(usize, Option<&Record>, &Record)> = built
                .iter()
                .enumerate()
                .filter(|(i, _)| !bad.contains_key(i))
                .filter_map(|(i, (_, _, b))| match b {
                    Built::Insert(r, _) => Some((i, None, r)),
                    Built::Update(o, r) => Some((i, Some(o), r)),
                    Built::Unchanged(_) => None,
                })
                .collect();
            svc.rollups_batch(&mut self.bulk, actor.tenant, &rows, &mut bad).await?
        };
        let mut cs = svc.change_set(actor.tenant, actor.user_id);
        let (mut created, mut updated) = (Vec::new(), Vec::new());
        let now = cs.at;
        let system = match &self.keyed {
            Keyed::Binding { system, .. } => system.clone(),
            _ => String::new(),
        };
        let bind_write = |b: &Bind, received: entity::binding::Received<'_>| {
            entity::binding::write(
                actor.tenant,
                svc.ids.new_id(now),
                (def.name, &system, &b.external_id),
                b.binding.as_ref(),
                received,
                now,
            )
        };
        for (b, errs) in &refused {
            cs.writes
                .extend(bind_write(b, entity::binding::Received::Rejected(errs)));
        }
        // Rows whose exclusive ranges are checked below, with their bindings.
        let mut exclusive_rows: Vec<(usize, Option<Bind>)> = Vec::new();
        for (i, (((row, line, b), bind), part)) in built.into_iter().zip(binds).zip(parts).enumerate() {
            if let Some(errs) = bad.remove(&i) {
                if let Some(bd) = bind.as_ref().filter(|b| b.binding.is_some()) {
                    cs.writes
                        .extend(bind_write(bd, entity::binding::Received::Rejected(&errs)));
                }
                out.push((row, line, Outcome::Rejected(errs)));
                continue;
            }
            match b {
                Built::Unchanged(id) => {
                    if let Some(bd) = &bind {
                        cs.writes.extend(bind_write(bd, entity::binding::Received::Unchanged));
                    }
                    out.push((row, line, Outcome::Unchanged(id)));
                }
                Built::Insert(mut rec, input) => {
                    let decision = self.router.as_mut().and_then(|r| r.route(&mut rec, &input));
                    self.parents.extend(def.rescores.and_then(|f| rec.id_of(f)));
                    let mut changes = diff(None, Some(&rec));
                    changes.extend(decision.map(|d| d.audit_change()));
                    cs.audit.push(svc.audit_entry(actor, self.action, &rec, changes));
                    created.push(rec.id.to_string());
                    svc.stage_into(actor, None, &rec, &mut cs);
                    if let Some(bd) = &bind {
                        let applied = entity::binding::Received::Applied {
                            record: rec.id,
                            hash: &bd.hash,
                        };
                        cs.writes.extend(bind_write(bd, applied));
                    }
                    out.push((row, line, Outcome::Created(rec.id)));
                    exclusive_rows.push((out.len() - 1, bind.clone()));
                    cs.writes.push(Write::Insert(rec));
                    append(&mut cs, part);
                }
                Built::Update(old, rec) => {
                    self.parents.extend(def.rescores.and_then(|f| rec.id_of(f)));
                    self.parents.extend(def.rescores.and_then(|f| old.id_of(f)));
                    cs.audit
                        .push(svc.audit_entry(actor, self.action, &rec, diff(Some(&old), Some(&rec))));
                    updated.push(rec.id.to_string());
                    svc.stage_into(actor, Some(&old), &rec, &mut cs);
                    // Read in the session: the stage changes it wrote are visible there.
                    let fields = entity::stage::rescoped(&old, &rec);
                    if let Some(q) = entity::stage::history_query(&rec, super::records::MAX_STAGE_HISTORY)
                        && !fields.is_empty()
                    {
                        let history = self.bulk.query(&entity::STAGE_CHANGE, &q).await?;
                        cs.writes.extend(entity::stage::rescope_writes(history, &fields));
                    }
                    if let Some(bd) = &bind {
                        let applied = entity::binding::Received::Applied {
                            record: rec.id,
                            hash: &bd.hash,
                        };
                        cs.writes.extend(bind_write(bd, applied));
                    }
                    out.push((row, line, Outcome::Updated(rec.id)));
                    exclusive_rows.push((out.len() - 1, bind.clone()));
                    cs.writes.push(Write::Update {
                        record: rec,
                        expected_version: old.version,
                    });
                    append(&mut cs, part);
                }
            }
        }
        // The follow-ups the valid rows planned: one update per record, as an activity's create does.
        for (old, rec) in &followups {
            svc.push_change(
                actor,
                "update",
                &format!("{}.updated", rec.entity.name),
                Some(old),
                rec,
                &mut cs,
            );
        }
        super::rollups::push_rollups(&mut cs, rolled);
        if let Some(r) = self.router.as_mut() {
            r.flush(&mut cs);
        }
        // Exclusive ranges (a chunk of one row: see `chunk_size`) are checked against what the
        // session holds, and refuse the row.
        if def.exclusive.is_some() && !exclusive_rows.is_empty() {
            match svc.exclusive_with(&mut self.bulk, &mut cs).await {
                Ok(()) => {}
                Err(Error::Validation(errs)) => {
                    // The row is refused alone; a bound row's binding records why.
                    let mut refusal = svc.change_set(actor.tenant, actor.user_id);
                    for (k, bd) in &exclusive_rows {
                        out[*k].2 = Outcome::Rejected(errs.clone());
                        if let Some(bd) = bd.as_ref().filter(|b| b.binding.is_some()) {
                            refusal
                                .writes
                                .extend(bind_write(bd, entity::binding::Received::Rejected(&errs)));
                        }
                    }
                    if self.writing && !refusal.writes.is_empty() {
                        self.bulk.apply(refusal).await?;
                    }
                    return Ok(sorted(out));
                }
                Err(e) => return Err(e),
            }
        }
        // An all-or-nothing import with errors writes on too (and rolls back at the end): the
        // next chunks' duplicate checks find these rows in the store.
        if self.writing && !cs.writes.is_empty() {
            if !created.is_empty() || !updated.is_empty() {
                let payload = json!({ "created": created, "updated": updated });
                cs.events
                    .push(svc.event_raw(&format!("{}.imported", def.name), actor.tenant, def.name, None, payload));
            }
            self.bulk.apply(cs).await?;
        }
        Ok(sorted(out))
    }

    /// A parent row's children ([`super::nested`]: the ones it carries, a new parent's defaults)
    /// as part of its write: returns the parent with what it derives from its children, and the
    /// children's writes. A parent whose own fields are as stored is updated when the children it
    /// carries change (its version moves with them).
    async fn nest_row(
        &mut self,
        cur: Option<&Record>,
        b: Built,
        nested: Vec<super::nested::NestedRows>,
    ) -> Result<(Built, Option<ChangeSet>)> {
        let system = match &self.keyed {
            Keyed::Binding { system, .. } => system.as_str(),
            _ => "",
        };
        let nest = super::nested::Nest {
            svc: self.svc,
            actor: self.actor,
            system,
            ctxs: &self.child_ctxs,
            parent_ctx: &self.ctx,
            scope: self.update_scope,
        };
        let mut part = self.svc.change_set(self.actor.tenant, self.actor.user_id);
        let none = Map::new();
        let b = match b {
            Built::Insert(mut rec, input) => {
                nest.write(
                    &mut self.bulk,
                    &mut self.child_keys,
                    None,
                    &input,
                    &mut rec,
                    nested,
                    &mut part,
                )
                .await?;
                Built::Insert(rec, input)
            }
            Built::Update(old, mut rec) => {
                nest.write(
                    &mut self.bulk,
                    &mut self.child_keys,
                    Some(&old),
                    &none,
                    &mut rec,
                    nested,
                    &mut part,
                )
                .await?;
                Built::Update(old, rec)
            }
            Built::Unchanged(id) => {
                let Some(cur) = cur.filter(|c| c.id == id && !nested.is_empty()) else {
                    return Ok((Built::Unchanged(id), None));
                };
                let mut rec = cur.clone();
                rec.version = cur.version + 1;
                rec.updated_at = part.at;
                nest.write(
                    &mut self.bulk,
                    &mut self.child_keys,
                    Some(cur),
                    &none,
                    &mut rec,
                    nested,
                    &mut part,
                )
                .await?;
                if part.writes.is_empty() && rec.values == cur.values && rec.custom == cur.custom {
                    return Ok((Built::Unchanged(id), None));
                }
                Built::Update(cur.clone(), rec)
            }
        };
        Ok((b, Some(part)))
    }

    /// Commits the session (or drops it: nothing written), then re-scores the parents the written
    /// rows touched.
    pub(super) async fn finish(self, commit: bool) -> Result<()> {
        if commit {
            self.bulk.commit().await?;
            // An import may have updated users: resolve the tenant's callers again.
            self.svc.callers_changed(self.actor.tenant);
        } else {
            drop(self.bulk);
        }
        if commit && !self.parents.is_empty() {
            self.svc
                .rescore_ids(self.actor, self.parents.into_iter().collect())
                .await?;
        }
        Ok(())
    }
}

/// Adds a row's nested children's writes after its parent's.
fn append(cs: &mut ChangeSet, part: Option<ChangeSet>) {
    if let Some(p) = part {
        cs.writes.extend(p.writes);
        cs.audit.extend(p.audit);
        cs.events.extend(p.events);
    }
}

fn sorted(mut out: Vec<(u64, u64, Outcome)>) -> Vec<(u64, u64, Outcome)> {
    out.sort_by_key(|(row, _, _)| *row);
    out
}

impl<S: Store> Service<S> {
    /// Imports CSV rows into an entity type. See [`ImportOptions`] and [`ImportMode`].
    pub async fn import_csv<R: std::io::Read + Send>(
        &self,
        actor: &Actor,
        entity: &str,
        input: R,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let def = self.entity(entity)?;
        let keyed = match (opts.upsert, def.external_key) {
            (false, _) => Keyed::Create,
            (true, Some(k)) => Keyed::Field(k),
            (true, None) => {
                return Err(Error::field(
                    "upsert",
                    codes::INVALID_OPTION,
                    format!("{} has no external key", def.name),
                ));
            }
        };
        if def.child_of.is_some() {
            return Err(Error::forbidden(Action::Import, def.name, vec![]));
        }
        actor.authorize(def, Action::Import)?;
        if opts.upsert {
            actor.authorize(def, Action::Update)?;
        }
        let mut ctx = self.write_ctx(actor.tenant, def).await?;
        ctx.vctx.source = crate::validate::Source::Text; // cells are text, read by the declared type
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|e| Error::field("csv", codes::INVALID_FORMAT, csv_msg(&e)))?
            .clone();
        let mut report = ImportReport {
            mode: opts.mode,
            ..Default::default()
        };
        let targets = map_columns(def, &ctx, &headers, opts, &mut report)?;
        let key_col = match &keyed {
            Keyed::Field(k) => Some(targets.iter().position(|t| t.as_deref() == Some(*k)).ok_or_else(|| {
                Error::field(
                    "mapping",
                    codes::REQUIRED,
                    format!("upsert needs a column mapped to {k}"),
                )
            })?),
            _ => None,
        };
        let writing = opts.mode != ImportMode::DryRun;
        let mut ingest = Ingest::open(self, actor, def, ctx, keyed, writing, "import").await?;
        let chunk_size = ingest.chunk_size();
        let mut records = rdr.into_records();
        let mut n = 0u64;
        let mut disk_checked = opts.skip_disk_check || !writing;
        loop {
            let mut chunk = Vec::with_capacity(chunk_size);
            for rec in records.by_ref() {
                n += 1;
                if n > opts.max_rows {
                    return Err(Error::LimitExceeded {
                        what: "import rows".into(),
                        limit: opts.max_rows,
                    });
                }
                let line = rec.as_ref().ok().and_then(|r| r.position()).map_or(n + 1, |p| p.line());
                match rec {
                    Ok(r) => chunk.push(row_input(n, line, &r, &targets, key_col)),
                    Err(e) => report_row(
                        &mut report,
                        n,
                        line,
                        vec![FieldError::new("csv", codes::INVALID_FORMAT, csv_msg(&e))],
                    ),
                }
                if chunk.len() == chunk_size {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            if !disk_checked {
                // The first chunk is the sample the row count of the whole input is estimated from.
                disk_checked = true;
                if let Some(total) = opts.input_bytes {
                    let read = records.reader().position().byte();
                    let need = import_disk_need(estimate_rows(n, read, total), total);
                    check_import_disk(need, self.store.free_space())?;
                }
            }
            report.rows = n;
            for (row, line, outcome) in ingest.chunk(chunk).await? {
                match outcome {
                    Outcome::Rejected(errs) => report_row(&mut report, row, line, errs),
                    Outcome::Created(_) => {
                        report.valid += 1;
                        report.created += 1;
                    }
                    Outcome::Updated(_) => {
                        report.valid += 1;
                        report.updated += 1;
                    }
                    Outcome::Unchanged(_) => {
                        report.valid += 1;
                        report.unchanged += 1;
                    }
                }
            }
            match opts.input_bytes {
                Some(total) => {
                    opts.progress
                        .report(records.reader().position().byte().min(total), Some(total), Unit::Bytes)
                }
                None => opts.progress.report(n, None, Unit::Records),
            }
        }
        report.rows = n;
        let commit = match opts.mode {
            ImportMode::DryRun => false,
            ImportMode::AllOrNothing => report.invalid == 0,
            ImportMode::ValidRowsOnly => true,
        };
        report.applied = commit && report.created + report.updated > 0;
        ingest.finish(commit).await?;
        match opts.input_bytes {
            Some(total) => opts.progress.report(total, Some(total), Unit::Bytes),
            None => opts.progress.report(n, Some(n), Unit::Records),
        }
        Ok(report)
    }

    fn build_upsert(
        &self,
        actor: &Actor,
        cur: &Record,
        input: &Map<String, Json>,
        ctx: &WriteCtx,
        update: Scope,
        import: Scope,
    ) -> Result<Built> {
        if !actor.in_scope(cur, update) || !actor.in_scope(cur, import) {
            return Err(Error::forbidden(Action::Update, cur.entity.name, vec![]));
        }
        actor.check_writable(cur.entity, Action::Update, &super::input_paths(input))?;
        Ok(match self.build_update(actor, cur, input, ctx, update)? {
            None => Built::Unchanged(cur.id),
            Some(mut rec) => {
                ctx.score(&mut rec, &[]);
                Built::Update(cur.clone(), rec)
            }
        })
    }

    /// The follow-ups a batch of new rows plans ([`entity::followup::planned`]: an activity's
    /// `next_followup_at` sets its lead's or contact's), as single creates set them: the importer
    /// needs to see the record and may update it and its follow-up fields. The records are read in
    /// the import's session (one query per type); a row whose follow-up is refused gets the error
    /// (on `next_followup_at`) and writes nothing. Returns each updated record's stored and new
    /// state; several rows planning on one record update it once, the last row's plan winning
    /// (file order, as creates in that order would).
    async fn followups_batch<B: BulkWrite>(
        &self,
        bulk: &mut B,
        actor: &Actor,
        built: &[(u64, u64, Built)],
        ctxs: &[(&'static str, WriteCtx)],
        bad: &mut HashMap<usize, Vec<FieldError>>,
    ) -> Result<Vec<(Record, Record)>> {
        use entity::followup;
        let plans: Vec<(usize, followup::Planned)> = built
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains_key(i))
            .filter_map(|(i, (_, _, b))| match b {
                Built::Insert(r, _) => followup::planned(r).map(|p| (i, p)),
                _ => None,
            })
            .collect();
        let mut stored: HashMap<(&'static str, Id), Record> = HashMap::new();
        for (name, _) in ctxs {
            let ids: Vec<Value> = plans
                .iter()
                .filter(|(_, p)| p.target.name == *name)
                .map(|(_, p)| Value::Id(p.id))
                .collect();
            let Some(tdef) = plans
                .iter()
                .find(|(_, p)| p.target.name == *name)
                .map(|(_, p)| p.target)
            else {
                continue;
            };
            let q = StoreQuery::by_id(
                Filter::In {
                    field: "id".into(),
                    values: ids.clone(),
                },
                ids.len() as u32 + 1,
            );
            for r in bulk.query(tdef, &q).await? {
                stored.insert((tdef.name, r.id), r);
            }
        }
        // (stored, new) per record, in the order first planned.
        let mut out: Vec<(Record, Record)> = Vec::new();
        for (i, plan) in plans {
            let tdef = plan.target;
            let Some(ctx) = ctxs.iter().find(|(n, _)| *n == tdef.name).map(|(_, c)| c) else {
                continue;
            };
            let slot = out
                .iter()
                .position(|(o, _)| o.entity.name == tdef.name && o.id == plan.id);
            let step = || -> Result<Option<Record>> {
                let read = actor.authorize(tdef, Action::Read)?;
                let cur = match slot {
                    Some(k) => out[k].1.clone(),
                    None => match stored.get(&(tdef.name, plan.id)) {
                        Some(r) if actor.in_scope(r, read) => r.clone(),
                        _ => return Err(Error::not_found(tdef.name, plan.id)),
                    },
                };
                let scope = actor.authorize(tdef, Action::Update)?;
                if !actor.in_scope(&cur, scope) {
                    return Err(Error::forbidden(Action::Update, tdef.name, vec![]));
                }
                let patch = plan.patch();
                actor.check_writable(tdef, Action::Update, &super::input_paths(&patch))?;
                self.build_update(actor, &cur, &patch, ctx, scope)
            };
            match step() {
                Ok(None) => {}
                Ok(Some(mut rec)) => match slot {
                    Some(k) => {
                        // One write per record: the version moves once.
                        rec.version = out[k].0.version + 1;
                        out[k].1 = rec;
                    }
                    None => out.push((stored[&(tdef.name, plan.id)].clone(), rec)),
                },
                Err(e) if e.is_storage_failure() => return Err(e),
                Err(Error::Validation(f)) => bad.entry(i).or_default().extend(f),
                Err(e) => bad.entry(i).or_default().push(FieldError::new(
                    followup::fields::NEXT_FOLLOWUP_AT,
                    e.code(),
                    format!("cannot set the follow-up of {} {}: {e}", tdef.name, plan.id),
                )),
            }
        }
        Ok(out)
    }

    /// Reference and uniqueness checks for a batch of built rows, one query per field.
    async fn check_links_batch<B: BulkWrite>(
        &self,
        bulk: &mut B,
        actor: &Actor,
        built: &[(u64, u64, Built)],
        seen: &mut HashMap<&'static str, Fingerprints>,
    ) -> Result<HashMap<usize, Vec<FieldError>>> {
        let mut bad: HashMap<usize, Vec<FieldError>> = HashMap::new();
        let recs: Vec<(usize, &Record, Option<&Record>)> = built
            .iter()
            .enumerate()
            .filter_map(|(i, (_, _, b))| match b {
                Built::Insert(r, _) => Some((i, r, None)),
                Built::Update(o, r) => Some((i, r, Some(o))),
                Built::Unchanged(_) => None,
            })
            .collect();
        let Some(def) = recs.first().map(|(_, r, _)| r.entity) else {
            return Ok(bad);
        };
        for (fi, f) in def.fields.iter().enumerate() {
            let changed = |r: &Record, o: Option<&Record>| {
                !r.values[fi].is_null() && o.is_none_or(|o| o.values[fi] != r.values[fi])
            };
            let vals: Vec<Value> = {
                let mut v: Vec<Value> = recs
                    .iter()
                    .filter(|(_, r, o)| changed(r, *o))
                    .map(|(_, r, _)| r.values[fi].clone())
                    .collect();
                v.sort_by(|a, b| a.sort_cmp(b));
                v.dedup();
                v
            };
            if vals.is_empty() {
                continue;
            }
            if let FieldType::Ref(target) = f.spec.ty {
                let tdef =
                    entity::entity(target).ok_or_else(|| Error::internal(format!("undeclared entity {target}")))?;
                let mut filter = Filter::In {
                    field: "id".into(),
                    values: vals.clone(),
                };
                if let Ok(scope) = actor.authorize(tdef, Action::Read) {
                    filter = Filter::and([filter, actor.scope_filter(tdef, scope)]);
                }
                // Ids only: at a million leads, reading each referenced lead in full cost a random
                // table read per row; the ids come from the primary key.
                let found: HashSet<Id> = bulk
                    .ids(tdef, &StoreQuery::by_id(filter, vals.len() as u32))
                    .await?
                    .into_iter()
                    .collect();
                for (i, r, o) in &recs {
                    if changed(r, *o) && r.values[fi].as_id().is_some_and(|id| !found.contains(&id)) {
                        bad.entry(*i).or_default().push(FieldError::new(
                            f.name,
                            codes::UNKNOWN_REFERENCE,
                            format!("no {target} with this id"),
                        ));
                    }
                }
            }
            if f.unique {
                // Along the unique index: in id order SQLite walks every record of the tenant per
                // chunk, which made an import slower the bigger the table.
                let q = StoreQuery::by_ref(
                    def,
                    f.name,
                    Filter::In {
                        field: f.name.into(),
                        values: vals.clone(),
                    },
                    vals.len() as u32 + 1,
                );
                let taken: HashMap<String, Id> = bulk
                    .query(def, &q)
                    .await?
                    .iter()
                    .map(|r| (r.values[fi].to_json().to_string(), r.id))
                    .collect();
                let seen = seen.entry(f.name).or_default();
                for (i, r, o) in &recs {
                    if !changed(r, *o) || bad.contains_key(i) {
                        continue;
                    }
                    let k = r.values[fi].to_json().to_string();
                    if taken.get(&k).is_some_and(|id| *id != r.id) || !seen.insert(&k) {
                        bad.entry(*i).or_default().push(FieldError::new(
                            f.name,
                            codes::DUPLICATE,
                            format!("another {} has this {}", def.name, f.name),
                        ));
                    }
                }
            }
        }
        Ok(bad)
    }

    /// Exports records as CSV to `out`; returns the number of data rows written. Only records in the
    /// actor's read and export scopes, only fields it may read.
    pub async fn export_csv<W: std::io::Write + Send>(
        &self,
        actor: &Actor,
        entity: &str,
        opts: &ExportOptions,
        out: W,
    ) -> Result<u64> {
        let def = self.entity(entity)?;
        let scope = actor.authorize(def, Action::Export)?;
        let custom = self.custom_specs(actor.tenant, def).await?;
        let readable = |f: &str| actor.role.can_read_field(def, f);
        let columns: Vec<(String, FieldRef)> = if opts.fields.is_empty() {
            let mut c: Vec<String> = vec!["id".into()];
            c.extend(def.fields.iter().map(|f| f.name.to_owned()));
            c.extend(custom.keys().map(|k| format!("custom.{k}")));
            c.extend(["created_at".to_owned(), "updated_at".to_owned()]);
            c.into_iter()
                .filter(|f| readable(f))
                .filter_map(|f| def.resolve(&f).map(|r| (f, r)))
                .collect()
        } else {
            let mut c = Vec::new();
            for f in &opts.fields {
                let r = def
                    .resolve(f)
                    .ok_or_else(|| Error::invalid_query(format!("{} has no field {f}", def.name), 0))?;
                if !readable(f) {
                    return Err(Error::forbidden(Action::Read, def.name, vec![f.clone()]));
                }
                c.push((f.clone(), r));
            }
            c
        };
        let mut req = ListRequest {
            q: opts.q.clone(),
            filter: opts.filter.clone(),
            sort: opts.sort.clone(),
            limit: Some(MAX_BULK_PAGE_SIZE / 5),
            cursor: None,
        };
        if req.sort.is_empty() {
            req.sort = vec![SortKey::asc("id")];
        }
        // The whole request is checked before the first byte is written: a streamed export that fails
        // on a bad filter or sort after its header row would look like an empty file.
        self.bind_list(actor, def, &req, MAX_BULK_PAGE_SIZE).await?;
        let mut w = csv::Writer::from_writer(out);
        // Only the output can fail here (`csv_msg` words reads: "could not read the file").
        let io = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(e) => Error::internal(format!("export write failed: {e}")),
            _ => Error::internal("export write failed: malformed CSV"),
        };
        w.write_record(columns.iter().map(|(n, _)| n.as_str())).map_err(io)?;
        let mut rows = 0u64;
        let total = match opts.progress.is_none() {
            true => None,
            false => Some(
                self.count_bulk(actor, def, &req, actor.action_filter(def, Action::Export, scope))
                    .await?,
            ),
        };
        loop {
            let page = self
                .page_bulk(actor, def, &req, actor.action_filter(def, Action::Export, scope))
                .await?;
            for r in &page.items {
                let cells = columns.iter().map(|(_, f)| {
                    let v = r.value(f);
                    let text = cell(&v);
                    let texty = matches!(v, Value::Text(_) | Value::List(_) | Value::Json(_));
                    if !opts.raw && texty { formula_safe(text) } else { text }
                });
                w.write_record(cells).map_err(io)?;
                rows += 1;
            }
            // Rows written while counting would have raised the total: never report above it.
            opts.progress.report(rows, total.map(|t| t.max(rows)), Unit::Records);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        w.flush()
            .map_err(|e| Error::internal(format!("export write failed: {e}")))?;
        opts.progress.report(rows, Some(rows), Unit::Records);
        Ok(rows)
    }
}

/// Whether a spreadsheet could read a text cell as a formula (OWASP "CSV Injection"): it starts with
/// tab, CR or LF, or its first character after leading whitespace (which spreadsheets skip) is `=`,
/// `+`, `-`, `@`, `|` (DDE, `|calc`), or the full-width form of one of them (`＝`, which some
/// spreadsheets fold to `=`). Zero-width characters count as whitespace.
pub fn formula_like(cell: &str) -> bool {
    if cell.starts_with(['\t', '\r', '\n']) {
        return true;
    }
    let rest = cell.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
    });
    rest.starts_with(['=', '+', '-', '@', '|', '＝', '＋', '－', '＠', '｜'])
}

/// A text cell as a formula-safe export writes it: prefixed with `'` (shown by spreadsheets as text,
/// not as part of the value) when [`formula_like`].
pub fn formula_safe(cell: String) -> String {
    if formula_like(&cell) { format!("'{cell}") } else { cell }
}

pub(super) fn csv_msg(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} columns, found {len}")
        }
        csv::ErrorKind::Io(_) => "could not read the file".into(),
        _ => "malformed CSV".into(),
    }
}

/// Resolves each CSV column to a field path (or `None`: ignored).
fn map_columns(
    def: &'static EntityDef,
    ctx: &WriteCtx,
    headers: &csv::StringRecord,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Vec<Option<String>>> {
    let mut errs = Vec::new();
    let known = |path: &str| match path.strip_prefix("custom.") {
        Some(k) => ctx.custom.contains_key(k),
        None => def.def(path).is_some_and(|f| f.writable),
    };
    let mut out = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let target = match opts.mapping.get(h) {
            // Mapped to nothing: ignored on purpose.
            Some(t) if t.trim().is_empty() => None,
            Some(t) if known(t) => Some(t.clone()),
            Some(t) => {
                errs.push(FieldError::new(
                    format!("mapping.{h}"),
                    codes::UNKNOWN_FIELD,
                    format!("{} has no writable field {t}", def.name),
                ));
                None
            }
            None => {
                let auto = h.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("_");
                let custom = format!("custom.{auto}");
                [auto, custom]
                    .into_iter()
                    .find(|t| known(t))
                    // A field the mapping gives another column is that column's.
                    .filter(|t| !opts.mapping.values().any(|m| m == t))
            }
        };
        if out.iter().flatten().any(|t: &String| Some(t) == target.as_ref()) {
            errs.push(FieldError::new(
                format!("mapping.{h}"),
                codes::DUPLICATE,
                "two columns map to the same field",
            ));
        }
        match &target {
            Some(t) => {
                report.columns.insert(h.to_owned(), t.clone());
            }
            None => report.ignored_columns.push(if h.is_empty() {
                format!("#{}", i + 1)
            } else {
                h.to_owned()
            }),
        }
        out.push(target);
    }
    for (h, _) in opts
        .mapping
        .iter()
        .filter(|(h, _)| !headers.iter().any(|x| x == h.as_str()))
    {
        errs.push(FieldError::new(
            format!("mapping.{h}"),
            codes::UNKNOWN_FIELD,
            "no such column in the file",
        ));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Error::Validation(errs))
    }
}

fn row_input(row: u64, line: u64, r: &csv::StringRecord, targets: &[Option<String>], key_col: Option<usize>) -> Row {
    let mut input = Map::new();
    let mut custom = Map::new();
    for (cell, target) in r.iter().zip(targets) {
        match target.as_deref().map(|t| (t, t.strip_prefix("custom."))) {
            Some((_, Some(k))) => {
                custom.insert(k.to_owned(), Json::String(cell.to_owned()));
            }
            Some((t, None)) => {
                input.insert(t.to_owned(), Json::String(cell.to_owned()));
            }
            None => {}
        }
    }
    if !custom.is_empty() {
        input.insert("custom".into(), Json::Object(custom));
    }
    let key = key_col
        .and_then(|c| r.get(c))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    Row {
        row,
        line,
        input,
        key,
        hash: None,
        nested: Vec::new(),
    }
}

fn report_row(report: &mut ImportReport, row: u64, line: u64, errors: Vec<FieldError>) {
    report.invalid += 1;
    let mut counted: Vec<(&str, &str)> = Vec::new();
    for e in &errors {
        // A row counts once per field and code, however often it repeats the pair.
        if !counted.contains(&(e.path.as_str(), e.code.as_str())) {
            counted.push((&e.path, &e.code));
            *report
                .error_counts
                .entry(e.path.clone())
                .or_default()
                .entry(e.code.clone())
                .or_default() += 1;
        }
    }
    if report.errors.len() < MAX_REPORTED_ROWS {
        report.errors.push(RowError { row, line, errors });
    } else {
        report.errors_omitted += 1;
    }
}

/// Remembers strings by a 128-bit fingerprint (SHA-256, truncated): 16 bytes a key however long
/// the key, and a false match is as likely as guessing a 128-bit number.
#[derive(Default)]
pub(super) struct Fingerprints(HashSet<u128>);

impl Fingerprints {
    /// Adds `key`; false if it was there already.
    pub(super) fn insert(&mut self, key: &str) -> bool {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(key.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        self.0.insert(u128::from_le_bytes(b))
    }
}

/// Bytes of database disk an import writes per row, besides its share of the CSV's bytes (see
/// [`import_disk_need`]); measured on leads: 1.9 KB a row of 82 CSV bytes, 3.6 KB of 680.
pub const IMPORT_BYTES_PER_ROW: u64 = 2048;
/// Bytes of database disk an import writes per byte of CSV (the values, their audit entries and
/// their index entries), besides [`IMPORT_BYTES_PER_ROW`].
pub const IMPORT_BYTES_PER_INPUT_BYTE: u64 = 3;

/// The disk an import of `rows` rows from `input_bytes` of CSV needs on the database's file
/// system, with a margin: the database grows by about [`IMPORT_BYTES_PER_ROW`] a row plus
/// [`IMPORT_BYTES_PER_INPUT_BYTE`] per CSV byte, and until the import commits the same again is held
/// in the write-ahead log (which a checkpoint then merges and reuses). An all-or-nothing import
/// that fails needs as much (it writes on, then rolls back); a dry run needs none.
pub fn import_disk_need(rows: u64, input_bytes: u64) -> u64 {
    let growth = rows
        .saturating_mul(IMPORT_BYTES_PER_ROW)
        .saturating_add(input_bytes.saturating_mul(IMPORT_BYTES_PER_INPUT_BYTE));
    growth.saturating_mul(2)
}

/// The rows of an input of `total` bytes, from a sample: the first `rows` rows took `read` bytes.
fn estimate_rows(rows: u64, read: u64, total: u64) -> u64 {
    if read == 0 || read >= total {
        return rows;
    }
    let est = u128::from(rows) * u128::from(total) / u128::from(read);
    u64::try_from(est).unwrap_or(u64::MAX).max(rows)
}

/// Refuses an import that needs `need` bytes of disk when the store reports less `free` (a
/// [`Error::DiskFull`] naming both, before anything is written). An unknown free space passes.
pub fn check_import_disk(need: u64, free: Option<u64>) -> Result<()> {
    match free {
        Some(free) if free < need => Err(Error::disk_full(format!(
            "the import needs about {} of disk for the database and its write-ahead log; {} are free \
             (see docs/cli.md, \"Disk needs\")",
            mib(need),
            mib(free)
        ))),
        _ => Ok(()),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub(super) fn row_errors(e: Error) -> Vec<FieldError> {
    match e {
        Error::Validation(f) => f,
        Error::Forbidden { fields, action, .. } if !fields.is_empty() => fields
            .into_iter()
            .map(|f| FieldError::new(&f, "forbidden", format!("you may not {action} {f}")))
            .collect(),
        other => vec![FieldError::new("row", other.code(), other.to_string())],
    }
}

/// A value as a CSV cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Text(s) => s.clone(),
        Value::List(l) => l.join(";"),
        Value::Json(j) => j.to_string(),
        other => match other.to_json() {
            Json::String(s) => s,
            j => j.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{check_import_disk, estimate_rows, formula_like, formula_safe, import_disk_need};
    use crate::error::Error;
    use proptest::prelude::*;

    #[test]
    fn an_import_is_refused_when_the_disk_cannot_hold_it() {
        // 200,000 leads of 82 CSV bytes took 380 MB of database and as much write-ahead log.
        let need = import_disk_need(200_000, 16_400_000);
        assert!((760_000_000..1_000_000_000).contains(&need), "{need}");
        assert_eq!(check_import_disk(need, Some(need)), Ok(()));
        assert_eq!(check_import_disk(need, None), Ok(()), "unknown free space passes");
        let err = check_import_disk(need, Some(need - 1)).expect_err("refused");
        assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
        let cause = err.internal_cause().unwrap_or_default();
        assert!(cause.contains("MiB of disk") && cause.contains("are free"), "{cause}");
        // Saturates instead of wrapping.
        assert_eq!(import_disk_need(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_row_count_is_estimated_from_the_first_chunk() {
        assert_eq!(estimate_rows(2_000, 100_000, 1_000_000), 20_000);
        assert_eq!(estimate_rows(150, 7_000, 7_000), 150, "the sample was the whole input");
        assert_eq!(estimate_rows(150, 0, 7_000), 150);
        assert_eq!(estimate_rows(2_000, 1, u64::MAX), u64::MAX);
    }

    #[test]
    fn formula_cells_are_prefixed() {
        let cases = [
            // OWASP's list.
            ("=1+1", "'=1+1"),
            ("+1 call", "'+1 call"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("\nx", "'\nx"),
            // Leading whitespace is skipped by spreadsheets.
            (" =1+1", "' =1+1"),
            ("\u{a0}\u{3000}+cmd", "'\u{a0}\u{3000}+cmd"),
            ("\u{200b}@x", "'\u{200b}@x"),
            // DDE and the full-width forms.
            ("|calc", "'|calc"),
            ("＝1+1", "'＝1+1"),
            ("＋1", "'＋1"),
            ("－1", "'－1"),
            ("＠x", "'＠x"),
            ("｜calc", "'｜calc"),
            // Harmless cells stay as they are.
            ("Ann", "Ann"),
            ("a=b", "a=b"),
            ("", ""),
            ("   ", "   "),
            (" Ann", " Ann"),
            ("'=already text", "'=already text"),
            ("50%", "50%"),
        ];
        for (cell, want) in cases {
            assert_eq!(formula_safe(cell.to_owned()), want, "{cell:?}");
        }
    }

    const DANGER: &[char] = &['=', '+', '-', '@', '|', '＝', '＋', '－', '＠', '｜'];

    proptest! {
        /// No formula-safe cell, after the whitespace a spreadsheet skips, starts a formula unless it
        /// is prefixed with `'`; and the prefix is the only change.
        #[test]
        fn no_safe_cell_starts_a_formula(
            lead in proptest::collection::vec(
                proptest::sample::select(&[' ', '\t', '\r', '\n', '\u{a0}', '\u{3000}', '\u{200b}', '\u{feff}'][..]), 0..4),
            first in proptest::sample::select(&['=', '+', '-', '@', '|', '＝', '＋', '－', '＠', '｜', 'a', '1', '\'', '%'][..]),
            rest in "\\PC{0,20}",
        ) {
            let cell: String = lead.iter().chain(std::iter::once(&first)).collect::<String>() + &rest;
            let safe = formula_safe(cell.clone());
            let skipped = safe.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'));
            prop_assert!(safe.starts_with('\'') || !skipped.starts_with(DANGER), "{safe:?}");
            prop_assert!(safe.starts_with('\'') || !safe.starts_with(['\t', '\r', '\n']), "{safe:?}");
            let prefixed = format!("'{}", cell);
            prop_assert!(safe == cell || safe == prefixed);
            prop_assert_eq!(formula_like(&cell), safe != cell);
        }
    }
}
