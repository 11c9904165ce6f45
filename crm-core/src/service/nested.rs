//! Children nested in an upsert row: a job from the scheduling system with its steps, under the
//! child type's table name (`"job_steps": [{"external_id": "S-7-1", "name": "Load", …}, …]`).
//!
//! The list is the source system's whole set of that child type for the record. Each child is bound
//! by its own external id ([`crate::entity::binding`], per child type and system): a bound child is
//! updated (skipped when its hash equals its binding's), an unbound one created, and a child bound
//! to this system that the list leaves out is deleted. Children the source system never sent (a step
//! a crew lead added on the phone) are kept. The children are written as a child write is
//! ([`Service::emit_child_rows`]): in the parent's change set, with the parent's derived fields
//! recomputed and its version bumped once. A refused child refuses its whole row, with paths
//! `job_steps[i].field`; a child id in two rows of one upsert refuses the later row. A type whose
//! child list is left out of the row keeps its children.

use super::Service;
use super::exclusive::Reads;
use crate::access::{Action, Actor, Scope};
use crate::change::ChangeSet;
use crate::entity::binding::{self, Binding, Received};
use crate::entity::{self, WriteCtx};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::value::{Id, Value};
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};

/// The member naming a nested child's id in the source system.
pub const CHILD_KEY: &str = "external_id";

/// The children of one type a row carries.
#[derive(Debug)]
pub(super) struct NestedRows {
    pub(super) def: &'static EntityDef,
    pub(super) rows: Vec<NestedRow>,
}

/// One nested child: its external id, the hash of it as received, its fields.
#[derive(Debug)]
pub(super) struct NestedRow {
    external_id: String,
    hash: String,
    input: Map<String, Json>,
}

/// Takes the child lists out of a row of `def` (members named after a child type's table), each
/// child read strictly: an object with its external id, no id repeated in a list. Every error of
/// every list at once, with paths `job_steps[i].external_id`.
pub(super) fn take_nested(
    def: &'static EntityDef,
    input: &mut Map<String, Json>,
) -> std::result::Result<Vec<NestedRows>, Vec<FieldError>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for cdef in def.children() {
        let Some(list) = input.remove(cdef.table) else { continue };
        let Json::Array(items) = list else {
            errs.push(FieldError::new(cdef.table, codes::INVALID_TYPE, "a list of objects"));
            continue;
        };
        if items.len() > super::children::MAX_CHILDREN as usize {
            errs.push(FieldError::new(
                cdef.table,
                codes::TOO_LONG,
                format!("at most {} per record", super::children::MAX_CHILDREN),
            ));
            continue;
        }
        let mut rows = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("{}[{i}]", cdef.table);
            let Json::Object(mut obj) = item else {
                errs.push(FieldError::new(at, codes::INVALID_TYPE, "an object"));
                continue;
            };
            let hash = binding::row_hash(&obj);
            match binding::external_id(&obj, CHILD_KEY) {
                Ok(id) if !seen.insert(id.clone()) => errs.push(FieldError::new(
                    format!("{at}.{CHILD_KEY}"),
                    codes::DUPLICATE,
                    "this id appears earlier in the list",
                )),
                Ok(external_id) => {
                    obj.remove(CHILD_KEY);
                    rows.push(NestedRow {
                        external_id,
                        hash,
                        input: obj,
                    });
                }
                Err(mut e) => {
                    e.path = format!("{at}.{}", e.path);
                    errs.push(e);
                }
            }
        }
        out.push(NestedRows { def: cdef, rows });
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Reads the child types' write contexts (before a bulk session opens).
pub(super) async fn child_ctxs<S: Store>(
    svc: &Service<S>,
    tenant: Id,
    def: &'static EntityDef,
) -> Result<Vec<(&'static str, WriteCtx)>> {
    let mut out = Vec::new();
    for cdef in def.children() {
        out.push((cdef.name, svc.write_ctx(tenant, cdef).await?));
    }
    Ok(out)
}

/// Where the children of one upsert row are written.
pub(super) struct Nest<'a, S: Store> {
    pub(super) svc: &'a Service<S>,
    pub(super) actor: &'a Actor,
    pub(super) system: &'a str,
    pub(super) ctxs: &'a [(&'static str, WriteCtx)],
    /// The parent type's write context (what its default children read).
    pub(super) parent_ctx: &'a WriteCtx,
    pub(super) scope: Scope,
}

impl<S: Store> Nest<'_, S> {
    /// Adds the writes of a row's children to `cs`: `old` is the parent as stored (`None` for a
    /// new one, created from `input`) and `next` as it will be written, which takes the fields
    /// derived from its children. A new parent gets its type's default children (a job type's
    /// template steps) for each child type the row does not list, as a single create does. A
    /// refused child is `Error::Validation` with the child's path.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write<R: Reads>(
        &self,
        reads: &mut R,
        seen: &mut super::transfer::Fingerprints,
        old: Option<&Record>,
        input: &Map<String, Json>,
        next: &mut Record,
        nested: Vec<NestedRows>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let (svc, actor) = (self.svc, self.actor);
        let parent = next.entity;
        // A locked parent (a sent quote) keeps its children; its own fields are the workflow's.
        if let (Some(o), Some(wf), false) = (old, parent.workflow, nested.is_empty()) {
            super::workflow::check_unlocked(wf, o)?;
        }
        let loaded = match old {
            Some(o) => super::children::load_children_in(reads, o).await?,
            None => parent.children().map(|d| (d, Vec::new())).collect(),
        };
        let mut children = loaded.clone();
        let mut errs: Vec<FieldError> = Vec::new();
        // The bindings each applied child takes: (type, external id, hash, binding, record).
        let mut binds: Vec<(&'static EntityDef, String, String, Option<Record>, Id)> = Vec::new();
        let pid = Json::String(next.id.to_string());
        if old.is_none() {
            for (cdef, rows) in children.iter_mut() {
                let (Some(c), false) = (cdef.child_of, nested.iter().any(|n| std::ptr::eq(n.def, *cdef))) else {
                    continue;
                };
                let ctx = self.ctx(cdef)?;
                for (i, item) in parent
                    .rules
                    .default_children(cdef, input, self.parent_ctx)
                    .into_iter()
                    .enumerate()
                {
                    let Json::Object(mut cin) = item else { continue };
                    cin.insert(c.field.into(), pid.clone());
                    match svc.build_create(actor, cdef, &cin, ctx) {
                        Ok(rec) => rows.push(rec),
                        Err(e) => super::nest(&format!("{}[{i}]", cdef.table), e, &mut errs)?,
                    }
                }
            }
        }
        for list in nested {
            let cdef = list.def;
            let (Some(c), Some(slot)) = (cdef.child_of, children.iter().position(|(d, _)| d.name == cdef.name)) else {
                continue;
            };
            let ctx = self.ctx(cdef)?;
            let mut bound = self.bindings(reads, cdef, &list.rows).await?;
            // The children this system holds now: the ones the list leaves out go.
            let held = self.held(reads, cdef, &children[slot].1).await?;
            let mut kept: HashSet<Id> = HashSet::new();
            for (i, row) in list.rows.into_iter().enumerate() {
                let at = format!("{}[{i}]", cdef.table);
                if !seen.insert(&binding::key(cdef.name, self.system, &row.external_id)) {
                    // Two rows may not both hold one child (nor create it twice in one chunk).
                    errs.push(FieldError::new(
                        format!("{at}.{CHILD_KEY}"),
                        codes::DUPLICATE,
                        "this child's id appears in an earlier row",
                    ));
                    continue;
                }
                let binding = bound.remove(&row.external_id);
                let bound_to = binding.as_ref().and_then(|b| Binding(b).record_id());
                let mut input = row.input;
                if input.get(c.field).is_some_and(|v| *v != pid) {
                    errs.push(FieldError::new(
                        format!("{at}.{}", c.field),
                        codes::READ_ONLY,
                        format!("children of this {} only", parent.name),
                    ));
                    continue;
                }
                let position = bound_to.and_then(|id| children[slot].1.iter().position(|r| r.id == id));
                let built = match position {
                    Some(p) => {
                        let cur = children[slot].1[p].clone();
                        kept.insert(cur.id);
                        if binding.as_ref().and_then(|b| Binding(b).hash()) == Some(row.hash.as_str()) {
                            continue;
                        }
                        input.remove(c.field);
                        actor
                            .check_writable(cdef, Action::Update, &super::input_paths(&input))
                            .and_then(|()| svc.build_update(actor, &cur, &input, ctx, self.scope))
                            .map(|rec| (Some(p), rec.unwrap_or(cur)))
                    }
                    None => {
                        if let Some(id) = bound_to
                            && let Some(other) = reads
                                .read(cdef, &StoreQuery::by_id(Filter::eq("id", id), 1))
                                .await?
                                .pop()
                        {
                            // Bound to a child of another record: a child stays with its parent.
                            debug_assert_ne!(other.id_of(c.field), Some(next.id));
                            errs.push(FieldError::new(
                                format!("{at}.{CHILD_KEY}"),
                                codes::ALREADY_BOUND,
                                format!("bound to a {} of another {}", cdef.name, parent.name),
                            ));
                            continue;
                        }
                        input.insert(c.field.into(), pid.clone());
                        svc.build_create(actor, cdef, &input, ctx).map(|rec| (None, rec))
                    }
                };
                let checked = match built {
                    Ok((p, rec)) => {
                        let old = p.map(|p| children[slot].1[p].clone());
                        // The parent is this row's (perhaps not stored yet): its other references are checked.
                        let mut probe = rec.clone();
                        probe.set(c.field, Value::Null);
                        svc.check_links(actor, &probe, old.as_ref()).await.map(|()| (p, rec))
                    }
                    Err(e) => Err(e),
                };
                match checked {
                    Ok((p, rec)) => {
                        binds.push((cdef, row.external_id, row.hash, binding, rec.id));
                        match p {
                            Some(p) => children[slot].1[p] = rec,
                            None => children[slot].1.push(rec),
                        }
                    }
                    Err(e) => super::nest(&at, e, &mut errs)?,
                }
            }
            children[slot]
                .1
                .retain(|r| !held.contains(&r.id) || kept.contains(&r.id));
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        svc.emit_child_rows(actor, next, &loaded, &mut children, cs).await?;
        if let (Some(o), Some(wf)) = (old, parent.workflow) {
            super::workflow::check_edit(wf, o, next)?;
        }
        for (cdef, external_id, hash, binding, record) in binds {
            let applied = Received::Applied { record, hash: &hash };
            cs.writes.extend(binding::write(
                actor.tenant,
                svc.ids.new_id(cs.at),
                (cdef.name, self.system, &external_id),
                binding.as_ref(),
                applied,
                cs.at,
            ));
        }
        Ok(())
    }

    fn ctx(&self, cdef: &'static EntityDef) -> Result<&WriteCtx> {
        self.ctxs
            .iter()
            .find(|(n, _)| *n == cdef.name)
            .map(|(_, c)| c)
            .ok_or_else(|| Error::internal(format!("no write context for {}", cdef.name)))
    }

    /// The stored bindings of the listed children, by external id.
    async fn bindings<R: Reads>(
        &self,
        reads: &mut R,
        cdef: &'static EntityDef,
        rows: &[NestedRow],
    ) -> Result<HashMap<String, Record>> {
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<Value> = rows
            .iter()
            .map(|r| Value::Text(binding::key(cdef.name, self.system, &r.external_id)))
            .collect();
        // Along the key's index (in id order SQLite would walk every binding of the tenant).
        let q = StoreQuery::by_ref(
            &entity::EXTERNAL_BINDING,
            binding::fields::KEY,
            Filter::In {
                field: binding::fields::KEY.into(),
                values: keys.clone(),
            },
            keys.len() as u32 + 1,
        );
        Ok(reads
            .read(&entity::EXTERNAL_BINDING, &q)
            .await?
            .into_iter()
            .filter_map(|b| Some((b.str(binding::fields::EXTERNAL_ID)?.to_owned(), b)))
            .collect())
    }

    /// Which of a record's current children this system's bindings hold.
    async fn held<R: Reads>(&self, reads: &mut R, cdef: &'static EntityDef, current: &[Record]) -> Result<HashSet<Id>> {
        if current.is_empty() {
            return Ok(HashSet::new());
        }
        use binding::fields::{ENTITY, RECORD_ID, SYSTEM};
        let ids: Vec<Value> = current.iter().map(|r| Value::Text(r.id.to_string())).collect();
        let q = StoreQuery::by_ref(
            &entity::EXTERNAL_BINDING,
            RECORD_ID,
            Filter::and([
                Filter::In {
                    field: RECORD_ID.into(),
                    values: ids.clone(),
                },
                Filter::eq(ENTITY, cdef.name),
                Filter::eq(SYSTEM, self.system),
            ]),
            ids.len() as u32 + 1,
        );
        Ok(reads
            .read(&entity::EXTERNAL_BINDING, &q)
            .await?
            .iter()
            .filter_map(|b| Binding(b).record_id())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn child_lists_are_read_strictly_with_every_error() {
        let job = entity::entity("job").unwrap();
        let mut row = json!({
            "title": "Move",
            "job_steps": [{"external_id": "S1", "name": "Load"}, {"external_id": "S2", "name": "Drive"}],
        })
        .as_object()
        .cloned()
        .unwrap();
        let lists = take_nested(job, &mut row).unwrap();
        assert!(
            !row.contains_key("job_steps"),
            "the list is taken out of the parent's fields"
        );
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].def.name, "job_step");
        assert_eq!(lists[0].rows[1].external_id, "S2");
        assert!(!lists[0].rows[1].input.contains_key(CHILD_KEY));
        let mut bad = json!({
            "job_steps": [{"external_id": "S1"}, {"external_id": "S1"}, {"name": "x"}, 7],
            "crew_assignments": {"external_id": "C1"},
        })
        .as_object()
        .cloned()
        .unwrap();
        let errs = take_nested(job, &mut bad).unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.code.as_str())).collect();
        assert!(got.contains(&("job_steps[1].external_id", "duplicate")), "{got:?}");
        assert!(got.contains(&("job_steps[2].external_id", "required")), "{got:?}");
        assert!(got.contains(&("job_steps[3]", "invalid_type")), "{got:?}");
        assert!(got.contains(&("crew_assignments", "invalid_type")), "{got:?}");
    }

    #[test]
    fn a_type_without_children_takes_nothing() {
        let lead = entity::entity("lead").unwrap();
        let mut row = json!({"job_steps": []}).as_object().cloned().unwrap();
        assert!(take_nested(lead, &mut row).unwrap().is_empty());
        assert!(row.contains_key("job_steps"), "left for the field checks to refuse");
    }
}
