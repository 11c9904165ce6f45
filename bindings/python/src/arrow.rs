//! Records to Arrow, column by column in Rust, handed to pyarrow/polars through the Arrow C stream
//! interface (`__arrow_c_stream__`): no Python object per row.

use crate::{Svc, to_py_err};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchIterator};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use crm_core::access::Actor;
use crm_core::query::ListRequest;
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::value::{FieldType, Value};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::sync::Arc;

/// Days from 0000-03-01-based Julian day numbering to the Unix epoch (1970-01-01).
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

enum Col {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Money(Decimal128Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

impl Col {
    /// An empty column builder for a field type, sized for `n` rows.
    fn for_type(ty: &FieldType, n: usize) -> Col {
        match ty {
            FieldType::Integer => Col::Int(Int64Builder::with_capacity(n)),
            FieldType::Number => Col::Float(Float64Builder::with_capacity(n)),
            FieldType::Bool => Col::Bool(BooleanBuilder::with_capacity(n)),
            FieldType::Money => {
                Col::Money(Decimal128Builder::with_capacity(n).with_data_type(DataType::Decimal128(18, 2)))
            }
            FieldType::Date => Col::Date(Date32Builder::with_capacity(n)),
            FieldType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")),
            FieldType::MultiEnum | FieldType::Tags => Col::List(ListBuilder::new(StringBuilder::new())),
            _ => Col::Str(StringBuilder::with_capacity(n, n * 16)),
        }
    }

    fn push(&mut self, v: Option<&Value>) {
        let v = v.unwrap_or(&Value::Null);
        match (self, v) {
            (Col::Str(b), Value::Text(s)) => b.append_value(s),
            (Col::Str(b), Value::Id(i)) => {
                b.append_value(i.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))
            }
            (Col::Str(b), Value::Json(j)) => b.append_value(j.to_string()),
            (Col::Str(b), _) => b.append_null(),
            (Col::Int(b), Value::Int(i)) => b.append_value(*i),
            (Col::Int(b), _) => b.append_null(),
            (Col::Float(b), Value::Number(n)) => b.append_value(*n),
            (Col::Float(b), Value::Int(i)) => b.append_value(*i as f64),
            (Col::Float(b), _) => b.append_null(),
            (Col::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Col::Bool(b), _) => b.append_null(),
            (Col::Money(b), Value::Money(m)) => b.append_value(i128::from(m.0)),
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

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::Int(b) => Arc::new(b.finish()),
            Col::Float(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Money(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::List(b) => Arc::new(b.finish()),
        }
    }
}

/// The column layout of an entity type for one reader: system columns, then readable fields.
struct Layout {
    names: Vec<&'static str>,
    /// Declared field index per column (`None`: system column, by name).
    index: Vec<Option<usize>>,
    types: Vec<FieldType>,
}

impl Layout {
    fn new(def: &EntityDef, readable: &[bool]) -> Layout {
        let mut l = Layout {
            names: vec!["id", "version", "created_at", "updated_at"],
            index: vec![None; 4],
            types: vec![
                FieldType::Ref("self"),
                FieldType::Integer,
                FieldType::Timestamp,
                FieldType::Timestamp,
            ],
        };
        for (i, f) in def.fields.iter().enumerate() {
            if readable[i] {
                l.names.push(f.name);
                l.index.push(Some(i));
                l.types.push(f.spec.ty.clone());
            }
        }
        l
    }

    fn batch(&self, records: &[Record]) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<Col> = self.types.iter().map(|t| Col::for_type(t, records.len())).collect();
        for r in records {
            let sys = [
                Value::Id(r.id),
                Value::Int(r.version as i64),
                Value::Timestamp(r.created_at),
                Value::Timestamp(r.updated_at),
            ];
            for (c, (col, idx)) in cols.iter_mut().zip(&self.index).enumerate() {
                match idx {
                    None => col.push(Some(&sys[c])),
                    Some(i) if !r.is_hidden(*i) => col.push(Some(&r.values[*i])),
                    Some(_) => col.push(None),
                }
            }
        }
        let arrays: Vec<ArrayRef> = cols.iter_mut().map(Col::finish).collect();
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&arrays)
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

/// Pages through a list with bulk pages, converting each page to a record batch as it arrives.
/// Runs without the GIL; takes it briefly between pages to let Ctrl-C (or any signal handler) in.
pub(crate) fn collect(
    svc: &Svc,
    actor: &Actor,
    def: &'static EntityDef,
    readable: &[bool],
    mut req: ListRequest,
    limit: Option<u64>,
) -> PyResult<ArrowStream> {
    let layout = Layout::new(def, readable);
    let mut batches = Vec::new();
    let mut rows: u64 = 0;
    let arrow_err = |e: ArrowError| pyo3::exceptions::PyRuntimeError::new_err(e.to_string());
    loop {
        if let Some(l) = limit {
            let left = l.saturating_sub(rows);
            if left == 0 {
                break;
            }
            let page = req.limit.unwrap_or(crm_core::query::MAX_BULK_PAGE_SIZE);
            req.limit = Some(page.min(u32::try_from(left).unwrap_or(u32::MAX)));
        }
        let page = pollster::block_on(svc.list_bulk(actor, def.name, &req)).map_err(to_py_err)?;
        rows += page.items.len() as u64;
        if !page.items.is_empty() {
            batches.push(layout.batch(&page.items).map_err(arrow_err)?);
        }
        Python::attach(|py| py.check_signals())?;
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => layout.batch(&[]).map_err(arrow_err)?.schema(),
    };
    Ok(ArrowStream { schema, batches, rows })
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

    /// Exports the batches as an `ArrowArrayStream` PyCapsule (the Arrow PyCapsule interface).
    /// `requested_schema` is accepted and ignored (the schema is fixed by the entity's declaration).
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
