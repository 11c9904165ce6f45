//! Normalisation and validation of input. Input arrives as a JSON object: typed JSON (from HTTP,
//! Python dicts, JS objects, mobile and sync patches), where every value must already have its field's
//! type, or CSV rows of text cells, which are read by the declared type ([`Source`]). Every field is
//! then normalised (trimmed, emails lower-cased, phones to E.164, enums to their canonical key) and
//! checked against its rules. No text value may hold a control character other than tab, line feed or
//! carriage return. All failing fields are reported at once, sorted by path.

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
    /// Today's date in the tenant's time zone at `now` (what a date field defaulting to today gets).
    pub today: time::Date,
    /// Country calling code for phone numbers written without one (`1` for North America).
    pub phone_country_code: String,
    /// What the input values are: typed JSON or text cells.
    pub source: Source,
}

/// Where input values come from, which decides how strictly they are typed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// Typed JSON (HTTP bodies, Python, JavaScript, mobile, sync patches): every value must have its
    /// field's JSON type ([`parse_json`]); nothing is converted across types, so `"tags": "a,b"` or
    /// `"active": "no"` is an `invalid_type` error, not a list or a `false`.
    #[default]
    Json,
    /// Text cells (CSV import): every string is read by its field's declared type ([`parse_text`]).
    Text,
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
                    match read_input(&path, spec, raw, ctx) {
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
                match read_input(key, &f.spec, raw, ctx) {
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
            if !rec.values[i].is_null() {
                continue;
            }
            if let Some(d) = &f.default {
                rec.values[i] = d.clone();
            } else if f.default_now {
                rec.values[i] = match f.spec.ty {
                    FieldType::Date => Value::Date(ctx.today),
                    _ => Value::Timestamp(ctx.now),
                };
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
    // Input was checked when parsed; this reports values stored before control characters were refused.
    let controls = match v {
        Value::Text(s) => check_controls_str(path, s),
        Value::List(items) => items.iter().try_for_each(|i| check_controls_str(path, i)),
        Value::Json(j) => check_controls(path, j),
        _ => Ok(()),
    };
    errs.extend(controls.err());
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
        Value::Decimal(d) => range(path, spec, f64::try_from(*d).unwrap_or(f64::NAN), errs),
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

/// Reads one value for a field from where `ctx.source` says input comes from: strictly typed JSON
/// ([`parse_json`]) or text ([`parse`]).
fn read_input(path: &str, spec: &FieldSpec, raw: &Json, ctx: &Ctx) -> Result<Value, FieldError> {
    match ctx.source {
        Source::Json => parse_json(path, spec, raw, ctx),
        Source::Text => parse(path, spec, raw, ctx),
    }
}

/// Reads one typed JSON value for a field, strictly: the value must have the field's JSON type (the
/// form [`Value::to_json`] gives) and is never converted from another type. Text-like types, enums,
/// dates, times and references take strings; integers take JSON integers (not `"12"`, not `1.5`);
/// numbers take JSON numbers; booleans take `true` or `false`; tags and multi-enums take lists of
/// strings; JSON fields take objects and lists; money takes a decimal string (`"1,234.50"`) or a
/// JSON number of major units with at most two decimals, read exactly ([`money_number`]). `null`,
/// and a blank string for a string-typed field, mean "not set". Strings are then normalised as in [`parse_text`]; no string anywhere in the value may hold a
/// forbidden control character ([`is_forbidden_control`]).
pub fn parse_json(path: &str, spec: &FieldSpec, raw: &Json, ctx: &Ctx) -> Result<Value, FieldError> {
    check_controls(path, raw)?;
    match (raw, &spec.ty) {
        (Json::Null, _) => Ok(Value::Null),
        (Json::String(s), ty) if ty.is_string_form() => text_value(path, spec, s, ctx),
        (Json::Array(items), FieldType::MultiEnum | FieldType::Tags) => items
            .iter()
            .map(Json::as_str)
            .collect::<Option<Vec<_>>>()
            .map(|items| list(spec, items))
            .ok_or_else(|| type_error(path, &spec.ty)),
        (Json::Number(n), FieldType::Integer) => n.as_i64().map(Value::Int).ok_or_else(|| type_error(path, &spec.ty)),
        (Json::Number(n), FieldType::Number) => n
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Value::Number)
            .ok_or_else(|| type_error(path, &spec.ty)),
        (Json::Number(n), FieldType::Money) => money_number(path, n).map(Value::Money),
        // A JSON number reads by its shortest decimal form (`2.5`, `0.1`), exactly.
        (Json::Number(n), FieldType::Decimal) => crate::decimal::parse(&n.to_string())
            .map(Value::Decimal)
            .ok_or_else(|| type_error(path, &spec.ty)),
        (Json::Bool(b), FieldType::Bool) => Ok(Value::Bool(*b)),
        (Json::Object(_) | Json::Array(_), FieldType::Json) => Ok(Value::Json(raw.clone())),
        _ => Err(type_error(path, &spec.ty)),
    }
}

/// Reads a JSON number as money, exactly: a whole number is major units; a fraction reads by its
/// shortest round-trip decimal form (`1234.5` is `"1234.5"`, never `1234.4999…`), which may have at
/// most the currency's two decimals (`0.1 + 0.2`, whose shortest form is `0.30000000000000004`, is
/// refused rather than rounded). Exponent forms (`1e21`) and amounts beyond the range are refused.
fn money_number(path: &str, n: &serde_json::Number) -> Result<Money, FieldError> {
    if let Some(units) = n.as_i64() {
        return Money::from_major(units)
            .ok_or_else(|| FieldError::new(path, codes::INVALID_MONEY, "amount out of range"));
    }
    // serde_json prints an f64 in its shortest round-trip form (ryu).
    let text = n.to_string();
    if let Some((_, frac)) = text.split_once('.')
        && frac.len() > 2
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(FieldError::new(
            path,
            codes::INVALID_MONEY,
            format!("{text} has more than 2 decimals; amounts are exact to the cent"),
        ));
    }
    Money::parse(&text).ok_or_else(|| {
        FieldError::new(
            path,
            codes::INVALID_MONEY,
            format!("{text} is not an amount of money; expected a number like 1234.5 or a string like \"1234.50\""),
        )
    })
}

/// Reads a value that may be text: strings are read by the field's declared type ([`parse_text`]),
/// other JSON values strictly ([`parse_json`]). For values that arrive as text: CSV cells and filter
/// values.
pub fn parse(path: &str, spec: &FieldSpec, raw: &Json, ctx: &Ctx) -> Result<Value, FieldError> {
    match raw {
        Json::String(s) => parse_text(path, spec, s, ctx),
        other => parse_json(path, spec, other, ctx),
    }
}

/// Reads one text value (a CSV cell, a filter value) by the field's declared type and normalises it:
/// trimmed; emails lower-cased, phones to E.164, enum options to their key; `true`/`yes`/`y`/`1` and
/// `false`/`no`/`n`/`0` for booleans; `"a, b; c"` for tags and multi-enums; decimal text for
/// integers, numbers and money; JSON text (an object or a list) for JSON fields. A blank string means
/// "not set". A forbidden control character ([`is_forbidden_control`]) is refused.
pub fn parse_text(path: &str, spec: &FieldSpec, s: &str, ctx: &Ctx) -> Result<Value, FieldError> {
    check_controls_str(path, s)?;
    text_value(path, spec, s, ctx)
}

/// [`parse_text`] after the control character check.
fn text_value(path: &str, spec: &FieldSpec, s: &str, ctx: &Ctx) -> Result<Value, FieldError> {
    let bad = |code: &str, msg: &str| FieldError::new(path, code, msg);
    let s = s.trim();
    if s.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match &spec.ty {
        FieldType::Text => Value::Text(s.to_owned()),
        FieldType::Email => {
            Value::Text(normalize_email(s).ok_or_else(|| bad(codes::INVALID_EMAIL, "not a valid email address"))?)
        }
        FieldType::Phone => Value::Text(
            normalize_phone(s, &ctx.phone_country_code)
                .ok_or_else(|| bad(codes::INVALID_PHONE, "not a valid phone number"))?,
        ),
        FieldType::Url => {
            Value::Text(normalize_url(s).ok_or_else(|| bad(codes::INVALID_URL, "not a valid http(s) URL"))?)
        }
        FieldType::Enum => Value::Text(option_key(s)),
        FieldType::MultiEnum | FieldType::Tags => list(spec, s.split([',', ';'])),
        FieldType::Integer => Value::Int(s.parse().map_err(|_| type_error(path, &spec.ty))?),
        FieldType::Number => Value::Number(
            s.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| type_error(path, &spec.ty))?,
        ),
        FieldType::Money => {
            Value::Money(Money::parse(s).ok_or_else(|| bad(codes::INVALID_MONEY, "expected an amount like 1234.50"))?)
        }
        FieldType::Decimal => Value::Decimal(crate::decimal::parse(s).ok_or_else(|| type_error(path, &spec.ty))?),
        FieldType::Date => {
            Value::Date(parse_date(s).ok_or_else(|| bad(codes::INVALID_DATE, "expected a date like 2025-01-31"))?)
        }
        FieldType::Timestamp => Value::Timestamp(
            Timestamp::parse(s).ok_or_else(|| bad(codes::INVALID_DATE, "expected a time like 2025-01-31T09:30:00Z"))?,
        ),
        FieldType::Bool => Value::Bool(match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => true,
            "false" | "no" | "n" | "0" => false,
            _ => return Err(type_error(path, &spec.ty)),
        }),
        FieldType::Ref(_) => {
            Value::Id(crate::value::parse_id(s).ok_or_else(|| bad(codes::INVALID_FORMAT, "expected an id"))?)
        }
        FieldType::Json => match serde_json::from_str::<Json>(s) {
            Ok(j @ (Json::Object(_) | Json::Array(_))) => {
                check_controls(path, &j)?;
                Value::Json(j)
            }
            Ok(_) => return Err(type_error(path, &spec.ty)),
            Err(_) => return Err(bad(codes::INVALID_FORMAT, "expected JSON")),
        },
    })
}

/// Normalises tags (lower case) or multi-enum options (keys), dropping blanks and repeats; no items
/// is "not set".
fn list<'a>(spec: &FieldSpec, items: impl IntoIterator<Item = &'a str>) -> Value {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let k = if spec.ty == FieldType::Tags {
            i.trim().to_lowercase()
        } else {
            option_key(i)
        };
        if !k.is_empty() && !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() { Value::Null } else { Value::List(out) }
}

/// The error for a value of the wrong JSON type (or text that does not read as the declared type).
fn type_error(path: &str, ty: &FieldType) -> FieldError {
    let msg = match ty {
        FieldType::Money => {
            return FieldError::new(path, codes::INVALID_MONEY, "expected an amount like \"1234.50\"");
        }
        FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Enum => "expected a string",
        FieldType::Date => "expected a date string like \"2025-01-31\"",
        FieldType::Timestamp => "expected a time string like \"2025-01-31T09:30:00Z\"",
        FieldType::Ref(_) => "expected an id string",
        FieldType::Integer => "expected a whole number",
        FieldType::Number => "expected a number",
        FieldType::Decimal => "expected a decimal like \"2.5\" (at most 6 decimals)",
        FieldType::Bool => "expected true or false",
        FieldType::MultiEnum | FieldType::Tags => "expected a list of strings",
        FieldType::Json => "expected an object or a list",
    };
    FieldError::new(path, codes::INVALID_TYPE, msg)
}

/// Control characters other than tab, line feed and carriage return. Invisible, they corrupt
/// terminals, logs and CSV consumers, and PostgreSQL cannot store NUL, so no text value may hold one.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

fn check_controls_str(path: &str, s: &str) -> Result<(), FieldError> {
    match s.chars().find(|c| is_forbidden_control(*c)) {
        None => Ok(()),
        Some(c) => Err(FieldError::new(
            path,
            codes::CONTROL_CHARACTER,
            format!("control character U+{:04X} is not allowed", c as u32),
        )),
    }
}

/// Refuses a forbidden control character in any string of `j`: nested values and object keys too.
fn check_controls(path: &str, j: &Json) -> Result<(), FieldError> {
    match j {
        Json::String(s) => check_controls_str(path, s),
        Json::Array(a) => a.iter().try_for_each(|v| check_controls(path, v)),
        Json::Object(o) => o.iter().try_for_each(|(k, v)| {
            check_controls_str(path, k)?;
            check_controls(path, v)
        }),
        Json::Null | Json::Bool(_) | Json::Number(_) => Ok(()),
    }
}

/// `"Door Knock"` -> `"door_knock"`.
pub fn option_key(s: &str) -> String {
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
    // An IPv6 literal: `[2001:db8::1]` with an optional port.
    if let Some(inner) = host.strip_prefix('[') {
        let (ip, port) = inner.split_once(']')?;
        let port_ok = port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        return port_ok.then(|| format!("{scheme}://[{ip}]{port}{path}"));
    }
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
            today: time::macros::date!(2025 - 06 - 01),
            phone_country_code: "1".into(),
            source: Source::Json,
        }
    }

    fn lead() -> Record {
        Record::empty(&LEAD, uuid::Uuid::nil(), uuid::Uuid::nil(), ctx().now)
    }

    #[test]
    fn normalises_before_checking() {
        let mut r = lead();
        let input = json!({"email": "  Ann@Example.COM ", "phone": "(555) 123-4567", "source": "Door Knock",
                           "estimated_value": "12,500.50", "tags": ["VIP", " storm ", "vip"]});
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
        let input = json!({"email": "nope", "phone": "12", "source": "carrier pigeon", "estimated_value": 1.505,
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
        assert_eq!(
            normalize_url("http://[2001:DB8:0::1]:8080/h").as_deref(),
            Some("http://[2001:db8::1]:8080/h")
        );
        assert_eq!(normalize_url("http://[::1%25eth0]/"), None);
        assert_eq!(normalize_url("http://[::1]x/"), None);
    }

    // ---- strict JSON, lenient text, control characters ----

    use FieldType as T;
    use proptest::prelude::*;

    const ID: &str = "0190a4c4-4c4c-7c4c-8c4c-4c4c4c4c4c4c";

    fn spec(ty: T) -> FieldSpec {
        let mut s = FieldSpec::new(ty);
        s.options = vec!["door_knock".into(), "referral".into()];
        s
    }

    /// Reads `raw` for a field named `f` of type `ty`: the value's JSON form, or the error code.
    fn read(source: Source, ty: T, raw: &Json) -> Result<Json, String> {
        let ctx = Ctx { source, ..ctx() };
        read_input("f", &spec(ty), raw, &ctx).map(|v| v.to_json()).map_err(|e| {
            assert_eq!(e.path, "f");
            e.code
        })
    }

    fn ok(source: Source, ty: T, raw: Json, want: Json) {
        assert_eq!(read(source, ty.clone(), &raw), Ok(want), "{source:?} {ty:?} {raw}");
    }

    fn bad(source: Source, ty: T, raw: Json, code: &str) {
        assert_eq!(
            read(source, ty.clone(), &raw),
            Err(code.to_owned()),
            "{source:?} {ty:?} {raw}"
        );
    }

    #[test]
    fn json_input_is_strictly_typed() {
        let (ok, bad) = (
            |t, r, w| ok(Source::Json, t, r, w),
            |t, r, c| bad(Source::Json, t, r, c),
        );
        // Text-like types and enums take strings; blank is "not set".
        ok(T::Text, json!("  Ann "), json!("Ann"));
        ok(T::Text, json!("  "), Json::Null);
        ok(T::Text, Json::Null, Json::Null);
        for raw in [json!(5), json!(true), json!(["Ann"]), json!({"a": 1})] {
            bad(T::Text, raw, codes::INVALID_TYPE);
        }
        ok(T::Email, json!(" A@B.co "), json!("a@b.co"));
        bad(T::Email, json!(5), codes::INVALID_TYPE);
        bad(T::Phone, json!(5_551_234_567i64), codes::INVALID_TYPE);
        bad(T::Url, json!({"href": "example.com"}), codes::INVALID_TYPE);
        ok(T::Enum, json!("Door Knock"), json!("door_knock"));
        bad(T::Enum, json!(1), codes::INVALID_TYPE);
        bad(T::Enum, json!(["referral"]), codes::INVALID_TYPE);
        // Tags and multi-enums take lists of strings, never a delimited string.
        ok(T::Tags, json!(["VIP", " storm", "vip", ""]), json!(["vip", "storm"]));
        ok(T::Tags, json!([]), Json::Null);
        for raw in [json!("a,b"), json!(""), json!(["a", 1]), json!({"a": "b"})] {
            bad(T::Tags, raw, codes::INVALID_TYPE);
        }
        ok(T::MultiEnum, json!(["Referral"]), json!(["referral"]));
        bad(T::MultiEnum, json!("referral"), codes::INVALID_TYPE);
        // Booleans take true and false only.
        ok(T::Bool, json!(false), json!(false));
        for raw in [json!("no"), json!("false"), json!(0), json!(1), json!(""), json!([])] {
            bad(T::Bool, raw, codes::INVALID_TYPE);
        }
        // Integers take JSON integers only; numbers any finite JSON number.
        ok(T::Integer, json!(-12), json!(-12));
        for raw in [json!("12"), json!(1.5), json!(12.0), json!(true), json!("")] {
            bad(T::Integer, raw, codes::INVALID_TYPE);
        }
        ok(T::Number, json!(45.5), json!(45.5));
        ok(T::Number, json!(45), json!(45.0));
        for raw in [json!("45.5"), json!(false)] {
            bad(T::Number, raw, codes::INVALID_TYPE);
        }
        // Money: a decimal string (as documented, `"18,500"` too) or a JSON number of major units
        // with at most two decimals, read exactly by its shortest decimal form.
        ok(T::Money, json!("18,500.50"), json!("18500.50"));
        ok(T::Money, json!(18500), json!("18500.00"));
        ok(T::Money, json!(1234.5), json!("1234.50"));
        ok(T::Money, json!(-0.01), json!("-0.01"));
        ok(T::Money, json!(1.1), json!("1.10"));
        ok(T::Money, json!(18500.0), json!("18500.00"));
        ok(T::Money, json!(0.07), json!("0.07"));
        ok(T::Money, json!(""), Json::Null);
        for raw in [
            json!(1.505),
            json!(0.1 + 0.2),
            json!(1e300),
            json!(u64::MAX),
            json!("1.234"),
            json!(true),
            json!(["1"]),
        ] {
            bad(T::Money, raw, codes::INVALID_MONEY);
        }
        let e = parse_json("v", &FieldSpec::new(T::Money), &json!(0.1 + 0.2), &ctx()).unwrap_err();
        assert!(
            e.message.contains("0.30000000000000004") && e.message.contains("2 decimals"),
            "{}",
            e.message
        );
        // Decimals: a string or a JSON number, read exactly by its decimal digits; answered as a string.
        ok(T::Decimal, json!("2.50"), json!("2.5"));
        ok(T::Decimal, json!(0.1), json!("0.1"));
        ok(T::Decimal, json!(3), json!("3"));
        for raw in [
            json!("1.1234567"),
            json!("1e3"),
            json!(1e300),
            json!(true),
            json!("9999999999999"),
        ] {
            bad(T::Decimal, raw, codes::INVALID_TYPE);
        }
        // Dates and times take strings.
        ok(T::Date, json!("2025-01-31"), json!("2025-01-31"));
        bad(T::Date, json!(20_250_131), codes::INVALID_TYPE);
        bad(T::Date, json!("31/01/2025"), codes::INVALID_DATE);
        ok(T::Timestamp, json!("2025-01-31"), json!("2025-01-31T00:00:00Z"));
        ok(
            T::Timestamp,
            json!("2025-01-31T09:30:00+02:00"),
            json!("2025-01-31T07:30:00Z"),
        );
        bad(T::Timestamp, json!(1_738_281_600), codes::INVALID_TYPE);
        // References take UUID strings.
        ok(T::Ref("lead"), json!(ID), json!(ID));
        bad(T::Ref("lead"), json!("lead-42"), codes::INVALID_FORMAT);
        bad(T::Ref("lead"), json!(42), codes::INVALID_TYPE);
        bad(T::Ref("lead"), json!([ID]), codes::INVALID_TYPE);
        // JSON fields take objects and lists as given; JSON text in a string is not decoded.
        ok(T::Json, json!({"a": [1]}), json!({"a": [1]}));
        ok(T::Json, json!([1, "x"]), json!([1, "x"]));
        for raw in [json!("{\"a\": 1}"), json!(1), json!(true)] {
            bad(T::Json, raw, codes::INVALID_TYPE);
        }
    }

    #[test]
    fn text_cells_are_read_by_declared_type() {
        let ok = |t, s: &str, w| ok(Source::Text, t, json!(s), w);
        let bad = |t, s: &str, c| bad(Source::Text, t, json!(s), c);
        ok(T::Text, " Ann ", json!("Ann"));
        ok(T::Enum, "Door Knock", json!("door_knock"));
        ok(T::Tags, "VIP; storm ,vip", json!(["vip", "storm"]));
        ok(T::MultiEnum, "referral, Door Knock", json!(["referral", "door_knock"]));
        for (s, b) in [("yes", true), ("Y", true), ("true", true), ("1", true)] {
            ok(T::Bool, s, json!(b));
        }
        for (s, b) in [("no", false), ("N", false), ("FALSE", false), ("0", false)] {
            ok(T::Bool, s, json!(b));
        }
        bad(T::Bool, "maybe", codes::INVALID_TYPE);
        ok(T::Integer, " 12 ", json!(12));
        bad(T::Integer, "1.5", codes::INVALID_TYPE);
        ok(T::Number, "45.5", json!(45.5));
        bad(T::Number, "NaN", codes::INVALID_TYPE);
        ok(T::Money, "$1,234.5", json!("1234.50"));
        bad(T::Money, "12.345", codes::INVALID_MONEY);
        ok(T::Decimal, " 8.875 ", json!("8.875"));
        bad(T::Decimal, "8,875", codes::INVALID_TYPE);
        ok(T::Date, "2025-01-31", json!("2025-01-31"));
        bad(T::Date, "Jan 31", codes::INVALID_DATE);
        ok(T::Timestamp, "2025-01-31T09:30:00Z", json!("2025-01-31T09:30:00Z"));
        ok(T::Ref("lead"), ID, json!(ID));
        bad(T::Ref("lead"), "lead-42", codes::INVALID_FORMAT);
        ok(T::Json, "{\"a\": 1}", json!({"a": 1}));
        bad(T::Json, "{", codes::INVALID_FORMAT);
        bad(T::Json, "5", codes::INVALID_TYPE);
        for ty in [T::Text, T::Integer, T::Bool, T::Tags, T::Money, T::Ref("lead")] {
            ok(ty, "  ", Json::Null);
        }
    }

    #[test]
    fn a_json_patch_of_wrong_types_reports_every_field_and_sets_none() {
        let user = crate::entity::entity("user").unwrap();
        let mut r = Record::empty(user, uuid::Uuid::nil(), uuid::Uuid::nil(), ctx().now);
        let input = json!({"name": "Ann", "email": "ann@example.com", "role": "sales"});
        apply_input(
            &mut r,
            input.as_object().unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Create,
        )
        .unwrap();
        let before = r.clone();
        let patch = json!({"active": "no", "team_id": "team-7", "name": "Ann\u{0}", "phone": 5_551_234_567i64});
        let errs = apply_input(
            &mut r,
            patch.as_object().unwrap(),
            &CustomSpecs::new(),
            &ctx(),
            Mode::Update,
        )
        .unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("active", codes::INVALID_TYPE),
                ("name", codes::CONTROL_CHARACTER),
                ("phone", codes::INVALID_TYPE),
                ("team_id", codes::INVALID_FORMAT),
            ]
        );
        assert_eq!(r, before, "no failing field was applied");
        assert_eq!(r.get("active"), Some(&Value::Bool(true)));
    }

    #[test]
    fn csv_rows_are_read_as_text_with_the_same_rules() {
        let text = Ctx {
            source: Source::Text,
            ..ctx()
        };
        let custom: CustomSpecs = [
            ("insured".to_owned(), FieldSpec::new(T::Bool)),
            ("budget".to_owned(), FieldSpec::new(T::Money)),
            ("roof".to_owned(), FieldSpec::new(T::Text)),
        ]
        .into();
        let mut r = lead();
        let row = json!({"first_name": "Ann", "tags": "VIP; storm", "latitude": "45.5", "estimated_value": "12,500.50",
                         "custom": {"insured": "yes", "budget": "1,000", "roof": "metal"}});
        apply_input(&mut r, row.as_object().unwrap(), &custom, &text, Mode::Create).unwrap();
        assert_eq!(r.get("tags"), Some(&Value::List(vec!["vip".into(), "storm".into()])));
        assert_eq!(r.get("latitude"), Some(&Value::Number(45.5)));
        assert_eq!(r.get("estimated_value"), Some(&Value::Money(Money(1_250_050))));
        assert_eq!(r.custom.get("insured"), Some(&Value::Bool(true)));
        assert_eq!(r.custom.get("budget"), Some(&Value::Money(Money(100_000))));
        // The same row as typed JSON is refused field by field.
        let errs = apply_input(&mut lead(), row.as_object().unwrap(), &custom, &ctx(), Mode::Create).unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("custom.insured", codes::INVALID_TYPE),
                ("latitude", codes::INVALID_TYPE),
                ("tags", codes::INVALID_TYPE),
            ]
        );
        // Control characters are refused in CSV cells too, custom text fields included.
        let row = json!({"first_name": "A\u{0}nn", "custom": {"roof": "me\u{1b}tal"}});
        let errs = apply_input(&mut lead(), row.as_object().unwrap(), &custom, &text, Mode::Create).unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("custom.roof", codes::CONTROL_CHARACTER),
                ("first_name", codes::CONTROL_CHARACTER),
            ]
        );
    }

    #[test]
    fn control_characters_are_refused_in_every_text_value() {
        for source in [Source::Json, Source::Text] {
            for (ty, s) in [
                (T::Text, "a\u{0}b"),
                (T::Email, "a\u{1b}@b.co"),
                (T::Phone, "555\u{7f}1234567"),
                (T::Url, "example.com/\u{85}"),
                (T::Enum, "referral\u{0}"),
                (T::Tags, "a\u{1}b"),
                (T::MultiEnum, "\u{0}referral"),
                (T::Text, " \u{b} "),
            ] {
                let raw = match (&ty, source) {
                    (T::Tags | T::MultiEnum, Source::Json) => json!(["ok", s]),
                    _ => json!(s),
                };
                bad(source, ty, raw, codes::CONTROL_CHARACTER);
            }
        }
        // Strings nested in JSON values, keys included.
        bad(
            Source::Json,
            T::Json,
            json!({"stages": [{"label": "a\u{0}"}]}),
            codes::CONTROL_CHARACTER,
        );
        bad(Source::Json, T::Json, json!({"a\u{0}": 1}), codes::CONTROL_CHARACTER);
        bad(Source::Text, T::Json, json!(r#"["\u0000"]"#), codes::CONTROL_CHARACTER);
        // Tab, line feed and carriage return are text.
        ok(
            Source::Json,
            T::Text,
            json!("one\r\ntwo\tthree"),
            json!("one\r\ntwo\tthree"),
        );
        ok(Source::Text, T::Text, json!("one\ntwo"), json!("one\ntwo"));
    }

    #[test]
    fn forbidden_controls_are_c0_but_tab_lf_cr_del_and_c1() {
        let expected: Vec<char> = ('\u{0}'..='\u{8}')
            .chain('\u{b}'..='\u{c}')
            .chain('\u{e}'..='\u{1f}')
            .chain('\u{7f}'..='\u{9f}')
            .collect();
        let got: Vec<char> = (char::MIN..=char::MAX).filter(|c| is_forbidden_control(*c)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn stored_control_characters_are_reported() {
        let mut r = lead();
        r.set("first_name", "A\u{0}");
        r.set("tags", Value::List(vec!["ok".into(), "b\u{7}".into()]));
        let errs = check_stored(&r, &CustomSpecs::new(), ctx().now);
        for path in ["first_name", "tags"] {
            assert!(
                errs.iter()
                    .any(|e| e.path == path && e.code == codes::CONTROL_CHARACTER),
                "{path}: {errs:?}"
            );
        }
    }

    const TEXT_TYPES: &[T] = &[T::Text, T::Email, T::Phone, T::Url, T::Enum, T::Tags, T::MultiEnum];

    fn forbidden() -> impl Strategy<Value = char> {
        prop::char::ranges(
            vec![
                '\u{0}'..='\u{8}',
                '\u{b}'..='\u{c}',
                '\u{e}'..='\u{1f}',
                '\u{7f}'..='\u{9f}',
            ]
            .into(),
        )
    }

    /// `s` as input for a field of type `ty` from `source` (a one-item list for typed JSON lists).
    fn as_input(ty: &T, source: Source, s: String) -> Json {
        match (ty, source) {
            (T::Tags | T::MultiEnum, Source::Json) => json!([s]),
            _ => json!(s),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_forbidden_control_character_is_always_refused(
            s in any::<String>(), at in any::<prop::sample::Index>(), c in forbidden(),
            ty in prop::sample::select(TEXT_TYPES), text in any::<bool>(),
        ) {
            let mut chars: Vec<char> = s.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            let source = if text { Source::Text } else { Source::Json };
            let raw = as_input(&ty, source, chars.into_iter().collect());
            prop_assert_eq!(read(source, ty, &raw), Err(codes::CONTROL_CHARACTER.to_owned()));
        }

        #[test]
        fn text_without_one_is_never_refused_for_it(
            s in any::<String>(), ty in prop::sample::select(TEXT_TYPES), text in any::<bool>(),
        ) {
            let s: String = s.chars().filter(|c| !is_forbidden_control(*c)).collect();
            let source = if text { Source::Text } else { Source::Json };
            let raw = as_input(&ty, source, s);
            prop_assert_ne!(read(source, ty, &raw), Err(codes::CONTROL_CHARACTER.to_owned()));
        }
    }
}
