//! Sync (SQLite at both ends, issue 17): a server file of its own where one sales user owns `n`
//! leads, and devices provisioned from a copy of that file taken before the leads existed (the
//! tenant and its users, as a device is provisioned). Measures, each beside the same work done
//! directly in the same run:
//!
//! - `sync_initial_server` / `sync_initial_device`: the first sync of a new device, both ends: the
//!   server answering pulls of 1,000 (`Service::pull`, each page serialised to JSON as the HTTP
//!   route sends it) and the device applying them (`Service::apply_pull`, from that JSON), beside
//!   raw rusqlite reading the user's leads by keyset in pages of 1,000 and inserting them into a
//!   copy of the same device file, a transaction per page. `*_heap`: the growth of the process's
//!   anonymous memory during each end (its highest sample, one per page); `*_peak_rss`: the growth
//!   of its peak resident set, which also counts SQLite's page cache and mapped file pages; each
//!   beside the raw copy's.
//! - `sync_push_replay`: 1,000 change sets made offline on the device (an edit of a lead each),
//!   pushed in one request and replayed on the server under the user's identity (JSON both ways,
//!   the answer applied on the device), beside the same 1,000 edits made directly on the server
//!   through `Service::update` (other leads of the same user). `sync_push_device`: the device's
//!   side alone (preparing the push, applying the answer).

use super::proc_mem::Phase as Mem;
use super::{
    Res, Svc, block, check_import, emit, gen_leads, insert_columns, insert_sql, lead_csv, obj, read_columns,
    setup_tenant, time,
};
use crm_core::access::Actor;
use crm_core::clock::{Clock, RandomIds, SystemClock};
use crm_core::demo::Rng;
use crm_core::entity::LEAD;
use crm_core::query::ListRequest;
use crm_core::record::Record;
use crm_core::service::{ImportMode, ImportOptions, Service};
use crm_core::sync::{PullPage, PushAnswer, PushRequest};
use crm_core::value::Id;
use crm_store::{AnyStore, SqliteStore};
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Records per pull page: the protocol's maximum (`MAX_PULL_LIMIT`), as a device catching up asks.
const PAGE: u32 = crm_core::sync::MAX_PULL_LIMIT;
/// Change sets pushed (the protocol's maximum per request, `MAX_PUSH_ENTRIES`).
const PUSHED: usize = crm_core::sync::MAX_PUSH_ENTRIES;

pub(crate) fn run(dir: &Path, n: usize, rng: &mut Rng) -> Res<()> {
    let server_path = dir.join("sync-server.db");
    let device_path = dir.join("sync-device.db");
    let raw_device_path = dir.join("sync-device-raw.db");
    let store = Arc::new(AnyStore::from(SqliteStore::open(&server_path)?));
    let server: Svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds));
    let t = setup_tenant(&server)?;
    // Devices are provisioned with the tenant and its users, before any lead exists.
    {
        let c = Connection::open(&server_path)?;
        for p in [&device_path, &raw_device_path] {
            c.execute("VACUUM INTO ?1", [p.to_str().ok_or("a non-UTF-8 temp path")?])?;
        }
    }
    // Every lead is owned by one sales user (index 1 of the owners: the first sales user).
    let seller = &t.sales[0];
    let rows = gen_leads(rng, n, 1, "S", SystemClock.now());
    let csv = lead_csv(&rows, &t.owners[1..2]);
    let opts = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    check_import(
        "lead (sync)",
        &block(server.import_csv(&t.manager, "lead", csv.as_slice(), &opts))?,
        n,
    )?;
    drop((rows, csv));

    // ---- the first sync of a new device ----
    let pages = dir.join("sync-pages.jsonl");
    let mut mem = Mem::start();
    let (server_t, pulled) = time(|| pull_all(&server, seller, &pages, &mut mem))?;
    let server_peak = mem.growth();
    let device = device_service(&device_path)?;
    let me = block(device.actor(t.tenant, seller.user_id.ok_or("the seller has no user id")?))?;
    let mut mem = Mem::start();
    let (device_t, applied) = time(|| apply_all(&device, &me, &pages, &mut mem))?;
    let device_peak = mem.growth();
    std::fs::remove_file(&pages)?;
    let held: u64 =
        Connection::open(&device_path)?.query_row(&format!("SELECT count(*) FROM {}", LEAD.table), [], |r| r.get(0))?;
    if held != n as u64 || applied < n {
        return Err(format!("the device holds {held} of {n} leads after applying {applied} records").into());
    }
    let mut mem = Mem::start();
    let ((raw_read_t, raw_write_t), copied) = raw_copy(&server_path, &raw_device_path, t.tenant, seller, &mut mem)?;
    let raw_peak = mem.growth();
    if copied != n {
        return Err(format!("the raw copy read {copied} of {n} leads").into());
    }
    eprintln!(
        "sync initial ({pulled} records): server {server_t:?} (raw read {raw_read_t:?}), device {device_t:?} \
         (raw insert {raw_write_t:?}); anonymous memory growth (peak resident growth, with the page cache \
         and mapped file pages) server {:.1} MiB ({:.1}), device {:.1} MiB ({:.1}), raw copy {:.1} MiB ({:.1})",
        server_peak.0, server_peak.1, device_peak.0, device_peak.1, raw_peak.0, raw_peak.1
    );
    let secs = Duration::as_secs_f64;
    emit("sync_initial_server", secs(&server_t), "s", Some(secs(&raw_read_t)), n);
    emit("sync_initial_device", secs(&device_t), "s", Some(secs(&raw_write_t)), n);
    emit(
        "sync_initial",
        secs(&(server_t + device_t)),
        "s",
        Some(secs(&(raw_read_t + raw_write_t))),
        n,
    );
    emit(
        "sync_initial_rate",
        n as f64 / secs(&(server_t + device_t)),
        "leads/s",
        Some(n as f64 / secs(&(raw_read_t + raw_write_t))),
        n,
    );
    emit("sync_initial_server_heap", server_peak.0, "MiB", Some(raw_peak.0), n);
    emit("sync_initial_device_heap", device_peak.0, "MiB", Some(raw_peak.0), n);
    emit(
        "sync_initial_server_peak_rss",
        server_peak.1,
        "MiB",
        Some(raw_peak.1),
        n,
    );
    emit(
        "sync_initial_device_peak_rss",
        device_peak.1,
        "MiB",
        Some(raw_peak.1),
        n,
    );

    // ---- a push of 1,000 offline change sets ----
    // The device edits the first 1,000 of the user's leads, the server the next 1,000 directly.
    let leads = first_leads(&server, seller, 2 * PUSHED)?;
    if leads.len() < 2 * PUSHED {
        return Err(format!("the push needs {} leads; the sync leads are too few", 2 * PUSHED).into());
    }
    let (offline, direct) = leads.split_at(PUSHED);
    let patch = |i: usize| obj(json!({"priority": "high", "notes": format!("Called back on site visit {i}")}));
    let (offline_t, ()) = time(|| {
        for (i, r) in offline.iter().enumerate() {
            block(device.update(&me, "lead", r.id, r.version, &patch(i)))?;
        }
        Ok(())
    })?;
    let (direct_t, ()) = time(|| {
        for (i, r) in direct.iter().enumerate() {
            block(server.update(seller, "lead", r.id, r.version, &patch(i)))?;
        }
        Ok(())
    })?;
    let (prepare_t, body) = time(|| {
        Ok(serde_json::to_vec(&block(device.prepare_push(
            &me,
            "bench-phone",
            PUSHED as u32,
        ))?)?)
    })?;
    let (replay_t, answer) = time(|| {
        let req: PushRequest = serde_json::from_slice(&body)?;
        Ok(serde_json::to_vec(&block(server.replay_push(seller, &req))?)?)
    })?;
    let (apply_t, outcome) = time(|| {
        let req: PushRequest = serde_json::from_slice(&body)?;
        let answer: PushAnswer = serde_json::from_slice(&answer)?;
        Ok(block(device.apply_push_answer(&me, &req, &answer))?)
    })?;
    if outcome.accepted as usize != PUSHED || outcome.pending + outcome.rejected + outcome.merged > 0 {
        return Err(format!("the push of {PUSHED} change sets: {outcome:?}").into());
    }
    eprintln!(
        "sync push of {PUSHED}: offline edits {offline_t:?}, prepare {prepare_t:?}, replay {replay_t:?}, \
         apply answer {apply_t:?}; the same edits direct on the server {direct_t:?}"
    );
    emit("sync_push_replay", secs(&replay_t), "s", Some(secs(&direct_t)), PUSHED);
    emit(
        "sync_push_device",
        secs(&(prepare_t + apply_t)),
        "s",
        Some(secs(&direct_t)),
        PUSHED,
    );
    emit(
        "sync_offline_edits",
        secs(&offline_t),
        "s",
        Some(secs(&direct_t)),
        PUSHED,
    );
    Ok(())
}

/// A device's service: its SQLite file with the sync log on, as the mobile face opens it.
fn device_service(path: &Path) -> Res<Service<SqliteStore>> {
    let store = SqliteStore::open(path)?.with_sync_log(true);
    Ok(Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds)))
}

/// Pulls from the start until caught up, each page serialised as a JSON line into `out` (what the
/// HTTP route writes); returns the records sent.
fn pull_all(server: &Svc, actor: &Actor, out: &Path, mem: &mut Mem) -> Res<usize> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let (mut cursor, mut records) = (None::<String>, 0);
    loop {
        let page = block(server.pull(actor, cursor.as_deref(), PAGE))?;
        records += page.upserts.len() + page.removals.len();
        serde_json::to_writer(&mut w, &page)?;
        w.write_all(b"\n")?;
        mem.sample();
        if !page.more {
            break;
        }
        cursor = Some(page.next);
    }
    w.flush()?;
    Ok(records)
}

/// Applies the pages in `from` (one JSON line each) in order; returns the records written.
fn apply_all(device: &Service<SqliteStore>, me: &Actor, from: &Path, mem: &mut Mem) -> Res<usize> {
    use std::io::BufRead;
    let mut written = 0;
    for line in std::io::BufReader::new(std::fs::File::open(from)?).lines() {
        let page: PullPage = serde_json::from_str(&line?)?;
        written += block(device.apply_pull(me, &page))?.upserts as usize;
        mem.sample();
    }
    Ok(written)
}

/// The raw first sync: the user's leads (every column) by keyset, 1,000 a page, each page inserted
/// into the device file in a transaction of its own. Returns (read time, insert time) and the rows.
fn raw_copy(from: &Path, to: &Path, tenant: Id, owner: &Actor, mem: &mut Mem) -> Res<((Duration, Duration), usize)> {
    let src = super::raw_connection(from, true)?;
    let mut dst = super::raw_connection(to, false)?;
    let cols = read_columns(&LEAD);
    let select = format!(
        "SELECT {}, org_id FROM {} WHERE org_id = ?1 AND owner_id = ?2 AND id > ?3 ORDER BY id LIMIT {PAGE}",
        cols.join(", "),
        LEAD.table
    );
    // The insert's columns in the select's order (org_id last).
    let mut ins_cols = cols.clone();
    ins_cols.push("org_id");
    debug_assert_eq!(ins_cols.len(), insert_columns(&LEAD).len());
    let insert = insert_sql(LEAD.table, &ins_cols);
    let (mut read_t, mut write_t, mut rows) = (Duration::ZERO, Duration::ZERO, 0);
    let owner_id = owner.user_id.ok_or("the owner has no user id")?;
    let mut after = SqlValue::Blob(vec![0; 16]);
    let mut st = src.prepare(&select)?;
    loop {
        let (dt, page) = time(|| {
            let mut q = st.query(rusqlite::params![tenant.as_bytes(), owner_id.as_bytes(), &after])?;
            let mut page = Vec::with_capacity(PAGE as usize);
            while let Some(r) = q.next()? {
                page.push(super::decode_row(r, ins_cols.len())?);
            }
            Ok(page)
        })?;
        read_t += dt;
        let Some(last) = page.last() else { break };
        after = last[0].clone();
        rows += page.len();
        let (dt, ()) = time(|| {
            let tx = dst.transaction()?;
            {
                let mut ins = tx.prepare_cached(&insert)?;
                for r in &page {
                    ins.execute(rusqlite::params_from_iter(r.iter()))?;
                }
            }
            tx.commit()?;
            Ok(())
        })?;
        write_t += dt;
        mem.sample();
    }
    Ok(((read_t, write_t), rows))
}

/// The first `n` leads `actor` may read, in id order.
fn first_leads(svc: &Svc, actor: &Actor, n: usize) -> Res<Vec<Record>> {
    let mut out = Vec::with_capacity(n);
    let mut cursor = None;
    while out.len() < n {
        let req = ListRequest {
            sort: vec![crm_core::query::SortKey::asc("id")],
            limit: Some(500),
            cursor: cursor.take(),
            ..Default::default()
        };
        let page = block(svc.list(actor, "lead", &req))?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.truncate(n);
    Ok(out)
}
