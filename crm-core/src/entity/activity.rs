//! Activities: calls, emails, meetings, notes, SMS, visits and check-ins, linked to a lead, a contact
//! or a company. Writing one re-scores its lead.

use super::{declare, followup, keyed_enum};
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
    pub const DIRECTION: &str = "direction";
    pub const OCCURRED_AT: &str = "occurred_at";
    pub const LEAD_ID: &str = "lead_id";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
}

/// The references through which an activity sets its record's next follow-up, in order: an
/// activity logged with `next_followup_at` (and optionally `followup_owner_id`) sets them on the
/// first record it names that carries follow-ups ([`followup::carries`]), in its own change set.
/// A job opts in by adding its `job_id` here when it lands.
pub const FOLLOWUP_LINKS: &[&str] = &[fields::LEAD_ID, fields::CONTACT_ID];

fn activity() -> EntityDef {
    let mut e = EntityDef::new("activity", "activities")
        .field(F::new(fields::KIND, T::Enum).required().options(ACTIVITY_KINDS))
        .field(F::new(fields::DIRECTION, T::Enum).options(&["inbound", "outbound"]))
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
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(followup::fields::NEXT_FOLLOWUP_AT, T::Timestamp).since(followup::SINCE))
        .field(F::new(followup::fields::FOLLOWUP_OWNER_ID, T::Ref("user")).since(followup::SINCE));
    e.owner_field = Some("owner_id");
    e.team_field = Some("team_id");
    e.external_key = Some("external_id");
    e.custom_fields = true;
    e.rules = &ActivityRules;
    e.rescores = Some(fields::LEAD_ID);
    e.search_fields = &["subject", "body"];
    e.check = Some(activity_check);
    e.indexes = vec![&["lead_id", "occurred_at"], &["contact_id", "occurred_at"]];
    e
}

/// An activity belongs to a lead, a contact or a company; one that plans a follow-up names the
/// record it is for (a lead or a contact: companies carry none), and a follow-up owner comes with a
/// follow-up time.
fn activity_check(r: &Record, errs: &mut Vec<FieldError>) {
    let set = |f: &str| r.get(f).is_some_and(|v| !v.is_null());
    let (at, owner) = (
        set(followup::fields::NEXT_FOLLOWUP_AT),
        set(followup::fields::FOLLOWUP_OWNER_ID),
    );
    if owner && !at {
        errs.push(FieldError::new(
            followup::fields::NEXT_FOLLOWUP_AT,
            codes::REQUIRED,
            "a follow-up owner comes with the follow-up's time",
        ));
    }
    let linked = [fields::LEAD_ID, fields::CONTACT_ID, fields::COMPANY_ID]
        .iter()
        .any(|f| set(f));
    if !linked {
        errs.push(FieldError::new(
            fields::LEAD_ID,
            codes::REQUIRED,
            "an activity belongs to a lead, a contact or a company",
        ));
    } else if (at || owner) && !FOLLOWUP_LINKS.iter().any(|f| set(f)) {
        errs.push(FieldError::new(
            fields::LEAD_ID,
            codes::REQUIRED,
            "a follow-up is planned on the activity's lead or contact: name one",
        ));
    }
}

/// An activity may set the next follow-up of the record it is logged against
/// ([`FOLLOWUP_LINKS`]).
#[derive(Debug)]
pub struct ActivityRules;

impl super::EntityRules for ActivityRules {
    fn followup_links(&self) -> &'static [&'static str] {
        FOLLOWUP_LINKS
    }
}
