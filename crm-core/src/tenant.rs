//! Tenant settings that other rules read, and what a tenant has before it sets them.

use crate::entity::ORGANIZATION;
use crate::entity::people::org_fields;
use crate::record::Record;
use crate::validate;
use crate::value::{Timestamp, Value};

/// The country calling code for phones written without one, of a tenant that has not set it: the
/// organization declaration's default.
pub fn default_phone_country_code() -> String {
    ORGANIZATION
        .def(org_fields::PHONE_COUNTRY_CODE)
        .and_then(|f| f.default.as_ref())
        .and_then(Value::as_str)
        .unwrap_or("1")
        .to_owned()
}

/// The validation context (now, phone country code) of a tenant whose organization record is `org`
/// (`None`: a tenant with the default settings).
pub fn validation_ctx(now: Timestamp, org: Option<&Record>) -> validate::Ctx {
    let cc = org.and_then(|o| o.str(org_fields::PHONE_COUNTRY_CODE));
    validate::Ctx {
        today: crate::computed::local_date(now, &crate::computed::org_zone(org)),
        ..validation_ctx_with(now, cc)
    }
}

/// The validation context at `now` with a phone country code (the default when `None`), for a
/// tenant whose settings are not at hand: today is the UTC date.
pub fn validation_ctx_with(now: Timestamp, phone_country_code: Option<&str>) -> validate::Ctx {
    validate::Ctx {
        now,
        today: now.date(),
        phone_country_code: phone_country_code.map_or_else(default_phone_country_code, str::to_owned),
        source: validate::Source::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_default_is_the_organization_declarations() {
        assert_eq!(default_phone_country_code(), "1");
        let now = Timestamp(0);
        assert_eq!(validation_ctx(now, None).phone_country_code, "1");
        assert_eq!(validation_ctx_with(now, Some("44")).phone_country_code, "44");
        let mut org = Record::empty(&ORGANIZATION, crate::value::Id::nil(), crate::value::Id::nil(), now);
        org.set(org_fields::PHONE_COUNTRY_CODE, Value::Text("49".into()));
        assert_eq!(validation_ctx(now, Some(&org)).phone_country_code, "49");
    }
}
