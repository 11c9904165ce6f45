//! Where the OpenAPI document and the server agree, pinned (schemathesis in `.ci/server.sh` found
//! each of these disagreeing): typed query parameters are parsed as the document types them, the
//! import form and child operations refuse what the document does not define, and the document
//! states the core's rules on input (non-blank required text, no control characters, E.164
//! phones, field names for `fields` and `sort`).

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value as Json, json};

fn op<'a>(doc: &'a Json, path: &str, method: &str) -> &'a Json {
    let o = &doc["paths"][path][method];
    assert!(o.is_object(), "{method} {path} is documented");
    o
}

fn param<'a>(op: &'a Json, name: &str) -> &'a Json {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("parameter {name}"))
}

fn documents(op: &Json, status: u16) -> bool {
    op["responses"].get(status.to_string()).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_query_parameters_are_refused_as_the_document_types_them() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let doc = env.get("/api/v1/openapi.json", &admin).await.body;
    let list = op(&doc, "/api/v1/leads", "get");
    assert_eq!(param(list, "limit")["schema"]["minimum"], 1);
    assert_eq!(param(list, "limit")["schema"]["maximum"], 500);
    assert!(documents(list, 400) && documents(list, 422));
    // Out of the documented range: refused, not clamped.
    for bad in ["0", "501", "-1", "", "ten"] {
        let r = env.get(&format!("/api/v1/leads?limit={bad}"), &admin).await;
        assert_eq!(r.status, 400, "limit={bad}: {}", r.text);
    }
    assert_eq!(env.get("/api/v1/leads?limit=500", &admin).await.status, 200);
    // Booleans are `true` or `false`.
    let r = env.get("/api/v1/leads/export?raw=null", &admin).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.get("/api/v1/leads/export?raw=true", &admin).await.status, 200);
    // A typed parameter present but empty is malformed, not absent.
    let r = env.get("/api/v1/memberships/numbers?as_of=", &admin).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // The audit trail's paging is bounded as documented.
    let audit = op(&doc, "/api/v1/audit", "get");
    assert_eq!(param(audit, "limit")["schema"]["maximum"], 1000);
    assert_eq!(env.get("/api/v1/audit?limit=1001", &admin).await.status, 400);
    assert_eq!(env.get("/api/v1/audit?limit=0", &admin).await.status, 400);
    assert_eq!(env.get("/api/v1/audit?limit=1000", &admin).await.status, 200);
    // `after` is checked even when Last-Event-ID is there.
    let r = env
        .call(
            "GET",
            "/api/v1/events?after=x",
            Some(&admin),
            None,
            &[("last-event-id", "0")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_names_in_fields_and_sort_are_what_the_document_lists() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let doc = env.get("/api/v1/openapi.json", &admin).await.body;
    let list = op(&doc, "/api/v1/leads", "get");
    let fields = regex_of(&param(list, "fields")["schema"]);
    let sort = regex_of(&param(list, "sort")["schema"]);
    for ok in ["", "id", "first_name,score"] {
        assert!(fields.is_match(ok), "fields={ok}");
        let r = env.get(&format!("/api/v1/leads?fields={ok}"), &admin).await;
        assert_eq!(r.status, 200, "fields={ok}: {}", r.text);
    }
    assert!(!fields.is_match("nope"));
    assert_eq!(env.get("/api/v1/leads?fields=nope", &admin).await.status, 400);
    for ok in ["-score", "first_name,-created_at"] {
        assert!(sort.is_match(ok), "sort={ok}");
        assert_eq!(env.get(&format!("/api/v1/leads?sort={ok}"), &admin).await.status, 200);
    }
    // Tags cannot be sorted by: the document does not offer them.
    assert!(!sort.is_match("tags"));
    assert_eq!(env.get("/api/v1/leads?sort=tags", &admin).await.status, 400);
    env.stop().await;
}

/// The pattern of a string schema, for the checks above (the patterns are plain enough for
/// a small hand matcher: alternatives of literal names, separated by commas).
fn regex_of(schema: &Json) -> NameList {
    let p = schema["pattern"].as_str().unwrap();
    // `^((a|b)(,(a|b))*)?$` or `^(-?(a|b)(,-?(a|b)){0,3})?$`
    let inner = p.split("((").nth(1).or_else(|| p.split("(-?(").nth(1)).unwrap();
    let names = inner.split(')').next().unwrap();
    NameList {
        names: names.split('|').map(|n| n.replace("\\.", ".")).collect(),
        desc: p.contains("-?"),
    }
}

struct NameList {
    names: Vec<String>,
    desc: bool,
}

impl NameList {
    fn is_match(&self, s: &str) -> bool {
        s.is_empty()
            || s.split(',').all(|k| {
                let k = if self.desc { k.strip_prefix('-').unwrap_or(k) } else { k };
                self.names.iter().any(|n| n == k)
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_form_and_child_operations_refuse_what_the_document_does_not_define() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let doc = env.get("/api/v1/openapi.json", &admin).await.body;
    let import = op(&doc, "/api/v1/leads/import", "post");
    let form = &import["requestBody"]["content"]["multipart/form-data"];
    assert_eq!(form["schema"]["additionalProperties"], false);
    assert_eq!(form["schema"]["properties"]["mapping"]["type"], "object");
    // `upsert` only where records can be matched (an external key).
    assert!(
        import["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "upsert"),
        "leads have an external key"
    );
    let no_key = op(&doc, "/api/v1/teams/import", "post");
    assert!(
        !no_key["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "upsert")
    );

    let body = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\n\r\nfirst_name\nAnn\r\n\
                --B\r\nContent-Disposition: form-data; name=\"maping\"\r\n\r\n{}\r\n--B--\r\n";
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("{}/api/v1/leads/import", env.base))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let r = env.send(req).await;
    assert_eq!(r.status, 400, "a misspelt part is refused: {}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("maping"), "{}", r.text);

    // Unknown members of a conversion and of a child operation are refused.
    let lead = env.post("/api/v1/leads", &admin, json!({ "first_name": "Ann" })).await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    let id = lead.body["id"].as_str().unwrap();
    let r = env
        .call(
            "POST",
            &format!("/api/v1/leads/{id}/convert"),
            Some(&admin),
            Some(json!({ "create_compnay": true })),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let quote = op(&doc, "/api/v1/quotes/{id}/children", "post");
    let variants =
        &quote["requestBody"]["content"]["application/json"]["schema"]["properties"]["ops"]["items"]["oneOf"];
    assert_eq!(
        variants.as_array().unwrap().len(),
        3,
        "create, update and delete of quote lines"
    );
    assert!(
        variants
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["additionalProperties"] == false)
    );
    env.stop().await;
}

#[test]
fn input_schemas_state_the_cores_rules_on_text() {
    let (api, doc) = crm_server::api::<crm_core::memory::MemoryStore>(&crm_server::Config::for_tests());
    drop(api);
    let schemas = &doc["components"]["schemas"];
    // Records: only id and version are always there (sparse reads leave out the rest).
    assert_eq!(schemas["Lead"]["required"], json!(["id", "version"]));
    // A required text field is not blank and holds no control character.
    let name = &schemas["TeamInput"]["properties"]["name"];
    assert_eq!(name["type"], "string");
    let pattern = name["pattern"].as_str().unwrap();
    assert!(pattern.contains("\\s") && pattern.contains("\\u0000"), "{pattern}");
    // Optional text: no control characters, null allowed.
    let notes = &schemas["LeadInput"]["properties"]["notes"];
    assert!(notes["pattern"].as_str().unwrap().contains("\\u0000"));
    assert_eq!(notes["type"], json!(["string", "null"]));
    // Phones in the form the core stores; an optional field of any other type than text also
    // takes "" (the core reads an empty string as not set) and null.
    let phone = &schemas["LeadInput"]["properties"]["phone"]["anyOf"];
    assert_eq!(phone[0]["pattern"], "^\\+[1-9][0-9]{7,14}$");
    assert_eq!(phone[1], json!({"type": "string", "maxLength": 0}));
    assert_eq!(phone[2], json!({"type": "null"}));
    // Money: a decimal string or a number (at most 2 decimals, which the core checks).
    let value = &schemas["LeadInput"]["properties"]["estimated_value"]["anyOf"][0]["oneOf"];
    assert_eq!(value[1]["type"], "number");
    // Configuration is JSON structure: an object or a list.
    let grants = schemas["RoleInput"]["properties"]["grants"]["type"].as_array().unwrap();
    assert!(grants.contains(&json!("object")) && grants.contains(&json!("array")));
}

/// Ids are read in the one form the document's `format: uuid` allows (8-4-4-4-12 hex digits),
/// wherever they come in: the `uuid` crate also reads 32 bare digits, `{braced}` and `urn:uuid:`
/// forms, and `GET /api/v1/audit?entity_id=` answered 200 to them and to an empty value
/// (schemathesis, ST201).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_read_only_in_the_documented_uuid_form() {
    let env = Env::start().await;
    let admin = env.a.token("admin").to_owned();
    let lead = env
        .post(
            "/api/v1/leads",
            &admin,
            json!({ "first_name": "Ida", "email": "ida@example.com" }),
        )
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text);
    let id = lead.body["id"].as_str().unwrap().to_owned();
    let forms = |id: &str| {
        [
            id.replace('-', ""),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.to_uppercase().replace('-', ""),
        ]
    };
    let org = env.a.id.to_string();
    assert_eq!(
        env.get(&format!("/api/v1/audit?entity_id={id}"), &admin).await.status,
        200
    );
    assert_eq!(
        env.get(&format!("/api/v1/audit?entity_id={}", id.to_uppercase()), &admin)
            .await
            .status,
        200,
        "hex digits in either case"
    );
    assert_eq!(env.get(&format!("/api/v1/leads/{id}"), &admin).await.status, 200);
    // Typed parameters present but empty are malformed, not absent (`entity_id=` answered 200).
    let r = env.get("/api/v1/audit?entity_id=", &admin).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = env.get("/api/v1/audit?entity=", &admin).await;
    assert_eq!(r.status, 404, "no entity type has an empty name: {}", r.text);
    let r = env.get("/api/v1/quotes/conversion?by=", &admin).await;
    assert_eq!(r.status, 400, "{}", r.text);
    for (other, org_form) in forms(&id).iter().zip(forms(&org)) {
        let q = other.replace('{', "%7B").replace('}', "%7D");
        let r = env.get(&format!("/api/v1/audit?entity_id={q}"), &admin).await;
        assert_eq!(r.status, 400, "entity_id={other}: {}", r.text);
        let r = env.get(&format!("/api/v1/leads/{q}"), &admin).await;
        assert_eq!(r.status, 404, "path {other}: {}", r.text);
        // A reference field in a body.
        let r = env
            .post(
                "/api/v1/activities",
                &admin,
                json!({ "kind": "call", "subject": "Hi", "lead_id": other }),
            )
            .await;
        assert_eq!(r.status, 422, "lead_id {other}: {}", r.text);
        assert_eq!(r.body["errors"][0]["path"], "lead_id", "{}", r.text);
        assert_eq!(r.body["errors"][0]["code"], "invalid_format", "{}", r.text);
        // The organization on sign-in.
        let r = env
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "organization": org_form, "email": env.a.email("admin"), "password": common::PASSWORD })),
                &[],
            )
            .await;
        assert_eq!(r.status, 400, "organization {org_form}: {}", r.text);
    }
    // The hyphenated form signs in.
    let r = env.login(env.a.id, env.a.email("admin"), common::PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.stop().await;
}

/// Every integer a client sends is bounded in the document by what the server reads it into: a
/// multipart `size` of 64033435038766170112 (above `u64::MAX`) was schema-valid and refused 400
/// (schemathesis, ST202).
#[test]
fn every_integer_a_client_sends_has_a_maximum() {
    fn walk(doc: &Json, schema: &Json, at: &str, seen: &mut Vec<String>, unbounded: &mut Vec<String>) {
        match schema {
            Json::Object(map) => {
                if let Some(Json::String(r)) = map.get("$ref") {
                    if !seen.contains(r) {
                        seen.push(r.clone());
                        let target = doc.pointer(r.trim_start_matches('#')).unwrap();
                        walk(doc, target, r, seen, unbounded);
                    }
                    return;
                }
                let integer = match map.get("type") {
                    Some(Json::String(t)) => t == "integer",
                    Some(Json::Array(ts)) => ts.contains(&json!("integer")),
                    _ => false,
                };
                if integer && !map.contains_key("maximum") {
                    unbounded.push(at.to_owned());
                }
                for (k, v) in map {
                    walk(doc, v, &format!("{at}/{k}"), seen, unbounded);
                }
            }
            Json::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(doc, v, &format!("{at}/{i}"), seen, unbounded);
                }
            }
            _ => {}
        }
    }
    let (api, doc) = crm_server::api::<crm_core::memory::MemoryStore>(&crm_server::Config::for_tests());
    drop(api);
    let (mut seen, mut unbounded) = (Vec::new(), Vec::new());
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let at = format!("{method} {path}");
            walk(&doc, &op["requestBody"], &at, &mut seen, &mut unbounded);
            walk(&doc, &op["parameters"], &at, &mut seen, &mut unbounded);
        }
    }
    assert!(unbounded.is_empty(), "integers without a maximum: {unbounded:#?}");
}
