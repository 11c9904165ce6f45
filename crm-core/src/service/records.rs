//! Create, read, update, delete and list, for every entity type.

use super::{Service, input_paths};
use crate::access::{Action, Actor};
use crate::change::{ChangeSet, Write, diff};
use crate::computed::{self, ComputeCtx};
use crate::entity;
use crate::entity::WriteCtx;
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{self, BindCtx, Filter, ListRequest, Page, SortKey, StoreQuery};
use crate::record::Record;
use crate::schema::{EntityDef, label_of};
use crate::store::Store;
use crate::sync::Intent;
use crate::validate::{self, Mode};
use crate::value::{FieldType, Id, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Most stage changes one record's write reads back (its whole history, in practice).
pub(crate) const MAX_STAGE_HISTORY: u32 = 100_000;

impl<S: Store> Service<S> {
    /// Creates a record. Owner and team default to the actor's; the result must lie in the actor's
    /// create scope. A parent type takes its first children with it, as lists under the child
    /// types' table names (`"quote_lines": [{...}]`, without the parent field): one change set, and
    /// every field error of the parent and its children at once (`quote_lines[2].quantity`).
    pub async fn create(&self, actor: &Actor, entity: &str, input: &Map<String, Json>) -> Result<Record> {
        let def = self.entity(entity)?;
        // A concurrent write took the round-robin turn or the booking this one read: decide again.
        let rec = self.create_as(actor, def, None, input).await?;
        self.present(actor, rec).await
    }

    /// [`Service::create`] of `def`, unpresented, with the record id `id` when given (a sync
    /// replay creates the device's record under the device's id); the change set carries its
    /// [`Intent::Create`].
    pub(crate) async fn create_as(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        id: Option<Id>,
        input: &Map<String, Json>,
    ) -> Result<Record> {
        super::exclusive::retrying(|| async {
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            let mut rec = self.prepare_create_with(actor, def, input, &[], id, &mut cs).await?;
            cs.intent = Some(Intent::Create {
                entity: def.name.to_owned(),
                id: rec.id,
                input: input.clone(),
            });
            self.commit(cs, Some(&mut rec)).await?;
            Ok(rec)
        })
        .await
    }

    /// Everything `create` does but the write: the new record and its change set.
    pub(crate) async fn prepare_create(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        input: &Map<String, Json>,
    ) -> Result<(Record, ChangeSet)> {
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let rec = self.prepare_create_into(actor, def, input, &mut cs).await?;
        Ok((rec, cs))
    }

    /// [`Service::prepare_create`] adding to `cs`, which may already hold earlier writes of the same
    /// use case (an import's row): a reference to a record `cs` inserts counts as found, and rollups
    /// derive onto the record as `cs` writes it.
    pub(crate) async fn prepare_create_into(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        input: &Map<String, Json>,
        cs: &mut ChangeSet,
    ) -> Result<Record> {
        self.prepare_create_preset(actor, def, input, &[], cs).await
    }

    /// [`Service::prepare_create_into`] with `preset` values the use case sets on the new record
    /// after its input is validated: read-only fields a use case decides (the quote a job is made
    /// from), never a client's input.
    pub(crate) async fn prepare_create_preset(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        input: &Map<String, Json>,
        preset: &[(&'static str, Value)],
        cs: &mut ChangeSet,
    ) -> Result<Record> {
        self.prepare_create_with(actor, def, input, preset, None, cs).await
    }

    /// [`Service::prepare_create_preset`] giving the new record the id `id` when given.
    pub(crate) async fn prepare_create_with(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        input: &Map<String, Json>,
        preset: &[(&'static str, Value)],
        id: Option<Id>,
        cs: &mut ChangeSet,
    ) -> Result<Record> {
        let mut own = input.clone();
        let mut kids: Vec<(&'static EntityDef, Vec<Json>)> = Vec::new();
        for cdef in def.children() {
            match own.remove(cdef.table) {
                None | Some(Json::Null) => kids.push((cdef, Vec::new())),
                Some(Json::Array(items)) => kids.push((cdef, items)),
                Some(_) => {
                    return Err(Error::field(
                        cdef.table,
                        codes::INVALID_TYPE,
                        "expected a list of records",
                    ));
                }
            }
        }
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let mut errs = Vec::new();
        let built = match self.build_create(actor, def, &own, &ctx) {
            Ok(mut r) => {
                if let Some(id) = id {
                    r.id = id;
                }
                Some(r)
            }
            Err(Error::Validation(e)) => {
                errs.extend(e);
                None
            }
            Err(e) => return Err(e),
        };
        let parent_id = built.as_ref().map_or(Id::nil(), |r| r.id);
        let mut children: Vec<(&'static EntityDef, Vec<Record>)> = Vec::new();
        for (cdef, mut items) in kids {
            let Some(c) = cdef.child_of else { continue };
            if items.is_empty() {
                // The parent's rules may give it standard children (a job type's template steps).
                items = def.rules.default_children(cdef, &own, &ctx);
            }
            let cctx = self.write_ctx(actor.tenant, cdef).await?;
            let mut rows = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("{}[{i}]", cdef.table);
                let Some(obj) = item.as_object() else {
                    errs.push(FieldError::new(&prefix, codes::INVALID_TYPE, "expected an object"));
                    continue;
                };
                let mut cin = obj.clone();
                if cin.contains_key(c.field) {
                    errs.push(FieldError::new(
                        format!("{prefix}.{}", c.field),
                        codes::READ_ONLY,
                        "set from the record it is created with",
                    ));
                    continue;
                }
                cin.insert(c.field.into(), Json::String(parent_id.to_string()));
                match self.build_create(actor, cdef, &cin, &cctx) {
                    Ok(r) => rows.push(r),
                    Err(e) => super::nest(&prefix, e, &mut errs)?,
                }
            }
            children.push((cdef, rows));
        }
        let Some(mut rec) = built.filter(|_| errs.is_empty()) else {
            return Err(Error::Validation(errs));
        };
        for (field, v) in preset {
            rec.set(field, v.clone());
        }
        if let Some(wf) = def.workflow {
            for (field, stamp) in wf.create_stamps.iter().copied() {
                let v = self.stamp(actor, def, field, stamp, &rec).await?;
                rec.set(field, v);
            }
        }
        if def.children().next().is_some() {
            // A new parent derives from the children it comes with (none: zero totals, the tenant's
            // currency).
            let org = match &ctx.settings {
                Some(o) => o.clone(),
                None => self.org(actor.tenant).await?,
            };
            let cx = ComputeCtx::new(ctx.vctx.now, Some(org));
            def.rules.derive_from_children(&mut rec, &mut children, &cx)?;
        }
        let mut probe = rec.clone();
        for (i, f) in def.fields.iter().enumerate() {
            if let (FieldType::Ref(target), Value::Id(id)) = (&f.spec.ty, &rec.values[i])
                && entity::entity(target).is_some_and(|t| cs.inserts(t, *id))
            {
                // Not stored yet: inserted earlier in this change set.
                probe.values[i] = Value::Null;
            }
        }
        self.check_links(actor, &probe, None).await?;
        // The tenant's routing rules pick the owner of a new lead whose input names none.
        let routed = match def.rules.routed() {
            true => self.route_create(actor.tenant, &ctx, &own, &mut rec).await?,
            false => None,
        };
        for (_, rows) in &children {
            for r in rows {
                // The parent is not stored yet: check the child's other references.
                let mut probe = r.clone();
                if let Some(c) = r.entity.child_of {
                    probe.set(c.field, Value::Null);
                }
                self.check_links(actor, &probe, None).await?;
            }
        }
        // A child is written with its parent (which may derive some of its fields).
        let rec = match self.child_write_into_parent(actor, None, Some(&rec), cs).await? {
            Some(written) => written,
            None => {
                self.push_change(actor, "create", &format!("{}.created", def.name), None, &rec, cs);
                rec
            }
        };
        if let Some((decision, mut router)) = routed {
            // The audit entry names the rule that decided; the round-robin turn moves in this change set.
            if let Some(a) = cs.audit.iter_mut().rev().find(|a| a.entity_id == Some(rec.id)) {
                a.changes.push(decision.audit_change());
            }
            router.flush(cs);
        }
        for (cdef, rows) in &children {
            for r in rows {
                self.push_change(actor, "create", &format!("{}.created", cdef.name), None, r, cs);
            }
        }
        // An activity may set its record's next follow-up: that update comes first, so the
        // rescoring and rollups below derive onto it.
        self.followup_into(actor, &rec, cs).await?;
        self.rescore_parent(&rec, None, cs).await?;
        self.rollups_into(actor, None, Some(&rec), cs).await?;
        Ok(rec)
    }

    /// The synchronous part of a create, shared by single creates and imports: authorize, validate
    /// and normalise, default owner and team, check scope and tenant rules, score.
    pub(crate) fn build_create(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        input: &Map<String, Json>,
        ctx: &WriteCtx,
    ) -> Result<Record> {
        if def.exposure != crate::schema::Exposure::Public {
            return Err(Error::forbidden(Action::Create, def.name, vec![]));
        }
        let scope = actor.authorize(def, Action::Create)?;
        actor.check_writable(def, Action::Create, &input_paths(input))?;
        let now = ctx.vctx.now;
        let mut rec = Record::empty(def, actor.tenant, self.ids.new_id(now), now);
        ctx.apply_input(&mut rec, input, Mode::Create)?;
        for (field, default) in [(def.owner_field, actor.user_id), (def.team_field, actor.team_id)] {
            if let (Some(f), Some(v)) = (field.filter(|f| def.index_of(f).is_some()), default)
                && rec.get(f).is_some_and(Value::is_null)
            {
                rec.set(f, v);
            }
        }
        // A child's scope is its parent's, checked with the parent write (`child_write_into_parent`).
        if def.child_of.is_none() && !actor.in_scope(&rec, scope) {
            return Err(Error::forbidden(
                Action::Create,
                def.name,
                def.owner_field.into_iter().map(String::from).collect(),
            ));
        }
        ctx.check_tenant_rules(&rec, None)?;
        ctx.score(&mut rec, &[]);
        Ok(rec)
    }

    /// Adds a record write with its audit entry (field-level diff) and event to a change set: an
    /// insert when there is no `old` state, else an update expecting `old`'s version.
    pub(crate) fn push_change(
        &self,
        actor: &Actor,
        action: &str,
        event: &str,
        old: Option<&Record>,
        new: &Record,
        cs: &mut ChangeSet,
    ) {
        if cs.id.is_nil() {
            // A change set built with `ChangeSet::new` gets its origin here (see `Service::change_set`).
            let now = self.clock.now();
            cs.id = self.ids.new_id(now);
            cs.actor = actor.user_id;
            cs.at = now;
        }
        cs.audit
            .push(self.audit_entry(actor, action, new, diff(old, Some(new))));
        cs.events.push(self.event(event, new));
        cs.writes.push(match old {
            None => Write::Insert(new.clone()),
            Some(o) => Write::Update {
                record: new.clone(),
                expected_version: o.version,
            },
        });
        self.stage_into(actor, old, new, cs);
    }

    /// Adds the stage change of a write from `old` to `new` to its change set, if it moves the
    /// record to another stage (see [`entity::stage`]).
    pub(crate) fn stage_into(&self, actor: &Actor, old: Option<&Record>, new: &Record, cs: &mut ChangeSet) {
        if let Some((from, to)) = entity::stage::moved(old, new) {
            let id = self.ids.new_id(cs.at);
            let row = entity::stage::row(new, from, to, actor.user_id, id, cs.at);
            cs.writes.push(Write::Insert(row));
        }
    }

    /// The stage changes of a staged record (none for other types).
    async fn stage_history(&self, rec: &Record) -> Result<Vec<Record>> {
        match entity::stage::history_query(rec, MAX_STAGE_HISTORY) {
            Some(q) => self.store.query(rec.tenant, &entity::STAGE_CHANGE, &q).await,
            None => Ok(Vec::new()),
        }
    }

    /// Keeps a record's stage changes read with it: a write that gives it another owner or team
    /// gives its stage changes the same (derived writes, in the same change set).
    pub(crate) async fn restage_scope(&self, old: &Record, new: &Record, cs: &mut ChangeSet) -> Result<()> {
        let fields = entity::stage::rescoped(old, new);
        if !fields.is_empty() {
            let history = self.stage_history(new).await?;
            cs.writes.extend(entity::stage::rescope_writes(history, &fields));
        }
        Ok(())
    }

    /// Reads one record, redacted; `NotFound` if missing, in another tenant or outside the read scope.
    pub async fn get(&self, actor: &Actor, entity: &str, id: Id) -> Result<Record> {
        let def = self.entity(entity)?;
        let rec = self.visible(actor, def, id).await?;
        self.present(actor, rec).await
    }

    /// Applies a patch to a record at `expected_version`. Returns the new state (unchanged if the
    /// patch changes nothing). A stale version is a `Conflict`; a field the actor may not write is
    /// `Forbidden` naming it; nothing is written in either case.
    pub async fn update(
        &self,
        actor: &Actor,
        entity: &str,
        id: Id,
        expected_version: u64,
        patch: &Map<String, Json>,
    ) -> Result<Record> {
        let def = self.entity(entity)?;
        // A concurrent write took the booking this one read: check again.
        let rec = super::exclusive::retrying(|| async {
            let (mut rec, cs) = self.prepare_update(actor, def, id, expected_version, patch).await?;
            if let Some(mut cs) = cs {
                cs.intent = Some(Intent::Update {
                    entity: def.name.to_owned(),
                    id,
                    expected_version,
                    patch: patch.clone(),
                });
                self.commit(cs, Some(&mut rec)).await?;
            }
            Ok(rec)
        })
        .await?;
        self.present(actor, rec).await
    }

    pub(crate) async fn prepare_update(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        id: Id,
        expected_version: u64,
        patch: &Map<String, Json>,
    ) -> Result<(Record, Option<ChangeSet>)> {
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let (rec, changed) = self
            .prepare_update_into(actor, def, id, expected_version, patch, &mut cs)
            .await?;
        Ok((rec, changed.then_some(cs)))
    }

    /// [`Service::prepare_update`] adding to `cs` (see [`Service::prepare_create_into`]): the new
    /// state and whether the patch changes anything (if not, `cs` is left as it was).
    pub(crate) async fn prepare_update_into(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        id: Id,
        expected_version: u64,
        patch: &Map<String, Json>,
        cs: &mut ChangeSet,
    ) -> Result<(Record, bool)> {
        let scope = actor.authorize(def, Action::Update)?;
        let cur = self.visible(actor, def, id).await?;
        if !self.in_scope_of(actor, &cur, scope).await? {
            return Err(Error::forbidden(Action::Update, def.name, vec![]));
        }
        actor.check_writable(def, Action::Update, &input_paths(patch))?;
        super::expect_version(&cur, expected_version)?;
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let Some(mut rec) = self.build_update(actor, &cur, patch, &ctx, scope)? else {
            return Ok((cur, false));
        };
        self.check_links(actor, &rec, Some(&cur)).await?;
        if def.scored {
            // Activities count on update, so score against the stored ones.
            self.score_into(&mut rec, ctx.model.as_ref()).await?;
        }
        let rec = if def.child_of.is_some() {
            // Written with its parent (which may derive some of its fields).
            self.child_write_into_parent(actor, Some(&cur), Some(&rec), cs)
                .await?
                .unwrap_or(rec)
        } else if def.children().next().is_some() {
            // A parent's own fields may change what it and its children derive (a document discount).
            let loaded = self.load_children(actor.tenant, &cur).await?;
            let children = loaded.clone();
            self.emit_children(actor, &cur, rec, &loaded, children, cs).await?.0
        } else {
            self.push_change(actor, "update", &format!("{}.updated", def.name), Some(&cur), &rec, cs);
            rec
        };
        self.rescore_parent(&rec, None, cs).await?;
        self.rollups_into(actor, Some(&cur), Some(&rec), cs).await?;
        self.restage_scope(&cur, &rec, cs).await?;
        if def.rescores.is_some_and(|f| cur.id_of(f) != rec.id_of(f)) {
            // Moved to another parent: the old parent loses this record's contribution.
            self.rescore_parent(&cur, Some(cur.id), cs).await?;
        }
        Ok((rec, true))
    }

    /// The synchronous part of an update (shared with import upserts): validate the patch onto the
    /// current record, check scope and tenant rules, bump the version. `None` if nothing changes.
    pub(crate) fn build_update(
        &self,
        actor: &Actor,
        cur: &Record,
        patch: &Map<String, Json>,
        ctx: &WriteCtx,
        scope: crate::access::Scope,
    ) -> Result<Option<Record>> {
        let def = cur.entity;
        let mut rec = cur.clone();
        let changed = ctx.apply_input(&mut rec, patch, Mode::Update)?;
        if changed.is_empty() {
            return Ok(None);
        }
        if def.child_of.is_none() && !actor.in_scope(&rec, scope) {
            return Err(Error::forbidden(
                Action::Update,
                def.name,
                def.owner_field.into_iter().map(String::from).collect(),
            ));
        }
        if let Some(wf) = def.workflow {
            super::workflow::check_edit(wf, cur, &mut rec)?;
        }
        ctx.check_tenant_rules(&rec, Some(&changed))?;
        rec.version = cur.version + 1;
        rec.updated_at = ctx.vctx.now;
        Ok(Some(rec))
    }

    /// Deletes a record at `expected_version`. Records still referenced by others are `in_use`.
    pub async fn delete(&self, actor: &Actor, entity: &str, id: Id, expected_version: u64) -> Result<()> {
        let def = self.entity(entity)?;
        let scope = actor.authorize(def, Action::Delete)?;
        let cur = self.visible(actor, def, id).await?;
        if !self.in_scope_of(actor, &cur, scope).await? {
            return Err(Error::forbidden(Action::Delete, def.name, vec![]));
        }
        super::expect_version(&cur, expected_version)?;
        if let Some(ctx) = self.delete_ctx(actor.tenant, def).await? {
            def.rules.check_delete(&cur, &ctx)?;
        }
        let mut errs = Vec::new();
        for other in entity::all() {
            for f in other.fields.iter().filter(|f| f.spec.ty == FieldType::Ref(def.name)) {
                if other
                    .child_of
                    .is_some_and(|c| c.parent == def.name && c.field == f.name)
                {
                    continue; // deleted with it
                }
                let n = self.store.count(actor.tenant, other, &Filter::eq(f.name, id)).await?;
                if n > 0 {
                    errs.push(FieldError::new(
                        "id",
                        codes::IN_USE,
                        format!("{n} {} still refer to it by {}", other.table, f.name),
                    ));
                }
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        cs.intent = Some(Intent::Delete {
            entity: def.name.to_owned(),
            id,
            expected_version,
        });
        self.cascade_children(actor, &cur, &mut cs).await?;
        if def.child_of.is_some() {
            // Deleted with its parent's write (which re-derives the parent).
            self.child_write_into_parent(actor, Some(&cur), None, &mut cs).await?;
        } else {
            // Its attachments go with it (a child's go with the parent's write).
            self.attachments_gone_into(actor, &cur, &mut cs).await?;
            cs.audit
                .push(self.audit_entry(actor, "delete", &cur, diff(Some(&cur), None)));
            cs.events.push(self.event(&format!("{}.deleted", def.name), &cur));
            cs.writes.push(Write::Delete {
                entity: def,
                id,
                expected_version,
            });
            // Its stage history goes with it (a deleted lead is in no funnel).
            for row in self.stage_history(&cur).await? {
                cs.writes.push(Write::Delete {
                    entity: row.entity,
                    id: row.id,
                    expected_version: row.version,
                });
            }
        }
        self.rescore_parent(&cur, Some(cur.id), &mut cs).await?;
        self.rollups_into(actor, Some(&cur), None, &mut cs).await?;
        self.apply(cs).await?;
        Ok(())
    }

    /// Lists records: the text query `q` and the typed filter (ANDed), narrowed to the actor's read
    /// scope, sorted (default newest first), one keyset page at a time.
    pub async fn list(&self, actor: &Actor, entity: &str, req: &ListRequest) -> Result<Page<Record>> {
        self.page(actor, self.entity(entity)?, req, Filter::All).await
    }

    /// One page of a list, further narrowed by `extra` (exports add their scope).
    pub(crate) async fn page(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        req: &ListRequest,
        extra: Filter,
    ) -> Result<Page<Record>> {
        self.page_capped(actor, def, req, extra, query::MAX_PAGE_SIZE).await
    }

    /// Like [`Service::list`] with pages of up to [`query::MAX_BULK_PAGE_SIZE`] records, for bulk
    /// consumers (exports, DataFrames) that stream a whole result set page by page.
    pub async fn list_bulk(&self, actor: &Actor, entity: &str, req: &ListRequest) -> Result<Page<Record>> {
        self.page_capped(actor, self.entity(entity)?, req, Filter::All, query::MAX_BULK_PAGE_SIZE)
            .await
    }

    /// The fields of an entity type that the actor may read, for column-oriented readers
    /// (DataFrames) that lay out columns before reading any record: the indexes of the readable
    /// declared fields (into `def.fields`, in declaration order) and the tenant's custom fields the
    /// actor may read (`custom.<key>`), with their specs. Records read through [`Service::list`]
    /// and [`Service::list_bulk`] carry no other values. `Forbidden` without read access.
    pub async fn readable_fields(&self, actor: &Actor, entity: &str) -> Result<(Vec<usize>, validate::CustomSpecs)> {
        let def = self.entity(entity)?;
        actor.authorize(def, Action::Read)?;
        let declared = (0..def.fields.len())
            .filter(|&i| actor.role.can_read_field(def, def.fields[i].name))
            .collect();
        let mut custom = self.custom_specs(actor.tenant, def).await?;
        custom.retain(|k, _| actor.role.can_read_field(def, &format!("custom.{k}")));
        Ok((declared, custom))
    }

    /// The labels of the custom fields of an entity type that the actor may read, by key: the
    /// `label` of the tenant's `custom_field` declaration, or the key as [`label_of`] writes it
    /// when it has none. Declared fields' labels: [`crate::schema::FieldDef::label`]. `Forbidden`
    /// without read access.
    pub async fn custom_labels(&self, actor: &Actor, entity: &str) -> Result<BTreeMap<String, String>> {
        let def = self.entity(entity)?;
        actor.authorize(def, Action::Read)?;
        let mut out = BTreeMap::new();
        if !def.custom_fields {
            return Ok(out);
        }
        let q = StoreQuery::by_id(Filter::eq("entity", def.name), 500);
        for r in self.store.query(actor.tenant, &entity::CUSTOM_FIELD, &q).await? {
            let Some(key) = r.str("key") else { continue };
            if !actor.role.can_read_field(def, &format!("custom.{key}")) {
                continue;
            }
            let label = r.str("label").filter(|l| !l.trim().is_empty());
            out.insert(key.to_owned(), label.map_or_else(|| label_of(key), str::to_owned));
        }
        Ok(out)
    }

    pub(crate) async fn page_bulk(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        req: &ListRequest,
        extra: Filter,
    ) -> Result<Page<Record>> {
        self.page_capped(actor, def, req, extra, query::MAX_BULK_PAGE_SIZE)
            .await
    }

    /// How many records [`Self::page_bulk`] would page through (a progress total).
    pub(crate) async fn count_bulk(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        req: &ListRequest,
        extra: Filter,
    ) -> Result<u64> {
        let (q, _, _) = self.bind_list(actor, def, req, query::MAX_BULK_PAGE_SIZE).await?;
        self.store
            .count(actor.tenant, def, &Filter::and([q.filter, extra]))
            .await
    }

    async fn page_capped(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        req: &ListRequest,
        extra: Filter,
        cap: u32,
    ) -> Result<Page<Record>> {
        let (mut q, sort, compute) = self.bind_list(actor, def, req, cap).await?;
        q.filter = Filter::and([q.filter, extra]);
        let limit = q.limit - 1;
        let mut rows = self.store.query(actor.tenant, def, &q).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|last| {
                let vals: Vec<Value> = sort
                    .iter()
                    .map(|k| def.resolve(&k.field).map(|f| last.value(&f)).unwrap_or_default())
                    .collect();
                query::encode_cursor(&sort, &vals)
            })
        } else {
            None
        };
        if let Some(cx) = &compute {
            rows.iter_mut().for_each(|r| computed::evaluate(r, cx));
        }
        Ok(Page {
            items: rows.into_iter().map(|r| actor.redact(r)).collect(),
            next_cursor,
        })
    }

    /// The keys of every stage of the tenant's pipelines, and of the built-in pipeline when no
    /// stored one is the default (leads then fall back to it): what a stage field may hold.
    async fn stage_keys(&self, tenant: Id) -> Result<Vec<String>> {
        let all = self
            .store
            .query(tenant, &entity::PIPELINE, &StoreQuery::by_id(Filter::All, 1000))
            .await?;
        let has_default = all.iter().any(|r| r.get("is_default") == Some(&Value::Bool(true)));
        let mut keys: Vec<String> = Vec::new();
        let builtin = (!has_default).then(crate::pipeline::default_pipeline);
        for p in all
            .iter()
            .filter_map(crate::pipeline::Pipeline::from_record)
            .chain(builtin)
        {
            for s in p.stages {
                if !keys.contains(&s.key) {
                    keys.push(s.key);
                }
            }
        }
        Ok(keys)
    }

    /// Turns a list request into the store query (limit + 1, to detect a next page) and its sort.
    pub(crate) async fn bind_list(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        req: &ListRequest,
        cap: u32,
    ) -> Result<(StoreQuery, Vec<SortKey>, Option<ComputeCtx>)> {
        let scope = actor.authorize(def, Action::Read)?;
        // The fields the filters name; the tenant's stages and custom fields are read only when
        // named (a plain page reads neither: one statement less per page).
        let mut named = Vec::new();
        if let Some(Ok(f)) = req.q.as_deref().map(query::text::parse) {
            f.fields(&mut named);
        }
        if let Some(f) = &req.filter {
            f.fields(&mut named);
        }
        let names_custom = named
            .iter()
            .map(|n| n.as_str())
            .chain(req.sort.iter().map(|k| k.field.as_str()))
            .any(|n| matches!(def.resolve(n.trim()), Some(crate::schema::FieldRef::Custom(_))));
        let custom = if names_custom {
            self.custom_specs(actor.tenant, def).await?
        } else {
            validate::CustomSpecs::new()
        };
        // One organization serves validation and computed fields: the one every read presents
        // records with (kept for the org cache's window), so a list finds and shows a computed
        // field's value as a get of the same record shows it.
        let org = self.presenting_org(actor.tenant).await?;
        let now = self.clock.now();
        let vctx = crate::tenant::validation_ctx(now, Some(&org));
        let compute = (!def.computed.is_empty()).then(|| ComputeCtx::shared(now, Some(org)));
        let readable = |f: &str| actor.role.can_read_field(def, f);
        // A filter on the stage field is checked against the tenant's stages.
        let names_stage = def.stage_field.is_some_and(|sf| named.iter().any(|n| n.trim() == sf));
        let stages = if names_stage {
            Some(self.stage_keys(actor.tenant).await?)
        } else {
            None
        };
        let cx = BindCtx {
            def,
            custom: &custom,
            readable: &readable,
            me: actor.user_id,
            vctx: &vctx,
            compute: compute.as_ref(),
            stages: stages.as_deref(),
        };
        let mut parts = Vec::new();
        if let Some(text) = req.q.as_deref() {
            parts.push(query::bind_text(text, &cx)?);
        }
        if let Some(f) = &req.filter {
            parts.push(query::bind(f.clone(), &cx)?);
        }
        let wanted = if req.sort.is_empty() {
            vec![SortKey::desc("created_at")]
        } else {
            req.sort.clone()
        };
        let sort = query::bind_sort(&wanted, &cx)?;
        if let Some(c) = req.cursor.as_deref() {
            let ty = |f: &str| match def.resolve(f) {
                Some(crate::schema::FieldRef::Custom(k)) => custom.get(&k).map_or(FieldType::Text, |s| s.ty.clone()),
                Some(r) => def.type_of(&r).unwrap_or(FieldType::Text),
                None => FieldType::Text,
            };
            let last = query::decode_cursor(c, &sort, &ty)?;
            parts.push(query::keyset_after(&sort, &last));
        }
        parts.push(actor.scope_filter(def, scope));
        let limit = req.limit.unwrap_or(query::DEFAULT_PAGE_SIZE).clamp(1, cap);
        Ok((
            StoreQuery {
                filter: Filter::and(parts),
                sort: sort.clone(),
                limit: limit + 1,
            },
            sort,
            compute,
        ))
    }

    /// The context computed fields of `def` are evaluated and expanded with (the clock's time and the
    /// tenant's settings); `None` for entity types without computed fields, so their reads cost nothing.
    pub(crate) async fn compute_ctx(&self, tenant: Id, def: &EntityDef) -> Result<Option<ComputeCtx>> {
        if def.computed.is_empty() {
            return Ok(None);
        }
        let org = self.presenting_org(tenant).await?;
        Ok(Some(ComputeCtx::shared(self.clock.now(), Some(org))))
    }

    /// A record as the actor gets it back: computed fields evaluated as of now, then redacted.
    pub(crate) async fn present(&self, actor: &Actor, mut rec: Record) -> Result<Record> {
        if let Some(cx) = self.compute_ctx(actor.tenant, rec.entity).await? {
            computed::evaluate(&mut rec, &cx);
        }
        Ok(actor.redact(rec))
    }
}

#[cfg(test)]
mod tests {
    use crate::access::Actor;
    use crate::conformance::{Fixture, block, obj};
    use crate::entity::LEAD;
    use crate::memory::MemoryStore;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn readable_fields_follow_field_permissions() {
        let f = Fixture::new(MemoryStore::new());
        for (key, ty, label) in [("roof_type", "text", None), ("budget", "money", Some("Budget (USD)"))] {
            let def = json!({"entity": "lead", "key": key, "label": label, "spec": {"type": ty}});
            block(f.svc.create(&f.admin, "custom_field", &obj(def))).unwrap();
        }
        let grants =
            json!({"lead": {"actions": {"read": "tenant"}, "read": {"except": ["custom.budget", "estimated_value"]}}});
        block(
            f.svc
                .create(&f.admin, "role", &obj(json!({"name": "analyst", "grants": grants}))),
        )
        .unwrap();
        let analyst = Actor {
            role: Arc::new(block(f.svc.role(f.tenant, "analyst")).unwrap()),
            ..f.admin.clone()
        };

        let (declared, custom) = block(f.svc.readable_fields(&f.admin, "lead")).unwrap();
        assert_eq!(declared, (0..LEAD.fields.len()).collect::<Vec<_>>());
        assert_eq!(custom.keys().collect::<Vec<_>>(), ["budget", "roof_type"]);

        let (declared, custom) = block(f.svc.readable_fields(&analyst, "lead")).unwrap();
        let value = LEAD.index_of("estimated_value").unwrap();
        assert!(!declared.contains(&value) && declared.len() == LEAD.fields.len() - 1);
        assert_eq!(custom.keys().collect::<Vec<_>>(), ["roof_type"]);

        // Labels: the declared one, else the key in words; only of fields the actor may read.
        let labels = block(f.svc.custom_labels(&f.admin, "lead")).unwrap();
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            [
                ("budget".to_owned(), "Budget (USD)".to_owned()),
                ("roof_type".to_owned(), "Roof type".to_owned())
            ]
        );
        let labels = block(f.svc.custom_labels(&analyst, "lead")).unwrap();
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["roof_type"]);

        let err = block(f.svc.readable_fields(&f.staff, "lead")).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        let err = block(f.svc.custom_labels(&f.staff, "lead")).unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }
}
