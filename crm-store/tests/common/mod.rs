//! Shared fixtures: records of every entity with every field type, change sets, and the in-memory
//! store as the reference the SQLite store is compared with.
#![allow(dead_code, clippy::unwrap_used)]

use crm_core::change::{AuditEntry, ChangeSet, Event, FieldChange, Write, diff};
use crm_core::entity;
use crm_core::query::{Filter, SortKey, StoreQuery};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::value::{FieldType, Id, Money, Timestamp, Value};
use serde_json::json;

pub const T0: i64 = 1_700_000_000_000_000;

pub fn id(n: u128) -> Id {
    // Time-ordered like UUIDv7 so that id order is creation order.
    uuid::Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000u128) + n)
}

pub fn date(y: i32, m: u8, d: u8) -> Value {
    Value::Date(time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap())
}

/// A value of every field type, different per `n` (so rows differ and sort).
pub fn sample(ty: &FieldType, n: u32, options: &[String]) -> Value {
    match ty {
        FieldType::Text => Value::Text(format!("Text {n} 'q' \"dq\" 50%_off \\ ünï 😀")),
        FieldType::Email => Value::Text(format!("person{n}@example.com")),
        FieldType::Phone => Value::Text(format!("+1555000{n:04}")),
        FieldType::Url => Value::Text(format!("https://example.com/{n}")),
        FieldType::Enum => Value::Text(
            options
                .get(n as usize % options.len().max(1))
                .cloned()
                .unwrap_or_else(|| "x".into()),
        ),
        FieldType::MultiEnum | FieldType::Tags => Value::List(vec![format!("tag{n}"), "a\"b,c".into(), "Ünï".into()]),
        FieldType::Integer => Value::Int(i64::from(n) * 7 - 3),
        FieldType::Number => Value::Number(f64::from(n) * 1.25 - 0.5),
        FieldType::Money => Value::Money(Money(i64::from(n) * 10_050 + 1)),
        FieldType::Decimal => {
            Value::Decimal(crm_core::decimal::Decimal::new(i64::from(n) * 1_250_001 - 7, 6).normalize())
        }
        FieldType::Date => date(1990 + (n % 30) as i32, 1 + (n % 12) as u8, 1 + (n % 28) as u8),
        FieldType::Timestamp => Value::Timestamp(Timestamp(T0 + i64::from(n) * 1_000_001)),
        FieldType::Bool => Value::Bool(n.is_multiple_of(2)),
        FieldType::Ref(_) => Value::Id(id(10_000 + u128::from(n))),
        FieldType::Json => Value::Json(json!({"n": n, "list": [1, 2.5, "x", null], "nested": {"ok": true}})),
    }
}

/// A record of `def` with every declared field set (and custom fields of every storable type).
pub fn full(def: &'static EntityDef, tenant: Id, rid: Id, n: u32) -> Record {
    let mut r = Record::empty(def, tenant, rid, Timestamp(T0 + i64::from(n)));
    r.updated_at = Timestamp(T0 + i64::from(n) + 5);
    for (i, f) in def.fields.iter().enumerate() {
        r.values[i] = sample(&f.spec.ty, n, &f.spec.options);
    }
    if def.custom_fields {
        r.custom.insert("roof".into(), Value::Text(format!("Slate {n}")));
        r.custom
            .insert("budget".into(), Value::Money(Money(12_345 + i64::from(n))));
        r.custom.insert("area".into(), Value::Number(12.5 + f64::from(n)));
        r.custom.insert("whole".into(), Value::Number(3.0));
        r.custom.insert("count".into(), Value::Int(i64::from(n)));
        r.custom.insert("due".into(), date(2025, 3, 1 + (n % 28) as u8));
        r.custom.insert("at".into(), Value::Timestamp(Timestamp(T0 + 42)));
        r.custom.insert("ok".into(), Value::Bool(n % 2 == 1));
        r.custom
            .insert("colors".into(), Value::List(vec!["red".into(), "Blue".into()]));
        r.custom.insert("who".into(), Value::Id(id(77)));
        r.custom.insert("empty".into(), Value::Null);
    }
    r
}

/// A record the way the service would make it for `tenant`: organizations are their own tenant.
pub fn record(def: &'static EntityDef, tenant: Id, n: u32) -> Record {
    let rid = if def.name == "organization" {
        tenant
    } else {
        id(u128::from(n) + 1000 * (def.table.len() as u128))
    };
    full(def, tenant, rid, n)
}

pub fn audit_for(r: &Record, action: &str, old: Option<&Record>) -> AuditEntry {
    AuditEntry {
        id: id(900_000 + r.version as u128 + u128::from(r.id.as_u128() as u32)),
        tenant: r.tenant,
        seq: 0,
        at: r.updated_at,
        actor: Some(id(5)),
        action: action.into(),
        entity: r.entity.name.into(),
        entity_id: Some(r.id),
        changes: if action == "delete" {
            diff(Some(r), None)
        } else {
            diff(old, Some(r))
        },
        prev_hash: String::new(),
        hash: String::new(),
    }
}

pub fn event_for(r: &Record, kind: &str) -> Event {
    Event {
        seq: 0,
        tenant: r.tenant,
        id: id(800_000 + u128::from(r.id.as_u128() as u32) + r.version as u128),
        at: r.updated_at,
        kind: format!("{}.{kind}", r.entity.name),
        entity: r.entity.name.into(),
        entity_id: Some(r.id),
        payload: r.to_json(),
    }
}

/// Insert change set with its audit entry and event, as a use case would build it.
pub fn insert(r: &Record) -> ChangeSet {
    let mut cs = ChangeSet::new(r.tenant);
    cs.audit.push(audit_for(r, "create", None));
    cs.events.push(event_for(r, "created"));
    cs.writes.push(Write::Insert(r.clone()));
    cs
}

pub fn update(old: &Record, new: &Record) -> ChangeSet {
    let mut cs = ChangeSet::new(new.tenant);
    cs.audit.push(audit_for(new, "update", Some(old)));
    cs.events.push(event_for(new, "updated"));
    cs.writes.push(Write::Update {
        record: new.clone(),
        expected_version: old.version,
    });
    cs
}

pub fn bumped(r: &Record, f: impl FnOnce(&mut Record)) -> Record {
    let mut n = r.clone();
    n.version += 1;
    n.updated_at = Timestamp(n.updated_at.0 + 1_000);
    f(&mut n);
    n
}

pub fn lead(tenant: Id, n: u32) -> Record {
    Record::empty(
        &entity::LEAD,
        tenant,
        id(50_000 + u128::from(n)),
        Timestamp(T0 + i64::from(n)),
    )
}

pub fn change(field: &str, new: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        old: serde_json::Value::Null,
        new: new.to_json(),
    }
}

/// Ids of `rows` in the order `sort` gives in memory (a stable sort of rows in id order).
pub fn sorted(rows: &[Record], def: &'static EntityDef, sort: &[SortKey]) -> Vec<Id> {
    let keys: Vec<_> = sort.iter().map(|k| (def.resolve(&k.field).unwrap(), k.desc)).collect();
    let mut v: Vec<&Record> = rows.iter().collect();
    v.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    v.sort_by(|a, b| {
        keys.iter()
            .map(|(f, desc)| {
                let o = a.value(f).sort_cmp(&b.value(f));
                if *desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v.into_iter().map(|r| r.id).collect()
}

/// Every row matching `filter`, in id order.
pub fn all(filter: Filter) -> StoreQuery {
    StoreQuery::by_id(filter, 10_000)
}
