//! Bookings: one row per key of an exclusive time range (a user, for crew assignments), written in
//! the change set of every write of such a range, expecting the version read. It serialises the
//! overlap check of two concurrent writers for one key on every store: one of them conflicts and is
//! checked again against what the other wrote (see [`crate::schema::Exclusive`], ADR 0011). A quote's
//! row serialises the same way the one job made from it ([`super::job::from_quote`]).

use super::declare;
use crate::change::Write;
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::{FieldType as T, Id, Timestamp, Value};

declare!(BOOKING, booking);

/// How many writes the key's ranges have seen.
pub const WRITES: &str = "writes";

fn booking() -> EntityDef {
    let mut e = EntityDef::new("booking", "bookings").field(F::new(WRITES, T::Integer).required());
    e.since = super::job::SINCE;
    e.exposure = Exposure::Internal;
    e.serialises = true;
    e
}

/// The write that moves the key's booking row on: an insert the first time, else an update
/// expecting the version read.
pub fn bump(tenant: Id, key: Id, cur: Option<&Record>, now: Timestamp) -> Write {
    match cur {
        None => {
            let mut r = Record::empty(&BOOKING, tenant, key, now);
            r.set(WRITES, 1i64);
            Write::Insert(r)
        }
        Some(c) => {
            let mut r = c.clone();
            r.set(WRITES, c.get(WRITES).and_then(Value::as_i64).unwrap_or(0) + 1);
            r.version = c.version + 1;
            r.updated_at = now;
            Write::Update {
                record: r,
                expected_version: c.version,
            }
        }
    }
}
