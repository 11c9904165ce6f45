//! Sync cursors: on a device, where its user's pulls resume ([`crate::sync::PullPage::next`]).
//! One row per user of the device's database, its id the user's id (the tenant's id for the
//! system). Written only by [`crate::service::Service::apply_pull`], in the same change set as
//! the page's records, so a crash leaves the records and the position together; read by
//! [`crate::service::Service::pull_cursor`]. A device's own bookkeeping: never synced.

use super::declare;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(SYNC_CURSOR, sync_cursor);

/// The schema version that added sync cursors.
pub const SINCE: u32 = 17;

/// Field names of a sync cursor.
pub mod fields {
    /// The opaque cursor to pull with next.
    pub const CURSOR: &str = "cursor";
    /// When the last page was applied (the device's clock).
    pub const PULLED_AT: &str = "pulled_at";
}
use fields::*;

fn sync_cursor() -> EntityDef {
    let mut e = EntityDef::new("sync_cursor", "sync_cursors")
        .field(F::new(CURSOR, T::Text).required().read_only())
        .field(F::new(PULLED_AT, T::Timestamp).required().read_only());
    e.since = SINCE;
    e.exposure = Exposure::Internal;
    e
}
