//! Sync with a server: `sync`, a whole round over HTTP (push the pending change sets, apply the
//! answers, pull until caught up) with a blocking client on the call's worker thread; and the same
//! steps one by one, JSON in and out, for apps that bring their own transport. What a push holds and
//! how an answer or a page is applied are the core's rules (`crm_core::sync`,
//! `Service::prepare_push`, `Service::apply_push_answer`, `Service::apply_pull`): see docs/sync.md.

use crate::error::{CrmError, FieldError, bad_json};
use crate::{Crm, Result, parse_id, worker};
use crm_core::service::{PullApplied, PushApplied, RemoteError, RoundError, SyncTransport, server_base};
use crm_core::sync::{Provision, PullPage, PushAnswer, PushRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer body read (a pull page of 500 records is a few hundred KiB).
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// A field both the device and the server changed; the server's value stayed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeptField {
    pub entity: String,
    pub id: String,
    /// `notes`, or `custom.roof_type`.
    pub field: String,
    /// The device's value, as JSON text.
    pub device_json: String,
    /// The server's value, which stayed, as JSON text.
    pub server_json: String,
}

/// What applying a push answer did (`apply_push_answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct PushOutcome {
    /// Change sets the server took as they were.
    pub accepted: u32,
    /// Change sets the server merged onto records it had changed.
    pub merged: u32,
    /// Change sets the server refused: listed by `sync_rejections`; their records are back as the
    /// server has them.
    pub rejected: u32,
    /// Change sets still queued (the server answered pending: push again later).
    pub pending: u32,
    /// The server does not take change sets of this app's version: update the app. Nothing was
    /// lost; the queue stays.
    pub upgrade: bool,
    /// Fields of merged change sets that kept the server's value, for the app to show.
    pub kept_server: Vec<KeptField>,
    /// Change sets removed from the queue.
    pub synced: u64,
}

/// What applying a pull page did (`apply_pull`).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct PullOutcome {
    /// Records written as the server sent them.
    pub upserts: u32,
    /// Records forgotten (deleted on the server, or no longer the user's to read).
    pub removals: u32,
    /// Records left as the device has them: changes of them still wait in the queue.
    pub kept_pending: u32,
    /// Records of types this app version does not know, left out.
    pub skipped: u32,
    /// The page started a new snapshot (the first sync, or the user's access changed).
    pub reset: bool,
    /// More is waiting: pull again now.
    pub more: bool,
}

/// What one `sync` round did: its pushes and its pulls, added up.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub push: PushOutcome,
    pub pull: PullOutcome,
}

/// A change set of this device that the server refused, with the reason, until dismissed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncRejection {
    pub change_set_id: String,
    /// Its position in the queue it left.
    pub seq: u64,
    /// When it was made on the device (RFC 3339).
    pub logged_at: String,
    /// The refusal's code: `validation`, `forbidden`, `conflict`, `not_found`, ...
    pub code: String,
    pub detail: String,
    /// For `validation`: each field's broken rule (a workflow guard's reason is one of them).
    pub fields: Vec<FieldError>,
    /// The refused change set (its use case, input and row writes), as JSON text.
    pub entry_json: String,
}

impl From<PushApplied> for PushOutcome {
    fn from(a: PushApplied) -> Self {
        PushOutcome {
            accepted: a.accepted,
            merged: a.merged,
            rejected: a.rejected,
            pending: a.pending,
            upgrade: a.upgrade,
            kept_server: a
                .kept_server
                .into_iter()
                .map(|k| KeptField {
                    entity: k.entity,
                    id: k.id.to_string(),
                    field: k.field,
                    device_json: k.device.to_string(),
                    server_json: k.server.to_string(),
                })
                .collect(),
            synced: a.synced,
        }
    }
}

impl From<PullApplied> for PullOutcome {
    fn from(a: PullApplied) -> Self {
        PullOutcome {
            upserts: a.upserts,
            removals: a.removals,
            kept_pending: a.kept_pending,
            skipped: a.skipped,
            reset: a.reset,
            more: a.more,
        }
    }
}

#[uniffi::export]
impl Crm {
    /// Starts a new device: opens (creating if needed) the SQLite database at `path`, fetches what
    /// the token's user needs from the server (`GET /api/v1/sync/provision`: the organization, the
    /// user, its team and role), writes it, and opens the database as that user. Then `sync` brings
    /// the user's records. Calling it again on the same file refreshes those records. A server out of
    /// reach or refusing is `CrmError.Remote`; nothing is written then.
    #[uniffi::constructor]
    pub async fn connect(path: String, server_url: String, token: String) -> Result<Arc<Self>> {
        let remote = Remote::new(&server_url, &token)?;
        let session = worker::unblock(move || {
            let provision: Provision = remote.get("/api/v1/sync/provision", &[])?;
            let svc = crate::open_service(&path)?;
            let actor = pollster::block_on(svc.apply_provision(&provision))?;
            let user_id = actor
                .user_id
                .ok_or_else(|| crm_core::Error::not_found("user", provision.user))?;
            Ok::<_, CrmError>(crate::Session {
                svc,
                tenant: actor.tenant,
                user_id,
            })
        })
        .await?;
        Ok(Arc::new(Crm {
            session: Arc::new(session),
        }))
    }

    /// Syncs with the server at `server_url` (`https://crm.example.com`) as this user, whose access
    /// token (or API key) is `token`; `device` is the app's stable id for this installation. Pushes
    /// the queued change sets (each replayed on the server as the use case that made it, and
    /// answered accepted, merged or refused), applies each answer, then pulls what changed on the
    /// server until caught up. Stops pushing when the server answers pending or asks for an app
    /// update (`push.upgrade`: nothing is pulled then). Run it on a background thread's schedule:
    /// it blocks a worker thread for the whole round, never the caller's. A server out of reach or
    /// refusing the request is `CrmError.Remote`; whatever was applied before stays applied, and
    /// the next sync continues.
    pub async fn sync(&self, server_url: String, token: String, device: String) -> Result<SyncReport> {
        let remote = Remote::new(&server_url, &token)?;
        let s = Arc::clone(&self.session);
        worker::unblock(move || {
            let actor = pollster::block_on(s.svc.actor(s.tenant, s.user_id))?;
            let report = pollster::block_on(s.svc.sync_round(&actor, &device, &remote)).map_err(|e| match e {
                RoundError::Local(e) => CrmError::from(e),
                RoundError::Remote(r) => CrmError::from(r),
            })?;
            Ok(SyncReport {
                push: report.push.into(),
                pull: report.pull.into(),
            })
        })
        .await
    }

    /// The body of the next push (JSON of the core's push request, for
    /// `POST /api/v1/sync/push`): the oldest queued change sets, at most `limit`; `device` is the
    /// app's stable id for this installation. Reads only. Empty `entries`: nothing to push.
    pub async fn prepare_push(&self, device: String, limit: u32) -> Result<String> {
        let req = self
            .run(move |s, a| async move { s.svc.prepare_push(&a, &device, limit).await })
            .await?;
        to_text(&req)
    }

    /// Applies the server's answer (`answer_json`) to the push `request_json` (as `prepare_push`
    /// gave it): accepted and merged change sets leave the queue; refused ones leave it too, are
    /// listed by `sync_rejections` and their records put back as the server has them; the first
    /// one answered pending and every later one stay queued. Safe to repeat.
    pub async fn apply_push_answer(&self, request_json: String, answer_json: String) -> Result<PushOutcome> {
        let req: PushRequest = from_text("request_json", &request_json)?;
        let answer: PushAnswer = from_text("answer_json", &answer_json)?;
        let applied = self
            .run(move |s, a| async move { s.svc.apply_push_answer(&a, &req, &answer).await })
            .await?;
        Ok(applied.into())
    }

    /// The cursor to pull with next (`GET /api/v1/sync/pull?cursor=`); none before the first page
    /// was applied (pull without one: the server sends a snapshot).
    pub async fn pull_cursor(&self) -> Result<Option<String>> {
        self.run(move |s, a| async move { s.svc.pull_cursor(&a).await }).await
    }

    /// Applies a pull page (`page_json`, as the server sent it) and keeps its cursor, all at once:
    /// records the queue does not change are written as the server has them, removals forgotten.
    /// Pull again while `more`.
    pub async fn apply_pull(&self, page_json: String) -> Result<PullOutcome> {
        let page: PullPage = from_text("page_json", &page_json)?;
        let applied = self
            .run(move |s, a| async move { s.svc.apply_pull(&a, &page).await })
            .await?;
        Ok(applied.into())
    }

    /// The change sets of this device that a server refused, oldest first (at most `limit`), with
    /// the reasons, for the app to show until `dismiss_sync_rejection`.
    pub async fn sync_rejections(&self, limit: u32) -> Result<Vec<SyncRejection>> {
        let listed = self
            .run(move |s, a| async move { s.svc.sync_rejections(&a, limit).await })
            .await?;
        listed
            .into_iter()
            .map(|r| {
                Ok(SyncRejection {
                    change_set_id: r.change_set.to_string(),
                    seq: r.seq,
                    logged_at: r.logged_at.to_rfc3339(),
                    fields: r.error.field_errors().into_iter().map(FieldError::from).collect(),
                    code: r.error.code,
                    detail: r.error.message,
                    entry_json: to_text(&r.entry)?,
                })
            })
            .collect()
    }

    /// Forgets a listed refusal (the user has seen it). Safe to repeat.
    pub async fn dismiss_sync_rejection(&self, change_set_id: String) -> Result<()> {
        let id = parse_id("sync_rejection", &change_set_id)?;
        self.run(move |s, a| async move { s.svc.dismiss_sync_rejection(&a, id).await })
            .await
    }
}

/// The server a [`Crm::sync`] round talks to.
struct Remote {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Remote {
    fn new(server_url: &str, token: &str) -> Result<Remote> {
        let base = server_base(server_url, "server_url")?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Remote {
            agent,
            base,
            auth: format!("Bearer {token}"),
        })
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| crm_core::Error::internal(e.to_string()))?;
        let sent = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .send(&body[..]);
        answer(sent)
    }

    fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        answer(req.call())
    }
}

/// The blocking client as the core round's transport (it runs on the call's worker thread).
impl SyncTransport for Remote {
    async fn push(&self, req: &PushRequest) -> std::result::Result<PushAnswer, RemoteError> {
        self.post("/api/v1/sync/push", req).map_err(remote)
    }

    async fn upload(&self, sha256: &str, bytes: &[u8]) -> std::result::Result<(), RemoteError> {
        let sent = self
            .agent
            .put(format!("{}/api/v1/sync/blobs/{sha256}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/octet-stream")
            .send(bytes);
        match answer::<serde_json::Value>(sent) {
            // 204: no body to read as JSON; any success will do.
            Ok(_)
            | Err(CrmError::Remote {
                code: _,
                detail: _,
                status: 200..=299,
            }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    async fn pull(&self, cursor: Option<&str>, limit: u32) -> std::result::Result<PullPage, RemoteError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(cursor.map(|c| ("cursor", c.to_owned())));
        self.get("/api/v1/sync/pull", &query).map_err(remote)
    }
}

/// A transport failure for the core's round ([`answer`] gives only [`CrmError::Remote`]).
fn remote(e: CrmError) -> RemoteError {
    match e {
        CrmError::Remote { code, detail, status } => RemoteError { status, code, detail },
        other => RemoteError {
            status: 0,
            code: "unreachable".into(),
            detail: other.to_string(),
        },
    }
}

/// The server's answer: its JSON on success, else [`CrmError::Remote`] with its status and its
/// problem document's `code` and `detail`.
fn answer<T: DeserializeOwned>(sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<T> {
    let unreachable = |e: &dyn std::fmt::Display| CrmError::Remote {
        code: "unreachable".into(),
        detail: format!("the server did not answer: {e}"),
        status: 0,
    };
    let mut resp = sent.map_err(|e| unreachable(&e))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| unreachable(&e))?;
    if resp.status().is_success() {
        return serde_json::from_slice(&body).map_err(|e| CrmError::Remote {
            code: "bad_answer".into(),
            detail: format!("the server's answer is not a sync message this app reads: {e}"),
            status,
        });
    }
    Err(RemoteError::from_answer(status, &body).into())
}

impl From<RemoteError> for CrmError {
    fn from(r: RemoteError) -> Self {
        CrmError::Remote {
            code: r.code,
            detail: r.detail,
            status: r.status,
        }
    }
}

fn to_text(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| crm_core::Error::internal(format!("cannot write a sync message: {e}")).into())
}

fn from_text<T: DeserializeOwned>(arg: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| bad_json(arg, e))
}
