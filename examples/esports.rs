//! An esports centre: clients imported from a CSV with their membership card numbers and a custom
//! `plan` field, check-ins logged at the front desk, and front-desk staff who may edit only notes.
//!
//! `cargo run -p crm-examples --example esports`

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::query::ListRequest;
use crm_core::service::{ImportMode, ImportOptions, Service};
use serde_json::{Map, Value, json};
use std::sync::Arc;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

const CLIENTS: &str = "Card,First Name,Last Name,Email,Plan
EC-1001,Mia,Wong,mia@example.com,monthly
EC-1002,Leo,Berg,leo@example,annual
EC-1003,Ava,Ruiz,ava@example.com,day pass
";

fn main() -> Result<(), crm_core::Error> {
    let path = std::env::temp_dir().join(format!("esports-example-{}.db", std::process::id()));
    let svc = Service::new(
        crm_store::SqliteStore::open(&path)?,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    pollster::block_on(async {
        let org = svc.create_organization(&obj(json!({"name": "Pixel Arena"}))).await?;
        let admin = Actor::system(org.id);
        // A custom field, declared as data.
        svc.create(
            &admin,
            "custom_field",
            &obj(json!({"entity": "contact", "key": "plan", "label": "Membership plan",
            "spec": {"type": "enum", "options": ["monthly", "annual", "day_pass"], "required": true}})),
        )
        .await?;

        // Dry run first: a per-row, per-field report; nothing is written.
        let mut opts = ImportOptions {
            mode: ImportMode::DryRun,
            upsert: true,
            ..Default::default()
        };
        opts.mapping = [
            ("Card", "external_id"),
            ("First Name", "first_name"),
            ("Last Name", "last_name"),
            ("Email", "email"),
            ("Plan", "custom.plan"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let report = svc.import_csv(&admin, "contact", CLIENTS.as_bytes(), &opts).await?;
        for row in &report.errors {
            for e in &row.errors {
                println!(
                    "row {} (line {}): {} {} — {}",
                    row.row, row.line, e.path, e.code, e.message
                );
            }
        }
        opts.mode = ImportMode::ValidRowsOnly;
        let report = svc.import_csv(&admin, "contact", CLIENTS.as_bytes(), &opts).await?;
        println!("imported {} clients, {} rows rejected", report.created, report.invalid);

        let desk = svc
            .create(
                &admin,
                "user",
                &obj(json!({"name": "Stella", "email": "stella@pixel.example", "role": "staff"})),
            )
            .await?;
        let stella = svc.actor(org.id, desk.id).await?;
        let mia = svc
            .list(
                &stella,
                "contact",
                &ListRequest {
                    q: Some("external_id:EC-1001".into()),
                    ..Default::default()
                },
            )
            .await?
            .items
            .remove(0);
        svc.log_activity(
            &stella,
            &obj(json!({"kind": "check_in", "occurred_at": svc.now().to_rfc3339(), "contact_id": mia.id.to_string()})),
        )
        .await?;
        let mia = svc
            .update(
                &stella,
                "contact",
                mia.id,
                mia.version,
                &obj(json!({"notes": "left her headset at the desk"})),
            )
            .await?;
        println!("notes saved: {}", mia.str("notes").unwrap_or(""));
        if let Err(e) = svc
            .update(
                &stella,
                "contact",
                mia.id,
                mia.version,
                &obj(json!({"email": "other@example.com"})),
            )
            .await
        {
            println!("staff cannot change the email: {e} (code {})", e.code());
        }
        Ok::<_, crm_core::Error>(())
    })?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
