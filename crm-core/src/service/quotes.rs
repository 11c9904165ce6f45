//! Quote reports.

use super::Service;
use crate::access::Actor;
use crate::analytics::conversion::{self, ConversionBy, ConversionRow};
use crate::entity::lead::fields as lead_fields;
use crate::entity::quote::fields::{LEAD_ID, SENT_AT};
use crate::entity::{LEAD, QUOTE};
use crate::error::Result;
use crate::query::{Filter, ListRequest};
use crate::record::Record;
use crate::store::Store;
use crate::value::Id;
use std::collections::HashMap;

impl<S: Store> Service<S> {
    /// Quote conversion (sent → accepted) grouped by owner, lead source or month, over the quotes the
    /// actor may read (see [`crate::analytics::conversion`]). A lead's source counts only when the
    /// actor may read the lead.
    pub async fn quote_conversion(&self, actor: &Actor, by: ConversionBy) -> Result<Vec<ConversionRow>> {
        let mut quotes: Vec<Record> = Vec::new();
        let mut req = ListRequest {
            filter: Some(Filter::Not(Box::new(Filter::IsNull { field: SENT_AT.into() }))),
            ..Default::default()
        };
        loop {
            let page = self.list_bulk(actor, QUOTE.name, &req).await?;
            quotes.extend(page.items);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        let mut sources: HashMap<Id, String> = HashMap::new();
        if by == ConversionBy::Source {
            let mut leads: Vec<Id> = quotes.iter().filter_map(|q| q.id_of(LEAD_ID)).collect();
            leads.sort();
            leads.dedup();
            for chunk in leads.chunks(500) {
                let req = ListRequest {
                    filter: Some(Filter::In {
                        field: "id".into(),
                        values: chunk.iter().map(|i| (*i).into()).collect(),
                    }),
                    limit: Some(500),
                    ..Default::default()
                };
                for l in self.list_bulk(actor, LEAD.name, &req).await?.items {
                    if let Some(s) = l.str(lead_fields::SOURCE) {
                        sources.insert(l.id, s.to_owned());
                    }
                }
            }
        }
        Ok(conversion::fold(&quotes, by, &|id| sources.get(&id).cloned()))
    }
}
