//! The built-in entity types, one module per aggregate. Each module holds its declaration(s), its
//! field-name constants, the enums whose keys feed its option lists, and its rules (an [`EntityRules`]
//! implementation the service calls). To add an entity type (quotes, jobs, memberships): add a module
//! here, list its declaration in [`all`], and grant it in the built-in roles (`access::builtin`); the SQL
//! schema, migrations, validation, queries, import/export, audit and sync follow from the declaration.

pub mod activity;
pub mod appointment;
pub mod attachment;
pub mod auth;
pub mod binding;
pub mod booking;
pub mod check_in;
pub mod config;
pub mod customer;
pub mod due_mark;
pub mod followup;
pub mod job;
pub mod lead;
pub mod membership;
pub mod people;
pub mod plan;
pub mod quote;
pub mod routing;
mod rules;
pub mod stage;
pub mod sync_cursor;
pub mod sync_rejection;

pub use activity::{ACTIVITY, ACTIVITY_KINDS, ActivityKind};
pub use appointment::{APPOINTMENT, APPOINTMENT_ATTENDEE, AppointmentStatus, CALENDAR_FEED};
pub use attachment::{ATTACHMENT, AttachmentKind};
pub use auth::{API_KEY, CREDENTIAL, SESSION, WEBHOOK, webhook_fields};
pub use binding::EXTERNAL_BINDING;
pub use booking::BOOKING;
pub use check_in::{CHECK_IN, Outcome};
pub use config::{CUSTOM_FIELD, PIPELINE, ROLE, SCORING_MODEL};
pub use customer::{COMPANY, CONTACT, CUSTOMER_TYPES};
pub use due_mark::DUE_MARK;
pub use followup::FollowupStatus;
pub use job::{CREW_ASSIGNMENT, JOB, JOB_STEP, JOB_TEMPLATE, JobStatus, STEP_ACTIVITY};
pub use lead::{LEAD, LEAD_SOURCES, PROJECT_TYPES, TEMPERATURES, Temperature};
pub use membership::{MEMBERSHIP, MEMBERSHIP_FREEZE, MembershipStatus};
pub use people::{LOCATION, ORGANIZATION, TEAM, USER};
pub use plan::PLAN;
pub use quote::{QUOTE, QUOTE_LINE, QuoteStatus};
pub use routing::{ROUTING_CURSOR, ROUTING_RULE};
pub use rules::{DocumentCtx, EntityRules, MAX_CONFIG_RECORDS, Need, NoRules, WriteCtx};
pub use stage::STAGE_CHANGE;
pub use sync_cursor::SYNC_CURSOR;
pub use sync_rejection::SYNC_REJECTION;

use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};

/// Declares a lazily built, `'static` entity declaration.
macro_rules! declare {
    ($stat:ident, $f:ident) => {
        pub static $stat: std::sync::LazyLock<$crate::schema::EntityDef> = std::sync::LazyLock::new($f);
    };
}
pub(crate) use declare;

/// An enum of option keys: the declaration's `options` come from `KEYS`, code matches on variants.
macro_rules! keyed_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $k:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// Every key, in declaration order (what the declaration's option list holds).
            pub const KEYS: &'static [&'static str] = &[$($k),+];
            /// Every variant, in the order of [`Self::KEYS`].
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The stored key.
            pub fn key(self) -> &'static str {
                match self { $($name::$v => $k),+ }
            }
            /// The variant of a stored key.
            pub fn from_key(key: &str) -> Option<Self> {
                match key { $($k => Some($name::$v),)+ _ => None }
            }
        }
    };
}
pub(crate) use keyed_enum;

/// Every entity type, in dependency order (referenced types first).
pub fn all() -> [&'static EntityDef; 39] {
    [
        &ORGANIZATION,
        &LOCATION,
        &TEAM,
        &USER,
        &COMPANY,
        &CONTACT,
        &PIPELINE,
        &LEAD,
        &ACTIVITY,
        &CUSTOM_FIELD,
        &SCORING_MODEL,
        &ROLE,
        &CREDENTIAL,
        &SESSION,
        &API_KEY,
        &WEBHOOK,
        &PLAN,
        &MEMBERSHIP,
        &MEMBERSHIP_FREEZE,
        &CHECK_IN,
        &QUOTE,
        &QUOTE_LINE,
        &STAGE_CHANGE,
        &ROUTING_RULE,
        &ROUTING_CURSOR,
        &DUE_MARK,
        &JOB_TEMPLATE,
        &JOB,
        &JOB_STEP,
        &CREW_ASSIGNMENT,
        &STEP_ACTIVITY,
        &BOOKING,
        &APPOINTMENT,
        &APPOINTMENT_ATTENDEE,
        &CALENDAR_FEED,
        &ATTACHMENT,
        &EXTERNAL_BINDING,
        &SYNC_REJECTION,
        &SYNC_CURSOR,
    ]
}

/// Looks an entity type up by its API name (`lead`) or table name (`leads`).
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    all().into_iter().find(|e| e.name == name || e.table == name)
}

/// The postal address with coordinates that locations, customers and leads share.
/// The address fields [`address`] declares, in order (copied as one: a job from its quote's customer).
pub const ADDRESS_FIELDS: &[&str] = &[
    "address_line",
    "city",
    "region",
    "postal_code",
    "country",
    "latitude",
    "longitude",
];

pub(crate) fn address(e: EntityDef) -> EntityDef {
    e.field(F::new("address_line", T::Text).max_len(200))
        .field(F::new("city", T::Text).max_len(100))
        .field(F::new("region", T::Text).max_len(100))
        .field(F::new("postal_code", T::Text).max_len(20))
        .field(F::new("country", T::Text).max_len(2))
        .field(F::new("latitude", T::Number).range(Some(-90), Some(90)))
        .field(F::new("longitude", T::Number).range(Some(-180), Some(180)))
}

/// Owned by a user, in a team, with an external key and custom fields (customers, leads).
pub(crate) fn scoped(e: &mut EntityDef) {
    e.owner_field = Some("owner_id");
    e.team_field = Some("team_id");
    e.external_key = Some("external_id");
    e.custom_fields = true;
}

/// Shorthand for tests and fixtures: a text value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tables_are_unique_and_option_enums_feed_declarations() {
        let defs = all();
        for (i, a) in defs.iter().enumerate() {
            for b in &defs[i + 1..] {
                assert!(a.name != b.name && a.table != b.table, "{} / {}", a.name, b.name);
            }
            assert!(std::ptr::eq(entity(a.name).unwrap(), *a));
        }
        // A declared field never takes a system column's name (`id`, `version`, ...): names resolve
        // to the system column first, so such a field could not be read, filtered or referenced.
        for d in &defs {
            for f in &d.fields {
                assert!(
                    crate::schema::SystemField::from_name(f.name).is_none(),
                    "{}.{}",
                    d.name,
                    f.name
                );
            }
        }
        let opts = |d: &EntityDef, f: &str| d.def(f).unwrap().spec.options.clone();
        assert_eq!(opts(&LEAD, "temperature"), TEMPERATURES);
        assert_eq!(opts(&ACTIVITY, "kind"), ACTIVITY_KINDS);
    }
}
