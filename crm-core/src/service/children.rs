//! Child records (line items, steps, membership freezes): they live in their parent's scope, and every
//! write of one is a write of the parent too: one change set with the child row, its audit entry and
//! event, the parent's version bump and the parent's derived fields recomputed from all its children.
//! Deleting a parent deletes its children in the same change set.

use super::Service;
use crate::access::{Action, Actor, Scope};
use crate::change::{ChangeSet, Write, diff};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::value::Id;

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
    async fn load_children(&self, tenant: Id, parent: &Record) -> Result<Vec<(&'static EntityDef, Vec<Record>)>> {
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
            let rows = self.store.query(tenant, def, &q).await?;
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

    /// Adds the parent's side of a child write (`old` → `new`; `None` for an insert or a delete) to the
    /// change set: checks the actor may update the parent, bumps its version and re-derives it from its
    /// children as they will be.
    pub(crate) async fn child_write_into_parent(
        &self,
        actor: &Actor,
        old: Option<&Record>,
        new: Option<&Record>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(child) = new.or(old) else { return Ok(()) };
        let (Some(parent_def), Some(c)) = (child.entity.parent(), child.entity.child_of) else {
            return Ok(());
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
        if let Some(wf) = parent_def.workflow {
            // A locked parent (a sent quote) keeps its children too.
            let mut probe = parent.clone();
            super::workflow::check_edit(wf, &parent, &mut probe)?;
        }
        let mut children = self.load_children(actor.tenant, &parent).await?;
        for (def, rows) in &mut children {
            if def.name != child.entity.name {
                continue;
            }
            rows.retain(|r| r.id != child.id);
            if let Some(n) = new {
                rows.push(n.clone());
            }
        }
        let now = self.clock.now();
        let mut next = parent.clone();
        parent_def.rules.derive_from_children(&mut next, &children);
        if let Some(wf) = parent_def.workflow {
            super::workflow::check_edit(wf, &parent, &mut next)?;
        }
        next.version = parent.version + 1;
        next.updated_at = now;
        self.push_change(
            actor,
            "update",
            &format!("{}.updated", parent_def.name),
            Some(&parent),
            &next,
            cs,
        );
        Ok(())
    }

    /// Adds the deletion of every child of `parent` (audited, with events) to the change set.
    pub(crate) async fn cascade_children(&self, actor: &Actor, parent: &Record, cs: &mut ChangeSet) -> Result<()> {
        for (def, rows) in self.load_children(actor.tenant, parent).await? {
            for r in rows {
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
        let mut out = Vec::new();
        for (cdef, rows) in self.load_children(actor.tenant, &parent).await? {
            let mut shown = Vec::with_capacity(rows.len());
            for r in rows {
                shown.push(self.present(actor, r).await?);
            }
            out.push((cdef, shown));
        }
        Ok(out)
    }
}
