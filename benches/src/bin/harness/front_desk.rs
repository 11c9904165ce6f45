//! The esports centre's front desk (SQLite): N clients with card numbers and one membership each,
//! seeded through the service's CSV import (contacts, then memberships, which derives each client's
//! mirrored standing). Measures, each beside raw rusqlite on the same file:
//!
//! - `card_lookup`: the desk types a card number: `list(contact, q = "external_id:<card>")` against
//!   `SELECT <all columns> FROM contacts WHERE org_id = ? AND external_id = ?`;
//! - `expiring_this_week`: the first page (50) of clients whose membership ends within the tenant's
//!   window (set to 7 days), by end date: `list(contact, q = "membership:expiring")` against the same
//!   predicate written by hand on the mirrored columns;
//! - `check_in`: the check-in use case by card number (find the client, read the memberships,
//!   decide, write the check-in with its audit entry, event and visit count), against a raw
//!   transaction doing the least the same answer needs: the client by card, its memberships, one
//!   insert of the check-in row.

use super::{Res, Svc, alternate, block, decode_row, emit, obj, per_op, read_columns, uuid_of};
use crm_core::access::Actor;
use crm_core::demo::{FIRST, LAST, Rng};
use crm_core::entity::{CHECK_IN, CONTACT, MEMBERSHIP};
use crm_core::query::{ListRequest, SortKey};
use crm_core::service::{CheckInInput, ImportMode, ImportOptions};
use crm_core::value::{Id, Timestamp};
use rusqlite::Connection;
use serde_json::json;
use std::fmt::Write as _;
use std::hint::black_box;

pub(crate) fn run(
    svc: &Svc,
    tenant: Id,
    raw: &mut Connection,
    raw_r: &Connection,
    clients: usize,
    ops: usize,
    rounds: usize,
) -> Res<()> {
    let system = Actor::system(tenant);
    let now = svc.now();
    let today = now.date();
    let day = |n: i64| Timestamp::from_date(today).plus_days(n).date().to_string();
    // "Expiring this week": the tenant's window is data.
    let org = block(svc.get(&system, "organization", tenant))?;
    block(svc.update(
        &system,
        "organization",
        tenant,
        org.version,
        &obj(json!({"membership_expiring_days": 7})),
    ))?;
    let plan = block(svc.create(
        &system,
        "plan",
        &obj(json!({"name": "Monthly", "duration_days": 30, "price": "39.00"})),
    ))?;
    let desk = block(svc.create(
        &system,
        "user",
        &obj(json!({"name": "Desk", "email": "desk@bench.test", "role": "staff"})),
    ))?;
    let staff = block(svc.actor(tenant, desk.id))?;

    // ---- seed: contacts with cards, then one membership each, then the mirrored standing ----
    let mut rng = Rng(0xDE5C);
    let mut csv = String::from("first_name,last_name,email,external_id\n");
    for i in 0..clients {
        let (f, l) = (rng.pick(FIRST), rng.pick(LAST));
        writeln!(
            csv,
            "{f},{l},{}.{}{i}@mail.example,C{i:07}",
            f.to_lowercase(),
            l.to_lowercase()
        )?;
    }
    let all = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let r = block(svc.import_csv(&system, "contact", csv.as_bytes(), &all))?;
    if r.created as usize != clients {
        return Err(format!(
            "front desk: {} of {clients} clients imported: {:?}",
            r.created,
            r.errors.first()
        )
        .into());
    }
    let ids: Vec<Id> = {
        let mut st =
            raw.prepare("SELECT id FROM contacts WHERE org_id = ?1 AND external_id LIKE 'C%' ORDER BY external_id")?;
        let rows = st.query_map([&tenant.as_bytes()[..]], |r| Ok(uuid_of(&r.get_ref(0)?.into())))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect()
    };
    let mut csv = String::from("contact_id,plan_id,starts_on,ends_on,price_paid\n");
    for id in &ids {
        // Ends anywhere from two months ago to ten months ahead; lasts 30 to 365 days.
        let ends = rng.below(360) as i64 - 60;
        let days = 30 + rng.below(336) as i64;
        writeln!(csv, "{id},{},{},{},39.00", plan.id, day(ends - days + 1), day(ends))?;
    }
    let r = block(svc.import_csv(&system, "membership", csv.as_bytes(), &all))?;
    if r.created as usize != clients {
        return Err(format!(
            "front desk: {} of {clients} memberships imported: {:?}",
            r.created,
            r.errors.first()
        )
        .into());
    }
    eprintln!(
        "front desk: seeded {clients} clients with memberships in {:?}",
        t0.elapsed()
    );

    let tenant_b = tenant.as_bytes().to_vec();
    let cards: Vec<String> = (0..ops).map(|_| format!("C{:07}", rng.below(clients as u64))).collect();

    // ---- card_lookup ----
    let cols = read_columns(&CONTACT);
    let by_card = format!(
        "SELECT {} FROM contacts WHERE org_id = ?1 AND external_id = ?2",
        cols.join(", ")
    );
    let reqs: Vec<ListRequest> = cards
        .iter()
        .map(|c| ListRequest {
            q: Some(format!("external_id:{c}")),
            limit: Some(1),
            ..Default::default()
        })
        .collect();
    let (mut raw_found, mut svc_found) = (0usize, 0usize);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            raw_found = 0;
            let mut st = raw_r.prepare_cached(&by_card)?;
            for c in &cards {
                let mut q = st.query((&tenant_b[..], c.as_str()))?;
                while let Some(r) = q.next()? {
                    raw_found += 1;
                    black_box(decode_row(r, cols.len())?);
                }
            }
            Ok(())
        },
        |_| {
            svc_found = 0;
            for req in &reqs {
                let page = block(svc.list(&staff, "contact", req))?;
                svc_found += page.items.len();
                black_box(page);
            }
            Ok(())
        },
    )?;
    if raw_found != ops || svc_found != ops {
        eprintln!("WARNING card_lookup: found {raw_found} (raw) and {svc_found} (service) of {ops}");
    }
    emit(
        "card_lookup",
        per_op(svc_t, ops, 1e6),
        "us/op",
        Some(per_op(raw_t, ops, 1e6)),
        ops,
    );

    // ---- expiring_this_week: the first page, by end date ----
    let (from, to) = (day(0), day(7));
    let expiring = format!(
        "SELECT {} FROM contacts WHERE org_id = ?1 AND membership_starts_on IS NOT NULL AND membership_starts_on <= ?2 \
         AND membership_ends_on IS NOT NULL AND membership_ends_on >= ?2 AND membership_ends_on <= ?3 \
         AND (membership_cancelled IS NULL OR membership_cancelled = 0) \
         AND (membership_frozen_from IS NULL OR membership_frozen_to IS NULL OR membership_frozen_from > ?2 OR membership_frozen_to < ?2) \
         ORDER BY membership_ends_on, id LIMIT 51",
        cols.join(", ")
    );
    let req = ListRequest {
        q: Some("membership:expiring".into()),
        sort: vec![SortKey::asc("membership_ends_on")],
        limit: Some(50),
        ..Default::default()
    };
    let pages = (ops / 10).max(20);
    let (mut raw_ids, mut svc_ids) = (Vec::new(), Vec::new());
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            let mut st = raw_r.prepare_cached(&expiring)?;
            for _ in 0..pages {
                let mut q = st.query((&tenant_b[..], from.as_str(), to.as_str()))?;
                let mut page = Vec::with_capacity(51);
                while let Some(r) = q.next()? {
                    page.push(decode_row(r, cols.len())?);
                }
                page.truncate(50);
                raw_ids = page.iter().map(|r| uuid_of(&r[0])).collect();
                black_box(page);
            }
            Ok(())
        },
        |_| {
            for _ in 0..pages {
                let page = block(svc.list(&staff, "contact", &req))?;
                svc_ids = page.items.iter().map(|r| Some(r.id)).collect();
                black_box(page);
            }
            Ok(())
        },
    )?;
    if raw_ids != svc_ids || svc_ids.is_empty() {
        eprintln!(
            "WARNING expiring_this_week: raw and service pages differ ({} and {} rows)",
            raw_ids.len(),
            svc_ids.len()
        );
    }
    emit(
        "expiring_this_week",
        per_op(svc_t, pages, 1e6),
        "us/op",
        Some(per_op(raw_t, pages, 1e6)),
        pages,
    );

    // ---- check_in: the use case against the least raw work giving the same answer ----
    let ms_cols = read_columns(&MEMBERSHIP);
    let memberships = format!(
        "SELECT {} FROM memberships WHERE org_id = ?1 AND contact_id = ?2",
        ms_cols.join(", ")
    );
    let raw_table = super::clone_table(raw, CHECK_IN.table, true)?;
    let insert = format!(
        "INSERT INTO {raw_table} (id, org_id, version, created_at, updated_at, contact_id, membership_id, at, outcome, membership_status) \
         VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?3, 'allowed', 'active')"
    );
    let at = now.0;
    let mut seq = 0u64;
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            for c in &cards {
                raw.execute_batch("BEGIN IMMEDIATE")?;
                {
                    let contact: Vec<rusqlite::types::Value> = raw
                        .prepare_cached(&by_card)?
                        .query_row((&tenant_b[..], c.as_str()), |r| decode_row(r, cols.len()))?;
                    let mut st = raw.prepare_cached(&memberships)?;
                    let mut q = st.query((&tenant_b[..], uuid_bytes(&contact[0])))?;
                    let mut membership = None;
                    while let Some(r) = q.next()? {
                        membership = Some(decode_row(r, ms_cols.len())?);
                    }
                    seq += 1;
                    let id = Id::from_u128((1u128 << 100) | u128::from(seq));
                    raw.prepare_cached(&insert)?.execute((
                        &id.as_bytes()[..],
                        &tenant_b[..],
                        at,
                        uuid_bytes(&contact[0]),
                        membership.as_ref().map(|m| uuid_bytes(&m[0])),
                    ))?;
                }
                raw.execute_batch("COMMIT")?;
            }
            Ok(())
        },
        |_| {
            for c in &cards {
                let input = CheckInInput {
                    card: Some(c.clone()),
                    ..Default::default()
                };
                black_box(block(svc.check_in(&staff, &input))?);
            }
            Ok(())
        },
    )?;
    emit(
        "check_in",
        per_op(svc_t, ops, 1e6),
        "us/op",
        Some(per_op(raw_t, ops, 1e6)),
        ops,
    );
    raw.execute_batch(&format!("DROP TABLE {raw_table}"))?;
    Ok(())
}

/// A stored id's bytes (ids are 16-byte blobs).
fn uuid_bytes(v: &rusqlite::types::Value) -> Vec<u8> {
    match v {
        rusqlite::types::Value::Blob(b) => b.clone(),
        _ => Vec::new(),
    }
}
