//! A job made from an accepted quote: which quotes qualify, what the job takes from the quote and
//! its customer, and the rule that a quote has at most one job that is not cancelled.
//!
//! The job is for the quote's customer (its contact and company, which the caller may not change),
//! names the quote (`quote_id`, set only here: the field is read-only everywhere else, so every job
//! of a quote went through these rules), takes the quote's title (else "Quote Q-00042-R1"), its
//! total as the budget, its owner and team, and the customer's address (the contact's, else the
//! company's, when the caller may read it). A kind defaults to `project`. The caller's overrides
//! (`scheduled_on`, `window_start`, `kind`, `job_type`, `title`, `budget`, an address, first steps
//! or crew, ...) win field by field; naming any address field replaces the whole copied address.
//! Everything then goes through the job's ordinary create: validation, the job type's template
//! steps, audit and event, one change set. A cancelled job frees its quote for a new one.

use super::fields::{self as job, COMPANY_ID, CONTACT_ID, KIND, QUOTE_ID, TITLE};
use super::{JobKind, JobStatus};
use crate::entity::quote::fields as quote;
use crate::error::{Error, FieldError, Result, codes};
use crate::query::Filter;
use crate::record::Record;
use crate::value::{Id, Value};
use serde_json::{Map, Value as Json};

/// The quote states a job is made from.
pub const QUALIFYING: &[&str] = &["accepted"];

/// The job fields that come from the quote and are not the caller's to choose.
pub const FIXED: &[&str] = &[QUOTE_ID, CONTACT_ID, COMPANY_ID];

/// The address fields copied from the customer as one.
pub const ADDRESS: &[&str] = crate::entity::ADDRESS_FIELDS;

/// Refuses a quote that is not in a [`QUALIFYING`] state (`not_accepted`, on the quote's `status`).
pub fn check_quote(quote: &Record) -> Result<()> {
    let state = quote.str(quote::STATUS).unwrap_or_default();
    if QUALIFYING.contains(&state) {
        return Ok(());
    }
    Err(Error::field(
        quote::STATUS,
        codes::NOT_ACCEPTED,
        format!("the quote is {state}: a job is made from an accepted quote"),
    ))
}

/// Whether a job of a quote holds the quote (every job but a cancelled one).
pub fn holds_quote(job: &Record) -> bool {
    job.str(job::STATUS) != Some(JobStatus::Cancelled.key())
}

/// The jobs of `quote` that hold it (see [`holds_quote`]).
pub fn holding_filter(quote: Id) -> Filter {
    Filter::and([
        Filter::eq(QUOTE_ID, quote),
        Filter::Not(Box::new(Filter::eq(job::STATUS, JobStatus::Cancelled.key()))),
    ])
}

/// The refusal of a second job for a quote (`already_has_job`, on `quote_id`).
pub fn already_has_job() -> Error {
    Error::field(
        QUOTE_ID,
        codes::ALREADY_HAS_JOB,
        "this quote already has a job (cancel it to make another)",
    )
}

/// The job's create input: the quote's and customer's values under the caller's `overrides`
/// (see the module docs). `customer` is the contact or company whose address is copied, as the
/// caller may read it. Overrides naming a [`FIXED`] field are refused, every one at once.
pub fn job_input(
    quote: &Record,
    customer: Option<&Record>,
    overrides: &Map<String, Json>,
) -> Result<Map<String, Json>> {
    let errs: Vec<FieldError> = FIXED
        .iter()
        .filter(|f| overrides.contains_key(**f))
        .map(|f| FieldError::new(*f, codes::READ_ONLY, "set from the quote the job is made from"))
        .collect();
    if !errs.is_empty() {
        return Err(Error::Validation(errs));
    }
    let mut input = Map::new();
    let mut copy = |to: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            input.insert(to.to_owned(), v.to_json());
        }
    };
    copy(CONTACT_ID, quote.get(quote::CONTACT_ID));
    copy(COMPANY_ID, quote.get(quote::COMPANY_ID));
    copy("owner_id", quote.get("owner_id"));
    copy("team_id", quote.get("team_id"));
    copy(job::BUDGET, quote.get(quote::TOTAL));
    if !ADDRESS.iter().any(|f| overrides.contains_key(*f))
        && let Some(c) = customer
    {
        for f in ADDRESS {
            copy(f, c.get(f));
        }
    }
    let title = match quote.str("title").map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => format!("Quote {}", quote.str(quote::REFERENCE).unwrap_or_default()),
    };
    input.insert(TITLE.into(), Json::String(title));
    input.insert(KIND.into(), Json::String(JobKind::Project.key().into()));
    for (k, v) in overrides {
        input.insert(k.clone(), v.clone());
    }
    Ok(input)
}

/// Whether a customer record carries an address worth copying (any address field set).
pub fn has_address(r: &Record) -> bool {
    ADDRESS.iter().any(|f| r.get(f).is_some_and(|v| !v.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::quote::QuoteStatus;
    use crate::entity::{CONTACT, JOB, QUOTE};
    use crate::value::Money;
    use serde_json::json;

    fn quote(status: &str) -> Record {
        let mut q = Record::empty(&QUOTE, Id::nil(), Id::from_u128(1), Default::default());
        q.set(quote::STATUS, status);
        q.set(quote::CONTACT_ID, Id::from_u128(2));
        q.set(quote::TOTAL, Money(123_450));
        q.set(quote::REFERENCE, "Q-00007-R2");
        q.set("owner_id", Id::from_u128(3));
        q
    }

    fn obj(j: Json) -> Map<String, Json> {
        j.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_an_accepted_quote_qualifies() {
        for s in QuoteStatus::KEYS {
            let r = check_quote(&quote(s));
            assert_eq!(r.is_ok(), *s == "accepted", "{s}");
            if let Err(e) = r {
                assert_eq!(e.field_errors()[0].code, codes::NOT_ACCEPTED);
                assert_eq!(e.field_errors()[0].path, "status");
            }
        }
    }

    #[test]
    fn the_job_takes_the_quote_and_the_customers_address_under_the_overrides() {
        let mut contact = Record::empty(&CONTACT, Id::nil(), Id::from_u128(2), Default::default());
        contact.set("address_line", "1 Elm St");
        contact.set("city", "Denver");
        let q = quote("accepted");
        let input = job_input(&q, Some(&contact), &obj(json!({"scheduled_on": "2025-06-03"}))).unwrap();
        assert_eq!(
            Json::Object(input),
            json!({"contact_id": Id::from_u128(2).to_string(), "owner_id": Id::from_u128(3).to_string(),
                "budget": "1234.50", "address_line": "1 Elm St", "city": "Denver", "title": "Quote Q-00007-R2",
                "kind": "project", "scheduled_on": "2025-06-03"})
        );
        // An address in the overrides replaces the copied one as a whole; the title and kind are theirs.
        let input = job_input(
            &q,
            Some(&contact),
            &obj(json!({"city": "Boulder", "title": "Roof", "kind": "journey"})),
        )
        .unwrap();
        assert_eq!(input.get("address_line"), None);
        assert_eq!(input["city"], "Boulder");
        assert_eq!(
            (input["title"].as_str(), input["kind"].as_str()),
            (Some("Roof"), Some("journey"))
        );
    }

    #[test]
    fn the_customer_and_the_quote_are_not_the_callers_to_choose() {
        let err = job_input(
            &quote("accepted"),
            None,
            &obj(json!({"quote_id": "x", "company_id": "y", "title": "ok"})),
        )
        .unwrap_err();
        let got: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| (e.path.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(got, [("quote_id", "read_only"), ("company_id", "read_only")]);
    }

    #[test]
    fn a_cancelled_job_frees_its_quote() {
        let mut j = Record::empty(&JOB, Id::nil(), Id::from_u128(9), Default::default());
        for (s, holds) in JobStatus::KEYS.iter().map(|s| (*s, *s != "cancelled")) {
            j.set(job::STATUS, s);
            assert_eq!(holds_quote(&j), holds, "{s}");
        }
    }
}
