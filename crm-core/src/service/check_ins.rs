//! Checking a client in at the front desk or a kiosk: find the client by id or card number, read
//! their current membership, let the tenant's policy decide ([`crate::entity::check_in::decide`]),
//! and record the check-in (a refused one only when the policy logs refusals).

use super::Service;
use crate::access::{Action, Actor};
use crate::computed::ComputeCtx;
use crate::entity::check_in::{self, Outcome, fields as c};
use crate::entity::membership::{client, fields as m};
use crate::entity::people::org_fields;
use crate::entity::plan::fields as p;
use crate::entity::{CHECK_IN, CONTACT, MEMBERSHIP, PLAN};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use serde::{Deserialize, Serialize};

/// Most memberships of one client a check-in reads.
const MAX_MEMBERSHIPS: u32 = 10_000;

/// Who is checking in: exactly one of the client's id or their card number (the contact's
/// `external_id`), and optionally where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<Id>,
}

/// What the desk is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInAnswer {
    /// `allowed`, `warned` or `refused`.
    pub outcome: String,
    /// Why (a warning or a refusal), or a note for the desk (an expiring membership's end date).
    pub reason: Option<String>,
    pub contact_id: Id,
    /// The client's name (first and last).
    pub name: String,
    /// The client's current membership: the running one, else the next, else the last.
    pub membership_id: Option<Id>,
    /// The client's status (`none`, `upcoming`, `active`, `expiring`, `expired`, `frozen`,
    /// `cancelled`).
    pub status: String,
    /// The last day of the client's membership run (renewals included), `YYYY-MM-DD`.
    pub ends_on: Option<String>,
    /// Visits left on the current membership's plan allowance after this check-in (`None`:
    /// unlimited or no membership).
    pub visits_left: Option<i64>,
    /// The check-in recorded, if one was.
    pub check_in_id: Option<Id>,
    pub at: Timestamp,
}

impl<S: Store> Service<S> {
    /// Checks a client in (see [`CheckInInput`]): needs `create` on check-ins, and the client in the
    /// actor's read scope of contacts (else `NotFound`, as for an unknown id or card). The tenant's
    /// policy decides the outcome from the client's status and visits left. An allowed or warned
    /// check-in is recorded with the time, the acting user and role, the location, the outcome and
    /// the reason, and uses a visit of the membership; a refused one writes nothing unless the
    /// tenant's `log_refused_check_ins` records it.
    pub async fn check_in(&self, actor: &Actor, input: &CheckInInput) -> Result<CheckInAnswer> {
        actor.authorize(&CHECK_IN, Action::Create)?;
        let contact = self.check_in_client(actor, input).await?;
        let now = self.clock.now();
        let org = self.org(actor.tenant).await?;
        let cx = ComputeCtx::new(now, Some(org));
        let q = StoreQuery::by_ref(
            &MEMBERSHIP,
            m::CONTACT_ID,
            Filter::eq(m::CONTACT_ID, contact.id),
            MAX_MEMBERSHIPS,
        );
        let mut memberships = self.store.query(actor.tenant, &MEMBERSHIP, &q).await?;
        memberships.sort_by_key(|r| r.id);
        let current = client::current(&memberships, &cx);
        let status = client::status_of(&contact, &cx);
        let ends_on = match contact.get(client::mirror::ENDS_ON) {
            Some(Value::Date(d)) => Some(*d),
            _ => None,
        };
        let mut visits_left = None;
        if let Some(plan_id) = current.and_then(|cur| cur.id_of(m::PLAN_ID))
            && let Some(plan) = self.store.get(actor.tenant, &PLAN, plan_id).await?
            && let Some(allowance) = plan.get(p::VISIT_ALLOWANCE).and_then(Value::as_i64)
        {
            let used = current
                .and_then(|cur| cur.get(m::VISITS_USED))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            visits_left = Some(allowance - used);
        }
        let decision = check_in::decide(status, ends_on, visits_left, cx.org.as_deref());
        let log = decision.outcome != Outcome::Refused
            || cx.org.as_deref().and_then(|o| o.get(org_fields::LOG_REFUSED_CHECK_INS)) != Some(&Value::Bool(false));
        let mut check_in_id = None;
        if log {
            let mut rec = Record::empty(&CHECK_IN, actor.tenant, self.ids.new_id(now), now);
            rec.set(c::CONTACT_ID, contact.id);
            rec.set(c::MEMBERSHIP_ID, current.map(|cur| cur.id));
            rec.set(c::AT, now);
            rec.set(c::CHECKED_IN_BY, actor.user_id);
            rec.set(c::CHECKED_IN_AS, actor.role.name.as_str());
            rec.set(c::API_KEY_ID, actor.api_key_id.map(|k| k.to_string()));
            rec.set(c::LOCATION_ID, input.location_id);
            rec.set(c::OUTCOME, decision.outcome.key());
            rec.set(c::REASON, decision.reason.clone());
            rec.set(c::MEMBERSHIP_STATUS, client::status_name(status));
            self.check_links(actor, &rec, None).await?;
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            self.push_change(actor, "create", "check_in.created", None, &rec, &mut cs);
            self.rollups_into(actor, None, Some(&rec), &mut cs).await?;
            self.apply(cs).await?;
            check_in_id = Some(rec.id);
            if check_in::counts_as_visit(&rec) {
                visits_left = visits_left.map(|n| n - 1);
            }
        }
        let name = [contact.str("first_name"), contact.str("last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(CheckInAnswer {
            outcome: decision.outcome.key().to_owned(),
            reason: decision.reason,
            contact_id: contact.id,
            name,
            membership_id: current.map(|cur| cur.id),
            status: client::status_name(status).to_owned(),
            ends_on: ends_on.map(|d| d.to_string()),
            visits_left,
            check_in_id,
            at: now,
        })
    }

    /// The client a check-in names, in the actor's read scope of contacts.
    async fn check_in_client(&self, actor: &Actor, input: &CheckInInput) -> Result<Record> {
        let card = input.card.as_deref().map(str::trim);
        match (input.contact_id, card) {
            (Some(id), None) => self.visible(actor, &CONTACT, id).await,
            (None, Some(card)) if !card.is_empty() => {
                let scope = actor.authorize(&CONTACT, Action::Read)?;
                let q = StoreQuery::by_id(
                    Filter::and([Filter::eq("external_id", card), actor.scope_filter(&CONTACT, scope)]),
                    1,
                );
                let found = self.store.query(actor.tenant, &CONTACT, &q).await?.into_iter().next();
                found.ok_or_else(|| Error::not_found("contact", card))
            }
            (Some(_), Some(_)) => Err(Error::Validation(vec![FieldError::new(
                "card",
                codes::INVALID_FORMAT,
                "a check-in names the client by id or by card, not both",
            )])),
            _ => Err(Error::Validation(vec![FieldError::new(
                "contact_id",
                codes::REQUIRED,
                "a check-in names the client by id or by card",
            )])),
        }
    }
}
