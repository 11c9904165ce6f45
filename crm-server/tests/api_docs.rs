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

/// A child stays with its parent (the core answers `read_only` to a new parent), so the document
/// never offers the parent field in a child's patch: schemathesis found
/// `PATCH /membership_freezes/{id}` documenting `membership_id` as writable.
#[test]
fn child_patches_do_not_offer_the_parent_field() {
    let (_, doc) = crm_server::api::<std::sync::Arc<crm_store::SqliteStore>>(&crm_server::Config::for_tests());
    let schemas = &doc["components"]["schemas"];
    let mut children = 0;
    for def in crm_core::entity::all() {
        let Some(c) = def.child_of else { continue };
        children += 1;
        let name = crm_server::openapi::schema_name(def.name);
        for kind in ["Patch", "Inline"] {
            let props = &schemas[format!("{name}{kind}")]["properties"];
            assert!(props.is_object(), "{name}{kind} is documented");
            assert!(
                props.get(c.field).is_none(),
                "{name}{kind} offers the parent field {}",
                c.field
            );
        }
        let input = &schemas[format!("{name}Input")]["properties"];
        assert!(input.get(c.field).is_some(), "{name}Input names its parent on create");
    }
    assert!(
        children >= 2,
        "the declarations have children (quote lines, membership freezes)"
    );
}
