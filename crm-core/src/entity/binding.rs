//! External bindings: which record an external system's row became. A binding names the entity
//! type, the source system (`"scheduler"`, `"erp"`), the row's id in that system, the record it is
//! bound to, the SHA-256 of the row as last applied, when that was, and the sync status (the last
//! rejection's errors, if the last row received for it was refused).
//!
//! The key `(entity, system, external id)` is unique per tenant, so two source systems that use the
//! same ids never collide, and the id of one system never touches a record's own `external_id`
//! field (the tenant's key for CSV imports). Bindings are system-managed: written and read only by
//! `Service::upsert` (users never write them directly), in the change set of the record write they
//! describe. See ADR 0014 and `docs/integration.md`.

use super::{declare, keyed_enum};
use crate::change::Write;
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::{FieldType as T, Id, Timestamp, Value};
use serde_json::{Map, Value as Json};

declare!(EXTERNAL_BINDING, external_binding);

/// Schema version that adds bindings.
pub const SINCE: u32 = 14;

/// Longest system name and external id.
pub const MAX_SYSTEM_LEN: usize = 64;
pub const MAX_EXTERNAL_ID_LEN: usize = 100;

/// Field names of a binding.
pub mod fields {
    /// `entity/system/external id`: unique per tenant ([`super::key`]).
    pub const KEY: &str = "key";
    pub const ENTITY: &str = "entity";
    pub const SYSTEM: &str = "system";
    pub const EXTERNAL_ID: &str = "external_id";
    /// The bound record's id.
    pub const RECORD_ID: &str = "record_id";
    /// SHA-256 (hex) of the last row applied ([`super::row_hash`]).
    pub const HASH: &str = "hash";
    /// When the last row was applied.
    pub const SYNCED_AT: &str = "synced_at";
    /// [`super::SyncStatus`] of the last row received.
    pub const STATUS: &str = "status";
    /// The field errors of the last row refused (JSON list), or null.
    pub const LAST_ERROR: &str = "last_error";
    /// When the last row was refused.
    pub const FAILED_AT: &str = "failed_at";
}
use fields::*;

keyed_enum!(
    /// The status of a binding: the last row received for it was applied (or equal to the last one
    /// applied), or was refused.
    SyncStatus {
        Synced = "synced",
        Rejected = "rejected",
    }
);

fn external_binding() -> EntityDef {
    let mut e = EntityDef::new("external_binding", "external_bindings")
        .field(F::new(KEY, T::Text).required().max_len(300).unique())
        .field(F::new(ENTITY, T::Text).required().max_len(64))
        .field(F::new(SYSTEM, T::Text).required().max_len(MAX_SYSTEM_LEN as u32))
        .field(
            F::new(EXTERNAL_ID, T::Text)
                .required()
                .max_len(MAX_EXTERNAL_ID_LEN as u32),
        )
        .field(F::new(RECORD_ID, T::Text).required().max_len(36))
        .field(F::new(HASH, T::Text).required().max_len(64))
        .field(F::new(SYNCED_AT, T::Timestamp).required())
        .field(F::new(STATUS, T::Enum).options(SyncStatus::KEYS).required())
        .field(F::new(LAST_ERROR, T::Json))
        .field(F::new(FAILED_AT, T::Timestamp));
    e.since = SINCE;
    e.exposure = Exposure::Internal;
    e.indexes = vec![&[RECORD_ID]];
    e
}

/// The unique key of a binding. Entity names and system names hold no `/` ([`check_system`]), so
/// the key is unambiguous whatever the external id holds.
pub fn key(entity: &str, system: &str, external_id: &str) -> String {
    format!("{entity}/{system}/{external_id}")
}

/// A system name: 1 to 64 characters, lower-case letters, digits, `_`, `-` and `.`, starting with a
/// letter or digit (`scheduler`, `erp-eu`).
pub fn check_system(system: &str) -> Result<(), FieldError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.');
    if system.is_empty() {
        return Err(FieldError::new(SYSTEM, codes::REQUIRED, "name the source system"));
    }
    if system.len() > MAX_SYSTEM_LEN {
        return Err(FieldError::new(
            SYSTEM,
            codes::TOO_LONG,
            format!("at most {MAX_SYSTEM_LEN} characters"),
        ));
    }
    if !system.chars().all(ok_char) || !system.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(FieldError::new(
            SYSTEM,
            codes::INVALID_FORMAT,
            "lower-case letters, digits, '_', '-' and '.', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// The external id a JSON row names under `field` (the entity's external key): a non-empty string
/// (trimmed) of at most [`MAX_EXTERNAL_ID_LEN`] characters without control characters. Strictly
/// typed: a number is `invalid_type`.
pub fn external_id(row: &Map<String, Json>, field: &str) -> Result<String, FieldError> {
    match row.get(field) {
        None | Some(Json::Null) => Err(FieldError::new(
            field,
            codes::REQUIRED,
            "every row needs its external id",
        )),
        Some(Json::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Err(FieldError::new(
                    field,
                    codes::REQUIRED,
                    "every row needs its external id",
                ))
            } else if s.chars().count() > MAX_EXTERNAL_ID_LEN {
                Err(FieldError::new(
                    field,
                    codes::TOO_LONG,
                    format!("at most {MAX_EXTERNAL_ID_LEN} characters"),
                ))
            } else if s.chars().any(char::is_control) {
                Err(FieldError::new(
                    field,
                    codes::CONTROL_CHARACTER,
                    "control characters are not allowed",
                ))
            } else {
                Ok(s.to_owned())
            }
        }
        Some(_) => Err(FieldError::new(field, codes::INVALID_TYPE, "expected a string")),
    }
}

/// SHA-256 (hex) of a row in canonical form: object keys sorted at every depth, no whitespace. Two
/// rows with the same members and values hash alike whatever their key order.
pub fn row_hash(row: &Map<String, Json>) -> String {
    use sha2::{Digest, Sha256};
    fn canon(v: &Json, out: &mut String) {
        match v {
            Json::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Json::String(k.clone()).to_string());
                    out.push(':');
                    canon(&m[k], out);
                }
                out.push('}');
            }
            Json::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canon(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canon(&Json::Object(row.clone()), &mut s);
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The typed view of a stored binding.
#[derive(Debug)]
pub struct Binding<'a>(pub &'a Record);

impl<'a> Binding<'a> {
    pub fn record_id(&self) -> Option<Id> {
        self.0.str(RECORD_ID).and_then(|s| s.parse().ok())
    }
    pub fn hash(&self) -> Option<&'a str> {
        self.0.str(HASH)
    }
    pub fn status(&self) -> Option<SyncStatus> {
        self.0.str(STATUS).and_then(SyncStatus::from_key)
    }
    pub fn last_error(&self) -> Option<&'a Value> {
        self.0.get(LAST_ERROR).filter(|v| !v.is_null())
    }
}

/// What the upsert did with the row a binding is for.
#[derive(Debug)]
pub enum Received<'a> {
    /// The row was written to `record` (created or updated): the binding takes its hash.
    Applied { record: Id, hash: &'a str },
    /// The row equals the last one applied: nothing to write, unless the binding says the last row
    /// was refused (then its status is back to synced).
    Unchanged,
    /// The row was refused with these errors: a bound row's binding records them, unless it holds
    /// the same errors already.
    Rejected(&'a [FieldError]),
}

/// The binding write for a row received, or `None` when nothing changes: an insert for a new
/// binding (only an applied row makes one), else an update expecting the version read.
#[allow(clippy::too_many_arguments)]
pub fn write(
    tenant: Id,
    new_id: Id,
    (entity, system, external_id): (&str, &str, &str),
    cur: Option<&Record>,
    received: Received<'_>,
    now: Timestamp,
) -> Option<Write> {
    let mut rec = match cur {
        Some(c) => {
            let mut r = c.clone();
            r.version = c.version + 1;
            r.updated_at = now;
            r
        }
        None => {
            let mut r = Record::empty(&EXTERNAL_BINDING, tenant, new_id, now);
            r.set(KEY, key(entity, system, external_id));
            r.set(ENTITY, entity);
            r.set(SYSTEM, system);
            r.set(EXTERNAL_ID, external_id);
            r
        }
    };
    match received {
        Received::Applied { record, hash } => {
            rec.set(RECORD_ID, record.to_string());
            rec.set(HASH, hash);
            rec.set(SYNCED_AT, now);
            rec.set(STATUS, SyncStatus::Synced.key());
            rec.set(LAST_ERROR, Value::Null);
        }
        Received::Unchanged => {
            if cur.is_none_or(|c| Binding(c).status() == Some(SyncStatus::Synced)) {
                return None;
            }
            rec.set(STATUS, SyncStatus::Synced.key());
            rec.set(LAST_ERROR, Value::Null);
        }
        Received::Rejected(errors) => {
            let c = cur?;
            let errors = Value::Json(serde_json::to_value(errors).unwrap_or(Json::Null));
            if Binding(c).status() == Some(SyncStatus::Rejected) && Binding(c).last_error() == Some(&errors) {
                return None;
            }
            rec.set(STATUS, SyncStatus::Rejected.key());
            rec.set(LAST_ERROR, errors);
            rec.set(FAILED_AT, now);
        }
    }
    Some(match cur {
        None => Write::Insert(rec),
        Some(c) => Write::Update {
            record: rec,
            expected_version: c.version,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_hash_ignores_key_order_and_sees_every_value() {
        let a = row_hash(&obj(
            json!({"external_id": "J1", "title": "Move", "x": {"b": 1, "a": [1, 2]}}),
        ));
        let b = row_hash(&obj(
            json!({"x": {"a": [1, 2], "b": 1}, "title": "Move", "external_id": "J1"}),
        ));
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let c = row_hash(&obj(
            json!({"external_id": "J1", "title": "Move!", "x": {"b": 1, "a": [1, 2]}}),
        ));
        assert_ne!(a, c);
        // A string is not a number.
        assert_ne!(row_hash(&obj(json!({"n": 1}))), row_hash(&obj(json!({"n": "1"}))));
    }

    #[test]
    fn systems_and_external_ids_are_checked() {
        assert!(check_system("scheduler").is_ok());
        assert!(check_system("erp-eu.2").is_ok());
        for (bad, code) in [
            ("", "required"),
            ("ERP", "invalid_format"),
            ("a/b", "invalid_format"),
            ("-x", "invalid_format"),
        ] {
            assert_eq!(check_system(bad).unwrap_err().code, code, "{bad}");
        }
        assert_eq!(check_system(&"a".repeat(65)).unwrap_err().code, "too_long");
        let id = |v: Json| external_id(&obj(json!({ "external_id": v })), "external_id");
        assert_eq!(id(json!(" J-1 ")).unwrap(), "J-1");
        assert_eq!(id(json!(7)).unwrap_err().code, "invalid_type");
        assert_eq!(id(json!("  ")).unwrap_err().code, "required");
        assert_eq!(id(json!(null)).unwrap_err().code, "required");
        assert_eq!(id(json!("a\u{7}")).unwrap_err().code, "control_character");
        assert_eq!(id(json!("x".repeat(101))).unwrap_err().code, "too_long");
        assert_eq!(external_id(&Map::new(), "external_id").unwrap_err().code, "required");
    }

    #[test]
    fn a_binding_is_written_only_when_something_changes() {
        let (t, id, rid) = (Id::from_u128(1), Id::from_u128(2), Id::from_u128(3));
        let names = ("job", "scheduler", "J1");
        assert!(write(t, id, names, None, Received::Unchanged, Timestamp(5)).is_none());
        let err = [FieldError::new("title", "required", "required")];
        assert!(
            write(t, id, names, None, Received::Rejected(&err), Timestamp(5)).is_none(),
            "no binding for a refused new row"
        );
        let Some(Write::Insert(b)) = write(
            t,
            id,
            names,
            None,
            Received::Applied { record: rid, hash: "h" },
            Timestamp(5),
        ) else {
            panic!("insert")
        };
        assert_eq!(b.str(KEY), Some("job/scheduler/J1"));
        assert_eq!(Binding(&b).record_id(), Some(rid));
        assert!(write(t, id, names, Some(&b), Received::Unchanged, Timestamp(6)).is_none());
        let Some(Write::Update {
            record: r,
            expected_version: 1,
        }) = write(t, id, names, Some(&b), Received::Rejected(&err), Timestamp(6))
        else {
            panic!("update")
        };
        assert_eq!(Binding(&r).status(), Some(SyncStatus::Rejected));
        assert_eq!(Binding(&r).hash(), Some("h"), "the hash stays the last applied row's");
        assert!(
            write(t, id, names, Some(&r), Received::Rejected(&err), Timestamp(7)).is_none(),
            "same errors: no write"
        );
        let Some(Write::Update { record: back, .. }) = write(t, id, names, Some(&r), Received::Unchanged, Timestamp(8))
        else {
            panic!("back to synced")
        };
        assert_eq!(Binding(&back).status(), Some(SyncStatus::Synced));
        assert!(Binding(&back).last_error().is_none());
    }
}
