//! Documents: a record as a self-contained, printable HTML page, for entity types whose rules render
//! one (a quote the customer reads).

use super::Service;
use crate::access::Actor;
use crate::entity::{self, DocumentCtx};
use crate::error::{Error, Result, codes};
use crate::store::Store;
use crate::value::{FieldType, Id};

impl<S: Store> Service<S> {
    /// The record's document, showing only what the actor may read (the record, its children, the
    /// records it names that the actor may read). `NotFound` outside the read scope; a validation
    /// error on `entity` for types without a document.
    pub async fn document(&self, actor: &Actor, entity: &str, id: Id) -> Result<String> {
        let def = self.entity(entity)?;
        if !def.rules.has_document() {
            return Err(Error::field(
                "entity",
                codes::INVALID_OPTION,
                format!("{} has no document", def.name),
            ));
        }
        let record = self.get(actor, entity, id).await?;
        let children = self.children_of(actor, &record).await?;
        let org = self.org(actor.tenant).await?;
        let mut refs = Vec::new();
        for field in def.rules.document_refs() {
            let (Some(rid), Some(FieldType::Ref(target))) =
                (record.id_of(field), def.def(field).map(|f| f.spec.ty.clone()))
            else {
                continue;
            };
            if entity::entity(target).is_some()
                && let Ok(r) = self.get(actor, target, rid).await
            {
                refs.push(r);
            }
        }
        let cx = DocumentCtx {
            record: &record,
            children: &children,
            org: &org,
            refs: &refs,
        };
        def.rules
            .document(&cx)
            .ok_or_else(|| Error::internal(format!("{} declares a document it does not render", def.name)))
    }
}
