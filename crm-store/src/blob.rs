//! Blob stores: where attachment bytes live (the [`crm_core::blob::BlobStore`] seam).
//!
//! [`DirBlobStore`] is the default: a directory with one file per tenant and content,
//! `<root>/<tenant>/<first two hex digits>/<sha256>`. An upload is written to a temporary file in
//! `<root>/tmp` (the same file system) and renamed into place when the core finishes it, so a
//! reader sees the whole content or nothing; content the tenant has already is not stored again
//! (its file's modification time is moved to now, which is how [`DirBlobStore::list`] tells a
//! blob's age to the orphan collection). A dropped upload deletes its temporary file.

#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "s3")]
pub use s3::S3BlobStore;

use crm_core::blob::{BlobInfo, BlobStore, BlobWriter, is_sha256};
use crm_core::error::{Error, Result};
use crm_core::value::{Id, Timestamp};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Attachment bytes in a directory (see the module docs).
#[derive(Clone, Debug)]
pub struct DirBlobStore {
    root: PathBuf,
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        Error::disk_full(format!("{what}: {e}"))
    } else {
        Error::internal(format!("{what}: {e}"))
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(t.0.max(0) as u64)
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64),
    )
}

/// Where a database keeps its attachment bytes unless told otherwise: next to a SQLite file, a
/// directory named like it with `.blobs` for its extension (`crm.db` -> `crm.blobs`); for a
/// PostgreSQL URL, `crm.blobs` in the working directory.
pub fn default_dir(database: &Path) -> PathBuf {
    let s = database.to_string_lossy();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return PathBuf::from("crm.blobs");
    }
    database.with_extension("blobs")
}

/// The blob store a face is configured with: the S3-compatible bucket of `url`
/// (`s3://bucket[/prefix]`, with the `AWS_*` environment; needs the `s3` feature), else the
/// directory `dir`, else [`default_dir`] of the database. Giving both is refused (which one was
/// meant is not ours to guess), as is a URL in a build without the feature.
pub fn open_configured(
    database: &Path,
    dir: Option<&Path>,
    url: Option<&str>,
) -> Result<std::sync::Arc<dyn BlobStore>> {
    use crm_core::error::codes::INVALID_OPTION;
    match (dir, url) {
        (Some(_), Some(_)) => Err(Error::field(
            "blob_url",
            INVALID_OPTION,
            "a blob directory and a blob URL were both given; give one",
        )),
        #[cfg(feature = "s3")]
        (None, Some(url)) => Ok(std::sync::Arc::new(S3BlobStore::from_url(url)?)),
        #[cfg(not(feature = "s3"))]
        (None, Some(_)) => Err(Error::field(
            "blob_url",
            INVALID_OPTION,
            "this build has no S3 blob store (crm-store feature `s3`)",
        )),
        (dir, None) => {
            let dir = dir.map_or_else(|| default_dir(database), Path::to_path_buf);
            Ok(std::sync::Arc::new(DirBlobStore::open(dir)?))
        }
    }
}

impl DirBlobStore {
    /// Opens (creating it if needed) the blob directory `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| io_error("creating the blob directory", e))?;
        Ok(DirBlobStore { root })
    }

    /// The directory's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob's file is (`None` for a name that is no SHA-256, so a name is never a path).
    fn path(&self, tenant: Id, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.root.join(tenant.to_string()).join(&sha256[..2]).join(sha256))
    }
}

struct DirWriter {
    file: tempfile::NamedTempFile,
    store: DirBlobStore,
    tenant: Id,
}

impl BlobWriter for DirWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file
            .write_all(chunk)
            .map_err(|e| io_error("writing an attachment", e))
    }

    fn finish(self: Box<Self>, sha256: &str, now: Timestamp) -> Result<bool> {
        let DirWriter { file, store, tenant } = *self;
        let path = store
            .path(tenant, sha256)
            .ok_or_else(|| Error::internal(format!("not a blob name: {sha256}")))?;
        let touch = |p: &Path| -> Result<()> {
            let f = std::fs::File::options()
                .write(true)
                .open(p)
                .map_err(|e| io_error("opening a stored attachment", e))?;
            f.set_modified(system_time(now))
                .map_err(|e| io_error("dating a stored attachment", e))
        };
        if path.exists() {
            // Stored once; the temporary file goes when `file` drops.
            touch(&path)?;
            return Ok(false);
        }
        file.as_file()
            .sync_all()
            .map_err(|e| io_error("writing an attachment", e))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("creating a blob directory", e))?;
        }
        match file.persist_noclobber(&path) {
            Ok(_) => {
                touch(&path)?;
                Ok(true)
            }
            // Another upload of the same content won the race: stored once all the same.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                touch(&path)?;
                Ok(false)
            }
            Err(e) => Err(io_error("storing an attachment", e.error)),
        }
    }
}

impl BlobStore for DirBlobStore {
    fn writer(&self, tenant: Id) -> Result<Box<dyn BlobWriter>> {
        let file = tempfile::Builder::new()
            .suffix(".part")
            .tempfile_in(self.root.join("tmp"))
            .map_err(|e| io_error("starting an attachment", e))?;
        Ok(Box::new(DirWriter {
            file,
            store: self.clone(),
            tenant,
        }))
    }

    fn open(&self, tenant: Id, sha256: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let Some(path) = self.path(tenant, sha256) else {
            return Ok(None);
        };
        match std::fs::File::open(path) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading an attachment", e)),
        }
    }

    fn delete(&self, tenant: Id, sha256: &str) -> Result<bool> {
        let Some(path) = self.path(tenant, sha256) else {
            return Ok(false);
        };
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("deleting an attachment", e)),
        }
    }

    fn list(&self, tenant: Id) -> Result<Vec<BlobInfo>> {
        let dir = self.root.join(tenant.to_string());
        let mut out = Vec::new();
        let shards = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error("listing attachments", e)),
        };
        for shard in shards {
            let shard = shard.map_err(|e| io_error("listing attachments", e))?;
            for f in std::fs::read_dir(shard.path()).map_err(|e| io_error("listing attachments", e))? {
                let f = f.map_err(|e| io_error("listing attachments", e))?;
                let name = f.file_name().to_string_lossy().into_owned();
                if !is_sha256(&name) {
                    continue;
                }
                let meta = f.metadata().map_err(|e| io_error("listing attachments", e))?;
                out.push(BlobInfo {
                    sha256: name,
                    size: meta.len(),
                    stored_at: timestamp(meta.modified().map_err(|e| io_error("listing attachments", e))?),
                });
            }
        }
        out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tmp_files(s: &DirBlobStore) -> usize {
        std::fs::read_dir(s.root().join("tmp")).unwrap().count()
    }

    #[test]
    fn the_configured_store_is_one_of_a_directory_or_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("b");
        let s = open_configured(Path::new("crm.db"), Some(&blobs), None).unwrap();
        assert!(format!("{s:?}").contains("DirBlobStore"));
        assert!(blobs.join("tmp").is_dir());
        let err = open_configured(Path::new("crm.db"), Some(&blobs), Some("s3://b")).unwrap_err();
        assert_eq!(err.field_errors()[0].path, "blob_url");
        let err = open_configured(Path::new("crm.db"), None, Some("http://b")).unwrap_err();
        assert_eq!(err.field_errors()[0].path, "blob_url");
    }

    #[test]
    fn the_default_directory_is_next_to_the_database() {
        assert_eq!(default_dir(Path::new("data/crm.db")), PathBuf::from("data/crm.blobs"));
        assert_eq!(default_dir(Path::new("crm")), PathBuf::from("crm.blobs"));
        assert_eq!(default_dir(Path::new("postgres://u@h/db")), PathBuf::from("crm.blobs"));
    }

    #[test]
    fn uploads_land_whole_once_and_dropped_ones_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirBlobStore::open(dir.path()).unwrap();
        let t = Id::from_u128(7);
        let h = "ab".repeat(32);
        let mut w = s.writer(t).unwrap();
        w.write(b"half").unwrap();
        assert_eq!(tmp_files(&s), 1);
        drop(w);
        assert_eq!(tmp_files(&s), 0, "a dropped upload leaves no temporary file");
        assert!(s.list(t).unwrap().is_empty());
        for (at, new) in [(Timestamp(1_000_000), true), (Timestamp(2_000_000), false)] {
            let mut w = s.writer(t).unwrap();
            w.write(b"whole ").unwrap();
            w.write(b"content").unwrap();
            assert!(
                s.open(t, &h).unwrap().is_none() || !new,
                "nothing readable before finish"
            );
            assert_eq!(w.finish(&h, at).unwrap(), new);
        }
        assert_eq!(tmp_files(&s), 0);
        let listed = s.list(t).unwrap();
        assert_eq!(
            listed,
            [BlobInfo {
                sha256: h.clone(),
                size: 13,
                stored_at: Timestamp(2_000_000)
            }]
        );
        let mut out = String::new();
        s.open(t, &h).unwrap().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "whole content");
        assert!(s.open(Id::from_u128(8), &h).unwrap().is_none(), "per tenant");
        assert!(s.open(t, "../../etc/passwd").unwrap().is_none());
        assert!(s.writer(t).unwrap().finish("../x", Timestamp(0)).is_err());
        assert!(s.delete(t, &h).unwrap());
        assert!(!s.delete(t, &h).unwrap());
    }
}
