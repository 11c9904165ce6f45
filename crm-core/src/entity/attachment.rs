//! Attachments: photos, documents and signatures on a record of any type whose declaration accepts
//! them ([`crate::schema::EntityDef::attachments`]: contacts, companies, leads, quotes, jobs and job
//! steps). An attachment is a record of metadata; its bytes live in a blob store outside the core
//! ([`crate::blob`]), addressed by the SHA-256 of the content.
//!
//! What the core decides here, whatever the face:
//! - the media type is sniffed from the content ([`sniff`]); the client's claim is only a hint, and a
//!   claimed image that is not one is refused, as is a photo or signature that is no raster image;
//! - the size and the hash are computed while the bytes stream in, a declared size or hash that does
//!   not match is refused, and the tenant's limit (the organization's `attachment_max_bytes`) is
//!   enforced before more than that many bytes are read;
//! - who uploaded it and when, and when a signature was signed, are stamped by the core;
//! - the record takes the read scope of its owner: reading an attachment needs reading the owner,
//!   attaching or deleting one needs updating it (so whoever cannot see the job cannot learn that its
//!   photos exist), and deleting the owner deletes its attachments in the same change set;
//! - a signature is an attachment of kind `signature` with the signer's name; while a record has one,
//!   its declared signed field ([`crate::schema::Attachments::signed`], a job's `customer_signed`,
//!   which its completion guard reads) is true;
//! - which media types may be served as themselves ([`served_type`]): HTML, SVG and anything else
//!   a browser could run is served as `application/octet-stream`.

use super::declare;
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(ATTACHMENT, attachment);

/// The schema version that added attachments.
pub const SINCE: u32 = 13;

/// The organization setting: most bytes of one attachment.
pub const MAX_BYTES_SETTING: &str = "attachment_max_bytes";
/// Its default: 10 MB.
pub const DEFAULT_MAX_BYTES: i64 = 10 * 1024 * 1024;
/// The largest limit a tenant may set: 1 GiB.
pub const MAX_MAX_BYTES: i64 = 1024 * 1024 * 1024;

/// How old bytes no attachment names must be before a collection removes them (an upload's record
/// is committed well within it): an hour, in microseconds.
pub const ORPHAN_GRACE_MICROS: i64 = 60 * 60 * 1_000_000;

/// Bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 512;

keyed_enum!(
    /// What an attachment is.
    AttachmentKind {
        Photo = "photo",
        Document = "document",
        Signature = "signature",
    }
);
use super::keyed_enum;

/// Field names of an attachment.
pub mod fields {
    /// The owner record's entity type (`job`) and id.
    pub const OWNER_ENTITY: &str = "owner_entity";
    pub const OWNER_ID: &str = "owner_id";
    pub const KIND: &str = "kind";
    pub const FILE_NAME: &str = "file_name";
    /// Sniffed from the content by the core.
    pub const MEDIA_TYPE: &str = "media_type";
    /// Bytes, counted by the core.
    pub const SIZE: &str = "size";
    /// Lower-case hex SHA-256 of the content, computed by the core.
    pub const SHA256: &str = "sha256";
    pub const UPLOADED_BY: &str = "uploaded_by";
    pub const UPLOADED_AT: &str = "uploaded_at";
    /// Signatures: who signed, and when (stamped with the upload's time).
    pub const SIGNER_NAME: &str = "signer_name";
    pub const SIGNED_AT: &str = "signed_at";
}
use fields::*;

/// The input fields a client gives with the bytes (besides an optional declared size, hash and
/// media type, which are checks, not stored input).
pub const INPUT_FIELDS: &[&str] = &[KIND, FILE_NAME, SIGNER_NAME];

fn attachment() -> EntityDef {
    let mut e = EntityDef::new("attachment", "attachments")
        .field(F::new(OWNER_ENTITY, T::Text).required().max_len(64).read_only())
        .field(F::new(OWNER_ID, T::Text).required().max_len(36).read_only())
        .field(
            F::new(KIND, T::Enum)
                .options(AttachmentKind::KEYS)
                .required()
                .default(AttachmentKind::Document.key()),
        )
        .field(F::new(FILE_NAME, T::Text).required().max_len(255))
        .field(F::new(MEDIA_TYPE, T::Text).max_len(100).read_only())
        .field(F::new(SIZE, T::Integer).range(Some(0), None).read_only())
        .field(F::new(SHA256, T::Text).max_len(64).read_only())
        .field(F::new(UPLOADED_BY, T::Ref("user")).read_only())
        .field(F::new(UPLOADED_AT, T::Timestamp).read_only())
        .field(F::new(SIGNER_NAME, T::Text).max_len(200))
        .field(F::new(SIGNED_AT, T::Timestamp).read_only());
    e.since = SINCE;
    // Reached only through its owner (`Service::attach`, `attachments`, `attachment`,
    // `delete_attachment`): never by the generic record use cases, never granted to a role.
    e.exposure = Exposure::Internal;
    e.check = Some(check_attachment);
    e.indexes = vec![&[OWNER_ENTITY, OWNER_ID], &[SHA256]];
    e
}

/// A file name is a name, not a path; a signature names its signer, and only a signature does.
fn check_attachment(r: &Record, errs: &mut Vec<FieldError>) {
    if let Some(name) = r.str(FILE_NAME)
        && (name.contains(['/', '\\']) || name.trim().is_empty() || name == "." || name == "..")
    {
        errs.push(FieldError::new(
            FILE_NAME,
            codes::INVALID_FORMAT,
            "a file name without a directory",
        ));
    }
    let signer = r.str(SIGNER_NAME).is_some_and(|s| !s.trim().is_empty());
    match (is_signature(r), signer) {
        (true, false) => errs.push(FieldError::new(
            SIGNER_NAME,
            codes::REQUIRED,
            "a signature names who signed",
        )),
        (false, true) => errs.push(FieldError::new(
            SIGNER_NAME,
            codes::READ_ONLY,
            "only a signature has a signer",
        )),
        _ => {}
    }
}

/// Is this attachment a signature?
pub fn is_signature(r: &Record) -> bool {
    r.str(KIND) == Some(AttachmentKind::Signature.key())
}

/// The media type of content starting with `head` (its first [`SNIFF_LEN`] bytes or all of it):
/// a short magic-number table of the images, documents and archives field work produces, then
/// markup a browser would run (HTML, SVG, XML), then UTF-8 text; anything else is
/// `application/octet-stream`.
pub fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    ];
    for (magic, ty) in MAGIC {
        if head.starts_with(magic) {
            return ty;
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        match &head[8..12] {
            b"heic" | b"heix" | b"mif1" | b"msf1" => return "image/heic",
            _ => {}
        }
    }
    // Markup: look past a byte-order mark and white space, case-insensitively.
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let lower: Vec<u8> = text[start..]
        .iter()
        .take(SNIFF_LEN)
        .map(u8::to_ascii_lowercase)
        .collect();
    if lower.starts_with(b"<") {
        let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
        if has(b"<svg") {
            return "image/svg+xml";
        }
        if has(b"<html") || has(b"<!doctype html") || has(b"<script") || has(b"<body") || has(b"<head") {
            return "text/html";
        }
        return "application/xml";
    }
    // Text when the head is UTF-8 (a multi-byte character cut at the end of the head is fine).
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if valid && !head.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return "text/plain";
    }
    "application/octet-stream"
}

/// Raster images a photo or a signature may be.
pub const IMAGE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/tiff",
];

/// Media types served to a browser as themselves (as downloads still); every other type, HTML and
/// SVG first, is served as `application/octet-stream` so no browser runs it in the API's origin.
pub const SAFE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/tiff",
    "application/pdf",
    "application/zip",
    "text/plain",
];

/// The `Content-Type` a download of an attachment of this media type is served with.
pub fn served_type(media_type: &str) -> &'static str {
    SAFE_TYPES
        .iter()
        .find(|t| **t == media_type)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// Checks the sniffed type against the kind and the client's claim: a photo or a signature is a
/// raster image, and a claimed image must be the image the content is. Other claims are hints.
pub fn check_media_type(kind: &str, sniffed: &str, declared: Option<&str>) -> Result<(), FieldError> {
    let image = |t: &str| t.starts_with("image/");
    let needs_image = matches!(
        AttachmentKind::from_key(kind),
        Some(AttachmentKind::Photo | AttachmentKind::Signature)
    );
    if needs_image && !IMAGE_TYPES.contains(&sniffed) {
        return Err(FieldError::new(
            MEDIA_TYPE,
            codes::INVALID_FORMAT,
            format!("a {kind} is a PNG, JPEG, GIF, WebP, HEIC or TIFF image; the content is {sniffed}"),
        ));
    }
    if let Some(claim) = declared {
        let claim = claim.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let claim = if claim == "image/jpg" {
            "image/jpeg".to_owned()
        } else {
            claim
        };
        if image(&claim) && claim != sniffed {
            return Err(FieldError::new(
                MEDIA_TYPE,
                codes::INVALID_FORMAT,
                format!("declared {claim}, but the content is {sniffed}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_the_media_type() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), "image/heic");
        assert_eq!(sniff(b"  <!DOCTYPE html><p>hi"), "text/html");
        assert_eq!(
            sniff(b"\xef\xbb\xbf<?xml version=\"1.0\"?><svg onload=\"x()\">"),
            "image/svg+xml"
        );
        assert_eq!(sniff(b"<SCRIPT>alert(1)</SCRIPT>"), "text/html");
        assert_eq!(sniff(b"<note/>"), "application/xml");
        assert_eq!(sniff("Roof measured: 42 m².\n".as_bytes()), "text/plain");
        assert_eq!(sniff(b"\0\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain");
    }

    #[test]
    fn active_content_is_never_served_as_itself() {
        assert_eq!(served_type("image/png"), "image/png");
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "application/javascript",
            "",
        ] {
            assert_eq!(served_type(t), "application/octet-stream", "{t}");
        }
    }

    #[test]
    fn photos_are_images_and_image_claims_are_checked() {
        assert!(check_media_type("photo", "image/png", Some("image/png")).is_ok());
        assert!(check_media_type("photo", "image/jpeg", Some("image/jpg")).is_ok());
        assert!(check_media_type("photo", "text/html", None).is_err());
        assert!(check_media_type("signature", "image/svg+xml", Some("image/svg+xml")).is_err());
        assert!(check_media_type("document", "text/html", Some("image/png")).is_err());
        assert!(check_media_type("document", "application/pdf", Some("application/octet-stream")).is_ok());
        assert!(check_media_type("document", "text/html", Some("text/html")).is_ok());
    }

    #[test]
    fn file_names_are_names_and_only_signatures_have_signers() {
        let mut r = Record::empty(
            &ATTACHMENT,
            crate::value::Id::nil(),
            crate::value::Id::nil(),
            Default::default(),
        );
        r.set(KIND, "photo");
        r.set(FILE_NAME, "../etc/passwd");
        r.set(SIGNER_NAME, "Ann");
        let mut errs = Vec::new();
        check_attachment(&r, &mut errs);
        let paths: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            paths,
            [(FILE_NAME, codes::INVALID_FORMAT), (SIGNER_NAME, codes::READ_ONLY)]
        );
        r.set(KIND, "signature");
        r.set(FILE_NAME, "signature.png");
        r.set(SIGNER_NAME, crate::value::Value::Null);
        errs.clear();
        check_attachment(&r, &mut errs);
        assert_eq!(errs[0].path, SIGNER_NAME);
        assert_eq!(errs[0].code, codes::REQUIRED);
    }
}
