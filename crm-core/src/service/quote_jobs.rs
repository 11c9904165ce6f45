//! A job made from an accepted quote (the rules: [`crate::entity::job::from_quote`]).

use super::Service;
use crate::access::{Action, Actor};
use crate::entity::job::from_quote;
use crate::entity::quote::fields as quote;
use crate::entity::{BOOKING, COMPANY, CONTACT, JOB, QUOTE, booking};
use crate::error::{Error, Result};
use crate::query::StoreQuery;
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Value};
use serde_json::{Map, Value as Json};

impl<S: Store> Service<S> {
    /// Makes a job from the accepted quote `quote_id`, as the actor: they need `create` on jobs and
    /// must be able to read the quote (else `Forbidden` / `NotFound`). The job is for the quote's
    /// customer, with the quote's title, total as budget, owner and team and the customer's address,
    /// under the caller's `overrides` (any job input but the quote and the customer: see
    /// [`from_quote`]), and is created like any job: validated, in the actor's create scope, with
    /// its type's template steps, audited with a `job.created` event, in one change set. A quote
    /// that is not accepted is refused (`not_accepted`), and so is a quote that already has a job
    /// that is not cancelled (`already_has_job`), also between two racing callers: the quote's
    /// booking row moves on in the change set, so the second one is decided again and refused.
    pub async fn job_from_quote(&self, actor: &Actor, quote_id: Id, overrides: &Map<String, Json>) -> Result<Record> {
        actor.authorize(&JOB, Action::Create)?;
        let q = self.visible(actor, &QUOTE, quote_id).await?;
        from_quote::check_quote(&q)?;
        let customer = self.address_source(actor, &q).await?;
        let input = from_quote::job_input(&q, customer.as_ref(), overrides)?;
        let preset = [(crate::entity::job::fields::QUOTE_ID, Value::Id(q.id))];
        let rec = super::exclusive::retrying(|| async {
            // The booking row is read before the quote's jobs: a job committed in between has moved
            // it on, so this change set conflicts and is decided again.
            let held = self.store.get(actor.tenant, &BOOKING, q.id).await?;
            let holding = StoreQuery::by_id(from_quote::holding_filter(q.id), 1);
            if !self.store.query(actor.tenant, &JOB, &holding).await?.is_empty() {
                return Err(from_quote::already_has_job());
            }
            let mut cs = self.change_set(actor.tenant, actor.user_id);
            let mut rec = self
                .prepare_create_preset(actor, &JOB, &input, &preset, &mut cs)
                .await?;
            cs.writes.push(booking::bump(actor.tenant, q.id, held.as_ref(), cs.at));
            self.commit(cs, Some(&mut rec)).await?;
            Ok(rec)
        })
        .await?;
        self.present(actor, rec).await
    }

    /// The quote's customer whose address a job copies: its contact when the actor may read it and
    /// it has an address, else its company on the same terms.
    async fn address_source(&self, actor: &Actor, q: &Record) -> Result<Option<Record>> {
        for (field, def) in [(quote::CONTACT_ID, &CONTACT), (quote::COMPANY_ID, &COMPANY)] {
            let Some(id) = q.id_of(field) else { continue };
            if actor.role.scope(def, Action::Read) == crate::access::Scope::None {
                continue;
            }
            match self.visible(actor, def, id).await {
                Ok(r) if from_quote::has_address(&r) => return Ok(Some(actor.redact(r))),
                Ok(_) | Err(Error::NotFound { .. } | Error::Forbidden { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
