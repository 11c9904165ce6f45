//! Sync rejections: on a device, one row per logged change set the server refused
//! ([`crate::sync::Outcome::Rejected`]), so the app can list what did not reach the server and
//! why, while the rest of the queue goes on. Written only by [`crate::service::Service::apply_push_answer`],
//! in a change set the sync log leaves out (a device's record of its own refusals is not itself
//! synced); read by [`crate::service::Service::sync_rejections`]. The row's id is the refused
//! change set's id, so applying the same answer twice records it once. See `docs/sync.md`.

use super::declare;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(SYNC_REJECTION, sync_rejection);

/// The schema version that added sync rejections (and the sync log's `intent` column).
pub const SINCE: u32 = 16;

/// Field names of a sync rejection.
pub mod fields {
    /// The refused entry's position in the device's log.
    pub const SEQ: &str = "seq";
    /// When the use case ran on the device.
    pub const LOGGED_AT: &str = "logged_at";
    /// The refusal's stable code (`validation`, `forbidden`, `conflict`, `not_found`, ...).
    pub const CODE: &str = "code";
    /// The refusal as the server sent it ([`crate::sync::Refusal`]).
    pub const ERROR: &str = "error";
    /// The refused log entry ([`crate::sync::SyncEntry`]): its use case, input and row writes.
    pub const ENTRY: &str = "entry";
}
use fields::*;

fn sync_rejection() -> EntityDef {
    let mut e = EntityDef::new("sync_rejection", "sync_rejections")
        .field(F::new(SEQ, T::Integer).required().read_only())
        .field(F::new(LOGGED_AT, T::Timestamp).required().read_only())
        .field(F::new(CODE, T::Text).required().max_len(64).read_only())
        .field(F::new(ERROR, T::Json).required().read_only())
        .field(F::new(ENTRY, T::Json).required().read_only());
    e.since = SINCE;
    // A device's own bookkeeping: written and read only through the sync use cases, never sent up.
    e.exposure = Exposure::Internal;
    e.stays_local = true;
    e
}
