//! Upserts from external systems: JSON rows, each with its id in the source system, bound to the
//! records they became ([`crate::entity::binding`]). It runs the CSV import's pipeline
//! ([`super::transfer`]: the same build steps, scope and field checks, batched reference, unique and
//! overlap checks, 2,000-row chunks in one bulk session, dry run, all-or-nothing or valid rows only)
//! with rows found by their binding instead of a record field, and JSON typed strictly.
//!
//! A row whose SHA-256 equals the one its binding last applied is `unchanged` and writes nothing:
//! no record write, no audit entry, no event. Create-only refuses a row whose binding exists
//! (`already_bound`), update-only a row with none (`not_bound`), each on its own. A refused row whose
//! binding exists records its errors on the binding (status `rejected`, `last_error`) when the
//! upsert commits, unless the binding holds the same errors already: a sync that sends the same bad
//! row again writes nothing either. A parent type's row may carry its children ([`super::nested`]).

use super::Service;
use super::transfer::{Ingest, Keyed, MAX_REPORTED_ROWS, Outcome, Row};
use crate::access::Actor;
use crate::entity::binding;
use crate::error::{Error, FieldError, Result, codes};
use crate::schema::EntityDef;
use crate::store::Store;
use crate::value::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Which rows an upsert writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsertMode {
    /// A row bound to no record creates one; a bound row is refused (`already_bound`).
    CreateOnly,
    /// A bound row updates its record; a row bound to no record is refused (`not_bound`).
    UpdateOnly,
    /// Create or update, as the binding says.
    #[default]
    Upsert,
}

impl UpsertMode {
    /// The mode's name on the command line (`create-only`).
    pub fn from_cli(s: &str) -> Option<Self> {
        match s {
            "create-only" | "create_only" => Some(UpsertMode::CreateOnly),
            "update-only" | "update_only" => Some(UpsertMode::UpdateOnly),
            "upsert" => Some(UpsertMode::Upsert),
            _ => None,
        }
    }
}

/// How an upsert runs (everything but its rows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertOptions {
    /// The source system (`scheduler`): lower-case letters, digits, `_`, `-`, `.`; at most 64.
    pub system: String,
    #[serde(default)]
    pub mode: UpsertMode,
    /// Write nothing if any row is refused (default: write the rows that pass).
    #[serde(default)]
    pub all_or_nothing: bool,
    /// Check every row and report, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Refuse inputs with more rows than this.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
}

fn default_max_rows() -> u64 {
    2_000_000
}

impl UpsertOptions {
    /// Upsert mode, valid rows only, writing.
    pub fn new(system: impl Into<String>) -> Self {
        UpsertOptions {
            system: system.into(),
            mode: UpsertMode::Upsert,
            all_or_nothing: false,
            dry_run: false,
            max_rows: default_max_rows(),
        }
    }
}

/// An upsert of JSON rows (the body of `POST /api/v1/{table}/upsert`): each row an object with the
/// entity's external key (`external_id`) naming the row's id in the source system, and the fields
/// to write. The options are those of [`UpsertOptions`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertRequest {
    pub system: String,
    #[serde(default)]
    pub mode: UpsertMode,
    #[serde(default)]
    pub all_or_nothing: bool,
    #[serde(default)]
    pub dry_run: bool,
    pub rows: Vec<Json>,
}

impl UpsertRequest {
    /// The request's options.
    pub fn options(&self) -> UpsertOptions {
        UpsertOptions {
            system: self.system.clone(),
            mode: self.mode,
            all_or_nothing: self.all_or_nothing,
            dry_run: self.dry_run,
            max_rows: default_max_rows(),
        }
    }
}

/// What became of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// One row of an [`UpsertReport`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpsertRow {
    /// 1-based position in the input.
    pub row: u64,
    /// The row's external id (absent when the row names none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub outcome: RowOutcome,
    /// The bound record (absent for a refused row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// Every error of a refused row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The outcome of an upsert: counts over every row, and the rows that were created, updated or
/// refused (unchanged rows are only counted), the first [`MAX_REPORTED_ROWS`] of them in input
/// order; `results_omitted` counts the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsertReport {
    pub system: String,
    pub mode: UpsertMode,
    pub dry_run: bool,
    pub all_or_nothing: bool,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Whether records were written (false for a dry run, and for an all-or-nothing upsert with a
    /// refused row).
    pub applied: bool,
    pub results: Vec<UpsertRow>,
    #[serde(default)]
    pub results_omitted: u64,
}

impl UpsertReport {
    fn push(&mut self, row: UpsertRow) {
        match row.outcome {
            RowOutcome::Created => self.created += 1,
            RowOutcome::Updated => self.updated += 1,
            RowOutcome::Unchanged => self.unchanged += 1,
            RowOutcome::Rejected => self.rejected += 1,
        }
        if row.outcome == RowOutcome::Unchanged {
            return;
        }
        if self.results.len() < MAX_REPORTED_ROWS {
            self.results.push(row);
        } else {
            self.results_omitted += 1;
        }
    }
}

impl<S: Store> Service<S> {
    /// Upserts JSON rows from an external system into an entity type with an external key. See the
    /// module docs, [`UpsertOptions`] and [`UpsertReport`].
    pub async fn upsert(&self, actor: &Actor, entity: &str, req: UpsertRequest) -> Result<UpsertReport> {
        let opts = req.options();
        self.upsert_rows(actor, entity, &opts, req.rows.into_iter().map(Ok))
            .await
    }

    /// [`Self::upsert`] over rows read as they are needed (a JSON Lines file): memory stays bounded
    /// by a chunk whatever the input's length. An `Err` item is a row that could not be read
    /// (reported as refused with that error).
    pub async fn upsert_rows<I>(
        &self,
        actor: &Actor,
        entity: &str,
        opts: &UpsertOptions,
        rows: I,
    ) -> Result<UpsertReport>
    where
        I: IntoIterator<Item = std::result::Result<Json, FieldError>>,
        I::IntoIter: Send,
    {
        let def = self.entity(entity)?;
        binding::check_system(&opts.system).map_err(|e| Error::Validation(vec![e]))?;
        let Some(key_field) = def.external_key else {
            return Err(Error::field(
                "entity",
                codes::INVALID_OPTION,
                format!("{} has no external key", def.name),
            ));
        };
        let keyed = Keyed::Binding {
            system: opts.system.clone(),
            mode: opts.mode,
        };
        let ctx = self.write_ctx(actor.tenant, def).await?;
        let mut ingest = Ingest::open(self, actor, def, ctx, keyed, !opts.dry_run, "upsert").await?;
        let mut report = UpsertReport {
            system: opts.system.clone(),
            mode: opts.mode,
            dry_run: opts.dry_run,
            all_or_nothing: opts.all_or_nothing,
            ..Default::default()
        };
        let size = ingest.chunk_size();
        let mut rows = rows.into_iter();
        let mut n = 0u64;
        loop {
            let mut chunk = Vec::with_capacity(size);
            // The external id of each row of the chunk, by row.
            let mut ids: Vec<(u64, String)> = Vec::with_capacity(size);
            for item in rows.by_ref() {
                n += 1;
                if n > opts.max_rows {
                    return Err(Error::LimitExceeded {
                        what: "upsert rows".into(),
                        limit: opts.max_rows,
                    });
                }
                match read_row(n, item, def, key_field) {
                    Ok(row) => {
                        ids.extend(row.key.clone().map(|k| (n, k)));
                        chunk.push(row);
                    }
                    Err((external_id, errors)) => report.push(UpsertRow {
                        row: n,
                        external_id,
                        outcome: RowOutcome::Rejected,
                        id: None,
                        errors,
                    }),
                }
                if chunk.len() == size {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            for (row, _, outcome) in ingest.chunk(chunk).await? {
                let external_id = ids.iter().find(|(r, _)| *r == row).map(|(_, k)| k.clone());
                let (outcome, id, errors) = match outcome {
                    Outcome::Created(id) => (RowOutcome::Created, Some(id), vec![]),
                    Outcome::Updated(id) => (RowOutcome::Updated, Some(id), vec![]),
                    Outcome::Unchanged(id) => (RowOutcome::Unchanged, Some(id), vec![]),
                    Outcome::Rejected(e) => (RowOutcome::Rejected, None, e),
                };
                report.push(UpsertRow {
                    row,
                    external_id,
                    outcome,
                    id,
                    errors,
                });
            }
        }
        // Rows refused before their chunk are listed first: back to input order.
        report.results.sort_by_key(|r| r.row);
        report.rows = n;
        let refused = opts.all_or_nothing && report.rejected > 0;
        let commit = !opts.dry_run && !refused;
        report.applied = commit && report.created + report.updated > 0;
        ingest.finish(commit).await?;
        Ok(report)
    }
}

/// A row as the pipeline takes it, or its external id (if it names one) and errors.
fn read_row(
    n: u64,
    item: std::result::Result<Json, FieldError>,
    def: &'static EntityDef,
    key_field: &str,
) -> std::result::Result<Row, (Option<String>, Vec<FieldError>)> {
    let mut input = match item {
        Ok(Json::Object(m)) => m,
        Ok(_) => {
            return Err((
                None,
                vec![FieldError::new("row", codes::INVALID_TYPE, "a row is a JSON object")],
            ));
        }
        Err(e) => return Err((None, vec![e])),
    };
    let hash = binding::row_hash(&input);
    let key = binding::external_id(&input, key_field).map_err(|e| (None, vec![e]))?;
    // The external id names the binding; the record's own external key field stays the tenant's.
    input.remove(key_field);
    let nested = super::nested::take_nested(def, &mut input).map_err(|e| (Some(key.clone()), e))?;
    Ok(Row {
        row: n,
        line: n,
        input,
        key: Some(key),
        hash: Some(hash),
        nested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_read_strictly() {
        let job = crate::entity::entity("job").unwrap();
        let r = read_row(3, Ok(json!({"external_id": "J1", "title": "Move"})), job, "external_id").unwrap();
        assert_eq!(r.key.as_deref(), Some("J1"));
        assert!(!r.input.contains_key("external_id"), "the id names the binding");
        assert_eq!(r.hash.as_deref().map(str::len), Some(64));
        let (_, errs) = read_row(1, Ok(json!(["J1"])), job, "external_id").unwrap_err();
        assert_eq!(errs[0].code, "invalid_type");
        let (_, errs) = read_row(1, Ok(json!({"external_id": 12})), job, "external_id").unwrap_err();
        assert_eq!(
            (errs[0].path.as_str(), errs[0].code.as_str()),
            ("external_id", "invalid_type")
        );
    }

    #[test]
    fn modes_read_from_the_command_line_and_json() {
        assert_eq!(UpsertMode::from_cli("create-only"), Some(UpsertMode::CreateOnly));
        assert_eq!(UpsertMode::from_cli("update-only"), Some(UpsertMode::UpdateOnly));
        assert_eq!(UpsertMode::from_cli("merge"), None);
        let req: UpsertRequest =
            serde_json::from_value(json!({"system": "erp", "mode": "update_only", "rows": []})).unwrap();
        assert_eq!(req.mode, UpsertMode::UpdateOnly);
        assert!(!req.all_or_nothing && !req.dry_run);
        let unknown = serde_json::from_value::<UpsertRequest>(json!({"system": "erp", "rows": [], "upsert": true}));
        assert!(unknown.is_err(), "an unknown member is refused");
    }
}
