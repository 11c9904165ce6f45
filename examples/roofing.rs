//! A roofing company embeds the core with a SQLite file: a lead comes in, a field tech visits,
//! the score moves and explains itself, the lead converts into a customer.
//!
//! `cargo run -p crm-examples --example roofing`

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::query::{ListRequest, SortKey};
use crm_core::service::{ConvertOptions, Service};
use serde_json::{Map, Value, json};
use std::sync::Arc;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn main() -> Result<(), crm_core::Error> {
    let path = std::env::temp_dir().join(format!("roofing-example-{}.db", std::process::id()));
    let store = crm_store::SqliteStore::open(&path)?;
    let svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds));
    pollster::block_on(async {
        let org = svc
            .create_organization(&obj(json!({"name": "Ridgeline Roofing"})))
            .await?;
        let admin = Actor::system(org.id);
        let team = svc
            .create(&admin, "team", &obj(json!({"name": "Crew North", "kind": "crew"})))
            .await?;
        let tech = svc
            .create(&admin, "user", &obj(json!({"name": "Finn", "email": "finn@ridgeline.example", "role": "field_tech", "team_id": team.id.to_string()})))
            .await?;
        let finn = svc.actor(org.id, tech.id).await?;

        let lead = svc
            .create(
                &admin,
                "lead",
                &obj(json!({
                    "first_name": "Ann", "last_name": "Lee", "phone": "(303) 555-0142", "source": "Storm Canvass",
                    "project_type": "storm_damage", "estimated_value": "18,500", "owner_id": tech.id.to_string()
                })),
            )
            .await?;
        println!(
            "new lead {} scored {} ({})",
            lead.id,
            lead.get("score").and_then(|v| v.as_i64()).unwrap_or(0),
            lead.str("temperature").unwrap_or("")
        );

        // The field tech sees only their assigned leads, visits, and moves the lead along.
        let mine = svc
            .list(
                &finn,
                "lead",
                &ListRequest {
                    sort: vec![SortKey::desc("score")],
                    ..Default::default()
                },
            )
            .await?;
        println!("Finn sees {} lead(s)", mine.items.len());
        let now = svc.now().to_rfc3339();
        svc.log_activity(&finn, &obj(json!({"kind": "visit", "direction": "outbound", "occurred_at": now, "lead_id": lead.id.to_string(), "outcome": "inspected"})))
            .await?;
        let lead = svc
            .update(
                &finn,
                "lead",
                lead.id,
                lead.version,
                &obj(json!({"status": "qualified", "notes": "hail damage, north slope"})),
            )
            .await?;
        match svc
            .update(
                &finn,
                "lead",
                lead.id,
                lead.version,
                &obj(json!({"estimated_value": "1"})),
            )
            .await
        {
            Err(e) => println!("Finn may not change the value: {e}"),
            Ok(_) => println!("unexpected: a field tech changed a lead's value"),
        }

        let why = svc.explain_score(&admin, lead.id, None).await?;
        println!("score {} ({}):", why.score, why.temperature.key());
        for c in &why.contributions {
            println!("  {:+4}  {} / {}", c.points, c.group, c.rule);
        }

        let conv = svc
            .convert_lead(&admin, lead.id, lead.version, &ConvertOptions::default())
            .await?;
        println!(
            "converted into contact {} ({})",
            conv.contact.id,
            conv.contact.str("first_name").unwrap_or("")
        );
        Ok::<_, crm_core::Error>(())
    })?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
