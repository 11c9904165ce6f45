//! CSV import (multipart upload; dry run, all-or-nothing or valid rows only; per-row report), the
//! JSON upsert from external systems (same pipeline, rows bound by system and external id) and
//! CSV export (streamed as it is produced).

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::{AppState, ServerStore};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crm_core::query::SortKey;
use crm_core::schema::{EntityDef, Exposure};
use crm_core::service::{ExportOptions, ImportMode, ImportOptions, UpsertRequest};
use futures_util::StreamExt;
use serde_json::json;
use std::io::Write;
use tokio::sync::mpsc;

fn import_options(p: &Params) -> ApiResult<ImportOptions> {
    // Present but empty (`mode=`) is not a mode.
    let mode = match p.0.get("mode").map(String::as_str).unwrap_or("dry_run") {
        "dry_run" => ImportMode::DryRun,
        "all_or_nothing" => ImportMode::AllOrNothing,
        "valid_rows_only" => ImportMode::ValidRowsOnly,
        other => return Err(ApiError::BadRequest(format!("unknown import mode {other}"))),
    };
    Ok(ImportOptions {
        mode,
        upsert: p.flag("upsert")?,
        ..ImportOptions::default()
    })
}

async fn import<S: ServerStore>(
    app: AppState<S>,
    auth: Auth,
    p: Params,
    mut form: Multipart,
    def: &'static EntityDef,
) -> ApiResult<Response> {
    let mut opts = import_options(&p)?;
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, app.cfg.max_import))?
    {
        match field.name() {
            Some("file") => {
                file = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| multipart_error(e, app.cfg.max_import))?,
                );
            }
            Some("mapping") => {
                let text = field.text().await.map_err(|e| multipart_error(e, app.cfg.max_import))?;
                opts.mapping = serde_json::from_str(&text)
                    .map_err(|_| ApiError::BadRequest("`mapping` must be a JSON object of header -> field".into()))?;
            }
            // A part the form does not define is a mistake (a misspelt `mapping` would otherwise
            // import with the default mapping), refused like an unknown JSON member.
            other => {
                return Err(ApiError::BadRequest(format!(
                    "the import form has no part {}",
                    other.unwrap_or("(unnamed)")
                )));
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::BadRequest("the form needs a `file` part with the CSV".into()))?;
    opts.input_bytes = Some(file.len() as u64);
    let actor = auth.actor;
    let report = app
        .write(move |svc| async move { svc.import_csv(&actor, def.name, file.as_ref(), &opts).await })
        .await?;
    Ok(axum::Json(report).into_response())
}

async fn upsert<S: ServerStore>(
    app: AppState<S>,
    auth: Auth,
    req: UpsertRequest,
    def: &'static EntityDef,
) -> ApiResult<Response> {
    let actor = auth.actor;
    let report = app
        .write(move |svc| async move { svc.upsert(&actor, def.name, req).await })
        .await?;
    Ok(axum::Json(report).into_response())
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("malformed multipart form: {}", e.body_text()))
    }
}

/// What the export task sends to the response body.
enum Piece {
    Chunk(Vec<u8>),
    /// The export failed; before the first chunk this becomes a problem document.
    Failed(crm_core::error::Error),
}

/// An `io::Write` that hands 64 KiB chunks to the response body as the export produces them. The
/// first write (the header row, written after every check passed) goes out at once.
struct ChunkWriter {
    tx: mpsc::Sender<Piece>,
    buf: Vec<u8>,
    sent: bool,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if !self.sent || self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.sent = true;
            let chunk = std::mem::take(&mut self.buf);
            // The client went away: stop exporting.
            self.tx
                .blocking_send(Piece::Chunk(chunk))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client disconnected"))?;
        }
        Ok(())
    }
}

async fn export<S: ServerStore>(
    app: AppState<S>,
    auth: Auth,
    p: Params,
    def: &'static EntityDef,
) -> ApiResult<Response> {
    let opts = ExportOptions {
        fields: p
            .get("fields")
            .map(|f| {
                f.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        q: p.get("q").map(str::to_owned),
        filter: None,
        sort: p.get("sort").map(SortKey::parse_list).unwrap_or_default(),
        raw: p.flag("raw")?,
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel(4);
    let svc = app.svc.clone();
    let actor = auth.actor;
    // Runs on the blocking pool for every store: the CSV writer is synchronous.
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::new(),
            sent: false,
        };
        let out = pollster::block_on(svc.export_csv(&actor, def.name, &opts, &mut w));
        let flushed = w.flush();
        if let Err(e) = out {
            let _ = tx.blocking_send(Piece::Failed(e));
        } else if let Err(e) = flushed {
            tracing::debug!(error = %e, "export ended early");
        }
    });
    let first = match rx.recv().await {
        Some(Piece::Failed(e)) => return Err(ApiError::Core(e)),
        Some(Piece::Chunk(c)) => Some(c),
        None => None,
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await? {
            Piece::Chunk(c) => Some((Ok(c), rx)),
            Piece::Failed(e) => Some((Err(std::io::Error::other(e.to_string())), rx)),
        }
    });
    let stream = futures_util::stream::iter(first.map(Ok::<_, std::io::Error>)).chain(rest);
    let mut res = axum::body::Body::from_stream(stream).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.csv\"", def.table)) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

pub fn routes<S: ServerStore>(mut api: Api<S>, def: &'static EntityDef, max_import: usize) -> Api<S> {
    let base = format!("/api/v1/{}", def.table);
    if def.exposure == Exposure::Public {
        let limit = DefaultBodyLimit::max(max_import);
        let mut op = Op::new(
            "post",
            format!("{base}/import"),
            format!("import_{}", def.table),
            def.table,
            format!("Import {} from CSV", def.table),
        )
        .query(
            "mode",
            json!({"type": "string", "enum": ["dry_run", "all_or_nothing", "valid_rows_only"]}),
            "What to do with valid rows (default dry_run: write nothing)",
        );
        // Only a type with an external key can match rows to records.
        if let Some(key) = def.external_key {
            op = op.query(
                "upsert",
                json!({"type": "boolean"}),
                &format!("Update records whose {key} matches (needs a column mapped to it)"),
            );
        }
        api = api.add(
            op
                .raw_body(json!({
                    "required": true,
                    "content": { "multipart/form-data": { "schema": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "file": { "type": "string", "contentMediaType": "text/csv", "description": "The CSV file, with a header row" },
                            "mapping": { "type": "object", "additionalProperties": { "type": "string" }, "description": "CSV header -> field path (a JSON part); default: headers matched to field names and labels" }
                        },
                        "required": ["file"]
                    }, "encoding": { "mapping": { "contentType": "application/json" } } } }
                }))
                .ok(200, "The per-row, per-field report", schema_ref("ImportReport"))
                .errors(&[403, 422]),
            post(move |axum::extract::State(app): State<AppState<S>>, auth: Auth, p: Params, form: Multipart| {
                import(app, auth, p, form, def)
            })
            .layer(limit),
        );
    }
    if def.exposure == Exposure::Public
        && let Some(key) = def.external_key
    {
        api = api.add(
            Op::new(
                "post",
                format!("{base}/upsert"),
                format!("upsert_{}", def.table),
                def.table,
                format!("Create or update {} from an external system", def.table),
            )
            .json_body(schema_ref("UpsertRequest"))
            .ok(200, &format!(
                "The per-row report. JSON rows, each with its id in the source system under `{key}`, bound to the records \
                 they become: (system, {key}) is unique per tenant. A row equal to the one last applied is \
                 `unchanged` and writes nothing; `create_only` refuses a bound row (`already_bound`), \
                 `update_only` an unbound one (`not_bound`), each row on its own. The same rules as the CSV \
                 import: scope and field permissions, every error of a row at once, all-or-nothing or \
                 valid rows only, dry run. See docs/integration.md."
            ), schema_ref("UpsertReport"))
            .errors(&[403, 422]),
            post(
                move |State(app): State<AppState<S>>, auth: Auth, Body(req): Body<UpsertRequest>| {
                    upsert(app, auth, req, def)
                },
            )
            .layer(DefaultBodyLimit::max(max_import)),
        );
    }
    api.add(
        Op::new(
            "get",
            format!("{base}/export"),
            format!("export_{}", def.table),
            def.table,
            format!("Export {} as CSV", def.table),
        )
        .query("q", json!({"type": "string"}), "Text filter")
        .query(
            "fields",
            crate::openapi::fields_param(def),
            "Columns, comma-separated (default: every readable field)",
        )
        .query(
            "sort",
            crate::openapi::sort_param(def),
            "Sort keys, comma-separated, `-` for descending",
        )
        .query(
            "raw",
            json!({"type": "boolean"}),
            "Cells exactly as stored (default: formula-safe)",
        )
        .ok_raw(
            200,
            json!({
                "description": "CSV, streamed; only rows and columns the caller may read",
                "content": { "text/csv": { "schema": { "type": "string" } } }
            }),
        )
        .errors(&[400, 403]),
        get(move |State(app): State<AppState<S>>, auth: Auth, p: Params| export(app, auth, p, def)),
    )
}
