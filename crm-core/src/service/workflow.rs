//! The one use case that moves a record through its workflow, for every entity type that declares one
//! (see [`crate::workflow`]), and the rules the generic update applies to workflow entities.

use super::RescoreReport;
use super::Service;
use crate::access::Actor;
use crate::error::{Error, Result, codes};
use crate::query::{Filter, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::Store;
use crate::validate;
use crate::value::{Id, Value};
use crate::workflow::{Effect, GuardCtx, Spawn, Stamp, Workflow};
use serde_json::{Map, Value as Json};

impl<S: Store> Service<S> {
    /// Runs the transition `name` of the record's workflow at `expected_version`: the actor needs the
    /// transition's access action on the entity type with a scope that reaches the record; the record
    /// must be in one of the transition's `from` states; `input` may set only the fields the transition
    /// accepts; the guard may refuse. The new state, the core's stamps, records displaced from the
    /// target state, the audit entries and the transition's event are one change set. Nothing is
    /// written when any check fails. Then the transition's follow-up effect runs (re-scoring after a
    /// model is published). Returns the record after the transition, redacted.
    pub async fn transition(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        name: &str,
        input: &Map<String, Json>,
    ) -> Result<Record> {
        Ok(self
            .run_transition(actor, entity, id, expected_version, name, input)
            .await?
            .0)
    }

    /// [`Service::transition`], with the report of its follow-up effect (the re-scoring after a
    /// scoring model is published), for adapters that show it.
    pub async fn run_transition(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        name: &str,
        input: &Map<String, Json>,
    ) -> Result<(Record, Option<RescoreReport>)> {
        // A concurrent write took a booking this one read: check again.
        super::exclusive::retrying(|| self.run_transition_once(actor, entity, id, expected_version, name, input)).await
    }

    async fn run_transition_once(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        name: &str,
        input: &Map<String, Json>,
    ) -> Result<(Record, Option<RescoreReport>)> {
        let def = self.entity(entity)?;
        let wf = def.workflow.ok_or_else(|| {
            Error::field(
                "transition",
                codes::INVALID_TRANSITION,
                format!("{entity} has no workflow"),
            )
        })?;
        let t = wf.transition(name).ok_or_else(|| {
            Error::field(
                "transition",
                codes::INVALID_TRANSITION,
                format!("no transition {name}; one of: {}", wf.names().join(", ")),
            )
        })?;
        let scope = actor.authorize(def, t.action)?;
        let cur = self.visible(actor, def, id).await?;
        if !self.in_scope_of(actor, &cur, scope).await? {
            return Err(Error::forbidden(t.action, def.name, vec![]));
        }
        super::expect_version(&cur, expected_version)?;
        let state = cur.str(wf.field).unwrap_or_default();
        if !t.from.contains(&state) {
            return Err(Error::field(
                wf.field,
                codes::INVALID_TRANSITION,
                format!("cannot {name} a {} that is {state}", def.name),
            ));
        }
        let unknown: Vec<_> = input
            .keys()
            .filter(|k| !t.accepts.contains(&k.as_str()))
            .map(|k| crate::error::FieldError::new(k, codes::UNKNOWN_FIELD, format!("{name} does not take {k}")))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Validation(unknown));
        }
        actor.check_writable(def, t.action, &super::input_paths(input))?;
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let now = ctx.vctx.now;
        let mut next = cur.clone();
        // The fields a transition accepts are read-only elsewhere (a rejection's reason): read each by
        // its declared type here.
        let mut errs = Vec::new();
        for (key, raw) in input {
            let Some(f) = def.def(key) else { continue };
            match validate::parse_json(key, &f.spec, raw, &ctx.vctx) {
                Ok(v) => {
                    validate::check_value(key, &f.spec, &v, now, &mut errs);
                    next.set(f.name, v);
                }
                Err(e) => errs.push(e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let cx = GuardCtx {
            record: &next,
            before: &cur,
            actor: actor.user_id,
            role: &actor.role.name,
            now,
            ctx: &ctx,
        };
        if let Some(guard) = t.guard {
            guard(&cx).map_err(|r| Error::Validation(vec![r.0]))?;
        }
        let (to, set) = match t.decide {
            Some(decide) => {
                let d = decide(&cx).map_err(|r| Error::Validation(vec![r.0]))?;
                (Some(d.to), d.set)
            }
            None => (t.to, Vec::new()),
        };

        let mut cs = self.change_set(actor.tenant, actor.user_id);
        cs.intent = Some(crate::sync::Intent::Transition {
            entity: def.name.to_owned(),
            id,
            expected_version,
            name: name.to_owned(),
            input: input.clone(),
        });
        if let Some(to) = to {
            next.set(wf.field, to);
            for (field, value) in set {
                next.set(field, value);
            }
            for (field, stamp) in t.stamps.iter().copied() {
                let v = self.stamp(actor, def, field, stamp, &cur).await?;
                next.set(field, v);
            }
            next.version = cur.version + 1;
            next.updated_at = now;
            if let Some(displaced) = t.displaces_to {
                let q = StoreQuery::by_id(Filter::eq(wf.field, to), 10_000);
                for old in self.store.query(actor.tenant, def, &q).await? {
                    if old.id == cur.id {
                        continue;
                    }
                    let mut r = old.clone();
                    r.set(wf.field, displaced);
                    r.version += 1;
                    r.updated_at = now;
                    self.push_change(
                        actor,
                        displaced,
                        &format!("{}.{displaced}", def.name),
                        Some(&old),
                        &r,
                        &mut cs,
                    );
                }
            }
            match self
                .child_write_into_parent(actor, Some(&cur), Some(&next), &mut cs)
                .await?
            {
                // A child's transition is a write of its parent (a step's moves the job's progress):
                // its entries name the transition.
                Some(written) => {
                    if let Some(a) = cs.audit.iter_mut().find(|a| a.entity_id == Some(cur.id)) {
                        a.action = t.name.to_owned();
                    }
                    if let Some(e) = cs.events.iter_mut().find(|e| e.entity_id == Some(cur.id)) {
                        e.kind = t.event.to_owned();
                    }
                    next = written;
                }
                None => self.push_change(actor, t.name, t.event, Some(&cur), &next, &mut cs),
            }
        } else {
            next = cur.clone();
        }
        let mut result = match &t.spawn {
            Some(spawn) => {
                // The copy carries the transition's event when the original stays where it is.
                let event = if to.is_none() { t.event } else { "" };
                self.spawn_copy(actor, &cur, spawn, t.name, event, &mut cs).await?
            }
            None => next.clone(),
        };
        self.rollups_into(actor, Some(&cur), Some(&next), &mut cs).await?;
        self.commit(cs, Some(&mut result)).await?;
        let report = match t.then {
            // The authority to publish includes re-scoring every lead with the published model.
            Some(Effect::RescoreAll) => {
                let rescorer = Actor {
                    role: std::sync::Arc::new(crate::access::builtin::admin()),
                    ..actor.clone()
                };
                Some(self.rescore_all(&rescorer).await?)
            }
            None => None,
        };
        Ok((self.present(actor, result).await?, report))
    }

    /// The value a stamp gives a field of `def` (for `original`'s transition or copy).
    pub(crate) async fn stamp(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        field: &str,
        stamp: Stamp,
        original: &Record,
    ) -> Result<Value> {
        Ok(match stamp {
            Stamp::Now => Value::Timestamp(self.clock.now()),
            Stamp::Actor => actor.user_id.map_or(Value::Null, Value::Id),
            Stamp::NextSequence => Value::Int(self.max_int(actor.tenant, def, field).await? + 1),
            Stamp::Increment => Value::Int(original.get(field).and_then(Value::as_i64).unwrap_or(0) + 1),
        })
    }

    /// Adds a copy of `original` and its children to the change set (see [`Spawn`]); the copy's
    /// derived fields are recomputed by its rules. Returns the copy.
    async fn spawn_copy(
        &self,
        actor: &Actor,
        original: &Record,
        spawn: &Spawn,
        action: &str,
        event: &str,
        cs: &mut crate::change::ChangeSet,
    ) -> Result<Record> {
        let def = original.entity;
        let now = self.clock.now();
        let mut copy = original.clone();
        copy.id = self.ids.new_id(now);
        copy.version = 1;
        copy.created_at = now;
        copy.updated_at = now;
        copy.computed.clear();
        reset(&mut copy, spawn.keep);
        for (field, stamp) in spawn.stamps.iter().copied() {
            let v = self.stamp(actor, def, field, stamp, original).await?;
            copy.set(field, v);
        }
        if let Some(link) = spawn.link {
            copy.set(link, original.id);
        }
        let mut children = self.load_children(actor.tenant, original).await?;
        for (cdef, rows) in &mut children {
            let Some(c) = cdef.child_of else { continue };
            for r in rows.iter_mut() {
                r.id = self.ids.new_id(now);
                r.version = 1;
                r.created_at = now;
                r.updated_at = now;
                r.set(c.field, copy.id);
                reset(r, &[c.field]);
            }
        }
        let cx = crate::computed::ComputeCtx::new(now, Some(self.org(actor.tenant).await?));
        def.rules.derive_from_children(&mut copy, &mut children, &cx)?;
        let created = format!("{}.created", def.name);
        let event = if event.is_empty() { created.as_str() } else { event };
        self.push_change(actor, action, event, None, &copy, cs);
        for (cdef, rows) in &children {
            for r in rows {
                self.push_change(actor, "create", &format!("{}.created", cdef.name), None, r, cs);
            }
        }
        self.rollups_into(actor, None, Some(&copy), cs).await?;
        Ok(copy)
    }

    /// The largest integer value of a field in the tenant (0 when none is set).
    async fn max_int(&self, tenant: Id, def: &'static crate::schema::EntityDef, field: &str) -> Result<i64> {
        let q = StoreQuery {
            filter: Filter::Not(Box::new(Filter::IsNull { field: field.into() })),
            sort: vec![SortKey::desc(field), SortKey::asc("id")],
            limit: 1,
        };
        let top = self.store.query(tenant, def, &q).await?;
        Ok(top
            .first()
            .and_then(|r| r.get(field))
            .and_then(Value::as_i64)
            .unwrap_or(0))
    }
}

/// Puts every field a client cannot write back to its default, except those kept (a copy's start).
fn reset(r: &mut Record, keep: &[&'static str]) {
    for (i, f) in r.entity.fields.iter().enumerate() {
        if !f.writable && !keep.contains(&f.name) {
            r.values[i] = f.default.clone().unwrap_or_default();
        }
    }
}

/// Nothing about a record in a locked state changes (its fields, nor its children).
pub(crate) fn check_unlocked(wf: &Workflow, cur: &Record) -> Result<()> {
    let state = cur.str(wf.field).unwrap_or_default();
    if wf.locked.contains(&state) {
        return Err(Error::field(
            wf.field,
            codes::LOCKED,
            format!("a {} that is {state} cannot be changed", cur.entity.name),
        ));
    }
    Ok(())
}

/// The workflow's rules for a generic update from `cur` to `next`: nothing changes in a locked state,
/// and an edit in a re-entry state moves the record back (an edited approved document needs approval
/// again).
pub(crate) fn check_edit(wf: &Workflow, cur: &Record, next: &mut Record) -> Result<()> {
    check_unlocked(wf, cur)?;
    let state = cur.str(wf.field).unwrap_or_default();
    if let Some((states, back_to)) = wf.reenter_on_edit
        && states.contains(&state)
    {
        next.set(wf.field, back_to);
    }
    Ok(())
}
