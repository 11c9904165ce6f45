//! The scenarios of the generated-binding tests, in Rust (the Python and Kotlin tests run the same).

use super::*;

fn setup() -> (tempfile::TempDir, String, DemoTenant) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crm.db").to_string_lossy().into_owned();
    let demo = load_demo(path.clone(), 20, 40, 1).expect("demo");
    (dir, path, demo)
}

fn email(d: &DemoTenant, role: &str) -> String {
    d.users
        .iter()
        .find(|u| u.role == role)
        .map(|u| u.email.clone())
        .expect("role")
}

#[test]
fn field_tech_day_staff_forbidden_and_conflict() {
    let (_dir, path, demo) = setup();
    let tech = Crm::open(path.clone(), email(&demo, "field_tech")).expect("open");
    assert_eq!(tech.role().expect("role"), "field_tech");
    let mine = tech.my_leads(ListQuery::default()).expect("my leads");
    let all = tech.list_leads(ListQuery::default()).expect("leads");
    assert!(!mine.items.is_empty());
    assert_eq!(
        mine.items.len(),
        all.items.len(),
        "a field tech sees only their own leads"
    );
    assert!(
        all.items
            .iter()
            .all(|l| l.owner_id.as_deref() == Some(tech.user_id().as_str()))
    );

    let lead = &mine.items[0];
    let act = tech
        .check_in(lead.id.clone(), Some("on site".into()))
        .expect("check in");
    assert_eq!(act.kind, Some(ActivityKind::CheckIn));
    assert_eq!(act.lead_id.as_deref(), Some(lead.id.as_str()));

    let lead = tech.get_lead(lead.id.clone()).expect("reload");
    let v = lead.version;
    tech.update_lead(lead.id.clone(), v, r#"{"notes": "ladder needed"}"#.into())
        .expect("update");
    match tech.update_lead(lead.id.clone(), v, r#"{"notes": "again"}"#.into()) {
        Err(CrmError::Conflict {
            code, expected, actual, ..
        }) => {
            assert_eq!((code.as_str(), expected, actual), ("conflict", v, v + 1))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let staff = Crm::open(path, email(&demo, "staff")).expect("open staff");
    let contact = staff
        .list("contact".into(), ListQuery::default())
        .expect("contacts")
        .items
        .remove(0);
    match staff.update(
        "contact".into(),
        contact.id,
        contact.version,
        r#"{"email": "x@y.example"}"#.into(),
    ) {
        Err(CrmError::Forbidden { code, fields, .. }) => {
            assert_eq!(code, "forbidden");
            assert_eq!(fields, vec!["email".to_owned()]);
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
    assert!(!tech.changes_since(0, 100).expect("feed").is_empty());
}

#[test]
fn offline_changes_are_pending_until_marked_synced() {
    let (_dir, path, demo) = setup();
    let tech = Crm::open(path, email(&demo, "field_tech")).expect("open");
    assert!(
        tech.pending_changes(100).expect("pending").is_empty(),
        "the demo data was loaded, not made on the device"
    );
    let lead = tech.my_leads(ListQuery::default()).expect("my leads").items.remove(0);
    let act = tech
        .check_in(lead.id.clone(), Some("on site".into()))
        .expect("check in");
    tech.update_lead(lead.id.clone(), lead.version, r#"{"notes": "ladder needed"}"#.into())
        .expect("update");
    let pending = tech.pending_changes(100).expect("pending");
    assert_eq!(pending.len(), 2);
    let (first, second) = (&pending[0], &pending[1]);
    assert_eq!(first.actor.as_deref(), Some(tech.user_id().as_str()));
    assert_eq!(first.writes.len(), 1, "the lead's re-score is not logged");
    let w = &first.writes[0];
    assert_eq!(
        (w.entity.as_str(), w.id.as_str(), w.op, w.expected_version),
        ("activity", act.id.as_str(), SyncOp::Insert, 0)
    );
    let patch: serde_json::Value = serde_json::from_str(&w.patch_json).expect("json");
    assert_eq!(patch["kind"], "check_in");
    let w = &second.writes[0];
    assert_eq!((w.op, w.expected_version), (SyncOp::Update, lead.version));
    assert_eq!(w.patch_json, r#"{"notes":"ladder needed"}"#);
    assert_eq!(tech.mark_synced(second.seq).expect("mark"), 2);
    assert!(tech.pending_changes(100).expect("pending").is_empty());
}

#[test]
fn storage_failures_keep_their_kind_and_hide_their_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, b"not a database, SELECT nothing".repeat(200)).expect("write");
    match Crm::open(path.to_string_lossy().into_owned(), "a@b.example".into()) {
        Err(CrmError::Storage { code, detail }) => {
            assert_eq!(code, "corrupt");
            assert!(!detail.contains("sqlite") && !detail.contains("SELECT"), "{detail}");
        }
        other => panic!("expected a corrupt database, got {other:?}"),
    }
    let busy = CrmError::from(crm_core::Error::unavailable(2, "sqlite: database is locked"));
    match busy {
        CrmError::Unavailable {
            code,
            detail,
            retry_after,
        } => {
            assert_eq!((code.as_str(), retry_after), ("unavailable", 2));
            assert!(!detail.contains("locked"), "{detail}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn mirror_enums_are_the_core_enums() {
    use crm_core::entity::{ActivityKind as CoreKind, Temperature as CoreTemp};
    for k in CoreKind::ALL {
        let mine = ActivityKind::from(*k);
        assert_eq!(CoreKind::from(mine), *k);
        assert_eq!(ActivityKind::from_key(k.key()), Some(mine));
        assert_eq!(mine.key(), k.key());
    }
    for t in CoreTemp::ALL {
        let mine = Temperature::from(*t);
        assert_eq!((CoreTemp::from(mine), mine.key()), (*t, t.key()));
        assert_eq!(Temperature::from_key(t.key()), Some(mine));
    }
}

#[test]
fn open_by_email_is_normalised_by_the_core() {
    let (_dir, path, demo) = setup();
    let shouting = format!("  {}  ", email(&demo, "sales").to_uppercase());
    let crm = Crm::open(path.clone(), shouting).expect("open by a differently written email");
    assert_eq!(crm.role().expect("role"), "sales");
    assert!(matches!(
        Crm::open(path, "nobody@nowhere.test".into()),
        Err(CrmError::NotFound { .. })
    ));
}
