//! The blob-store seam: where the bytes of attachments go (DESIGN seam 10: bytes are not records).
//!
//! An attachment is a record ([`crate::entity::attachment`]) holding the SHA-256 of its content; the
//! content itself is a blob, stored per tenant under that hash by an implementation of
//! [`BlobStore`] that lives outside the core (a directory by default, `crm_store::blob::DirBlobStore`).
//! The core streams an upload into a [`BlobWriter`] chunk by chunk, counting and hashing as it goes,
//! and finishes it under the hash it computed only when the size, the hash and the media type are
//! what they must be; only then does it commit the record. So a record exists only if its bytes were
//! stored. The other way round can happen (the bytes are stored, then the record's commit fails, or
//! an attachment is deleted): such a blob is an orphan, and `Service::collect_orphan_blobs` removes
//! orphans older than a grace period.
//!
//! The contract every implementation keeps:
//! - [`BlobWriter::write`] takes the content in order; dropping a writer without
//!   [`BlobWriter::finish`] leaves nothing behind (an interrupted upload);
//! - [`BlobWriter::finish`] makes the content readable under `(tenant, sha256)` atomically: a reader
//!   sees all of it or nothing (a temporary file renamed into place). When that blob exists already
//!   the content is not stored twice; its age restarts (so a collection pass does not remove what a
//!   new record is about to name);
//! - [`BlobStore::list`] gives each blob's age, so collection spares what is younger than its grace.
//!
//! [`MemoryBlobStore`] is the reference implementation (tests, the browser).

use crate::error::Result;
use crate::value::{Id, Timestamp};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// One stored blob, as [`BlobStore::list`] gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
    /// When it was stored, or last stored again.
    pub stored_at: Timestamp,
}

/// Where attachment bytes live (see the module docs for the contract).
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Starts storing a new blob of the tenant.
    fn writer(&self, tenant: Id) -> Result<Box<dyn BlobWriter>>;

    /// The content of a blob as a stream, or `None` when there is no such blob.
    fn open(&self, tenant: Id, sha256: &str) -> Result<Option<Box<dyn Read + Send>>>;

    /// Removes a blob; `false` when there was none.
    fn delete(&self, tenant: Id, sha256: &str) -> Result<bool>;

    /// Every blob of the tenant (for collection).
    fn list(&self, tenant: Id) -> Result<Vec<BlobInfo>>;
}

/// An upload in progress. Dropping it without [`BlobWriter::finish`] discards what was written.
pub trait BlobWriter: Send {
    /// Appends a chunk of the content.
    fn write(&mut self, chunk: &[u8]) -> Result<()>;

    /// Stores what was written as the blob `sha256` (which the caller computed over exactly these
    /// bytes), atomically; `false` when the tenant had that blob already (stored once).
    fn finish(self: Box<Self>, sha256: &str, now: Timestamp) -> Result<bool>;
}

/// Is this a lower-case hex SHA-256 (64 characters of `0-9a-f`)? Implementations use it to refuse
/// anything else as a blob name, so a name can never be a path.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

type Blobs = BTreeMap<(Id, String), (Arc<Vec<u8>>, Timestamp)>;

/// Blobs in memory: the reference [`BlobStore`] (tests, a browser page).
#[derive(Clone, Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<Blobs>>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blobs> {
        self.blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets a blob's age (tests of collection).
    pub fn set_stored_at(&self, tenant: Id, sha256: &str, at: Timestamp) {
        if let Some(b) = self.lock().get_mut(&(tenant, sha256.to_owned())) {
            b.1 = at;
        }
    }
}

struct MemoryWriter {
    store: MemoryBlobStore,
    tenant: Id,
    buf: Vec<u8>,
}

impl BlobWriter for MemoryWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    fn finish(self: Box<Self>, sha256: &str, now: Timestamp) -> Result<bool> {
        if !is_sha256(sha256) {
            return Err(crate::error::Error::internal(format!("not a blob name: {sha256}")));
        }
        let mut blobs = self.store.lock();
        match blobs.get_mut(&(self.tenant, sha256.to_owned())) {
            Some(b) => {
                b.1 = now;
                Ok(false)
            }
            None => {
                blobs.insert((self.tenant, sha256.to_owned()), (Arc::new(self.buf), now));
                Ok(true)
            }
        }
    }
}

impl BlobStore for MemoryBlobStore {
    fn writer(&self, tenant: Id) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MemoryWriter {
            store: self.clone(),
            tenant,
            buf: Vec::new(),
        }))
    }

    fn open(&self, tenant: Id, sha256: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let found = self.lock().get(&(tenant, sha256.to_owned())).map(|b| b.0.clone());
        Ok(found.map(|bytes| Box::new(std::io::Cursor::new(ArcBytes(bytes))) as Box<dyn Read + Send>))
    }

    fn delete(&self, tenant: Id, sha256: &str) -> Result<bool> {
        Ok(self.lock().remove(&(tenant, sha256.to_owned())).is_some())
    }

    fn list(&self, tenant: Id) -> Result<Vec<BlobInfo>> {
        Ok(self
            .lock()
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|((_, h), (b, at))| BlobInfo {
                sha256: h.clone(),
                size: b.len() as u64,
                stored_at: *at,
            })
            .collect())
    }
}

/// Shared bytes readable through a cursor.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_hashes_only() {
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"A".repeat(64)));
        assert!(!is_sha256("../../etc/passwd"));
        let s = MemoryBlobStore::new();
        let w = s.writer(Id::nil()).unwrap();
        assert!(w.finish("../x", Timestamp(0)).is_err());
    }

    #[test]
    fn same_content_is_stored_once_and_a_dropped_writer_leaves_nothing() {
        let s = MemoryBlobStore::new();
        let t = Id::nil();
        let h = "0".repeat(64);
        let mut w = s.writer(t).unwrap();
        w.write(b"abc").unwrap();
        drop(w);
        assert!(s.list(t).unwrap().is_empty());
        for (at, new) in [(1, true), (2, false)] {
            let mut w = s.writer(t).unwrap();
            w.write(b"abc").unwrap();
            assert_eq!(w.finish(&h, Timestamp(at)).unwrap(), new);
        }
        let listed = s.list(t).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].stored_at, Timestamp(2), "storing again restarts its age");
        let mut out = Vec::new();
        s.open(t, &h).unwrap().unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(s.open(Id::from_u128(1), &h).unwrap().is_none(), "per tenant");
        assert!(s.delete(t, &h).unwrap());
        assert!(!s.delete(t, &h).unwrap());
    }
}
