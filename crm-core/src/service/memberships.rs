//! Membership use cases beyond CRUD: renewing and freezing a membership, and the owner's numbers.
//! Renewal and freeze are composed of the generic create (of a membership, of a freeze child), so
//! every rule of those writes (validation, the client's standing, the freeze policy) applies.

use super::Service;
use crate::access::{Action, Actor};
use crate::analytics::memberships::{self as numbers, MembershipNumbers};
use crate::computed::ComputeCtx;
use crate::entity::membership::{self, MembershipStatus, client, fields as m, status};
use crate::entity::plan::fields as p;
use crate::entity::{CHECK_IN, CONTACT, MEMBERSHIP, MEMBERSHIP_FREEZE, PLAN};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, ListRequest, Op};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Value};
use serde_json::{Map, Value as Json};

/// What a renewal's input may set.
pub const RENEW_ACCEPTS: &[&str] = &[m::PLAN_ID, m::PRICE_PAID, m::NOTES];
/// What a freeze's input may set (the freeze's own fields).
pub const FREEZE_ACCEPTS: &[&str] = &[m::STARTS_ON, m::ENDS_ON, m::REASON];

fn only(input: &Map<String, Json>, accepts: &[&str], what: &str) -> Result<()> {
    let unknown: Vec<FieldError> = input
        .keys()
        .filter(|k| !accepts.contains(&k.as_str()))
        .map(|k| FieldError::new(k, codes::UNKNOWN_FIELD, format!("{what} does not take {k}")))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(unknown))
    }
}

impl<S: Store> Service<S> {
    /// Renews the membership `id` at `expected_version` (HTTP: `POST /memberships/{id}/renew`): a new
    /// membership of the same client continuing from its end date (or from today when that has
    /// passed) for the plan's `duration_days` (`plan_id` in the input switches plans; without a plan,
    /// as long as the membership ran without its freezes), at the plan's price unless `price_paid`
    /// says otherwise. Needs `create` on memberships and read access to the original; a cancelled
    /// membership is not renewed. Returns the new membership.
    pub async fn renew_membership(
        &self,
        actor: &Actor,
        id: Id,
        expected_version: u64,
        input: &Map<String, Json>,
    ) -> Result<Record> {
        only(input, RENEW_ACCEPTS, "renew")?;
        actor.authorize(&MEMBERSHIP, Action::Create)?;
        let cur = self.visible(actor, &MEMBERSHIP, id).await?;
        super::expect_version(&cur, expected_version)?;
        if cur.get(m::CANCELLED) == Some(&Value::Bool(true)) {
            return Err(Error::field(
                m::STATUS,
                codes::INVALID_TRANSITION,
                "a cancelled membership is not renewed",
            ));
        }
        let plan_id = match input.get(m::PLAN_ID) {
            Some(Json::String(s)) => Some(
                crate::value::parse_id(s)
                    .ok_or_else(|| Error::field(m::PLAN_ID, codes::INVALID_FORMAT, "not an id"))?,
            ),
            Some(Json::Null) | None => cur.id_of(m::PLAN_ID),
            Some(_) => return Err(Error::field(m::PLAN_ID, codes::INVALID_TYPE, "expected an id")),
        };
        let plan = match plan_id {
            Some(pid) => Some(
                self.store
                    .get(actor.tenant, &PLAN, pid)
                    .await?
                    .ok_or_else(|| Error::field(m::PLAN_ID, codes::UNKNOWN_REFERENCE, "no plan with this id"))?,
            ),
            None => None,
        };
        let duration = plan
            .as_ref()
            .and_then(|p| p.get(p::DURATION_DAYS))
            .and_then(Value::as_i64);
        let today = ComputeCtx::new(self.clock.now(), Some(self.org(actor.tenant).await?)).today();
        let (starts, ends) = membership::renewal_dates(&cur, duration, today)
            .ok_or_else(|| Error::field(m::ENDS_ON, codes::REQUIRED, "the membership has no dates"))?;
        let mut new = Map::new();
        let id_json = |i: Id| Json::String(i.to_string());
        if let Some(c) = cur.id_of(m::CONTACT_ID) {
            new.insert(m::CONTACT_ID.into(), id_json(c));
        }
        if let Some(pid) = plan_id {
            new.insert(m::PLAN_ID.into(), id_json(pid));
        }
        let plan_name = plan.as_ref().and_then(|p| p.str(p::NAME)).or(cur.str(m::PLAN_NAME));
        if let Some(name) = plan_name {
            new.insert(m::PLAN_NAME.into(), name.into());
        }
        new.insert(m::STARTS_ON.into(), starts.to_string().into());
        new.insert(m::ENDS_ON.into(), ends.to_string().into());
        let price = plan.as_ref().and_then(|p| p.get(p::PRICE)).cloned();
        if let Some(Value::Money(price)) = price {
            new.insert(m::PRICE_PAID.into(), price.to_string().into());
        }
        for (k, v) in input {
            if k != m::PLAN_ID {
                new.insert(k.clone(), v.clone());
            }
        }
        let (rec, cs) = self.prepare_create(actor, &MEMBERSHIP, &new).await?;
        self.apply(cs).await?;
        self.present(actor, rec).await
    }

    /// Freezes the membership `id` at `expected_version` from `starts_on` to `ends_on` (with an
    /// optional `reason`; HTTP: `POST /memberships/{id}/freeze`): a freeze child written with its
    /// membership, which moves the end date when the tenant's `membership_freeze_extends` says so.
    /// Needs write access to every field of the membership (as any freeze write); an expired or
    /// cancelled membership is not frozen, nor one that already has a freeze that has not ended.
    /// Returns the membership after the freeze.
    pub async fn freeze_membership(
        &self,
        actor: &Actor,
        id: Id,
        expected_version: u64,
        input: &Map<String, Json>,
    ) -> Result<Record> {
        only(input, FREEZE_ACCEPTS, "freeze")?;
        let cur = self.visible(actor, &MEMBERSHIP, id).await?;
        super::expect_version(&cur, expected_version)?;
        let cx = ComputeCtx::new(self.clock.now(), Some(self.org(actor.tenant).await?));
        let state = membership::status(&cur, &cx);
        if matches!(state, MembershipStatus::Expired | MembershipStatus::Cancelled) {
            return Err(Error::field(
                m::STATUS,
                codes::INVALID_TRANSITION,
                format!("cannot freeze a membership that is {}", state.key()),
            ));
        }
        let mut child = input.clone();
        child.insert(m::MEMBERSHIP_ID.into(), Json::String(id.to_string()));
        let (_, cs) = self.prepare_create(actor, &MEMBERSHIP_FREEZE, &child).await?;
        self.apply(cs).await?;
        let after = self.visible(actor, &MEMBERSHIP, id).await?;
        self.present(actor, after).await
    }

    /// The owner's numbers as of the day `as_of` (the tenant's today when `None`; days and hours are
    /// the tenant's time zone's;
    /// see [`MembershipNumbers`]), over the clients, memberships and check-ins the actor may read
    /// (needs read access to each).
    pub async fn membership_numbers(&self, actor: &Actor, as_of: Option<time::Date>) -> Result<MembershipNumbers> {
        let contact_scope = actor.authorize(&CONTACT, Action::Read)?;
        actor.authorize(&MEMBERSHIP, Action::Read)?;
        actor.authorize(&CHECK_IN, Action::Read)?;
        let org = self.org(actor.tenant).await?;
        let as_of = as_of.unwrap_or_else(|| ComputeCtx::new(self.clock.now(), Some(org.clone())).today());
        let cx = ComputeCtx::on_date(as_of, Some(org));
        let zone = cx.time_zone();
        let start_of = |d: time::Date| crate::computed::day_start(d, &zone);
        let in_scope = actor.scope_filter(&CONTACT, contact_scope);
        let count = async |f: Filter| {
            self.store
                .count(actor.tenant, &CONTACT, &Filter::and([f, in_scope.clone()]))
                .await
        };
        let members = [
            MembershipStatus::Active,
            MembershipStatus::Expiring,
            MembershipStatus::Frozen,
        ]
        .map(|s| status::expand(Some(s), &client::COLUMNS, &cx));
        let active_members = count(Filter::Or(members.to_vec())).await?;
        let expiring_7_days = count(status::ends_within(&client::COLUMNS, &cx, 7)).await?;
        let expiring_30_days = count(status::ends_within(&client::COLUMNS, &cx, 30)).await?;

        let memberships = self.read_all(actor, MEMBERSHIP.name, None).await?;
        let since = as_of.saturating_sub(time::Duration::days(numbers::DAYS.max(numbers::WEEKS * 7)));
        let window = Filter::and([
            Filter::cmp("at", Op::Ge, start_of(since)),
            Filter::cmp("at", Op::Lt, start_of(as_of.next_day().unwrap_or(as_of))),
        ]);
        let check_ins = self.read_all(actor, CHECK_IN.name, Some(window)).await?;
        let (check_ins_per_day, check_ins_by_hour) = numbers::check_ins(&check_ins, as_of, &zone);
        Ok(MembershipNumbers {
            as_of: as_of.to_string(),
            active_members,
            expiring_7_days,
            expiring_30_days,
            months: numbers::months(&memberships, as_of),
            check_ins_per_day,
            check_ins_by_hour,
        })
    }

    /// Every record of a type the actor may read (matching `filter`), page by page.
    async fn read_all(&self, actor: &Actor, entity: &str, filter: Option<Filter>) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut req = ListRequest {
            filter,
            limit: Some(crate::query::MAX_BULK_PAGE_SIZE),
            ..Default::default()
        };
        loop {
            let page = self.list_bulk(actor, entity, &req).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
