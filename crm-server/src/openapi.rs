//! The OpenAPI 3.1 document, generated from the route table ([`crate::api`]) and the entity
//! declarations (one record, input, patch and page schema per entity type, typed from its fields).
//! Object schemas are strict (`additionalProperties: false`).

use crate::api::{Op, schema_ref};
use crm_core::entity;
use crm_core::schema::{EntityDef, Exposure, FieldDef};
use crm_core::value::FieldType;
use serde_json::{Map, Value as Json, json};

/// `lead` -> `Lead`, `scoring_model` -> `ScoringModel`.
pub fn schema_name(entity: &str) -> String {
    entity
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// A strict object schema.
fn object(props: Vec<(&str, Json)>, required: &[&str]) -> Json {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert(k.to_owned(), v);
    }
    json!({ "type": "object", "additionalProperties": false, "properties": p, "required": required })
}

fn nullable(mut s: Json) -> Json {
    if let Some(t) = s.get("type").cloned() {
        s["type"] = match t {
            Json::String(t) => json!([t, "null"]),
            Json::Array(mut ts) => {
                ts.push(json!("null"));
                Json::Array(ts)
            }
            other => other,
        };
        s
    } else {
        // `anyOf`: a schema without a type (JSON configuration) also matches null.
        json!({ "anyOf": [s, { "type": "null" }] })
    }
}

fn string(format: Option<&str>) -> Json {
    match format {
        Some(f) => json!({ "type": "string", "format": f }),
        None => json!({ "type": "string" }),
    }
}

/// The characters the core allows in text: no control characters but tab, line feed and carriage
/// return (`crm_core::validate::is_forbidden_control`).
const TEXT_CHAR: &str = "[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]";
/// A text character that is not white space.
const VISIBLE_CHAR: &str = "[^\\s\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]";

/// A fixed UTC offset as `crm_core::service::parse_offset` reads it (`Z`, `UTC`, `+02:00`, `-0530`,
/// `+05`; at most ±18:00; spaces, tabs and line breaks around it); empty is the default, UTC.
pub fn utc_offset() -> Json {
    json!({
        "type": "string",
        "pattern": "^([ \\t\\n\\r]*(Z|z|UTC|utc|[+-](0[0-9]|1[0-7])(:?[0-5][0-9])?|[+-]18(:?00)?)[ \\t\\n\\r]*)?$",
        "example": "+02:00"
    })
}

/// Text the core accepts (any length, no control characters).
pub fn text() -> Json {
    json!({ "type": "string", "pattern": format!("^{TEXT_CHAR}*$") })
}

/// Whether a create must give `f`: required by its declaration and without a default.
pub fn required_on_create(f: &FieldDef) -> bool {
    f.spec.required && f.default.is_none() && !f.default_now
}

/// Text a required value takes: not blank (the core counts blank text as missing).
pub fn required_text() -> Json {
    json!({ "type": "string", "pattern": format!("^{TEXT_CHAR}*{VISIBLE_CHAR}{TEXT_CHAR}*$") })
}

pub(crate) fn field_schema(f: &FieldDef) -> Json {
    let s = &f.spec;
    // A decimal string takes a minus sign only when the field allows negative values.
    let sign = if s.min.is_some_and(|m| m >= 0) { "" } else { "-?" };
    let mut j = match &s.ty {
        FieldType::Text => text(),
        // The core also reads national forms (with the tenant's country code); the document
        // states the one form every tenant accepts, and the one stored: E.164.
        FieldType::Phone => json!({ "type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$", "example": "+15551234567" }),
        FieldType::Email => string(Some("email")),
        FieldType::Url => string(Some("uri")),
        FieldType::Integer => json!({ "type": "integer" }),
        FieldType::Number => json!({ "type": "number" }),
        FieldType::Money => {
            // A JSON number is read by its shortest decimal form, so `1234.5` is 1234.50; more than
            // two decimals is refused, never rounded (which JSON Schema cannot state for floats).
            let mut number = json!({ "type": "number" });
            if let Some(m) = s.min {
                number["minimum"] = json!(m);
            }
            json!({
                "oneOf": [
                    { "type": "string", "pattern": format!("^{sign}[0-9]+(\\.[0-9]{{1,2}})?$") },
                    number
                ],
                "description": "Amount: a decimal string (answered so) or a number with at most 2 decimals"
            })
        }
        FieldType::Decimal => {
            let mut number = json!({ "type": "number" });
            if let Some(m) = s.min {
                number["minimum"] = json!(m);
            }
            if let Some(m) = s.max {
                number["maximum"] = json!(m);
            }
            json!({
                "oneOf": [
                    { "type": "string", "pattern": format!("^{sign}[0-9]+(\\.[0-9]{{1,6}})?$") },
                    number
                ],
                "description": "Exact decimal (at most 6 decimals); answered as a string"
            })
        }
        FieldType::Date => string(Some("date")),
        FieldType::Timestamp => string(Some("date-time")),
        FieldType::Bool => json!({ "type": "boolean" }),
        FieldType::Enum => json!({ "type": "string", "enum": s.options }),
        FieldType::MultiEnum => json!({ "type": "array", "items": { "type": "string", "enum": s.options } }),
        FieldType::Tags => json!({ "type": "array", "items": text() }),
        FieldType::Ref(target) => {
            json!({ "type": "string", "format": "uuid", "description": format!("Id of a {target}") })
        }
        FieldType::Json => {
            json!({ "type": ["object", "array"], "description": "Structured configuration, checked by the entity's rules" })
        }
    };
    if let Some(n) = s.max_len {
        j["maxLength"] = json!(n);
    }
    if matches!(s.ty, FieldType::Integer | FieldType::Number) {
        if let Some(m) = s.min {
            j["minimum"] = json!(m);
        }
        if let Some(m) = s.max {
            j["maximum"] = json!(m);
        }
    }
    j
}

fn custom_schema() -> Json {
    json!({ "type": "object", "description": "Tenant-defined custom fields, by key", "additionalProperties": true })
}

/// Record, input, patch and page schemas of an entity type.
fn entity_schemas(def: &EntityDef, out: &mut Map<String, Json>) {
    let name = schema_name(def.name);
    let fields: Vec<&FieldDef> = def.fields.iter().filter(|f| !f.secret).collect();
    let mut record: Vec<(&str, Json)> = vec![
        ("id", string(Some("uuid"))),
        ("version", json!({ "type": "integer", "minimum": 1 })),
        ("created_at", string(Some("date-time"))),
        ("updated_at", string(Some("date-time"))),
    ];
    record.extend(fields.iter().map(|f| (f.name, nullable(field_schema(f)))));
    record.extend(def.computed.iter().map(|c| {
        let doc = "Computed as of the request; never stored, read-only, usable in filters and sorts";
        (
            c.name,
            json!({ "type": "string", "enum": c.options, "readOnly": true, "description": doc }),
        )
    }));
    if def.custom_fields {
        record.push(("custom", custom_schema()));
    }
    // A parent comes back with its children, and takes its first ones on create.
    let kids: Vec<(&str, String)> = def.children().map(|c| (c.table, schema_name(c.name))).collect();
    for (table, child) in &kids {
        let doc = "Its children, in order (on reads of one record)";
        record.push((
            table,
            json!({"type": "array", "items": schema_ref(child), "description": doc}),
        ));
    }
    // Only `id` and `version` are always there: sparse reads (`fields=`) leave out the rest.
    let mut rec = object(record, &["id", "version"]);
    rec["description"] = json!(format!(
        "A {}. Fields the caller may not read, or did not ask for (`fields`), are absent.",
        def.name.replace('_', " ")
    ));
    let writable: Vec<&&FieldDef> = fields.iter().filter(|f| f.writable).collect();
    // A required field is never null in input (the core refuses it), so its schema says so.
    let input_schema = |f: &FieldDef| {
        if f.spec.required {
            let mut j = field_schema(f);
            match f.spec.ty {
                // The core counts blank text as missing.
                FieldType::Text | FieldType::Phone => j["pattern"] = required_text()["pattern"].clone(),
                _ => {}
            }
            j
        } else if f.spec.ty.is_string_form() && f.spec.ty != FieldType::Text {
            // The core reads a blank string as "not set" for every string-typed field (CSV cells
            // send it so), so an optional reference, date, enum or amount also takes "".
            json!({ "anyOf": [field_schema(f), { "type": "string", "maxLength": 0 }, { "type": "null" }] })
        } else {
            nullable(field_schema(f))
        }
    };
    let mut patch: Vec<(&str, Json)> = writable.iter().map(|f| (f.name, input_schema(f))).collect();
    // On create, null for a field with a default takes the default, and so does a blank string
    // where the core reads one as "not set".
    let mut input: Vec<(&str, Json)> = writable
        .iter()
        .map(|f| {
            if f.spec.required && (f.default.is_some() || f.default_now) {
                let given = match f.spec.ty.is_string_form() {
                    true => {
                        json!({ "anyOf": [input_schema(f), { "type": "string", "maxLength": 0 }, { "type": "null" }] })
                    }
                    false => nullable(input_schema(f)),
                };
                (f.name, given)
            } else {
                (f.name, input_schema(f))
            }
        })
        .collect();
    if def.custom_fields {
        input.push(("custom", custom_schema()));
        patch.push(("custom", custom_schema()));
    }
    let required: Vec<&str> = writable
        .iter()
        .filter(|f| required_on_create(f))
        .map(|f| f.name)
        .collect();
    for (table, child) in &kids {
        // `null` is accepted as none, as the core reads it.
        let doc = "Children created with it, in one change set (without the parent field); null: none";
        input.push((
            table,
            json!({"type": ["array", "null"], "items": schema_ref(&format!("{child}Inline")), "description": doc}),
        ));
    }
    out.insert(format!("{name}Input"), object(input, &required));
    if let Some(c) = def.child_of {
        // A child stays with its parent: the core refuses a new parent on update (`read_only`), so
        // neither a patch nor a child created inside its parent's input names the parent field.
        patch.retain(|(k, _)| *k != c.field);
        let req: Vec<&str> = required.iter().copied().filter(|k| *k != c.field).collect();
        out.insert(format!("{name}Inline"), object(patch.clone(), &req));
    }
    out.insert(format!("{name}Patch"), object(patch, &[]));
    out.insert(name.clone(), rec);
    out.insert(
        format!("{name}Page"),
        object(
            vec![
                ("items", json!({ "type": "array", "items": schema_ref(&name) })),
                ("next_cursor", json!({ "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last" })),
            ],
            &["items", "next_cursor"],
        ),
    );
}

/// Schemas of the fixed (non-entity) shapes.
fn fixed_schemas(out: &mut Map<String, Json>) {
    let s = |t: &str| json!({ "type": t });
    let record_ref = |entity: &str| json!({"$ref": format!("#/components/schemas/{}", schema_name(entity))});
    let uuid = || string(Some("uuid"));
    let time = || string(Some("date-time"));
    let field_error = object(
        vec![("path", s("string")), ("code", s("string")), ("message", s("string"))],
        &["path", "code", "message"],
    );
    let defs: Vec<(&str, Json)> = vec![
        (
            "Problem",
            object(
                vec![
                    ("type", string(Some("uri"))),
                    ("title", s("string")),
                    ("status", s("integer")),
                    ("detail", s("string")),
                    (
                        "code",
                        json!({ "type": "string", "description": "Stable machine code" }),
                    ),
                    (
                        "errors",
                        json!({ "type": "array", "items": field_error.clone(), "description": "`validation`: every failing field" }),
                    ),
                    (
                        "entity",
                        json!({ "type": "string", "description": "`not_found`, `forbidden`, `conflict`: the entity type" }),
                    ),
                    (
                        "id",
                        json!({ "type": "string", "description": "`not_found`, `conflict`: the record looked up" }),
                    ),
                    (
                        "action",
                        json!({ "type": "string", "description": "`forbidden`: the refused action" }),
                    ),
                    (
                        "fields",
                        json!({ "type": "array", "items": { "type": "string" }, "description": "`forbidden`: fields the caller may not read or write (empty when the whole action is refused)" }),
                    ),
                    (
                        "expected",
                        json!({ "type": "integer", "description": "`conflict`: the version the caller sent" }),
                    ),
                    (
                        "actual",
                        json!({ "type": "integer", "description": "`conflict`: the record's current version" }),
                    ),
                    (
                        "what",
                        json!({ "type": "string", "description": "`limit_exceeded`: which limit" }),
                    ),
                    (
                        "limit",
                        json!({ "type": "integer", "description": "`limit_exceeded`: its value" }),
                    ),
                    (
                        "position",
                        json!({ "type": "integer", "description": "`invalid_query`: byte offset in the text query" }),
                    ),
                    (
                        "retry_after",
                        json!({ "type": "integer", "description": "`unavailable` (database): seconds to wait, as in Retry-After" }),
                    ),
                ],
                &["type", "title", "status", "detail", "code"],
            ),
        ),
        (
            "Login",
            object(
                vec![
                    ("organization", uuid()),
                    ("email", string(Some("email"))),
                    ("password", json!({"type": "string", "maxLength": 1024})),
                ],
                &["organization", "email", "password"],
            ),
        ),
        (
            "RefreshRequest",
            object(vec![("refresh_token", s("string"))], &["refresh_token"]),
        ),
        (
            "Tokens",
            object(
                vec![
                    (
                        "access_token",
                        json!({ "type": "string", "description": "JWT (HS256), send as `Authorization: Bearer`" }),
                    ),
                    ("token_type", json!({ "type": "string", "enum": ["Bearer"] })),
                    ("expires_in", json!({ "type": "integer", "description": "Seconds" })),
                    ("refresh_token", s("string")),
                    ("refresh_expires_at", time()),
                ],
                &[
                    "access_token",
                    "token_type",
                    "expires_in",
                    "refresh_token",
                    "refresh_expires_at",
                ],
            ),
        ),
        (
            "ChangePassword",
            object(
                vec![
                    ("current_password", s("string")),
                    ("new_password", json!({"type": "string", "minLength": 12})),
                ],
                &["current_password", "new_password"],
            ),
        ),
        (
            "SetPassword",
            object(
                vec![("password", json!({"type": "string", "minLength": 12}))],
                &["password"],
            ),
        ),
        (
            "NewUser",
            object(
                vec![
                    ("email", string(Some("email"))),
                    ("name", s("string")),
                    ("password", json!({"type": "string", "minLength": 12})),
                    (
                        "role",
                        json!({"type": "string", "description": "Default: admin (the role of users the platform creates)"}),
                    ),
                ],
                &["email", "name", "password"],
            ),
        ),
        (
            "Me",
            object(
                vec![
                    ("organization", uuid()),
                    ("user_id", nullable(uuid())),
                    ("team_id", nullable(uuid())),
                    ("session", nullable(uuid())),
                    (
                        "role",
                        object(
                            vec![
                                ("name", s("string")),
                                (
                                    "grants",
                                    json!({ "type": "object", "description": "Entity type -> actions with scopes and field allow-lists" }),
                                ),
                            ],
                            &["name", "grants"],
                        ),
                    ),
                ],
                &["organization", "user_id", "team_id", "session", "role"],
            ),
        ),
        (
            "NewApiKey",
            object(
                vec![
                    ("name", required_text()),
                    (
                        "role",
                        json!({"type": "string", "description": "Default: the creator's role; never stronger"}),
                    ),
                    ("expires_at", nullable(time())),
                ],
                &["name"],
            ),
        ),
        (
            "CreatedApiKey",
            object(
                vec![
                    ("key", json!({"type": "string", "description": "Shown once"})),
                    ("api_key", schema_ref("ApiKey")),
                ],
                &["key", "api_key"],
            ),
        ),
        (
            "AppointmentOccurrences",
            object(
                vec![
                    (
                        "items",
                        json!({"type": "array", "items": object(vec![
                            ("appointment", record_ref("appointment")),
                            ("occurrences", json!({"type": "array", "items": object(vec![
                                ("starts_at", time()),
                                ("ends_at", time()),
                            ], &["starts_at", "ends_at"])})),
                        ], &["appointment", "occurrences"])}),
                    ),
                    ("next_cursor", nullable(s("string"))),
                ],
                &["items", "next_cursor"],
            ),
        ),
        (
            "CreatedCalendarFeed",
            object(
                vec![
                    ("token", json!({"type": "string", "description": "Shown once"})),
                    (
                        "url",
                        json!({"type": "string", "description": "The feed's path, with the token"}),
                    ),
                    ("calendar_feed", record_ref("calendar_feed")),
                ],
                &["token", "url", "calendar_feed"],
            ),
        ),
        (
            "CreatedWebhook",
            object(
                vec![
                    (
                        "secret",
                        json!({"type": "string", "description": "HMAC-SHA256 signing secret, shown once"}),
                    ),
                    ("webhook", schema_ref("Webhook")),
                ],
                &["secret", "webhook"],
            ),
        ),
        ("ConvertOptions", object(vec![("create_company", s("boolean"))], &[])),
        (
            "Conversion",
            object(
                vec![
                    ("lead", schema_ref("Lead")),
                    ("contact", schema_ref("Contact")),
                    (
                        "company",
                        json!({ "oneOf": [schema_ref("Company"), { "type": "null" }] }),
                    ),
                ],
                &["lead", "contact", "company"],
            ),
        ),
        (
            "ScoreResult",
            object(
                vec![
                    ("score", s("integer")),
                    ("tier", s("string")),
                    (
                        "temperature",
                        json!({ "type": "string", "enum": crm_core::entity::TEMPERATURES }),
                    ),
                    ("reset", s("boolean")),
                    (
                        "contributions",
                        json!({ "type": "array", "items": object(vec![
                ("group", s("string")), ("rule", s("string")), ("count", s("integer")), ("points", s("integer")),
                ("kind", json!({ "type": "string", "enum": ["rule", "cap", "floor", "reset"] })),
            ], &["group", "rule", "count", "points", "kind"]) }),
                    ),
                ],
                &["score", "tier", "temperature", "reset", "contributions"],
            ),
        ),
        (
            "RescoreReport",
            object(
                vec![
                    ("scanned", s("integer")),
                    ("changed", s("integer")),
                    ("model_version", s("integer")),
                ],
                &["scanned", "changed", "model_version"],
            ),
        ),
        (
            "CheckInInput",
            json!({"type": "object", "additionalProperties": false, "description": "Exactly one of contact_id and card (the contact's external id)", "properties": {
            "contact_id": uuid(), "card": required_text(), "location_id": uuid()},
            "oneOf": [
                {"required": ["contact_id"], "not": {"required": ["card"]}},
                {"required": ["card"], "not": {"required": ["contact_id"]}}
            ]}),
        ),
        (
            "CheckInAnswer",
            object(
                vec![
                    (
                        "outcome",
                        json!({"type": "string", "enum": ["allowed", "warned", "refused"]}),
                    ),
                    ("reason", nullable(s("string"))),
                    ("contact_id", uuid()),
                    ("name", s("string")),
                    ("membership_id", nullable(uuid())),
                    (
                        "status",
                        json!({"type": "string", "enum": crm_core::entity::membership::status::CLIENT_STATUSES}),
                    ),
                    ("ends_on", nullable(string(Some("date")))),
                    ("visits_left", nullable(s("integer"))),
                    ("check_in_id", nullable(uuid())),
                    ("at", time()),
                ],
                &[
                    "outcome",
                    "reason",
                    "contact_id",
                    "name",
                    "membership_id",
                    "status",
                    "ends_on",
                    "visits_left",
                    "check_in_id",
                    "at",
                ],
            ),
        ),
        (
            "MyDay",
            object(
                vec![
                    ("date", nullable(string(Some("date")))),
                    (
                        "items",
                        json!({"type": "array", "items": object(vec![
                            ("starts_at", time()),
                            ("ends_at", time()),
                            ("assignment", nullable(record_ref("crew_assignment"))),
                            ("job", nullable(record_ref("job"))),
                            ("open_steps", json!({"type": "array", "items": record_ref("job_step")})),
                            ("appointment", nullable(record_ref("appointment"))),
                        ], &["starts_at", "ends_at", "assignment", "job", "open_steps", "appointment"])}),
                    ),
                ],
                &["date", "items"],
            ),
        ),
        (
            "FieldWorkReport",
            object(
                vec![
                    ("jobs", s("integer")),
                    ("completed", s("integer")),
                    ("cancelled", s("integer")),
                    ("on_time", s("integer")),
                    ("on_time_rate", nullable(s("string"))),
                    (
                        "steps",
                        json!({"type": "array", "items": object(vec![
                            ("name", s("string")),
                            ("done", s("integer")),
                            ("skipped", s("integer")),
                            ("average_minutes", nullable(s("string"))),
                            ("median_minutes", nullable(s("string"))),
                        ], &["name", "done", "skipped", "average_minutes", "median_minutes"])}),
                    ),
                ],
                &["jobs", "completed", "cancelled", "on_time", "on_time_rate", "steps"],
            ),
        ),
        (
            "Board",
            object(
                vec![
                    ("date", string(Some("date"))),
                    (
                        "jobs",
                        json!({"type": "array", "items": object(vec![
                            ("job", record_ref("job")),
                            ("crew", json!({"type": "array", "items": record_ref("crew_assignment")})),
                        ], &["job", "crew"])}),
                    ),
                    (
                        "by_vehicle",
                        json!({"type": "object", "additionalProperties": {"type": "array", "items": uuid()}}),
                    ),
                    (
                        "by_user",
                        json!({"type": "object", "additionalProperties": {"type": "array", "items": uuid()}}),
                    ),
                    ("next_cursor", nullable(s("string"))),
                ],
                &["date", "jobs", "by_vehicle", "by_user", "next_cursor"],
            ),
        ),
        (
            "MembershipNumbers",
            object(
                vec![
                    ("as_of", string(Some("date"))),
                    ("active_members", s("integer")),
                    ("expiring_7_days", s("integer")),
                    ("expiring_30_days", s("integer")),
                    (
                        "months",
                        json!({"type": "array", "items": object(vec![("month", s("string")), ("renewals", s("integer")), ("churn", s("integer"))], &["month", "renewals", "churn"])}),
                    ),
                    (
                        "check_ins_per_day",
                        json!({"type": "array", "items": object(vec![("day", string(Some("date"))), ("check_ins", s("integer"))], &["day", "check_ins"])}),
                    ),
                    (
                        "check_ins_by_hour",
                        json!({"type": "array", "description": "7 weekdays (Monday first) of 24 hourly counts, in the tenant's time zone", "items": {"type": "array", "items": s("integer")}}),
                    ),
                ],
                &[
                    "as_of",
                    "active_members",
                    "expiring_7_days",
                    "expiring_30_days",
                    "months",
                    "check_ins_per_day",
                    "check_ins_by_hour",
                ],
            ),
        ),
        (
            "ConversionRow",
            object(
                vec![
                    (
                        "key",
                        json!({"type": ["string", "null"], "description": "Owner id, lead source or YYYY-MM; null: none"}),
                    ),
                    ("sent", s("integer")),
                    ("accepted", s("integer")),
                    ("declined", s("integer")),
                    ("open", s("integer")),
                    (
                        "rate_percent",
                        json!({"type": "string", "description": "Accepted over sent, percent, one decimal"}),
                    ),
                    (
                        "accepted_value",
                        json!({"type": "string", "description": "Total of the accepted quotes"}),
                    ),
                ],
                &[
                    "key",
                    "sent",
                    "accepted",
                    "declined",
                    "open",
                    "rate_percent",
                    "accepted_value",
                ],
            ),
        ),
        (
            "StageSummary",
            object(
                vec![
                    ("key", s("string")),
                    ("label", s("string")),
                    ("kind", json!({"type": "string", "enum": ["open", "won", "lost"]})),
                    ("count", s("integer")),
                    ("value", json!({"type": ["string", "null"]})),
                ],
                &["key", "label", "kind", "count", "value"],
            ),
        ),
        (
            "ScoringModelDefinition",
            json!({ "type": "object", "description": "A scoring model: groups of fit and engagement rules, caps, decay, tiers, resets (see docs/scoring.md)" }),
        ),
        (
            "BacktestReport",
            object(
                vec![
                    ("model", s("string")),
                    ("evaluated", s("integer")),
                    ("won", s("integer")),
                    ("lost", s("integer")),
                    ("auc", json!({"type": ["number", "null"]})),
                    (
                        "tiers",
                        json!({ "type": "array", "items": object(vec![
                ("tier", s("string")), ("temperature", s("string")), ("leads", s("integer")), ("won", s("integer")), ("lost", s("integer")),
                ("win_rate", json!({"type": ["number", "null"]})), ("lift", json!({"type": ["number", "null"]})),
            ], &["tier", "temperature", "leads", "won", "lost", "win_rate", "lift"]) }),
                    ),
                ],
                &["model", "evaluated", "won", "lost", "auc", "tiers"],
            ),
        ),
        (
            "Published",
            object(
                vec![
                    ("scoring_model", schema_ref("ScoringModel")),
                    ("rescore", schema_ref("RescoreReport")),
                ],
                &["scoring_model", "rescore"],
            ),
        ),
        (
            "ImportReport",
            object(
                vec![
                    (
                        "mode",
                        json!({"type": "string", "enum": ["dry_run", "all_or_nothing", "valid_rows_only"]}),
                    ),
                    ("rows", s("integer")),
                    ("valid", s("integer")),
                    ("invalid", s("integer")),
                    ("created", s("integer")),
                    ("updated", s("integer")),
                    ("unchanged", s("integer")),
                    ("applied", s("boolean")),
                    (
                        "columns",
                        json!({"type": "object", "additionalProperties": {"type": "string"}}),
                    ),
                    ("ignored_columns", json!({"type": "array", "items": {"type": "string"}})),
                    (
                        "errors",
                        json!({"type": "array", "items": object(vec![("row", s("integer")), ("line", s("integer")), ("errors", json!({"type": "array", "items": field_error}))], &["row", "line", "errors"])}),
                    ),
                    ("errors_omitted", s("integer")),
                    (
                        "error_counts",
                        json!({"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}}}),
                    ),
                ],
                &[
                    "mode",
                    "rows",
                    "valid",
                    "invalid",
                    "created",
                    "updated",
                    "unchanged",
                    "applied",
                    "columns",
                    "ignored_columns",
                    "errors",
                    "errors_omitted",
                    "error_counts",
                ],
            ),
        ),
        (
            "UpsertRequest",
            object(
                vec![
                    (
                        "system",
                        json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9_.-]*$", "description": "The source system"}),
                    ),
                    (
                        "mode",
                        json!({"type": "string", "enum": ["create_only", "update_only", "upsert"], "default": "upsert"}),
                    ),
                    (
                        "all_or_nothing",
                        json!({"type": "boolean", "default": false, "description": "Write nothing if any row is refused (default: write the rows that pass)"}),
                    ),
                    (
                        "dry_run",
                        json!({"type": "boolean", "default": false, "description": "Check and report, write nothing"}),
                    ),
                    (
                        "rows",
                        json!({"type": "array", "items": {"description": "An object: the fields to write and the row's id in the source system under the entity's external key (`external_id`). A parent type's row may carry its children as lists under the child types' tables (a job's `job_steps`), each child with its own `external_id`: the source system's whole list of that type (see docs/integration.md). Any other value is refused in the report (code `invalid_type`), like any refused row, not the whole request"}}),
                    ),
                ],
                &["system", "rows"],
            ),
        ),
        (
            "UpsertReport",
            object(
                vec![
                    ("system", s("string")),
                    (
                        "mode",
                        json!({"type": "string", "enum": ["create_only", "update_only", "upsert"]}),
                    ),
                    ("dry_run", s("boolean")),
                    ("all_or_nothing", s("boolean")),
                    ("rows", s("integer")),
                    ("created", s("integer")),
                    ("updated", s("integer")),
                    ("unchanged", s("integer")),
                    ("rejected", s("integer")),
                    ("applied", s("boolean")),
                    (
                        "results",
                        json!({"type": "array", "description": "Rows created, updated or refused (unchanged rows are only counted), the first 10,000 in input order", "items": object(vec![
                            ("row", s("integer")),
                            ("external_id", s("string")),
                            ("outcome", json!({"type": "string", "enum": ["created", "updated", "unchanged", "rejected"]})),
                            ("id", uuid()),
                            ("errors", json!({"type": "array", "items": field_error})),
                        ], &["row", "outcome"])}),
                    ),
                    ("results_omitted", s("integer")),
                ],
                &[
                    "system",
                    "mode",
                    "dry_run",
                    "all_or_nothing",
                    "rows",
                    "created",
                    "updated",
                    "unchanged",
                    "rejected",
                    "applied",
                    "results",
                    "results_omitted",
                ],
            ),
        ),
        (
            "AuditEntry",
            object(
                vec![
                    ("id", uuid()),
                    ("tenant", uuid()),
                    ("seq", s("integer")),
                    ("at", time()),
                    ("actor", nullable(uuid())),
                    ("action", s("string")),
                    ("entity", s("string")),
                    ("entity_id", nullable(uuid())),
                    (
                        "changes",
                        json!({"type": "array", "items": object(vec![("field", s("string")), ("old", json!({})), ("new", json!({}))], &["field", "old", "new"])}),
                    ),
                    ("prev_hash", s("string")),
                    ("hash", s("string")),
                ],
                &[
                    "id",
                    "tenant",
                    "seq",
                    "at",
                    "actor",
                    "action",
                    "entity",
                    "entity_id",
                    "changes",
                    "prev_hash",
                    "hash",
                ],
            ),
        ),
        (
            "IntegrityReport",
            object(
                vec![
                    (
                        "checked",
                        json!({"type": "array", "description": "[entity type, rows checked] pairs", "items": {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 2, "maxItems": 2}}),
                    ),
                    (
                        "issues",
                        json!({"type": "array", "items": object(vec![("entity", s("string")), ("id", uuid()), ("path", s("string")), ("code", s("string")), ("message", s("string"))], &["entity", "id", "path", "code", "message"])}),
                    ),
                    ("issue_count", s("integer")),
                    ("audit_entries", s("integer")),
                    ("audit_broken_at", json!({"type": ["integer", "null"]})),
                ],
                &["checked", "issues", "issue_count", "audit_entries", "audit_broken_at"],
            ),
        ),
        ("Health", object(vec![("status", s("string"))], &["status"])),
    ];
    // A check-in is created by its own use case, whose body replaces the generated input.
    const REPLACES: &[&str] = &["CheckInInput"];
    for (k, v) in defs {
        // Otherwise a fixed shape never takes the name of an entity's generated one (a list of
        // occurrences named `AppointmentPage` once replaced the appointments' page).
        let replaced = out.insert(k.to_owned(), v);
        assert!(
            replaced.is_none() || REPLACES.contains(&k),
            "the fixed schema {k} would replace a generated one"
        );
    }
}

/// The whole document.
pub fn document(ops: &[Op]) -> Json {
    let mut schemas = Map::new();
    for def in entity::all().into_iter().filter(|d| d.exposure != Exposure::Internal) {
        entity_schemas(def, &mut schemas);
    }
    fixed_schemas(&mut schemas);
    // Attachments are reached through their owners, never as generic records: only their record
    // schema, and its list.
    let mut attachment = Map::new();
    entity_schemas(&entity::ATTACHMENT, &mut attachment);
    if let Some(s) = attachment.remove("Attachment") {
        schemas.insert("Attachment".into(), s);
        schemas.insert(
            "AttachmentList".into(),
            object(
                vec![("items", json!({"type": "array", "items": schema_ref("Attachment")}))],
                &["items"],
            ),
        );
    }
    // A custom field extends one of the types that take custom fields (the core's rule on
    // `custom_field.entity`, a text field in its declaration).
    if let Some(entity) = schemas
        .get_mut("CustomFieldInput")
        .and_then(|s| s["properties"].get_mut("entity"))
    {
        let targets: Vec<&str> = entity::all()
            .into_iter()
            .filter(|d| d.custom_fields)
            .map(|d| d.name)
            .collect();
        *entity = json!({ "type": "string", "enum": targets });
    }
    // Its key: lower-case letters, digits and `_`, starting with a letter (the core's rule).
    for name in ["CustomFieldInput", "CustomFieldPatch"] {
        if let Some(key) = schemas.get_mut(name).and_then(|s| s["properties"].get_mut("key")) {
            key["pattern"] = json!("^[a-z][a-z0-9_]*$");
        }
    }
    // A job made from a quote takes any job input but the quote and its customer (the core's rule
    // in `job::from_quote`), none of it required.
    if let Some(mut from_quote) = schemas.get("JobInput").cloned() {
        if let Some(props) = from_quote["properties"].as_object_mut() {
            for f in crm_core::entity::job::from_quote::FIXED {
                props.remove(*f);
            }
        }
        if let Some(o) = from_quote.as_object_mut() {
            o.remove("required");
        }
        schemas.insert("JobFromQuote".into(), from_quote);
    }
    let mut paths = Map::new();
    for op in ops {
        let entry = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
        entry[op.method] = op.to_json();
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CRM API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The CRM core over HTTP. Every business rule (validation, access control, scoring, audit, events) is decided by crm-core; errors are RFC 9457 problem documents with a stable `code`. Records carry an ETag; updates and deletes need If-Match. Lists are keyset-paginated (`cursor`, `limit` at most 500).",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Access token from /api/v1/auth/login" },
                "apiKey": { "type": "http", "scheme": "bearer", "description": "An API key (`crmk_...`) as a bearer token" },
                "platformAdmin": { "type": "http", "scheme": "bearer", "description": "The platform super-admin token (CRM_ADMIN_TOKEN)" }
            }
        }
    })
}

/// A Markdown reference of the document: every operation by tag, with its parameters and statuses
/// (committed as `docs/api/reference.md`; the JSON itself as `docs/api/openapi.json`).
pub fn markdown(doc: &Json) -> String {
    let mut by_tag: std::collections::BTreeMap<String, Vec<(String, String, &Json)>> = Default::default();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                by_tag
                    .entry(tag)
                    .or_default()
                    .push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    let mut out = String::from(
        "# HTTP API reference\n\nGenerated from the OpenAPI document (`docs/api/openapi.json`, served at \
         `/api/v1/openapi.json`; interactive at `/docs`). Do not edit by hand: \
         `UPDATE_API_DOCS=1 cargo test -p crm-server --test api_docs` regenerates both.\n\n\
         Errors are `application/problem+json` with a stable `code`; see docs/server.md.\n",
    );
    for (tag, ops) in by_tag {
        out.push_str(&format!(
            "\n## {tag}\n\n| Method | Path | What | Statuses |\n|---|---|---|---|\n"
        ));
        for (method, path, op) in ops {
            let statuses: Vec<&String> = op["responses"]
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            out.push_str(&format!(
                "| {method} | `{path}` | {} | {} |\n",
                op["summary"].as_str().unwrap_or_default(),
                statuses.join(", ")
            ));
        }
    }
    out
}

/// `a|b|c` of names, escaped for a regular expression.
fn alternatives<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(|n| n.replace('.', "\\.")).collect::<Vec<_>>().join("|")
}

/// The system fields every record has.
const SYSTEM_FIELDS: [&str; 4] = ["id", "version", "created_at", "updated_at"];

/// The `fields` parameter of an entity type: a comma-separated list of its field names (system
/// and declared; tenant custom fields as `custom.KEY` are accepted too but not listed here, since
/// the document does not know a tenant's keys).
pub fn fields_param(def: &EntityDef) -> Json {
    let names = SYSTEM_FIELDS
        .iter()
        .copied()
        .chain(def.fields.iter().filter(|f| !f.secret).map(|f| f.name));
    let one = alternatives(names);
    // Empty (`fields=`) is every field, like no parameter.
    json!({ "type": "string", "pattern": format!("^(({one})(,({one}))*)?$"), "example": "id" })
}

/// The `sort` parameter of an entity type: up to four comma-separated keys, `-` for descending,
/// each a field the type can sort by (not JSON, tags or multi-choice fields; computed fields
/// sort by the stored fields they derive from).
pub fn sort_param(def: &EntityDef) -> Json {
    let names = SYSTEM_FIELDS
        .iter()
        .copied()
        .chain(
            def.fields
                .iter()
                .filter(|f| !f.secret && !matches!(f.spec.ty, FieldType::Json | FieldType::Tags | FieldType::MultiEnum))
                .map(|f| f.name),
        )
        .chain(def.computed.iter().map(|c| c.name));
    let one = alternatives(names);
    // Empty (`sort=`) is the default order, like no parameter.
    json!({ "type": "string", "pattern": format!("^(-?({one})(,-?({one})){{0,3}})?$"), "example": "-created_at" })
}
