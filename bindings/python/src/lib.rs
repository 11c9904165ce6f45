//! `crm._crm`: the native half of the `crm` Python package.
//!
//! Thin by design: every method converts its arguments, releases the GIL, drives one
//! [`crm_core::service::Service`] use case with `pollster::block_on`, and converts the result (or
//! the core's error) back. The Pythonic API (`crm.open`, collections, records, DataFrames) lives in
//! `python/crm/*.py` on top of this module.

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::demo::{self, DemoSize};
use crm_core::error::Error;
use crm_core::progress::{Progress, Step};
use crm_core::query::aggregate::{Fold, GroupBy, Measure};
use crm_core::query::{Filter, FilterSpec, ListRequest, MAX_BULK_PAGE_SIZE, SortKey};
use crm_core::record::Record;
use crm_core::scoring::{ScoringModel, default_model};
use crm_core::service::{
    AggregateRequest, CheckInInput, ConvertOptions, ExportOptions, ImportMode, ImportOptions, PosImportOptions,
    ReportKind, ReportRequest, Service, UpsertMode, UpsertRequest, parse_offset,
};
use crm_core::store::AuditQuery;
use crm_core::value::{Id, Timestamp, Value};
use crm_store::AnyStore;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod arrow;

/// The extension's own (Rust) allocations use mimalloc: a bulk read allocates and frees millions of
/// small values (record fields, strings), several times faster than with the C library's allocator
/// (measured: `to_arrow` of 1,000,000 leads). Python's allocations are not affected.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows per bulk page when building Arrow tables in id order (two workers, one page each in flight).
const DEFAULT_ARROW_PAGE: u32 = 4_000;

type Svc = Service<Arc<AnyStore>>;

const DAY: &[time::format_description::FormatItem<'static>] = time::macros::format_description!("[year]-[month]-[day]");

/// A `YYYY-MM-DD` argument, or a `ValueError` naming it.
fn parse_day(name: &str, s: &str) -> PyResult<time::Date> {
    time::Date::parse(s, DAY).map_err(|_| bad(format!("{name}: expected YYYY-MM-DD, got {s:?}")))
}

/// `(lead, contact, company)` as raw record tuples.
type RawConversion = (Py<PyAny>, Py<PyAny>, Option<Py<PyAny>>);

/// Converts a core error into the matching `crm.*Error` (built by `crm.errors._from_core` from the
/// core's description: code, message and the kind's members).
fn to_py_err(e: Error) -> PyErr {
    let details = e.details();
    let (code, message) = (details.code, details.message.clone());
    let details = json!(details.kind).to_string();
    Python::attach(|py| {
        let made = py
            .import("crm.errors")
            .and_then(|m| m.getattr("_from_core"))
            .and_then(|f| f.call1((code, message.clone(), details)));
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    })
}

/// A Python progress callback `f(done, total, unit)` handed to the core as a [`Progress`]. It is
/// called with the GIL held, once per batch; the first exception it raises stops further calls and
/// is raised when the operation returns (the operation itself runs to its end).
struct PyProgress {
    progress: Progress,
    error: Arc<Mutex<Option<PyErr>>>,
}

impl PyProgress {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        let error: Arc<Mutex<Option<PyErr>>> = Arc::default();
        let progress = match callback {
            None => Progress::none(),
            Some(cb) => {
                let slot = error.clone();
                Progress::new(move |s: Step| {
                    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_none() {
                        let r = Python::attach(|py| cb.call1(py, (s.done, s.total, s.unit.as_str())).map(drop));
                        *slot = r.err();
                    }
                })
            }
        };
        PyProgress { progress, error }
    }

    /// The operation's result, or the callback's exception when it raised one.
    fn finish<T>(self, result: PyResult<T>) -> PyResult<T> {
        let value = result?;
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// An Arrow error building a table (a bug: the layout and the batches come from one declaration).
fn arrow_err(e: arrow_schema::ArrowError) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

fn bad(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

fn parse_id(s: &str) -> PyResult<Id> {
    crm_core::value::parse_id(s).ok_or_else(|| bad(format!("not a record id: {s:?}")))
}

fn parse_obj(s: &str) -> PyResult<Map<String, Json>> {
    match serde_json::from_str::<Json>(s) {
        Ok(Json::Object(m)) => Ok(m),
        _ => Err(bad("expected a JSON object")),
    }
}

fn parse_model(s: &str) -> PyResult<ScoringModel> {
    serde_json::from_str(s).map_err(|e| bad(format!("invalid scoring model: {e}")))
}

/// A typed filter's JSON; a typo is an `InvalidQueryError` naming the bad key and the allowed ones
/// (the core's [`FilterSpec::from_json`]).
fn parse_filter(s: Option<&str>) -> PyResult<Option<Filter>> {
    s.map(|s| {
        let j = serde_json::from_str::<Json>(s).map_err(|e| bad(format!("invalid filter: {e}")))?;
        FilterSpec::from_json(&j).map(Filter::from).map_err(to_py_err)
    })
    .transpose()
}

/// A query error's position as a Python string index into `q` (the core counts bytes).
fn in_chars(q: Option<&str>) -> impl Fn(Error) -> Error + '_ {
    move |e| match (e, q) {
        (Error::InvalidQuery { message, position }, Some(q)) => Error::InvalidQuery {
            position: q.get(..position).map_or(position, |head| head.chars().count()),
            message,
        },
        (e, _) => e,
    }
}

/// A file error as Python's `OSError` subclass for it (`FileNotFoundError`, `PermissionError`,
/// ...), with the path as its `filename`.
fn file_err(path: &str, e: &std::io::Error) -> PyErr {
    let errno = e.raw_os_error().unwrap_or(0);
    let msg = e.to_string();
    // `OSError(errno, strerror, filename)` picks the subclass from the errno.
    match e.kind() {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err((ENOENT, msg, path.to_owned())),
        _ => PyOSError::new_err((errno, msg, path.to_owned())),
    }
}

/// `ENOENT`: the same number on Linux, macOS and Windows.
const ENOENT: i32 = 2;

fn to_json_string<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| bad(e.to_string()))
}

/// Python constructors used to build record values (`decimal.Decimal`, `datetime`). Ids are `str`
/// (hyphenated, lower case): the same values as the id columns of `to_arrow`, so records and
/// DataFrames join.
struct Conv<'py> {
    decimal: Bound<'py, PyAny>,
    date: Bound<'py, PyAny>,
    epoch: Bound<'py, PyAny>,
    timedelta: Bound<'py, PyAny>,
}

impl<'py> Conv<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let dt = py.import("datetime")?;
        let epoch = dt
            .getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, dt.getattr("timezone")?.getattr("utc")?))?;
        Ok(Conv {
            decimal: py.import("decimal")?.getattr("Decimal")?,
            date: dt.getattr("date")?,
            epoch,
            timedelta: dt.getattr("timedelta")?,
        })
    }

    fn id(&self, id: Id) -> PyResult<Bound<'py, PyAny>> {
        let py = self.decimal.py();
        Ok(PyString::new(py, id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())).into_any())
    }

    fn ts(&self, t: Timestamp) -> PyResult<Bound<'py, PyAny>> {
        let d = self.timedelta.call1((0, 0, t.0))?;
        self.epoch.call_method1("__add__", (d,))
    }

    fn value(&self, v: &Value) -> PyResult<Bound<'py, PyAny>> {
        let py = self.decimal.py();
        Ok(match v {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Value::Int(i) => i.into_pyobject(py)?.into_any(),
            Value::Number(n) => n.into_pyobject(py)?.into_any(),
            Value::Money(m) => self.decimal.call1((m.to_string(),))?,
            Value::Decimal(d) => self.decimal.call1((d.to_string(),))?,
            Value::Text(s) => s.into_pyobject(py)?.into_any(),
            Value::Date(d) => self.date.call1((d.year(), u8::from(d.month()), d.day()))?,
            Value::Timestamp(t) => self.ts(*t)?,
            Value::Id(i) => self.id(*i)?,
            Value::List(l) => PyList::new(py, l)?.into_any(),
            Value::Json(j) => py.import("json")?.getattr("loads")?.call1((j.to_string(),))?,
        })
    }

    /// `(entity, id, version, created_at, updated_at, fields, custom)`; hidden fields are absent;
    /// computed fields (evaluated by the service as of the read) follow the declared ones.
    fn record(&self, r: &Record) -> PyResult<Bound<'py, PyTuple>> {
        let py = self.decimal.py();
        let fields = PyDict::new(py);
        for (i, f) in r.entity.fields.iter().enumerate() {
            if !r.is_hidden(i) {
                fields.set_item(f.name, self.value(&r.values[i])?)?;
            }
        }
        // Computed values as of the read (a quote's `state`), as `Record::to_json` shows them.
        for c in &r.entity.computed {
            if let Some(v) = r.get(c.name) {
                fields.set_item(c.name, self.value(v)?)?;
            }
        }
        let custom = PyDict::new(py);
        for (k, v) in &r.custom {
            custom.set_item(k, self.value(v)?)?;
        }
        PyTuple::new(
            py,
            [
                r.entity.name.into_pyobject(py)?.into_any(),
                self.id(r.id)?,
                r.version.into_pyobject(py)?.into_any(),
                self.ts(r.created_at)?,
                self.ts(r.updated_at)?,
                fields.into_any(),
                custom.into_any(),
            ],
        )
    }
}

fn record_py(py: Python<'_>, r: &Record) -> PyResult<Py<PyAny>> {
    Ok(Conv::new(py)?.record(r)?.into_any().unbind())
}

/// An open database, acting as one user (or the system) of one tenant. Thread-safe: share it freely
/// between Python threads; every call releases the GIL while the core works.
#[pyclass(frozen, module = "crm._crm")]
struct Database {
    svc: Arc<Svc>,
    actor: Actor,
    path: String,
}

impl Database {
    /// Runs a use case with the GIL released.
    fn run<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a Svc, &'a Actor) -> Result<T, Error> + Send,
    {
        let (svc, actor) = (&*self.svc, &self.actor);
        py.detach(|| f(svc, actor)).map_err(to_py_err)
    }
}

#[pymethods]
impl Database {
    /// Opens the database at `path` (a SQLite file, which must exist, or a PostgreSQL URL) as the
    /// user with email `as_user` (the system, with the admin role, when `None`) of `tenant` (the
    /// only tenant when `None`). With `create`, a missing SQLite file is created, and a database
    /// without an organization gets one named `organization` (the core validates it). Attachment
    /// bytes go to `blob_url` (an S3-compatible bucket, `s3://bucket[/prefix]` with the `AWS_*`
    /// environment), else the directory `blob_dir`, else the one next to the database.
    #[staticmethod]
    #[pyo3(signature = (path, as_user=None, tenant=None, create=false, organization=None, blob_dir=None, blob_url=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        path: String,
        as_user: Option<String>,
        tenant: Option<String>,
        create: bool,
        organization: Option<String>,
        blob_dir: Option<String>,
        blob_url: Option<String>,
    ) -> PyResult<Self> {
        let tenant = tenant.as_deref().map(parse_id).transpose()?;
        if organization.is_some() && !create {
            return Err(bad("organization= creates an organization: pass create=True with it"));
        }
        let no_organization = || {
            Error::field(
                "organization",
                crm_core::error::codes::REQUIRED,
                "the database has no organization yet: pass organization=\"Name\" with create=True",
            )
        };
        let missing = !crm_store::is_postgres_url(&path) && !std::path::Path::new(&path).exists();
        if missing && create && organization.is_none() {
            // Nothing to open in a new database without its organization: refuse before creating it.
            return Err(to_py_err(no_organization()));
        }
        if missing && !create {
            // Opening must not leave an empty database behind for a mistyped path.
            return Err(PyFileNotFoundError::new_err((
                ENOENT,
                "no CRM database at this path (crm.open(path, create=True, organization=...) makes one)",
                path,
            )));
        }
        let p = path.clone();
        let (svc, actor) = py
            .detach(move || {
                pollster::block_on(async move {
                    // The store's own dispatch: a SQLite file, or a PostgreSQL URL (refused with
                    // a storage error by builds without PostgreSQL support).
                    let store = Arc::new(crm_store::open(&p)?);
                    // Attachment bytes as `crm serve` keeps them: the bucket, the directory, or
                    // next to the database (`crm.db` -> `crm.blobs`).
                    let blobs = crm_store::blob::open_configured(
                        std::path::Path::new(&p),
                        blob_dir.as_deref().map(std::path::Path::new),
                        blob_url.as_deref(),
                    )?;
                    let svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds)).with_blob_store(blobs);
                    let tenant = match tenant {
                        Some(t) => t,
                        None => match (svc.tenants().await?.as_slice(), organization) {
                            ([only], _) => *only,
                            ([], Some(name)) => {
                                let mut input = Map::new();
                                input.insert("name".into(), Json::String(name));
                                svc.create_organization(&input).await?.id
                            }
                            ([], None) => return Err(no_organization()),
                            _ => {
                                return Err(Error::field(
                                    "tenant",
                                    "required",
                                    "the database has several tenants: pass tenant=",
                                ));
                            }
                        },
                    };
                    // The core resolves the user (by normalised email: active, with their role).
                    let actor = match as_user {
                        None => Actor::system(tenant),
                        Some(email) => svc.actor_by_email(tenant, &email).await?,
                    };
                    Ok((svc, actor))
                })
            })
            .map_err(to_py_err)?;
        Ok(Database {
            svc: Arc::new(svc),
            actor,
            path,
        })
    }

    /// The tenant (organization) id.
    #[getter]
    fn tenant(&self) -> String {
        self.actor.tenant.to_string()
    }

    /// The acting user's id, or `None` for the system.
    #[getter]
    fn user_id(&self) -> Option<String> {
        self.actor.user_id.map(|u| u.to_string())
    }

    /// The acting role's name.
    #[getter]
    fn role(&self) -> String {
        self.actor.role.name.clone()
    }

    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }

    /// Whether the actor may read `field` of `entity` (the core's field permissions).
    fn can_read_field(&self, entity: &str, field: &str) -> bool {
        crm_core::entity::entity(entity).is_some_and(|def| self.actor.role.can_read_field(def, field))
    }

    /// One page: `(records, next_cursor)`.
    #[pyo3(signature = (entity, q=None, filter=None, order_by=None, limit=None, cursor=None, bulk=false))]
    #[allow(clippy::too_many_arguments)]
    fn list_page(
        &self,
        py: Python<'_>,
        entity: String,
        q: Option<String>,
        filter: Option<String>,
        order_by: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
        bulk: bool,
    ) -> PyResult<(Py<PyAny>, Option<String>)> {
        let req = ListRequest {
            q,
            filter: parse_filter(filter.as_deref())?,
            sort: order_by.as_deref().map(SortKey::parse_list).unwrap_or_default(),
            limit,
            cursor,
        };
        let page = self.run(py, |svc, actor| {
            pollster::block_on(async {
                if bulk {
                    svc.list_bulk(actor, &entity, &req).await
                } else {
                    svc.list(actor, &entity, &req).await
                }
                .map_err(in_chars(req.q.as_deref()))
            })
        })?;
        let conv = Conv::new(py)?;
        let items = PyList::empty(py);
        for r in &page.items {
            items.append(conv.record(r)?)?;
        }
        Ok((items.into_any().unbind(), page.next_cursor))
    }

    fn get(&self, py: Python<'_>, entity: String, id: &str) -> PyResult<Py<PyAny>> {
        let id = parse_id(id)?;
        let r = self.run(py, |svc, actor| pollster::block_on(svc.get(actor, &entity, id)))?;
        record_py(py, &r)
    }

    fn create(&self, py: Python<'_>, entity: String, data: &str) -> PyResult<Py<PyAny>> {
        let input = parse_obj(data)?;
        let r = self.run(py, |svc, actor| pollster::block_on(svc.create(actor, &entity, &input)))?;
        record_py(py, &r)
    }

    fn update(&self, py: Python<'_>, entity: String, id: &str, version: u64, patch: &str) -> PyResult<Py<PyAny>> {
        let (id, input) = (parse_id(id)?, parse_obj(patch)?);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.update(actor, &entity, id, version, &input))
        })?;
        record_py(py, &r)
    }

    fn delete(&self, py: Python<'_>, entity: String, id: &str, version: u64) -> PyResult<()> {
        let id = parse_id(id)?;
        self.run(py, |svc, actor| {
            pollster::block_on(svc.delete(actor, &entity, id, version))
        })
    }

    /// Runs the workflow transition `name` (`submit`, `approve`, ...) of a record at `version`, with
    /// the transition's input (JSON object); the record after it (for `revise` and `duplicate`: the
    /// new copy). A guard's refusal is a validation error naming its code.
    fn transition(
        &self,
        py: Python<'_>,
        entity: String,
        id: &str,
        version: u64,
        name: String,
        data: &str,
    ) -> PyResult<Py<PyAny>> {
        let (id, input) = (parse_id(id)?, parse_obj(data)?);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.transition(actor, &entity, id, version, &name, &input))
        })?;
        record_py(py, &r)
    }

    /// Attaches the file at `path` to a record (streamed; the core sniffs its media type, counts and
    /// hashes it, and enforces the tenant's size limit); the attachment record.
    #[pyo3(signature = (entity, id, path, kind, file_name=None, signer_name=None))]
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
    fn attach(
        &self,
        py: Python<'_>,
        entity: String,
        id: &str,
        path: std::path::PathBuf,
        kind: String,
        file_name: Option<String>,
        signer_name: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let id = parse_id(id)?;
        let mut file = std::fs::File::open(&path).map_err(|e| {
            PyFileNotFoundError::new_err((
                e.raw_os_error().unwrap_or(ENOENT),
                e.to_string(),
                path.display().to_string(),
            ))
        })?;
        let input = crm_core::service::AttachInput {
            kind,
            file_name: file_name
                .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
            signer_name,
            ..Default::default()
        };
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.attach(actor, &entity, id, &input, &mut file))
        })?;
        record_py(py, &r)
    }

    /// A record's attachments (records), oldest first.
    fn attachments(&self, py: Python<'_>, entity: String, id: &str) -> PyResult<Py<PyAny>> {
        let id = parse_id(id)?;
        let rows = self.run(py, |svc, actor| pollster::block_on(svc.attachments(actor, &entity, id)))?;
        let conv = Conv::new(py)?;
        let out = PyList::empty(py);
        for r in &rows {
            out.append(conv.record(r)?)?;
        }
        Ok(out.into_any().unbind())
    }

    /// An attachment's bytes (the user must be able to read the record it is on).
    fn attachment_content(&self, py: Python<'_>, id: &str) -> PyResult<Py<PyAny>> {
        let id = parse_id(id)?;
        let bytes = self.run(py, |svc, actor| {
            let (_, mut r) = pollster::block_on(svc.attachment_content(actor, id))?;
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut out)
                .map_err(|e| Error::internal(format!("reading an attachment: {e}")))?;
            Ok(out)
        })?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).into_any().unbind())
    }

    /// A record's document (a quote as the customer reads it): self-contained HTML showing only what
    /// the user may read.
    fn document(&self, py: Python<'_>, entity: String, id: &str) -> PyResult<String> {
        let id = parse_id(id)?;
        self.run(py, |svc, actor| pollster::block_on(svc.document(actor, &entity, id)))
    }

    /// A record's children: `[(table, [record, ...]), ...]` per child type in declaration order,
    /// each in its declared order (`NotFoundError` when the record is not readable).
    fn children(&self, py: Python<'_>, entity: String, id: &str) -> PyResult<Py<PyAny>> {
        let id = parse_id(id)?;
        let kids = self.run(py, |svc, actor| pollster::block_on(svc.children(actor, &entity, id)))?;
        let conv = Conv::new(py)?;
        let out = PyList::empty(py);
        for (cdef, rows) in &kids {
            let items = PyList::empty(py);
            for r in rows {
                items.append(conv.record(r)?)?;
            }
            out.append((cdef.table, items))?;
        }
        Ok(out.into_any().unbind())
    }

    /// One child type's rows of a record as Arrow (the columns of `to_arrow` for that type).
    #[pyo3(signature = (entity, id, child, money="decimal"))]
    fn children_arrow(
        &self,
        py: Python<'_>,
        entity: String,
        id: &str,
        child: String,
        money: &str,
    ) -> PyResult<arrow::ArrowStream> {
        let id = parse_id(id)?;
        let decimals = arrow::Decimals::parse(money)?;
        let cdef = self.svc.entity(&child).map_err(to_py_err)?;
        let (rows, (declared, custom), labels) = self.run(py, |svc, actor| {
            pollster::block_on(async {
                let kids = svc.children(actor, &entity, id).await?;
                let rows = kids
                    .into_iter()
                    .find(|(d, _)| d.name == cdef.name)
                    .map(|(_, rows)| rows)
                    .ok_or_else(|| {
                        Error::field(
                            "child",
                            crm_core::error::codes::INVALID_OPTION,
                            format!("{child} is not a child type of {entity}"),
                        )
                    })?;
                let fields = svc.readable_fields(actor, cdef.name).await?;
                Ok((rows, fields, svc.custom_labels(actor, cdef.name).await?))
            })
        })?;
        let layout = arrow::Layout::new(cdef, &declared, &custom, &labels, decimals).map_err(arrow_err)?;
        arrow::from_records(&layout, &rows)
    }

    /// The child types of an entity type: `[(table, child entity name), ...]`.
    #[staticmethod]
    fn child_types(entity: &str) -> PyResult<Vec<(&'static str, &'static str)>> {
        let def = crm_core::entity::entity(entity).ok_or_else(|| to_py_err(Error::not_found("entity type", entity)))?;
        Ok(def.children().map(|c| (c.table, c.name)).collect())
    }

    /// Makes a job from the accepted quote `id` with the overrides `data` (JSON object of job
    /// input); the job (see `Service::job_from_quote`).
    fn job_from_quote(&self, py: Python<'_>, id: &str, data: &str) -> PyResult<Py<PyAny>> {
        let (id, overrides) = (parse_id(id)?, parse_obj(data)?);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.job_from_quote(actor, id, &overrides))
        })?;
        record_py(py, &r)
    }

    /// `(lead, contact, company or None)`.
    fn convert_lead(&self, py: Python<'_>, id: &str, version: u64, create_company: bool) -> PyResult<RawConversion> {
        let id = parse_id(id)?;
        let opts = ConvertOptions { create_company };
        let c = self.run(py, |svc, actor| {
            pollster::block_on(svc.convert_lead(actor, id, version, &opts))
        })?;
        let company = c.company.as_ref().map(|r| record_py(py, r)).transpose()?;
        Ok((record_py(py, &c.lead)?, record_py(py, &c.contact)?, company))
    }

    fn log_activity(&self, py: Python<'_>, data: &str) -> PyResult<Py<PyAny>> {
        let input = parse_obj(data)?;
        let r = self.run(py, |svc, actor| pollster::block_on(svc.log_activity(actor, &input)))?;
        record_py(py, &r)
    }

    /// The score explanation (JSON) under the published model, or under `model` (JSON) if given.
    #[pyo3(signature = (lead_id, model=None, as_of=None))]
    fn explain(&self, py: Python<'_>, lead_id: &str, model: Option<String>, as_of: Option<i64>) -> PyResult<String> {
        let id = parse_id(lead_id)?;
        let draft = model.as_deref().map(parse_model).transpose()?;
        let as_of = as_of.map(Timestamp);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(async {
                match &draft {
                    Some(m) => svc.explain_with(actor, id, m, as_of).await,
                    None => svc.explain_score(actor, id, as_of).await,
                }
            })
        })?;
        to_json_string(&r)
    }

    /// Back-test report (JSON) of `model` (JSON; without one, the core back-tests the model that
    /// scores the tenant's leads).
    #[pyo3(signature = (model=None, since=None))]
    fn backtest(&self, py: Python<'_>, model: Option<String>, since: Option<i64>) -> PyResult<String> {
        let draft = model.as_deref().map(parse_model).transpose()?;
        let since = since.map(Timestamp);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.backtest(actor, draft.as_ref(), since))
        })?;
        to_json_string(&r)
    }

    /// The definition (JSON) of the tenant's published scoring model (the built-in default model
    /// when none is published).
    fn published_model(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.run(py, |svc, actor| pollster::block_on(svc.published_model(actor)))?;
        to_json_string(&m)
    }

    /// The built-in default scoring model (JSON).
    #[staticmethod]
    fn default_model() -> PyResult<String> {
        to_json_string(&default_model())
    }

    /// Re-scores every lead; `progress(done, total, unit)` is called after each batch.
    #[pyo3(signature = (progress=None))]
    fn rescore(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<String> {
        let p = PyProgress::new(progress);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.rescore_all_with(actor, &p.progress))
        });
        to_json_string(&p.finish(r)?)
    }

    /// Publishes a draft model record: `(model record, rescore report JSON)`.
    fn publish_model(&self, py: Python<'_>, id: &str, version: u64) -> PyResult<(Py<PyAny>, String)> {
        let id = parse_id(id)?;
        let (rec, rep) = self.run(py, |svc, actor| {
            pollster::block_on(svc.publish_model(actor, id, version))
        })?;
        Ok((record_py(py, &rec)?, to_json_string(&rep)?))
    }

    /// Quote conversion grouped `by` owner, source or month (JSON rows).
    #[pyo3(signature = (by=None))]
    fn quote_conversion(&self, py: Python<'_>, by: Option<&str>) -> PyResult<String> {
        let by: crm_core::analytics::conversion::ConversionBy = match by {
            Some(s) => s.parse().map_err(|e: crm_core::error::Error| bad(e.to_string()))?,
            None => Default::default(),
        };
        let r = self.run(py, |svc, actor| pollster::block_on(svc.quote_conversion(actor, by)))?;
        to_json_string(&r)
    }

    /// A routing back-test (JSON rows): how today's routing rules would spread the past leads that
    /// match `q` (see `Service::routing_backtest`).
    #[pyo3(signature = (q=None))]
    fn routing_backtest(&self, py: Python<'_>, q: Option<String>) -> PyResult<String> {
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.routing_backtest(actor, q.as_deref()))
        })?;
        to_json_string(&r)
    }

    /// A report (`funnel`, `productivity`, `cohort`, `geo`, `lifetime_value`, ...) as JSON.
    /// `params`: the report's text parameters (`q`, `by`, `tz`, `entity`, `cell`, `bins`), read by
    /// the core as the HTTP API reads its query.
    fn report(&self, py: Python<'_>, name: &str, params: BTreeMap<String, String>) -> PyResult<String> {
        let kind: ReportKind = name.parse().map_err(to_py_err)?;
        let req = ReportRequest::from_params(|k| params.get(k).map(String::as_str)).map_err(to_py_err)?;
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.report(actor, kind, &req)).map_err(in_chars(req.q.as_deref()))
        })?;
        to_json_string(&r)
    }

    /// An ad-hoc aggregate of `entity` as JSON (`{"by", "measures", "groups"}`): grouped `by`
    /// fields (`status`, `created_at:month`), measured by `(fold, field)` pairs (`("sum",
    /// "estimated_value")`, `("count", None)`), over the records matching `q` and `filter`;
    /// `tz`: the UTC offset of time buckets.
    #[pyo3(signature = (entity, q=None, filter=None, by=Vec::new(), measures=Vec::new(), tz=None))]
    #[allow(clippy::too_many_arguments)]
    fn aggregate(
        &self,
        py: Python<'_>,
        entity: String,
        q: Option<String>,
        filter: Option<String>,
        by: Vec<String>,
        measures: Vec<(String, Option<String>)>,
        tz: Option<String>,
    ) -> PyResult<String> {
        let group_by = by
            .iter()
            .map(|b| b.parse::<GroupBy>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_py_err)?;
        let measures = measures
            .iter()
            .map(|(fold, field)| {
                let f: Fold = serde_json::from_value(Json::String(fold.clone()))
                    .map_err(|_| bad(format!("unknown measure {fold:?} (count, sum, avg, min, max)")))?;
                match (f, field) {
                    (Fold::Count, _) => Ok(Measure::Count),
                    (f, Some(field)) => Ok(Measure::new(f, field)),
                    (f, None) => Err(bad(format!("{} needs a field", f.name()))),
                }
            })
            .collect::<PyResult<Vec<_>>>()?;
        let req = AggregateRequest {
            q,
            filter: parse_filter(filter.as_deref())?,
            group_by,
            measures,
            offset: tz.as_deref().map(parse_offset).transpose().map_err(to_py_err)?,
        };
        let agg = self.run(py, |svc, actor| {
            pollster::block_on(svc.aggregate(actor, &entity, &req)).map_err(in_chars(req.q.as_deref()))
        })?;
        Ok(agg.to_json().to_string())
    }

    fn pipeline_summary(&self, py: Python<'_>) -> PyResult<String> {
        let r = self.run(py, |svc, actor| pollster::block_on(svc.pipeline_summary(actor)))?;
        to_json_string(&r)
    }

    fn integrity_check(&self, py: Python<'_>) -> PyResult<String> {
        let r = self.run(py, |svc, actor| pollster::block_on(svc.integrity_check(actor)))?;
        to_json_string(&r)
    }

    /// Imports a CSV file; the report as JSON. `mode`: `dry_run`, `all_or_nothing`, `valid_rows_only`.
    /// `progress(done, total, unit)`: bytes read of the file's size, after each batch of rows.
    #[pyo3(signature = (entity, path, mode, upsert=false, mapping=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn import_csv(
        &self,
        py: Python<'_>,
        entity: String,
        path: String,
        mode: &str,
        upsert: bool,
        mapping: Option<BTreeMap<String, String>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let mode: ImportMode = serde_json::from_value(Json::String(mode.into()))
            .map_err(|_| bad(format!("unknown import mode {mode:?}")))?;
        let file = std::fs::File::open(&path).map_err(|e| file_err(&path, &e))?;
        let p = PyProgress::new(progress);
        let opts = ImportOptions {
            mode,
            upsert,
            mapping: mapping.unwrap_or_default(),
            input_bytes: file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
            progress: p.progress.clone(),
            ..Default::default()
        };
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.import_csv(actor, &entity, std::io::BufReader::new(file), &opts))
        });
        to_json_string(&p.finish(r)?)
    }

    /// Upserts JSON rows (`rows`: a JSON array of objects, each with its id in `system` under the
    /// entity's external key); the per-row report as JSON. `mode`: `create_only`, `update_only`,
    /// `upsert`.
    #[pyo3(signature = (entity, system, mode, rows, all_or_nothing=false, dry_run=false))]
    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &self,
        py: Python<'_>,
        entity: String,
        system: String,
        mode: &str,
        rows: &str,
        all_or_nothing: bool,
        dry_run: bool,
    ) -> PyResult<String> {
        let mode: UpsertMode = serde_json::from_value(Json::String(mode.into()))
            .map_err(|_| bad(format!("unknown upsert mode {mode:?}")))?;
        let rows: Vec<Json> = serde_json::from_str(rows).map_err(|_| bad("expected a JSON array of rows"))?;
        let req = UpsertRequest {
            system,
            mode,
            all_or_nothing,
            dry_run,
            rows,
        };
        let r = self.run(py, |svc, actor| pollster::block_on(svc.upsert(actor, &entity, req)))?;
        to_json_string(&r)
    }

    /// Imports the point of sale's client list (clients by card number with their current
    /// membership); the report as JSON. `mode` as for `import_csv`.
    fn import_point_of_sale(&self, py: Python<'_>, path: String, mode: &str) -> PyResult<String> {
        let mode: ImportMode = serde_json::from_value(Json::String(mode.into()))
            .map_err(|_| bad(format!("unknown import mode {mode:?}")))?;
        let file = std::fs::File::open(&path).map_err(|e| file_err(&path, &e))?;
        let opts = PosImportOptions {
            mode,
            ..Default::default()
        };
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.import_point_of_sale(actor, std::io::BufReader::new(file), &opts))
        })?;
        to_json_string(&r)
    }

    /// Checks a client in by `card` or `contact_id` (optionally at `location_id`); the answer as JSON.
    #[pyo3(signature = (card=None, contact_id=None, location_id=None))]
    fn check_in(
        &self,
        py: Python<'_>,
        card: Option<String>,
        contact_id: Option<&str>,
        location_id: Option<&str>,
    ) -> PyResult<String> {
        let input = CheckInInput {
            card,
            contact_id: contact_id.map(parse_id).transpose()?,
            location_id: location_id.map(parse_id).transpose()?,
        };
        let r = self.run(py, |svc, actor| pollster::block_on(svc.check_in(actor, &input)))?;
        to_json_string(&r)
    }

    /// The owner's membership numbers as of `as_of` (`YYYY-MM-DD`; default today), as JSON.
    #[pyo3(signature = (as_of=None))]
    fn membership_numbers(&self, py: Python<'_>, as_of: Option<&str>) -> PyResult<String> {
        let day = as_of.map(|s| parse_day("as_of", s)).transpose()?;
        let r = self.run(py, |svc, actor| pollster::block_on(svc.membership_numbers(actor, day)))?;
        to_json_string(&r)
    }

    /// How the jobs scheduled from `start` to `end` (`YYYY-MM-DD`, inclusive) went, as JSON.
    fn field_work_report(&self, py: Python<'_>, start: &str, end: &str) -> PyResult<String> {
        let (from, to) = (parse_day("start", start)?, parse_day("end", end)?);
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.field_work_report(actor, Some(from), Some(to)))
        })?;
        to_json_string(&r)
    }

    /// The acting user's day (`YYYY-MM-DD`; default the tenant's today), as JSON, in time order:
    /// crew assignments, each with its job and open steps, and appointment occurrences.
    #[pyo3(signature = (date=None))]
    fn my_day(&self, py: Python<'_>, date: Option<&str>) -> PyResult<String> {
        let day = date.map(|s| parse_day("date", s)).transpose()?;
        let items = self.run(py, |svc, actor| pollster::block_on(svc.my_day(actor, day)))?;
        let out: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                let one = |r: &Option<crm_core::record::Record>| r.as_ref().map(|r| r.to_json());
                serde_json::json!({"starts_at": i.starts_at, "ends_at": i.ends_at,
                    "assignment": one(&i.assignment), "job": one(&i.job),
                    "open_steps": i.open_steps.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
                    "appointment": one(&i.appointment)})
            })
            .collect();
        to_json_string(&out)
    }

    /// Exports to a CSV file; returns the number of rows written.
    /// `progress(done, total, unit)`: rows written of the rows matching, after each page.
    #[pyo3(signature = (entity, path, q=None, fields=None, order_by=None, raw=false, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn export_csv(
        &self,
        py: Python<'_>,
        entity: String,
        path: String,
        q: Option<String>,
        fields: Option<Vec<String>>,
        order_by: Option<String>,
        raw: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let file = std::fs::File::create(&path).map_err(|e| file_err(&path, &e))?;
        let p = PyProgress::new(progress);
        let opts = ExportOptions {
            fields: fields.unwrap_or_default(),
            q,
            sort: order_by.as_deref().map(SortKey::parse_list).unwrap_or_default(),
            raw,
            progress: p.progress.clone(),
            ..Default::default()
        };
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.export_csv(actor, &entity, &opts, std::io::BufWriter::new(file)))
                .map_err(in_chars(opts.q.as_deref()))
        });
        p.finish(r)
    }

    /// Audit entries (JSON list), oldest first.
    #[pyo3(signature = (entity=None, entity_id=None, after=0, limit=100))]
    fn audit(
        &self,
        py: Python<'_>,
        entity: Option<String>,
        entity_id: Option<String>,
        after: u64,
        limit: u32,
    ) -> PyResult<String> {
        let q = AuditQuery {
            entity,
            entity_id: entity_id.as_deref().map(parse_id).transpose()?,
            after_seq: after,
            limit,
        };
        let r = self.run(py, |svc, actor| pollster::block_on(svc.audit_trail(actor, &q)))?;
        to_json_string(&r)
    }

    /// Outbox events after sequence `after` (JSON list).
    #[pyo3(signature = (after=0, limit=100))]
    fn events(&self, py: Python<'_>, after: u64, limit: u32) -> PyResult<String> {
        let r = self.run(py, |svc, actor| {
            pollster::block_on(svc.events_since(actor, after, limit))
        })?;
        to_json_string(&r)
    }

    /// Every matching record as Arrow record batches (one per bulk page), built in Rust: the
    /// system columns, the declared fields and the custom fields (`custom.<key>`) the actor may
    /// read. Checks for Ctrl-C while it runs. `limit` caps the rows. `money`: `"decimal"` (exact
    /// `decimal128`) or `"float"` (`float64`) for money and decimal columns. Enums are dictionary
    /// columns of their declared options; each field's metadata has its `label` and `options`.
    #[pyo3(signature = (entity, q=None, filter=None, order_by=None, limit=None, page_size=None, money="decimal"))]
    #[allow(clippy::too_many_arguments)]
    fn to_arrow(
        &self,
        py: Python<'_>,
        entity: String,
        q: Option<String>,
        filter: Option<String>,
        order_by: Option<String>,
        limit: Option<u64>,
        page_size: Option<u32>,
        money: &str,
    ) -> PyResult<arrow::ArrowStream> {
        let decimals = arrow::Decimals::parse(money)?;
        let def = self.svc.entity(&entity).map_err(to_py_err)?;
        // Without an explicit order, id order (UUIDv7: creation order): it follows the primary key
        // (the list default, newest first, makes deep keyset pages slow on SQLite), and it lets two
        // threads read the result from both ends.
        let sort = SortKey::parse_list(order_by.as_deref().unwrap_or("id"));
        // In another order SQLite sorts each page's rows that tie on the sort keys by id (a
        // partial sort of every group of equal keys the page touches): the fewer pages, the less
        // of that, so pages of the core's maximum there.
        let by_id = matches!(sort.as_slice(), [k] if k.field == "id");
        let page = page_size.unwrap_or(if by_id { DEFAULT_ARROW_PAGE } else { MAX_BULK_PAGE_SIZE });
        let req = ListRequest {
            q,
            filter: parse_filter(filter.as_deref())?,
            sort,
            limit: Some(page),
            cursor: None,
        };
        let (declared, custom, labels) = self.run(py, |svc, actor| {
            pollster::block_on(async {
                let (declared, custom) = svc.readable_fields(actor, def.name).await?;
                Ok((declared, custom, svc.custom_labels(actor, def.name).await?))
            })
        })?;
        let layout = arrow::Layout::new(def, &declared, &custom, &labels, decimals).map_err(arrow_err)?;
        let (svc, actor) = (&*self.svc, &self.actor);
        let stream = py.detach(|| arrow::collect(svc, actor, def, &layout, req, limit))?;
        // A Ctrl-C that landed after the export's last check (its final page, or a worker that
        // finished the other's half) is raised here, inside this call: left pending, the next
        // Python code to run could be a finalizer, which swallows the KeyboardInterrupt.
        py.check_signals()?;
        Ok(stream)
    }
}

/// Loads a demo tenant into the SQLite file at `path` if it has no tenant yet: the roofing company,
/// with `vertical="esports"` the esports centre (`clients` clients), or with `vertical="moving"` the
/// moving company (quotes in every state, a crew, its journeys and appointments). Returns JSON `{"tenant": id,
/// "users": [[role, id, email], ...]}` (users empty when nothing was loaded).
/// `progress(done, total, unit)` (roofing only): contacts and leads created of the planned number.
#[pyfunction]
#[pyo3(signature = (path, leads=3000, contacts=None, activities_per_lead=3, vertical="roofing", clients=2000, progress=None))]
#[allow(clippy::too_many_arguments)]
fn load_demo(
    py: Python<'_>,
    path: String,
    leads: usize,
    contacts: Option<usize>,
    activities_per_lead: usize,
    vertical: &str,
    clients: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let p = PyProgress::new(progress);
    let cb = p.progress.clone();
    let vertical = match vertical {
        "roofing" | "esports" | "moving" => vertical.to_owned(),
        other => {
            return Err(bad(format!(
                "vertical must be roofing, esports or moving, not {other:?}"
            )));
        }
    };
    let r = py
        .detach(move || {
            pollster::block_on(async move {
                let store = Arc::new(crm_store::open(&path)?);
                let svc = Service::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
                if let Some(t) = svc.tenants().await?.first() {
                    return Ok(json!({ "tenant": t.to_string(), "users": [] }));
                }
                let size = DemoSize {
                    contacts: contacts.unwrap_or(leads / 2),
                    leads,
                    activities_per_lead,
                };
                let d = match vertical.as_str() {
                    "esports" => demo::load_esports(store, Arc::new(RandomIds), svc.now(), clients).await?,
                    "moving" => demo::load_moving(store, Arc::new(RandomIds), svc.now(), MOVING_DEMO_QUOTES).await?,
                    _ => demo::load_with(store, Arc::new(RandomIds), svc.now(), size, &cb).await?,
                };
                Ok(json!({ "tenant": d.tenant.to_string(), "users": d.users }))
            })
        })
        .map_err(to_py_err);
    Ok(p.finish(r)?.to_string())
}

/// Quotes of the moving demo (fewer than the CLI's default 300: a notebook loads it in seconds).
const MOVING_DEMO_QUOTES: usize = 120;

/// mimalloc's `purge_decommits` option (`mi_option_purge_decommits` in `mimalloc.h`).
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;

/// The native module.
#[pymodule]
fn _crm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Freed memory goes back to the OS lazily (`MADV_FREE`) rather than at once: bulk reads free and
    // reuse pages of records all the time, and decommitting them had the kernel zero each page
    // again (a third of `to_arrow`'s time). `MIMALLOC_PURGE_DECOMMITS=1` in the environment wins.
    // SAFETY: sets a plain option value; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DECOMMITS, 0) };
    m.add_class::<Database>()?;
    m.add_class::<arrow::ArrowStream>()?;
    m.add_function(wrap_pyfunction!(load_demo, m)?)?;
    Ok(())
}
