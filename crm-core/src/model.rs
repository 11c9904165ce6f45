//! The built-in entity types, declared. To add an entity type (quotes, jobs, appointments, memberships),
//! write one `fn` here returning its [`EntityDef`], list it in [`ALL`], and grant it in the built-in roles
//! (`access::builtin`); the SQL schema, migrations, validation, queries, import/export and audit follow.

use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::{FieldType as T, Value};
use std::sync::LazyLock;

macro_rules! entity {
    ($stat:ident, $f:ident) => {
        pub static $stat: LazyLock<EntityDef> = LazyLock::new($f);
    };
}

entity!(ORGANIZATION, organization);
entity!(LOCATION, location);
entity!(TEAM, team);
entity!(USER, user);
entity!(CONTACT, contact);
entity!(COMPANY, company);
entity!(LEAD, lead);
entity!(ACTIVITY, activity);
entity!(CUSTOM_FIELD, custom_field);
entity!(PIPELINE, pipeline);
entity!(SCORING_MODEL, scoring_model);
entity!(ROLE, role);
entity!(CREDENTIAL, credential);
entity!(SESSION, session);
entity!(API_KEY, api_key);
entity!(WEBHOOK, webhook);

/// Every entity type, in dependency order (referenced types first).
pub fn all() -> [&'static EntityDef; 16] {
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
    ]
}

/// Looks an entity type up by its API name (`lead`) or table name (`leads`).
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    all().into_iter().find(|e| e.name == name || e.table == name)
}

pub const LEAD_SOURCES: &[&str] = &[
    "website",
    "referral",
    "google_ads",
    "facebook",
    "door_knock",
    "storm_canvass",
    "home_show",
    "phone_in",
    "yard_sign",
    "partner",
    "walk_in",
    "other",
];
pub const PROJECT_TYPES: &[&str] = &[
    "roof_replacement",
    "roof_repair",
    "roof_inspection",
    "storm_damage",
    "gutters",
    "siding",
    "windows",
    "commercial_roofing",
    "local_move",
    "long_distance_move",
    "packing",
    "storage",
    "membership",
    "other",
];
pub const ACTIVITY_KINDS: &[&str] = &["call", "email", "meeting", "note", "sms", "visit", "check_in"];
pub const TEMPERATURES: &[&str] = &["hot", "warm", "cold"];
pub const CUSTOMER_TYPES: &[&str] = &["residential", "commercial"];

fn address(e: EntityDef) -> EntityDef {
    e.field(F::new("address_line", T::Text).max_len(200))
        .field(F::new("city", T::Text).max_len(100))
        .field(F::new("region", T::Text).max_len(100))
        .field(F::new("postal_code", T::Text).max_len(20))
        .field(F::new("country", T::Text).max_len(2))
        .field(F::new("latitude", T::Number).range(Some(-90), Some(90)))
        .field(F::new("longitude", T::Number).range(Some(-180), Some(180)))
}

fn organization() -> EntityDef {
    EntityDef::new("organization", "organizations")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("currency", T::Text).max_len(3).default("USD"))
        .field(F::new("timezone", T::Text).max_len(64).default("UTC"))
        .field(F::new("phone_country_code", T::Text).max_len(4).default("1"))
        .field(
            F::new("membership_expiring_days", T::Integer)
                .range(Some(1), Some(365))
                .default(14i64),
        )
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

fn user() -> EntityDef {
    let mut e = EntityDef::new("user", "users")
        .field(F::new("email", T::Email).required().unique())
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("role", T::Text).required().max_len(64))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("location_id", T::Ref("location")))
        .field(F::new("phone", T::Phone))
        .field(F::new("active", T::Bool).default(true));
    e.team_field = Some("team_id");
    e.search_fields = &["name", "email"];
    e
}

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
        .field(F::new("lifetime_value", T::Money).read_only())
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
    scoped(&mut e);
    e.search_fields = &["first_name", "last_name", "email", "phone"];
    e
}

fn scoped(e: &mut EntityDef) {
    e.owner_field = Some("owner_id");
    e.team_field = Some("team_id");
    e.external_key = Some("external_id");
    e.custom_fields = true;
}

fn lead() -> EntityDef {
    let mut e = address(
        EntityDef::new("lead", "leads")
            .field(F::new("first_name", T::Text).max_len(100))
            .field(F::new("last_name", T::Text).max_len(100))
            .field(F::new("company_name", T::Text).max_len(200))
            .field(F::new("email", T::Email))
            .field(F::new("phone", T::Phone)),
    )
    .field(F::new("source", T::Enum).options(LEAD_SOURCES).default("other"))
    .field(F::new("status", T::Text).required().max_len(64).default("new"))
    .field(F::new("pipeline_id", T::Ref("pipeline")))
    .field(
        F::new("score", T::Integer)
            .read_only()
            .range(Some(0), Some(100))
            .default(0i64),
    )
    .field(
        F::new("temperature", T::Enum)
            .required()
            .read_only()
            .options(TEMPERATURES)
            .default("cold"),
    )
    .field(F::new("score_model_version", T::Integer).read_only())
    .field(F::new("scored_at", T::Timestamp).read_only())
    .field(F::new("owner_id", T::Ref("user")))
    .field(F::new("team_id", T::Ref("team")))
    .field(F::new("location_id", T::Ref("location")))
    .field(F::new("project_type", T::Enum).options(PROJECT_TYPES))
    .field(F::new("estimated_value", T::Money).range(Some(0), None))
    .field(
        F::new("priority", T::Enum)
            .options(&["low", "medium", "high", "urgent"])
            .default("medium"),
    )
    .field(F::new("notes", T::Text).max_len(10_000))
    .field(F::new("tags", T::Tags))
    .field(F::new("external_id", T::Text).max_len(100).unique())
    .field(F::new("lost_reason", T::Text).max_len(500))
    .field(F::new("contact_id", T::Ref("contact")).read_only())
    .field(F::new("company_id", T::Ref("company")).read_only())
    .field(F::new("converted_at", T::Timestamp).read_only());
    scoped(&mut e);
    e.scored = true;
    e.search_fields = &["first_name", "last_name", "company_name", "email", "phone"];
    e.check = Some(lead_check);
    // Serve the common pages (by status, an owner's or a team's leads by status) in score order.
    e.indexes = vec![
        &["status", "score"],
        &["owner_id", "status", "score"],
        &["team_id", "status", "score"],
        &["score"],
    ];
    e
}

fn lead_check(r: &Record, errs: &mut Vec<FieldError>) {
    let named = ["first_name", "last_name", "company_name", "email", "phone"]
        .iter()
        .any(|f| r.get(f).is_some_and(|v| !v.is_null()));
    if !named {
        errs.push(FieldError::new(
            "first_name",
            codes::REQUIRED,
            "a lead needs a name, a company, an email or a phone",
        ));
    }
}

fn activity() -> EntityDef {
    let mut e = EntityDef::new("activity", "activities")
        .field(F::new("kind", T::Enum).required().options(ACTIVITY_KINDS))
        .field(F::new("direction", T::Enum).options(&["inbound", "outbound"]))
        .field(F::new("subject", T::Text).max_len(200))
        .field(F::new("body", T::Text).max_len(20_000))
        .field(F::new("outcome", T::Text).max_len(100))
        .field(F::new("occurred_at", T::Timestamp).required().past())
        .field(F::new("duration_minutes", T::Integer).range(Some(0), Some(24 * 60)))
        .field(F::new("lead_id", T::Ref("lead")))
        .field(F::new("contact_id", T::Ref("contact")))
        .field(F::new("company_id", T::Ref("company")))
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("location_id", T::Ref("location")))
        .field(F::new("external_id", T::Text).max_len(100).unique());
    e.owner_field = Some("owner_id");
    e.team_field = Some("team_id");
    e.external_key = Some("external_id");
    e.custom_fields = true;
    e.rescores = Some("lead_id");
    e.search_fields = &["subject", "body"];
    e.check = Some(activity_check);
    e.indexes = vec![&["lead_id", "occurred_at"], &["contact_id", "occurred_at"]];
    e
}

fn activity_check(r: &Record, errs: &mut Vec<FieldError>) {
    let linked = ["lead_id", "contact_id", "company_id"]
        .iter()
        .any(|f| r.get(f).is_some_and(|v| !v.is_null()));
    if !linked {
        errs.push(FieldError::new(
            "lead_id",
            codes::REQUIRED,
            "an activity belongs to a lead, a contact or a company",
        ));
    }
}

fn custom_field() -> EntityDef {
    let mut e = EntityDef::new("custom_field", "custom_fields")
        .field(F::new("entity", T::Text).required().max_len(64))
        .field(F::new("key", T::Text).required().max_len(40))
        .field(F::new("label", T::Text).max_len(200))
        .field(F::new("spec", T::Json).required());
    e.check = Some(crate::validate::check_custom_field_def);
    e
}

fn pipeline() -> EntityDef {
    let mut e = EntityDef::new("pipeline", "pipelines")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("entity", T::Enum).required().options(&["lead"]).default("lead"))
        .field(F::new("stages", T::Json).required())
        .field(F::new("is_default", T::Bool).default(false));
    e.check = Some(crate::pipeline::check_pipeline);
    e
}

fn scoring_model() -> EntityDef {
    let mut e = EntityDef::new("scoring_model", "scoring_models")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(
            F::new("status", T::Enum)
                .options(&["draft", "published", "retired"])
                .read_only()
                .default("draft"),
        )
        .field(F::new("model_version", T::Integer).read_only())
        .field(F::new("definition", T::Json).required())
        .field(F::new("published_at", T::Timestamp).read_only());
    e.check = Some(crate::scoring::check_model_record);
    e
}

fn role() -> EntityDef {
    let mut e = EntityDef::new("role", "roles")
        .field(F::new("name", T::Text).required().max_len(64).unique())
        .field(F::new("grants", T::Json).required());
    e.check = Some(crate::access::check_role_record);
    e
}

/// A user's password, as a PHC string (`$argon2id$v=19$m=...`). Hashing is the frontend's job (the
/// core has no randomness); the core owns the policy ([`crate::validate::check_password`]) and who may
/// change it.
fn credential() -> EntityDef {
    let mut e = EntityDef::new("credential", "credentials")
        .field(F::new("user_id", T::Ref("user")).required().unique())
        .field(F::new("password_hash", T::Text).secret());
    e.since = 3;
    e.exposure = Exposure::Internal;
    e
}

/// A signed-in session: what a refresh token renews and what every access token names. Deleting it
/// signs the session out on the next request.
fn session() -> EntityDef {
    let mut e = EntityDef::new("session", "sessions")
        .field(F::new("user_id", T::Ref("user")).required())
        .field(F::new("token_hash", T::Text).secret())
        .field(F::new("expires_at", T::Timestamp).required());
    e.since = 3;
    e.exposure = Exposure::Internal;
    e.owner_field = Some("user_id");
    e
}

/// A long-lived key for programs, bound to a role no stronger than its creator's. Only a hash of the
/// key is stored; the key itself is shown once, at creation.
fn api_key() -> EntityDef {
    let mut e = EntityDef::new("api_key", "api_keys")
        .field(F::new("name", T::Text).required().max_len(200))
        .field(F::new("role", T::Text).max_len(64).read_only())
        .field(F::new("user_id", T::Ref("user")).read_only())
        .field(F::new("expires_at", T::Timestamp).read_only())
        .field(F::new("key_hash", T::Text).secret());
    e.since = 3;
    e.exposure = Exposure::Managed;
    e.owner_field = Some("user_id");
    e
}

/// An HTTP endpoint that receives the tenant's events, signed with a per-webhook secret. The delivery
/// state (read-only) lets delivery resume after a restart without losing or reordering events.
fn webhook() -> EntityDef {
    let mut e = EntityDef::new("webhook", "webhooks")
        .field(F::new("url", T::Url).required())
        .field(F::new("events", T::Tags))
        .field(F::new("active", T::Bool).default(true))
        .field(F::new("secret", T::Text).secret())
        .field(F::new("delivered_seq", T::Integer).read_only().default(0i64))
        .field(F::new("attempts", T::Integer).read_only().default(0i64))
        .field(F::new("next_attempt_at", T::Timestamp).read_only())
        .field(F::new("last_status", T::Integer).read_only())
        .field(F::new("last_error", T::Text).read_only());
    e.since = 3;
    e.exposure = Exposure::Managed;
    e
}

/// Shorthand for tests and fixtures: a text value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}
