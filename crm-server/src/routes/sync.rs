//! Sync over HTTP (`docs/sync.md`): a device pushes the change sets it logged offline and the
//! server replays them as the device's user (`Service::replay_push`), and it pulls what changed for
//! that user since its cursor (`Service::pull`). The routes decode the core's messages, run the use
//! case under the caller's actor and encode the core's answer; every rule (authorization, merges,
//! idempotency by change-set id, versions, scopes, redaction, the cursor) is the core's.

use crate::api::{Api, Op};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::{AppState, ServerStore};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use crm_core::entity::attachment::MAX_MAX_BYTES;
use crm_core::service::CHUNK;
use crm_core::sync::{DEFAULT_PULL_LIMIT, MAX_DEVICE_ID, MAX_PULL_LIMIT, MAX_PUSH_ENTRIES, PushRequest};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};

async fn push<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Body(req): Body<PushRequest>,
) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let answer = app
        .write(move |svc| async move { svc.replay_push(&actor, &req).await })
        .await?;
    Ok(axum::Json(answer))
}

async fn pull<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth, p: Params) -> ApiResult<impl IntoResponse> {
    let limit = p.bounded("limit", 1, MAX_PULL_LIMIT)?.unwrap_or(DEFAULT_PULL_LIMIT);
    let cursor = p.raw("cursor").map(str::to_owned);
    let actor = auth.actor;
    let page = app
        .run(move |svc| async move { svc.pull(&actor, cursor.as_deref(), limit).await })
        .await?;
    Ok(axum::Json(page))
}

async fn provision<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let p = app.run(move |svc| async move { svc.provision(&actor).await }).await?;
    Ok(axum::Json(p))
}

/// The bytes of an attachment a device made offline, ahead of the push carrying its record: they
/// stream into the blob store under the tenant's limit and are kept under their SHA-256, which must
/// be the path's. The attach replayed from the push checks the rest.
async fn upload_blob<S: ServerStore>(
    State(app): State<AppState<S>>,
    auth: Auth,
    Path(sha256): Path<String>,
    body: axum::body::Body,
) -> ApiResult<StatusCode> {
    let actor = auth.actor;
    let mut up = app.run(move |svc| async move { svc.begin_blob(&actor).await }).await?;
    let mut stream = body.into_data_stream();
    // Gathered to the core's chunk size and written on the blocking pool (the blob store may block).
    let mut pending = Vec::with_capacity(CHUNK);
    loop {
        let chunk = stream
            .next()
            .await
            .transpose()
            .map_err(|_| ApiError::TooLarge(MAX_MAX_BYTES as usize))?;
        if let Some(c) = &chunk {
            pending.extend_from_slice(c);
        }
        if pending.len() >= CHUNK || chunk.is_none() && !pending.is_empty() {
            let data = std::mem::take(&mut pending);
            up = tokio::task::spawn_blocking(move || up.write(&data).map(|()| up))
                .await
                .map_err(|e| ApiError::from(crm_core::Error::internal(format!("an upload's writer failed: {e}"))))??;
        }
        if chunk.is_none() {
            break;
        }
    }
    app.run(move |svc| async move { svc.finish_blob(up, &sha256).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn uuid() -> Json {
    json!({"type": "string", "format": "uuid"})
}

/// The JSON schema of a device's log entry (`crm_core::sync::SyncEntry`).
fn entry_schema() -> Json {
    let write = json!({
        "type": "object",
        "required": ["entity", "id", "op", "expected_version", "patch"],
        "properties": {
            "entity": {"type": "string"},
            "id": uuid(),
            "op": {"type": "string", "enum": ["insert", "update", "delete"]},
            "expected_version": {"type": "integer", "minimum": 0, "maximum": u64::MAX},
            "patch": {"type": "object", "description": "New values of the fields the write changed"},
            "base": {"type": "object", "description": "An update's values of those fields before the write"}
        }
    });
    // One object per use case with its variant's fields (crm_core::sync::Intent). Other members are
    // not described: the core ignores them, so any value is taken.
    let version = json!({"type": "integer", "minimum": 0, "maximum": u64::MAX});
    let object = json!({"type": "object"});
    let fields = |names: &[&str]| -> serde_json::Map<String, Json> {
        names
            .iter()
            .map(|&n| {
                let schema = match n {
                    "entity" | "name" => json!({"type": "string"}),
                    "expected_version" => version.clone(),
                    "input" | "patch" => object.clone(),
                    "create_company" => json!({"type": "boolean"}),
                    "company" => json!({"anyOf": [uuid(), {"type": "null"}]}),
                    _ => uuid(),
                };
                (n.to_owned(), schema)
            })
            .collect()
    };
    let case = |name: &str, required: &[&str], optional: &[&str]| {
        let mut props = fields(required);
        props.extend(fields(optional));
        props.insert("use_case".into(), json!({"type": "string", "enum": [name]}));
        let mut req = vec!["use_case"];
        req.extend_from_slice(required);
        json!({"type": "object", "required": req, "properties": props})
    };
    const KNOWN: [&str; 7] = [
        "create",
        "update",
        "delete",
        "transition",
        "convert",
        "attach",
        "detach",
    ];
    let mut attach = case(KNOWN[5], &["entity", "id", "attachment", "input"], &[]);
    attach["properties"]["input"] = attach_input_schema();
    let intent = json!({
        "description": "The use case to replay, tagged `use_case`: `create` (entity, id, input), `update` (entity, id, expected_version, patch), `delete` (entity, id, expected_version), `transition` (entity, id, expected_version, name, input), `convert` (lead, expected_version, contact, company, create_company), `attach` (entity, id, attachment, input: the attachment's input with the content's sha256 and size), `detach` (attachment); another name is refused `not_replayable`; null: not replayable",
        "anyOf": [
            {"type": "null"},
            case(KNOWN[0], &["entity", "id", "input"], &[]),
            case(KNOWN[1], &["entity", "id", "expected_version", "patch"], &[]),
            case(KNOWN[2], &["entity", "id", "expected_version"], &[]),
            case(KNOWN[3], &["entity", "id", "expected_version", "name", "input"], &[]),
            case(KNOWN[4], &["lead", "expected_version", "contact"], &["company", "create_company"]),
            attach,
            case(KNOWN[6], &["attachment"], &[]),
            {
                "type": "object",
                "required": ["use_case"],
                "properties": {"use_case": {"type": "string", "not": {"enum": KNOWN}}},
                "description": "A use case this server does not know (a newer app's): refused `not_replayable`"
            }
        ]
    });
    json!({
        "type": "object",
        // `actor` may be left out: the entry type reads a missing one as null (the system), which a
        // user's push has refused per entry (`refused`), as it refuses any other actor than the caller.
        "required": ["seq", "tenant", "change_set", "at", "writes", "audit", "events"],
        "properties": {
            "seq": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "Position in the device's log"},
            "tenant": uuid(),
            "change_set": {"type": "string", "format": "uuid", "description": "The change set's id: the server answers each id once"},
            "actor": {"anyOf": [uuid(), {"type": "null"}], "description": "The user who ran the use case: the caller (null or absent: the system)"},
            "at": {"type": "string", "format": "date-time", "description": "When the use case ran on the device (RFC 3339)"},
            "writes": {"type": "array", "items": write},
            "audit": {"type": "array", "items": uuid()},
            "events": {"type": "array", "items": uuid()},
            "intent": intent
        }
    })
}

/// The JSON schema of an attach intent's input (`crm_core::service::AttachInput`: no other members).
fn attach_input_schema() -> Json {
    let text = || json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["kind", "file_name"],
        "additionalProperties": false,
        "properties": {
            "kind": {"type": "string"},
            "file_name": {"type": "string"},
            "signer_name": text(),
            "media_type": text(),
            "size": {"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX},
            "sha256": text()
        }
    })
}

/// The JSON schema of a push (`crm_core::sync::PushRequest`).
fn push_request_schema() -> Json {
    json!({
        "type": "object",
        "required": ["protocol", "device", "schema_version", "entries"],
        "properties": {
            "protocol": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "The push protocol's version (1)"},
            "device": {"type": "string", "minLength": 1, "maxLength": MAX_DEVICE_ID, "description": "The app's stable id for the installation"},
            "schema_version": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "The schema version the change sets were written under"},
            "entries": {"type": "array", "maxItems": MAX_PUSH_ENTRIES, "items": entry_schema(), "description": "The device's pending log entries, oldest first"}
        }
    })
}

/// The JSON schema of a push's answer (`crm_core::sync::PushAnswer`).
fn push_answer_schema() -> Json {
    let kept = json!({
        "type": "object",
        "required": ["entity", "id", "field", "device", "server"],
        "properties": {
            "entity": {"type": "string"}, "id": uuid(), "field": {"type": "string"},
            "device": {"description": "The value the device wrote"},
            "server": {"description": "The server's value, which stayed (null when the caller may not read it)"}
        }
    });
    let outcome = json!({
        "type": "object",
        "required": ["outcome"],
        "properties": {
            "outcome": {"type": "string", "enum": ["accepted", "merged", "rejected", "pending"]},
            "kept_server": {"type": "array", "items": kept, "description": "`merged`: fields both sides changed, which kept the server's value"},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "description": "`rejected`: the use case's error as every face shows it (`errors` for validation, `action`, `entity`, `fields` for forbidden, `expected`, `actual` for conflict)",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
            }
        }
    });
    let result = json!({
        "type": "object",
        "required": ["change_set", "seq", "outcome"],
        "properties": {
            "change_set": uuid(), "seq": {"type": "integer"}, "outcome": outcome,
            "upserts": {"type": "array", "items": pulled_schema(), "description": "Except `pending`: the records the change set wrote, as the server has them after the push and the caller may read them, for the device to hold (a refused change is undone)"},
            "removals": {"type": "array", "items": removed_schema(), "description": "Except `pending`: the records the change set wrote that the caller cannot read on the server (never created, deleted, out of scope), for the device to forget"}
        }
    });
    json!({
        "type": "object",
        "required": ["answer"],
        "description": "`results`: one result per entry, in order. `upgrade`: the server does not replay this protocol or schema version; nothing was touched, the device keeps its log",
        "properties": {
            "answer": {"type": "string", "enum": ["results", "upgrade"]},
            "results": {"type": "array", "items": result},
            "protocol": {"type": "integer"},
            "oldest_schema_version": {"type": "integer"},
            "newest_schema_version": {"type": "integer"}
        }
    })
}

/// The names of the types a device syncs.
fn syncable_names() -> Vec<&'static str> {
    crm_core::sync::syncable_types().iter().map(|d| d.name).collect()
}

/// The JSON schema of a record sent to a device (`crm_core::sync::Pulled`).
fn pulled_schema() -> Json {
    json!({
        "type": "object", "required": ["entity", "record"],
        "properties": {
            "entity": {"type": "string", "enum": syncable_names()},
            "record": {"type": "object", "description": "The record as a get returns it to the caller (redacted to the fields the caller may read)"}
        }
    })
}

/// The JSON schema of a record a device forgets (`crm_core::sync::Removed`).
fn removed_schema() -> Json {
    json!({
        "type": "object", "required": ["entity", "id"],
        "properties": {"entity": {"type": "string", "enum": syncable_names()}, "id": uuid()}
    })
}

/// The JSON schema of a pull page (`crm_core::sync::PullPage`).
fn pull_page_schema() -> Json {
    json!({
        "type": "object",
        "required": ["protocol", "reset", "upserts", "removals", "next", "more"],
        "properties": {
            "protocol": {"type": "integer"},
            "reset": {"type": "boolean", "description": "This page starts a snapshot: forget every record pulled before (not the pending log), then apply the page"},
            "upserts": {"type": "array", "items": pulled_schema()},
            "removals": {"type": "array", "items": removed_schema(), "description": "Records to forget: deleted, or no longer readable by the caller"},
            "next": {"type": "string", "description": "The cursor to pull with next"},
            "more": {"type": "boolean", "description": "More is waiting: pull again with `next` now"}
        }
    })
}

/// The JSON schema of a new device's start (`crm_core::sync::Provision`).
fn provision_schema() -> Json {
    json!({
        "type": "object",
        "required": ["protocol", "schema_version", "tenant", "user", "records"],
        "properties": {
            "protocol": {"type": "integer"},
            "schema_version": {"type": "integer", "description": "The server's schema version"},
            "tenant": uuid(),
            "user": {"type": "string", "format": "uuid", "description": "The signed-in user the device acts as"},
            "records": {
                "type": "array",
                "description": "The organization, the user with its team, location and custom role, and the custom field definitions, referenced records first",
                "items": {
                    "type": "object", "required": ["entity", "record"],
                    "properties": {
                        "entity": {"type": "string", "enum": crm_core::sync::provisioned_types().map(|d| d.name)},
                        "record": {"type": "object"}
                    }
                }
            }
        }
    })
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new(
            "post",
            "/api/v1/sync/push",
            "sync_push",
            "sync",
            "Push a device's offline change sets: each is replayed as the caller through the use case that made it and answered accepted, merged, rejected (with the error) or pending; a change set answered before is answered the same way again without replaying it",
        )
        .json_body(push_request_schema())
        .ok(200, "One answer per change set, or `upgrade`", push_answer_schema())
        .errors(&[400, 413, 422]),
        post(push::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/sync/pull",
            "sync_pull",
            "sync",
            "Pull what changed for the caller since a cursor: upserts of the records the caller may read (as a get returns them) and removals of records deleted or out of the caller's scope; without a cursor, a snapshot in pages",
        )
        .query("cursor", json!({"type": "string"}), "`next` of the previous page; absent: start with a snapshot")
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_PULL_LIMIT}),
            "At most this many changes (records walked or audit entries read; default 200)",
        )
        .ok(200, "One page of changes", pull_page_schema())
        .errors(&[400, 422]),
        get(pull::<S>),
    )
    .add(
        Op::new(
            "get",
            "/api/v1/sync/provision",
            "sync_provision",
            "sync",
            "What a new device of the signed-in user needs before its first pull: the organization, the user with its team, location and custom role, and the tenant's custom field definitions. Refused to an API key (it has no device)",
        )
        .ok(200, "The device's start", provision_schema())
        .errors(&[403]),
        get(provision::<S>),
    )
    .add(
        Op::new(
            "put",
            "/api/v1/sync/blobs/{sha256}",
            "sync_upload_blob",
            "sync",
            "Upload the bytes of an attachment a device made offline, before the push that carries its record (whose attach is answered pending until they arrive). Kept under their SHA-256, once per tenant and content; the tenant's attachment_max_bytes is enforced while they stream",
        )
        .path_param("sha256", json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}), "The content's SHA-256, lower-case hex (`mismatch` on `sha256` when the bytes' differs)")
        .raw_body(json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}))
        .no_content("Stored (or already stored)")
        .errors(&[403, 413, 422]),
        put(upload_blob::<S>).layer(DefaultBodyLimit::max(MAX_MAX_BYTES as usize)),
    )
}
