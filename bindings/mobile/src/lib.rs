//! # crm-mobile
//!
//! The CRM core inside an Android or iOS app (and Python), through [uniffi](https://mozilla.github.io/uniffi-rs/):
//! one library, a local SQLite file, the same rules as on the server.
//!
//! The API is one object, [`Crm`], opened on a database file as one user. It is a thin adapter: it
//! converts types and errors and calls [`crm_core::service::Service`]; every decision (validation,
//! access control, scoring, audit, events) is the core's.
//!
//! **Threading.** Every call that touches the database is `async` (Kotlin `suspend`, Swift
//! `async`, Python a coroutine): it runs its use case on a worker thread of the library and the
//! caller awaits it, so it never blocks the caller's thread, the main thread included (see
//! `worker`). A cancelled caller stops at its next call: work not yet started is skipped, work
//! already running finishes (one transaction) and its result is dropped. Only [`Crm::user_id`] and
//! [`Crm::tenant_id`], which read memory, are plain functions. A `Crm` is thread-safe: share one
//! per database; SQLite runs readers in parallel and serialises writers.
//!
//! **Offline changes.** The database is opened with the core's local change-set log on: every
//! change made through a `Crm` is also queued, with the version it expected and the fields it
//! changed, for a later upload to a server ([`Crm::pending_changes`], [`Crm::mark_synced`]).
//! [`Crm::sync`] runs a whole round with a server over HTTP (push the queue, apply the answers,
//! pull what changed); apps with their own transport call its steps one by one
//! ([`Crm::prepare_push`], [`Crm::apply_push_answer`], [`Crm::pull_cursor`], [`Crm::apply_pull`]).

uniffi::setup_scaffolding!();

mod error;
mod sync;
mod types;
mod worker;

pub use error::{CrmError, FieldError};
pub use sync::{KeptField, PullOutcome, PushOutcome, SyncRejection, SyncReport};
pub use types::*;

use crm_core::access::Actor;
use crm_core::clock::{Clock, RandomIds, SystemClock};
use crm_core::query::{Filter, ListRequest, SortKey};
use crm_core::record::Record;
use crm_core::service::Service;
use crm_core::value::{Id, Timestamp};
use crm_store::SqliteStore;
use crm_store::blob::DirBlobStore;
use error::{bad_id, bad_json, bad_rows};
use serde_json::{Map, Value as Json};
use std::io::Read;
use std::sync::Arc;

type Result<T> = std::result::Result<T, CrmError>;

/// An open CRM database, acting as one user. Thread-safe; its calls are `async` and run off the
/// caller's thread (see the crate docs). Kotlin: `close()` (or `use {}`) releases it; the database
/// closes when the calls already running have finished.
#[derive(Debug, uniffi::Object)]
pub struct Crm {
    session: Arc<Session>,
}

/// What a call needs on its worker thread: the service over the file, and who acts.
#[derive(Debug)]
struct Session {
    svc: Service<SqliteStore>,
    tenant: Id,
    user_id: Id,
}

fn parse_id(entity: &str, s: &str) -> Result<Id> {
    crm_core::value::parse_id(s).ok_or_else(|| bad_id(entity, s))
}

fn parse_object(arg: &str, s: &str) -> Result<Map<String, Json>> {
    match serde_json::from_str::<Json>(s) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(bad_json(arg, "expected an object")),
        Err(e) => Err(bad_json(arg, e)),
    }
}

fn list_request(q: ListQuery, filter: Option<Filter>) -> ListRequest {
    ListRequest {
        q: q.q,
        filter,
        sort: q.sort.as_deref().map(SortKey::parse_list).unwrap_or_default(),
        limit: q.limit,
        cursor: q.cursor,
    }
}

fn open_service(path: &str) -> Result<Service<SqliteStore>> {
    // A device syncs: keep the change sets it applies for the upload (see `pending_changes`).
    let store = SqliteStore::open(path)?.with_sync_log(true);
    // Attachment bytes beside the database, as the CLI keeps them (`crm.db` -> `crm.blobs`).
    let blobs = DirBlobStore::open(crm_store::blob::default_dir(std::path::Path::new(path)))?;
    Ok(Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds)).with_blob_store(Arc::new(blobs)))
}

#[uniffi::export]
impl Crm {
    /// Opens (creating and migrating if needed) the SQLite database at `path`, acting as `user`: a
    /// user id or an email address. The user must exist in the database and be active.
    #[uniffi::constructor]
    pub async fn open(path: String, user: String) -> Result<Arc<Self>> {
        let session = worker::unblock(move || pollster::block_on(open_session(&path, &user))).await?;
        Ok(Arc::new(Crm {
            session: Arc::new(session),
        }))
    }

    /// The acting user's id.
    pub fn user_id(&self) -> String {
        self.session.user_id.to_string()
    }

    /// The tenant (organization) id.
    pub fn tenant_id(&self) -> String {
        self.session.tenant.to_string()
    }

    /// The acting user's role name (`field_tech`, `staff`, ...).
    pub async fn role(&self) -> Result<String> {
        self.run(move |_, a| async move { Ok(a.role.name.clone()) }).await
    }

    // ---- the field worker's day ----

    /// The leads assigned to (owned by) the user (the core's `owner:me`), narrowed further by `query`.
    pub async fn my_leads(&self, query: ListQuery) -> Result<LeadPage> {
        let page = self
            .run(move |s, a| async move {
                let req = list_request(query, Some(Filter::eq("owner", "me")));
                s.svc.list(&a, "lead", &req).await
            })
            .await?;
        Ok(LeadPage {
            items: page.items.into_iter().map(Lead::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// "My follow-ups today", offline: the leads and contacts whose follow-up the user owes (its
    /// follow-up owner, else its owner) that are overdue or due today in the tenant's time zone,
    /// earliest first, at most `limit` (500 when `None`), read from the local database. The core
    /// decides all of it (`Service::my_followups`).
    pub async fn my_followups(&self, limit: Option<u32>) -> Result<Vec<FollowUp>> {
        let items = self
            .run(move |s, a| async move { s.svc.my_followups(&a, limit).await })
            .await?;
        Ok(items.into_iter().map(FollowUp::from).collect())
    }

    /// Leads the user may see, filtered with the text filter language.
    pub async fn list_leads(&self, query: ListQuery) -> Result<LeadPage> {
        let page = self
            .run(move |s, a| async move { s.svc.list(&a, "lead", &list_request(query, None)).await })
            .await?;
        Ok(LeadPage {
            items: page.items.into_iter().map(Lead::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_lead(&self, id: String) -> Result<Lead> {
        let id = parse_id("lead", &id)?;
        Ok(self
            .run(move |s, a| async move { s.svc.get(&a, "lead", id).await })
            .await?
            .into())
    }

    /// Applies a JSON patch (`{"status": "contacted", "notes": "..."}`) to a lead at the version the
    /// caller last read. Fields the user may not write fail with `Forbidden` naming them; a stale
    /// version fails with `Conflict`.
    pub async fn update_lead(&self, id: String, expected_version: u64, patch_json: String) -> Result<Lead> {
        Ok(self
            .update_record("lead", &id, expected_version, &patch_json)
            .await?
            .into())
    }

    /// Logs an activity (call, visit, check-in, ...); its lead is re-scored. `occurred_at` defaults
    /// to now (the core's rule).
    pub async fn log_activity(&self, input: ActivityInput) -> Result<Activity> {
        let mut m = match &input.extra_json {
            Some(s) => parse_object("extra_json", s)?,
            None => Map::new(),
        };
        m.insert("kind".into(), input.kind.key().into());
        let opt = [
            ("occurred_at", input.occurred_at),
            ("lead_id", input.lead_id),
            ("contact_id", input.contact_id),
            ("company_id", input.company_id),
            ("direction", input.direction.map(|d| d.key().to_owned())),
            ("subject", input.subject),
            ("body", input.body),
            ("outcome", input.outcome),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        if let Some(d) = input.duration_minutes {
            m.insert("duration_minutes".into(), d.into());
        }
        let rec = self
            .run(move |s, a| async move { s.svc.log_activity(&a, &m).await })
            .await?;
        Ok(rec.into())
    }

    /// Checks the user in at a lead now, with an optional note (the core's check-in use case).
    pub async fn check_in(&self, lead_id: String, note: Option<String>) -> Result<Activity> {
        let input = crm_core::service::CheckIn {
            lead_id: Some(parse_id("lead", &lead_id)?),
            note,
            ..Default::default()
        };
        let done = self
            .run(move |s, a| async move { s.svc.check_in_visit(&a, &input).await })
            .await?;
        Ok(done.activity.into())
    }

    /// Checks a client in at the front desk by `card` number (their external id) or `contact_id`,
    /// optionally at `location_id`, now. The tenant's policy (synced with the tenant's settings)
    /// decides: a refusal is an answer, not an error; an unknown card is `NotFound`. Works offline:
    /// the check-in is written to this device's database and queued in its pending changes, and
    /// the server re-runs it on upload.
    pub async fn check_in_client(
        &self,
        card: Option<String>,
        contact_id: Option<String>,
        location_id: Option<String>,
    ) -> Result<CheckInAnswer> {
        let input = crm_core::service::CheckInInput {
            card,
            contact_id: contact_id.map(|s| parse_id("contact", &s)).transpose()?,
            location_id: location_id.map(|s| parse_id("location", &s)).transpose()?,
        };
        Ok(self
            .run(move |s, a| async move { s.svc.check_in(&a, &input).await })
            .await?
            .into())
    }

    /// The owner's membership numbers as of `as_of` (`YYYY-MM-DD`; today when `None`), over what
    /// this database holds.
    pub async fn membership_numbers(&self, as_of: Option<String>) -> Result<MembershipNumbers> {
        let day = optional_day("as_of", as_of)?;
        Ok(self
            .run(move |s, a| async move { s.svc.membership_numbers(&a, day).await })
            .await?
            .into())
    }

    /// Why a lead has its score: each rule's points, as of now.
    pub async fn explain_score(&self, lead_id: String) -> Result<ScoreExplanation> {
        let id = parse_id("lead", &lead_id)?;
        Ok(self
            .run(move |s, a| async move { s.svc.explain_score(&a, id, None).await })
            .await?
            .into())
    }

    // ---- field work ----

    /// The user's day on `date` (`YYYY-MM-DD`; the tenant's today when `None`): their crew
    /// assignments in time order, each with its job and the job's open steps. Run the steps with
    /// `transition("job_step", ...)` (`start`, `complete`, `skip` with `{"skip_reason": "..."}`) and
    /// log what was done with `create("step_activity", ...)`; each is one change set queued for sync.
    pub async fn my_day(&self, date: Option<String>) -> Result<Vec<DayItem>> {
        let day = optional_day("date", date)?;
        let items = self.run(move |s, a| async move { s.svc.my_day(&a, day).await }).await?;
        Ok(items.into_iter().map(DayItem::from).collect())
    }

    /// The field manager's numbers: how the jobs scheduled from `from` to `to` (`YYYY-MM-DD`,
    /// inclusive) that the user may read went. `from` defaults to the tenant's today and `to` to
    /// `from`, so `field_work_report(None, None)` is today's.
    pub async fn field_work_report(&self, from: Option<String>, to: Option<String>) -> Result<FieldWorkReport> {
        let (from, to) = (optional_day("from", from)?, optional_day("to", to)?);
        Ok(self
            .run(move |s, a| async move { s.svc.field_work_report(&a, from, to).await })
            .await?
            .into())
    }

    // ---- any entity type ----

    /// One page of records of `entity` (`lead`, `contact`, `activity`, ...) the user may see.
    pub async fn list(&self, entity: String, query: ListQuery) -> Result<RecordPage> {
        let page = self
            .run(move |s, a| async move { s.svc.list(&a, &entity, &list_request(query, None)).await })
            .await?;
        Ok(RecordPage {
            items: page.items.into_iter().map(CrmRecord::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get(&self, entity: String, id: String) -> Result<CrmRecord> {
        let id = parse_id(&entity, &id)?;
        Ok(self
            .run(move |s, a| async move { s.svc.get(&a, &entity, id).await })
            .await?
            .into())
    }

    /// Creates a record from a JSON object of field values.
    pub async fn create(&self, entity: String, input_json: String) -> Result<CrmRecord> {
        let input = parse_object("input_json", &input_json)?;
        Ok(self
            .run(move |s, a| async move { s.svc.create(&a, &entity, &input).await })
            .await?
            .into())
    }

    /// Deletes a record at `expected_version` (with its children: a quote's lines, a job's steps),
    /// if the user's role may. Queued for sync like any change.
    pub async fn delete(&self, entity: String, id: String, expected_version: u64) -> Result<()> {
        let id = parse_id(&entity, &id)?;
        self.run(move |s, a| async move { s.svc.delete(&a, &entity, id, expected_version).await })
            .await
    }

    /// Applies a JSON patch to a record at `expected_version` (see `update_lead`).
    pub async fn update(
        &self,
        entity: String,
        id: String,
        expected_version: u64,
        patch_json: String,
    ) -> Result<CrmRecord> {
        Ok(self
            .update_record(&entity, &id, expected_version, &patch_json)
            .await?
            .into())
    }

    /// Runs a workflow transition of a record at `expected_version`: for quotes `submit`,
    /// `approve`, `reject` (input `{"rejection_reason": "..."}`), `send`, `accept`, `decline`,
    /// `revise`, `duplicate`. `input_json`: the transition's input as a JSON object (`None`: none).
    /// Returns the record after it (for `revise` and `duplicate`, the new copy). The core checks the
    /// action, the state, the input and the guard; a guard's refusal is `Validation` with its code
    /// (`self_approval`, `approval_level`, `expired`, `invalid_transition`, `locked`, ...) and
    /// nothing is written or queued for sync.
    pub async fn transition(
        &self,
        entity: String,
        id: String,
        expected_version: u64,
        name: String,
        input_json: Option<String>,
    ) -> Result<CrmRecord> {
        let id = parse_id(&entity, &id)?;
        let input = match &input_json {
            Some(s) => parse_object("input_json", s)?,
            None => Map::new(),
        };
        Ok(self
            .run(move |s, a| async move { s.svc.transition(&a, &entity, id, expected_version, &name, &input).await })
            .await?
            .into())
    }

    /// A record's children per child type (a quote's `quote_lines`), each in its declared order.
    /// Create a parent with its first children inline (`{"quote_lines": [{...}]}` in `create`'s
    /// input: one change set).
    pub async fn children(&self, entity: String, id: String) -> Result<Vec<ChildRecords>> {
        let id = parse_id(&entity, &id)?;
        let kids = self
            .run(move |s, a| async move { s.svc.children(&a, &entity, id).await })
            .await?;
        Ok(kids
            .into_iter()
            .map(|(d, rows)| ChildRecords {
                table: d.table.to_owned(),
                entity: d.name.to_owned(),
                items: rows.into_iter().map(CrmRecord::from).collect(),
            })
            .collect())
    }

    // ---- attachments: photos, documents, signatures ----

    /// Attaches the file at `file_path` on the device (a photo, the signature pad's PNG, a
    /// document) to the record `entity`/`id` (`job`, `job_step`, `lead`, `contact`, `company`,
    /// `quote`), offline. The core does the rest, as on a server: the user must be able to update
    /// the record, the media type is sniffed from the bytes (a photo or signature must be an image),
    /// the size is held to the tenant's limit (`LimitExceeded` before more is read) and the SHA-256
    /// computed; a signature needs `signer_name` and signs its job (`customer_signed`). The bytes
    /// go into the blob directory beside the database (`crm.db` -> `crm.blobs`), stored once per
    /// content; the record goes into the database and the pending changes (see `pending_uploads`).
    /// `file_name` defaults to the path's last component.
    pub async fn attach(
        &self,
        entity: String,
        id: String,
        file_path: String,
        kind: AttachmentKind,
        signer_name: Option<String>,
        file_name: Option<String>,
    ) -> Result<Attachment> {
        let id = parse_id(&entity, &id)?;
        let file_name = file_name.unwrap_or_else(|| {
            std::path::Path::new(&file_path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let input = crm_core::service::AttachInput {
            kind: crm_core::entity::attachment::AttachmentKind::from(kind)
                .key()
                .to_owned(),
            file_name,
            signer_name,
            ..Default::default()
        };
        let rec = self
            .run(move |s, a| async move {
                let mut file = std::fs::File::open(&file_path).map_err(|e| {
                    crm_core::Error::field(
                        "file_path",
                        crm_core::error::codes::INVALID_FORMAT,
                        format!("cannot read the file: {e}"),
                    )
                })?;
                s.svc.attach(&a, &entity, id, &input, &mut file).await
            })
            .await?;
        Ok(rec.into())
    }

    /// A record's attachments, oldest first; `NotFound` when the user cannot read the record.
    pub async fn attachments(&self, entity: String, id: String) -> Result<Vec<Attachment>> {
        let id = parse_id(&entity, &id)?;
        let out = self
            .run(move |s, a| async move { s.svc.attachments(&a, &entity, id).await })
            .await?;
        Ok(out.into_iter().map(Attachment::from).collect())
    }

    /// An attachment's bytes (to show a photo, or to upload them); `NotFound` when the user cannot
    /// read its record.
    pub async fn attachment_content(&self, id: String) -> Result<Vec<u8>> {
        let id = parse_id("attachment", &id)?;
        self.run(move |s, a| async move {
            let (_, mut content) = s.svc.attachment_content(&a, id).await?;
            let mut bytes = Vec::new();
            content
                .read_to_end(&mut bytes)
                .map_err(|e| crm_core::Error::internal(format!("reading attachment {id}: {e}")))?;
            Ok(bytes)
        })
        .await
    }

    /// Deletes an attachment (the user must be able to update its record); a signature's removal
    /// unsigns its job. Queued for sync like any change.
    pub async fn delete_attachment(&self, id: String) -> Result<()> {
        let id = parse_id("attachment", &id)?;
        self.run(move |s, a| async move { s.svc.delete_attachment(&a, id).await })
            .await
    }

    /// The attachments made on this device whose records still wait in the pending changes, oldest
    /// first, each with the `seq` of its change set: what an uploader sends, the bytes
    /// (`attachment_content`) with the record. Empty once `mark_synced` passed their change sets.
    pub async fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        let out = self
            .run(move |s, a| async move { s.svc.pending_uploads(&a).await })
            .await?;
        Ok(out
            .into_iter()
            .map(|(seq, r)| PendingUpload {
                seq,
                attachment: r.into(),
            })
            .collect())
    }

    // ---- upserts from an external system ----

    /// Upserts rows from an external system (`system`: `scheduler`) into `entity`: `rows_json` is a
    /// JSON array of objects, each with `external_id` (the row's id in that system) and the fields
    /// to write. The core's upsert, as `crm upsert` and `POST /api/v1/{table}/upsert` run it: a row
    /// whose content is what its binding last applied is `Unchanged` and writes nothing;
    /// `CreateOnly` refuses a bound row (`already_bound`), `UpdateOnly` an unbound one
    /// (`not_bound`); `all_or_nothing` writes nothing if any row is refused, otherwise the valid
    /// rows are written; `dry_run` checks and writes nothing. Returns the per-row report; what is
    /// written is queued for sync.
    pub async fn upsert(
        &self,
        entity: String,
        system: String,
        rows_json: String,
        mode: UpsertMode,
        all_or_nothing: bool,
        dry_run: bool,
    ) -> Result<UpsertReport> {
        let rows = match serde_json::from_str::<Json>(&rows_json) {
            Ok(Json::Array(rows)) => rows,
            Ok(_) => return Err(bad_rows("expected an array")),
            Err(e) => return Err(bad_rows(e)),
        };
        let req = crm_core::service::UpsertRequest {
            system,
            mode: mode.into(),
            all_or_nothing,
            dry_run,
            rows,
        };
        Ok(self
            .run(move |s, a| async move { s.svc.upsert(&a, &entity, req).await })
            .await?
            .into())
    }

    // ---- compliance and sync ----

    /// Audit entries, oldest first, limited to what the user may read.
    pub async fn audit_trail(&self, query: AuditQuery) -> Result<Vec<AuditEntry>> {
        let entity_id = match &query.entity_id {
            Some(s) => Some(parse_id(query.entity.as_deref().unwrap_or("record"), s)?),
            None => None,
        };
        let q = crm_core::store::AuditQuery {
            entity: query.entity,
            entity_id,
            after_seq: query.after_seq,
            limit: query.limit,
        };
        let out = self
            .run(move |s, a| async move { s.svc.audit_trail(&a, &q).await })
            .await?;
        Ok(out.into_iter().map(AuditEntry::from).collect())
    }

    /// The local change feed: every change committed to this database after `after_seq`, in commit
    /// order (the core's outbox), as this user may see it. Keep the last `seq` you processed.
    pub async fn changes_since(&self, after_seq: u64, limit: u32) -> Result<Vec<ChangeEvent>> {
        let out = self
            .run(move |s, a| async move { s.svc.events_since(&a, after_seq, limit).await })
            .await?;
        Ok(out.into_iter().map(ChangeEvent::from).collect())
    }

    /// The change sets made on this device that no server has acknowledged yet, oldest first, at
    /// most `limit` (up to 1000): what a sync uploads. Each carries its id, the acting user, the time
    /// and its row writes (entity, id, insert/update/delete, the version it expected and the changed
    /// fields as JSON). Unredacted: this is the device's outgoing queue, not a view of records.
    pub async fn pending_changes(&self, limit: u32) -> Result<Vec<SyncEntry>> {
        let out = self
            .run(move |s, a| async move { s.svc.pending_changes(&a, 0, limit).await })
            .await?;
        Ok(out.into_iter().map(SyncEntry::from).collect())
    }

    /// Drops the pending change sets up to and including `up_to_seq` once the server has accepted
    /// them; returns how many were dropped. Safe to repeat.
    pub async fn mark_synced(&self, up_to_seq: u64) -> Result<u64> {
        self.run(move |s, a| async move { s.svc.mark_synced(&a, up_to_seq).await })
            .await
    }
}

impl Crm {
    /// Runs a use case as the acting user on a worker thread and awaits it (see `worker`). The user
    /// is resolved again on each call, so a deactivation or role change takes effect at once.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Session>, Actor) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = crm_core::Result<T>>,
    {
        let s = Arc::clone(&self.session);
        worker::unblock(move || {
            pollster::block_on(async move {
                let actor = s.svc.actor(s.tenant, s.user_id).await?;
                f(s, actor).await
            })
            .map_err(CrmError::from)
        })
        .await
    }

    async fn update_record(&self, entity: &str, id: &str, expected_version: u64, patch_json: &str) -> Result<Record> {
        let id = parse_id(entity, id)?;
        let patch = parse_object("patch_json", patch_json)?;
        let entity = entity.to_owned();
        self.run(move |s, a| async move { s.svc.update(&a, &entity, id, expected_version, &patch).await })
            .await
    }
}

/// Opens the file and finds `user` (an id or an email) in one of its tenants: the old
/// synchronous `open`, run on a worker thread by [`Crm::open`].
async fn open_session(path: &str, user: &str) -> Result<Session> {
    let svc = open_service(path)?;
    let by_id = crm_core::value::parse_id(user);
    for tenant in svc.tenants().await? {
        // The core resolves the user (by normalised email), checks they are active and that
        // their role resolves.
        let found = match by_id {
            Some(id) => svc.actor(tenant, id).await,
            None => svc.actor_by_email(tenant, user).await,
        };
        match found {
            Ok(actor) => {
                let user_id = actor.user_id.ok_or_else(|| crm_core::Error::not_found("user", user))?;
                return Ok(Session { svc, tenant, user_id });
            }
            Err(crm_core::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(crm_core::Error::not_found("user", user).into())
}

fn demo_tenant(d: crm_core::demo::DemoTenant) -> DemoTenant {
    DemoTenant {
        tenant_id: d.tenant.to_string(),
        users: d
            .users
            .into_iter()
            .map(|(role, id, email)| DemoUser {
                role,
                user_id: id.to_string(),
                email,
            })
            .collect(),
    }
}

/// Creates a demo roofing tenant (users of every role, contacts, scored leads with activities) in
/// the database at `path`, for trying the API and for tests. History is spread over the 180 days
/// before now. Runs on a worker thread (seconds for thousands of leads).
#[uniffi::export]
pub async fn load_demo(path: String, contacts: u32, leads: u32, activities_per_lead: u32) -> Result<DemoTenant> {
    worker::unblock(move || {
        let store = SqliteStore::open(&path)?;
        let now: Timestamp = SystemClock.now();
        let size = crm_core::demo::DemoSize {
            contacts: contacts as usize,
            leads: leads as usize,
            activities_per_lead: activities_per_lead as usize,
        };
        let d = pollster::block_on(crm_core::demo::load(store, Arc::new(RandomIds), now, size))?;
        Ok(demo_tenant(d))
    })
    .await
}

/// Creates a demo esports centre (plans, a front desk with staff and kiosk users, `clients` clients
/// with card numbers from 500001 and memberships in every status, 90 days of check-ins) in the
/// database at `path`, for a front-desk tablet's tests. Runs on a worker thread.
#[uniffi::export]
pub async fn load_esports_demo(path: String, clients: u32) -> Result<DemoTenant> {
    worker::unblock(move || {
        let store = SqliteStore::open(&path)?;
        let now: Timestamp = SystemClock.now();
        let d = pollster::block_on(crm_core::demo::load_esports(
            store,
            Arc::new(RandomIds),
            now,
            clients as usize,
        ))?;
        Ok(demo_tenant(d))
    })
    .await
}

const DAY: &[time::format_description::FormatItem<'static>] = time::macros::format_description!("[year]-[month]-[day]");

/// An optional `YYYY-MM-DD` argument; a malformed one is a field error on `arg`.
fn optional_day(arg: &str, s: Option<String>) -> Result<Option<time::Date>> {
    s.map(|s| {
        time::Date::parse(&s, DAY).map_err(|_| {
            crm_core::Error::field(arg, crm_core::error::codes::INVALID_FORMAT, "expected YYYY-MM-DD").into()
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests;
