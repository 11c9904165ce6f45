//! The audit trail, the integrity report, and the live event stream (Server-Sent Events).

use crate::api::{Api, Op, schema_ref};
use crate::auth::{Auth, bearer, resolve};
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use crm_core::change::Event;
use crm_core::store::AuditQuery;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

async fn audit<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth, p: Params) -> ApiResult<impl IntoResponse> {
    // Typed parameters: present but empty is malformed (an unknown `entity` is the core's 404).
    let entity_id = p.id("entity_id")?;
    let q = AuditQuery {
        entity: p.raw("entity").map(str::to_owned),
        entity_id,
        after_seq: p.bounded("after", 0, i64::MAX as u64)?.unwrap_or(0),
        limit: p.bounded::<u32>("limit", 1, 1000)?.unwrap_or(100),
    };
    let actor = auth.actor;
    let entries = app
        .run(move |svc| async move { svc.audit_trail(&actor, &q).await })
        .await?;
    Ok(axum::Json(entries))
}

async fn integrity<S: ServerStore>(State(app): State<AppState<S>>, auth: Auth) -> ApiResult<impl IntoResponse> {
    let actor = auth.actor;
    let r = app
        .run(move |svc| async move { svc.integrity_check(&actor).await })
        .await?;
    Ok(axum::Json(r))
}

/// How often a stream re-checks its caller (sign-out, deactivation, role change end or narrow it).
const REAUTH_EVERY: Duration = Duration::from_secs(30);
const BATCH: u32 = 500;

struct Stream<S> {
    app: AppState<S>,
    token: String,
    auth: Auth,
    checked: Instant,
    cursor: u64,
    pending: VecDeque<Event>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl<S: ServerStore> Stream<S> {
    /// The next event the caller may read, waiting for one; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if *self.shutdown.borrow() {
                return None;
            }
            if self.checked.elapsed() >= REAUTH_EVERY {
                self.auth = resolve(&self.app, &self.token).await.ok()?;
                self.checked = Instant::now();
            }
            let actor = self.auth.actor.clone();
            let after = self.cursor;
            let page = self
                .app
                .run(move |svc| async move { svc.events_page(&actor, after, BATCH).await })
                .await;
            match page {
                Ok((events, scanned)) => {
                    let caught_up = scanned == after;
                    self.cursor = scanned;
                    self.pending.extend(events);
                    if !caught_up {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "event stream read failed; retrying"),
            }
            // Caught up: wait for a write here, the poll interval (writes of other instances), or shutdown.
            let written = self.app.written.notified();
            tokio::select! {
                _ = written => {}
                _ = tokio::time::sleep(self.app.cfg.poll_interval) => {}
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

async fn events<S: ServerStore>(
    State(app): State<AppState<S>>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    let token = bearer(&headers).ok_or(ApiError::Unauthenticated)?.to_owned();
    let auth = resolve(&app, &token).await?;
    // Resume point: Last-Event-ID (set by EventSource on reconnect), else `after`, else the start.
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= i64::MAX as u64)
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be a sequence number".into()))
        })
        .transpose()?;
    // `after` is checked even when Last-Event-ID wins: a malformed parameter is refused, not ignored.
    let after = p.bounded("after", 0, i64::MAX as u64)?;
    let cursor = last.or(after).unwrap_or(0);
    let stream = Stream {
        shutdown: app.shutdown.clone(),
        app,
        token,
        auth,
        checked: Instant::now(),
        cursor,
        pending: VecDeque::new(),
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let e = s.next().await?;
        let data = serde_json::to_string(&e).unwrap_or_default();
        let ev = SseEvent::default()
            .id(e.seq.to_string())
            .event(e.kind.clone())
            .data(data);
        Some((Ok::<_, Infallible>(ev), s))
    });
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

pub fn routes<S: ServerStore>(api: Api<S>) -> Api<S> {
    api.add(
        Op::new("get", "/api/v1/audit", "audit_trail", "compliance", "Audit entries (field-level old and new values, hash chained)")
            .query("entity", json!({"type": "string", "enum": crm_core::entity::all().into_iter().filter(|d| d.exposure != crm_core::schema::Exposure::Internal).map(|d| d.name).collect::<Vec<_>>()}), "Entity type")
            .query("entity_id", json!({"type": "string", "format": "uuid"}), "One record's history")
            .query("after", json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}), "Entries after this sequence")
            .query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000}), "At most this many (default 100)")
            .ok(200, "Entries in sequence order", json!({"type": "array", "items": schema_ref("AuditEntry")}))
            .errors(&[400, 403, 404]),
        get(audit::<S>),
    )
    .add(
        Op::new("get", "/api/v1/integrity", "integrity_report", "compliance", "Stored rows that break today's rules, and the audit chain check")
            .ok(200, "The report", schema_ref("IntegrityReport"))
            .errors(&[403]),
        get(integrity::<S>),
    )
    .add(
        Op::new("get", "/api/v1/events", "events", "events", "Live domain events (Server-Sent Events), filtered by what the caller may read")
            .param_header("Last-Event-ID", json!({"type": "string", "pattern": "^[0-9]{1,18}$"}), "Resume after this event sequence")
            .query("after", json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}), "Start after this sequence (default 0: from the start of the outbox)")
            .ok_raw(200, json!({
                "description": "`text/event-stream`: each event has `id` (the outbox sequence), `event` (its kind) and `data` (the event as JSON)",
                "content": { "text/event-stream": { "schema": {
                    "type": "object",
                    "description": "One event of the stream",
                    "required": ["id", "event", "data"],
                    "properties": {
                        "id": { "type": "string", "pattern": "^[0-9]+$", "description": "The outbox sequence" },
                        "event": { "type": "string", "description": "The event kind, e.g. lead.created" },
                        "data": { "type": "string", "description": "The event as JSON" }
                    }
                } } }
            }))
            .errors(&[400]),
        get(events::<S>),
    )
}
