//! Create, read, update, delete and list for every public entity type, generated from the
//! declarations: `/api/v1/{table}` and `/api/v1/{table}/{id}`.

use crate::api::{Api, Op, schema_ref};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, IfMatch, Params, PathId, etag};
use crate::openapi::schema_name;
use crate::state::{AppState, ServerStore};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use crm_core::query::{Filter, FilterSpec, ListRequest, SortKey};
use crm_core::record::Record;
use crm_core::schema::{EntityDef, Exposure};
use serde_json::{Map, Value as Json, json};

/// The body of a children batch.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChildOps {
    ops: Vec<crm_core::service::ChildOp>,
}

/// The list request of a collection's query parameters.
pub fn list_request(p: &Params) -> ApiResult<ListRequest> {
    let filter = p
        .get("filter")
        .map(|f| {
            serde_json::from_str::<FilterSpec>(f).map(Filter::from).map_err(|e| {
                ApiError::Core(crm_core::error::Error::invalid_query(
                    format!("`filter` is not a filter: {e}"),
                    0,
                ))
            })
        })
        .transpose()?;
    Ok(ListRequest {
        q: p.get("q").map(str::to_owned),
        filter,
        sort: p.get("sort").map(SortKey::parse_list).unwrap_or_default(),
        limit: p.bounded("limit", 1, crm_core::query::MAX_PAGE_SIZE)?,
        cursor: p.get("cursor").map(str::to_owned),
    })
}

/// The `fields` parameter: field names of the entity (checked), or `None` for every field.
pub fn sparse_fields(p: &Params, def: &EntityDef) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = p.get("fields") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if def.resolve(f).is_none() {
            return Err(ApiError::Core(crm_core::error::Error::invalid_query(
                format!("{} has no field {f}", def.name),
                0,
            )));
        }
        out.push(f.to_owned());
    }
    Ok(Some(out))
}

/// A record as JSON, reduced to `fields` (id and version always kept).
pub fn project(r: &Record, fields: Option<&[String]>) -> Json {
    let mut j = r.to_json();
    if let (Some(fields), Json::Object(m)) = (fields, &mut j) {
        let keep = |k: &str| k == "id" || k == "version" || fields.iter().any(|f| f == k);
        let mut custom = m.remove("custom");
        m.retain(|k, _| keep(k));
        if let Some(Json::Object(c)) = custom.as_mut() {
            c.retain(|k, _| fields.iter().any(|f| f.strip_prefix("custom.") == Some(k)));
            if !c.is_empty() {
                m.insert("custom".into(), Json::Object(c.clone()));
            }
        }
    }
    j
}

/// About what a record's JSON takes (a lead with its usual fields: 600-800 bytes), to size a page's
/// output buffer once.
const BYTES_PER_RECORD: usize = 1024;

/// A page of records as the list answers it (`items`, `next_cursor`), serialised straight from them.
#[derive(serde::Serialize)]
pub(crate) struct RecordPage<'a> {
    items: &'a [Record],
    next_cursor: &'a Option<String>,
}

impl<'a> From<&'a crm_core::query::Page<Record>> for RecordPage<'a> {
    fn from(p: &'a crm_core::query::Page<Record>) -> Self {
        RecordPage {
            items: &p.items,
            next_cursor: &p.next_cursor,
        }
    }
}

/// A record response with its ETag (and Location on create).
pub fn record_response(status: StatusCode, r: &Record, location: Option<String>) -> Response {
    let mut res = (status, axum::Json(r)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res
}

/// A record response with the record's children under their table names (a quote with its
/// `quote_lines`).
pub(crate) fn with_children(
    status: StatusCode,
    r: &Record,
    kids: Vec<(&'static EntityDef, Vec<Record>)>,
    location: Option<String>,
) -> Response {
    let mut res = record_response(status, r, location);
    if !kids.is_empty() {
        let mut j = r.to_json();
        for (d, rows) in kids {
            j[d.table] = Json::Array(rows.iter().map(Record::to_json).collect());
        }
        *res.body_mut() = axum::body::Body::from(j.to_string());
    }
    res
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn article(name: &str) -> &'static str {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

pub fn collection_path(def: &EntityDef) -> String {
    format!("/api/v1/{}", def.table)
}

pub fn item_path(def: &EntityDef) -> String {
    format!("/api/v1/{}/{{id}}", def.table)
}

/// Adds the routes of one entity type.
pub fn routes<S: ServerStore>(mut api: Api<S>, def: &'static EntityDef) -> Api<S> {
    let name = schema_name(def.name);
    let tag = def.table;
    let (coll, item) = (collection_path(def), item_path(def));

    api = api.add(
        Op::new(
            "get",
            &coll,
            format!("list_{}", def.table),
            tag,
            format!("List {} (keyset pages)", def.table),
        )
        .list_params()
        .query_schema("fields", crate::openapi::fields_param(def))
        .query_schema("sort", crate::openapi::sort_param(def))
        .ok(200, "One page", schema_ref(&format!("{name}Page")))
        // 422: a filter past the core's limits (query length in bytes, terms, sort keys).
        .errors(&[400, 403, 422]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, p: Params| async move {
                let req = list_request(&p)?;
                let fields = sparse_fields(&p, def)?;
                let actor = auth.actor;
                // Serialised on the blocking thread that read the records, which frees them there;
                // the async worker only writes the bytes (benches/README, HTTP load, ninth run).
                let body = app
                    .run(move |svc| async move {
                        let page = svc.list(&actor, def.name, &req).await?;
                        // Room for the whole page at once, not a buffer doubled a dozen times.
                        let mut body = Vec::with_capacity(BYTES_PER_RECORD * (page.items.len() + 1));
                        let written = match fields {
                            // Written straight from the records (no JSON tree per record).
                            None => serde_json::to_writer(&mut body, &RecordPage::from(&page)),
                            Some(f) => {
                                let items: Vec<Json> = page.items.iter().map(|r| project(r, Some(&f))).collect();
                                serde_json::to_writer(
                                    &mut body,
                                    &json!({ "items": items, "next_cursor": page.next_cursor }),
                                )
                            }
                        };
                        written
                            .map(|()| body)
                            .map_err(|e| crm_core::error::Error::internal(e.to_string()))
                    })
                    .await?;
                Ok::<_, ApiError>(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            },
        ),
    );

    if def.exposure == Exposure::Public {
        api = api.add(
            Op::new(
                "post",
                &coll,
                format!("create_{}", def.name),
                tag,
                format!("Create {} {}", article(def.name), def.name),
            )
            .json_body(schema_ref(&format!("{name}Input")))
            .ok_record(201, "Created", schema_ref(&name))
            .errors(&[403, 422]),
            post(
                move |State(app): State<AppState<S>>, auth: Auth, Body(input): Body<Map<String, Json>>| async move {
                    let actor = auth.actor;
                    let (r, kids) = app
                        .write(move |svc| async move {
                            let r = svc.create(&actor, def.name, &input).await?;
                            let kids = svc.children_of(&actor, &r).await?;
                            Ok((r, kids))
                        })
                        .await?;
                    let loc = format!("/api/v1/{}/{}", def.table, r.id);
                    Ok::<_, ApiError>(with_children(StatusCode::CREATED, &r, kids, Some(loc)))
                },
            ),
        );
    }

    api = api.add(
        Op::new(
            "get",
            &item,
            format!("get_{}", def.name),
            tag,
            format!("Get {} {}", article(def.name), def.name),
        )
        .path_id("Record id")
        .query(
            "fields",
            crate::openapi::fields_param(def),
            "Sparse fields, comma-separated",
        )
        .ok_record(
            200,
            "The record, without the fields the caller may not read",
            schema_ref(&name),
        )
        .errors(&[400, 403, 404]),
        get(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId, p: Params| async move {
                let fields = sparse_fields(&p, def)?;
                let actor = auth.actor;
                let (r, kids) = app
                    .read_by_key(move |svc| async move {
                        let r = svc.get(&actor, def.name, id).await?;
                        let kids = svc.children_of(&actor, &r).await?;
                        Ok((r, kids))
                    })
                    .await?;
                let mut res = with_children(StatusCode::OK, &r, kids, None);
                if fields.is_some() {
                    *res.body_mut() = axum::body::Body::from(project(&r, fields.as_deref()).to_string());
                }
                Ok::<_, ApiError>(res)
            },
        ),
    );

    api = api.add(
        Op::new(
            "patch",
            &item,
            format!("update_{}", def.name),
            tag,
            format!("Update {} {}", article(def.name), def.name),
        )
        .path_id("Record id")
        .if_match("The ETag of the version being changed")
        .json_body(schema_ref(&format!("{name}Patch")))
        .ok_record(200, "The new state", schema_ref(&name))
        .errors(&[403, 404, 409, 422, 428]),
        patch(
            move |State(app): State<AppState<S>>,
                  auth: Auth,
                  PathId(id): PathId,
                  IfMatch(v): IfMatch,
                  Body(input): Body<Map<String, Json>>| async move {
                let actor = auth.actor;
                let (r, kids) = app
                    .write(move |svc| async move {
                        let r = svc.update(&actor, def.name, id, v, &input).await?;
                        let kids = svc.children_of(&actor, &r).await?;
                        Ok((r, kids))
                    })
                    .await?;
                Ok::<_, ApiError>(with_children(StatusCode::OK, &r, kids, None))
            },
        ),
    );

    if let Some(wf) = def.workflow {
        for t in wf.transitions {
            let moves = match (t.to, t.decide.is_some()) {
                (_, true) => format!("from {} on to where its rules say", t.from.join(" or ")),
                (Some(to), _) => format!("from {} to {to}", t.from.join(" or ")),
                (None, _) => format!("in {}, unchanged", t.from.join(" or ")),
            };
            let returns = if t.spawn.is_some() {
                "The copy it made (the original is readable as before)"
            } else {
                "The record after the transition"
            };
            let accepts: Map<String, Json> = t
                .accepts
                .iter()
                .map(|f| {
                    // The declared field's own schema (text without control characters, a date, ...).
                    let schema = def
                        .def(f)
                        .map_or_else(|| json!({"type": "string"}), crate::openapi::field_schema);
                    ((*f).to_owned(), schema)
                })
                .collect();
            let body = json!({"type": "object", "description": "The fields this transition accepts", "properties": accepts, "additionalProperties": false});
            let op = Op::new(
                "post",
                format!("{item}/{}", t.name),
                format!("{}_{}", t.name, def.name),
                tag,
                format!(
                    "{} {} {} {moves} (needs `{}` on {})",
                    capitalised(t.name),
                    article(def.name),
                    def.name,
                    t.action,
                    def.name
                ),
            )
            .path_id("Record id")
            .if_match("The ETag of the version being moved")
            .json_body(body)
            .errors(&[403, 404, 409, 422, 428]);
            // A transition with a follow-up effect answers with the effect's report too.
            let op = match t.then {
                Some(_) => op.ok(
                    200,
                    "The record after the transition and the effect's report",
                    schema_ref("Published"),
                ),
                None => op.ok_record(200, returns, schema_ref(&name)),
            };
            api = api.add(
                op,
                post(
                    move |State(app): State<AppState<S>>,
                          auth: Auth,
                          PathId(id): PathId,
                          IfMatch(v): IfMatch,
                          Body(input): Body<Map<String, Json>>| async move {
                        let actor = auth.actor;
                        let (r, kids, report) = app
                            .write(move |svc| async move {
                                let (r, report) = svc.run_transition(&actor, def.name, id, v, t.name, &input).await?;
                                let kids = svc.children_of(&actor, &r).await?;
                                Ok((r, kids, report))
                            })
                            .await?;
                        if let Some(report) = report {
                            return Ok::<_, ApiError>(
                                axum::Json(json!({ def.name: r.to_json(), "rescore": report })).into_response(),
                            );
                        }
                        Ok(with_children(StatusCode::OK, &r, kids, None))
                    },
                ),
            );
        }
    }

    if def.rules.has_document() {
        api = api.add(
            Op::new(
                "get",
                format!("{item}/document"),
                format!("document_of_{}", def.name),
                tag,
                format!(
                    "{} {} as a self-contained, printable HTML page",
                    capitalised(article(def.name)),
                    def.name
                ),
            )
            .path_id("Record id")
            .ok_raw(
                200,
                json!({
                    "description": "HTML showing only what the caller may read; no script, no external asset",
                    "content": { "text/html": { "schema": { "type": "string" } } }
                }),
            )
            .errors(&[403, 404]),
            get(
                move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| async move {
                    let actor = auth.actor;
                    let html = app
                        .run(move |svc| async move { svc.document(&actor, def.name, id).await })
                        .await?;
                    // The page is data, not an app: nothing runs, nothing loads from elsewhere.
                    let headers = [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                        ),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ];
                    Ok::<_, ApiError>((headers, html).into_response())
                },
            ),
        );
    }

    if def.children().next().is_some() {
        let shape: Map<String, Json> = def
            .children()
            .map(|c| {
                let items = json!({"type": "array", "items": schema_ref(&schema_name(c.name))});
                (c.table.to_owned(), items)
            })
            .collect();
        api = api.add(
            Op::new(
                "get",
                format!("{item}/children"),
                format!("children_of_{}", def.name),
                tag,
                format!(
                    "The child records of {} {}, by type, in order",
                    article(def.name),
                    def.name
                ),
            )
            .path_id("Record id")
            .ok(
                200,
                "Children by table name",
                json!({"type": "object", "properties": shape}),
            )
            .errors(&[403, 404]),
            get(
                move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId| async move {
                    let actor = auth.actor;
                    let kids = app
                        .read_by_key(move |svc| async move { svc.children(&actor, def.name, id).await })
                        .await?;
                    let out: Map<String, Json> = kids
                        .iter()
                        .map(|(d, rows)| (d.table.to_owned(), rows.iter().map(Record::to_json).collect()))
                        .collect();
                    Ok::<_, ApiError>(axum::Json(Json::Object(out)))
                },
            ),
        );
        // One variant per operation and child type, with what each needs (`ChildOp`).
        let mut variants = Vec::new();
        for c in def.children() {
            let child = schema_name(c.name);
            let head = |op: &str| {
                vec![
                    ("op", json!({"type": "string", "const": op})),
                    ("entity", json!({"type": "string", "const": c.name})),
                ]
            };
            let id = json!({"type": "string", "format": "uuid"});
            let version = json!({"type": "integer", "minimum": 1, "maximum": i64::MAX});
            let variant = |props: Vec<(&str, Json)>| {
                let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
                let properties: Map<String, Json> = props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
            };
            let mut create = head("create");
            create.push(("input", schema_ref(&format!("{child}Inline"))));
            let mut update = head("update");
            update.extend([
                ("id", id.clone()),
                ("version", version.clone()),
                ("patch", schema_ref(&format!("{child}Patch"))),
            ]);
            let mut delete = head("delete");
            delete.extend([("id", id), ("version", version)]);
            variants.extend([variant(create), variant(update), variant(delete)]);
        }
        let op_schema = json!({ "oneOf": variants });
        api = api.add(
            Op::new(
                "post",
                format!("{item}/children"),
                format!("write_children_of_{}", def.name),
                tag,
                format!(
                    "Create, update and delete children of {} {} in one change set (one version bump)",
                    article(def.name),
                    def.name
                ),
            )
            .path_id("Record id")
            .if_match("The ETag of the parent's version being changed")
            .json_body(json!({"type": "object", "additionalProperties": false, "required": ["ops"], "properties": {"ops": {"type": "array", "items": op_schema, "maxItems": crm_core::service::MAX_CHILD_OPS}}}))
            .ok_record(200, "The parent after the write", schema_ref(&name))
            .errors(&[400, 403, 404, 409, 413, 422, 428]),
            post(
                move |State(app): State<AppState<S>>,
                      auth: Auth,
                      PathId(id): PathId,
                      IfMatch(v): IfMatch,
                      Body(body): Body<ChildOps>| async move {
                    let actor = auth.actor;
                    let (r, kids) = app
                        .write(move |svc| async move {
                            let r = svc.write_children(&actor, def.name, id, v, &body.ops).await?;
                            let kids = svc.children_of(&actor, &r).await?;
                            Ok((r, kids))
                        })
                        .await?;
                    Ok::<_, ApiError>(with_children(StatusCode::OK, &r, kids, None))
                },
            ),
        );
    }

    api.add(
        Op::new(
            "delete",
            &item,
            format!("delete_{}", def.name),
            tag,
            format!("Delete {} {}", article(def.name), def.name),
        )
        .path_id("Record id")
        .if_match("The ETag of the version being deleted")
        .no_content("Deleted")
        .errors(&[403, 404, 409, 422, 428]),
        delete(
            move |State(app): State<AppState<S>>, auth: Auth, PathId(id): PathId, IfMatch(v): IfMatch| async move {
                let actor = auth.actor;
                app.write(move |svc| async move { svc.delete(&actor, def.name, id, v).await })
                    .await?;
                Ok::<_, ApiError>(StatusCode::NO_CONTENT)
            },
        ),
    )
}
