//! Activities: calls, emails, meetings, notes, SMS, visits and check-ins, linked to a lead, a contact
//! or a company. Writing one re-scores its lead.

use super::{declare, keyed_enum};
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::FieldType as T;

declare!(ACTIVITY, activity);

keyed_enum!(
    /// What kind of contact an activity records.
    ActivityKind {
        Call = "call",
        Email = "email",
        Meeting = "meeting",
        Note = "note",
        Sms = "sms",
        Visit = "visit",
        CheckIn = "check_in",
    }
);

pub const ACTIVITY_KINDS: &[&str] = ActivityKind::KEYS;

/// Field names of an activity.
pub mod fields {
    pub const KIND: &str = "kind";
    pub const OCCURRED_AT: &str = "occurred_at";
    pub const LEAD_ID: &str = "lead_id";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
}

fn activity() -> EntityDef {
    let mut e = EntityDef::new("activity", "activities")
        .field(F::new(fields::KIND, T::Enum).required().options(ACTIVITY_KINDS))
        .field(F::new("direction", T::Enum).options(&["inbound", "outbound"]))
        .field(F::new("subject", T::Text).max_len(200))
        .field(F::new("body", T::Text).max_len(20_000))
        .field(F::new("outcome", T::Text).max_len(100))
        .field(
            F::new(fields::OCCURRED_AT, T::Timestamp)
                .required()
                .past()
                .default_now(),
        )
        .field(F::new("duration_minutes", T::Integer).range(Some(0), Some(24 * 60)))
        .field(F::new(fields::LEAD_ID, T::Ref("lead")))
        .field(F::new(fields::CONTACT_ID, T::Ref("contact")))
        .field(F::new(fields::COMPANY_ID, T::Ref("company")))
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("location_id", T::Ref("location")))
        .field(F::new("external_id", T::Text).max_len(100).unique());
    e.owner_field = Some("owner_id");
    e.team_field = Some("team_id");
    e.external_key = Some("external_id");
    e.custom_fields = true;
    e.rescores = Some(fields::LEAD_ID);
    e.search_fields = &["subject", "body"];
    e.check = Some(activity_check);
    e.indexes = vec![&["lead_id", "occurred_at"], &["contact_id", "occurred_at"]];
    e
}

/// An activity belongs to a lead, a contact or a company.
fn activity_check(r: &Record, errs: &mut Vec<FieldError>) {
    let linked = [fields::LEAD_ID, fields::CONTACT_ID, fields::COMPANY_ID]
        .iter()
        .any(|f| r.get(f).is_some_and(|v| !v.is_null()));
    if !linked {
        errs.push(FieldError::new(
            fields::LEAD_ID,
            codes::REQUIRED,
            "an activity belongs to a lead, a contact or a company",
        ));
    }
}
