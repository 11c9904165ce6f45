//! The route table. Every route is added through [`Api::add`] together with its OpenAPI operation,
//! so the served document lists exactly the routes the router has, with every status it can return.

use crate::state::AppState;
use axum::Router;
use axum::routing::MethodRouter;
use serde_json::{Value as Json, json};

/// How an operation authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    None,
    /// A user's access token or an API key.
    Bearer,
    /// The platform super-admin token.
    Platform,
}

/// One documented operation.
#[derive(Clone, Debug)]
pub struct Op {
    pub method: &'static str,
    pub path: String,
    pub id: String,
    pub tag: String,
    pub summary: String,
    pub params: Vec<Json>,
    pub body: Option<Json>,
    pub responses: Vec<(u16, Json)>,
    pub security: Security,
}

/// A `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Json {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem_response(desc: &str) -> Json {
    json!({
        "description": desc,
        "content": { "application/problem+json": { "schema": schema_ref("Problem") } }
    })
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request: bad JSON, parameter, filter, sort or cursor (`bad_request`, `invalid_query`)",
        401 => "Missing, invalid, expired or revoked credentials (`unauthenticated`)",
        403 => "The role may not take this action, or read or write the named fields (`forbidden`)",
        404 => "No such record for this caller: missing, another tenant's, or outside its scope (`not_found`)",
        409 => {
            "The record changed since the caller read it: If-Match is stale; or the first request with this Idempotency-Key still runs, retry later (`conflict`)"
        }
        413 => "The request body is over the limit (`too_large`)",
        431 => "The request line and headers (a long query string) are over 32 KiB (`too_large`)",
        422 => {
            "Input broke the rules; `errors` lists every field with its code (`validation`, `limit_exceeded`; a malformed or reused Idempotency-Key: `invalid_idempotency_key`, `idempotency_key_reused` on `idempotency_key`)"
        }
        428 => "If-Match is required (`precondition_required`)",
        429 => "Rate limited or sign-in throttled; see Retry-After (`rate_limited`)",
        503 => "At capacity, timed out, or the database is unavailable; see Retry-After (`unavailable`)",
        _ => "Error",
    }
}

impl Op {
    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        id: impl Into<String>,
        tag: &str,
        summary: impl Into<String>,
    ) -> Op {
        Op {
            method,
            path: path.into(),
            id: id.into(),
            tag: tag.to_owned(),
            summary: summary.into(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            security: Security::Bearer,
        }
    }

    pub fn security(mut self, s: Security) -> Op {
        self.security = s;
        self
    }

    fn param(mut self, place: &str, name: &str, required: bool, schema: Json, desc: &str) -> Op {
        self.params.push(json!({
            "name": name, "in": place, "required": required, "schema": schema, "description": desc
        }));
        self
    }

    /// A query parameter the operation needs.
    pub fn required_query(self, name: &str, schema: Json, desc: &str) -> Op {
        self.param("query", name, true, schema, desc)
    }

    /// An optional header with its own schema.
    pub fn param_header(self, name: &str, schema: Json, desc: &str) -> Op {
        self.param("header", name, false, schema, desc)
    }

    pub fn path_id(self, desc: &str) -> Op {
        self.param("path", "id", true, json!({"type": "string", "format": "uuid"}), desc)
    }

    pub fn path_param(self, name: &str, schema: Json, desc: &str) -> Op {
        self.param("path", name, true, schema, desc)
    }

    pub fn query(self, name: &str, schema: Json, desc: &str) -> Op {
        self.param("query", name, false, schema, desc)
    }

    pub fn header(self, name: &str, required: bool, desc: &str) -> Op {
        self.param("header", name, required, json!({"type": "string"}), desc)
    }

    /// The required `If-Match` of a write: the ETag of the version read (`"3"`, weak `W/"3"`
    /// accepted). `*` is refused on purpose: every write names the version it was based on, so a
    /// blind overwrite or delete cannot happen; a malformed value is 400.
    pub fn if_match(self, desc: &str) -> Op {
        let schema = json!({"type": "string", "pattern": "^(W/)?\"[0-9]{1,18}\"$", "example": "\"1\""});
        self.param("header", "If-Match", true, schema, desc).errors(&[400])
    }

    /// The list parameters every collection takes: [`Op::page_params`] and sparse `fields`.
    pub fn list_params(self) -> Op {
        self.page_params().query(
            "fields",
            json!({"type": "string"}),
            "Sparse fields, comma-separated (id and version are always included)",
        )
    }

    /// The parameters of one keyset page of records: the filters, the order, the size, the cursor.
    pub fn page_params(self) -> Op {
        self.query(
            "q",
            json!({"type": "string", "maxLength": 4096}),
            "Text filter, e.g. `status:new score>=60 owner:me`",
        )
        .query(
            "filter",
            json!({"type": "string"}),
            "Typed filter as JSON (`{\"cmp\":{\"field\":\"score\",\"op\":\"ge\",\"value\":60}}`), ANDed with `q`",
        )
        .query(
            "sort",
            json!({"type": "string"}),
            "Sort keys, comma-separated, `-` for descending: `-score,created_at`",
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 500}),
            "Page size (default 50, at most 500)",
        )
        .query(
            "cursor",
            json!({"type": "string"}),
            "`next_cursor` of the previous page",
        )
    }

    /// Narrows a query parameter's schema (declared earlier, e.g. by [`Op::list_params`]) to an
    /// entity type's own rules, such as the field names `fields` and `sort` take.
    pub fn query_schema(mut self, name: &str, schema: Json) -> Op {
        for p in &mut self.params {
            if p["in"] == "query" && p["name"] == name {
                p["schema"] = schema.clone();
            }
        }
        self
    }

    pub fn json_body(mut self, schema: Json) -> Op {
        self.body = Some(json!({
            "required": true,
            "content": { "application/json": { "schema": schema } }
        }));
        self
    }

    pub fn raw_body(mut self, body: Json) -> Op {
        self.body = Some(body);
        self
    }

    /// A success response with a JSON body.
    pub fn ok(mut self, status: u16, desc: &str, schema: Json) -> Op {
        self.responses.push((
            status,
            json!({ "description": desc, "content": { "application/json": { "schema": schema } } }),
        ));
        self
    }

    /// A success response with an ETag header (records).
    pub fn ok_record(mut self, status: u16, desc: &str, schema: Json) -> Op {
        self.responses.push((
            status,
            json!({
                "description": desc,
                "headers": { "ETag": { "description": "The record's version, for If-Match", "schema": {"type": "string"} } },
                "content": { "application/json": { "schema": schema } }
            }),
        ));
        self
    }

    pub fn ok_raw(mut self, status: u16, response: Json) -> Op {
        self.responses.push((status, response));
        self
    }

    pub fn no_content(mut self, desc: &str) -> Op {
        self.responses.push((204, json!({ "description": desc })));
        self
    }

    /// Error statuses this operation can return besides the ones every operation can.
    pub fn errors(mut self, statuses: &[u16]) -> Op {
        for s in statuses {
            self.responses.push((*s, problem_response(error_description(*s))));
        }
        self
    }

    /// Whether the operation takes `Idempotency-Key` ([`crate::idempotency`]): writes by a user or
    /// API key.
    fn idempotent(&self) -> bool {
        self.security == Security::Bearer && matches!(self.method, "post" | "patch" | "put" | "delete")
    }

    /// The operation object, with the statuses every request can get (limits, overload).
    pub fn to_json(&self) -> Json {
        let mut responses = serde_json::Map::new();
        let mut all = self.responses.clone();
        let mut common = vec![429, 431, 503];
        if self.security != Security::None {
            common.push(401);
        }
        if self.body.is_some() {
            common.extend([400, 413]);
        }
        let keyed = self.idempotent();
        if keyed {
            common.extend([409, 422]);
        }
        for s in common {
            if !all.iter().any(|(x, _)| *x == s) {
                all.push((s, problem_response(error_description(s))));
            }
        }
        all.sort_by_key(|(s, _)| *s);
        for (s, r) in all {
            responses.insert(s.to_string(), r);
        }
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "responses": responses,
        });
        let mut params = self.params.clone();
        if keyed {
            params.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": crm_core::idempotency::MAX_KEY_LEN, "pattern": "^[!-~]+$"},
                "description": "A key the client chooses (1 to 255 visible ASCII characters) to make this write safe to retry: a repeat with the same key, by the same user or API key within 24 hours, gets the first answer (status, body, Location, ETag) and writes nothing; the same key with a different request is 422 `idempotency_key_reused`; while the first still runs, 409 on `idempotency_key`"
            }));
        }
        if !params.is_empty() {
            op["parameters"] = Json::Array(params);
        }
        if let Some(b) = &self.body {
            op["requestBody"] = b.clone();
        }
        op["security"] = match self.security {
            Security::None => json!([]),
            Security::Bearer => json!([{ "bearer": [] }, { "apiKey": [] }]),
            Security::Platform => json!([{ "platformAdmin": [] }]),
        };
        op
    }
}

/// The router and its documentation, built together.
pub struct Api<S> {
    pub router: Router<AppState<S>>,
    pub ops: Vec<Op>,
}

impl<S> std::fmt::Debug for Api<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("ops", &self.ops.len()).finish()
    }
}

impl<S: crate::state::ServerStore> Api<S> {
    pub fn new() -> Self {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a route and its operation.
    pub fn add(mut self, op: Op, handler: MethodRouter<AppState<S>>) -> Self {
        self.router = self.router.route(&op.path, handler);
        self.ops.push(op);
        self
    }
}

impl<S: crate::state::ServerStore> Default for Api<S> {
    fn default() -> Self {
        Self::new()
    }
}
