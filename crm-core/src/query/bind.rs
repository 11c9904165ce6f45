//! Binding: checks a raw filter or sort against an entity declaration and the reader's field
//! permissions, canonicalises field names, and types its values by the fields' types.

use super::text::Span;
use super::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_NODES, Op, SortKey};
use crate::computed::{ComputeCtx, ComputedDef};
use crate::error::{Error, Result};
use crate::schema::{EntityDef, FieldRef, FieldSpec};
use crate::validate::{self, CustomSpecs};
use crate::value::{FieldType, Id, Value};

/// What binding needs to know about the entity and the reader.
#[allow(missing_debug_implementations)]
pub struct BindCtx<'a> {
    pub def: &'static EntityDef,
    pub custom: &'a CustomSpecs,
    /// May the reader read (and so filter and sort on) this canonical field?
    pub readable: &'a dyn Fn(&str) -> bool,
    /// The reader's user id, for `owner:me`.
    pub me: Option<Id>,
    pub vctx: &'a validate::Ctx,
    /// The time and tenant settings computed fields expand with; `None` where they can't be used.
    pub compute: Option<&'a ComputeCtx>,
    /// The values the entity's stage field ([`EntityDef::stage_field`], a lead's `status`) may take:
    /// the keys of the tenant's stages. A filter on it naming anything else is an error, as for an
    /// enum field's options; `None`: not checked (the filter does not name it, or no tenant data).
    pub stages: Option<&'a [String]>,
}

impl BindCtx<'_> {
    /// The computed field of this name, if it is one the reader may read, with its context.
    fn computed(&self, name: &str) -> Result<Option<(&'static ComputedDef, &ComputeCtx)>> {
        let Some((_, c)) = self.def.computed_def(name.trim()) else {
            return Ok(None);
        };
        if !(self.readable)(c.name) {
            return Err(Error::forbidden("read", self.def.name, vec![c.name.to_owned()]));
        }
        let cx = self
            .compute
            .ok_or_else(|| Error::invalid_query(format!("{} is computed and cannot be used here", c.name), 0))?;
        Ok(Some((c, cx)))
    }

    /// The stored-column predicate for `computed = value`.
    fn expand(&self, c: &ComputedDef, cx: &ComputeCtx, value: &Value) -> Result<Filter> {
        let key = match value {
            Value::Text(s) => s.trim().to_ascii_lowercase(),
            _ => {
                return Err(Error::invalid_query(
                    format!("{}: expected one of its values", c.name),
                    0,
                ));
            }
        };
        match c.options.iter().find(|o| **o == key) {
            Some(o) => Ok((c.expand)(o, cx)),
            None => Err(Error::invalid_query(
                format!("{}: {key} is not one of: {}", c.name, c.options.join(", ")),
                0,
            )),
        }
    }

    /// Canonical name for a field as users write it: `owner` -> `owner_id`, `created` -> `created_at`.
    fn canonical(&self, name: &str) -> Result<(String, FieldRef)> {
        let name = name.trim();
        for cand in [name.to_owned(), format!("{name}_id"), format!("{name}_at")] {
            if let Some(r) = self.def.resolve(&cand) {
                if let FieldRef::Custom(k) = &r
                    && !self.custom.contains_key(k)
                {
                    continue;
                }
                if !(self.readable)(&cand) {
                    return Err(Error::forbidden("read", self.def.name, vec![cand]));
                }
                return Ok((cand, r));
            }
        }
        Err(Error::invalid_query(
            format!("{} has no field {name}", self.def.name),
            0,
        ))
    }

    fn spec(&self, r: &FieldRef) -> FieldSpec {
        match r {
            FieldRef::Custom(k) => self
                .custom
                .get(k)
                .cloned()
                .unwrap_or_else(|| FieldSpec::new(FieldType::Text)),
            FieldRef::Declared(i) => {
                let mut s = self.def.fields[*i].spec.clone();
                s.required = false;
                s
            }
            other => FieldSpec::new(self.def.type_of(other).unwrap_or(FieldType::Text)),
        }
    }

    fn typed(&self, field: &str, spec: &FieldSpec, op: Op, v: Value) -> Result<Value> {
        let raw = match v {
            Value::Null => return Ok(Value::Null),
            Value::Text(s) => serde_json::Value::String(s),
            Value::Json(j) => j,
            other => other.to_json(),
        };
        let text_like = matches!(
            spec.ty,
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Enum
        );
        if matches!(op, Op::Contains | Op::StartsWith) {
            if text_like {
                return match raw {
                    serde_json::Value::String(s) => Ok(Value::Text(s.trim().to_owned())),
                    _ => Err(Error::invalid_query(format!("{field}: expected text"), 0)),
                };
            }
            if op == Op::Contains && matches!(spec.ty, FieldType::Tags | FieldType::MultiEnum) {
                return match validate::parse(field, spec, &raw, self.vctx) {
                    Ok(Value::List(mut l)) if l.len() == 1 => self.known_option(field, spec, Value::Text(l.remove(0))),
                    _ => Err(Error::invalid_query(format!("{field}: expected one item"), 0)),
                };
            }
            return Err(Error::invalid_query(
                format!("{field}: contains needs a text or list field"),
                0,
            ));
        }
        match spec.ty {
            FieldType::Json | FieldType::Tags | FieldType::MultiEnum => {
                return Err(Error::invalid_query(
                    format!("{field}: use contains (:) on a list field"),
                    0,
                ));
            }
            FieldType::Ref(target) if raw.as_str() == Some("me") && (target == "user") => {
                return self
                    .me
                    .map(Value::Id)
                    .ok_or_else(|| Error::invalid_query("`me` needs a signed-in user", 0));
            }
            _ => {}
        }
        let v = validate::parse(field, spec, &raw, self.vctx)
            .map_err(|e| Error::invalid_query(format!("{field}: {}", e.message), 0))?;
        self.known_option(field, spec, v)
    }

    /// An enum value must be one of the field's options, and a stage field's one of the tenant's
    /// stages: anything else could never match, so it is an error naming the allowed values rather
    /// than an empty answer. A stage is matched as typed or by its key form (`Appointment Set`).
    fn known_option(&self, field: &str, spec: &FieldSpec, v: Value) -> Result<Value> {
        let stage = self.def.stage_field.is_some_and(|f| f == field.trim());
        let allowed: &[String] = match (&v, &spec.ty) {
            (Value::Text(_), FieldType::Enum | FieldType::MultiEnum) => &spec.options,
            (Value::Text(_), _) if stage => match self.stages {
                Some(keys) => keys,
                None => return Ok(v),
            },
            _ => return Ok(v),
        };
        let Value::Text(s) = &v else { return Ok(v) };
        if allowed.iter().any(|o| o == s) {
            return Ok(v);
        }
        let key = validate::option_key(s);
        if let Some(o) = allowed.iter().find(|o| **o == key) {
            return Ok(Value::Text(o.clone()));
        }
        Err(Error::invalid_query(
            format!("{field}: {s} is not one of: {}", allowed.join(", ")),
            0,
        ))
    }
}

/// Binds a filter: canonical fields, permission checks (hidden fields are `Forbidden`), typed values,
/// free-text search expanded over the readable search fields, complexity caps. Errors about one term
/// have position 0 (a typed filter has no text); [`bind_text`] places them in the query.
pub fn bind(f: Filter, cx: &BindCtx<'_>) -> Result<Filter> {
    bind_spanned(f, &[], cx)
}

/// Binds a text query: [`bind`], with each error about a term at its place in `q` (a byte offset:
/// an unknown or unreadable field at the field's name, a value that does not read as the field's
/// type or is not one of its options at that value).
pub fn bind_text(q: &str, cx: &BindCtx<'_>) -> Result<Filter> {
    let (f, spans) = super::text::parse_spanned(q)?;
    bind_spanned(f, &spans, cx)
}

fn bind_spanned(f: Filter, spans: &[Span], cx: &BindCtx<'_>) -> Result<Filter> {
    let (nodes, depth) = f.size();
    if nodes > MAX_FILTER_NODES {
        return Err(Error::LimitExceeded {
            what: "filter nodes".into(),
            limit: MAX_FILTER_NODES as u64,
        });
    }
    if depth > MAX_FILTER_DEPTH {
        return Err(Error::LimitExceeded {
            what: "filter depth".into(),
            limit: MAX_FILTER_DEPTH as u64,
        });
    }
    let mut spans = spans.iter();
    bind_inner(f, cx, &mut spans)
}

/// Moves a query error to `pos` (other errors pass unchanged).
fn at(pos: Option<usize>) -> impl Fn(Error) -> Error {
    move |e| match (e, pos) {
        (Error::InvalidQuery { message, .. }, Some(position)) => Error::InvalidQuery { message, position },
        (e, _) => e,
    }
}

fn bind_inner(f: Filter, cx: &BindCtx<'_>, spans: &mut std::slice::Iter<'_, Span>) -> Result<Filter> {
    let all = |v: Vec<Filter>, spans: &mut std::slice::Iter<'_, Span>| {
        v.into_iter()
            .map(|f| bind_inner(f, cx, spans))
            .collect::<Result<Vec<_>>>()
    };
    // Each leaf is one term of a text query, met in the order the spans list them.
    let span = match &f {
        Filter::Cmp { .. } | Filter::In { .. } | Filter::IsNull { .. } | Filter::Search(_) => spans.next(),
        _ => None,
    };
    let field_at = at(span.map(|s| s.field));
    let value_at = |i: usize| at(span.and_then(|s| s.values.get(i).copied()));
    Ok(match f {
        Filter::All => Filter::All,
        Filter::And(v) => Filter::And(all(v, spans)?),
        Filter::Or(v) => Filter::Or(all(v, spans)?),
        Filter::Not(f) => Filter::Not(Box::new(bind_inner(*f, cx, spans)?)),
        Filter::Cmp { field, op, value } => {
            if let Some((c, ccx)) = cx.computed(&field).map_err(&field_at)? {
                return match op {
                    Op::Eq | Op::Contains => cx.expand(c, ccx, &value).map_err(value_at(0)),
                    Op::Ne => Ok(Filter::Not(Box::new(cx.expand(c, ccx, &value).map_err(value_at(0))?))),
                    _ => Err(field_at(Error::invalid_query(
                        format!("{}: compare with = or !=", c.name),
                        0,
                    ))),
                };
            }
            let (name, r) = cx.canonical(&field).map_err(&field_at)?;
            let spec = cx.spec(&r);
            // On a list field `tags:vip` means "has vip", and `tags!=vip` "does not have vip".
            let list = matches!(spec.ty, FieldType::Tags | FieldType::MultiEnum);
            if list && matches!(op, Op::Eq | Op::Ne) && !value.is_null() {
                let has = Filter::Cmp {
                    value: cx.typed(&name, &spec, Op::Contains, value).map_err(value_at(0))?,
                    field: name,
                    op: Op::Contains,
                };
                return Ok(if op == Op::Eq { has } else { Filter::Not(Box::new(has)) });
            }
            match cx.typed(&name, &spec, op, value).map_err(value_at(0))? {
                Value::Null if op == Op::Eq => Filter::IsNull { field: name },
                Value::Null if op == Op::Ne => Filter::Not(Box::new(Filter::IsNull { field: name })),
                Value::Null => {
                    return Err(value_at(0)(Error::invalid_query(
                        format!("{name}: cannot compare with null"),
                        0,
                    )));
                }
                value => Filter::Cmp { field: name, op, value },
            }
        }
        Filter::In { field, values } => {
            if let Some((c, ccx)) = cx.computed(&field).map_err(&field_at)? {
                if values.is_empty() || values.len() > 100 {
                    return Err(field_at(Error::invalid_query(
                        format!("{}: a list of 1 to 100 values", c.name),
                        0,
                    )));
                }
                return Ok(Filter::Or(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| cx.expand(c, ccx, v).map_err(value_at(i)))
                        .collect::<Result<_>>()?,
                ));
            }
            let (name, r) = cx.canonical(&field).map_err(&field_at)?;
            let spec = cx.spec(&r);
            let values = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| cx.typed(&name, &spec, Op::Eq, v).map_err(value_at(i)))
                .collect::<Result<Vec<_>>>()?;
            if values.is_empty() || values.len() > 100 {
                return Err(field_at(Error::invalid_query(
                    format!("{name}: a list of 1 to 100 values"),
                    0,
                )));
            }
            Filter::In { field: name, values }
        }
        Filter::IsNull { field } => Filter::IsNull {
            field: cx.canonical(&field).map_err(&field_at)?.0,
        },
        Filter::Search(term) => {
            let term = term.trim().to_owned();
            let fields: Vec<Filter> = cx
                .def
                .search_fields
                .iter()
                .filter(|f| (cx.readable)(f))
                .map(|f| Filter::Cmp {
                    field: (*f).to_owned(),
                    op: Op::Contains,
                    value: Value::Text(term.clone()),
                })
                .collect();
            if fields.is_empty() {
                return Err(Error::forbidden(
                    "read",
                    cx.def.name,
                    cx.def.search_fields.iter().map(|s| s.to_string()).collect(),
                ));
            }
            Filter::Or(fields)
        }
    })
}

/// Binds sort keys: canonical, readable, sortable; appends `id` (in the last key's direction) so
/// the order is total.
pub fn bind_sort(keys: &[SortKey], cx: &BindCtx<'_>) -> Result<Vec<SortKey>> {
    if keys.len() > 4 {
        return Err(Error::LimitExceeded {
            what: "sort keys".into(),
            limit: 4,
        });
    }
    let mut out = Vec::with_capacity(keys.len() + 1);
    for k in keys {
        if k.field.trim().is_empty() {
            return Err(Error::invalid_query("empty sort key", 0));
        }
        if let Some((c, _)) = cx.computed(&k.field)? {
            // Sorting by a computed field sorts by the stored fields it derives from.
            out.extend(c.sort_by.iter().map(|f| SortKey {
                field: (*f).to_owned(),
                desc: k.desc,
            }));
            continue;
        }
        let (name, r) = cx.canonical(&k.field)?;
        if matches!(cx.spec(&r).ty, FieldType::Json | FieldType::Tags | FieldType::MultiEnum) {
            return Err(Error::invalid_query(format!("cannot sort by {name}"), 0));
        }
        let done = name == "id";
        out.push(SortKey {
            field: name,
            desc: k.desc,
        });
        if done {
            return Ok(out);
        }
    }
    // The tiebreak runs in the last key's direction, so an index on (.., key, id) serves the
    // order without a sort step (`-score` pages come straight off the index).
    let desc = out.last().is_some_and(|k: &SortKey| k.desc);
    out.push(SortKey {
        field: "id".into(),
        desc,
    });
    Ok(out)
}
