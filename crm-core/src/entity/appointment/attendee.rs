//! Who attends an appointment: children of the appointment naming a user or a contact. The user
//! attendees' time is exclusive (see the appointment's overlap policy); contacts are invited only.

use super::{SINCE, declare};
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};

declare!(APPOINTMENT_ATTENDEE, appointment_attendee);

/// Field names of an attendee.
pub mod fields {
    pub const APPOINTMENT_ID: &str = "appointment_id";
    pub const USER_ID: &str = "user_id";
    pub const CONTACT_ID: &str = "contact_id";
    /// The attendee's answer: `needs_action`, `accepted`, `declined` or `tentative` (RFC 5545 PARTSTAT).
    pub const RESPONSE: &str = "response";
}
use fields::*;

/// An attendee's answers, as iCalendar names them.
pub const RESPONSES: &[&str] = &["needs_action", "accepted", "declined", "tentative"];

fn appointment_attendee() -> EntityDef {
    let mut e = EntityDef::new("appointment_attendee", "appointment_attendees")
        .field(F::new(APPOINTMENT_ID, T::Ref("appointment")).required())
        .field(F::new(USER_ID, T::Ref("user")))
        .field(F::new(CONTACT_ID, T::Ref("contact")))
        .field(
            F::new(RESPONSE, T::Enum)
                .options(RESPONSES)
                .required()
                .default("needs_action"),
        );
    e.since = SINCE;
    e.child_of = Some(ChildOf {
        parent: "appointment",
        field: APPOINTMENT_ID,
        order_by: &[],
    });
    e.check = Some(one_person);
    e.indexes = vec![&[USER_ID], &[CONTACT_ID]];
    e
}

/// An attendee is one user or one contact.
fn one_person(r: &Record, errs: &mut Vec<FieldError>) {
    let set = |f| r.get(f).is_some_and(|v| !v.is_null());
    match (set(USER_ID), set(CONTACT_ID)) {
        (true, true) => errs.push(FieldError::new(
            CONTACT_ID,
            codes::INVALID_FORMAT,
            "an attendee is a user or a contact, not both",
        )),
        (false, false) => errs.push(FieldError::new(
            USER_ID,
            codes::REQUIRED,
            "an attendee is a user or a contact",
        )),
        _ => {}
    }
}

/// Whether an attendee is a user who has not declined (their time is taken).
pub fn holds_time(a: &Record) -> bool {
    a.id_of(USER_ID).is_some() && a.get(RESPONSE) != Some(&Value::from("declined"))
}
