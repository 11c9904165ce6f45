//! A stored record of any entity type: system columns plus one value per declared field, plus the
//! tenant's custom fields. One generic shape lets every engine and store work on every entity type.

use crate::schema::{EntityDef, FieldRef, FieldSpec, SystemField};
use crate::value::{Id, Timestamp, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone)]
pub struct Record {
    pub entity: &'static EntityDef,
    pub id: Id,
    /// The organization the record belongs to.
    pub tenant: Id,
    /// Bumped by every update; updates name the version they expect.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// One value per declared field, in declaration order.
    pub values: Vec<Value>,
    /// Custom field values by key.
    pub custom: BTreeMap<String, Value>,
    /// Bit i set: declared field i is hidden from this reader (absent from `get` and JSON); bit
    /// `fields.len() + j`: computed field j is.
    pub hidden: u64,
    /// The computed fields' values as of the read (empty until the service evaluates them; never
    /// stored). See [`crate::computed`].
    pub computed: Vec<Value>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("entity", &self.entity.name)
            .field("id", &self.id)
            .field("version", &self.version)
            .field("json", &self.to_json())
            .finish()
    }
}

impl PartialEq for Record {
    fn eq(&self, o: &Self) -> bool {
        self.entity.name == o.entity.name
            && self.id == o.id
            && self.tenant == o.tenant
            && self.version == o.version
            && self.created_at == o.created_at
            && self.updated_at == o.updated_at
            && self.values == o.values
            && self.custom == o.custom
            && self.hidden == o.hidden
    }
}

impl Record {
    /// A new record with every field null.
    pub fn empty(entity: &'static EntityDef, tenant: Id, id: Id, now: Timestamp) -> Self {
        Record {
            entity,
            id,
            tenant,
            version: 1,
            created_at: now,
            updated_at: now,
            values: vec![Value::Null; entity.fields.len()],
            custom: BTreeMap::new(),
            hidden: 0,
            computed: Vec::new(),
        }
    }

    /// A declared field's value; `None` when the field is unknown or hidden from this reader.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.entity.index_of(name) {
            Some(i) => (self.hidden & (1 << i) == 0).then(|| &self.values[i]),
            None => {
                let (j, _) = self.entity.computed_def(name)?;
                let bit = self.entity.fields.len() + j;
                self.computed.get(j).filter(|_| self.hidden & (1 << bit) == 0)
            }
        }
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn id_of(&self, name: &str) -> Option<Id> {
        self.get(name).and_then(Value::as_id)
    }

    /// Sets a declared field. Panics on an unknown name: callers name fields from the declaration.
    pub fn set(&mut self, name: &str, v: impl Into<Value>) {
        let i = self
            .entity
            .index_of(name)
            .unwrap_or_else(|| panic!("{} has no field {name}", self.entity.name));
        self.values[i] = v.into();
    }

    /// The value of any resolved field, including system and custom fields (hidden ones read as null).
    pub fn value(&self, f: &FieldRef) -> Value {
        match f {
            FieldRef::System(SystemField::Id) => Value::Id(self.id),
            FieldRef::System(SystemField::Version) => Value::Int(self.version as i64),
            FieldRef::System(SystemField::CreatedAt) => Value::Timestamp(self.created_at),
            FieldRef::System(SystemField::UpdatedAt) => Value::Timestamp(self.updated_at),
            FieldRef::Declared(i) if self.hidden & (1 << i) == 0 => self.values[*i].clone(),
            FieldRef::Declared(_) => Value::Null,
            FieldRef::Custom(k) => self.custom.get(k).cloned().unwrap_or(Value::Null),
        }
    }

    /// Borrowing variant of [`Record::value`] for declared and custom fields.
    pub fn value_ref(&self, f: &FieldRef) -> Option<&Value> {
        match f {
            FieldRef::Declared(i) if self.hidden & (1 << i) == 0 => Some(&self.values[*i]),
            FieldRef::Custom(k) => self.custom.get(k),
            _ => None,
        }
    }

    pub fn is_hidden(&self, i: usize) -> bool {
        self.hidden & (1 << i) != 0
    }

    /// The JSON object adapters return: system fields, visible declared fields, and `custom` when present.
    /// Secret fields (credential hashes) are never included.
    pub fn to_json(&self) -> Json {
        // One definition of the object: its serialisation (below) into a tree.
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// Reads a record back from [`Record::to_json`] output. `custom_specs` types the custom fields.
    /// Returns `None` on anything malformed (this is for stored and round-tripped data, not user input).
    pub fn from_json(
        entity: &'static EntityDef,
        tenant: Id,
        j: &Json,
        custom_specs: &BTreeMap<String, FieldSpec>,
    ) -> Option<Record> {
        let m = j.as_object()?;
        let ts = |k: &str| m.get(k).and_then(Json::as_str).and_then(Timestamp::parse);
        let mut r = Record::empty(entity, tenant, m.get("id")?.as_str()?.parse().ok()?, ts("created_at")?);
        r.updated_at = ts("updated_at")?;
        r.version = m.get("version")?.as_u64()?;
        for (i, f) in entity.fields.iter().enumerate() {
            match m.get(f.name) {
                Some(v) => r.values[i] = Value::from_json(&f.spec.ty, v)?,
                None => r.hidden |= 1 << i,
            }
        }
        if let Some(c) = m.get("custom") {
            for (k, v) in c.as_object()? {
                let spec = custom_specs.get(k)?;
                r.custom.insert(k.clone(), Value::from_json(&spec.ty, v)?);
            }
        }
        Some(r)
    }
}

/// Where a key of a record's JSON object takes its value from ([`EntityDef::json_keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonKey {
    Id,
    Version,
    CreatedAt,
    UpdatedAt,
    Field(usize),
    Computed(usize),
    Custom,
}

impl JsonKey {
    /// The keys of `e`'s records in the order they are written (see [`EntityDef::json_keys`]).
    pub(crate) fn sorted(e: &EntityDef) -> Vec<(&'static str, JsonKey)> {
        let mut keys = vec![
            ("id", JsonKey::Id),
            ("version", JsonKey::Version),
            ("created_at", JsonKey::CreatedAt),
            ("updated_at", JsonKey::UpdatedAt),
        ];
        keys.extend(
            e.fields
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.secret)
                .map(|(i, f)| (f.name, JsonKey::Field(i))),
        );
        keys.extend(
            e.computed
                .iter()
                .enumerate()
                .map(|(j, c)| (c.name, JsonKey::Computed(j))),
        );
        keys.push(("custom", JsonKey::Custom));
        // Stable: of two keys with one name, the one pushed later stays later (and wins).
        keys.sort_by(|a, b| a.0.cmp(b.0));
        keys
    }
}

/// The object of [`Record::to_json`], written without building a tree: the keys sorted, as a
/// tree's object holds them, and of two keys with one name the later one shown. The order comes
/// from the declaration ([`EntityDef::json_keys`]); the server answers every record this way.
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let shown = |k: JsonKey| match k {
            JsonKey::Field(i) => !self.is_hidden(i),
            JsonKey::Computed(j) => self.computed.get(j).is_some() && !self.is_hidden(self.entity.fields.len() + j),
            JsonKey::Custom => !self.custom.is_empty(),
            _ => true,
        };
        // Per name, the last key this reader is shown.
        let keys = || {
            self.entity
                .json_keys()
                .chunk_by(|a, b| a.0 == b.0)
                .filter_map(move |same| same.iter().rev().find(|(_, k)| shown(*k)))
        };
        let mut m = s.serialize_map(Some(keys().count()))?;
        for &(name, key) in keys() {
            match key {
                JsonKey::Id => m.serialize_entry(name, &self.id.to_string())?,
                JsonKey::Version => m.serialize_entry(name, &self.version)?,
                JsonKey::CreatedAt => m.serialize_entry(name, &self.created_at.to_rfc3339())?,
                JsonKey::UpdatedAt => m.serialize_entry(name, &self.updated_at.to_rfc3339())?,
                JsonKey::Field(i) => m.serialize_entry(name, &self.values[i].json_form())?,
                JsonKey::Computed(j) => m.serialize_entry(name, &self.computed[j].json_form())?,
                JsonKey::Custom => {
                    let custom: BTreeMap<&str, crate::value::JsonForm<'_>> =
                        self.custom.iter().map(|(k, v)| (k.as_str(), v.json_form())).collect();
                    m.serialize_entry(name, &custom)?
                }
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{FieldType, Money};
    use serde_json::{Map, json};

    /// The object as it was first built, as a tree (a tree's object sorts its keys).
    fn tree(r: &Record) -> Json {
        let v = |v: &Value| match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Number(n) => serde_json::Number::from_f64(*n).map(Json::Number).unwrap_or(Json::Null),
            Value::Money(m) => Json::String(m.to_string()),
            Value::Decimal(d) => Json::String(d.normalize().to_string()),
            Value::Text(s) => Json::String(s.clone()),
            Value::Date(d) => Json::String(crate::value::format_date(*d)),
            Value::Timestamp(t) => Json::String(t.to_rfc3339()),
            Value::Id(i) => Json::String(i.to_string()),
            Value::List(l) => Json::Array(l.iter().cloned().map(Json::String).collect()),
            Value::Json(j) => j.clone(),
        };
        let mut m = Map::new();
        m.insert("id".into(), Json::String(r.id.to_string()));
        m.insert("version".into(), Json::from(r.version));
        m.insert("created_at".into(), Json::String(r.created_at.to_rfc3339()));
        m.insert("updated_at".into(), Json::String(r.updated_at.to_rfc3339()));
        for (i, f) in r.entity.fields.iter().enumerate() {
            if !r.is_hidden(i) && !f.secret {
                m.insert(f.name.into(), v(&r.values[i]));
            }
        }
        for (j, c) in r.entity.computed.iter().enumerate() {
            let hidden = r.hidden & (1 << (r.entity.fields.len() + j)) != 0;
            if let (Some(x), false) = (r.computed.get(j), hidden) {
                m.insert(c.name.into(), v(x));
            }
        }
        if !r.custom.is_empty() {
            let c: Map<String, Json> = r.custom.iter().map(|(k, x)| (k.clone(), v(x))).collect();
            m.insert("custom".into(), Json::Object(c));
        }
        Json::Object(m)
    }

    /// Every type's record, every kind of value, hidden fields, computed fields and custom fields:
    /// written straight, the JSON is byte for byte the tree's, and `to_json` is that tree.
    #[test]
    fn a_record_serialises_as_its_json_tree() {
        let now = Timestamp(1_764_000_000_123_456);
        let date = time::Date::from_calendar_date(2026, time::Month::December, 3).unwrap();
        for (n, def) in crate::entity::all().into_iter().enumerate() {
            let mut r = Record::empty(def, Id::from_u128(1), Id::from_u128(n as u128 + 2), now);
            r.version = 7;
            for (i, f) in def.fields.iter().enumerate() {
                r.values[i] = match (i + n) % 9 {
                    0 => Value::Null,
                    _ => match f.spec.ty {
                        FieldType::Integer => Value::Int(-42),
                        FieldType::Number => Value::Number(if i % 2 == 0 { 0.1 + 0.2 } else { f64::NAN }),
                        FieldType::Money => Value::Money(Money(-1_234_567)),
                        FieldType::Decimal => Value::Decimal("2.500".parse().unwrap()),
                        FieldType::Date => Value::Date(date),
                        FieldType::Timestamp => Value::Timestamp(now),
                        FieldType::Bool => Value::Bool(i % 2 == 0),
                        FieldType::MultiEnum | FieldType::Tags => Value::List(vec!["a".into(), "é \"q\"".into()]),
                        FieldType::Ref(_) => Value::Id(Id::from_u128(99)),
                        FieldType::Json => Value::Json(json!({"z": [1, null], "a": {"y": 1.5, "b": "x"}})),
                        _ => Value::Text(format!("{} <\u{1}>\n", f.name)),
                    },
                };
            }
            // Fields 2, 5 and 7 hidden, and the second computed field (bits past the fields).
            r.hidden = 0b1010_0100 | 1u64.checked_shl(def.fields.len() as u32 + 1).unwrap_or(0);
            r.computed = def.computed.iter().map(|_| Value::Int(3)).collect();
            if n % 2 == 0 {
                r.custom.insert("roof".into(), Value::Text("slate".into()));
                r.custom.insert("budget".into(), Value::Money(Money(500)));
            }
            let want = tree(&r);
            assert_eq!(serde_json::to_string(&r).unwrap(), want.to_string(), "{}", def.name);
            assert_eq!(r.to_json(), want, "{}", def.name);
        }
    }
}
