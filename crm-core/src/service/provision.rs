//! Starting a device from a server, sans I/O: the server hands a signed-in user the records a
//! device needs before its first pull ([`Service::provision`]): the organization (its settings
//! drive validation, scoring and quotes), the user with its team, location and custom role, and
//! the tenant's custom field definitions (how pulled records' custom values decode). The device
//! writes them into its empty store ([`Service::apply_provision`]) and then pulls its snapshot as
//! that user. See `docs/sync.md` ("A new device").

use super::Service;
use crate::access::{Actor, builtin};
use crate::change::Write;
use crate::entity::{self, CUSTOM_FIELD, LOCATION, ORGANIZATION, ROLE, TEAM, USER};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::sync::{PROTOCOL, Provision, Pulled, SCHEMA_VERSION, provisioned_types};
use crate::validate::CustomSpecs;
use crate::value::Id;

/// Most custom field definitions a provision carries (the tenant's whole configuration of them).
const MAX_CUSTOM_FIELDS: u32 = 5000;

impl<S: Store> Service<S> {
    /// What a new device of `actor`'s user needs before its first pull. Only a signed-in user
    /// has a device (an API key or the system actor is refused): the records are the user's own
    /// configuration, sent whatever the role may read through the generic routes.
    pub async fn provision(&self, actor: &Actor) -> Result<Provision> {
        let user_id = actor
            .user_id
            .ok_or_else(|| Error::forbidden("provision", "user", vec![]))?;
        let tenant = actor.tenant;
        let mut records = vec![self.org(tenant).await?];
        let user = self
            .store
            .get(tenant, &USER, user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", user_id))?;
        let team = match user.id_of("team_id") {
            Some(id) => self.store.get(tenant, &TEAM, id).await?,
            None => None,
        };
        let mut locations: Vec<Id> = [
            user.id_of("location_id"),
            team.as_ref().and_then(|t| t.id_of("location_id")),
        ]
        .into_iter()
        .flatten()
        .collect();
        locations.dedup();
        for id in locations {
            records.extend(self.store.get(tenant, &LOCATION, id).await?);
        }
        records.extend(team);
        let role = user.str("role").unwrap_or_default();
        if builtin::by_name(role).is_none() {
            let q = StoreQuery::by_id(Filter::eq("name", role), 1);
            records.extend(self.store.query(tenant, &ROLE, &q).await?);
        }
        records.push(user);
        let q = StoreQuery::by_id(Filter::All, MAX_CUSTOM_FIELDS);
        records.extend(self.store.query(tenant, &CUSTOM_FIELD, &q).await?);
        Ok(Provision {
            protocol: PROTOCOL,
            schema_version: SCHEMA_VERSION,
            tenant,
            user: user_id,
            records: records
                .into_iter()
                .map(|r| Pulled {
                    entity: r.entity.name.to_owned(),
                    record: r.to_json(),
                })
                .collect(),
        })
    }

    /// Writes a [`Service::provision`] into this device's store, in one change set the sync log
    /// leaves out (the records are the server's), and returns the device user's actor. Records
    /// the device holds already are replaced, so provisioning again refreshes the configuration.
    /// A record that does not decode, or one of a type a provision does not carry, refuses the
    /// whole provision (validation errors on `records[i]`), changing nothing.
    pub async fn apply_provision(&self, p: &Provision) -> Result<Actor> {
        if p.protocol != PROTOCOL {
            return Err(Error::field(
                "protocol",
                codes::INVALID_OPTION,
                format!("this build reads provisions of protocol {PROTOCOL}"),
            ));
        }
        let tenant = p.tenant;
        // None of the carried types takes custom fields, so none is read from the records.
        let none = CustomSpecs::new();
        let mut records = Vec::new();
        let mut errs = Vec::new();
        for (i, r) in p.records.iter().enumerate() {
            let def = entity::entity(&r.entity).filter(|d| provisioned_types().iter().any(|c| c.name == d.name));
            match def.and_then(|d| Record::from_json(d, tenant, &r.record, &none)) {
                Some(rec) => records.push(rec),
                None => errs.push(FieldError::new(
                    format!("records[{i}]"),
                    codes::INVALID_FORMAT,
                    format!("not a {} record a provision carries", r.entity),
                )),
            }
        }
        if !records.iter().any(|r| r.entity.name == USER.name && r.id == p.user) {
            errs.push(FieldError::new(
                "user",
                codes::REQUIRED,
                "the provision carries no record of its user",
            ));
        }
        if !records
            .iter()
            .any(|r| r.entity.name == ORGANIZATION.name && r.id == tenant)
        {
            errs.push(FieldError::new(
                "tenant",
                codes::REQUIRED,
                "the provision carries no record of its organization",
            ));
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut cs = self.change_set(tenant, Some(p.user));
        cs.received = true;
        for rec in records {
            cs.writes.push(match self.store.get(tenant, rec.entity, rec.id).await? {
                None => Write::Insert(rec),
                Some(local) => Write::Update {
                    expected_version: local.version,
                    record: rec,
                },
            });
        }
        self.apply(cs).await?;
        self.actor(tenant, p.user).await
    }
}
