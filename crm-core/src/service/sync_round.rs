//! A whole sync round on the device, over any transport: push the pending log until it is empty
//! (or the server answers pending or upgrade), applying each answer, then pull until caught up.
//! The faces bring the transport (the mobile face a blocking HTTP client, the browser `fetch`);
//! the order of the steps, the batch sizes and when to stop are decided here, once.

use super::{PullApplied, PushApplied, Service};
use crate::access::Actor;
use crate::error::Error;
use crate::store::Store;
use crate::sync::{Intent, PullPage, PushAnswer, PushRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::future::Future;
use std::io::Read;

/// Change sets per push: well under the server's default 1 MiB body limit for ordinary records
/// (a push refused as too large, 413, is retried with half as many).
pub const ROUND_PUSH_BATCH: u32 = 100;

/// Changes per pull page.
pub const ROUND_PULL_LIMIT: u32 = 500;

/// Most requests one round makes (a bound on a server that never says it is done).
pub const ROUND_MAX_REQUESTS: usize = 10_000;

/// The HTTP status of a body over the server's size limit.
const TOO_LARGE: u16 = 413;

/// How a device reaches its server: `POST /api/v1/sync/push` and `GET /api/v1/sync/pull` with the
/// user's token, or whatever carries the same messages.
pub trait SyncTransport {
    /// Sends a push; the server's answer.
    fn push(&self, req: &PushRequest) -> impl Future<Output = Result<PushAnswer, RemoteError>>;
    /// Asks for a page of changes after `cursor` (none: a snapshot), at most `limit`.
    fn pull(&self, cursor: Option<&str>, limit: u32) -> impl Future<Output = Result<PullPage, RemoteError>>;
    /// Sends the bytes of an attachment made offline ahead of the push that carries its record
    /// (`PUT /api/v1/sync/blobs/{sha256}`).
    fn upload(&self, sha256: &str, bytes: &[u8]) -> impl Future<Output = Result<(), RemoteError>>;
}

/// The server did not answer, or refused the request: its HTTP status (0: no answer) and its
/// problem document's `code` and `detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

impl RemoteError {
    /// A refusal as the server answered it: its problem document's `code` and `detail` (or
    /// `title`), else `http_error` and the status.
    pub fn from_answer(status: u16, body: &[u8]) -> RemoteError {
        let problem: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |k: &str| problem.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        RemoteError {
            status,
            code: text("code").unwrap_or_else(|| "http_error".into()),
            detail: text("detail")
                .or_else(|| text("title"))
                .unwrap_or_else(|| format!("the server answered {status}")),
        }
    }
}

/// A CRM server's address as a device calls it: `http://` or `https://` and a host, without a
/// trailing slash; anything else is refused on `field`.
pub fn server_base(url: &str, field: &str) -> crate::error::Result<String> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() < "http://x".len() {
        return Err(Error::field(
            field,
            crate::error::codes::INVALID_URL,
            "an http:// or https:// address of the CRM server",
        ));
    }
    Ok(base.to_owned())
}

/// Why a round stopped early. What it applied before stays applied; the next round continues.
#[derive(Debug)]
pub enum RoundError {
    /// The device's own store or rules refused (a message that does not decode, a full disk).
    Local(Error),
    /// The server.
    Remote(RemoteError),
}

impl From<Error> for RoundError {
    fn from(e: Error) -> Self {
        RoundError::Local(e)
    }
}

/// What one round did: its pushes and its pulls, added up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub push: PushApplied,
    pub pull: PullApplied,
}

impl PushApplied {
    /// Adds a later answer's counts; `pending` is the latest answer's.
    fn add(&mut self, o: PushApplied) {
        self.accepted += o.accepted;
        self.merged += o.merged;
        self.rejected += o.rejected;
        self.pending = o.pending;
        self.upgrade |= o.upgrade;
        self.kept_server.extend(o.kept_server);
        self.synced += o.synced;
    }
}

impl PullApplied {
    /// Adds a later page's counts; `more` is the latest page's.
    fn add(&mut self, o: PullApplied) {
        self.upserts += o.upserts;
        self.removals += o.removals;
        self.kept_pending += o.kept_pending;
        self.skipped += o.skipped;
        self.reset |= o.reset;
        self.more = o.more;
    }
}

impl<S: Store> Service<S> {
    /// One sync round for `actor`'s device (`device`: the app's stable id for the installation)
    /// over `transport`: pushes the queue in batches of [`ROUND_PUSH_BATCH`] (halved while the
    /// server answers 413), applying each answer, and stops pushing when the server answers
    /// pending or asks for an upgrade (then nothing is pulled); then pulls pages of
    /// [`ROUND_PULL_LIMIT`] until caught up.
    pub async fn sync_round(
        &self,
        actor: &Actor,
        device: &str,
        transport: &impl SyncTransport,
    ) -> Result<SyncReport, RoundError> {
        let mut report = SyncReport::default();
        let mut batch = ROUND_PUSH_BATCH;
        let mut requests = 0;
        let mut uploaded = HashSet::new();
        while requests < ROUND_MAX_REQUESTS {
            let req = self.prepare_push(actor, device, batch).await?;
            if req.entries.is_empty() {
                break;
            }
            requests += 1;
            self.upload_bytes(actor, &req, transport, &mut uploaded).await?;
            let answer = match transport.push(&req).await {
                Err(e) if e.status == TOO_LARGE && batch > 1 => {
                    batch /= 2;
                    continue;
                }
                other => other.map_err(RoundError::Remote)?,
            };
            let applied = self.apply_push_answer(actor, &req, &answer).await?;
            let stop = applied.upgrade || applied.pending > 0;
            report.push.add(applied);
            if stop {
                break;
            }
        }
        if report.push.upgrade {
            return Ok(report);
        }
        while requests < ROUND_MAX_REQUESTS {
            requests += 1;
            let cursor = self.pull_cursor(actor).await?;
            let page = transport
                .pull(cursor.as_deref(), ROUND_PULL_LIMIT)
                .await
                .map_err(RoundError::Remote)?;
            let applied = self.apply_pull(actor, &page).await?;
            let more = applied.more;
            report.pull.add(applied);
            if !more {
                break;
            }
        }
        Ok(report)
    }

    /// Uploads the bytes of the push's attachments (each content once per round). Bytes the device
    /// no longer has are not sent: the server answers that entry pending.
    async fn upload_bytes(
        &self,
        actor: &Actor,
        req: &PushRequest,
        transport: &impl SyncTransport,
        uploaded: &mut HashSet<String>,
    ) -> Result<(), RoundError> {
        for entry in &req.entries {
            let Some(Intent::Attach { input, .. }) = &entry.intent else {
                continue;
            };
            let Some(sha) = input.sha256.as_deref().filter(|s| !uploaded.contains(*s)) else {
                continue;
            };
            let Some(mut content) = self.blobs()?.open(actor.tenant, sha)? else {
                continue;
            };
            let mut bytes = Vec::new();
            content
                .read_to_end(&mut bytes)
                .map_err(|e| Error::internal(format!("cannot read attachment bytes {sha}: {e}")))?;
            transport.upload(sha, &bytes).await.map_err(RoundError::Remote)?;
            uploaded.insert(sha.to_owned());
        }
        Ok(())
    }
}
