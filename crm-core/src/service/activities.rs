//! Logging activities and checking in: what an activity defaults to, and what a check-in is.

use super::Service;
use crate::access::Actor;
use crate::entity::ActivityKind;
use crate::entity::activity::fields;
use crate::error::Result;
use crate::record::Record;
use crate::store::Store;
use crate::value::Id;
use serde_json::{Map, Value as Json};

/// A check-in: the acting user is at a lead, a contact or a company now. At least one of them is
/// required (like any activity's link).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckIn {
    pub lead_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub company_id: Option<Id>,
    /// A note on the visit (the activity's body).
    pub note: Option<String>,
}

/// What a check-in recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedIn {
    /// The `check_in` activity (its lead is re-scored).
    pub activity: Record,
}

impl<S: Store> Service<S> {
    /// Logs an activity (call, email, meeting, note, SMS, visit, check-in) and re-scores its lead.
    /// `occurred_at` defaults to now (the service's clock). `kind` has no default: what happened is
    /// the caller's to say (a guessed kind would count in scoring as if it had happened).
    pub async fn log_activity(&self, actor: &Actor, input: &Map<String, Json>) -> Result<Record> {
        // The `occurred_at` default is the declaration's (`default_now`), so every create path has it.
        self.create(actor, crate::entity::ACTIVITY.name, input).await
    }

    /// Checks the acting user in at a lead, contact or company now (a visit in the field): a
    /// `check_in` activity, owned by the user, with the note as its body. (A client checking in at
    /// the front desk is [`Service::check_in`].)
    pub async fn check_in_visit(&self, actor: &Actor, input: &CheckIn) -> Result<CheckedIn> {
        let mut m = Map::new();
        m.insert(fields::KIND.into(), ActivityKind::CheckIn.key().into());
        let links = [
            (fields::LEAD_ID, input.lead_id),
            (fields::CONTACT_ID, input.contact_id),
            (fields::COMPANY_ID, input.company_id),
        ];
        for (field, id) in links {
            if let Some(id) = id {
                m.insert(field.into(), Json::String(id.to_string()));
            }
        }
        if let Some(note) = &input.note {
            m.insert("body".into(), Json::String(note.clone()));
        }
        let activity = self.log_activity(actor, &m).await?;
        Ok(CheckedIn { activity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{Fixture, NOW, block, obj};
    use crate::memory::MemoryStore;
    use crate::value::Value;
    use serde_json::json;

    #[test]
    fn occurred_at_defaults_to_the_service_clock_and_kind_is_required() {
        let f = Fixture::new(MemoryStore::new());
        let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
        let input = obj(json!({"kind": "call", "lead_id": lead.id.to_string()}));
        let a = block(f.svc.log_activity(&f.sales_a, &input)).unwrap();
        assert_eq!(a.get("occurred_at").and_then(Value::as_timestamp), Some(NOW));
        let given = NOW.plus_days(-2);
        let input = obj(json!({"kind": "call", "lead_id": lead.id.to_string(), "occurred_at": given.to_rfc3339()}));
        let a = block(f.svc.log_activity(&f.sales_a, &input)).unwrap();
        assert_eq!(a.get("occurred_at").and_then(Value::as_timestamp), Some(given));

        let e = block(
            f.svc
                .log_activity(&f.sales_a, &obj(json!({"lead_id": lead.id.to_string()}))),
        )
        .unwrap_err();
        assert_eq!(e.field_errors()[0].path, "kind", "no kind is invented");
    }

    #[test]
    fn a_check_in_is_a_check_in_activity_now_by_the_user() {
        let f = Fixture::new(MemoryStore::new());
        let lead = f.lead(&f.sales_a, json!({"first_name": "Ann"}));
        let input = CheckIn {
            lead_id: Some(lead.id),
            note: Some("on site".into()),
            ..Default::default()
        };
        let done = block(f.svc.check_in_visit(&f.sales_a, &input)).unwrap();
        let a = &done.activity;
        assert_eq!(a.str("kind"), Some("check_in"));
        assert_eq!(a.str("body"), Some("on site"));
        assert_eq!(a.get("occurred_at").and_then(Value::as_timestamp), Some(NOW));
        assert_eq!(
            (a.id_of("lead_id"), a.id_of("owner_id")),
            (Some(lead.id), f.sales_a.user_id)
        );

        let e = block(f.svc.check_in_visit(&f.sales_a, &CheckIn::default())).unwrap_err();
        assert_eq!(e.code(), "validation", "a check-in is somewhere");
    }
}
