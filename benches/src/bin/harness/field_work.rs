//! Field work (SQLite): `jobs` jobs for a crew of 20, scheduled two to a day-slot (a morning and an
//! afternoon job per pair of crew members, so nobody is double-booked), each with three steps and
//! two crew assignments, seeded through the service's job create (steps and crew inline, the overlap
//! check and booking rows included). Measures, each beside raw rusqlite on the same file:
//!
//! - `my_day`: a crew member's day (`Service::my_day`: their assignments overlapping the day in time
//!   order, each job read in the member's scope, its open steps) against the assignments of the user
//!   overlapping the day joined to their jobs, then the open steps of those jobs, by hand;
//! - `dispatch_board`: the first page (50) of a day's board (`Service::board`: the day's jobs by
//!   truck and window with their crews) against the day's jobs by truck and window, then their crew.

use super::{Res, Svc, alternate, block, decode_row, emit, obj, per_op, read_columns};
use crm_core::access::Actor;
use crm_core::entity::{CREW_ASSIGNMENT, JOB, JOB_STEP};
use crm_core::query::ListRequest;
use crm_core::value::{Id, Timestamp};
use rusqlite::Connection;
use serde_json::json;
use std::hint::black_box;

/// Crew members; pairs of them take one morning and one afternoon job a day.
const CREW: usize = 20;
/// Jobs per day: a morning and an afternoon job per pair.
const PER_DAY: usize = CREW;

pub(crate) fn run(svc: &Svc, tenant: Id, raw_r: &Connection, jobs: usize, ops: usize, rounds: usize) -> Res<()> {
    let system = Actor::system(tenant);
    let contact = block(svc.create(
        &system,
        "contact",
        &obj(json!({"first_name": "Field", "last_name": "Customer"})),
    ))?;
    let mut crew = Vec::with_capacity(CREW);
    for i in 0..CREW {
        let u = block(svc.create(
            &system,
            "user",
            &obj(json!({"name": format!("Crew {i}"), "email": format!("crew{i}@bench.test"), "role": "field_tech"})),
        ))?;
        crew.push(block(svc.actor(tenant, u.id))?);
    }
    // Days from the first of next year on, in UTC (the tenant's zone in this benchmark).
    let first = Timestamp::parse("2031-01-01T00:00:00Z").ok_or("the first day does not parse")?;
    let days = jobs.div_ceil(PER_DAY).max(1);
    let t0 = std::time::Instant::now();
    for n in 0..jobs {
        let (day, slot) = (n / PER_DAY, n % PER_DAY);
        let midnight = first.plus_days(day as i64);
        let (from, to) = if slot % 2 == 0 {
            (midnight.plus_hours(8), midnight.plus_hours(12))
        } else {
            (midnight.plus_hours(13), midnight.plus_hours(17))
        };
        let pair = (slot / 2) * 2;
        let crew_json: Vec<_> = [pair, pair + 1]
            .iter()
            .zip(["driver", "mover"])
            .map(|(i, role)| {
                json!({"user_id": crew[*i].user_id.map(|u| u.to_string()), "role": role, "starts_at": from, "ends_at": to})
            })
            .collect();
        block(svc.create(
            &system,
            "job",
            &obj(
                json!({"kind": "journey", "title": format!("Journey {n}"), "contact_id": contact.id.to_string(),
                "scheduled_on": midnight.date().to_string(), "window_start": from, "window_end": to,
                "vehicle": format!("truck-{}", slot / 2), "address_line": format!("{n} Main St"), "city": "Chicago",
                "job_steps": [{"name": "Load"}, {"name": "Drive"}, {"name": "Unload"}], "crew_assignments": crew_json}),
            ),
        ))?;
    }
    eprintln!("field work: seeded {jobs} jobs over {days} days in {:?}", t0.elapsed());

    let tenant_b = tenant.as_bytes().to_vec();
    let mut rng = crm_core::demo::Rng(0xF1E1);
    let picks: Vec<(usize, usize)> = (0..ops).map(|_| (rng.index(CREW), rng.index(days))).collect();

    // ---- my_day ----
    let (job_cols, step_cols, crew_cols) = (
        read_columns(&JOB),
        read_columns(&JOB_STEP),
        read_columns(&CREW_ASSIGNMENT),
    );
    let assignments = format!(
        "SELECT {}, {} FROM crew_assignments a JOIN jobs j ON j.org_id = a.org_id AND j.id = a.job_id \
         WHERE a.org_id = ?1 AND a.user_id = ?2 AND a.starts_at < ?3 AND a.ends_at > ?4 ORDER BY a.starts_at, a.id",
        crew_cols
            .iter()
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        job_cols.iter().map(|c| format!("j.{c}")).collect::<Vec<_>>().join(", "),
    );
    let open_steps = format!(
        "SELECT {} FROM job_steps WHERE org_id = ?1 AND job_id = ?2 AND status IN ('pending', 'in_progress') \
         ORDER BY position, id",
        step_cols.join(", ")
    );
    let (mut raw_items, mut svc_items) = (0usize, 0usize);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            raw_items = 0;
            let mut st = raw_r.prepare_cached(&assignments)?;
            let mut steps = raw_r.prepare_cached(&open_steps)?;
            for (who, day) in &picks {
                let me = crew[*who].user_id.ok_or("crew member without a user")?;
                let start = first.plus_days(*day as i64);
                let mut q = st.query((&tenant_b[..], &me.as_bytes()[..], start.plus_days(1).0, start.0))?;
                let mut jobs = Vec::new();
                while let Some(r) = q.next()? {
                    let row = decode_row(r, crew_cols.len() + job_cols.len())?;
                    jobs.push(row[crew_cols.len()].clone());
                    black_box(row);
                    raw_items += 1;
                }
                for j in jobs {
                    let mut s = steps.query((&tenant_b[..], j))?;
                    while let Some(r) = s.next()? {
                        black_box(decode_row(r, step_cols.len())?);
                    }
                }
            }
            Ok(())
        },
        |_| {
            svc_items = 0;
            for (who, day) in &picks {
                let date = first.plus_days(*day as i64).date();
                let items = block(svc.my_day(&crew[*who], Some(date)))?;
                svc_items += items.len();
                black_box(items);
            }
            Ok(())
        },
    )?;
    if raw_items != svc_items {
        eprintln!("WARNING my_day: {raw_items} items (raw) and {svc_items} (service)");
    }
    emit(
        "my_day",
        per_op(svc_t, ops, 1e6),
        "us/op",
        Some(per_op(raw_t, ops, 1e6)),
        ops,
    );

    // ---- dispatch_board: the first page of a day ----
    let board_jobs = format!(
        "SELECT {} FROM jobs WHERE org_id = ?1 AND scheduled_on = ?2 ORDER BY vehicle, window_start, id LIMIT 51",
        job_cols.join(", ")
    );
    let crew_of = format!(
        "SELECT {} FROM crew_assignments WHERE org_id = ?1 AND job_id = ?2 ORDER BY starts_at, id",
        crew_cols.join(", ")
    );
    let (mut raw_jobs, mut svc_jobs) = (0usize, 0usize);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            raw_jobs = 0;
            let mut st = raw_r.prepare_cached(&board_jobs)?;
            let mut cr = raw_r.prepare_cached(&crew_of)?;
            for (_, day) in &picks {
                let date = first.plus_days(*day as i64).date().to_string();
                let mut q = st.query((&tenant_b[..], date.as_str()))?;
                let mut ids = Vec::new();
                while let Some(r) = q.next()? {
                    let row = decode_row(r, job_cols.len())?;
                    ids.push(row[0].clone());
                    black_box(row);
                }
                ids.truncate(50);
                raw_jobs += ids.len();
                for id in ids {
                    let mut c = cr.query((&tenant_b[..], id))?;
                    while let Some(r) = c.next()? {
                        black_box(decode_row(r, crew_cols.len())?);
                    }
                }
            }
            Ok(())
        },
        |_| {
            svc_jobs = 0;
            let req = ListRequest::default();
            for (_, day) in &picks {
                let board = block(svc.board(&system, first.plus_days(*day as i64).date(), &req))?;
                svc_jobs += board.jobs.len();
                black_box(board);
            }
            Ok(())
        },
    )?;
    if raw_jobs != svc_jobs {
        eprintln!("WARNING dispatch_board: {raw_jobs} jobs (raw) and {svc_jobs} (service)");
    }
    emit(
        "dispatch_board",
        per_op(svc_t, ops, 1e6),
        "us/op",
        Some(per_op(raw_t, ops, 1e6)),
        ops,
    );
    Ok(())
}
