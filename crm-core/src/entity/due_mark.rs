//! Due marks: the record that a due item's occurrence ([`crate::due::DueItem`]) has fired. A mark is
//! inserted in the change set that writes the occurrence's event, and its key is unique per tenant,
//! so of two scheduler instances racing for one occurrence one writes it and the other's change set
//! fails as a duplicate, and a restarted scheduler skips what fired before it stopped. Internal:
//! written and read only by `Service::fire_due`.

use super::declare;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(DUE_MARK, due_mark);

/// Field names of a due mark.
pub mod fields {
    /// [`crate::due::DueItem::key`].
    pub const KEY: &str = "key";
    /// The event kind it fired (`lead.followup_due`).
    pub const KIND: &str = "kind";
    /// The record that fell due.
    pub const RECORD_ID: &str = "record_id";
}

fn due_mark() -> EntityDef {
    let mut e = EntityDef::new("due_mark", "due_marks")
        .field(F::new(fields::KEY, T::Text).required().max_len(300).unique())
        .field(F::new(fields::KIND, T::Text).required().max_len(100))
        .field(F::new(fields::RECORD_ID, T::Text).required().max_len(36));
    e.since = super::followup::SINCE;
    e.exposure = Exposure::Internal;
    e
}
