//! Child records (line items, steps, membership freezes): they live in their parent's scope, and every
//! write of one is a write of the parent too: one change set with the child row, its audit entry and
//! event, the parent's version bump and the parent's derived fields recomputed from all its children.
//! Deleting a parent deletes its children in the same change set.

use super::Service;
use super::exclusive::{Reads, StoreReads};
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, Write, diff};
use crate::computed::ComputeCtx;
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::value::Id;
use serde_json::{Map, Value as Json};

/// One change to a parent's children in [`Service::write_children`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", deny_unknown_fields)]
pub enum ChildOp {
    /// A new child of type `entity` (its parent field may be left out: it is the parent's id).
    Create { entity: String, input: Map<String, Json> },
    /// A patch of the child `id` at `version`.
    Update {
        entity: String,
        #[serde(deserialize_with = "crate::value::deserialize_id")]
        id: Id,
        version: u64,
        patch: Map<String, Json>,
    },
    /// Removes the child `id` at `version`.
    Delete {
        entity: String,
        #[serde(deserialize_with = "crate::value::deserialize_id")]
        id: Id,
        version: u64,
    },
}

/// Most operations in one [`Service::write_children`] call.
pub const MAX_CHILD_OPS: usize = 1000;

/// Most children of one type a parent may have (what a child write loads to re-derive the parent).
pub const MAX_CHILDREN: u32 = 10_000;

impl<S: Store> Service<S> {
    /// Is the record inside the scope? A child is when its parent is.
    pub(crate) async fn in_scope_of(&self, actor: &Actor, rec: &Record, scope: Scope) -> Result<bool> {
        let (Some(parent_def), Some(c)) = (rec.entity.parent(), rec.entity.child_of) else {
            return Ok(actor.in_scope(rec, scope));
        };
        if scope == Scope::Tenant {
            return Ok(true);
        }
        let Some(pid) = rec.id_of(c.field) else {
            return Ok(false);
        };
        let parent = self.store.get(actor.tenant, parent_def, pid).await?;
        Ok(parent.is_some_and(|p| actor.in_scope(&p, scope)))
    }

    /// Every child of a parent record, per child type, in each type's declared order.
    pub(crate) async fn load_children(
        &self,
        tenant: Id,
        parent: &Record,
    ) -> Result<Vec<(&'static EntityDef, Vec<Record>)>> {
        load_children_in(&mut StoreReads(&self.store, tenant), parent).await
    }

    /// A write of one child (`old` → `new`; `None` for an insert or a delete) as a write of its parent:
    /// checks the actor may update the parent, then adds the child's own write, its siblings' and the
    /// parent's re-derived state and the parent's version bump to the change set (see
    /// [`Service::emit_children`]). Returns the child as written (with its derived fields); `None` for
    /// a delete or a record that is not a child.
    pub(crate) async fn child_write_into_parent(
        &self,
        actor: &Actor,
        old: Option<&Record>,
        new: Option<&Record>,
        cs: &mut ChangeSet,
    ) -> Result<Option<Record>> {
        let Some(child) = new.or(old) else { return Ok(None) };
        let (Some(parent_def), Some(c)) = (child.entity.parent(), child.entity.child_of) else {
            return Ok(None);
        };
        if let (Some(o), Some(n)) = (old, new)
            && o.id_of(c.field) != n.id_of(c.field)
        {
            return Err(Error::Validation(vec![FieldError::new(
                c.field,
                codes::READ_ONLY,
                format!("a {} stays with its {}", child.entity.name, parent_def.name),
            )]));
        }
        let pid = child
            .id_of(c.field)
            .ok_or_else(|| Error::field(c.field, codes::REQUIRED, "required"))?;
        let scope = actor.authorize(parent_def, Action::Update)?;
        let parent = self.visible(actor, parent_def, pid).await.map_err(|_| {
            Error::field(
                c.field,
                codes::UNKNOWN_REFERENCE,
                format!("no {} with this id", parent_def.name),
            )
        })?;
        if !actor.in_scope(&parent, scope) {
            return Err(Error::forbidden(Action::Update, parent_def.name, vec![]));
        }
        // A locked parent (a sent quote) keeps its children too.
        if let Some(wf) = parent_def.workflow {
            super::workflow::check_unlocked(wf, &parent)?;
        }
        let loaded = self.load_children(actor.tenant, &parent).await?;
        let mut children = loaded.clone();
        for (def, rows) in &mut children {
            if def.name != child.entity.name {
                continue;
            }
            match (rows.iter().position(|r| r.id == child.id), new) {
                (Some(at), Some(n)) => rows[at] = n.clone(),
                (Some(at), None) => {
                    rows.remove(at);
                }
                (None, Some(n)) => rows.push(n.clone()),
                (None, None) => {}
            }
        }
        let (next, children) = self
            .emit_children(actor, &parent, parent.clone(), &loaded, children, cs)
            .await?;
        // What the parent derives from its children may feed its own rollups (a freeze's dates
        // reach the client's standing).
        self.rollups_into(actor, Some(&parent), Some(&next), cs).await?;
        Ok(new.and_then(|n| children.into_iter().flat_map(|(_, rows)| rows).find(|r| r.id == n.id)))
    }

    /// The parent and children of one write, as they end up: `next` (the parent with any patch
    /// applied) and `children` are re-derived by the parent's rules; then every child that is new,
    /// changed or gone against `loaded` (the children as stored) is written with its audit entry and
    /// event, and the parent is re-entered into approval if its workflow says so, its version bumped
    /// and written. Returns the parent and children as written.
    pub(crate) async fn emit_children(
        &self,
        actor: &Actor,
        parent: &Record,
        mut next: Record,
        loaded: &[(&'static EntityDef, Vec<Record>)],
        mut children: Vec<(&'static EntityDef, Vec<Record>)>,
        cs: &mut ChangeSet,
    ) -> Result<(Record, Vec<(&'static EntityDef, Vec<Record>)>)> {
        let def = parent.entity;
        let now = self.clock.now();
        self.emit_child_rows(actor, &mut next, loaded, &mut children, cs)
            .await?;
        if let Some(wf) = def.workflow {
            super::workflow::check_edit(wf, parent, &mut next)?;
        }
        next.version = parent.version + 1;
        next.updated_at = now;
        self.push_change(
            actor,
            "update",
            &format!("{}.updated", def.name),
            Some(parent),
            &next,
            cs,
        );
        Ok((next, children))
    }

    /// The children part of [`Self::emit_children`]: `next` and `children` re-derived by the parent's
    /// rules, then every child that is new, changed or gone against `loaded` written with its audit
    /// entry and event (a gone child's attachments with it). The parent's own write is the caller's.
    pub(crate) async fn emit_child_rows(
        &self,
        actor: &Actor,
        next: &mut Record,
        loaded: &[(&'static EntityDef, Vec<Record>)],
        children: &mut [(&'static EntityDef, Vec<Record>)],
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let now = self.clock.now();
        let cx = ComputeCtx::new(now, Some(self.org(actor.tenant).await?));
        next.entity.rules.derive_from_children(next, children, &cx)?;
        for (cdef, rows) in children.iter_mut() {
            let before: &[Record] = loaded
                .iter()
                .find(|(d, _)| d.name == cdef.name)
                .map_or(&[], |(_, r)| r.as_slice());
            for r in rows.iter_mut() {
                match before.iter().find(|o| o.id == r.id) {
                    None => self.push_change(actor, "create", &format!("{}.created", cdef.name), None, r, cs),
                    Some(o) if o.values != r.values || o.custom != r.custom => {
                        r.version = o.version + 1;
                        r.updated_at = now;
                        self.push_change(actor, "update", &format!("{}.updated", cdef.name), Some(o), r, cs);
                    }
                    Some(_) => {}
                }
            }
            for o in before.iter().filter(|o| !rows.iter().any(|r| r.id == o.id)) {
                // Its attachments go with it.
                self.attachments_gone_into(actor, o, cs).await?;
                cs.audit.push(self.audit_entry(actor, "delete", o, diff(Some(o), None)));
                cs.events.push(self.event(&format!("{}.deleted", cdef.name), o));
                cs.writes.push(Write::Delete {
                    entity: cdef,
                    id: o.id,
                    expected_version: o.version,
                });
            }
        }
        Ok(())
    }

    /// Adds the deletion of every child of `parent` (audited, with events) to the change set.
    pub(crate) async fn cascade_children(&self, actor: &Actor, parent: &Record, cs: &mut ChangeSet) -> Result<()> {
        for (def, rows) in self.load_children(actor.tenant, parent).await? {
            for r in rows {
                self.attachments_gone_into(actor, &r, cs).await?;
                cs.audit
                    .push(self.audit_entry(actor, "delete", &r, diff(Some(&r), None)));
                cs.events.push(self.event(&format!("{}.deleted", def.name), &r));
                cs.writes.push(Write::Delete {
                    entity: def,
                    id: r.id,
                    expected_version: r.version,
                });
            }
        }
        Ok(())
    }

    /// Applies several changes to a parent's children as ONE change set: every child row with its
    /// audit entry and event, one version bump of the parent at `expected_version`, and the parent's
    /// derived fields recomputed once from the children as they end up (a quote editor saving all its
    /// lines). Validation errors of every operation are reported at once, with paths `ops[i].field`;
    /// any refusal writes nothing. Returns the parent after the write.
    pub async fn write_children(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        ops: &[ChildOp],
    ) -> Result<Record> {
        // A concurrent write took a booking this one read: check again.
        super::exclusive::retrying(|| self.write_children_once(actor, entity, id, expected_version, ops)).await
    }

    async fn write_children_once(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        ops: &[ChildOp],
    ) -> Result<Record> {
        let def = self.entity(entity)?;
        if ops.len() > MAX_CHILD_OPS {
            return Err(Error::LimitExceeded {
                what: "child operations".into(),
                limit: MAX_CHILD_OPS as u64,
            });
        }
        let scope = actor.authorize(def, Action::Update)?;
        let parent = self.visible(actor, def, id).await?;
        if !actor.in_scope(&parent, scope) {
            return Err(Error::forbidden(Action::Update, def.name, vec![]));
        }
        super::expect_version(&parent, expected_version)?;
        if let Some(wf) = def.workflow {
            super::workflow::check_unlocked(wf, &parent)?;
        }
        let loaded = self.load_children(actor.tenant, &parent).await?;
        let mut children = loaded.clone();
        let mut errs: Vec<FieldError> = Vec::new();
        let prefixed = |i: usize, e: Error, errs: &mut Vec<FieldError>| super::nest(&format!("ops[{i}]"), e, errs);
        // Each child type's tenant data, read once for the whole batch.
        let mut ctxs: std::collections::HashMap<&'static str, crate::entity::WriteCtx> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            let name = match op {
                ChildOp::Create { entity, .. } | ChildOp::Update { entity, .. } | ChildOp::Delete { entity, .. } => {
                    entity
                }
            };
            let Some(slot) = children.iter().position(|(d, _)| d.name == name.as_str()) else {
                errs.push(FieldError::new(
                    format!("ops[{i}].entity"),
                    codes::INVALID_OPTION,
                    format!("{name} is not a child type of {}", def.name),
                ));
                continue;
            };
            let cdef = children[slot].0;
            let Some(c) = cdef.child_of else { continue };
            match op {
                ChildOp::Create { input, .. } => {
                    let mut input = input.clone();
                    let pid = Json::String(parent.id.to_string());
                    if input.get(c.field).is_some_and(|v| *v != pid) {
                        errs.push(FieldError::new(
                            format!("ops[{i}].{}", c.field),
                            codes::READ_ONLY,
                            "children of this parent only",
                        ));
                        continue;
                    }
                    input.insert(c.field.into(), pid);
                    if !ctxs.contains_key(cdef.name) {
                        ctxs.insert(cdef.name, self.write_ctx(actor.tenant, cdef).await?);
                    }
                    let ctx = &ctxs[cdef.name];
                    match self.build_create(actor, cdef, &input, ctx) {
                        Ok(rec) => {
                            if let Err(e) = self.check_links(actor, &rec, None).await {
                                prefixed(i, e, &mut errs)?;
                                continue;
                            }
                            children[slot].1.push(rec);
                        }
                        Err(e) => prefixed(i, e, &mut errs)?,
                    }
                }
                ChildOp::Update {
                    id: cid,
                    version,
                    patch,
                    ..
                } => {
                    let Some(at) = children[slot].1.iter().position(|r| r.id == *cid) else {
                        return Err(Error::not_found(cdef.name, cid));
                    };
                    let cur = children[slot].1[at].clone();
                    super::expect_version(&cur, *version)?;
                    actor.check_writable(cdef, Action::Update, &super::input_paths(patch))?;
                    if patch.contains_key(c.field) {
                        errs.push(FieldError::new(
                            format!("ops[{i}].{}", c.field),
                            codes::READ_ONLY,
                            "a child stays with its parent",
                        ));
                        continue;
                    }
                    if !ctxs.contains_key(cdef.name) {
                        ctxs.insert(cdef.name, self.write_ctx(actor.tenant, cdef).await?);
                    }
                    let ctx = &ctxs[cdef.name];
                    match self.build_update(actor, &cur, patch, ctx, scope) {
                        Ok(Some(rec)) => {
                            if let Err(e) = self.check_links(actor, &rec, Some(&cur)).await {
                                prefixed(i, e, &mut errs)?;
                                continue;
                            }
                            children[slot].1[at] = rec;
                        }
                        Ok(None) => {}
                        Err(e) => prefixed(i, e, &mut errs)?,
                    }
                }
                ChildOp::Delete { id: cid, version, .. } => {
                    let Some(at) = children[slot].1.iter().position(|r| r.id == *cid) else {
                        return Err(Error::not_found(cdef.name, cid));
                    };
                    super::expect_version(&children[slot].1[at], *version)?;
                    children[slot].1.remove(at);
                }
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let (mut next, _) = self
            .emit_children(actor, &parent, parent.clone(), &loaded, children, &mut cs)
            .await?;
        self.rollups_into(actor, Some(&parent), Some(&next), &mut cs).await?;
        self.commit(cs, Some(&mut next)).await?;
        self.present(actor, next).await
    }

    /// A record's children, per child type in declaration order, each in its declared order, as the
    /// actor may read them. `NotFound` when the actor can't read the record.
    pub async fn children(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
    ) -> Result<Vec<(&'static EntityDef, Vec<Record>)>> {
        let def = self.entity(entity)?;
        let parent = self.visible(actor, def, id).await?;
        self.children_of(actor, &parent).await
    }

    /// The children of a record the actor just read or wrote (a use case's answer), without reading
    /// the record again; nothing for types without children. `NotFound` for a record of another
    /// tenant or outside the actor's read scope.
    pub async fn children_of(&self, actor: &Actor, parent: &Record) -> Result<Vec<(&'static EntityDef, Vec<Record>)>> {
        if parent.entity.children().next().is_none() {
            return Ok(Vec::new());
        }
        let scope = actor.authorize(parent.entity, Action::Read)?;
        if parent.tenant != actor.tenant || !actor.in_scope(parent, scope) {
            return Err(Error::not_found(parent.entity.name, parent.id));
        }
        let mut out = Vec::new();
        for (cdef, mut rows) in self.load_children(actor.tenant, parent).await? {
            // One compute context per child type, not per row.
            if let Some(cx) = self.compute_ctx(actor.tenant, cdef).await? {
                rows.iter_mut().for_each(|r| crate::computed::evaluate(r, &cx));
            }
            out.push((cdef, rows.into_iter().map(|r| actor.redact(r)).collect()));
        }
        Ok(out)
    }

    /// The children of type `child` of several parents the actor may read (a page of them), per
    /// parent in `parents`' order, each in the type's declared order: one store query for the lot
    /// where [`Self::children_of`] per parent would make one per parent and child type.
    pub async fn children_of_many(
        &self,
        actor: &Actor,
        parents: &[Record],
        child: &'static EntityDef,
    ) -> Result<Vec<Vec<Record>>> {
        let Some(c) = child.child_of else {
            return Err(Error::internal(format!("{} is not a child type", child.name)));
        };
        let mut groups: Vec<Vec<Record>> = vec![Vec::new(); parents.len()];
        let Some(first) = parents.first() else {
            return Ok(groups);
        };
        if child.parent().map(|p| p.name) != Some(first.entity.name) {
            return Err(Error::internal(format!(
                "{} is not a child of {}",
                child.name, first.entity.name
            )));
        }
        let scope = actor.authorize(first.entity, Action::Read)?;
        if let Some(p) = parents
            .iter()
            .find(|p| p.tenant != actor.tenant || !actor.in_scope(p, scope))
        {
            return Err(Error::not_found(p.entity.name, p.id));
        }
        let at: std::collections::HashMap<Id, usize> = parents.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut sort: Vec<SortKey> = c.order_by.iter().map(|f| SortKey::asc(f)).collect();
        sort.push(SortKey::asc("id"));
        // More rows than MAX_CHILDREN per parent means one parent has more: the same limit as one read.
        let cap = MAX_CHILDREN as usize * parents.len();
        let q = StoreQuery {
            filter: Filter::In {
                field: c.field.into(),
                values: parents.iter().map(|p| crate::value::Value::Id(p.id)).collect(),
            },
            sort,
            limit: u32::try_from(cap + 1).unwrap_or(u32::MAX),
        };
        let mut rows = self.store.query(actor.tenant, child, &q).await?;
        if rows.len() > cap {
            return Err(Error::LimitExceeded {
                what: format!("{} per {}", child.table, first.entity.name),
                limit: u64::from(MAX_CHILDREN),
            });
        }
        if let Some(cx) = self.compute_ctx(actor.tenant, child).await? {
            rows.iter_mut().for_each(|r| crate::computed::evaluate(r, &cx));
        }
        for r in rows {
            if let Some(&i) = r.id_of(c.field).and_then(|pid| at.get(&pid)) {
                groups[i].push(actor.redact(r));
            }
        }
        Ok(groups)
    }
}

/// [`Service::load_children`] reading through `reads` (an upsert's bulk session).
pub(crate) async fn load_children_in<R: Reads>(
    reads: &mut R,
    parent: &Record,
) -> Result<Vec<(&'static EntityDef, Vec<Record>)>> {
    let mut out = Vec::new();
    for def in parent.entity.children() {
        let Some(c) = def.child_of else { continue };
        let mut sort: Vec<SortKey> = c.order_by.iter().map(|f| SortKey::asc(f)).collect();
        sort.push(SortKey::asc("id"));
        let q = StoreQuery {
            filter: Filter::eq(c.field, parent.id),
            sort,
            limit: MAX_CHILDREN + 1,
        };
        let rows = reads.read(def, &q).await?;
        if rows.len() > MAX_CHILDREN as usize {
            return Err(Error::LimitExceeded {
                what: format!("{} per {}", def.table, parent.entity.name),
                limit: u64::from(MAX_CHILDREN),
            });
        }
        out.push((def, rows));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A child operation's id is read in the documented hyphenated form only, like every id input.
    #[test]
    fn child_operation_ids_are_hyphenated_uuids() {
        let id = "01234567-89ab-cdef-0123-456789abcdef";
        let op = |id: &str| {
            serde_json::from_value::<ChildOp>(json!({"op": "delete", "entity": "quote_line", "id": id, "version": 1}))
        };
        assert_eq!(
            op(id).unwrap(),
            ChildOp::Delete {
                entity: "quote_line".into(),
                id: crate::value::parse_id(id).unwrap(),
                version: 1
            }
        );
        for other in [
            "0123456789abcdef0123456789abcdef",
            "{01234567-89ab-cdef-0123-456789abcdef}",
        ] {
            assert!(op(other).is_err(), "{other}");
        }
        let update = json!({"op": "update", "entity": "quote_line", "id": "urn:uuid:01234567-89ab-cdef-0123-456789abcdef", "version": 1, "patch": {}});
        assert!(serde_json::from_value::<ChildOp>(update).is_err());
    }
}
