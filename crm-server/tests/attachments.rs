//! Attachments over HTTP: multipart uploads streamed into the core, downloads a browser will not
//! render, the owner's scope, the declared size and hash, the tenant's limit, signatures on a job.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, Res};
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value as Json, json};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const HTML: &[u8] = b"<!doctype html><html><body><script>fetch('/api/v1/leads')</script></body></html>";
const SVG: &[u8] = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><script>alert(2)</script></svg>";

/// A multipart body: text parts, then the file part (named `file.bin` unless a part names it).
fn form(parts: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    form_with(parts, file, &[])
}

/// [`form`] with text parts after the file too.
fn form_with(parts: &[(&str, &str)], file: Option<(&str, &str, &[u8])>, after: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----crm-test-boundary-7f3a";
    let mut body = Vec::new();
    let text = |body: &mut Vec<u8>, k: &str, v: &str| {
        body.extend(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes());
    };
    for (k, v) in parts {
        text(&mut body, k, v);
    }
    if let Some((name, ty, bytes)) = file {
        body.extend(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\ncontent-type: {ty}\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    for (k, v) in after {
        text(&mut body, k, v);
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(env: &Env, token: &str, path: &str, parts: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Res {
    send_form(env, token, path, form(parts, file)).await
}

async fn send_form(env: &Env, token: &str, path: &str, (ct, body): (String, Vec<u8>)) -> Res {
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", env.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    env.send(req).await
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

async fn lead(env: &Env, token: &str) -> Json {
    let r = env.post("/api/v1/leads", token, json!({"first_name": "Ann"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_upload_list_and_download_in_the_owners_scope() {
    let env = Env::start().await;
    let sales = env.a.token("sales");
    let l = lead(&env, sales).await;
    let base = format!("/api/v1/leads/{}/attachments", l["id"].as_str().unwrap());
    let r = upload(
        &env,
        sales,
        &base,
        &[("kind", "photo")],
        Some(("roof é.png", "image/png", PNG)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.body.clone();
    assert_eq!(a["media_type"], "image/png");
    assert_eq!(a["file_name"], "roof é.png");
    assert_eq!(a["size"], PNG.len());
    assert_eq!(a["sha256"], sha256(PNG));
    assert_eq!(a["uploaded_by"], env.a.user("sales").to_string());
    let id = a["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/attachments/{id}").as_str());

    // The same bytes again, with the right declared size and hash: another record, the same blob.
    let parts = [
        ("kind", "photo"),
        ("file_name", "again.png"),
        ("size", &PNG.len().to_string()),
        ("sha256", &sha256(PNG)),
    ];
    let r = upload(&env, sales, &base, &parts, Some(("x.png", "image/png", PNG))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["file_name"], "again.png");

    // The input may follow the file (checked when the form ends).
    let late = form_with(
        &[],
        Some(("late.png", "image/png", PNG)),
        &[("kind", "photo"), ("file_name", "later.png")],
    );
    let r = send_form(&env, sales, &base, late).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["file_name"], "later.png");
    let late = form_with(&[], Some(("late.png", "image/png", PNG)), &[("kind", "signature")]);
    let r = send_form(&env, sales, &base, late).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "signer_name");

    let list = env.get(&base, sales).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        env.get(&format!("/api/v1/attachments/{id}"), sales).await.body["id"],
        id
    );
    let c = env.get(&format!("/api/v1/attachments/{id}/content"), sales).await;
    assert_eq!(c.status, 200);
    assert_eq!(c.bytes, PNG);
    assert_eq!(c.headers["content-type"], "image/png");
    assert_eq!(
        c.headers["content-disposition"],
        "attachment; filename=\"roof _.png\"; filename*=UTF-8''roof%20%C3%A9.png"
    );
    assert_eq!(c.headers["x-content-type-options"], "nosniff");
    assert_eq!(c.headers["content-security-policy"], "sandbox; default-src 'none'");

    // Another tenant, and a salesperson of another... tenant: not found, whatever they ask.
    let other = env.b.token("admin");
    for path in [
        base.clone(),
        format!("/api/v1/attachments/{id}"),
        format!("/api/v1/attachments/{id}/content"),
    ] {
        let r = env.get(&path, other).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = env
        .call("DELETE", &format!("/api/v1/attachments/{id}"), Some(other), None, &[])
        .await;
    assert_eq!(r.status, 404);
    let r = upload(
        &env,
        other,
        &base,
        &[("kind", "photo")],
        Some(("x.png", "image/png", PNG)),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // A field technician does not read this lead either.
    let r = env.get(&base, env.a.token("field_tech")).await;
    assert!(r.status == 404 || r.status == 403, "{}", r.text);

    let r = env
        .call("DELETE", &format!("/api/v1/attachments/{id}"), Some(sales), None, &[])
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(env.get(&format!("/api/v1/attachments/{id}"), sales).await.status, 404);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_svg_are_served_as_downloads_a_browser_does_not_render() {
    let env = Env::start().await;
    let sales = env.a.token("sales");
    let l = lead(&env, sales).await;
    let base = format!("/api/v1/leads/{}/attachments", l["id"].as_str().unwrap());
    for (name, claimed, bytes, sniffed) in [
        ("page.html", "text/html", HTML, "text/html"),
        ("logo.svg", "text/plain", SVG, "image/svg+xml"),
    ] {
        let r = upload(
            &env,
            sales,
            &base,
            &[("kind", "document")],
            Some((name, claimed, bytes)),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["media_type"], sniffed, "sniffed from the content, not the claim");
        let c = env
            .get(
                &format!("/api/v1/attachments/{}/content", r.body["id"].as_str().unwrap()),
                sales,
            )
            .await;
        assert_eq!(c.status, 200);
        assert_eq!(c.bytes, bytes);
        assert_eq!(c.headers["content-type"], "application/octet-stream", "{name}");
        assert!(
            c.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert_eq!(c.headers["x-content-type-options"], "nosniff");
        assert!(
            c.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
    }
    // An SVG is no photo, whatever the part claims.
    let r = upload(
        &env,
        sales,
        &base,
        &[("kind", "photo")],
        Some(("logo.svg", "image/svg+xml", SVG)),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "media_type");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_declarations_limits_and_bad_forms_are_refused_with_nothing_written() {
    let env = Env::start().await;
    let admin = env.a.token("admin");
    let l = lead(&env, admin).await;
    let base = format!("/api/v1/leads/{}/attachments", l["id"].as_str().unwrap());
    let before = env.writes(env.a.id).await;
    let file = Some(("roof.png", "image/png", PNG));
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "photo"), ("sha256", &"0".repeat(64))],
        file,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "sha256");
    assert_eq!(r.body["errors"][0]["code"], "mismatch");
    let r = upload(&env, admin, &base, &[("kind", "photo"), ("size", "3")], file).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["code"], "mismatch");
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "selfie"), ("file_name", "a/b.png")],
        file,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["file_name", "kind"], "every field at once");
    let r = upload(&env, admin, &base, &[("kind", "photo"), ("size", "many")], file).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = upload(&env, admin, &base, &[("kind", "photo"), ("colour", "red")], file).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = upload(&env, admin, &base, &[("kind", "photo")], None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Teams take no attachments: the route does not exist.
    let teams = env.get("/api/v1/teams", admin).await;
    let team = teams.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = upload(
        &env,
        admin,
        &format!("/api/v1/teams/{team}/attachments"),
        &[("kind", "photo")],
        file,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(env.writes(env.a.id).await, before, "refusals write nothing");

    // Over the JSON body limit (1 MB) but within the tenant's (10 MB by default): taken.
    let two_mb = vec![b'r'; 2 << 20];
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "document")],
        Some(("log.txt", "text/plain", &two_mb)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["size"], 2 << 20);
    // A text part is short.
    let long = "a".repeat(100_000);
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "document"), ("signer_name", &long)],
        file,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // The tenant's limit is read while the file streams.
    let org = env.get("/api/v1/organization", admin).await;
    let v = org.body["version"].as_u64().unwrap();
    let r = env
        .patch("/api/v1/organization", admin, v, json!({"attachment_max_bytes": 1000}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = env.writes(env.a.id).await;
    let big = vec![b'a'; 5000];
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "document")],
        Some(("big.txt", "text/plain", &big)),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "limit_exceeded");
    let r = upload(
        &env,
        admin,
        &base,
        &[("kind", "document"), ("size", "5000")],
        Some(("big.txt", "text/plain", &big)),
    )
    .await;
    assert_eq!(r.body["code"], "limit_exceeded");
    let list = env.get(&base, admin).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "only the 2 MB one");
    assert_eq!(env.writes(env.a.id).await, before);
    env.stop().await;
}

async fn complete(env: &Env, token: &str, job: &str, version: u64) -> Res {
    let etag = format!("\"{version}\"");
    env.call(
        "POST",
        &format!("{job}/complete"),
        Some(token),
        Some(json!({})),
        &[("if-match", &etag)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crew_members_signature_lets_the_job_complete() {
    let env = Env::start().await;
    let (manager, tech) = (env.a.token("manager"), env.a.token("field_tech"));
    let contact = env
        .post("/api/v1/contacts", manager, json!({"first_name": "Cleo"}))
        .await;
    let job = env
        .post(
            "/api/v1/jobs",
            manager,
            json!({"kind": "journey", "title": "Move", "contact_id": contact.body["id"], "signature_required": true,
            "crew_assignments": [{"user_id": env.a.user("field_tech"), "role": "mover",
                "starts_at": "2030-01-02T08:00:00Z", "ends_at": "2030-01-02T12:00:00Z"}]}),
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let id = job.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/jobs/{id}");
    let started = env
        .call(
            "POST",
            &format!("{path}/start"),
            Some(tech),
            Some(json!({})),
            &[("if-match", &format!("\"{}\"", job.body["version"]))],
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let r = complete(&env, tech, &path, started.body["version"].as_u64().unwrap()).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["code"], "unsigned");
    let r = upload(
        &env,
        tech,
        &format!("{path}/attachments"),
        &[("kind", "signature"), ("signer_name", "Cleo Customer")],
        Some(("signature.png", "image/png", PNG)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["signer_name"], "Cleo Customer");
    assert!(r.body["signed_at"].is_string());
    let j = env.get(&path, tech).await;
    assert_eq!(j.body["customer_signed"], true);
    let r = complete(&env, tech, &path, j.body["version"].as_u64().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    env.stop().await;
}
