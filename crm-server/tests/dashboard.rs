//! The dashboard page at `/`: served from the binary with a strict Content-Security-Policy, its
//! script and stylesheet served too, nothing on it naming another origin, nothing the policy would
//! block, and every API path its script calls one the server routes. (Headless Chromium drives it
//! in `.ci/server.sh`: sign-in with Enter, the funnel's numbers against the API's.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, Res};

fn header(r: &Res, h: &str) -> String {
    r.headers
        .get(h)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The values of `attr="..."` in an HTML text.
fn attrs<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    html.split(&format!(" {attr}=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// Fails if a text names another origin: an absolute or protocol-relative URL, or a CSS import.
fn assert_no_other_origin(name: &str, text: &str) {
    let lower = text.to_lowercase();
    for needle in ["http://", "https://", "\"//", "'//", "(//", "@import", "url("] {
        assert!(!lower.contains(needle), "{name} contains {needle}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_from_the_binary_under_a_strict_policy() {
    let env = Env::start().await;
    let page = env.call("GET", "/", None, None, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    // Self only: no inline script or style, no other origin, no framing, no form posts.
    let csp = header(&page, "content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for d in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&d), "{d} missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe") && !csp.contains("http") && !csp.contains('*'),
        "{csp}"
    );

    let html = &page.text;
    assert_no_other_origin("the page", html);
    // What the policy would block is not there: inline scripts, style attributes, handlers.
    assert_eq!(
        html.matches("<script").count(),
        attrs(html, "src").len(),
        "every script has a src"
    );
    assert!(!html.contains(" style=") && !html.contains("<style"), "inline style");
    let handler = html.to_lowercase().split(" on").skip(1).any(|rest| {
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    });
    assert!(!handler, "an inline event handler");
    // The sign-in form is labelled and keyboard-submittable (a submit button: Enter submits).
    for id in ["organization", "email", "password", "q"] {
        assert!(html.contains(&format!("<label for=\"{id}\"")), "no label for #{id}");
    }
    assert!(html.contains("<button type=\"submit\">Sign in</button>"));

    // Every file the page names is served, with its type, and names no other origin either.
    let mut files: Vec<&str> = attrs(html, "src");
    files.extend(attrs(html, "href").into_iter().filter(|h| h.starts_with("/dashboard/")));
    assert_eq!(files.len(), 2, "{files:?}");
    let mut script = String::new();
    for f in files {
        assert!(f.starts_with("/dashboard/"), "{f}");
        let res = env.call("GET", f, None, None, &[]).await;
        assert_eq!(res.status, 200, "{f}");
        let ct = header(&res, "content-type");
        let want = if f.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(ct.starts_with(want), "{f}: {ct}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_no_other_origin(f, &res.text);
        if f.ends_with(".js") {
            script = res.text;
        }
    }
    // The embedded files are the ones in the repository.
    assert_eq!(script, crm_server::routes::dashboard::ASSETS[0].2);
    assert!(
        !script.contains("eval(") && !script.contains("innerHTML"),
        "the script builds the DOM"
    );
    // The session stays in sessionStorage, never in a cookie.
    assert!(script.contains("sessionStorage") && !script.contains("document.cookie"));

    // Every API path the script calls is one the served document (the router) has.
    let doc = env.call("GET", "/api/v1/openapi.json", None, None, &[]).await;
    let paths: Vec<String> = doc.body["paths"].as_object().unwrap().keys().cloned().collect();
    let called: Vec<&str> = ["\"/api/v1/", "`/api/v1/"]
        .iter()
        .flat_map(|quote| script.split(quote).skip(1))
        .filter_map(|rest| rest.split(['"', '`', '?', '$']).next())
        .collect();
    assert!(called.len() >= 5, "{called:?}");
    for c in called {
        let prefix = format!("/api/v1/{c}");
        assert!(
            paths
                .iter()
                .any(|p| p == &prefix || (c.ends_with('/') && p.starts_with(&prefix))),
            "the script calls {prefix}, which the server does not route"
        );
    }

    let missing = env.call("GET", "/dashboard/nope.js", None, None, &[]).await;
    assert_eq!(missing.status, 404);
    assert!(header(&missing, "content-type").starts_with("application/problem+json"));
    env.stop().await;
}
