//! Attachments (photos, documents, signatures) over HTTP: uploads stream from a multipart form into
//! the core's upload (`Service::begin_attach`, `Upload::write`, `Service::finish_attach`), which
//! checks the tenant's size limit while reading, the declared size and hash, and the media type;
//! downloads stream the blob as an attachment with a media type no browser runs
//! (`attachment::served_type`). Who may see or write what is the core's rule (the owner's scope).

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::state::{AppState, ServerStore};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crm_core::entity::attachment::{self, MAX_MAX_BYTES};
use crm_core::record::Record;
use crm_core::schema::{EntityDef, Exposure};
use crm_core::service::AttachInput;
use serde_json::json;
use std::io::Read as _;
use tokio::sync::mpsc;

/// Multipart overhead allowed on top of the largest tenant limit (the parts' headers and the
/// metadata parts); the tenant's own limit is the core's, enforced while the file streams.
const FORM_OVERHEAD: usize = 64 * 1024;

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(MAX_MAX_BYTES as usize + FORM_OVERHEAD)
    } else {
        ApiError::BadRequest(format!("malformed multipart form: {}", e.body_text()))
    }
}

/// The form's text parts, as the core's input.
#[derive(Default)]
struct Form {
    kind: Option<String>,
    file_name: Option<String>,
    signer_name: Option<String>,
    sha256: Option<String>,
    size: Option<u64>,
    /// From the file part: its file name (the default `file_name`) and its media type (a claim).
    part_name: Option<String>,
    part_type: Option<String>,
}

impl Form {
    fn set(&mut self, name: &str, text: String) -> ApiResult<()> {
        match name {
            "kind" => self.kind = Some(text),
            "file_name" => self.file_name = Some(text),
            "signer_name" => self.signer_name = Some(text),
            "sha256" => self.sha256 = Some(text),
            "size" => {
                self.size = Some(
                    text.trim()
                        .parse()
                        .map_err(|_| ApiError::BadRequest("`size` is a whole number of bytes".into()))?,
                );
            }
            other => return Err(ApiError::BadRequest(format!("the attachment form has no part {other}"))),
        }
        Ok(())
    }

    fn input(&self) -> AttachInput {
        AttachInput {
            kind: self.kind.clone().unwrap_or_default(),
            file_name: self
                .file_name
                .clone()
                .or_else(|| self.part_name.clone())
                .unwrap_or_default(),
            signer_name: self.signer_name.clone(),
            media_type: self.part_type.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
        }
    }
}

/// Reads the form: text parts before the file are checked by the core before a byte of the file
/// is stored (a form that sends them first gets an early refusal); text parts after it are the
/// input of the finish. The file streams into the core's upload either way, under the tenant's
/// limit.
async fn upload<S: ServerStore>(
    app: AppState<S>,
    auth: Auth,
    id: crm_core::value::Id,
    mut form: Multipart,
    def: &'static EntityDef,
) -> ApiResult<Response> {
    let mut meta = Form::default();
    let actor = auth.actor;
    let mut started = None;
    let mut late = false;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("(unnamed)").to_owned();
        if name != "file" {
            // A text part is short: read it with a cap, never a gigabyte into memory.
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if bytes.len() + chunk.len() > FORM_OVERHEAD {
                    return Err(ApiError::BadRequest(format!(
                        "the `{name}` part is over {FORM_OVERHEAD} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::BadRequest(format!("the `{name}` part is not UTF-8 text")))?;
            meta.set(&name, text)?;
            late |= started.is_some();
            continue;
        }
        if started.is_some() {
            return Err(ApiError::BadRequest("the form has one `file` part".into()));
        }
        meta.part_name = field.file_name().map(str::to_owned);
        meta.part_type = field.content_type().map(str::to_owned);
        let early = meta.kind.is_some().then(|| meta.input());
        let who = actor.clone();
        let mut up = app
            .run(move |svc| async move { svc.begin_attach(&who, def.name, id, early.as_ref()).await })
            .await?;
        // The blob store is synchronous and may block (a file, an S3 part upload): chunks are
        // gathered to the core's chunk size and written on the blocking pool, not on this thread.
        let mut pending = Vec::with_capacity(crm_core::service::CHUNK);
        loop {
            let chunk = field.chunk().await.map_err(multipart_error)?;
            if let Some(c) = &chunk {
                pending.extend_from_slice(c);
            }
            if pending.len() >= crm_core::service::CHUNK || chunk.is_none() && !pending.is_empty() {
                let data = std::mem::take(&mut pending);
                up = tokio::task::spawn_blocking(move || up.write(&data).map(|()| up))
                    .await
                    .map_err(|e| {
                        ApiError::from(crm_core::Error::internal(format!("an upload's writer failed: {e}")))
                    })??;
            }
            if chunk.is_none() {
                break;
            }
        }
        started = Some((up, meta.kind.is_none()));
    }
    let Some((up, deferred)) = started else {
        return Err(ApiError::BadRequest("the form needs a `file` part".into()));
    };
    let input = (deferred || late).then(|| meta.input());
    let rec = app
        .write(move |svc| async move { svc.finish_attach(&actor, up, input.as_ref()).await })
        .await?;
    let mut res = (StatusCode::CREATED, axum::Json(rec.to_json())).into_response();
    if let Ok(l) = HeaderValue::from_str(&format!("/api/v1/attachments/{}", rec.id)) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    Ok(res)
}

fn items(rs: &[Record]) -> axum::Json<serde_json::Value> {
    axum::Json(json!({"items": rs.iter().map(Record::to_json).collect::<Vec<_>>()}))
}

/// `Content-Disposition: attachment` with the file name: an ASCII fallback and the UTF-8 name.
fn disposition(file_name: &str) -> HeaderValue {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

async fn content<S: ServerStore>(app: AppState<S>, auth: Auth, id: crm_core::value::Id) -> ApiResult<Response> {
    let actor = auth.actor;
    let (rec, mut reader) = app
        .run(move |svc| async move { svc.attachment_content(&actor, id).await })
        .await?;
    // The blob is read on the blocking pool and handed over in 64 KiB chunks.
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; crm_core::service::CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                        break; // the client went away
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut res = axum::body::Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    let media = rec.str(attachment::fields::MEDIA_TYPE).unwrap_or_default();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(attachment::served_type(media)),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        disposition(rec.str(attachment::fields::FILE_NAME).unwrap_or("attachment")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(size) = rec
        .get(attachment::fields::SIZE)
        .and_then(crm_core::value::Value::as_i64)
    {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Some(sha) = rec.str(attachment::fields::SHA256)
        && let Ok(v) = HeaderValue::from_str(&format!("\"{sha}\""))
    {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}

/// The core's rule on a file name as a pattern: text without control characters (tab, LF and CR
/// aside), `/` or a backslash, with a character that is neither white space nor `.` (so not blank, `.` or `..`).
fn file_name_pattern() -> String {
    const CONTROL: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";
    format!(r"^[^/\\{CONTROL}]*[^/\\.\s{CONTROL}][^/\\{CONTROL}]*$")
}

fn form_schema() -> serde_json::Value {
    json!({
        "required": true,
        "content": { "multipart/form-data": { "schema": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "kind": { "type": "string", "enum": attachment::AttachmentKind::KEYS, "description": "Default: the declaration's (`document`)" },
                "file_name": { "type": "string", "maxLength": 255, "pattern": file_name_pattern(), "description": "A name without a directory; default: the file part's file name" },
                "signer_name": { "type": "string", "maxLength": 200, "pattern": crate::openapi::text()["pattern"], "description": "Who signed (a signature needs it; nothing else has it)" },
                "sha256": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "The content's SHA-256 in hex, checked against it (`mismatch` on `sha256`)" },
                "size": { "type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "The content's size in bytes, checked against it (`mismatch` on `size`)" },
                "file": { "type": "string", "contentMediaType": "application/octet-stream", "description": "The content. Its media type is sniffed from the bytes; the part's image type must match them. Parts before it are checked before the file is stored" }
            },
            "required": ["file"]
        } } }
    })
}

/// The routes of the attachments of one entity type that takes them.
pub fn owner_routes<S: ServerStore>(mut api: Api<S>, def: &'static EntityDef) -> Api<S> {
    if def.attachments.is_none() || def.exposure == Exposure::Internal {
        return api;
    }
    let path = format!("/api/v1/{}/{{id}}/attachments", def.table);
    let one = def.name.replace('_', " ");
    api = api.add(
        Op::new(
            "post",
            path.clone(),
            format!("attach_to_{}", def.name),
            "attachments",
            format!(
                "Attach a photo, document or signature to a {one} (multipart; the tenant's \
                 attachment_max_bytes is enforced while the file streams)"
            ),
        )
        .path_id(&format!("The {one}'s id"))
        .raw_body(form_schema())
        .ok(201, "The attachment", schema_ref("Attachment"))
        .errors(&[403, 404, 422]),
        post(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId, form: Multipart| {
                upload(app, auth, id, form, def)
            },
        )
        .layer(DefaultBodyLimit::max(MAX_MAX_BYTES as usize + FORM_OVERHEAD)),
    );
    api.add(
        Op::new(
            "get",
            path,
            format!("list_{}_attachments", def.name),
            "attachments",
            format!("The attachments of a {one}, oldest first"),
        )
        .path_id(&format!("The {one}'s id"))
        .ok(200, "The attachments", schema_ref("AttachmentList"))
        .errors(&[403, 404]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| async move {
                let actor = auth.actor;
                let rs = app
                    .run(move |svc| async move { svc.attachments(&actor, def.name, id).await })
                    .await?;
                Ok::<_, ApiError>(items(&rs).into_response())
            },
        ),
    )
}

/// The routes of one attachment.
pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "get",
            "/api/v1/attachments/{id}",
            "get_attachment",
            "attachments",
            "An attachment's record (not found unless the caller may read the record it is on)",
        )
        .path_id("The attachment's id")
        .ok(200, "The attachment", schema_ref("Attachment"))
        .errors(&[404]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| async move {
                let actor = auth.actor;
                let r = app
                    .read_by_key(move |svc| async move { svc.attachment(&actor, id).await })
                    .await?;
                Ok::<_, ApiError>(axum::Json(r.to_json()).into_response())
            },
        ),
    )
    .add(
        Op::new(
            "delete",
            "/api/v1/attachments/{id}",
            "delete_attachment",
            "attachments",
            "Delete an attachment (the caller must be able to update the record it is on); its bytes go \
             at the next collection of unreferenced blobs",
        )
        .path_id("The attachment's id")
        .no_content("Deleted")
        .errors(&[403, 404, 422]),
        axum::routing::delete(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| async move {
                let actor = auth.actor;
                app.write(move |svc| async move { svc.delete_attachment(&actor, id).await })
                    .await?;
                Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
            },
        ),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/attachments/{id}/content",
            "get_attachment_content",
            "attachments",
            "An attachment's bytes, streamed as a download (Content-Disposition: attachment, nosniff, a \
             sandboxing Content-Security-Policy; HTML, SVG and other active types as \
             application/octet-stream)",
        )
        .path_id("The attachment's id")
        .ok_raw(
            200,
            json!({
                "description": "The content",
                "headers": {
                    "Content-Disposition": { "description": "attachment, with the file name", "schema": {"type": "string"} },
                    "X-Content-Type-Options": { "description": "nosniff", "schema": {"type": "string"} },
                    "Content-Security-Policy": { "description": "sandbox; default-src 'none'", "schema": {"type": "string"} }
                },
                "content": {
                    "application/octet-stream": { "schema": {"type": "string", "contentMediaType": "application/octet-stream"} },
                    "*/*": { "schema": {"type": "string"} }
                }
            }),
        )
        .errors(&[404]),
        get(move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| content(app, auth, id)),
    )
}
