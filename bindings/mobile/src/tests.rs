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
