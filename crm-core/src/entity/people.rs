//! Tenancy and people: the organization (the tenant itself), its locations, teams and users.

use super::{EntityRules, Need, WriteCtx, address, declare};
use crate::access::builtin;
use crate::error::{Error, Result, codes};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::{FieldType as T, Value};

declare!(ORGANIZATION, organization);
declare!(LOCATION, location);
declare!(TEAM, team);
declare!(USER, user);

/// The tenant's settings other rules read.
pub mod org_fields {
    pub const PHONE_COUNTRY_CODE: &str = "phone_country_code";
    pub const MEMBERSHIP_EXPIRING_DAYS: &str = "membership_expiring_days";
    pub const TIMEZONE: &str = "timezone";
    /// Quotes: `per_line` or `per_document` (see `quote::totals`).
    pub const QUOTE_ROUNDING: &str = "quote_rounding";
    /// Quotes: `half_up` or `half_even`.
    pub const QUOTE_ROUNDING_MODE: &str = "quote_rounding_mode";
    /// Quotes: unit prices include tax.
    pub const PRICES_INCLUDE_TAX: &str = "prices_include_tax";
    /// Quotes: the approval levels (see `quote::approval`).
    pub const QUOTE_APPROVAL_RULES: &str = "quote_approval_rules";
    /// Memberships: a freeze moves the end date by the days it covers (default true).
    pub const MEMBERSHIP_FREEZE_EXTENDS: &str = "membership_freeze_extends";
    /// Check-in policy (`allow`, `warn` or `refuse`; see `check_in::Policy`): an expired membership.
    pub const CHECK_IN_EXPIRED: &str = "check_in_expired";
    /// A frozen membership.
    pub const CHECK_IN_FROZEN: &str = "check_in_frozen";
    /// No membership running today (none at all, only upcoming ones, or cancelled).
    pub const CHECK_IN_NO_MEMBERSHIP: &str = "check_in_no_membership";
    /// The plan's visit allowance is used up.
    pub const CHECK_IN_VISITS_USED_UP: &str = "check_in_visits_used_up";
    /// Refused check-ins are recorded (as check-ins with outcome `refused`).
    pub const LOG_REFUSED_CHECK_INS: &str = "log_refused_check_ins";
    /// Attachments: most bytes of one file (see `attachment`).
    pub const ATTACHMENT_MAX_BYTES: &str = super::super::attachment::MAX_BYTES_SETTING;
}

fn organization() -> EntityDef {
    let mut e = EntityDef::new("organization", "organizations")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("currency", T::Text).max_len(3).default("USD"))
        .field(F::new(org_fields::TIMEZONE, T::Text).max_len(64).default("UTC"))
        .field(F::new(org_fields::PHONE_COUNTRY_CODE, T::Text).max_len(4).default("1"))
        .field(
            F::new(org_fields::MEMBERSHIP_EXPIRING_DAYS, T::Integer)
                .range(Some(1), Some(365))
                .default(14i64),
        )
        .field(
            F::new(org_fields::QUOTE_ROUNDING, T::Enum)
                .options(super::quote::totals::RoundingLevel::KEYS)
                .default("per_line")
                .since(5),
        )
        .field(
            F::new(org_fields::QUOTE_ROUNDING_MODE, T::Enum)
                .options(&["half_up", "half_even"])
                .default("half_up")
                .since(5),
        )
        .field(F::new(org_fields::PRICES_INCLUDE_TAX, T::Bool).default(false).since(5))
        .field(F::new(org_fields::QUOTE_APPROVAL_RULES, T::Json).since(5))
        .field(
            F::new(org_fields::MEMBERSHIP_FREEZE_EXTENDS, T::Bool)
                .default(true)
                .since(7),
        );
    for (field, default) in super::check_in::POLICY_DEFAULTS {
        e = e.field(
            F::new(field, T::Enum)
                .options(super::check_in::Policy::KEYS)
                .default(default.key())
                .since(7),
        );
    }
    e = e.field(
        F::new(org_fields::LOG_REFUSED_CHECK_INS, T::Bool)
            .default(true)
            .since(7),
    );
    e = e.field(F::new(super::lead::STAGE_PROBABILITIES, T::Json).since(8));
    e = e.field(
        F::new(super::lead::UNTOUCHED_HOURS, T::Integer)
            .range(Some(1), Some(24 * 30))
            .default(super::lead::DEFAULT_UNTOUCHED_HOURS)
            .since(super::followup::SINCE),
    );
    e = e.field(
        F::new(super::appointment::OVERLAP_POLICY, T::Enum)
            .options(super::appointment::OverlapPolicy::KEYS)
            .default(super::appointment::OverlapPolicy::Refuse.key())
            .since(super::appointment::SINCE),
    );
    e = e.field(
        F::new(super::appointment::REMINDER_MINUTES, T::Integer)
            .range(Some(0), Some(7 * 24 * 60))
            .default(super::appointment::DEFAULT_REMINDER_MINUTES)
            .since(super::appointment::SINCE),
    );
    e = e.field(
        F::new(super::attachment::MAX_BYTES_SETTING, T::Integer)
            .range(Some(1), Some(super::attachment::MAX_MAX_BYTES))
            .default(super::attachment::DEFAULT_MAX_BYTES)
            .since(super::attachment::SINCE),
    );
    e.check = Some(check_settings);
    // A tenant is created by the platform's own use case (`Service::create_organization`).
    e.exposure = Exposure::Managed;
    // Computed fields read its settings (time zone, windows).
    e.feeds_computed = true;
    e
}

/// The organization's cross-field checks: the time zone, quote settings and stage probabilities.
fn check_settings(r: &Record, errs: &mut Vec<crate::error::FieldError>) {
    // The tenant's day (follow-ups due today) is cut in this zone: it must be one the zone
    // database knows.
    if let Some(tz) = r.str(org_fields::TIMEZONE)
        && crate::computed::time_zone(tz).is_none()
    {
        errs.push(crate::error::FieldError::new(
            org_fields::TIMEZONE,
            crate::error::codes::INVALID_OPTION,
            "must be an IANA time zone name such as America/Denver or UTC",
        ));
    }
    super::quote::check_settings(r, errs);
    super::lead::check_stage_probabilities(r, errs);
}

fn location() -> EntityDef {
    let mut e = address(
        EntityDef::new("location", "locations")
            .field(F::new("name", T::Text).required().max_len(200))
            .field(F::new("phone", T::Phone)),
    )
    .field(F::new("timezone", T::Text).max_len(64));
    e.search_fields = &["name", "city"];
    e
}

fn team() -> EntityDef {
    let mut e = EntityDef::new("team", "teams")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(
            F::new("kind", T::Enum)
                .options(&["sales", "crew", "support", "other"])
                .default("sales"),
        )
        .field(F::new("location_id", T::Ref("location")));
    e.search_fields = &["name"];
    e
}

/// Field names of a user.
pub mod user_fields {
    pub const EMAIL: &str = "email";
    pub const ROLE: &str = "role";
    pub const TEAM_ID: &str = "team_id";
    pub const ACTIVE: &str = "active";
}

fn user() -> EntityDef {
    let mut e = EntityDef::new("user", "users")
        .field(F::new(user_fields::EMAIL, T::Email).required().unique())
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new(user_fields::ROLE, T::Text).required().max_len(64))
        .field(F::new(user_fields::TEAM_ID, T::Ref("team")))
        .field(F::new("location_id", T::Ref("location")))
        .field(F::new("phone", T::Phone))
        .field(F::new(user_fields::ACTIVE, T::Bool).default(true));
    e.resolves_callers = true;
    e.team_field = Some(user_fields::TEAM_ID);
    e.search_fields = &["name", "email"];
    e.rules = &UserRules;
    e
}

/// The role that manages a tenant; a tenant always keeps at least one active user with it.
pub const ADMIN_ROLE: &str = "admin";

/// The role of a user created without one: the platform (the system actor, which creates a tenant's
/// first users) makes admins; anyone else must name the role (`None`: the role stays required).
pub fn default_user_role(actor: &crate::access::Actor) -> Option<&'static str> {
    actor.user_id.is_none().then_some(ADMIN_ROLE)
}

fn is_active_admin(rec: &Record) -> bool {
    rec.str(user_fields::ROLE) == Some(ADMIN_ROLE) && rec.get(user_fields::ACTIVE) != Some(&Value::Bool(false))
}

/// Refuses a write that takes away the tenant's last active admin (`rec` no longer is one).
fn last_admin_stays(rec: &Record, ctx: &WriteCtx, field: &str) -> Result<()> {
    if ctx.active_admins.as_slice() == [rec.id] {
        return Err(Error::field(
            field,
            codes::LAST_ADMIN,
            "the tenant's last active admin stays an active admin: make another user admin first",
        ));
    }
    Ok(())
}

/// A user's role is a built-in role or one of the tenant's, and the tenant keeps an active admin.
#[derive(Debug)]
pub struct UserRules;

impl EntityRules for UserRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::Roles, Need::ActiveAdmins]
    }

    fn check_tenant_rules(&self, rec: &Record, touched: &dyn Fn(&str) -> bool, ctx: &WriteCtx) -> Result<()> {
        if (touched(user_fields::ROLE) || touched(user_fields::ACTIVE)) && !is_active_admin(rec) {
            let field = if rec.get(user_fields::ACTIVE) == Some(&Value::Bool(false)) {
                user_fields::ACTIVE
            } else {
                user_fields::ROLE
            };
            last_admin_stays(rec, ctx, field)?;
        }
        if !touched(user_fields::ROLE) {
            return Ok(());
        }
        let role = rec.str(user_fields::ROLE).unwrap_or_default();
        if builtin::by_name(role).is_none() && !ctx.roles.iter().any(|r| r == role) {
            return Err(Error::field(
                user_fields::ROLE,
                codes::UNKNOWN_REFERENCE,
                format!("no role {role}"),
            ));
        }
        Ok(())
    }

    fn delete_needs(&self) -> &'static [Need] {
        &[Need::ActiveAdmins]
    }

    fn check_delete(&self, rec: &Record, ctx: &WriteCtx) -> Result<()> {
        last_admin_stays(rec, ctx, "id")
    }
}
