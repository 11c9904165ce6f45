//! Attachments (see [`crate::entity::attachment`]): bytes through a blob store, records in the
//! owner's scope. Each case runs with the in-memory blob store; a backend runs the `_on` variants
//! with its own blob store too (`crm-store` with the directory store, and with the S3 store against
//! an S3-compatible server).

use super::*;
use crate::blob::{BlobStore, MemoryBlobStore};
use crate::service::AttachInput;
use std::io::Read;

/// A PNG's signature and a few bytes: enough for the sniffer, distinct per `n`.
pub fn png(n: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend(std::iter::repeat_n(n, 100));
    b
}

/// An attachment input of `kind` named `name` (a signature names its signer).
pub fn attach_input(kind: &str, name: &str) -> AttachInput {
    AttachInput {
        kind: kind.into(),
        file_name: name.into(),
        signer_name: (kind == "signature").then(|| "Cleo Customer".to_owned()),
        ..Default::default()
    }
}

fn attach<S: Store>(
    f: &Fixture<S>,
    actor: &Actor,
    owner: &Record,
    input: &AttachInput,
    bytes: &[u8],
) -> crate::error::Result<Record> {
    block(f.svc.attach(
        actor,
        owner.entity.name,
        owner.id,
        input,
        &mut std::io::Cursor::new(bytes),
    ))
}

fn blobs_of<S: Store>(f: &Fixture<S>) -> usize {
    f.svc.blob_store().unwrap().list(f.tenant).unwrap().len()
}

fn a_job<S: Store>(f: &Fixture<S>, extra: Json) -> Record {
    let contact = block(f.svc.create(&f.admin, "contact", &obj(json!({"first_name": "Cleo"})))).unwrap();
    let mut input = obj(json!({"kind": "journey", "title": "Move to Elm St",
        "contact_id": contact.id.to_string(), "scheduled_on": "2025-06-02"}));
    input.extend(obj(extra));
    block(f.svc.create(&f.admin, "job", &input)).unwrap()
}

/// A reader of `len` zero bytes that counts what was read from it.
struct Counting {
    left: u64,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(0);
        self.left -= n as u64;
        self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

pub fn attachments_are_stored_once_and_checked_against_their_content<S: Store>(store: S) {
    attachments_are_stored_once_and_checked_against_their_content_on(store, Arc::new(MemoryBlobStore::new()));
}

/// The same bytes twice are one blob and two records; the core stamps the size, hash, media type,
/// uploader and time; a declared size or hash that is wrong, a photo that is no image and a claimed
/// image that is something else are refused with nothing written; a 2 GB upload against a 1 MB
/// tenant limit is refused after reading about 1 MB.
pub fn attachments_are_stored_once_and_checked_against_their_content_on<S: Store>(store: S, blobs: Arc<dyn BlobStore>) {
    let f = Fixture::new(store).with_blobs(blobs);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let a = attach(&f, &f.sales_a, &lead, &attach_input("photo", "roof.png"), &png(1)).unwrap();
    let b = attach(&f, &f.sales_a, &lead, &attach_input("photo", "roof-again.png"), &png(1)).unwrap();
    assert_eq!(blobs_of(&f), 1, "identical content is stored once");
    assert_eq!(a.str("sha256"), b.str("sha256"));
    assert_eq!(a.str("media_type"), Some("image/png"));
    assert_eq!(
        a.get("size").and_then(crate::value::Value::as_i64),
        Some(png(1).len() as i64)
    );
    assert_eq!(a.id_of("uploaded_by"), f.sales_a.user_id);
    assert_eq!(a.get("uploaded_at"), Some(&crate::value::Value::Timestamp(NOW)));
    let listed = block(f.svc.attachments(&f.sales_a, "lead", lead.id)).unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [a.id, b.id]);
    let (_, mut content) = block(f.svc.attachment_content(&f.sales_a, a.id)).unwrap();
    let mut out = Vec::new();
    content.read_to_end(&mut out).unwrap();
    assert_eq!(out, png(1));

    let seen = f.writes_seen();
    let count = f.count("attachment");
    let wrong_size = AttachInput {
        size: Some(5),
        ..attach_input("photo", "x.png")
    };
    let err = attach(&f, &f.sales_a, &lead, &wrong_size, &png(2)).unwrap_err();
    assert_eq!(codes_of(&err), [("size".into(), "mismatch".into())]);
    let short = AttachInput {
        size: Some(10_000),
        ..attach_input("photo", "x.png")
    };
    let err = attach(&f, &f.sales_a, &lead, &short, &png(2)).unwrap_err();
    assert_eq!(codes_of(&err), [("size".into(), "mismatch".into())]);
    let wrong_hash = AttachInput {
        sha256: Some("ab".repeat(32)),
        ..attach_input("photo", "x.png")
    };
    let err = attach(&f, &f.sales_a, &lead, &wrong_hash, &png(2)).unwrap_err();
    assert_eq!(codes_of(&err), [("sha256".into(), "mismatch".into())]);
    let html = b"<!doctype html><script>alert(document.cookie)</script>";
    let err = attach(&f, &f.sales_a, &lead, &attach_input("photo", "x.png"), html).unwrap_err();
    assert_eq!(codes_of(&err), [("media_type".into(), "invalid_format".into())]);
    let claimed = AttachInput {
        media_type: Some("image/jpeg".into()),
        ..attach_input("document", "x.jpg")
    };
    let err = attach(&f, &f.sales_a, &lead, &claimed, &png(2)).unwrap_err();
    assert_eq!(codes_of(&err), [("media_type".into(), "invalid_format".into())]);
    let bad = AttachInput {
        kind: "selfie".into(),
        file_name: "../../etc/passwd".into(),
        sha256: Some("not a hash".into()),
        ..Default::default()
    };
    let err = attach(&f, &f.sales_a, &lead, &bad, &png(2)).unwrap_err();
    let mut fields: Vec<_> = codes_of(&err).into_iter().map(|(p, _)| p).collect();
    fields.sort();
    assert_eq!(fields, ["file_name", "kind", "sha256"], "every field at once");
    assert_eq!(f.count("attachment"), count, "refusals store no record");
    assert_eq!(f.writes_seen(), seen, "nor an audit entry or event");
    assert_eq!(blobs_of(&f), 1, "nor bytes");

    // An HTML document is kept as what it is (and served as a download: `served_type`).
    let page = attach(&f, &f.sales_a, &lead, &attach_input("document", "page.html"), html).unwrap();
    assert_eq!(page.str("media_type"), Some("text/html"));
    assert_eq!(
        crate::entity::attachment::served_type(page.str("media_type").unwrap()),
        "application/octet-stream"
    );

    f.set_org(json!({"attachment_max_bytes": 1_048_576}));
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut huge = Counting {
        left: 2 << 30,
        read: read.clone(),
    };
    let err = block(f.svc.attach(
        &f.sales_a,
        "lead",
        lead.id,
        &attach_input("document", "huge.bin"),
        &mut huge,
    ))
    .unwrap_err();
    assert_eq!(err.code(), "limit_exceeded");
    let n = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n <= 1_048_576 + crate::service::CHUNK as u64, "read {n} bytes of 2 GB");
    let declared_huge = AttachInput {
        size: Some(2 << 30),
        ..attach_input("document", "huge.bin")
    };
    let err = block(f.svc.begin_attach(&f.sales_a, "lead", lead.id, Some(&declared_huge))).unwrap_err();
    assert_eq!(err.code(), "limit_exceeded", "refused before a byte is read");
    assert_eq!(blobs_of(&f), 2);
}

pub fn interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected<S: Store>(store: S) {
    interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_on(store, Arc::new(MemoryBlobStore::new()));
}

/// An upload dropped half way stores neither a record nor bytes; bytes stored for a record whose
/// commit then failed (its owner was deleted meanwhile) are an orphan, which collection removes
/// once it is older than the grace period, sparing blobs a record names.
pub fn interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_on<S: Store>(
    store: S,
    blobs: Arc<dyn BlobStore>,
) {
    interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_from(store, blobs, NOW);
}

/// [`interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_on`] with the clock starting
/// at `start`: a blob store that dates blobs by its own clock (an object store's `Last-Modified`)
/// runs it from the real time.
pub fn interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected_from<S: Store>(
    store: S,
    blobs: Arc<dyn BlobStore>,
    start: Timestamp,
) {
    let f = Fixture::new(store).with_blobs(blobs);
    f.clock.set(start);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let mut up = block(
        f.svc
            .begin_attach(&f.sales_a, "lead", lead.id, Some(&attach_input("photo", "a.png"))),
    )
    .unwrap();
    up.write(&png(3)[..50]).unwrap();
    drop(up);
    assert_eq!(f.count("attachment"), 0);
    assert_eq!(blobs_of(&f), 0, "an interrupted upload leaves no bytes");

    // The input may come after the bytes (a form whose file part is first); without it, nothing.
    let late = || {
        let mut up = block(f.svc.begin_attach(&f.sales_a, "lead", lead.id, None)).unwrap();
        up.write(&png(8)).unwrap();
        up
    };
    let err = block(f.svc.finish_attach(&f.sales_a, late(), None)).unwrap_err();
    assert_eq!(codes_of(&err), [("kind".into(), "required".into())]);
    let a = block(
        f.svc
            .finish_attach(&f.sales_a, late(), Some(&attach_input("photo", "late.png"))),
    )
    .unwrap();
    assert_eq!(a.str("media_type"), Some("image/png"));
    block(f.svc.delete_attachment(&f.sales_a, a.id)).unwrap();

    let kept = attach(&f, &f.sales_a, &lead, &attach_input("photo", "kept.png"), &png(4)).unwrap();
    let other = f.lead(&f.sales_a, json!({"first_name": "Bo"}));
    let mut up = block(
        f.svc
            .begin_attach(&f.sales_a, "lead", other.id, Some(&attach_input("photo", "b.png"))),
    )
    .unwrap();
    up.write(&png(5)).unwrap();
    let other = block(f.svc.get(&f.admin, "lead", other.id)).unwrap();
    block(f.svc.delete(&f.admin, "lead", other.id, other.version)).unwrap();
    let err = block(f.svc.finish_attach(&f.sales_a, up, None)).unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(f.count("attachment"), 1, "no record for a deleted owner");
    assert_eq!(
        blobs_of(&f),
        3,
        "its bytes are an orphan (as are the deleted late one's)"
    );

    let hour = 3_600_000_000;
    assert_eq!(
        block(f.svc.collect_orphan_blobs(f.tenant, hour)).unwrap(),
        0,
        "too young"
    );
    f.clock.set(start.plus_minutes(61));
    assert_eq!(block(f.svc.collect_orphan_blobs(f.tenant, hour)).unwrap(), 2);
    let left = f.svc.blob_store().unwrap().list(f.tenant).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(Some(left[0].sha256.as_str()), kept.str("sha256"), "a named blob stays");

    // Deleted attachments' bytes go at the next collection.
    block(f.svc.delete_attachment(&f.sales_a, kept.id)).unwrap();
    assert_eq!(block(f.svc.collect_orphan_blobs(f.tenant, hour)).unwrap(), 1);
    assert_eq!(blobs_of(&f), 0);
}

/// Whoever cannot read the owner cannot read, list, download or delete its attachments (not found,
/// as for a record that does not exist); whoever may read but not update it cannot attach.
pub fn attachments_take_their_owners_scope<S: Store>(store: S) {
    attachments_take_their_owners_scope_on(store, Arc::new(MemoryBlobStore::new()));
}

/// [`attachments_take_their_owners_scope`] over the given blob store.
pub fn attachments_take_their_owners_scope_on<S: Store>(store: S, blobs: Arc<dyn BlobStore>) {
    let f = Fixture::new(store).with_blobs(blobs);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let a = attach(&f, &f.sales_a, &lead, &attach_input("photo", "roof.png"), &png(1)).unwrap();
    for actor in [&f.sales_b, &f.tech] {
        let nf = |r: crate::error::Result<()>| assert_eq!(r.unwrap_err().code(), "not_found");
        nf(block(f.svc.attachments(actor, "lead", lead.id)).map(|_| ()));
        nf(block(f.svc.attachment(actor, a.id)).map(|_| ()));
        nf(block(f.svc.attachment_content(actor, a.id)).map(|_| ()));
        nf(block(f.svc.delete_attachment(actor, a.id)));
        nf(attach(&f, actor, &lead, &attach_input("photo", "x.png"), &png(2)).map(|_| ()));
    }
    // Another tenant's attachment id is not found either.
    let other = Fixture::new(crate::memory::MemoryStore::new());
    assert_eq!(
        block(other.svc.attachment(&other.admin, a.id)).unwrap_err().code(),
        "not_found"
    );
    // The manager reads the team's lead and its photo.
    assert_eq!(block(f.svc.attachment(&f.manager, a.id)).unwrap().id, a.id);
    // A type that takes no attachments.
    let team = block(f.svc.list(&f.admin, "team", &ListRequest::default()))
        .unwrap()
        .items[0]
        .clone();
    assert_eq!(
        attach(&f, &f.admin, &team, &attach_input("photo", "t.png"), &png(1))
            .unwrap_err()
            .code(),
        "not_found"
    );

    // A crew member photographs their job and its steps; someone else's job stays unseen.
    let job = a_job(&f, json!({"job_steps": [{"name": "Load"}]}));
    let step = block(f.svc.children(&f.admin, "job", job.id)).unwrap()[0].1[0].clone();
    let nf = attach(&f, &f.tech, &job, &attach_input("photo", "truck.png"), &png(6)).unwrap_err();
    assert_eq!(nf.code(), "not_found");
    let crew = json!({"job_id": job.id.to_string(), "user_id": f.tech.user_id.unwrap().to_string(),
        "role": "mover", "starts_at": "2025-06-02T08:00:00Z", "ends_at": "2025-06-02T12:00:00Z"});
    block(f.svc.create(&f.admin, "crew_assignment", &obj(crew))).unwrap();
    attach(&f, &f.tech, &job, &attach_input("photo", "truck.png"), &png(6)).unwrap();
    let s = attach(&f, &f.tech, &step, &attach_input("photo", "loaded.png"), &png(7)).unwrap();
    assert_eq!(
        block(f.svc.attachments(&f.tech, "job_step", step.id)).unwrap()[0].id,
        s.id
    );
    assert_eq!(
        block(f.svc.attachments(&f.sales_b, "job", job.id)).unwrap_err().code(),
        "not_found"
    );
}

/// Deleting a record deletes its attachments in the same change set; deleting a job deletes its
/// steps' attachments too.
pub fn deleting_the_owner_deletes_its_attachments<S: Store>(store: S) {
    deleting_the_owner_deletes_its_attachments_on(store, Arc::new(MemoryBlobStore::new()));
}

/// [`deleting_the_owner_deletes_its_attachments`] over the given blob store.
pub fn deleting_the_owner_deletes_its_attachments_on<S: Store>(store: S, blobs: Arc<dyn BlobStore>) {
    let f = Fixture::new(store).with_blobs(blobs);
    let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
    let keep = f.lead(&f.sales_a, json!({"first_name": "Bo"}));
    attach(&f, &f.sales_a, &lead, &attach_input("photo", "a.png"), &png(1)).unwrap();
    attach(&f, &f.sales_a, &lead, &attach_input("document", "b.txt"), b"notes").unwrap();
    let kept = attach(&f, &f.sales_a, &keep, &attach_input("photo", "c.png"), &png(1)).unwrap();
    let lead = block(f.svc.get(&f.admin, "lead", lead.id)).unwrap();
    block(f.svc.delete(&f.admin, "lead", lead.id, lead.version)).unwrap();
    let left: Vec<Id> = block(f.svc.attachments(&f.sales_a, "lead", keep.id))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [kept.id]);
    assert_eq!(f.count("attachment"), 1);

    let job = a_job(&f, json!({"job_steps": [{"name": "Load"}, {"name": "Unload"}]}));
    let steps = block(f.svc.children(&f.admin, "job", job.id)).unwrap()[0].1.clone();
    attach(&f, &f.admin, &job, &attach_input("photo", "j.png"), &png(2)).unwrap();
    attach(&f, &f.admin, &steps[0], &attach_input("photo", "s.png"), &png(3)).unwrap();
    attach(&f, &f.admin, &steps[1], &attach_input("photo", "t.png"), &png(4)).unwrap();
    assert_eq!(f.count("attachment"), 4);
    // A step deleted alone takes its own.
    let s1 = block(f.svc.get(&f.admin, "job_step", steps[1].id)).unwrap();
    block(f.svc.delete(&f.admin, "job_step", s1.id, s1.version)).unwrap();
    assert_eq!(f.count("attachment"), 3);
    let job = block(f.svc.get(&f.admin, "job", job.id)).unwrap();
    block(f.svc.delete(&f.admin, "job", job.id, job.version)).unwrap();
    assert_eq!(f.count("attachment"), 1, "the job's and its step's went with it");
}

/// A signature attachment is what a job's completion guard reads: attached, the job is signed;
/// deleted, it is not; a completed job takes no more attachments.
pub fn a_signature_attachment_signs_the_job<S: Store>(store: S) {
    let f = Fixture::new(store).with_blobs(Arc::new(MemoryBlobStore::new()));
    let job = a_job(&f, json!({"signature_required": true}));
    let signed = |f: &Fixture<S>| {
        block(f.svc.get(&f.admin, "job", job.id))
            .unwrap()
            .get("customer_signed")
            == Some(&crate::value::Value::Bool(true))
    };
    let err = block(f.svc.update(
        &f.admin,
        "job",
        job.id,
        job.version,
        &obj(json!({"customer_signed": true})),
    ))
    .unwrap_err();
    assert_eq!(codes_of(&err), [("customer_signed".into(), "read_only".into())]);
    attach(&f, &f.admin, &job, &attach_input("photo", "p.png"), &png(1)).unwrap();
    assert!(!signed(&f), "a photo is no signature");
    let no_signer = AttachInput {
        signer_name: None,
        ..attach_input("signature", "sig.png")
    };
    let err = attach(&f, &f.admin, &job, &no_signer, &png(2)).unwrap_err();
    assert_eq!(codes_of(&err), [("signer_name".into(), "required".into())]);
    let sig = attach(&f, &f.admin, &job, &attach_input("signature", "sig.png"), &png(2)).unwrap();
    assert_eq!(sig.str("signer_name"), Some("Cleo Customer"));
    assert_eq!(sig.get("signed_at"), Some(&crate::value::Value::Timestamp(NOW)));
    assert!(signed(&f));
    block(f.svc.delete_attachment(&f.admin, sig.id)).unwrap();
    assert!(!signed(&f), "deleting the signature unsigns the job");
    attach(&f, &f.admin, &job, &attach_input("signature", "sig.png"), &png(2)).unwrap();
    assert!(signed(&f));
    let crew = json!({"job_id": job.id.to_string(), "user_id": f.tech.user_id.unwrap().to_string(),
        "role": "mover", "starts_at": "2025-06-02T08:00:00Z", "ends_at": "2025-06-02T12:00:00Z"});
    block(f.svc.create(&f.admin, "crew_assignment", &obj(crew))).unwrap();
    let j = block(f.svc.get(&f.admin, "job", job.id)).unwrap();
    let j = block(f.svc.transition(&f.admin, "job", j.id, j.version, "start", &Map::new())).unwrap();
    let j = block(
        f.svc
            .transition(&f.tech, "job", j.id, j.version, "complete", &Map::new()),
    )
    .unwrap();
    assert_eq!(j.str("status"), Some("completed"));
    let err = attach(&f, &f.admin, &j, &attach_input("photo", "late.png"), &png(3)).unwrap_err();
    assert_eq!(codes_of(&err), [("status".into(), "locked".into())]);
}
