//! The scenarios of the generated-binding tests, in Rust (the Python and Kotlin tests run the same).

use super::*;

async fn setup() -> (tempfile::TempDir, String, DemoTenant) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crm.db").to_string_lossy().into_owned();
    let demo = load_demo(path.clone(), 20, 40, 1).await.expect("demo");
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
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let tech = Crm::open(path.clone(), email(&demo, "field_tech")).await.expect("open");
        assert_eq!(tech.role().await.expect("role"), "field_tech");
        let mine = tech.my_leads(ListQuery::default()).await.expect("my leads");
        let all = tech.list_leads(ListQuery::default()).await.expect("leads");
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
            .await
            .expect("check in");
        assert_eq!(act.kind, Some(ActivityKind::CheckIn));
        assert_eq!(act.lead_id.as_deref(), Some(lead.id.as_str()));

        let lead = tech.get_lead(lead.id.clone()).await.expect("reload");
        let v = lead.version;
        tech.update_lead(lead.id.clone(), v, r#"{"notes": "ladder needed"}"#.into())
            .await
            .expect("update");
        match tech
            .update_lead(lead.id.clone(), v, r#"{"notes": "again"}"#.into())
            .await
        {
            Err(CrmError::Conflict {
                code, expected, actual, ..
            }) => {
                assert_eq!((code.as_str(), expected, actual), ("conflict", v, v + 1))
            }
            other => panic!("expected a conflict, got {other:?}"),
        }

        let staff = Crm::open(path, email(&demo, "staff")).await.expect("open staff");
        let contact = staff
            .list("contact".into(), ListQuery::default())
            .await
            .expect("contacts")
            .items
            .remove(0);
        match staff
            .update(
                "contact".into(),
                contact.id,
                contact.version,
                r#"{"email": "x@y.example"}"#.into(),
            )
            .await
        {
            Err(CrmError::Forbidden { code, fields, .. }) => {
                assert_eq!(code, "forbidden");
                assert_eq!(fields, vec!["email".to_owned()]);
            }
            other => panic!("expected forbidden, got {other:?}"),
        }
        assert!(!tech.changes_since(0, 100).await.expect("feed").is_empty());
    })
}

#[test]
fn offline_changes_are_pending_until_marked_synced() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let tech = Crm::open(path, email(&demo, "field_tech")).await.expect("open");
        assert!(
            tech.pending_changes(100).await.expect("pending").is_empty(),
            "the demo data was loaded, not made on the device"
        );
        let lead = tech
            .my_leads(ListQuery::default())
            .await
            .expect("my leads")
            .items
            .remove(0);
        let act = tech
            .check_in(lead.id.clone(), Some("on site".into()))
            .await
            .expect("check in");
        tech.update_lead(lead.id.clone(), lead.version, r#"{"notes": "ladder needed"}"#.into())
            .await
            .expect("update");
        let pending = tech.pending_changes(100).await.expect("pending");
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
        assert_eq!(tech.mark_synced(second.seq).await.expect("mark"), 2);
        assert!(tech.pending_changes(100).await.expect("pending").is_empty());
    })
}

#[test]
fn storage_failures_keep_their_kind_and_hide_their_cause() {
    pollster::block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, b"not a database, SELECT nothing".repeat(200)).expect("write");
        match Crm::open(path.to_string_lossy().into_owned(), "a@b.example".into()).await {
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
    })
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
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let shouting = format!("  {}  ", email(&demo, "sales").to_uppercase());
        let crm = Crm::open(path.clone(), shouting)
            .await
            .expect("open by a differently written email");
        assert_eq!(crm.role().await.expect("role"), "sales");
        assert!(matches!(
            Crm::open(path, "nobody@nowhere.test".into()).await,
            Err(CrmError::NotFound { .. })
        ));
    })
}

#[test]
fn an_estimator_builds_and_submits_a_quote_offline() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let est = Crm::open(path, email(&demo, "sales")).await.expect("open");
        let contact = est
            .create(
                "contact".into(),
                r#"{"first_name": "Carla", "last_name": "Client"}"#.into(),
            )
            .await
            .expect("contact");
        let input = serde_json::json!({
            "contact_id": contact.id, "valid_until": "2099-12-31", "title": "Two-bedroom move",
            "quote_lines": [
                {"description": "Truck and crew", "quantity": "6.5", "unit": "h", "unit_price": "145.00", "tax_rate": "8.875"},
                {"description": "Packing boxes", "quantity": "40", "unit_price": "2.49", "discount_percent": "10"}
            ]
        });
        let quote = est.create("quote".into(), input.to_string()).await.expect("quote");
        let q: serde_json::Value = serde_json::from_str(&quote.json).expect("json");
        assert_eq!(
            (q["status"].as_str(), q["line_count"].as_i64()),
            (Some("draft"), Some(2))
        );
        assert_eq!(q["total"], "1115.79", "942.50 + 83.65 tax + 89.64");
        let kids = est.children("quote".into(), quote.id.clone()).await.expect("children");
        assert_eq!(
            (kids.len(), kids[0].table.as_str(), kids[0].entity.as_str()),
            (1, "quote_lines", "quote_line")
        );
        let lines: Vec<serde_json::Value> = kids[0]
            .items
            .iter()
            .map(|r| serde_json::from_str(&r.json).expect("json"))
            .collect();
        assert_eq!(lines[0]["quantity"], "6.5");
        assert_eq!(lines[1]["amount"], "89.64");

        // Refusals: typed errors, nothing written, nothing queued.
        let before = est.pending_changes(100).await.expect("pending").len();
        match est
            .transition("quote".into(), quote.id.clone(), quote.version, "send".into(), None)
            .await
        {
            Err(CrmError::Validation { fields, .. }) => assert_eq!(fields[0].code, "invalid_transition"),
            other => panic!("expected invalid_transition, got {other:?}"),
        }
        match est
            .transition(
                "quote".into(),
                quote.id.clone(),
                quote.version,
                "submit".into(),
                Some("[1]".into()),
            )
            .await
        {
            Err(CrmError::Validation { fields, .. }) => assert_eq!(fields[0].path, "input_json"),
            other => panic!("expected a bad input_json, got {other:?}"),
        }
        assert!(matches!(
            est.transition(
                "quote".into(),
                quote.id.clone(),
                quote.version + 1,
                "submit".into(),
                None
            )
            .await,
            Err(CrmError::Conflict { .. })
        ));
        assert_eq!(est.pending_changes(100).await.expect("pending").len(), before);

        let submitted = est
            .transition("quote".into(), quote.id.clone(), quote.version, "submit".into(), None)
            .await
            .expect("submit");
        let s: serde_json::Value = serde_json::from_str(&submitted.json).expect("json");
        assert_eq!(s["status"], "approved", "the demo tenant has no approval levels");
        assert_eq!(s["submitted_by"], est.user_id());

        // The device's outgoing queue: the contact, the quote with its lines (one change set), the submit.
        let pending = est.pending_changes(100).await.expect("pending");
        assert_eq!(pending.len(), 3);
        let ops =
            |e: &SyncEntry| -> Vec<(String, SyncOp)> { e.writes.iter().map(|w| (w.entity.clone(), w.op)).collect() };
        assert_eq!(ops(&pending[0]), [("contact".to_owned(), SyncOp::Insert)]);
        assert_eq!(
            ops(&pending[1]),
            [
                ("quote".to_owned(), SyncOp::Insert),
                ("quote_line".to_owned(), SyncOp::Insert),
                ("quote_line".to_owned(), SyncOp::Insert)
            ]
        );
        let line: serde_json::Value = serde_json::from_str(&pending[1].writes[1].patch_json).expect("json");
        assert_eq!(line["quantity"], "6.5");
        assert!(
            line.get("amount").is_none(),
            "derived amounts are re-derived by the receiver"
        );
        let quote_patch: serde_json::Value = serde_json::from_str(&pending[1].writes[0].patch_json).expect("json");
        assert!(
            quote_patch.get("total").is_none(),
            "derived totals are not in the patch"
        );
        assert_eq!(ops(&pending[2]), [("quote".to_owned(), SyncOp::Update)]);
        let w = &pending[2].writes[0];
        assert_eq!((w.id.as_str(), w.expected_version), (quote.id.as_str(), quote.version));
        let patch: serde_json::Value = serde_json::from_str(&w.patch_json).expect("json");
        assert_eq!(patch["status"], "approved");
        assert_eq!(pending[2].event_ids.len(), 1, "quote.submitted");
    })
}

/// Every writable typed field of a lead, as read, as a patch: what an edit screen saves.
fn lead_patch(l: &Lead) -> serde_json::Value {
    serde_json::json!({
        "first_name": l.first_name, "last_name": l.last_name, "company_name": l.company_name,
        "email": l.email, "phone": l.phone, "city": l.city, "source": l.source, "status": l.status,
        "owner_id": l.owner_id, "project_type": l.project_type, "priority": l.priority,
        "estimated_value": l.estimated_value, "notes": l.notes,
    })
}

#[test]
fn a_lead_read_and_written_back_is_stored_unchanged() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let admin = Crm::open(path, email(&demo, "admin")).await.expect("open");
        let id = admin
            .list_leads(ListQuery::default())
            .await
            .expect("leads")
            .items
            .remove(0)
            .id;
        let v = admin.get_lead(id.clone()).await.expect("get").version;
        admin
            .update_lead(id.clone(), v, r#"{"estimated_value": "18500.00"}"#.into())
            .await
            .expect("set");
        let read = admin.get_lead(id.clone()).await.expect("read");
        assert_eq!(read.estimated_value.as_deref(), Some("18500.00"));
        let same = admin
            .update_lead(id.clone(), read.version, lead_patch(&read).to_string())
            .await
            .expect("write back");
        assert_eq!(same, read, "nothing changed");
        assert_eq!(
            admin.get_lead(id.clone()).await.expect("reload"),
            read,
            "stored unchanged"
        );

        let mut patch = lead_patch(&read);
        patch["notes"] = "ladder needed".into();
        let edited = admin
            .update_lead(id, read.version, patch.to_string())
            .await
            .expect("edit");
        assert_eq!(edited.version, read.version + 1);
        assert_eq!(edited.estimated_value.as_deref(), Some("18500.00"), "money unchanged");
    })
}

#[test]
fn an_explanation_is_typed_as_the_lead_is() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let admin = Crm::open(path, email(&demo, "admin")).await.expect("open");
        let lead = admin
            .list_leads(ListQuery::default())
            .await
            .expect("leads")
            .items
            .remove(0);
        let why = admin.explain_score(lead.id.clone()).await.expect("explain");
        assert_eq!(Some(why.temperature), lead.temperature);
        assert_eq!(why.lines.iter().map(|l| l.points).sum::<i64>(), why.score);
    })
}

#[test]
fn a_call_dropped_mid_page_leaves_the_handle_working() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let admin = Crm::open(path, email(&demo, "admin")).await.expect("open");
        let page = |cursor: Option<String>| ListQuery {
            sort: Some("created_at".into()),
            limit: Some(7),
            cursor,
            ..Default::default()
        };
        // A page started and abandoned (a cancelled coroutine): the future is polled once (the worker
        // starts), then dropped.
        {
            let mut call = std::pin::pin!(admin.list_leads(page(None)));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let _ = call.as_mut().poll(&mut cx);
        }
        // The handle pages on: every lead once, in order.
        let (mut ids, mut cursor, mut pages) = (Vec::new(), None, 0);
        loop {
            let p = admin.list_leads(page(cursor)).await.expect("page");
            pages += 1;
            ids.extend(p.items.into_iter().map(|l| l.id));
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!((ids.len(), unique.len(), pages), (40, 40, 6));
    })
}

#[test]
fn a_field_manager_reads_the_numbers_of_a_day() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let admin = Crm::open(path, email(&demo, "admin")).await.expect("open");
        let contact = admin
            .create("contact".into(), r#"{"first_name": "Cleo"}"#.into())
            .await
            .expect("contact");
        let job = |title: &str| {
            format!(
                r#"{{"kind": "journey", "title": "{title}", "contact_id": "{}", "scheduled_on": "2026-03-02"}}"#,
                contact.id
            )
        };
        admin.create("job".into(), job("Elm St")).await.expect("job");
        let gone = admin.create("job".into(), job("Oak St")).await.expect("job");
        admin
            .transition(
                "job".into(),
                gone.id,
                gone.version,
                "cancel".into(),
                Some(r#"{"cancel_reason": "customer moved the date"}"#.into()),
            )
            .await
            .expect("cancel");
        let day = admin
            .field_work_report(Some("2026-03-02".into()), None)
            .await
            .expect("report");
        assert_eq!((day.jobs, day.cancelled, day.completed), (2, 1, 0));
        assert_eq!(day.on_time_rate, None, "nothing completed");
        let next = admin
            .field_work_report(Some("2026-03-03".into()), Some("2026-03-09".into()))
            .await
            .expect("report");
        assert_eq!(next.jobs, 0);
        // Today's (the tenant's today): it answers, whatever the date is.
        admin.field_work_report(None, None).await.expect("today");
        match admin.field_work_report(Some("03/02/2026".into()), None).await {
            Err(CrmError::Validation { fields, .. }) => {
                assert_eq!(
                    (fields[0].path.as_str(), fields[0].code.as_str()),
                    ("from", "invalid_format")
                )
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    })
}

/// A PNG's signature and a few bytes, distinct per `n`: enough for the core's sniffer.
fn png(n: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend(std::iter::repeat_n(n, 64));
    b
}

#[test]
fn a_technician_attaches_a_photo_and_a_signature_offline() {
    pollster::block_on(async {
        let (dir, path, demo) = setup().await;
        let tech = Crm::open(path.clone(), email(&demo, "field_tech")).await.expect("open");
        let admin = Crm::open(path.clone(), email(&demo, "admin")).await.expect("open");
        let contact = admin
            .create("contact".into(), r#"{"first_name": "Cleo"}"#.into())
            .await
            .expect("contact");
        let job = admin
            .create(
                "job".into(),
                serde_json::json!({"kind": "journey", "title": "Cleo to Elm St", "contact_id": contact.id,
                    "signature_required": true, "job_steps": [{"name": "Photos"}],
                    "crew_assignments": [{"user_id": tech.user_id(), "role": "driver",
                        "starts_at": "2025-06-02T08:00:00Z", "ends_at": "2025-06-02T17:00:00Z"}]})
                .to_string(),
            )
            .await
            .expect("job");
        let step = tech.children("job".into(), job.id.clone()).await.expect("steps")[0].items[0].clone();
        if let Some(last) = tech.pending_changes(1000).await.expect("pending").last() {
            tech.mark_synced(last.seq).await.expect("synced");
        }

        let photo_path = dir.path().join("IMG_0001.png");
        std::fs::write(&photo_path, png(1)).expect("photo");
        let sig_path = dir.path().join("signature.png");
        std::fs::write(&sig_path, png(2)).expect("signature");
        let photo = tech
            .attach(
                "job_step".into(),
                step.id.clone(),
                photo_path.to_string_lossy().into_owned(),
                AttachmentKind::Photo,
                None,
                None,
            )
            .await
            .expect("photo");
        assert_eq!(
            (photo.file_name.as_str(), photo.media_type.as_str(), photo.size),
            ("IMG_0001.png", "image/png", 80)
        );
        assert_eq!(photo.uploaded_by.as_deref(), Some(tech.user_id().as_str()));
        let sig = tech
            .attach(
                "job".into(),
                job.id.clone(),
                sig_path.to_string_lossy().into_owned(),
                AttachmentKind::Signature,
                Some("Cleo Ito".into()),
                None,
            )
            .await
            .expect("signature");
        assert!(sig.signed_at.is_some());
        let signed = tech.get("job".into(), job.id.clone()).await.expect("job");
        assert!(signed.json.contains(r#""customer_signed":true"#), "{}", signed.json);

        // The bytes are beside the database, stored once per content.
        let blobs = dir.path().join("crm.blobs");
        assert!(blobs.is_dir());
        assert_eq!(
            tech.attachment_content(photo.id.clone()).await.expect("content"),
            png(1)
        );
        let pending = tech.pending_uploads().await.expect("pending uploads");
        let ids: Vec<_> = pending.iter().map(|p| p.attachment.id.clone()).collect();
        assert_eq!(ids, [photo.id.clone(), sig.id.clone()]);
        assert_eq!(pending[1].attachment.sha256, sig.sha256);
        let listed = tech.attachments("job".into(), job.id.clone()).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, Some(AttachmentKind::Signature));

        // Deleted before the upload: it no longer waits; the job is unsigned again.
        tech.delete_attachment(sig.id.clone()).await.expect("delete");
        let left: Vec<_> = tech
            .pending_uploads()
            .await
            .expect("pending")
            .into_iter()
            .map(|p| p.attachment.id)
            .collect();
        assert_eq!(left, std::slice::from_ref(&photo.id));
        let unsigned = tech.get("job".into(), job.id.clone()).await.expect("job");
        assert!(
            unsigned.json.contains(r#""customer_signed":false"#),
            "{}",
            unsigned.json
        );

        let other_job = admin
            .create(
                "job".into(),
                serde_json::json!({"kind": "journey", "title": "Not theirs", "contact_id": contact.id}).to_string(),
            )
            .await
            .expect("job");
        let last = tech
            .pending_changes(1000)
            .await
            .expect("pending")
            .last()
            .expect("one")
            .seq;
        tech.mark_synced(last).await.expect("synced");
        assert!(tech.pending_uploads().await.expect("pending").is_empty());

        // Refusals are typed and write nothing.
        let big = dir.path().join("big.bin");
        std::fs::write(&big, vec![0u8; 10 * 1024 * 1024 + 1]).expect("big");
        let big = big.to_string_lossy().into_owned();
        match tech
            .attach("job".into(), job.id.clone(), big, AttachmentKind::Document, None, None)
            .await
        {
            Err(CrmError::LimitExceeded { code, limit, .. }) => {
                assert_eq!((code.as_str(), limit), ("limit_exceeded", 10 * 1024 * 1024))
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
        let p = photo_path.to_string_lossy().into_owned();
        for (entity, id) in [("job", other_job.id.clone()), ("activity", job.id.clone())] {
            match tech
                .attach(entity.into(), id, p.clone(), AttachmentKind::Photo, None, None)
                .await
            {
                Err(CrmError::NotFound { code, .. }) => assert_eq!(code, "not_found"),
                other => panic!("expected NotFound for {entity}, got {other:?}"),
            }
        }
        match tech
            .attach(
                "job".into(),
                job.id.clone(),
                dir.path().join("nope.png").to_string_lossy().into_owned(),
                AttachmentKind::Photo,
                None,
                None,
            )
            .await
        {
            Err(CrmError::Validation { fields, .. }) => assert_eq!(fields[0].path, "file_path"),
            other => panic!("expected Validation, got {other:?}"),
        }
        match tech
            .attach(
                "job".into(),
                job.id.clone(),
                p.clone(),
                AttachmentKind::Signature,
                None,
                None,
            )
            .await
        {
            Err(CrmError::Validation { fields, .. }) => assert_eq!(fields[0].code, "required"),
            other => panic!("expected Validation, got {other:?}"),
        }
        assert!(
            tech.pending_changes(1000).await.expect("pending").is_empty(),
            "refusals queue nothing"
        );
    });
}

#[test]
fn upserts_from_an_external_system_report_each_row() {
    pollster::block_on(async {
        let (_dir, path, demo) = setup().await;
        let admin = Crm::open(path.clone(), email(&demo, "admin")).await.expect("open");
        let rows = r#"[{"external_id": "c-1", "first_name": "Ann"}, {"external_id": "c-2", "first_name": "Bo", "email": "not an email"}]"#;
        let first = admin
            .upsert(
                "contact".into(),
                "scheduler".into(),
                rows.into(),
                UpsertMode::Upsert,
                false,
                false,
            )
            .await
            .expect("upsert");
        assert_eq!((first.created, first.rejected, first.applied), (1, 1, true));
        assert_eq!(first.results[1].outcome, RowOutcome::Rejected);
        assert_eq!(first.results[1].errors[0].path, "email");
        let again = admin
            .upsert(
                "contact".into(),
                "scheduler".into(),
                rows.into(),
                UpsertMode::Upsert,
                true,
                false,
            )
            .await
            .expect("upsert");
        assert_eq!((again.unchanged, again.rejected, again.applied), (1, 1, false));
        let created = admin
            .upsert(
                "contact".into(),
                "scheduler".into(),
                rows.into(),
                UpsertMode::CreateOnly,
                false,
                false,
            )
            .await
            .expect("upsert");
        assert_eq!(created.results[0].errors[0].code, "already_bound");
        match admin
            .upsert(
                "contact".into(),
                "scheduler".into(),
                "{}".into(),
                UpsertMode::Upsert,
                false,
                false,
            )
            .await
        {
            Err(CrmError::Validation { fields, .. }) => assert_eq!(fields[0].path, "rows_json"),
            other => panic!("expected Validation, got {other:?}"),
        }
    });
}

/// A stand-in for `crm serve`'s two sync routes, enough for `Crm::sync`'s HTTP client: one request
/// per connection, the bearer token is the user's id. (The real routes have their own HTTP tests in
/// crm-server/tests/sync.rs; this one exercises the device's round over a real socket.)
mod sync_server {
    use crm_core::service::Service;
    use crm_core::sync::PushRequest;
    use crm_core::value::Id;
    use crm_store::SqliteStore;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    pub fn start(svc: Arc<Service<SqliteStore>>, tenant: Id) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (status, body) = handle(&svc, tenant, &mut conn);
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&body));
            }
        });
        format!("http://{addr}")
    }

    fn handle(svc: &Service<SqliteStore>, tenant: Id, conn: &mut std::net::TcpStream) -> (u16, Vec<u8>) {
        let mut r = BufReader::new(conn);
        let mut line = String::new();
        r.read_line(&mut line).expect("request line");
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        let (mut len, mut user) = (0usize, None);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).expect("header");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').expect("header");
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().expect("length"),
                "authorization" => user = v.trim().strip_prefix("Bearer ").and_then(crm_core::value::parse_id),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("body");
        let problem =
            |status: u16, code: &str| (status, format!(r#"{{"code":"{code}","detail":"{code}"}}"#).into_bytes());
        let Some(actor) = user.and_then(|u| pollster::block_on(svc.actor(tenant, u)).ok()) else {
            return problem(401, "unauthorized");
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let answer = match path {
            "/api/v1/sync/push" => {
                let req: PushRequest = serde_json::from_slice(&body).expect("push body");
                serde_json::to_vec(&pollster::block_on(svc.replay_push(&actor, &req)).expect("replay"))
            }
            "/api/v1/sync/pull" => {
                let param = |k: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                };
                let limit = param("limit").and_then(|l| l.parse().ok()).unwrap_or(200);
                let page = pollster::block_on(svc.pull(&actor, param("cursor"), limit)).expect("pull");
                serde_json::to_vec(&page)
            }
            _ => return problem(404, "not_found"),
        };
        (200, answer.expect("json"))
    }
}

/// Copies a closed database file (the demo loader's) for another device or the server.
fn copy_db(from: &str, dir: &std::path::Path, name: &str) -> String {
    let to = dir.join(name);
    std::fs::copy(from, &to).expect("copy");
    to.to_string_lossy().into_owned()
}

#[test]
fn two_phones_sync_through_a_server_and_converge() {
    pollster::block_on(async {
        let (dir, path, demo) = setup().await;
        let tenant = crm_core::value::parse_id(&demo.tenant_id).expect("tenant");
        let server_path = copy_db(&path, dir.path(), "server.db");
        let phone_b = copy_db(&path, dir.path(), "phone-b.db");
        let server = Arc::new(Service::new(
            SqliteStore::open(&server_path).expect("server db"),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
        ));
        let url = sync_server::start(server.clone(), tenant);
        let manager_email = email(&demo, "manager");
        let a = Crm::open(path, manager_email.clone()).await.expect("phone a");
        let b = Crm::open(phone_b, manager_email).await.expect("phone b");
        let token = a.user_id();

        // First sync of both: nothing to push, a snapshot down.
        let first = a
            .sync(url.clone(), token.clone(), "phone-a".into())
            .await
            .expect("sync a");
        assert!(
            first.pull.reset && first.pull.upserts > 0 && !first.pull.more,
            "{first:?}"
        );
        b.sync(url.clone(), token.clone(), "phone-b".into())
            .await
            .expect("sync b");

        // Offline: both phones edit the same lead (different fields), phone B deletes another
        // lead that phone A edits.
        let leads = a.list_leads(ListQuery::default()).await.expect("leads").items;
        let (shared, doomed) = (&leads[0], &leads[1]);
        a.update_lead(shared.id.clone(), shared.version, r#"{"notes": "from A"}"#.into())
            .await
            .expect("a edits");
        a.update_lead(doomed.id.clone(), doomed.version, r#"{"city": "Hull"}"#.into())
            .await
            .expect("a edits the doomed lead");
        b.update_lead(shared.id.clone(), shared.version, r#"{"city": "York"}"#.into())
            .await
            .expect("b edits");
        b.delete("lead".into(), doomed.id.clone(), doomed.version)
            .await
            .expect("b deletes");

        // B syncs first; then A, whose edit of the deleted lead is refused and undone.
        let rb = b
            .sync(url.clone(), token.clone(), "phone-b".into())
            .await
            .expect("sync b");
        assert_eq!((rb.push.accepted, rb.push.rejected), (2, 0), "{rb:?}");
        let ra = a
            .sync(url.clone(), token.clone(), "phone-a".into())
            .await
            .expect("sync a");
        assert_eq!((ra.push.merged, ra.push.rejected), (1, 1), "{ra:?}");
        let refused = a.sync_rejections(10).await.expect("rejections");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].code, "not_found");
        assert!(matches!(
            a.get_lead(doomed.id.clone()).await,
            Err(CrmError::NotFound { .. })
        ));
        // B catches up with A's merge.
        b.sync(url.clone(), token.clone(), "phone-b".into())
            .await
            .expect("sync b");

        // Both phones hold the server's lead, field for field and version for version.
        let manager =
            pollster::block_on(server.actor(tenant, crm_core::value::parse_id(&token).expect("id"))).expect("actor");
        let on_server = server.get(&manager, "lead", crm_core::value::parse_id(&shared.id).expect("id"));
        let on_server = pollster::block_on(on_server).expect("server lead");
        assert_eq!(
            (on_server.str("notes"), on_server.str("city")),
            (Some("from A"), Some("York"))
        );
        for phone in [&a, &b] {
            let l = phone.get_lead(shared.id.clone()).await.expect("lead");
            assert_eq!(
                (l.notes.as_deref(), l.city.as_deref(), l.version),
                (Some("from A"), Some("York"), on_server.version)
            );
            assert!(phone.pending_changes(10).await.expect("pending").is_empty());
        }

        // A refused token and a server out of reach are typed errors; nothing is lost.
        a.update_lead(shared.id.clone(), on_server.version, r#"{"notes": "later"}"#.into())
            .await
            .expect("edit");
        match a.sync(url.clone(), "nobody".into(), "phone-a".into()).await {
            Err(CrmError::Remote { status: 401, code, .. }) => assert_eq!(code, "unauthorized"),
            other => panic!("expected a refused token, got {other:?}"),
        }
        match a
            .sync("http://127.0.0.1:9".into(), token.clone(), "phone-a".into())
            .await
        {
            Err(CrmError::Remote { status: 0, code, .. }) => assert_eq!(code, "unreachable"),
            other => panic!("expected an unreachable server, got {other:?}"),
        }
        assert!(matches!(
            a.sync("ftp://x".into(), token.clone(), "phone-a".into()).await,
            Err(CrmError::Validation { .. })
        ));
        assert_eq!(a.pending_changes(10).await.expect("pending").len(), 1);
    })
}
