//! Records to Arrow, column by column in Rust, handed to pyarrow/polars through the Arrow C stream
//! interface (`__arrow_c_stream__`): no Python object per row.
//!
//! The rows come from the service's bulk list ([`crm_core::service::Service::list_bulk`]): scoped,
//! filtered and redacted by the core. What this module adds is transport: the column layout (the
//! fields the core says the actor may read, from [`crm_core::service::Service::readable_fields`]),
//! the Arrow arrays, and two threads, so that the machine's cores decode pages and build arrays at
//! the same time:
//!
//! - in id order without a row limit (the default), two workers read the result from both ends
//!   (one in the requested direction, one in the opposite) and stop where they meet; each builds
//!   the record batches of its own pages;
//! - in any other order, or with a limit, one thread reads the pages while the calling thread
//!   turns the previous page into a record batch.
//!
//! Column types follow the core's declarations: an enum (a declared field's, a custom field's, or
//! a computed field's options) is a dictionary column whose dictionary holds every option in the
//! declared order (pandas makes it a categorical with all of them); money and decimal quantities
//! are `decimal128` or `float64` as the caller asks ([`Decimals`]). Each field's metadata carries
//! its `label` and, for enums and multi-enums, its `options` (a JSON array), from the core.

use crate::{Svc, to_py_err};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use crm_core::access::Actor;
use crm_core::error::Error;
use crm_core::query::{ListRequest, MAX_BULK_PAGE_SIZE, Page};
use crm_core::record::Record;
use crm_core::schema::{EntityDef, label_of};
use crm_core::validate::CustomSpecs;
use crm_core::value::{FieldType, Id, Value};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Days from 0000-03-01-based Julian day numbering to the Unix epoch (1970-01-01).
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// How often a long export takes the GIL to let Ctrl-C (or any signal handler) in.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Pages read ahead of the Arrow builder in the single-reader mode.
const READ_AHEAD: usize = 2;

/// The prefix of custom field columns: `custom.<key>`, as in CSV exports and filters.
pub(crate) const CUSTOM_PREFIX: &str = "custom.";

/// How exact decimals (money, decimal quantities and rates) become Arrow columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decimals {
    /// `decimal128(18, 2)` for money, `decimal128(18, 6)` for decimals: exact.
    Exact,
    /// `float64`: numeric in pandas (`describe()`, `select_dtypes("number")`); an amount below
    /// 2^53 cents reads back exactly when rounded to its places.
    Float,
}

impl Decimals {
    /// `"decimal"` or `"float"`, as the Python API takes it.
    pub(crate) fn parse(s: &str) -> PyResult<Decimals> {
        match s {
            "decimal" => Ok(Decimals::Exact),
            "float" => Ok(Decimals::Float),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "money must be \"decimal\" or \"float\", not {other:?}"
            ))),
        }
    }
}

/// What a column holds: the field's type, and for enums and multi-enums its options.
struct ColType {
    ty: FieldType,
    options: Arc<[String]>,
}

/// An enum column: keys into a dictionary that starts with the declared options (so every batch
/// carries all of them, used or not); a stored value that is no option (data older than the
/// options) is added after them rather than lost.
struct Cat {
    keys: Int32Builder,
    values: Vec<String>,
    index: HashMap<String, i32>,
}

impl Cat {
    fn new(options: &[String], n: usize) -> Cat {
        let index = options.iter().zip(0..).map(|(o, i)| (o.clone(), i)).collect();
        Cat {
            keys: Int32Builder::with_capacity(n),
            values: options.to_vec(),
            index,
        }
    }

    fn append(&mut self, s: &str) {
        let key = match self.index.get(s) {
            Some(&k) => k,
            None => {
                let k = i32::try_from(self.values.len()).unwrap_or(i32::MAX);
                self.values.push(s.to_owned());
                self.index.insert(s.to_owned(), k);
                k
            }
        };
        self.keys.append_value(key);
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let values = StringArray::from_iter_values(&self.values);
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            self.keys.finish(),
            Arc::new(values),
        )?))
    }
}

enum Col {
    Str(StringBuilder),
    Cat(Cat),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Money(Decimal128Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

impl Col {
    /// An empty column builder for a column type, sized for `n` rows and (strings, lists) `bytes`
    /// bytes of text.
    fn for_type(ct: &ColType, decimals: Decimals, n: usize, bytes: usize) -> Col {
        match &ct.ty {
            FieldType::Money | FieldType::Decimal if decimals == Decimals::Float => {
                Col::Float(Float64Builder::with_capacity(n))
            }
            FieldType::Enum => Col::Cat(Cat::new(&ct.options, n)),
            FieldType::Integer => Col::Int(Int64Builder::with_capacity(n)),
            FieldType::Number => Col::Float(Float64Builder::with_capacity(n)),
            FieldType::Bool => Col::Bool(BooleanBuilder::with_capacity(n)),
            FieldType::Money => {
                Col::Money(Decimal128Builder::with_capacity(n).with_data_type(DataType::Decimal128(18, 2)))
            }
            // Stored as millionths: exactly a decimal with scale 6.
            FieldType::Decimal => {
                Col::Money(Decimal128Builder::with_capacity(n).with_data_type(DataType::Decimal128(18, 6)))
            }
            FieldType::Date => Col::Date(Date32Builder::with_capacity(n)),
            FieldType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")),
            FieldType::MultiEnum | FieldType::Tags => {
                Col::List(ListBuilder::with_capacity(StringBuilder::with_capacity(n, bytes), n))
            }
            _ => Col::Str(StringBuilder::with_capacity(n, bytes)),
        }
    }

    /// Bytes of text appended so far (strings and lists).
    fn text_bytes(&self) -> usize {
        match self {
            Col::Str(b) => b.values_slice().len(),
            Col::List(b) => b.values_ref().values_slice().len(),
            _ => 0,
        }
    }

    fn push_id(&mut self, id: Id) {
        match self {
            Col::Str(b) => b.append_value(id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())),
            other => other.push(None),
        }
    }

    fn push(&mut self, v: Option<&Value>) {
        let v = v.unwrap_or(&Value::Null);
        match (self, v) {
            (Col::Str(b), Value::Text(s)) => b.append_value(s),
            (Col::Str(b), Value::Id(i)) => {
                b.append_value(i.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))
            }
            (Col::Str(b), Value::Null) => b.append_null(),
            // JSON and any value stored under another type than its spec's (legacy data): JSON text.
            (Col::Str(b), other) => b.append_value(other.to_json().to_string()),
            (Col::Cat(c), Value::Text(s)) => c.append(s),
            (Col::Cat(c), Value::Null) => c.keys.append_null(),
            (Col::Cat(c), other) => c.append(&other.to_json().to_string()),
            (Col::Int(b), Value::Int(i)) => b.append_value(*i),
            (Col::Int(b), _) => b.append_null(),
            (Col::Float(b), Value::Number(n)) => b.append_value(*n),
            (Col::Float(b), Value::Int(i)) => b.append_value(*i as f64),
            // Money in hundredths, decimals in millionths: one correctly rounded division each.
            (Col::Float(b), Value::Money(m)) => b.append_value(m.0 as f64 / 100.0),
            (Col::Float(b), Value::Decimal(d)) => match crm_core::decimal::to_micros(*d) {
                Some(m) => b.append_value(m as f64 / 1e6),
                None => b.append_null(),
            },
            (Col::Float(b), _) => b.append_null(),
            (Col::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Col::Bool(b), _) => b.append_null(),
            (Col::Money(b), Value::Money(m)) => b.append_value(i128::from(m.0)),
            (Col::Money(b), Value::Decimal(d)) => match crm_core::decimal::to_micros(*d) {
                Some(m) => b.append_value(i128::from(m)),
                None => b.append_null(),
            },
            (Col::Money(b), _) => b.append_null(),
            (Col::Date(b), Value::Date(d)) => b.append_value(d.to_julian_day() - UNIX_EPOCH_JULIAN_DAY),
            (Col::Date(b), _) => b.append_null(),
            (Col::Ts(b), Value::Timestamp(t)) => b.append_value(t.0),
            (Col::Ts(b), _) => b.append_null(),
            (Col::List(b), Value::List(l)) => {
                for s in l {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            (Col::List(b), _) => b.append(false),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::Cat(c) => c.finish()?,
            Col::Int(b) => Arc::new(b.finish()),
            Col::Float(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Money(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::List(b) => Arc::new(b.finish()),
        })
    }
}

/// Where a column's values come from.
enum Source {
    Id,
    Version,
    CreatedAt,
    UpdatedAt,
    /// A declared field, by index (null where the record hides it).
    Declared(usize),
    /// A custom field, by key.
    Custom(String),
    /// A computed field (a membership's `status`, a client's `membership`), as the service
    /// evaluated it for the read.
    Computed(&'static str),
}

/// The column layout of an entity type for one reader: `id`, `version`, `created_at`,
/// `updated_at`, the readable declared fields, the computed fields (enums of their options, as of
/// the read), then the readable custom fields (`custom.<key>`, typed from the tenant's specs).
pub(crate) struct Layout {
    sources: Vec<Source>,
    types: Vec<ColType>,
    decimals: Decimals,
    schema: SchemaRef,
}

impl Layout {
    /// `declared` and `custom`: what [`crm_core::service::Service::readable_fields`] returned;
    /// `labels`: the custom fields' labels ([`crm_core::service::Service::custom_labels`]).
    pub(crate) fn new(
        def: &'static EntityDef,
        declared: &[usize],
        custom: &CustomSpecs,
        labels: &BTreeMap<String, String>,
        decimals: Decimals,
    ) -> Result<Layout, ArrowError> {
        let plain = |ty: FieldType| ColType {
            ty,
            options: Arc::from([]),
        };
        // (column name, label, type) of every column, in order.
        let mut columns: Vec<(String, String, ColType)> = vec![
            ("id".into(), label_of("id"), plain(FieldType::Ref("self"))),
            ("version".into(), label_of("version"), plain(FieldType::Integer)),
            ("created_at".into(), label_of("created_at"), plain(FieldType::Timestamp)),
            ("updated_at".into(), label_of("updated_at"), plain(FieldType::Timestamp)),
        ];
        let mut sources = vec![Source::Id, Source::Version, Source::CreatedAt, Source::UpdatedAt];
        for &i in declared {
            let f = &def.fields[i];
            let ct = ColType {
                ty: f.spec.ty.clone(),
                options: f.spec.options.as_slice().into(),
            };
            columns.push((f.name.to_owned(), f.label(), ct));
            sources.push(Source::Declared(i));
        }
        for c in &def.computed {
            let ct = ColType {
                ty: FieldType::Enum,
                options: c.options.iter().map(|o| (*o).to_owned()).collect(),
            };
            columns.push((c.name.to_owned(), label_of(c.name), ct));
            sources.push(Source::Computed(c.name));
        }
        for (key, spec) in custom {
            let label = labels.get(key).cloned().unwrap_or_else(|| label_of(key));
            let ct = ColType {
                ty: spec.ty.clone(),
                options: spec.options.as_slice().into(),
            };
            columns.push((format!("{CUSTOM_PREFIX}{key}"), label, ct));
            sources.push(Source::Custom(key.clone()));
        }
        // The schema of empty arrays of each column's builder: exactly what the batches hold.
        let mut fields = Vec::with_capacity(columns.len());
        let mut types = Vec::with_capacity(columns.len());
        for (name, label, ct) in columns {
            let data_type = Col::for_type(&ct, decimals, 0, 0).finish()?.data_type().clone();
            let mut metadata = HashMap::from([("label".to_owned(), label)]);
            if !ct.options.is_empty() {
                let options =
                    serde_json::to_string(&*ct.options).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                metadata.insert("options".to_owned(), options);
            }
            fields.push(Field::new(name, data_type, true).with_metadata(metadata));
            types.push(ct);
        }
        Ok(Layout {
            sources,
            types,
            decimals,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The builder of one worker's batches.
    fn builder(&self) -> Builder<'_> {
        Builder {
            layout: self,
            text_per_row: vec![0.0; self.types.len()],
        }
    }
}

/// Builds record batches of one [`Layout`], sizing each text column's buffer from the batches
/// before (an estimate per column rather than one per type: most address columns are empty, ids
/// are 36 bytes, names a dozen).
struct Builder<'a> {
    layout: &'a Layout,
    /// Bytes of text per row in the last batch, per column.
    text_per_row: Vec<f64>,
}

impl Builder<'_> {
    /// One record batch of `n` records.
    fn batch<'r>(&mut self, records: impl Iterator<Item = &'r Record>, n: usize) -> Result<RecordBatch, ArrowError> {
        let layout = self.layout;
        let mut cols: Vec<Col> = layout
            .types
            .iter()
            .zip(&self.text_per_row)
            .map(|(t, per_row)| Col::for_type(t, layout.decimals, n, (per_row * n as f64 * 1.1) as usize))
            .collect();
        for r in records {
            for (col, src) in cols.iter_mut().zip(&layout.sources) {
                match src {
                    Source::Id => col.push_id(r.id),
                    Source::Version => col.push(Some(&Value::Int(r.version as i64))),
                    Source::CreatedAt => col.push(Some(&Value::Timestamp(r.created_at))),
                    Source::UpdatedAt => col.push(Some(&Value::Timestamp(r.updated_at))),
                    Source::Declared(i) => col.push((!r.is_hidden(*i)).then(|| &r.values[*i])),
                    Source::Custom(k) => col.push(r.custom.get(k)),
                    Source::Computed(name) => col.push(r.get(name)),
                }
            }
        }
        if n > 0 {
            for (per_row, col) in self.text_per_row.iter_mut().zip(&cols) {
                *per_row = col.text_bytes() as f64 / n as f64;
            }
        }
        let arrays: Vec<ArrayRef> = cols.iter_mut().map(Col::finish).collect::<Result<_, _>>()?;
        RecordBatch::try_new(layout.schema.clone(), arrays)
    }
}

/// Why an export stopped.
enum Fail {
    Core(Error),
    Arrow(ArrowError),
    Py(PyErr),
}

impl From<ArrowError> for Fail {
    fn from(e: ArrowError) -> Fail {
        Fail::Arrow(e)
    }
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        match f {
            Fail::Core(e) => to_py_err(e),
            Fail::Arrow(e) => pyo3::exceptions::PyRuntimeError::new_err(e.to_string()),
            Fail::Py(e) => e,
        }
    }
}

/// Takes the GIL at most every [`SIGNAL_CHECK`] to run Python's signal handlers (Ctrl-C raises
/// `KeyboardInterrupt` there). Used on the calling thread only.
struct Signals(Instant);

impl Signals {
    fn new() -> Signals {
        Signals(Instant::now())
    }

    fn check(&mut self) -> Result<(), Fail> {
        if self.0.elapsed() >= SIGNAL_CHECK {
            Python::attach(|py| py.check_signals()).map_err(Fail::Py)?;
            self.0 = Instant::now();
        }
        Ok(())
    }
}

/// One export: the list to read (through the service) and the layout to build.
struct Job<'a> {
    svc: &'a Svc,
    actor: &'a Actor,
    entity: &'static str,
    layout: &'a Layout,
}

impl Job<'_> {
    fn page(&self, req: &ListRequest) -> Result<Page<Record>, Fail> {
        pollster::block_on(self.svc.list_bulk(self.actor, self.entity, req))
            .map_err(crate::in_chars(req.q.as_deref()))
            .map_err(Fail::Core)
    }
}

/// Reads every matching record as Arrow record batches. Runs without the GIL (the caller
/// detaches); takes it briefly now and then to let Ctrl-C in.
pub(crate) fn collect(
    svc: &Svc,
    actor: &Actor,
    def: &'static EntityDef,
    layout: &Layout,
    req: ListRequest,
    limit: Option<u64>,
) -> PyResult<ArrowStream> {
    let job = Job {
        svc,
        actor,
        entity: def.name,
        layout,
    };
    let by_id = match req.sort.as_slice() {
        [k] if k.field == "id" => Some(k.desc),
        _ => None,
    };
    let (mut batches, rows) = match by_id {
        Some(desc) if limit.is_none() && req.cursor.is_none() => from_both_ends(&job, req, desc)?,
        _ => read_ahead(&job, req, limit)?,
    };
    if batches.is_empty() {
        // An empty result still carries its enums' dictionaries (a DataFrame's categories).
        batches.push(layout.builder().batch(std::iter::empty(), 0).map_err(Fail::Arrow)?);
    }
    Ok(ArrowStream {
        schema: layout.schema(),
        batches,
        rows,
    })
}

/// Records already read (a parent's children, from [`crm_core::service::Service::children`]) as
/// one record batch of `layout`.
pub(crate) fn from_records(layout: &Layout, records: &[Record]) -> PyResult<ArrowStream> {
    let batch = layout
        .builder()
        .batch(records.iter(), records.len())
        .map_err(Fail::Arrow)?;
    Ok(ArrowStream {
        schema: layout.schema(),
        batches: vec![batch],
        rows: records.len() as u64,
    })
}

/// Id order: worker 0 (the calling thread) reads in the requested direction, worker 1 in the
/// opposite one; each keeps only the rows before the other's last kept id (in its own direction)
/// and stops at the first page that reaches it, or at the end. As each worker's pages are
/// contiguous, that covers every row exactly once. Worker 1's batches are built in reverse, so the
/// result is worker 0's batches followed by worker 1's, backwards.
fn from_both_ends(job: &Job<'_>, req: ListRequest, desc: bool) -> Result<(Vec<RecordBatch>, u64), Fail> {
    let frontier: Mutex<[Option<Id>; 2]> = Mutex::new([None, None]);
    let done = AtomicBool::new(false);
    let mut back_req = req.clone();
    back_req.sort[0].desc = !desc;
    let (front, back) = std::thread::scope(|s| {
        let back = s.spawn(|| half(job, back_req, 1, !desc, &frontier, &done, &mut || Ok(())));
        let mut signals = Signals::new();
        let front = half(job, req, 0, desc, &frontier, &done, &mut || signals.check());
        if front.is_err() {
            done.store(true, Ordering::Release);
        }
        let back = back
            .join()
            .unwrap_or_else(|_| Err(Fail::Core(Error::internal("export worker panicked"))));
        (front, back)
    });
    let (mut batches, mut rows) = front?;
    let (back_batches, back_rows) = back?;
    batches.extend(back_batches.into_iter().rev());
    rows += back_rows;
    Ok((batches, rows))
}

/// One worker of [`from_both_ends`]: `me` is 0 or 1, `desc` its own direction.
fn half(
    job: &Job<'_>,
    mut req: ListRequest,
    me: usize,
    desc: bool,
    frontier: &Mutex<[Option<Id>; 2]>,
    done: &AtomicBool,
    tick: &mut dyn FnMut() -> Result<(), Fail>,
) -> Result<(Vec<RecordBatch>, u64), Fail> {
    let before = |a: Id, b: Id| if desc { a > b } else { a < b };
    let mut builder = job.layout.builder();
    let mut batches = Vec::new();
    let mut rows = 0u64;
    while !done.load(Ordering::Acquire) {
        let page = job.page(&req)?;
        let (keep, last) = {
            let mut f = frontier.lock().unwrap_or_else(PoisonError::into_inner);
            let keep = match f[1 - me] {
                Some(other) => page.items.partition_point(|r| before(r.id, other)),
                None => page.items.len(),
            };
            if keep > 0 {
                f[me] = Some(page.items[keep - 1].id);
            }
            (keep, keep < page.items.len() || page.next_cursor.is_none())
        };
        if last {
            done.store(true, Ordering::Release);
        }
        if keep > 0 {
            let items = &page.items[..keep];
            batches.push(if me == 0 {
                builder.batch(items.iter(), keep)?
            } else {
                builder.batch(items.iter().rev(), keep)?
            });
            rows += keep as u64;
        }
        if last {
            break;
        }
        tick()?;
        req.cursor = page.next_cursor;
    }
    Ok((batches, rows))
}

/// Any order: a reader thread fetches pages (up to [`READ_AHEAD`] ahead) while the calling thread
/// builds the batch of the previous one. `limit` caps the rows.
fn read_ahead(job: &Job<'_>, mut req: ListRequest, limit: Option<u64>) -> Result<(Vec<RecordBatch>, u64), Fail> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Result<Page<Record>, Fail>>(READ_AHEAD);
        let stop = &stop;
        s.spawn(move || {
            let mut rows: u64 = 0;
            while !stop.load(Ordering::Acquire) {
                if let Some(l) = limit {
                    let left = l.saturating_sub(rows);
                    if left == 0 {
                        break;
                    }
                    let page = req.limit.unwrap_or(MAX_BULK_PAGE_SIZE);
                    req.limit = Some(page.min(u32::try_from(left).unwrap_or(u32::MAX)));
                }
                let page = job.page(&req);
                let next = page.as_ref().ok().and_then(|p| p.next_cursor.clone());
                rows += page.as_ref().map_or(0, |p| p.items.len() as u64);
                let end = next.is_none();
                if tx.send(page).is_err() || end {
                    break;
                }
                req.cursor = next;
            }
        });
        let mut signals = Signals::new();
        let mut builder = job.layout.builder();
        let mut batches = Vec::new();
        let mut rows: u64 = 0;
        let out = (|| {
            for page in rx {
                let page = page?;
                if !page.items.is_empty() {
                    batches.push(builder.batch(page.items.iter(), page.items.len())?);
                    rows += page.items.len() as u64;
                }
                signals.check()?;
            }
            Ok(())
        })();
        // On failure the receiver is gone, so the reader's next send fails; the flag stops it
        // before its next page too.
        stop.store(true, Ordering::Release);
        out.map(|()| (batches, rows))
    })
}

/// Record batches ready for any Arrow consumer: implements the Arrow PyCapsule interface
/// (`__arrow_c_stream__`), so `pyarrow.table(stream)` and `polars.from_arrow(...)` take it without
/// copying. May be consumed any number of times (batches are shared, not copied).
#[pyclass(frozen, module = "crm._crm")]
pub(crate) struct ArrowStream {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: u64,
}

#[pymethods]
impl ArrowStream {
    /// Number of rows in all batches.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.rows
    }

    /// Number of record batches.
    #[getter]
    fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// Exports the batches as an `ArrowArrayStream` PyCapsule (the Arrow PyCapsule interface).
    /// `requested_schema` is accepted and ignored (the schema is fixed by the entity's declaration
    /// and the tenant's custom fields).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = RecordBatchIterator::new(self.batches.clone().into_iter().map(Ok), self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}
