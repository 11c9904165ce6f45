//! Attachments: bytes streamed into the blob store, then a record on the owner (see
//! [`crate::entity::attachment`] for the rules and [`crate::blob`] for the seam).
//!
//! An upload is two calls so that any face can stream: [`Service::begin_attach`] checks who may
//! attach what to which record and opens a blob writer; the caller feeds [`Upload::write`] the
//! bytes as they arrive (refused past the tenant's limit, before more is read);
//! [`Service::finish_attach`] checks the size, the hash and the media type, stores the blob, and
//! commits the record in one change set with the owner's version bump (and its signed field, for a
//! signature). A caller that has the bytes as a reader uses [`Service::attach`].

use super::Service;
use crate::access::{Action, Actor};
use crate::blob::{BlobStore, BlobWriter, is_sha256};
use crate::change::{ChangeSet, Write, diff};
use crate::entity::attachment::{self, ATTACHMENT, SNIFF_LEN, fields as af};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::sync::Intent;
use crate::validate::{CustomSpecs, Mode};
use crate::value::{Id, Timestamp, Value};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::Arc;

/// Most attachments one record may have (what a list or a cascade reads at once).
pub const MAX_ATTACHMENTS: u32 = 10_000;

/// The size of the chunks [`Service::attach`] reads.
pub const CHUNK: usize = 64 * 1024;

/// What a client gives with an attachment's bytes. `kind`, `file_name` and `signer_name` are
/// stored (validated like any record input); `media_type`, `size` and `sha256` are the client's
/// claims about the content, checked against it and never stored as given.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachInput {
    /// `photo`, `document` or `signature`; empty: `document` (the declaration's default).
    pub kind: String,
    pub file_name: String,
    /// Who signed (signatures only, and required for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_name: Option<String>,
    /// The media type the client claims (a hint; a claimed image must be that image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The size the client claims: the upload is refused as soon as it is exceeded, and at the end
    /// when the content is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The hex SHA-256 the client claims: refused when the content's differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An upload in progress (see the module docs). Dropping it without
/// [`Service::finish_attach`] discards the bytes and writes no record.
pub struct Upload {
    owner_def: &'static EntityDef,
    owner_id: Id,
    /// The attachment's id when the caller names it (a sync replay keeps the device's id).
    record_id: Option<Id>,
    /// The input, when it came with the start.
    checked: Option<Checked>,
    limit: u64,
    content: ContentCheck,
    writer: Box<dyn BlobWriter>,
}

/// An attachment record made from a client's input, and the client's claims about the content.
struct Checked {
    record: Record,
    /// The input as given (logged as the change set's intent, with the content's facts).
    input: AttachInput,
    declared_type: Option<String>,
    declared_size: Option<u64>,
    declared_sha: Option<String>,
}

/// The bytes of a device's attachment arriving ahead of its push ([`Service::begin_blob`]).
pub struct BlobUpload {
    limit: u64,
    content: ContentCheck,
    writer: Box<dyn BlobWriter>,
}

impl BlobUpload {
    /// Appends a chunk; refused (`limit_exceeded`) past the tenant's limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.content.admit(chunk.len() as u64, self.limit, None)?;
        self.content.update(chunk);
        self.writer.write(chunk)
    }
}

impl std::fmt::Debug for BlobUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobUpload")
            .field("size", &self.content.size)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("owner", &(self.owner_def.name, self.owner_id))
            .field("size", &self.content.size)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// Appends a chunk. Refused (nothing more is stored, and the upload is over) when the bytes so
    /// far exceed the tenant's limit (`limit_exceeded`) or the declared size (`size` mismatch).
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let declared = self.checked.as_ref().and_then(|c| c.declared_size);
        self.content.admit(chunk.len() as u64, self.limit, declared)?;
        self.content.update(chunk);
        self.writer.write(chunk)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.content.size
    }

    /// The most bytes this upload takes (the tenant's limit).
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

fn size_mismatch(declared: u64, actual: u64, qualifier: &str) -> Error {
    Error::field(
        af::SIZE,
        codes::MISMATCH,
        format!("declared {declared} bytes, the content has {qualifier}{actual}"),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The running checks over an attachment's content as it arrives: its size, its SHA-256 and its
/// head (for sniffing the media type). An upload ([`Upload`]) and a check before one
/// ([`check_upload`]) run the same code, so a face that checks a file first sees exactly what the
/// upload will say.
#[derive(Clone, Debug, Default)]
pub struct ContentCheck {
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

/// What the core computes from an attachment's content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContentFacts {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the content ([`attachment::sniff`]).
    pub media_type: &'static str,
}

impl ContentCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// May `len` more bytes come? `limit_exceeded` past the tenant's `limit`, a `size` mismatch
    /// past the declared size. Asked before a chunk is read further or stored.
    pub fn admit(&self, len: u64, limit: u64, declared_size: Option<u64>) -> Result<()> {
        let size = self.size.saturating_add(len);
        if size > limit {
            return Err(Error::LimitExceeded {
                what: "attachment bytes".into(),
                limit,
            });
        }
        if let Some(declared) = declared_size
            && size > declared
        {
            return Err(size_mismatch(declared, size, "at least "));
        }
        Ok(())
    }

    /// Counts, hashes and keeps the head of the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// Bytes counted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content's facts, and every error the client's claims (declared size, SHA-256 and media
    /// type) and the attachment's `kind` give against it (a photo or signature must be an image).
    pub fn finish(
        self,
        kind: &str,
        declared_type: Option<&str>,
        declared_size: Option<u64>,
        declared_sha: Option<&str>,
    ) -> (ContentFacts, Vec<FieldError>) {
        let mut errs = Vec::new();
        if let Some(d) = declared_size
            && d != self.size
        {
            errs.extend(size_mismatch(d, self.size, "").field_errors().iter().cloned());
        }
        let sha = hex(&self.hasher.finalize());
        if let Some(d) = declared_sha
            && d != sha
        {
            errs.push(FieldError::new(
                af::SHA256,
                codes::MISMATCH,
                format!("declared {d}, the content's is {sha}"),
            ));
        }
        let sniffed = attachment::sniff(&self.head);
        if let Err(e) = attachment::check_media_type(kind, sniffed, declared_type) {
            errs.push(e);
        }
        let facts = ContentFacts {
            sha256: sha,
            size: self.size,
            media_type: sniffed,
        };
        (facts, errs)
    }
}

/// What an upload of some content would give, found without storing anything ([`check_upload`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UploadCheck {
    /// The content's SHA-256, size and sniffed media type (of all of it, even over the limit).
    #[serde(flatten)]
    pub facts: ContentFacts,
    /// The tenant's limit the check used.
    pub limit: u64,
    /// Whether the content is over `limit` (the upload would stop with `limit_exceeded`).
    pub limit_exceeded: bool,
    /// Every field error the upload would report: the input's (file name, kind, signer), the
    /// claims' (size, SHA-256, media type) and the kind's against the content, sorted by path.
    pub errors: Vec<FieldError>,
}

impl UploadCheck {
    /// Would the upload pass these checks (the owner and the actor's rights are checked at upload)?
    pub fn ok(&self) -> bool {
        !self.limit_exceeded && self.errors.is_empty()
    }

    /// The error the upload would fail with: `limit_exceeded` first (the upload stops reading),
    /// else `validation` with every field error; `None` when it would pass these checks.
    pub fn error(&self) -> Option<Error> {
        if self.limit_exceeded {
            return Some(Error::LimitExceeded {
                what: "attachment bytes".into(),
                limit: self.limit,
            });
        }
        (!self.errors.is_empty()).then(|| Error::Validation(self.errors.clone()))
    }
}

/// Checks an attachment before its upload, by the code the upload runs, writing nothing: the
/// input as it would be validated on a record of type `owner` (which must take attachments, else
/// `NotFound`), and `content` as [`ContentCheck`] would take it under the tenant's `limit` (the
/// organization's `attachment_max_bytes`, [`attachment::DEFAULT_MAX_BYTES`] unless set). What it
/// cannot know (whether the owner record exists, whether the actor may update it) the upload
/// checks.
pub fn check_upload(
    owner: &EntityDef,
    input: &AttachInput,
    content: &[u8],
    limit: u64,
    now: Timestamp,
) -> Result<UploadCheck> {
    if owner.attachments.is_none() {
        return Err(Error::not_found("entity type with attachments", owner.name));
    }
    let vctx = crate::tenant::validation_ctx(now, None);
    let mut record = Record::empty(&ATTACHMENT, Id::nil(), Id::nil(), now);
    record.set(af::OWNER_ENTITY, owner.name);
    record.set(af::OWNER_ID, Id::nil().to_string());
    let (mut errors, declared_sha) = input_errors(&mut record, input, &vctx);
    let mut check = ContentCheck::new();
    let limit_exceeded = matches!(
        check.admit(content.len() as u64, limit, None),
        Err(Error::LimitExceeded { .. })
    ) || input.size.is_some_and(|s| s > limit);
    check.update(content);
    let kind = record.str(af::KIND).unwrap_or_default().to_owned();
    let (facts, more) = check.finish(&kind, input.media_type.as_deref(), input.size, declared_sha.as_deref());
    errors.extend(more);
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(UploadCheck {
        facts,
        limit,
        limit_exceeded,
        errors,
    })
}

/// The tenant's most bytes per attachment (its organization's setting, else the default).
pub fn max_bytes(org: Option<&Record>) -> u64 {
    org.and_then(|o| o.get(attachment::MAX_BYTES_SETTING))
        .and_then(Value::as_i64)
        .unwrap_or(attachment::DEFAULT_MAX_BYTES)
        .max(0) as u64
}

/// Applies an attachment input to `record` (whose owner fields are set) and returns every error
/// the input gives (field rules, the cross-field check, the claims' formats), and the declared
/// SHA-256 in lower case.
fn input_errors(
    record: &mut Record,
    input: &AttachInput,
    vctx: &crate::validate::Ctx,
) -> (Vec<FieldError>, Option<String>) {
    let mut fields = Map::new();
    // No kind given: the declaration's default (`document`).
    if !input.kind.is_empty() {
        fields.insert(af::KIND.into(), Json::String(input.kind.clone()));
    }
    fields.insert(af::FILE_NAME.into(), Json::String(input.file_name.clone()));
    if let Some(s) = &input.signer_name {
        fields.insert(af::SIGNER_NAME.into(), Json::String(s.clone()));
    }
    let mut errs = match crate::validate::apply_input(record, &fields, &CustomSpecs::new(), vctx, Mode::Create) {
        Ok(_) => Vec::new(),
        Err(mut e) => {
            // The cross-field rules too, on what did read (every failing field at once).
            let mut more = Vec::new();
            if let Some(check) = ATTACHMENT.check {
                check(record, &mut more);
            }
            more.retain(|m| !e.iter().any(|x| x.path == m.path));
            e.extend(more);
            e
        }
    };
    let declared_sha = match &input.sha256 {
        Some(h) if is_sha256(&h.to_ascii_lowercase()) => Some(h.to_ascii_lowercase()),
        Some(_) => {
            errs.push(FieldError::new(
                af::SHA256,
                codes::INVALID_FORMAT,
                "a SHA-256 is 64 hexadecimal digits",
            ));
            None
        }
        None => None,
    };
    if let Some(t) = &input.media_type
        && (t.len() > 100 || t.chars().any(char::is_control))
    {
        errs.push(FieldError::new(af::MEDIA_TYPE, codes::INVALID_FORMAT, "a media type"));
    }
    (errs, declared_sha)
}

impl<S: Store> Service<S> {
    /// Sets where attachment bytes go. Without one, attachment use cases are `internal` errors.
    pub fn with_blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The blob store attachments use, if one is set.
    pub fn blob_store(&self) -> Option<&Arc<dyn BlobStore>> {
        self.blobs.as_ref()
    }

    pub(crate) fn blobs(&self) -> Result<&Arc<dyn BlobStore>> {
        self.blobs
            .as_ref()
            .ok_or_else(|| Error::internal("no blob store is configured for attachments"))
    }

    /// An entity type that takes attachments, or `NotFound`.
    fn owner_type(&self, entity: &str) -> Result<&'static EntityDef> {
        let def = self.entity(entity)?;
        if def.attachments.is_none() {
            return Err(Error::not_found("entity type with attachments", entity));
        }
        Ok(def)
    }

    /// The owner record as the actor may write attachments to it: in their read scope (else
    /// `NotFound`), in their update scope (else `Forbidden`; for a child record such as a job's
    /// step, the update scope of its parent, as for the child's own writes: a crew member photographs
    /// the steps of their job), and not locked by its workflow or its parent's.
    async fn writable_owner(&self, actor: &Actor, def: &'static EntityDef, id: Id) -> Result<Record> {
        let owner = self.visible(actor, def, id).await?;
        let gate = match (def.parent(), def.child_of) {
            (Some(pdef), Some(c)) => {
                let pid = owner.id_of(c.field).ok_or_else(|| Error::not_found(def.name, id))?;
                self.store
                    .get(actor.tenant, pdef, pid)
                    .await?
                    .ok_or_else(|| Error::not_found(def.name, id))?
            }
            _ => owner.clone(),
        };
        let scope = actor.authorize(gate.entity, Action::Update)?;
        if !actor.in_scope(&gate, scope) {
            return Err(Error::forbidden(Action::Update, gate.entity.name, vec![]));
        }
        for r in [&gate, &owner] {
            if let Some(wf) = r.entity.workflow {
                super::workflow::check_unlocked(wf, r)?;
            }
        }
        Ok(owner)
    }

    /// Starts an upload of an attachment to the record `entity`/`id`: checks the actor may update
    /// the record, validates the input (every field error at once, before any byte is read) and
    /// the declared size against the tenant's limit, and opens a blob writer. A face that learns
    /// the input only after the bytes (a form whose file part comes first) passes `None` here and
    /// the input to [`Service::finish_attach`]; the tenant's limit holds either way.
    pub async fn begin_attach(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        input: Option<&AttachInput>,
    ) -> Result<Upload> {
        self.begin_attach_as(actor, entity, id, input, None).await
    }

    /// [`Service::begin_attach`] of an attachment with the id `record_id` when given.
    async fn begin_attach_as(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        input: Option<&AttachInput>,
        record_id: Option<Id>,
    ) -> Result<Upload> {
        let def = self.owner_type(entity)?;
        self.writable_owner(actor, def, id).await?;
        let org = self.org(actor.tenant).await?;
        let limit = max_bytes(Some(&org));
        let checked = match input {
            Some(i) => Some(self.checked_input(actor, (def, id), i, &org, limit, record_id)?),
            None => None,
        };
        let writer = self.blobs()?.writer(actor.tenant)?;
        Ok(Upload {
            owner_def: def,
            owner_id: id,
            record_id,
            checked,
            limit,
            content: ContentCheck::new(),
            writer,
        })
    }

    /// The attachment record an input makes (validated: every field error at once, sorted by
    /// path), with the client's claims to check against the content; a declared size over the
    /// tenant's limit is `limit_exceeded`.
    fn checked_input(
        &self,
        actor: &Actor,
        (def, id): (&'static EntityDef, Id),
        input: &AttachInput,
        org: &Record,
        limit: u64,
        record_id: Option<Id>,
    ) -> Result<Checked> {
        let now = self.clock.now();
        let vctx = crate::tenant::validation_ctx(now, Some(org));
        let record_id = record_id.unwrap_or_else(|| self.ids.new_id(now));
        let mut record = Record::empty(&ATTACHMENT, actor.tenant, record_id, now);
        record.set(af::OWNER_ENTITY, def.name);
        record.set(af::OWNER_ID, id.to_string());
        let (mut errs, declared_sha) = input_errors(&mut record, input, &vctx);
        if !errs.is_empty() {
            errs.sort_by(|a, b| a.path.cmp(&b.path));
            return Err(Error::Validation(errs));
        }
        if let Some(size) = input.size
            && size > limit
        {
            return Err(Error::LimitExceeded {
                what: "attachment bytes".into(),
                limit,
            });
        }
        record.set(af::UPLOADED_BY, actor.user_id.map_or(Value::Null, Value::Id));
        record.set(af::UPLOADED_AT, Value::Timestamp(now));
        if attachment::is_signature(&record) {
            record.set(af::SIGNED_AT, Value::Timestamp(now));
        }
        Ok(Checked {
            record,
            input: input.clone(),
            declared_type: input.media_type.clone(),
            declared_size: input.size,
            declared_sha,
        })
    }

    /// Ends an upload: checks the declared size and hash and the media type against the content,
    /// stores the blob (once per tenant and content), then commits the attachment record with the
    /// owner's version bump (and its signed field) as one change set. If that commit fails the
    /// blob is an orphan, removed by [`Service::collect_orphan_blobs`].
    /// `input`, when given, is the attachment's input (replacing any given at the start).
    pub async fn finish_attach(&self, actor: &Actor, upload: Upload, input: Option<&AttachInput>) -> Result<Record> {
        let Upload {
            owner_def,
            owner_id,
            record_id,
            checked,
            limit,
            content,
            writer,
        } = upload;
        let checked = match (input, checked) {
            (Some(i), _) => {
                let org = self.org(actor.tenant).await?;
                self.checked_input(actor, (owner_def, owner_id), i, &org, limit, record_id)?
            }
            (None, Some(c)) => c,
            (None, None) => {
                return Err(Error::field(af::KIND, codes::REQUIRED, "an attachment needs its input"));
            }
        };
        let Checked {
            mut record,
            input,
            declared_type,
            declared_size,
            declared_sha,
        } = checked;
        let kind = record.str(af::KIND).unwrap_or_default().to_owned();
        let (facts, errs) = content.finish(&kind, declared_type.as_deref(), declared_size, declared_sha.as_deref());
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let now = self.clock.now();
        writer.finish(&facts.sha256, now)?;
        record.set(af::MEDIA_TYPE, facts.media_type);
        record.set(af::SIZE, facts.size as i64);
        // A device's sync replays the attach with the content's facts as the claims to check.
        let intent = Intent::Attach {
            entity: owner_def.name.to_owned(),
            id: owner_id,
            attachment: record.id,
            input: AttachInput {
                size: Some(facts.size),
                sha256: Some(facts.sha256.clone()),
                ..input
            },
        };
        record.set(af::SHA256, facts.sha256);
        // A concurrent write of the owner (another photo) moved its version: read it and try again.
        let mut tries = 0;
        loop {
            let owner = self.writable_owner(actor, owner_def, owner_id).await?;
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            cs.intent = Some(intent.clone());
            self.push_change(actor, "create", "attachment.created", None, &record, &mut cs);
            let delta = i64::from(attachment::is_signature(&record));
            self.owner_write_into(actor, &owner, delta, &mut cs).await?;
            match self.apply(cs).await {
                Err(Error::Conflict { .. }) if tries < 5 => tries += 1,
                Err(e) => return Err(e),
                Ok(_) => return Ok(record),
            }
        }
    }

    /// [`Service::begin_attach`], the bytes of `content` in chunks, then [`Service::finish_attach`].
    pub async fn attach(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        input: &AttachInput,
        content: &mut (dyn Read + Send),
    ) -> Result<Record> {
        self.attach_as(actor, entity, id, input, content, None).await
    }

    /// [`Service::attach`] of an attachment with the id `record_id` when given (a sync replay).
    pub(crate) async fn attach_as(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        input: &AttachInput,
        content: &mut (dyn Read + Send),
        record_id: Option<Id>,
    ) -> Result<Record> {
        let mut up = self.begin_attach_as(actor, entity, id, Some(input), record_id).await?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::field(
                        "content",
                        codes::INVALID_FORMAT,
                        format!("unreadable: {e}"),
                    ));
                }
            };
            up.write(&buf[..n])?;
        }
        self.finish_attach(actor, up, None).await
    }

    /// Adds the owner's version bump to an attachment write, with its signed field re-derived when
    /// the write adds (`delta` 1) or removes (-1) a signature. The bump serialises attachment
    /// writes with the owner's own writes: an owner deleted meanwhile fails the change set.
    async fn owner_write_into(&self, actor: &Actor, owner: &Record, delta: i64, cs: &mut ChangeSet) -> Result<()> {
        let mut next = owner.clone();
        if let Some(field) = owner.entity.attachments.and_then(|a| a.signed)
            && delta != 0
        {
            let stored = self
                .store
                .count(
                    actor.tenant,
                    &ATTACHMENT,
                    &Filter::And(vec![
                        owner_filter(owner),
                        Filter::eq(af::KIND, attachment::AttachmentKind::Signature.key()),
                    ]),
                )
                .await? as i64;
            next.set(field, stored + delta > 0);
        }
        next.version = owner.version + 1;
        next.updated_at = self.clock.now();
        if next.values != owner.values {
            let event = format!("{}.updated", owner.entity.name);
            self.push_change(actor, "update", &event, Some(owner), &next, cs);
        } else {
            cs.writes.push(Write::Update {
                record: next,
                expected_version: owner.version,
            });
        }
        Ok(())
    }

    /// The attachments of a record the actor may read, oldest first; `NotFound` when they can't
    /// read it (so its attachments' existence is not told either).
    pub async fn attachments(&self, actor: &Actor, entity: &str, id: Id) -> Result<Vec<Record>> {
        let def = self.owner_type(entity)?;
        let owner = self.visible(actor, def, id).await?;
        self.attachments_of(&owner).await
    }

    async fn attachments_of(&self, owner: &Record) -> Result<Vec<Record>> {
        let q = StoreQuery {
            filter: owner_filter(owner),
            sort: vec![SortKey::asc("created_at"), SortKey::asc("id")],
            limit: MAX_ATTACHMENTS,
        };
        self.store.query(owner.tenant, &ATTACHMENT, &q).await
    }

    /// One attachment and its owner, if the actor may read the owner; else `NotFound`.
    async fn visible_attachment(&self, actor: &Actor, id: Id) -> Result<(Record, Record)> {
        let missing = || Error::not_found(ATTACHMENT.name, id);
        let att = self
            .store
            .get(actor.tenant, &ATTACHMENT, id)
            .await?
            .ok_or_else(missing)?;
        let owner_def = att
            .str(af::OWNER_ENTITY)
            .and_then(|e| self.owner_type(e).ok())
            .ok_or_else(missing)?;
        let owner_id = att
            .str(af::OWNER_ID)
            .and_then(crate::value::parse_id)
            .ok_or_else(missing)?;
        let owner = self.visible(actor, owner_def, owner_id).await.map_err(|e| match e {
            Error::NotFound { .. } | Error::Forbidden { .. } => missing(),
            other => other,
        })?;
        Ok((att, owner))
    }

    /// An attachment's record, if the actor may read its owner; else `NotFound`.
    pub async fn attachment(&self, actor: &Actor, id: Id) -> Result<Record> {
        Ok(self.visible_attachment(actor, id).await?.0)
    }

    /// An attachment's record and its content as a stream, if the actor may read its owner.
    pub async fn attachment_content(&self, actor: &Actor, id: Id) -> Result<(Record, Box<dyn Read + Send>)> {
        let (att, _) = self.visible_attachment(actor, id).await?;
        let sha = att.str(af::SHA256).unwrap_or_default();
        let content = self
            .blobs()?
            .open(actor.tenant, sha)?
            .ok_or_else(|| Error::corrupt(format!("the bytes of attachment {id} are missing")))?;
        Ok((att, content))
    }

    /// Deletes an attachment (the actor must be able to update its owner), with the owner's
    /// version bump and signed field in the same change set. Its bytes stay until
    /// [`Service::collect_orphan_blobs`] finds no record naming them.
    pub async fn delete_attachment(&self, actor: &Actor, id: Id) -> Result<()> {
        let (att, owner) = self.visible_attachment(actor, id).await?;
        let mut tries = 0;
        let mut owner = owner;
        loop {
            owner = self.writable_owner(actor, owner.entity, owner.id).await?;
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            cs.intent = Some(Intent::Detach { attachment: att.id });
            self.attachment_gone_into(actor, &att, &mut cs);
            let delta = -i64::from(attachment::is_signature(&att));
            self.owner_write_into(actor, &owner, delta, &mut cs).await?;
            match self.apply(cs).await {
                Err(Error::Conflict { .. }) if tries < 5 => tries += 1,
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
    }

    fn attachment_gone_into(&self, actor: &Actor, att: &Record, cs: &mut ChangeSet) {
        cs.audit
            .push(self.audit_entry(actor, "delete", att, diff(Some(att), None)));
        cs.events.push(self.event("attachment.deleted", att));
        cs.writes.push(Write::Delete {
            entity: &ATTACHMENT,
            id: att.id,
            expected_version: att.version,
        });
    }

    /// Adds the deletion of every attachment of `owner` to the change set deleting it (none for
    /// types without attachments).
    pub(crate) async fn attachments_gone_into(&self, actor: &Actor, owner: &Record, cs: &mut ChangeSet) -> Result<()> {
        if owner.entity.attachments.is_none() {
            return Ok(());
        }
        for att in self.attachments_of(owner).await? {
            self.attachment_gone_into(actor, &att, cs);
        }
        Ok(())
    }

    /// The attachments still waiting in this device's unsynced change-set log ([`crate::sync`]):
    /// inserted by a logged change set and not deleted by a later one, oldest first, each with the
    /// `seq` of the entry that holds its record. Their bytes wait in the blob store under their
    /// `sha256` (read them with [`Service::attachment_content`]) until the entry is uploaded and
    /// marked synced. Like [`Service::pending_changes`], this is the device's outgoing queue: any
    /// active user of the tenant may read it. Empty unless the store keeps a sync log.
    pub async fn pending_uploads(&self, actor: &Actor) -> Result<Vec<(u64, Record)>> {
        use crate::sync::SyncOp;
        let mut pending: Vec<(u64, Id)> = Vec::new();
        let mut after = 0;
        loop {
            let batch = self
                .store
                .pending_changes(actor.tenant, after, super::sync::MAX_SYNC_BATCH)
                .await?;
            for entry in &batch {
                for w in entry.writes.iter().filter(|w| w.entity == ATTACHMENT.name) {
                    match w.op {
                        SyncOp::Insert => pending.push((entry.seq, w.id)),
                        SyncOp::Delete => pending.retain(|(_, id)| *id != w.id),
                        SyncOp::Update => {}
                    }
                }
            }
            match batch.last() {
                Some(last) if batch.len() as u32 >= super::sync::MAX_SYNC_BATCH => after = last.seq,
                _ => break,
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for (seq, id) in pending {
            if let Some(r) = self.store.get(actor.tenant, &ATTACHMENT, id).await? {
                out.push((seq, r));
            }
        }
        Ok(out)
    }

    /// Starts receiving the bytes of a device's attachment before its push
    /// (`PUT /api/v1/sync/blobs/{sha256}`): any active user of the tenant, up to the tenant's
    /// attachment limit. The attach replayed from the push checks the owner and the content.
    pub async fn begin_blob(&self, actor: &Actor) -> Result<BlobUpload> {
        if actor.user_id.is_none() {
            return Err(Error::forbidden("upload", ATTACHMENT.name, vec![]));
        }
        let org = self.org(actor.tenant).await?;
        Ok(BlobUpload {
            limit: max_bytes(Some(&org)),
            content: ContentCheck::new(),
            writer: self.blobs()?.writer(actor.tenant)?,
        })
    }

    /// Stores a received blob under `sha256`, which must be its content's (field `sha256`);
    /// `false` when the tenant had it already.
    pub async fn finish_blob(&self, upload: BlobUpload, sha256: &str) -> Result<bool> {
        self.seal_blob(upload, sha256)
    }

    /// Puts back bytes a device's host kept outside the blob store (a browser's IndexedDB beside
    /// an in-memory store) under `sha256`, which must be their content's; no size limit (they were
    /// stored once already).
    pub fn restore_blob(&self, tenant: Id, sha256: &str, bytes: &[u8]) -> Result<bool> {
        let mut up = BlobUpload {
            limit: u64::MAX,
            content: ContentCheck::new(),
            writer: self.blobs()?.writer(tenant)?,
        };
        up.write(bytes)?;
        self.seal_blob(up, sha256)
    }

    /// Stores an upload's bytes as the blob `sha256` if that is their hash.
    fn seal_blob(&self, upload: BlobUpload, sha256: &str) -> Result<bool> {
        let BlobUpload { content, writer, .. } = upload;
        let actual = hex(&content.hasher.finalize());
        if !is_sha256(sha256) || actual != sha256 {
            return Err(Error::field(
                af::SHA256,
                codes::MISMATCH,
                format!("the content's SHA-256 is {actual}"),
            ));
        }
        writer.finish(sha256, self.clock.now())
    }

    /// Removes the tenant's blobs that no attachment names and that were stored before
    /// `now - grace_micros` (an upload finishing now has its record committed well within the
    /// grace). Returns how many were removed.
    pub async fn collect_orphan_blobs(&self, tenant: Id, grace_micros: i64) -> Result<u64> {
        let blobs = self.blobs()?;
        let cutoff = Timestamp(self.clock.now().0.saturating_sub(grace_micros));
        let mut removed = 0;
        for b in blobs.list(tenant)? {
            if b.stored_at > cutoff {
                continue;
            }
            let named = self
                .store
                .count(tenant, &ATTACHMENT, &Filter::eq(af::SHA256, b.sha256.as_str()))
                .await?;
            if named == 0 && blobs.delete(tenant, &b.sha256)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn owner_filter(owner: &Record) -> Filter {
    Filter::And(vec![
        Filter::eq(af::OWNER_ENTITY, owner.entity.name),
        Filter::eq(af::OWNER_ID, owner.id.to_string().as_str()),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blob::MemoryBlobStore;
    use crate::clock::Clock;
    use crate::conformance::{Fixture, attach_input as input, block, obj, png};
    use crate::entity::{JOB, LEAD};
    use crate::memory::MemoryStore;
    use serde_json::json;

    /// The check before an upload gives the facts the upload stamps on the record, and fails
    /// where the upload fails, with the same error; it writes nothing.
    #[test]
    fn a_check_before_upload_agrees_with_the_upload() {
        let f = Fixture::new(MemoryStore::new()).with_blobs(Arc::new(MemoryBlobStore::new()));
        let lead = block(f.svc.create(&f.admin, "lead", &obj(json!({"first_name": "Ann"})))).unwrap();
        let now = f.clock.now();
        let limit = 1000;
        let org = f.set_org(json!({"attachment_max_bytes": limit}));
        assert_eq!(max_bytes(Some(&org)), limit);
        assert_eq!(max_bytes(None), attachment::DEFAULT_MAX_BYTES as u64);

        let bytes = png(7);
        let checked = check_upload(&LEAD, &input("photo", "roof.png"), &bytes, limit, now).unwrap();
        assert!(checked.ok(), "{checked:?}");
        assert_eq!(checked.error().map(|e| e.code()), None);
        let rec = block(
            f.svc
                .attach(&f.admin, "lead", lead.id, &input("photo", "roof.png"), &mut &bytes[..]),
        )
        .unwrap();
        assert_eq!(rec.str(af::SHA256), Some(checked.facts.sha256.as_str()));
        assert_eq!(
            rec.get(af::SIZE).and_then(Value::as_i64),
            Some(checked.facts.size as i64)
        );
        assert_eq!(rec.str(af::MEDIA_TYPE), Some(checked.facts.media_type));

        // What the upload refuses, the check refuses with the same error.
        let html = b"<!doctype html><script>alert(1)</script>".to_vec();
        let cases: Vec<(AttachInput, Vec<u8>)> = vec![
            (input("photo", "x.png"), html.clone()),
            (
                AttachInput {
                    media_type: Some("image/jpeg".into()),
                    ..input("document", "x.jpg")
                },
                bytes.clone(),
            ),
            (
                AttachInput {
                    sha256: Some("0".repeat(64)),
                    ..input("document", "x.png")
                },
                bytes.clone(),
            ),
            (input("document", "big.bin"), vec![0u8; limit as usize + 1]),
        ];
        for (i, body) in cases {
            let pre = check_upload(&LEAD, &i, &body, limit, now).unwrap();
            assert!(!pre.ok());
            let up = block(f.svc.attach(&f.admin, "lead", lead.id, &i, &mut &body[..])).unwrap_err();
            assert_eq!(pre.error().unwrap().details(), up.details(), "{i:?}");
        }
        assert!(
            check_upload(&LEAD, &input("document", "big.bin"), &[0; 1001], limit, now)
                .unwrap()
                .limit_exceeded
        );
        // The facts of all of the content, even over the limit.
        let over = check_upload(&LEAD, &input("document", "a.txt"), b"hello", 3, now).unwrap();
        assert_eq!(
            (over.facts.size, over.facts.media_type, over.limit_exceeded),
            (5, "text/plain", true)
        );
        assert_eq!(
            over.facts.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );

        // Input errors and content errors together, sorted by path.
        let bad = AttachInput {
            file_name: "../x.png".into(),
            ..input("signature", "")
        };
        let pre = check_upload(&JOB, &bad, b"not an image", limit, now).unwrap();
        let paths: Vec<_> = pre.errors.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            paths,
            [("file_name", "invalid_format"), ("media_type", "invalid_format")]
        );
        // Only a type that takes attachments.
        let user = crate::entity::entity("user").unwrap();
        assert_eq!(
            check_upload(user, &input("photo", "a.png"), &bytes, limit, now)
                .unwrap_err()
                .code(),
            "not_found"
        );
        assert_eq!(
            f.svc.blob_store().unwrap().list(f.tenant).unwrap().len(),
            1,
            "checks store nothing"
        );
    }

    /// Attachments made on a device wait in its log until it is marked synced; one deleted before
    /// the upload no longer waits.
    #[test]
    fn pending_uploads_follow_the_sync_log() {
        let f = Fixture::new(MemoryStore::new().with_sync_log(true)).with_blobs(Arc::new(MemoryBlobStore::new()));
        let lead = block(f.svc.create(&f.admin, "lead", &obj(json!({"first_name": "Ann"})))).unwrap();
        let none = block(f.svc.pending_uploads(&f.admin)).unwrap();
        assert!(none.is_empty(), "a lead is no upload");
        let photo = block(
            f.svc
                .attach(&f.admin, "lead", lead.id, &input("photo", "a.png"), &mut &png(1)[..]),
        )
        .unwrap();
        let doc = block(
            f.svc
                .attach(&f.admin, "lead", lead.id, &input("document", "b.txt"), &mut &b"hi"[..]),
        )
        .unwrap();
        let pending = block(f.svc.pending_uploads(&f.admin)).unwrap();
        let ids: Vec<Id> = pending.iter().map(|(_, r)| r.id).collect();
        assert_eq!(ids, [photo.id, doc.id]);
        assert!(pending[0].0 < pending[1].0, "each with its entry's seq");
        block(f.svc.delete_attachment(&f.admin, doc.id)).unwrap();
        let ids: Vec<Id> = block(f.svc.pending_uploads(&f.admin))
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.id)
            .collect();
        assert_eq!(ids, [photo.id]);
        let last = block(f.svc.pending_changes(&f.admin, 0, 1000))
            .unwrap()
            .last()
            .unwrap()
            .seq;
        block(f.svc.mark_synced(&f.admin, last)).unwrap();
        assert!(block(f.svc.pending_uploads(&f.admin)).unwrap().is_empty());
    }
}
