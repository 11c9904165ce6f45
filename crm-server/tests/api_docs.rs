//! The committed API reference (`docs/api/openapi.json`, `docs/api/reference.md`) is the one the code
//! generates. `UPDATE_API_DOCS=1 cargo test -p crm-server --test api_docs` rewrites them.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

#[test]
fn committed_api_reference_is_current() {
    let (_, doc) = crm_server::api::<std::sync::Arc<crm_store::SqliteStore>>(&crm_server::Config::for_tests());
    let json = format!("{}\n", serde_json::to_string_pretty(&*doc).unwrap());
    let md = crm_server::openapi::markdown(&doc);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api");
    if std::env::var_os("UPDATE_API_DOCS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("openapi.json"), &json).unwrap();
        std::fs::write(dir.join("reference.md"), &md).unwrap();
    }
    let stale = "stale: run `UPDATE_API_DOCS=1 cargo test -p crm-server --test api_docs`";
    assert_eq!(
        std::fs::read_to_string(dir.join("openapi.json")).unwrap_or_default(),
        json,
        "docs/api/openapi.json is {stale}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("reference.md")).unwrap_or_default(),
        md,
        "docs/api/reference.md is {stale}"
    );
}
