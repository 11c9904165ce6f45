//! Import from the point of sale: one CSV row per client, with their current membership. The card
//! number is the upsert key (the contact's `external_id`, unique per tenant): a known card updates the
//! client, a new one creates it. The membership is the client's membership starting on the row's start
//! date: updated when it exists, created otherwise (a renewal in the point of sale is a new row date,
//! so history is kept).
//!
//! Every row is validated before anything is written, with the same rules as single writes (the
//! contact and membership declarations, access control, tenant rules); the writes are the service's
//! own create and update use cases, so rollups (the client's mirrored membership standing), audit
//! entries, events and the sync log are what a single write gives. A row is one change set: its
//! client and its membership are written together or not at all (a new client's mirrored standing
//! is derived onto the client's insert). An all-or-nothing import applies every row's change set in
//! one store transaction, committed only when all of them apply; valid-rows-only applies each row's
//! change set on its own.

use super::Service;
use super::transfer::{csv_msg, row_errors};
use crate::access::{Action, Actor};
use crate::change::ChangeSet;
use crate::entity::{self, membership, plan};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, StoreQuery};
use crate::record::Record;
use crate::schema::EntityDef;
use crate::store::{BulkWrite, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashSet};

pub use super::transfer::{ImportMode, RowError};

/// Options of [`Service::import_point_of_sale`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PosImportOptions {
    /// Dry run (the default), all or nothing (nothing is written unless every row is valid), or valid
    /// rows only.
    #[serde(default)]
    pub mode: ImportMode,
    /// Refuse files with more data rows than this (rows are held while they are validated).
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
}

fn default_max_rows() -> u64 {
    200_000
}

impl Default for PosImportOptions {
    fn default() -> Self {
        PosImportOptions {
            mode: ImportMode::DryRun,
            max_rows: default_max_rows(),
        }
    }
}

/// Created, updated and unchanged records of one type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// The per-row outcome of a point-of-sale import. In a dry run (or an all-or-nothing import with
/// errors) the counts say what the import would do.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PosImportReport {
    pub mode: ImportMode,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub clients: Counts,
    pub memberships: Counts,
    /// Whether anything was written.
    pub applied: bool,
    /// Column -> what it fills (`contact.email`, `membership.starts_on`, `plan`, `name`).
    pub columns: BTreeMap<String, String>,
    pub ignored_columns: Vec<String>,
    /// Row errors; paths are the file's column names (`email`, `Start date`), or `row`.
    pub errors: Vec<RowError>,
}

/// What a column of the point-of-sale file fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Card,
    /// A full name, split at the first space when there are no first/last name columns.
    Name,
    Contact(&'static str),
    Plan,
    Membership(&'static str),
}

impl Col {
    fn describe(self) -> String {
        match self {
            Col::Card => "contact.external_id".into(),
            Col::Name => "contact.first_name + contact.last_name".into(),
            Col::Contact(f) => format!("contact.{f}"),
            Col::Plan => "membership plan (by name)".into(),
            Col::Membership(f) => format!("membership.{f}"),
        }
    }
}

/// Recognised headers (case, spaces, dashes and dots ignored) and what they fill.
fn column(header: &str) -> Option<Col> {
    let h: String = header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    let h = h.trim_matches('_');
    Some(match h {
        "card" | "card_number" | "card_no" | "card_nr" | "card_id" | "member_card" | "external_id" => Col::Card,
        "name" | "full_name" | "client" | "client_name" => Col::Name,
        "first_name" | "given_name" => Col::Contact("first_name"),
        "last_name" | "surname" | "family_name" => Col::Contact("last_name"),
        "email" | "e_mail" => Col::Contact("email"),
        "phone" | "mobile" | "telephone" => Col::Contact("phone"),
        "language" | "lang" => Col::Contact("language"),
        "notes" | "note" | "comment" => Col::Contact("notes"),
        "plan" | "plan_name" | "membership" | "membership_plan" => Col::Plan,
        "start" | "starts" | "starts_on" | "start_date" | "valid_from" => {
            Col::Membership(membership::fields::STARTS_ON)
        }
        "end" | "ends" | "ends_on" | "end_date" | "expires" | "expires_on" | "valid_until" => {
            Col::Membership(membership::fields::ENDS_ON)
        }
        "price_paid" | "paid" | "price" => Col::Membership("price_paid"),
        _ => return None,
    })
}

/// One data row, split into the client's and the membership's input.
struct PosRow {
    row: u64,
    line: u64,
    card: String,
    contact: Map<String, Json>,
    /// Empty: the row carries no membership.
    membership: Map<String, Json>,
    /// The plan's name as written in the file.
    plan: Option<String>,
    /// The row fills a membership column (the plan or a date).
    has_membership: bool,
    /// Field -> the column it came from, to name errors by column.
    origin: BTreeMap<String, String>,
}

/// What a row does to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }
}

/// A row's outcome for its client and (when it has one) its membership.
type RowOutcome = (Outcome, Option<Outcome>);

impl<S: Store> Service<S> {
    /// Imports the point of sale's client list (see the module documentation). The actor needs the
    /// import right on contacts and memberships, and update rights on both to change known clients.
    pub async fn import_point_of_sale<R: std::io::Read + Send>(
        &self,
        actor: &Actor,
        input: R,
        opts: &PosImportOptions,
    ) -> Result<PosImportReport> {
        let (cdef, mdef) = (&*entity::CONTACT, &*membership::MEMBERSHIP);
        for def in [cdef, mdef] {
            actor.authorize(def, Action::Import)?;
        }
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|e| Error::field("csv", codes::INVALID_FORMAT, csv_msg(&e)))?
            .clone();
        let mut report = PosImportReport {
            mode: opts.mode,
            ..Default::default()
        };
        let cols: Vec<Option<Col>> = headers.iter().map(column).collect();
        for (h, c) in headers.iter().zip(&cols) {
            match c {
                Some(c) => {
                    report.columns.insert(h.to_owned(), c.describe());
                }
                None => report.ignored_columns.push(h.to_owned()),
            }
        }
        if !cols.contains(&Some(Col::Card)) {
            return Err(Error::field(
                "columns",
                codes::REQUIRED,
                "the file needs a card number column (card, card_number)",
            ));
        }
        let split_name = !cols.contains(&Some(Col::Contact("first_name")));

        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let n = i as u64 + 1;
            if n > opts.max_rows {
                return Err(Error::LimitExceeded {
                    what: "import rows".into(),
                    limit: opts.max_rows,
                });
            }
            match rec {
                Ok(r) => rows.push(pos_row(n, &r, &headers, &cols, split_name)),
                Err(e) => {
                    let line = e.position().map_or(n + 1, |p| p.line());
                    push_error(
                        &mut report,
                        n,
                        line,
                        vec![FieldError::new("csv", codes::INVALID_FORMAT, csv_msg(&e))],
                    );
                }
            }
            report.rows = n;
        }

        let plans = self.plans_by_name(actor).await?;
        let writing = opts.mode != ImportMode::DryRun;
        let mut seen: HashSet<String> = HashSet::new();
        let mut valid: Vec<PosRow> = Vec::new();
        for mut r in rows {
            if r.card.is_empty() {
                push_error(
                    &mut report,
                    r.row,
                    r.line,
                    vec![by_column(
                        &r,
                        "external_id",
                        codes::REQUIRED,
                        "a card number is required",
                    )],
                );
                continue;
            }
            if !seen.insert(r.card.clone()) {
                let e = by_column(
                    &r,
                    "external_id",
                    codes::DUPLICATE,
                    "this card number appears earlier in the file",
                );
                push_error(&mut report, r.row, r.line, vec![e]);
                continue;
            }
            if let Some(name) = r.plan.clone() {
                match plans.get(&name) {
                    Some(fields) => {
                        for (f, v) in fields {
                            r.membership.insert(f.into(), v);
                        }
                    }
                    None => {
                        let e = by_column(
                            &r,
                            &format!("membership.{PLAN_FIELD}"),
                            codes::UNKNOWN_REFERENCE,
                            format!("no plan named {name}"),
                        );
                        push_error(&mut report, r.row, r.line, vec![e]);
                        continue;
                    }
                }
            }
            match self.plan_row(actor, cdef, mdef, &r).await {
                Ok(o) => {
                    tally(&mut report, o);
                    report.valid += 1;
                    valid.push(r);
                }
                Err(e) if e.is_storage_failure() || matches!(e, Error::LimitExceeded { .. }) => return Err(e),
                Err(e) => push_error(&mut report, r.row, r.line, row_errors(e)),
            }
        }
        if !writing || (opts.mode == ImportMode::AllOrNothing && report.invalid > 0) {
            return Ok(report);
        }
        // Counted again from what is written (a row may turn out unchanged or fail since validation).
        report.clients = Counts::default();
        report.memberships = Counts::default();
        let all_or_nothing = opts.mode == ImportMode::AllOrNothing;
        // All or nothing: the rows' change sets, applied in one transaction once every row is prepared.
        let mut staged: Vec<(&PosRow, ChangeSet)> = Vec::new();
        for r in &valid {
            let written = match self.prepare_row(actor, cdef, mdef, r).await {
                Ok((o, cs)) if all_or_nothing || cs.is_empty() => {
                    if !cs.is_empty() {
                        staged.push((r, cs));
                    }
                    Ok(o)
                }
                // Valid rows only: each row's change set on its own (a failing row writes nothing).
                Ok((o, cs)) => match self.apply(cs).await {
                    Ok(_) => {
                        report.applied = true;
                        Ok(o)
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match written {
                Ok(o) => tally(&mut report, o),
                Err(e) if e.is_storage_failure() => return Err(e),
                Err(e) => {
                    report.valid -= 1;
                    push_error(&mut report, r.row, r.line, by_columns(r, "", row_errors(e)));
                }
            }
        }
        if !all_or_nothing || report.invalid > 0 || staged.is_empty() {
            return Ok(report);
        }
        // Dropped without a commit on any failure: nothing is written.
        let mut bulk = self.store.bulk(actor.tenant).await?;
        for (r, cs) in staged {
            if let Err(e) = bulk.apply(cs).await {
                if e.is_storage_failure() {
                    return Err(e);
                }
                drop(bulk);
                report.valid -= 1;
                push_error(&mut report, r.row, r.line, by_columns(r, "", row_errors(e)));
                return Ok(report);
            }
        }
        bulk.commit().await?;
        report.applied = true;
        Ok(report)
    }

    /// The tenant's plans by name (case ignored).
    async fn plans_by_name(&self, actor: &Actor) -> Result<PlanNames> {
        let q = StoreQuery::by_id(Filter::All, MAX_PLANS);
        let plans = self.store.query(actor.tenant, &entity::PLAN, &q).await?;
        Ok(PlanNames(
            plans
                .into_iter()
                .filter_map(|p| Some((p.str(plan::fields::NAME)?.to_lowercase(), p)))
                .collect(),
        ))
    }

    /// The client with this card number, if any (the store's uniqueness makes it at most one).
    async fn client_by_card(&self, actor: &Actor, cdef: &'static EntityDef, card: &str) -> Result<Option<Record>> {
        let key = cdef.external_key.unwrap_or("external_id");
        let q = StoreQuery::by_id(Filter::eq(key, card), 2);
        Ok(self.store.query(actor.tenant, cdef, &q).await?.into_iter().next())
    }

    /// The client's membership starting on the row's start date, if any.
    async fn membership_on(
        &self,
        actor: &Actor,
        mdef: &'static EntityDef,
        client: &Record,
        input: &Map<String, Json>,
    ) -> Result<Option<Record>> {
        let starts = input.get(membership::fields::STARTS_ON).and_then(Json::as_str);
        let Some(starts) = starts.and_then(|s| time::Date::parse(s, DATE).ok()) else {
            return Ok(None);
        };
        // Along the index on the client (in id order a store may scan every membership instead);
        // the first by id when there are several.
        let q = StoreQuery::by_ref(
            mdef,
            membership::fields::CONTACT_ID,
            Filter::and([
                Filter::eq(membership::fields::CONTACT_ID, client.id),
                Filter::eq(membership::fields::STARTS_ON, crate::value::Value::Date(starts)),
            ]),
            100,
        );
        Ok(self
            .store
            .query(actor.tenant, mdef, &q)
            .await?
            .into_iter()
            .min_by_key(|m| m.id))
    }

    /// Validates a row without writing: the client's create or update and the membership's, with the
    /// same authorization, validation and tenant rules as the writes. Errors of both parts at once,
    /// named by the file's columns.
    async fn plan_row(
        &self,
        actor: &Actor,
        cdef: &'static EntityDef,
        mdef: &'static EntityDef,
        r: &PosRow,
    ) -> Result<RowOutcome> {
        let cctx = self.write_ctx(actor.tenant, cdef).await?;
        let existing = self.client_by_card(actor, cdef, &r.card).await?;
        let mut errs = Vec::new();
        let contact = match &existing {
            Some(cur) => self
                .check_update(actor, cur, &r.contact, &cctx)
                .map(|u| (u.is_some(), cur.id)),
            None => self
                .build_create(actor, cdef, &with_card(r), &cctx)
                .map(|c| (true, c.id)),
        };
        let contact = collect(contact, "", r, &mut errs)?;
        let client = Outcome::of(existing.is_some(), contact.is_none_or(|(changed, _)| changed));
        let mut membership = None;
        if r.has_membership {
            let mut input = r.membership.clone();
            // A client that failed validation still gets its membership checked (against a stand-in id).
            let id = contact.map_or(crate::value::Id::nil(), |(_, id)| id);
            input.insert(membership::fields::CONTACT_ID.into(), Json::String(id.to_string()));
            let mctx = self.write_ctx(actor.tenant, mdef).await?;
            let cur = match &existing {
                Some(c) => self.membership_on(actor, mdef, c, &input).await?,
                None => None,
            };
            let built = match &cur {
                Some(cur) => self.check_update(actor, cur, &r.membership, &mctx).map(|u| u.is_some()),
                None => self.build_create(actor, mdef, &input, &mctx).map(|_| true),
            };
            let changed = collect(built, "membership.", r, &mut errs)?;
            membership = Some(Outcome::of(cur.is_some(), changed.unwrap_or(true)));
        }
        if errs.is_empty() {
            Ok((client, membership))
        } else {
            Err(Error::Validation(errs))
        }
    }

    /// An update's synchronous checks (scope, writable fields, validation, tenant rules).
    fn check_update(
        &self,
        actor: &Actor,
        cur: &Record,
        patch: &Map<String, Json>,
        ctx: &crate::entity::WriteCtx,
    ) -> Result<Option<Record>> {
        let scope = actor.authorize(cur.entity, Action::Update)?;
        if !actor.in_scope(cur, scope) {
            return Err(Error::forbidden(Action::Update, cur.entity.name, vec![]));
        }
        actor.check_writable(cur.entity, Action::Update, &super::input_paths(patch))?;
        self.build_update(actor, cur, patch, ctx, scope)
    }

    /// A validated row's writes through the create and update use cases, in one change set: the
    /// client, then its membership (whose rollup mirrors it onto the client's write in the same
    /// change set). Reads go to the store, so a row does not see the import's earlier rows: each
    /// row reads only its own client (a card appears once in a file) and that client's memberships.
    async fn prepare_row(
        &self,
        actor: &Actor,
        cdef: &'static EntityDef,
        mdef: &'static EntityDef,
        r: &PosRow,
    ) -> Result<(RowOutcome, ChangeSet)> {
        let mut cs = self.change_set(actor.tenant, actor.user_id);
        let (client, client_outcome) = match self.client_by_card(actor, cdef, &r.card).await? {
            Some(cur) => self.update_into(actor, cdef, &cur, &r.contact, &mut cs).await?,
            None => {
                let rec = self.prepare_create_into(actor, cdef, &with_card(r), &mut cs).await?;
                (rec, Outcome::Created)
            }
        };
        if !r.has_membership {
            return Ok(((client_outcome, None), cs));
        }
        let mut input = r.membership.clone();
        input.insert(
            membership::fields::CONTACT_ID.into(),
            Json::String(client.id.to_string()),
        );
        let m = match self.membership_on(actor, mdef, &client, &input).await? {
            Some(cur) => self
                .update_into(actor, mdef, &cur, &r.membership, &mut cs)
                .await
                .map(|u| u.1),
            None => self
                .prepare_create_into(actor, mdef, &input, &mut cs)
                .await
                .map(|_| Outcome::Created),
        };
        // The membership's errors (its rollup's rules too) by the membership's columns.
        let m = m.map_err(|e| match e {
            Error::Validation(errs) => Error::Validation(by_columns(r, "membership.", errs)),
            e => e,
        })?;
        Ok(((client_outcome, Some(m)), cs))
    }

    /// The update use case at the version read, into the row's change set.
    async fn update_into(
        &self,
        actor: &Actor,
        def: &'static EntityDef,
        cur: &Record,
        patch: &Map<String, Json>,
        cs: &mut ChangeSet,
    ) -> Result<(Record, Outcome)> {
        let (rec, changed) = self
            .prepare_update_into(actor, def, cur.id, cur.version, patch, cs)
            .await?;
        Ok((rec, if changed { Outcome::Updated } else { Outcome::Unchanged }))
    }
}

impl Outcome {
    fn of(existed: bool, changed: bool) -> Outcome {
        match (existed, changed) {
            (false, _) => Outcome::Created,
            (true, true) => Outcome::Updated,
            (true, false) => Outcome::Unchanged,
        }
    }
}

fn tally(report: &mut PosImportReport, (client, membership): RowOutcome) {
    report.clients.add(client);
    if let Some(m) = membership {
        report.memberships.add(m);
    }
}

/// Most plans a tenant's import reads.
const MAX_PLANS: u32 = 10_000;

/// The tenant's plans by lower-cased name.
struct PlanNames(BTreeMap<String, Record>);

impl PlanNames {
    /// The membership fields a plan name fills: the plan's id, and its name as the plan spells it.
    fn get(&self, name: &str) -> Option<[(&'static str, Json); 2]> {
        let p = self.0.get(&name.trim().to_lowercase())?;
        Some([
            (membership::fields::PLAN_ID, Json::String(p.id.to_string())),
            (
                membership::fields::PLAN_NAME,
                Json::String(p.str(plan::fields::NAME).unwrap_or(name).to_owned()),
            ),
        ])
    }
}

/// The membership field the plan column fills.
const PLAN_FIELD: &str = membership::fields::PLAN_ID;

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn pos_row(
    n: u64,
    r: &csv::StringRecord,
    headers: &csv::StringRecord,
    cols: &[Option<Col>],
    split_name: bool,
) -> PosRow {
    let line = r.position().map_or(n + 1, |p| p.line());
    let mut row = PosRow {
        row: n,
        line,
        card: String::new(),
        contact: Map::new(),
        membership: Map::new(),
        plan: None,
        has_membership: false,
        origin: BTreeMap::new(),
    };
    for ((cell, col), header) in r.iter().zip(cols).zip(headers.iter()) {
        let cell = cell.trim();
        let Some(col) = col else { continue };
        // Errors name the column even when its cell is empty (a missing end date).
        let keys: Vec<String> = match *col {
            Col::Card => vec!["external_id".into()],
            Col::Name if split_name => vec!["first_name".into(), "last_name".into()],
            Col::Name => vec![],
            Col::Contact(f) => vec![f.into()],
            Col::Plan => vec![format!("membership.{PLAN_FIELD}")],
            Col::Membership(f) => vec![format!("membership.{f}")],
        };
        for k in keys {
            row.origin.insert(k, header.into());
        }
        if cell.is_empty() {
            // An empty cell leaves the stored value as it is.
            continue;
        }
        let text = |s: &str| Json::String(s.to_owned());
        match *col {
            Col::Card => row.card = cell.to_owned(),
            Col::Name if split_name => {
                let (first, last) = cell.split_once(' ').unwrap_or((cell, ""));
                row.contact.insert("first_name".into(), text(first.trim()));
                if !last.trim().is_empty() {
                    row.contact.insert("last_name".into(), text(last.trim()));
                }
            }
            Col::Name => {}
            Col::Contact(f) => {
                row.contact.insert(f.into(), text(cell));
            }
            Col::Plan => {
                row.plan = Some(cell.to_owned());
            }
            Col::Membership(f) => {
                row.membership.insert(f.into(), text(cell));
            }
        }
    }
    row.has_membership = row.plan.is_some() || !row.membership.is_empty();
    row
}

/// The contact's create input: the row's fields and the card number as its external id.
fn with_card(r: &PosRow) -> Map<String, Json> {
    let mut m = r.contact.clone();
    m.insert("external_id".into(), Json::String(r.card.clone()));
    m
}

/// A row error under the column the field came from.
fn by_column(r: &PosRow, field: &str, code: &str, message: impl Into<String>) -> FieldError {
    let path = r.origin.get(field).cloned().unwrap_or_else(|| field.to_owned());
    FieldError::new(path, code, message)
}

/// Names errors of one part of a row (`prefix`: `""` for the client, `membership.` for the
/// membership) by the columns their fields came from.
fn by_columns(r: &PosRow, prefix: &str, errs: Vec<FieldError>) -> Vec<FieldError> {
    errs.into_iter()
        .map(|mut e| {
            if let Some(col) = r.origin.get(&format!("{prefix}{}", e.path)) {
                e.path = col.clone();
            } else if !prefix.is_empty() && e.path != "row" {
                e.path = format!("{prefix}{}", e.path);
            }
            e
        })
        .collect()
}

/// Keeps validation and authorization errors of one part of a row (the row reports both parts);
/// anything else ends the row.
fn collect<T>(r: Result<T>, prefix: &str, row: &PosRow, errs: &mut Vec<FieldError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ (Error::Validation(_) | Error::Forbidden { .. })) => {
            errs.extend(by_columns(row, prefix, row_errors(e)));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn push_error(report: &mut PosImportReport, row: u64, line: u64, errors: Vec<FieldError>) {
    report.invalid += 1;
    if report.errors.len() < super::transfer::MAX_REPORTED_ROWS {
        report.errors.push(RowError { row, line, errors });
    }
}

/// The import's cases, run on every store: memory here, SQLite and PostgreSQL from crm-store's tests
/// (`crm_core::service::front_desk_import_cases::run_all`).
#[cfg(any(test, feature = "conformance"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod cases {
    use super::{ImportMode, PosImportOptions, PosImportReport};
    use crate::conformance::{Fixture, block, obj};
    use crate::query::ListRequest;
    use crate::record::Record;
    use crate::store::Store;
    use serde_json::json;

    /// The sample export shipped in `examples/data/pos_clients.csv`: 8 clients, 7 with a membership.
    pub const SAMPLE: &str = include_str!("../../../examples/data/pos_clients.csv");

    /// The sample's plans (the import finds plans by name; it creates none).
    fn centre<S: Store>(store: S) -> Fixture<S> {
        let f = Fixture::new(store);
        for (name, days, visits) in [
            ("Monthly", 30, None),
            ("Quarterly", 90, None),
            ("Yearly", 365, None),
            ("10 Visits", 90, Some(10)),
        ] {
            let input = obj(json!({"name": name, "duration_days": days, "visit_allowance": visits, "price": "30.00"}));
            block(f.svc.create(&f.admin, "plan", &input)).unwrap();
        }
        f
    }

    fn import<S: Store>(f: &Fixture<S>, csv: &str, mode: ImportMode) -> PosImportReport {
        let opts = PosImportOptions {
            mode,
            ..Default::default()
        };
        block(f.svc.import_point_of_sale(&f.admin, csv.as_bytes(), &opts)).unwrap()
    }

    fn all<S: Store>(f: &Fixture<S>, entity: &str) -> Vec<Record> {
        let req = ListRequest {
            limit: Some(500),
            ..Default::default()
        };
        block(f.svc.list(&f.admin, entity, &req)).unwrap().items
    }

    fn by_card<S: Store>(f: &Fixture<S>, card: &str) -> Record {
        let req = ListRequest {
            q: Some(format!("external_id:{card}")),
            ..Default::default()
        };
        let mut found = block(f.svc.list(&f.admin, "contact", &req)).unwrap().items;
        assert_eq!(found.len(), 1, "one client with card {card}");
        found.remove(0)
    }

    fn memberships_of<S: Store>(f: &Fixture<S>, client: &Record) -> Vec<Record> {
        let mut m: Vec<Record> = all(f, "membership")
            .into_iter()
            .filter(|m| m.id_of("contact_id") == Some(client.id))
            .collect();
        m.sort_by(|a, b| a.get("starts_on").unwrap().sort_cmp(b.get("starts_on").unwrap()));
        m
    }

    /// A dry run reports what the file would create, and writes nothing.
    pub fn dry_run_reports_and_writes_nothing<S: Store>(make: &impl Fn() -> S) {
        let f = centre(make());
        let before = (all(&f, "contact").len(), all(&f, "membership").len());
        let r = import(&f, SAMPLE, ImportMode::DryRun);
        assert_eq!((r.rows, r.valid, r.invalid), (8, 8, 0), "{:?}", r.errors);
        assert_eq!((r.clients.created, r.memberships.created), (8, 7));
        assert!(!r.applied);
        assert_eq!(r.columns["Card Number"], "contact.external_id");
        assert!(r.ignored_columns.is_empty());
        assert_eq!(before, (all(&f, "contact").len(), all(&f, "membership").len()));
    }

    /// The import creates clients keyed by card number with their membership; importing the same
    /// file again changes nothing; a changed file updates in place, and a new start date is a new
    /// membership (a renewal keeps the old one).
    pub fn create_then_reimport_updates<S: Store>(make: &impl Fn() -> S) {
        let f = centre(make());
        let r = import(&f, SAMPLE, ImportMode::AllOrNothing);
        assert_eq!(
            (r.valid, r.clients.created, r.memberships.created),
            (8, 8, 7),
            "{:?}",
            r.errors
        );
        assert!(r.applied);
        let alex = by_card(&f, "100001");
        assert_eq!(
            (alex.str("first_name"), alex.str("last_name"), alex.str("language")),
            (Some("Alex"), Some("Kim"), Some("de"))
        );
        let m = memberships_of(&f, &alex);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].get("ends_on").unwrap().to_json(), json!("2026-03-14"));
        let monthly = all(&f, "plan")
            .into_iter()
            .find(|p| p.str("name") == Some("Monthly"))
            .unwrap();
        assert_eq!(
            (m[0].id_of("plan_id"), m[0].str("plan_name")),
            (Some(monthly.id), Some("Monthly"))
        );
        assert!(
            memberships_of(&f, &by_card(&f, "100006")).is_empty(),
            "a walk-in has no membership"
        );
        // The client's standing is mirrored by the membership writes (the clock is at 2025-06-01).
        let standing = |card: &str| by_card(&f, card).get("membership").map(|v| v.to_json());
        let mirror = |card: &str, field: &str| by_card(&f, card).get(field).map(|v| v.to_json());
        assert_eq!(
            (
                mirror("100001", "membership_starts_on"),
                mirror("100001", "membership_ends_on")
            ),
            (Some(json!("2026-02-15")), Some(json!("2026-03-14"))),
            "a new client's mirror is written with the client"
        );
        assert_eq!(standing("100007"), Some(json!("active")));
        assert_eq!(standing("100001"), Some(json!("upcoming")));
        assert_eq!(standing("100006"), Some(json!("none")));

        let again = import(&f, SAMPLE, ImportMode::AllOrNothing);
        assert_eq!(
            (again.clients.unchanged, again.memberships.unchanged),
            (8, 7),
            "{again:?}"
        );
        assert!(!again.applied);
        assert_eq!(by_card(&f, "100001").version, alex.version);

        let changed = SAMPLE
            .replace("alex.kim@example.com", "alex@kim.example")
            .replace("Monthly,2026-02-15,2026-03-14", "Monthly,2026-02-15,2026-04-14")
            .replace("Yearly,2025-03-01,2026-02-28", "Yearly,2026-03-01,2027-02-28");
        let r = import(&f, &changed, ImportMode::ValidRowsOnly);
        assert_eq!((r.clients.updated, r.clients.unchanged), (1, 7), "{r:?}");
        assert_eq!(
            (r.memberships.updated, r.memberships.created, r.memberships.unchanged),
            (1, 1, 5)
        );
        let alex2 = by_card(&f, "100001");
        assert_eq!((alex2.id, alex2.str("email")), (alex.id, Some("alex@kim.example")));
        assert_eq!(
            memberships_of(&f, &alex2)[0].get("ends_on").unwrap().to_json(),
            json!("2026-04-14")
        );
        let gus = memberships_of(&f, &by_card(&f, "100007"));
        assert_eq!(gus.len(), 2, "the renewal is a new membership");
        assert_eq!(
            all(&f, "contact")
                .iter()
                .filter(|c| c.str("external_id").is_some())
                .count(),
            8
        );
    }

    /// Bad rows are reported by column; all-or-nothing then writes nothing, valid-rows-only the rest.
    /// A card number is unique: repeated in a file it is an error, already taken it is an update.
    pub fn bad_rows_by_column_and_unique_cards<S: Store>(make: &impl Fn() -> S) {
        let f = centre(make());
        let existing = block(f.svc.create(
            &f.admin,
            "contact",
            &obj(json!({"first_name": "Ivy", "external_id": "200004"})),
        ))
        .unwrap();
        let csv = "card,first_name,email,plan,start,end\n\
                   200001,Ann,ann@example.com,Monthly,2026-01-01,2026-01-31\n\
                   200002,Bob,not-an-email,Monthly,2026-01-01,2026-01-31\n\
                   200001,Ann again,,,,\n\
                   ,Nobody,,,,\n\
                   200003,Cy,,Monthly,2026-02-01,2026-01-01\n\
                   200004,Ivy,ivy@example.com,Monthly,2026-01-05,\n\
                   200005,Eve,eve@example.com,,,\n\
                   200006,Dee,,platinum,2026-01-01,2026-01-31\n";
        let contacts = all(&f, "contact").len();
        let r = import(&f, csv, ImportMode::AllOrNothing);
        assert_eq!((r.rows, r.valid, r.invalid, r.applied), (8, 2, 6, false), "{r:?}");
        let errs: Vec<(u64, Vec<(String, String)>)> = r
            .errors
            .iter()
            .map(|e| {
                let mut v: Vec<_> = e.errors.iter().map(|x| (x.path.clone(), x.code.clone())).collect();
                v.sort();
                (e.row, v)
            })
            .collect();
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(errs[0], (2, vec![s("email", "invalid_email")]));
        assert_eq!(errs[1], (3, vec![s("card", "duplicate")]));
        assert_eq!(errs[2], (4, vec![s("card", "required")]));
        assert_eq!(errs[3].0, 5);
        assert_eq!(errs[4], (6, vec![s("end", "required")]));
        assert_eq!(errs[5], (8, vec![s("plan", "unknown_reference")]));
        assert_eq!(all(&f, "contact").len(), contacts, "all or nothing: nothing");

        let r = import(&f, csv, ImportMode::ValidRowsOnly);
        assert_eq!((r.valid, r.invalid, r.clients.created), (2, 6, 2), "{r:?}");
        assert_eq!(all(&f, "contact").len(), contacts + 2);
        assert_eq!(by_card(&f, "200004").id, existing.id, "a taken card is the same client");
    }

    /// A row that passes validation but fails when written (its membership leaves a gap after the
    /// client's current one, which only the membership's rollup checks): all or nothing leaves the
    /// store exactly as it was; valid-rows-only writes the other rows, and nothing of that row (not
    /// its client's update either).
    pub fn write_failure_leaves_no_partial_import<S: Store>(make: &impl Fn() -> S) {
        let f = centre(make());
        let ola = block(f.svc.create(
            &f.admin,
            "contact",
            &obj(json!({"first_name": "Ola", "external_id": "300009"})),
        ))
        .unwrap();
        let current = json!({"contact_id": ola.id.to_string(), "starts_on": "2025-06-01", "ends_on": "2025-12-31"});
        block(f.svc.create(&f.admin, "membership", &obj(current))).unwrap();
        let csv = "card,name,plan,start,end\n\
                   300001,Pia Lund,Monthly,2025-06-01,2025-06-30\n\
                   300002,Quinn Ray,,,\n\
                   300009,Ola Berg,Monthly,2026-03-01,2026-03-31\n";
        let state = || {
            (
                all(&f, "contact").len(),
                all(&f, "membership").len(),
                block(f.svc.store().audit_head(f.tenant)).unwrap(),
            )
        };
        let before = state();
        let dry = import(&f, csv, ImportMode::DryRun);
        assert_eq!(
            (dry.valid, dry.invalid),
            (3, 0),
            "validation does not see the gap: {dry:?}"
        );

        let r = import(&f, csv, ImportMode::AllOrNothing);
        assert!(!r.applied, "{r:?}");
        assert_eq!((r.valid, r.invalid), (2, 1));
        let errs: Vec<_> = r.errors[0]
            .errors
            .iter()
            .map(|e| (e.path.as_str(), e.code.as_str()))
            .collect();
        assert_eq!((r.errors[0].row, errs), (3, vec![("start", "membership_gap")]));
        assert_eq!(state(), before, "all or nothing: nothing");

        let r = import(&f, csv, ImportMode::ValidRowsOnly);
        assert!(r.applied);
        assert_eq!(
            (r.valid, r.invalid, r.clients.created, r.memberships.created),
            (2, 1, 2, 1),
            "{r:?}"
        );
        assert_eq!(
            (all(&f, "contact").len(), all(&f, "membership").len()),
            (before.0 + 2, before.1 + 1)
        );
        let ola = by_card(&f, "300009");
        assert_eq!((ola.str("last_name"), memberships_of(&f, &ola).len()), (None, 1));
        assert_eq!(
            by_card(&f, "300001").get("membership").map(|v| v.to_json()),
            Some(json!("active"))
        );
    }

    /// Staff may not import (they change only notes).
    pub fn staff_may_not_import<S: Store>(make: &impl Fn() -> S) {
        let f = centre(make());
        let e = block(
            f.svc
                .import_point_of_sale(&f.staff, SAMPLE.as_bytes(), &PosImportOptions::default()),
        )
        .unwrap_err();
        assert_eq!(e.code(), "forbidden");
    }

    /// Every case on fresh stores from `make`.
    pub fn run_all<S: Store>(make: impl Fn() -> S) {
        let make = &make;
        dry_run_reports_and_writes_nothing(make);
        create_then_reimport_updates(make);
        bad_rows_by_column_and_unique_cards(make);
        write_failure_leaves_no_partial_import(make);
        staff_may_not_import(make);
    }

    /// A row is one change set: the sync log holds one entry per row, a new client's insert with its
    /// membership's (and the client's insert carries no derived mirror: whoever replays re-derives).
    #[test]
    fn one_change_set_per_row() {
        let f = centre(crate::memory::MemoryStore::new().with_sync_log(true));
        let logged = || block(f.svc.store().pending_changes(f.tenant, 0, 1000)).unwrap();
        let from = logged().last().map_or(0, |e| e.seq);
        let r = import(&f, SAMPLE, ImportMode::AllOrNothing);
        assert!(r.applied, "{r:?}");
        let entries: Vec<_> = logged().into_iter().filter(|e| e.seq > from).collect();
        assert_eq!(entries.len(), 8, "one change set per row");
        let alex = by_card(&f, "100001");
        let row = entries
            .iter()
            .find(|e| e.writes.iter().any(|w| w.id == alex.id))
            .unwrap();
        let ops: Vec<_> = row.writes.iter().map(|w| (w.entity.as_str(), w.op.as_str())).collect();
        assert_eq!(ops, vec![("contact", "insert"), ("membership", "insert")]);
        assert!(!row.writes[0].patch.contains_key("membership_ends_on"));
        assert_eq!(row.audit.len(), 2);
    }

    #[test]
    fn on_memory() {
        run_all(crate::memory::MemoryStore::new);
    }
}
