//! Customers: contacts (people) and companies, with address, segment, tags, external ids and a lifetime
//! value derived by the core.

use super::membership::{client, status};
use super::{address, declare, followup, scoped};
use crate::computed::ComputedDef;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::FieldType as T;

declare!(CONTACT, contact);
declare!(COMPANY, company);

pub const CUSTOMER_TYPES: &[&str] = &["residential", "commercial"];

/// Derived: what the customer has brought in (accepted quotes and completed jobs, as those land).
pub const LIFETIME_VALUE: &str = "lifetime_value";

fn customer(e: EntityDef) -> EntityDef {
    address(e)
        .field(F::new("email", T::Email))
        .field(F::new("phone", T::Phone))
        .field(F::new("language", T::Text).max_len(10))
        .field(F::new("customer_type", T::Enum).options(CUSTOMER_TYPES))
        .field(F::new("segment", T::Text).max_len(100))
        .field(F::new("notes", T::Text).max_len(10_000))
        .field(F::new("tags", T::Tags))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("location_id", T::Ref("location")))
        .field(F::new(LIFETIME_VALUE, T::Money).derived())
}

fn company() -> EntityDef {
    let mut e = customer(
        EntityDef::new("company", "companies")
            .field(F::new("name", T::Text).required().max_len(200))
            .field(F::new("website", T::Url))
            .field(F::new("industry", T::Text).max_len(100)),
    );
    scoped(&mut e);
    e.search_fields = &["name", "email", "website"];
    e.attachments = Some(Default::default());
    e
}

fn contact() -> EntityDef {
    let mut e = customer(
        EntityDef::new("contact", "contacts")
            .field(F::new("first_name", T::Text).required().max_len(100))
            .field(F::new("last_name", T::Text).max_len(100))
            .field(F::new("company_id", T::Ref("company")))
            .field(F::new("source_lead_id", T::Ref("lead")).read_only())
            .field(F::new("birth_date", T::Date).past()),
    );
    // The client's membership standing, mirrored by the memberships' rollup (see
    // `membership::client`), and their status computed from it.
    for f in [client::mirror::STARTS_ON, client::mirror::ENDS_ON] {
        e = e.field(F::new(f, T::Date).derived().since(7));
    }
    e = e.field(F::new(client::mirror::CANCELLED, T::Bool).derived().since(7));
    for f in [client::mirror::FROZEN_FROM, client::mirror::FROZEN_TO] {
        e = e.field(F::new(f, T::Date).derived().since(7));
    }
    let mut e = followup::declare(e);
    scoped(&mut e);
    e.search_fields = &["first_name", "last_name", "email", "phone"];
    e.indexes.push(&[client::mirror::ENDS_ON]);
    e.computed.push(ComputedDef {
        name: client::mirror::STATUS,
        options: status::CLIENT_STATUSES,
        eval: |r, cx| status::eval_key(r, &client::COLUMNS, cx),
        expand: |option, cx| status::expand_key(option, &client::COLUMNS, cx),
        sort_by: &[client::mirror::ENDS_ON],
    });
    e.attachments = Some(Default::default());
    e
}
