//! Normalisation and validation of input. Input arrives as a JSON object (from HTTP, Python dicts, JS
//! objects, CSV rows turned into strings); every field is normalised (trimmed, emails lower-cased, phones
//! to E.164, enums to their canonical key) and then checked against its rules. All failing fields are
//! reported at once, sorted by path.

use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::FieldSpec;
use crate::value::{FieldType, Money, Timestamp, Value, parse_date};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Tenant custom field specs of one entity type, by key.
pub type CustomSpecs = BTreeMap<String, FieldSpec>;

/// Context that normalisation and rules need.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub now: Timestamp,
    /// Country calling code for phone numbers written without one (`1` for North America).
    pub phone_country_code: String,
}

/// Clock skew tolerated by "not in the future" (devices are often a little ahead).
const FUTURE_LEEWAY_MICROS: i64 = 5 * 60 * 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Applies `input` onto `rec`: parses and normalises each given field, applies defaults on create,
/// checks the rules. Returns the paths that changed, or every field error at once.
pub fn apply_input(
    rec: &mut Record,
    input: &Map<String, Json>,
    custom: &CustomSpecs,
    ctx: &Ctx,
    mode: Mode,
) -> Result<Vec<String>, Vec<FieldError>> {
    let def = rec.entity;
    let mut errs = Vec::new();
    let mut changed = Vec::new();
    for (key, raw) in input {
        match key.as_str() {
            "id" | "version" | "created_at" | "updated_at" => errs.push(FieldError::new(
                key,
                codes::READ_ONLY,
                format!("{key} is managed by the system"),
            )),
            "custom" if def.custom_fields => {
                let Some(obj) = raw.as_object() else {
                    errs.push(FieldError::new(
                        "custom",
                        codes::INVALID_TYPE,
                        "custom must be an object",
                    ));
                    continue;
                };
                for (k, raw) in obj {
                    let path = format!("custom.{k}");
                    let Some(spec) = custom.get(k) else {
                        errs.push(FieldError::new(
                            &path,
                            codes::UNKNOWN_FIELD,
                            format!("no custom field {k} on {}", def.name),
                        ));
                        continue;
                    };
                    match parse(&path, spec, raw, ctx) {
                        Ok(v) => {
                            check_value(&path, spec, &v, ctx.now, &mut errs);
                            let old = rec.custom.get(k).cloned().unwrap_or(Value::Null);
                            if old != v {
                                changed.push(path);
                                if v.is_null() {
                                    rec.custom.remove(k)
                                } else {
                                    rec.custom.insert(k.clone(), v)
                                };
                            }
                        }
                        Err(e) => errs.push(e),
                    }
                }
            }
            _ => {
                let Some(i) = def.index_of(key) else {
                    errs.push(FieldError::new(
                        key,
                        codes::UNKNOWN_FIELD,
                        format!("{} has no field {key}", def.name),
                    ));
                    continue;
                };
                let f = &def.fields[i];
                if !f.writable {
                    errs.push(FieldError::new(
                        key,
                        codes::READ_ONLY,
                        format!("{key} is derived and cannot be set"),
                    ));
                    continue;
                }
                match parse(key, &f.spec, raw, ctx) {
                    Ok(v) => {
                        check_value(key, &f.spec, &v, ctx.now, &mut errs);
                        if rec.values[i] != v {
                            rec.values[i] = v;
                            changed.push(key.clone());
                        }
                    }
                    Err(e) => errs.push(e),
                }
            }
        }
    }
    if mode == Mode::Create {
        for (i, f) in def.fields.iter().enumerate() {
            if rec.values[i].is_null()
                && let Some(d) = &f.default
            {
                rec.values[i] = d.clone();
            }
        }
    }
    // Required fields: all of them on create; on update only those the input touched, so a legacy
    // row that breaks a newer rule can still be edited (the integrity checker reports it).
    for (i, f) in def.fields.iter().enumerate() {
        let touched = mode == Mode::Create || input.contains_key(f.name);
        if f.spec.required && touched && rec.values[i].is_null() {
            push_unique(
                &mut errs,
                FieldError::new(f.name, codes::REQUIRED, format!("{} is required", f.name)),
            );
        }
    }
    for (k, spec) in custom {
        let touched = mode == Mode::Create || input.get("custom").and_then(|c| c.get(k)).is_some();
        if spec.required && touched && !rec.custom.contains_key(k) {
            push_unique(
                &mut errs,
                FieldError::new(format!("custom.{k}"), codes::REQUIRED, format!("{k} is required")),
            );
        }
    }
    if errs.is_empty()
        && let Some(check) = def.check
    {
        check(rec, &mut errs);
    }
    if errs.is_empty() {
        Ok(changed)
    } else {
        errs.sort_by(|a, b| a.path.cmp(&b.path));
        Err(errs)
    }
}

fn push_unique(errs: &mut Vec<FieldError>, e: FieldError) {
    if !errs.iter().any(|x| x.path == e.path) {
        errs.push(e);
    }
}

/// Checks a stored record against today's rules (for the integrity checker): required fields, options,
/// lengths, ranges, dates in the future (including `created_at`) and the entity's cross-field rules.
pub fn check_stored(rec: &Record, custom: &CustomSpecs, now: Timestamp) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if rec.created_at.0 > now.0 + FUTURE_LEEWAY_MICROS {
        errs.push(FieldError::new("created_at", codes::IN_FUTURE, "created in the future"));
    }
    for (i, f) in rec.entity.fields.iter().enumerate() {
        let v = &rec.values[i];
        if v.is_null() {
            if f.spec.required {
                errs.push(FieldError::new(f.name, codes::REQUIRED, format!("{} is empty", f.name)));
            }
        } else {
            check_value(f.name, &f.spec, v, now, &mut errs);
        }
    }
    for (k, v) in &rec.custom {
        match custom.get(k) {
            Some(spec) => check_value(&format!("custom.{k}"), spec, v, now, &mut errs),
            None => errs.push(FieldError::new(
                format!("custom.{k}"),
                codes::UNKNOWN_FIELD,
                "custom field no longer defined",
            )),
        }
    }
    for (k, spec) in custom {
        if spec.required && !rec.custom.contains_key(k) {
            errs.push(FieldError::new(
                format!("custom.{k}"),
                codes::REQUIRED,
                format!("{k} is empty"),
            ));
        }
    }
    if let Some(check) = rec.entity.check {
        check(rec, &mut errs);
    }
    errs
}

/// Checks an already-typed value against the field's rules.
pub fn check_value(path: &str, spec: &FieldSpec, v: &Value, now: Timestamp, errs: &mut Vec<FieldError>) {
    match v {
        Value::Null => {}
        Value::Text(s) => {
            if let Some(max) = spec.max_len
                && s.chars().count() > max as usize
            {
                errs.push(FieldError::new(
                    path,
                    codes::TOO_LONG,
                    format!("at most {max} characters"),
                ));
            }
            if spec.ty == FieldType::Enum && !spec.options.iter().any(|o| o == s) {
                errs.push(FieldError::new(
                    path,
                    codes::INVALID_OPTION,
                    format!("must be one of: {}", spec.options.join(", ")),
                ));
            }
        }
        Value::List(items) => {
            if spec.ty == FieldType::MultiEnum
                && let Some(bad) = items.iter().find(|i| !spec.options.contains(i))
            {
                errs.push(FieldError::new(
                    path,
                    codes::INVALID_OPTION,
                    format!("{bad} is not one of: {}", spec.options.join(", ")),
                ));
            }
            if items
                .iter()
                .any(|t| t.chars().count() > spec.max_len.unwrap_or(50) as usize)
            {
                errs.push(FieldError::new(path, codes::TOO_LONG, "an item is too long"));
            }
            if items.len() > 100 {
                errs.push(FieldError::new(path, codes::TOO_LONG, "at most 100 items"));
            }
        }
        Value::Int(n) => range(path, spec, *n as f64, errs),
        Value::Money(m) => range(path, spec, m.0 as f64, errs),
        Value::Number(n) => range(path, spec, *n, errs),
        Value::Date(d) => {
            if spec.not_in_future && Timestamp::from_date(*d) > now.plus_days(1) {
                errs.push(FieldError::new(path, codes::IN_FUTURE, "may not be in the future"));
            }
        }
        Value::Timestamp(t) => {
            if spec.not_in_future && t.0 > now.0 + FUTURE_LEEWAY_MICROS {
                errs.push(FieldError::new(path, codes::IN_FUTURE, "may not be in the future"));
            }
        }
        Value::Bool(_) | Value::Id(_) | Value::Json(_) => {}
    }
}

fn range(path: &str, spec: &FieldSpec, n: f64, errs: &mut Vec<FieldError>) {
    if let Some(min) = spec.min
        && n < min as f64
    {
        errs.push(FieldError::new(path, codes::TOO_SMALL, format!("at least {min}")));
    }
    if let Some(max) = spec.max
        && n > max as f64
    {
        errs.push(FieldError::new(path, codes::TOO_LARGE, format!("at most {max}")));
    }
}

/// Parses and normalises one input value for a field. Strings are accepted for every type, so CSV cells
/// and form fields go through the same path as typed JSON. Empty strings mean "not set".
pub fn parse(path: &str, spec: &FieldSpec, raw: &Json, ctx: &Ctx) -> Result<Value, FieldError> {
    let bad = |code: &str, msg: &str| FieldError::new(path, code, msg);
    if raw.is_null() {
        return Ok(Value::Null);
    }
    if let Json::String(s) = raw
        && s.trim().is_empty()
    {
        return Ok(Value::Null);
    }
    let text = || -> Result<&str, FieldError> {
        raw.as_str()
            .map(str::trim)
            .ok_or_else(|| bad(codes::INVALID_TYPE, "expected a string"))
    };
    Ok(match &spec.ty {
        FieldType::Text => Value::Text(text()?.to_owned()),
        FieldType::Email => {
            Value::Text(normalize_email(text()?).ok_or_else(|| bad(codes::INVALID_EMAIL, "not a valid email address"))?)
        }
        FieldType::Phone => Value::Text(
            normalize_phone(text()?, &ctx.phone_country_code)
                .ok_or_else(|| bad(codes::INVALID_PHONE, "not a valid phone number"))?,
        ),
        FieldType::Url => {
            Value::Text(normalize_url(text()?).ok_or_else(|| bad(codes::INVALID_URL, "not a valid http(s) URL"))?)
        }
        FieldType::Enum => Value::Text(option_key(text()?)),
        FieldType::MultiEnum | FieldType::Tags => {
            let items: Vec<String> = match raw {
                Json::String(s) => s.split([',', ';']).map(str::to_owned).collect(),
                Json::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad(codes::INVALID_TYPE, "expected a list of strings"))?,
                _ => return Err(bad(codes::INVALID_TYPE, "expected a list of strings")),
            };
            let mut out: Vec<String> = Vec::new();
            for i in items {
                let k = if spec.ty == FieldType::Tags {
                    i.trim().to_lowercase()
                } else {
                    option_key(&i)
                };
                if !k.is_empty() && !out.contains(&k) {
                    out.push(k);
                }
            }
            if out.is_empty() { Value::Null } else { Value::List(out) }
        }
        FieldType::Integer => Value::Int(match raw {
            Json::Number(n) => n
                .as_i64()
                .ok_or_else(|| bad(codes::INVALID_TYPE, "expected a whole number"))?,
            Json::String(s) => s
                .trim()
                .parse()
                .map_err(|_| bad(codes::INVALID_TYPE, "expected a whole number"))?,
            _ => return Err(bad(codes::INVALID_TYPE, "expected a whole number")),
        }),
        FieldType::Number => {
            let n = match raw {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n.is_finite() => Value::Number(n),
                _ => return Err(bad(codes::INVALID_TYPE, "expected a number")),
            }
        }
        FieldType::Money => Value::Money(match raw {
            Json::String(s) => {
                Money::parse(s).ok_or_else(|| bad(codes::INVALID_MONEY, "expected an amount like 1234.50"))?
            }
            Json::Number(n) => n.as_i64().and_then(Money::from_major).ok_or_else(|| {
                bad(
                    codes::INVALID_MONEY,
                    "send amounts with cents as strings, like \"1234.50\"",
                )
            })?,
            _ => {
                return Err(bad(codes::INVALID_MONEY, "expected an amount like \"1234.50\""));
            }
        }),
        FieldType::Date => {
            Value::Date(parse_date(text()?).ok_or_else(|| bad(codes::INVALID_DATE, "expected a date like 2025-01-31"))?)
        }
        FieldType::Timestamp => Value::Timestamp(
            Timestamp::parse(text()?)
                .ok_or_else(|| bad(codes::INVALID_DATE, "expected a time like 2025-01-31T09:30:00Z"))?,
        ),
        FieldType::Bool => Value::Bool(match raw {
            Json::Bool(b) => *b,
            Json::Number(n) if n.as_i64() == Some(0) => false,
            Json::Number(n) if n.as_i64() == Some(1) => true,
            Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "1" => true,
                "false" | "no" | "n" | "0" => false,
                _ => return Err(bad(codes::INVALID_TYPE, "expected true or false")),
            },
            _ => return Err(bad(codes::INVALID_TYPE, "expected true or false")),
        }),
        FieldType::Ref(_) => Value::Id(
            text()?
                .parse()
                .map_err(|_| bad(codes::INVALID_FORMAT, "expected an id"))?,
        ),
        FieldType::Json => match raw {
            Json::Object(_) | Json::Array(_) => Value::Json(raw.clone()),
            Json::String(s) => {
                Value::Json(serde_json::from_str(s).map_err(|_| bad(codes::INVALID_FORMAT, "expected JSON"))?)
            }
            _ => return Err(bad(codes::INVALID_TYPE, "expected an object or a list")),
        },
    })
}

/// `"Door Knock"` -> `"door_knock"`.
fn option_key(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Lower-cases and checks an email address (one `@`, a dotted domain, no spaces).
/// Shortest password accepted, in characters (OWASP ASVS 5.0 asks for at least 8 and recommends 15;
/// 12 is the floor here, with no composition rules, as NIST SP 800-63B advises).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password accepted, in bytes. Passwords are never truncated: a longer one is refused, so
/// hashing cost stays bounded and what the user typed is exactly what is checked.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// The password policy, checked before a frontend hashes a new password. The error's path is
/// `password`.
pub fn check_password(password: &str) -> Result<(), FieldError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(FieldError::new(
            "password",
            codes::TOO_SHORT,
            format!("at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(FieldError::new(
            "password",
            codes::TOO_LONG,
            format!("at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',' && c != ';' && c != '<' && c != '>')
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    ok.then_some(s)
}

/// Normalises a phone number to E.164 (`+15551234567`). Numbers without a country code get
/// `default_cc`; 8 to 15 digits in all.
pub fn normalize_phone(s: &str, default_cc: &str) -> Option<String> {
    let s = s.trim();
    if s.chars().any(|c| !(c.is_ascii_digit() || " -.()+/".contains(c))) {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let intl = s.starts_with('+') || s.starts_with("00");
    if s.chars().skip(1).any(|c| c == '+') {
        return None;
    }
    let full = if s.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00").filter(|_| intl) {
        rest.to_owned()
    } else if default_cc == "1" && digits.len() == 11 && digits.starts_with('1') {
        digits
    } else {
        format!("{default_cc}{}", digits.trim_start_matches('0'))
    };
    (8..=15)
        .contains(&full.len())
        .then(|| format!("+{full}"))
        .filter(|p| !p.starts_with("+0"))
}

/// Normalises a web address: adds `https://` when the scheme is missing, lower-cases scheme and host.
pub fn normalize_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) || s.len() > 2048 {
        return None;
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, rest)) => (sc.to_ascii_lowercase(), rest),
        None => ("https".to_owned(), s),
    };
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = host.to_ascii_lowercase();
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            ""
        }
    });
    let valid = (name.contains('.') || name == "localhost")
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    valid.then(|| format!("{scheme}://{host}{path}"))
}

/// The cross-field check of a `custom_field` record: a usable key, a known entity, a valid spec.
pub fn check_custom_field_def(r: &Record, errs: &mut Vec<FieldError>) {
    let entity = r.str("entity").unwrap_or_default();
    if !crate::entity::entity(entity).is_some_and(|e| e.custom_fields) {
        errs.push(FieldError::new(
            "entity",
            codes::INVALID_OPTION,
            "this entity type has no custom fields",
        ));
    }
    let key = r.str("key").unwrap_or_default();
    let key_ok = key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !key_ok {
        errs.push(FieldError::new(
            "key",
            codes::INVALID_FORMAT,
            "lower-case letters, digits and _, starting with a letter",
        ));
    }
    match r
        .get("spec")
        .map(|v| v.to_json())
        .map(serde_json::from_value::<FieldSpec>)
    {
        Some(Ok(spec)) => {
            if !spec.ty.allowed_for_custom() {
                errs.push(FieldError::new(
                    "spec.type",
                    codes::INVALID_OPTION,
                    "not a custom field type",
                ));
            }
            if matches!(spec.ty, FieldType::Enum | FieldType::MultiEnum) && spec.options.is_empty() {
                errs.push(FieldError::new(
                    "spec.options",
                    codes::REQUIRED,
                    "enum fields need options",
                ));
            }
        }
        Some(Err(e)) => errs.push(FieldError::new("spec", codes::INVALID_FORMAT, e.to_string())),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::LEAD;
    use serde_json::json;

    fn ctx() -> Ctx {
        Ctx {
            now: Timestamp::parse("2025-06-01T00:00:00Z").unwrap(),
            phone_country_code: "1".into(),
        }
    }

    fn lead() -> Record {
        Record::empty(&LEAD, uuid::Uuid::nil(), uuid::Uuid::nil(), ctx().now)
    }

    #[test]
    fn normalises_before_checking() {
        let mut r = lead();
        let input = json!({"email": "  Ann@Example.COM ", "phone": "(555) 123-4567", "source": "Door Knock",
                           "estimated_value": "12,500.50", "tags": "VIP; storm ,vip"});
        apply_input(
            &mut r,
            input.as_object().unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(r.str("email"), Some("ann@example.com"));
        assert_eq!(r.str("phone"), Some("+15551234567"));
        assert_eq!(r.str("source"), Some("door_knock"));
        assert_eq!(r.get("estimated_value"), Some(&Value::Money(Money(1_250_050))));
        assert_eq!(r.get("tags"), Some(&Value::List(vec!["vip".into(), "storm".into()])));
        assert_eq!(r.str("status"), Some("new"), "defaults applied on create");
    }

    #[test]
    fn reports_every_failing_field_with_code_and_path() {
        let mut r = lead();
        let input = json!({"email": "nope", "phone": "12", "source": "carrier pigeon", "estimated_value": 1.5,
                           "score": 99, "notes": "x".repeat(10_001), "wat": 1, "custom": {"roof": "x"}});
        let errs = apply_input(
            &mut r,
            input.as_object().unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Create,
        )
        .unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("custom.roof", codes::UNKNOWN_FIELD),
                ("email", codes::INVALID_EMAIL),
                ("estimated_value", codes::INVALID_MONEY),
                ("notes", codes::TOO_LONG),
                ("phone", codes::INVALID_PHONE),
                ("score", codes::READ_ONLY),
                ("source", codes::INVALID_OPTION),
                ("wat", codes::UNKNOWN_FIELD),
            ]
        );
    }

    #[test]
    fn future_dates_and_cross_field_rules() {
        let mut r = Record::empty(
            &crate::entity::ACTIVITY,
            uuid::Uuid::nil(),
            uuid::Uuid::nil(),
            ctx().now,
        );
        let errs = apply_input(
            &mut r,
            json!({"kind": "call", "occurred_at": "2030-01-01T00:00:00Z"})
                .as_object()
                .unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(errs[0].code, codes::IN_FUTURE);
        let mut r = Record::empty(
            &crate::entity::ACTIVITY,
            uuid::Uuid::nil(),
            uuid::Uuid::nil(),
            ctx().now,
        );
        let errs = apply_input(
            &mut r,
            json!({"kind": "call", "occurred_at": "2025-01-01"})
                .as_object()
                .unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(
            (errs[0].path.as_str(), errs[0].code.as_str()),
            ("lead_id", codes::REQUIRED)
        );
    }

    #[test]
    fn phones_and_urls() {
        assert_eq!(
            normalize_phone("+44 20 7946 0958", "1").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            normalize_phone("0044 20 7946 0958", "1").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(normalize_phone("1-555-123-4567", "1").as_deref(), Some("+15551234567"));
        assert_eq!(normalize_phone("555-1234 x12", "1"), None);
        assert_eq!(
            normalize_url("Example.com/Roofs").as_deref(),
            Some("https://example.com/Roofs")
        );
        assert_eq!(normalize_url("ftp://example.com"), None);
        assert_eq!(normalize_url("javascript:alert(1)"), None);
    }
}
