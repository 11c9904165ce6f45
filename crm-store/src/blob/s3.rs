//! Attachment bytes in an S3-compatible object store (feature `s3`; ADR 0016).
//!
//! [`S3BlobStore`] keeps the [`BlobStore`] contract of [`super::DirBlobStore`] on a bucket, through
//! the `object_store` crate's S3 client:
//! - a blob is the object `<prefix>/<tenant>/<sha256>`;
//! - an upload streams to a staging object `<prefix>/uploads/<uuid>` through a buffered multipart
//!   upload (parts of [`PART_SIZE`] go up while the rest still arrives; an upload smaller than one part
//!   is one `PUT` at the end). Nothing is under a tenant's prefix until [`BlobWriter::finish`] copies
//!   the staging object to its name (a server-side copy) and deletes it; a writer dropped before
//!   that aborts its multipart upload, so an interrupted upload leaves nothing behind (an upload
//!   aborted by a crash is left to the bucket's `AbortIncompleteMultipartUpload` lifecycle rule,
//!   see docs/attachments.md);
//! - content the tenant has already is not stored twice: `finish` returns `false` and copies the
//!   staging object over it all the same (identical bytes), which restarts its age;
//! - a blob's age ([`BlobInfo::stored_at`]) is the object's `Last-Modified`, the store's clock
//!   (S3 has no way to set it, and `object_store` cannot replace an object's metadata in place), so
//!   the `now` given to `finish` is not stored: the server's and the object store's clocks must agree
//!   to well within the collection's grace period (an hour).
//!
//! The trait is synchronous and `object_store` is async: the store owns a small tokio runtime and
//! every call is a task spawned on it whose result the caller waits for without entering a runtime
//! (`pollster`), so a call from any thread (a tokio worker, the blocking pool, a plain thread) never
//! panics with "cannot start a runtime from within a runtime"; see [`S3BlobStore`].

use super::{BlobInfo, BlobStore, BlobWriter, is_sha256};
use crm_core::error::{Error, Result};
use crm_core::value::{Id, Timestamp};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The size of an upload's parts (S3 wants at least 5 MiB but for the last part). An upload
/// holds at most [`PARTS_IN_FLIGHT`] of them in memory.
pub const PART_SIZE: usize = 8 << 20;
/// How many parts of one upload go up at once.
pub const PARTS_IN_FLIGHT: usize = 2;

/// The store's own runtime; shut down without waiting when the last handle goes (dropping a
/// runtime inside another runtime's context would panic).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Runtime {
    fn handle(&self) -> &tokio::runtime::Handle {
        // Taken only in `drop`.
        self.0
            .as_ref()
            .map(tokio::runtime::Runtime::handle)
            .expect("the runtime is there until drop")
    }
}

struct Inner {
    rt: Runtime,
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: Path,
}

/// Attachment bytes in an S3-compatible bucket (see the module docs).
///
/// Why a runtime of its own: [`BlobStore`] is synchronous (the core has no runtime; ADR 0013) and is
/// called from the server's blocking pool, from the CLI's main thread (itself inside a tokio
/// runtime) and from plain threads. `Runtime::block_on` or `Handle::block_on` panics on a thread
/// that is already running a runtime, and borrowing the caller's runtime ties the store to one face.
/// So each call spawns its future on the store's two worker threads and waits for the result with
/// `pollster` (a park, not a runtime), which is allowed anywhere.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore").field("url", &self.inner.url).finish()
    }
}

fn s3_error(what: &str, e: object_store::Error) -> Error {
    Error::internal(format!("{what}: {e}"))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// `s3://bucket/some/prefix` -> (`bucket`, `some/prefix`).
fn split_url(url: &str) -> Result<(&str, &str)> {
    let bad = || {
        Error::field(
            "blob_url",
            "invalid_format",
            format!("a blob URL is s3://bucket or s3://bucket/prefix, not {url:?}"),
        )
    };
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || bucket.contains(['?', '#', '@']) || prefix.contains(['?', '#']) {
        return Err(bad());
    }
    Ok((bucket, prefix.trim_matches('/')))
}

impl S3BlobStore {
    /// Opens the bucket (and key prefix) of `url`, `s3://bucket[/prefix]`, with the rest of the
    /// configuration from the usual AWS environment: `AWS_ENDPOINT` (an S3-compatible server),
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint. Nothing is sent until the first call.
    pub fn from_url(url: &str) -> Result<Self> {
        let (bucket, prefix) = split_url(url)?;
        // The HTTP client's TLS takes the process's rustls provider: ring, the one compiled in
        // (ADR 0016). `Err` means one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| Error::field("blob_url", "invalid_format", format!("the blob store {url}: {e}")))?;
        Self::new(Arc::new(store), url, prefix)
    }

    /// A store over any `object_store` implementation, its blobs under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, url: &str, prefix: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("crm-blob-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("starting the blob store's runtime: {e}")))?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                rt: Runtime(Some(rt)),
                store,
                url: url.to_owned(),
                prefix: Path::from(prefix),
            }),
        })
    }

    /// Where a blob is (`None` for a name that is no SHA-256, so a name is never a key of its own).
    fn key(&self, tenant: Id, sha256: &str) -> Option<Path> {
        is_sha256(sha256).then(|| self.tenant_prefix(tenant).join(sha256))
    }

    fn tenant_prefix(&self, tenant: Id) -> Path {
        self.inner.prefix.clone().join(tenant.to_string())
    }
}

impl Inner {
    /// Runs `fut` on the store's runtime and waits for it (see [`S3BlobStore`] for why this way).
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let task = self.rt.handle().spawn(fut);
        pollster::block_on(task).map_err(|e| Error::internal(format!("the blob store's task failed: {e}")))
    }
}

struct S3Writer {
    inner: Arc<Inner>,
    store: S3BlobStore,
    tenant: Id,
    staging: Path,
    /// `None` once finished (or after a failed write, which drops it: the upload is refused anyway).
    upload: Option<BufWriter>,
}

impl BlobWriter for S3Writer {
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let mut upload = self
            .upload
            .take()
            .ok_or_else(|| Error::internal("writing to a finished or failed upload"))?;
        let bytes = bytes::Bytes::copy_from_slice(chunk);
        let (upload, res) = self.inner.run(async move {
            let res = upload.put(bytes).await;
            (upload, res)
        })?;
        self.upload = Some(upload);
        res.map_err(|e| s3_error("writing an attachment", e))
    }

    fn finish(mut self: Box<Self>, sha256: &str, _now: Timestamp) -> Result<bool> {
        let key = self
            .store
            .key(self.tenant, sha256)
            .ok_or_else(|| Error::internal(format!("not a blob name: {sha256}")))?;
        let mut upload = self
            .upload
            .take()
            .ok_or_else(|| Error::internal("finishing a finished or failed upload"))?;
        let (store, staging) = (self.inner.store.clone(), self.staging.clone());
        self.inner.run(async move {
            let res = async {
                upload
                    .shutdown()
                    .await
                    .map_err(|e| Error::internal(format!("storing an attachment: {e}")))?;
                let existed = match store.head(&key).await {
                    Ok(_) => true,
                    Err(e) if is_not_found(&e) => false,
                    Err(e) => return Err(s3_error("looking for a stored attachment", e)),
                };
                // Identical bytes either way; over an existing blob the copy restarts its age.
                store
                    .copy(&staging, &key)
                    .await
                    .map_err(|e| s3_error("storing an attachment", e))?;
                Ok(!existed)
            }
            .await;
            if let Err(e) = store.delete(&staging).await
                && !is_not_found(&e)
                && res.is_ok()
            {
                return Err(s3_error("removing an upload's staging object", e));
            }
            res
        })?
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        // Abort the multipart upload (nothing was stored under the tenant). Waited for on a plain
        // thread, so a caller sees nothing left when the drop returns; left running on a runtime
        // thread, which must not block.
        let task = self.inner.rt.handle().spawn(async move {
            let _ = upload.abort().await;
        });
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = pollster::block_on(task);
        }
    }
}

/// A blob's content as a `Read`, pulling the object's byte stream one chunk per call.
struct S3Reader {
    inner: Arc<Inner>,
    stream: Option<BoxStream<'static, object_store::Result<bytes::Bytes>>>,
    chunk: bytes::Bytes,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            let Some(mut stream) = self.stream.take() else {
                return Ok(0);
            };
            let (stream, next) = self
                .inner
                .run(async move {
                    let next = stream.next().await;
                    (stream, next)
                })
                .map_err(std::io::Error::other)?;
            match next {
                None => return Ok(0),
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.stream = Some(stream);
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

impl BlobStore for S3BlobStore {
    fn writer(&self, tenant: Id) -> Result<Box<dyn BlobWriter>> {
        let staging = self
            .inner
            .prefix
            .clone()
            .join("uploads")
            .join(uuid::Uuid::now_v7().to_string());
        let upload = BufWriter::with_capacity(self.inner.store.clone(), staging.clone(), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        Ok(Box::new(S3Writer {
            inner: self.inner.clone(),
            store: self.clone(),
            tenant,
            staging,
            upload: Some(upload),
        }))
    }

    fn open(&self, tenant: Id, sha256: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let Some(key) = self.key(tenant, sha256) else {
            return Ok(None);
        };
        let store = self.inner.store.clone();
        match self.inner.run(async move { store.get(&key).await })? {
            Ok(got) => Ok(Some(Box::new(S3Reader {
                inner: self.inner.clone(),
                stream: Some(got.into_stream()),
                chunk: bytes::Bytes::new(),
            }))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_error("reading an attachment", e)),
        }
    }

    fn delete(&self, tenant: Id, sha256: &str) -> Result<bool> {
        let Some(key) = self.key(tenant, sha256) else {
            return Ok(false);
        };
        let store = self.inner.store.clone();
        self.inner.run(async move {
            match store.head(&key).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(e) => return Err(s3_error("deleting an attachment", e)),
            }
            match store.delete(&key).await {
                Ok(()) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(s3_error("deleting an attachment", e)),
            }
        })?
    }

    fn list(&self, tenant: Id) -> Result<Vec<BlobInfo>> {
        let prefix = self.tenant_prefix(tenant);
        let store = self.inner.store.clone();
        let metas = self.inner.run(async move {
            let metas: Vec<_> = store.list(Some(&prefix)).collect().await;
            (prefix, metas)
        })?;
        let (prefix, metas) = metas;
        let mut out = Vec::new();
        for meta in metas {
            let meta = meta.map_err(|e| s3_error("listing attachments", e))?;
            let Some(name) = meta.location.prefix_match(&prefix).and_then(|mut parts| {
                let first = parts.next()?;
                parts.next().is_none().then(|| first.as_ref().to_owned())
            }) else {
                continue;
            };
            if !is_sha256(&name) {
                continue;
            }
            out.push(BlobInfo {
                sha256: name,
                size: meta.size,
                stored_at: Timestamp(meta.last_modified.timestamp_micros()),
            });
        }
        out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        assert_eq!(split_url("s3://crm").unwrap(), ("crm", ""));
        assert_eq!(split_url("s3://crm/").unwrap(), ("crm", ""));
        assert_eq!(split_url("s3://crm/prod/blobs/").unwrap(), ("crm", "prod/blobs"));
        for bad in ["crm", "s3://", "s3:///x", "http://crm/x", "s3://u@crm", "s3://crm/x?y"] {
            let err = split_url(bad).unwrap_err();
            assert_eq!(err.field_errors()[0].path, "blob_url", "{bad}");
        }
    }

    /// A store on a fresh prefix of `CRM_S3_TEST_URL` (see `.ci/s3.sh`), or `None` (skipped).
    fn test_store() -> Option<S3BlobStore> {
        let Ok(url) = std::env::var("CRM_S3_TEST_URL") else {
            eprintln!("skipped: CRM_S3_TEST_URL is not set (.ci/s3.sh runs this against moto_server)");
            return None;
        };
        let url = format!("{}/unit-{}", url.trim_end_matches('/'), uuid::Uuid::now_v7());
        Some(S3BlobStore::from_url(&url).unwrap())
    }

    /// Every object under the store's prefix, staging ones included.
    fn all_keys(s: &S3BlobStore) -> Vec<String> {
        let (store, prefix) = (s.inner.store.clone(), s.inner.prefix.clone());
        let metas: Vec<_> = s
            .inner
            .run(async move { store.list(Some(&prefix)).collect::<Vec<_>>().await })
            .unwrap();
        metas.into_iter().map(|m| m.unwrap().location.to_string()).collect()
    }

    #[test]
    fn uploads_land_whole_once_and_dropped_ones_leave_nothing() {
        let Some(s) = test_store() else { return };
        let t = Id::from_u128(7);
        let h = "ab".repeat(32);
        // Past one part, so a multipart upload is under way when the writer is dropped.
        let mut w = s.writer(t).unwrap();
        w.write(&vec![1u8; PART_SIZE + 1024]).unwrap();
        drop(w);
        assert_eq!(all_keys(&s), Vec::<String>::new(), "a dropped upload leaves no object");
        for (i, new) in [(0, true), (1, false)] {
            let mut w = s.writer(t).unwrap();
            w.write(b"whole ").unwrap();
            w.write(b"content").unwrap();
            assert!(
                i == 1 || s.open(t, &h).unwrap().is_none(),
                "nothing readable before finish"
            );
            assert_eq!(w.finish(&h, Timestamp(0)).unwrap(), new);
        }
        assert_eq!(
            all_keys(&s),
            [s.key(t, &h).unwrap().to_string()],
            "no staging object left"
        );
        let listed = s.list(t).unwrap();
        assert_eq!(
            (listed.len(), listed[0].size, listed[0].sha256.as_str()),
            (1, 13, h.as_str())
        );
        let mut out = String::new();
        s.open(t, &h).unwrap().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "whole content");
        assert!(s.open(Id::from_u128(8), &h).unwrap().is_none(), "per tenant");
        assert!(s.list(Id::from_u128(8)).unwrap().is_empty());
        assert!(s.open(t, "../../etc/passwd").unwrap().is_none());
        assert!(s.writer(t).unwrap().finish("../x", Timestamp(0)).is_err());
        assert!(s.delete(t, &h).unwrap());
        assert!(!s.delete(t, &h).unwrap());
        assert_eq!(all_keys(&s), Vec::<String>::new());
    }

    /// A large blob goes up in parts and streams back in order.
    #[test]
    fn a_multipart_upload_streams_back_whole() {
        let Some(s) = test_store() else { return };
        let t = Id::from_u128(9);
        let content: Vec<u8> = (0..2 * PART_SIZE + 12_345).map(|i| (i % 251) as u8).collect();
        let mut w = s.writer(t).unwrap();
        for chunk in content.chunks(64 * 1024) {
            w.write(chunk).unwrap();
        }
        let h = "cd".repeat(32);
        assert!(w.finish(&h, Timestamp(0)).unwrap());
        let mut out = Vec::new();
        s.open(t, &h).unwrap().unwrap().read_to_end(&mut out).unwrap();
        assert!(out == content, "{} bytes back of {}", out.len(), content.len());
    }

    /// The server calls the store from its runtime's threads: waiting for the store's own runtime
    /// there must not panic (`Runtime::block_on` would), nor dropping a writer or the store.
    #[test]
    fn calls_from_inside_another_runtime_do_not_panic() {
        let Some(s) = test_store() else { return };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let t = Id::from_u128(10);
            let mut w = s.writer(t).unwrap();
            w.write(b"inside").unwrap();
            drop(w);
            let mut w = s.writer(t).unwrap();
            w.write(b"inside").unwrap();
            assert!(w.finish(&"ef".repeat(32), Timestamp(0)).unwrap());
            assert_eq!(s.list(t).unwrap().len(), 1);
            drop(s);
        });
    }
}
