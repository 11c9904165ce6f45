//! The benchmark harness: seeds a SQLite file through the service, then measures the hot use cases
//! against raw rusqlite doing the same work on the same file in the same run. With
//! `--database postgres://...` it does the same over the PostgreSQL store, against the same SQL run
//! through sqlx directly on the same database (see `harness/pg.rs`); the quote measurements
//! (`create_quote`, `list_quotes`) run on SQLite only.
//!
//! stdout: one JSON object per line, `{"name", "value", "unit", "baseline", "baseline_unit", "ratio",
//! "n"}`; `ratio = value / baseline` (lower is better) on time lines. Everything else goes to stderr.
//!
//! ```text
//! cargo run --release -p crm-bench --bin harness -- [--leads N] [--database PATH|postgres://...] [--quick]
//! ```

use clap::Parser;
use crm_core::access::{Actor, Scope};
use crm_core::clock::{Clock, IdGen, RandomIds, SystemClock};
use crm_core::demo::{CITIES, FIRST, LAST, OUTCOMES, PROJECTS, Rng, STATUSES};
use crm_core::entity::quote::{self, QUOTE, QUOTE_LINE};
use crm_core::entity::{ACTIVITY, ACTIVITY_KINDS, LEAD, LEAD_SOURCES};
use crm_core::query::{Filter, ListRequest, Measure, Op, SortKey, StoreQuery};
use crm_core::record::Record;
use crm_core::schema::EntityDef;
use crm_core::service::{AggregateRequest, ImportMode, ImportOptions, ImportReport, Service, UpsertOptions};
use crm_core::store::Store;
use crm_core::value::{Id, Money, Timestamp, Value};
use crm_store::{AnyStore, SqliteStore};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;
type Svc = Service<Arc<AnyStore>>;

/// The allocator `crm` runs with (ADR 0022), so both sides of every ratio use it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "harness/pg.rs"]
mod pg;
#[path = "harness/pg_same_rows.rs"]
mod pg_same_rows;

#[path = "harness/front_desk.rs"]
mod front_desk;

#[path = "harness/field_work.rs"]
mod field_work;
#[path = "../proc_mem.rs"]
mod proc_mem;
#[path = "harness/same_rows.rs"]
mod same_rows;
#[path = "harness/sync.rs"]
mod sync;

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    about = "CRM benchmark harness: JSON lines on stdout, ratios against raw SQLite on the same file"
)]
struct Args {
    /// Leads to seed (activities: half as many).
    #[arg(long, default_value_t = 1_000_000)]
    leads: usize,
    /// SQLite file to create (must not exist); a temporary file by default. A PostgreSQL URL
    /// (`postgres://user@host:port/db`) measures the PostgreSQL store instead, in a fresh schema of
    /// that database (dropped at exit).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Fewer iterations (CI).
    #[arg(long)]
    quick: bool,
    /// Esports clients (with a membership each) for the front-desk measurements (default: as many
    /// as leads; SQLite only).
    #[arg(long)]
    clients: Option<usize>,
    /// Jobs (three steps and two crew members each) for the field-work measurements (default
    /// 100,000; 500 with --quick; SQLite only).
    #[arg(long)]
    jobs: Option<usize>,
    /// Rows of the upsert measurements (default 100,000; 2,000 with --quick; SQLite only).
    #[arg(long)]
    upserts: Option<usize>,
    /// Leads of the one user whose device syncs, in a server file of their own (default 100,000;
    /// 3,000 with --quick; at least 2,000; SQLite only).
    #[arg(long)]
    sync_leads: Option<usize>,
}

/// Iteration counts.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Reads of `get_lead`.
    gets: usize,
    /// Pages of `list_page`.
    lists: usize,
    /// Single creates.
    creates: usize,
    /// Quotes seeded (through the service, a few lines each) before `list_quotes`.
    quotes: usize,
    /// Creates of a 20-line quote.
    quote_creates: usize,
    /// Alternating rounds (baseline, measured) of the repeated measurements; the best round counts.
    rounds: usize,
    /// Leads loaded for in-memory scoring.
    score_leads: usize,
    /// Minimum time spent scoring in memory.
    score_time: Duration,
}

impl Plan {
    fn new(quick: bool, leads: usize) -> Plan {
        if quick {
            Plan {
                gets: 2_000,
                lists: 300,
                creates: 200,
                quotes: 2_000,
                quote_creates: 100,
                rounds: 2,
                score_leads: leads.min(100_000),
                score_time: Duration::from_millis(300),
            }
        } else {
            Plan {
                gets: 20_000,
                lists: 2_000,
                creates: 1_000,
                quotes: 20_000,
                quote_creates: 500,
                rounds: 3,
                score_leads: leads.min(100_000),
                score_time: Duration::from_secs(2),
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("harness failed: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------

/// Rounds to 4 significant digits (the noise floor of this machine is well above that).
fn sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 4 - 1 - x.abs().log10().floor() as i32;
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Prints one result line. `ratio = value / baseline` for time units; throughput lines (`/s`) carry the
/// baseline's throughput and no ratio (the matching time line has it).
fn emit(name: &str, value: f64, unit: &str, baseline: Option<f64>, n: usize) {
    let ratio = if unit.ends_with("/s") {
        None
    } else {
        baseline.filter(|b| *b > 0.0).map(|b| sig(value / b))
    };
    println!(
        "{}",
        json!({
            "name": name,
            "value": sig(value),
            "unit": unit,
            "baseline": baseline.map(sig),
            "baseline_unit": unit,
            "ratio": ratio,
            "n": n,
        })
    );
}

fn time<T>(f: impl FnOnce() -> Res<T>) -> Res<(Duration, T)> {
    let t = Instant::now();
    let out = f()?;
    Ok((t.elapsed(), out))
}

/// Runs baseline and measured side alternately, once untimed each to warm up, then `rounds` timed
/// rounds; returns the best time of each side (baseline, measured).
/// The closures get the round number (0: warm-up).
fn alternate(
    rounds: usize,
    mut baseline: impl FnMut(usize) -> Res<()>,
    mut measured: impl FnMut(usize) -> Res<()>,
) -> Res<(Duration, Duration)> {
    let best = alternate_all(rounds, &mut [&mut baseline, &mut measured])?;
    Ok((best[0], best[1]))
}

/// [`alternate`] over any number of sides, run in turn each round; the best round of each.
fn alternate_all(rounds: usize, sides: &mut [&mut dyn FnMut(usize) -> Res<()>]) -> Res<Vec<Duration>> {
    for side in sides.iter_mut() {
        side(0)?;
    }
    let mut best = vec![Duration::MAX; sides.len()];
    for round in 1..=rounds {
        for (side, best) in sides.iter_mut().zip(&mut best) {
            *best = (*best).min(time(|| side(round))?.0);
        }
    }
    Ok(best)
}

/// The create lines: the service's `n` creates against the single-row inserts, and against the
/// same rows (`same_rows.rs`, `pg_same_rows.rs`), and those against the single-row inserts.
fn emit_creates(svc: Duration, same: Duration, raw: Duration, n: usize) {
    let us = |d: Duration| per_op(d, n, 1e6);
    emit("create_lead", us(svc), "us/op", Some(us(raw)), n);
    emit("create_lead_vs_same_rows", us(svc), "us/op", Some(us(same)), n);
    emit("create_lead_same_rows_vs_raw", us(same), "us/op", Some(us(raw)), n);
}

fn per_op(d: Duration, n: usize, scale: f64) -> f64 {
    d.as_secs_f64() * scale / n.max(1) as f64
}

// ---------------------------------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------------------------------

const PRIORITIES: &[&str] = &["low", "medium", "medium", "high", "urgent"];
const LOST_REASONS: &[&str] = &["price", "went with competitor", "no response"];
const DIRECTIONS: &[&str] = &["inbound", "outbound"];
const VALUES: &[i64] = &[3_500, 8_000, 12_500, 18_000, 26_000, 45_000];

/// A user who owns leads, with their team.
#[derive(Clone, Copy, Debug)]
struct Owner {
    id: Id,
    team: Id,
}

/// One generated lead: what goes into the CSV, and what the raw baseline stores (already normalised).
#[derive(Debug)]
struct LeadRow {
    /// The raw baseline's row id (the service makes its own).
    id: Id,
    first: &'static str,
    last: &'static str,
    email: Option<String>,
    phone_csv: Option<String>,
    phone_e164: Option<String>,
    city: &'static str,
    source: &'static str,
    status: &'static str,
    owner: usize,
    project: &'static str,
    cents: i64,
    priority: &'static str,
    external_id: String,
    lost_reason: Option<&'static str>,
}

fn gen_leads(rng: &mut Rng, n: usize, owners: usize, prefix: &str, now: Timestamp) -> Vec<LeadRow> {
    (0..n)
        .map(|i| {
            let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
            let status = rng.pick(STATUSES);
            let phone = rng
                .chance(80)
                .then(|| rng.index(10_000))
                .map(|d| (format!("720-555-{d:04}"), format!("+1720555{d:04}")));
            let email = rng.chance(60).then(|| {
                format!(
                    "{}.{}.{prefix}{i}@mail.example",
                    first.to_lowercase(),
                    last.to_lowercase()
                )
            });
            let (phone_csv, phone_e164) = phone.unzip();
            LeadRow {
                id: RandomIds.new_id(now),
                first,
                last,
                email,
                phone_csv,
                phone_e164,
                city: rng.pick(CITIES),
                source: rng.pick(LEAD_SOURCES),
                status,
                owner: rng.index(owners),
                project: rng.pick(PROJECTS),
                cents: (VALUES[rng.index(VALUES.len())] + rng.index(2000) as i64) * 100 + rng.index(100) as i64,
                priority: rng.pick(PRIORITIES),
                external_id: format!("{prefix}{i:07}"),
                lost_reason: (status == "lost").then(|| rng.pick(LOST_REASONS)),
            }
        })
        .collect()
}

const LEAD_CSV_HEADER: &str = "first_name,last_name,email,phone,city,region,source,status,owner_id,team_id,project_type,estimated_value,priority,external_id,lost_reason\n";

fn lead_csv(rows: &[LeadRow], owners: &[Owner]) -> Vec<u8> {
    let mut s = String::with_capacity(rows.len() * 200 + 200);
    s.push_str(LEAD_CSV_HEADER);
    for r in rows {
        let o = owners[r.owner];
        let _ = writeln!(
            s,
            "{},{},{},{},{},CO,{},{},{},{},{},{}.{:02},{},{},{}",
            r.first,
            r.last,
            r.email.as_deref().unwrap_or(""),
            r.phone_csv.as_deref().unwrap_or(""),
            r.city,
            r.source,
            r.status,
            o.id,
            o.team,
            r.project,
            r.cents / 100,
            r.cents % 100,
            r.priority,
            r.external_id,
            r.lost_reason.unwrap_or(""),
        );
    }
    s.into_bytes()
}

/// The same lead as a single-create input.
fn lead_input(r: &LeadRow) -> Map<String, Json> {
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), Json::String(v.to_owned()));
    };
    put("first_name", r.first);
    put("last_name", r.last);
    if let Some(e) = &r.email {
        put("email", e);
    }
    if let Some(p) = &r.phone_csv {
        put("phone", p);
    }
    put("city", r.city);
    put("region", "CO");
    put("source", r.source);
    put("status", r.status);
    put("project_type", r.project);
    put("estimated_value", &format!("{}.{:02}", r.cents / 100, r.cents % 100));
    put("priority", r.priority);
    put("external_id", &r.external_id);
    if let Some(l) = r.lost_reason {
        put("lost_reason", l);
    }
    m
}

/// One generated activity.
#[derive(Clone, Debug)]
struct ActRow {
    id: Id,
    kind: &'static str,
    direction: &'static str,
    outcome: &'static str,
    occurred_at: Timestamp,
    duration: i64,
    lead: Id,
    owner: Owner,
    external_id: String,
}

fn gen_activities(rng: &mut Rng, n: usize, leads: &[(Id, Owner)], now: Timestamp) -> Vec<ActRow> {
    let span = 90 * Timestamp::MICROS_PER_DAY as u64;
    (0..n)
        .map(|i| {
            let (lead, owner) = leads[rng.index(leads.len())];
            ActRow {
                id: RandomIds.new_id(now),
                kind: rng.pick(ACTIVITY_KINDS),
                direction: rng.pick(DIRECTIONS),
                outcome: rng.pick(OUTCOMES),
                // Between 90 days and one minute ago.
                occurred_at: Timestamp(now.0 - 60_000_000 - (rng.next() % span) as i64),
                duration: rng.index(45) as i64,
                lead,
                owner,
                external_id: format!("A{i:07}"),
            }
        })
        .collect()
}

const ACT_SUBJECT: &str = "Follow-up";

fn activity_csv(rows: &[ActRow]) -> Vec<u8> {
    let mut s = String::with_capacity(rows.len() * 220 + 200);
    s.push_str("kind,direction,outcome,subject,occurred_at,duration_minutes,lead_id,owner_id,team_id,external_id\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{ACT_SUBJECT},{},{},{},{},{},{}",
            r.kind,
            r.direction,
            r.outcome,
            r.occurred_at.to_rfc3339(),
            r.duration,
            r.lead,
            r.owner.id,
            r.owner.team,
            r.external_id,
        );
    }
    s.into_bytes()
}

/// What a moving company puts on a quote: (description, unit, unit price in cents, tax rate).
const QUOTE_CATALOGUE: &[(&str, &str, i64, &str)] = &[
    ("Truck with driver", "h", 14_500, "0"),
    ("Mover", "h", 5_500, "0"),
    ("Packing materials", "set", 8_990, "8.25"),
    ("Long-distance surcharge", "mi", 235, "0"),
    ("Piano handling", "item", 35_000, "0"),
    ("Storage", "month", 17_900, "8.875"),
    ("Moving boxes", "box", 349, "8.25"),
];
const QUOTE_TERMS: &str = "50 % deposit on booking; the balance on delivery.";
/// Lines of a measured `create_quote`.
const QUOTE_LINES: usize = 20;
/// Lines of each quote seeded for `list_quotes`.
const SEED_QUOTE_LINES: usize = 3;

/// One generated quote line, as entered.
#[derive(Debug)]
struct QuoteLineRow {
    description: &'static str,
    unit: &'static str,
    quantity: String,
    cents: i64,
    tax_rate: &'static str,
}

/// One generated quote (for the bench tenant's default rounding policy: per line, half up, net).
#[derive(Debug)]
struct QuoteRow {
    title: String,
    contact: Id,
    valid_until: String,
    lines: Vec<QuoteLineRow>,
}

fn gen_quotes(rng: &mut Rng, n: usize, lines: usize, contacts: &[Id], prefix: &str, now: Timestamp) -> Vec<QuoteRow> {
    (0..n)
        .map(|i| QuoteRow {
            title: format!("Move {prefix}{i}"),
            contact: contacts[rng.index(contacts.len())],
            valid_until: now.plus_days(30).date().to_string(),
            lines: (0..lines)
                .map(|_| {
                    let (description, unit, cents, tax_rate) = QUOTE_CATALOGUE[rng.index(QUOTE_CATALOGUE.len())];
                    let quantity = match unit {
                        "h" => format!("{}.{}", 2 + rng.index(10), [0, 5][rng.index(2)]),
                        "mi" => (50 + rng.index(900)).to_string(),
                        _ => (1 + rng.index(30)).to_string(),
                    };
                    QuoteLineRow {
                        description,
                        unit,
                        quantity,
                        cents,
                        tax_rate,
                    }
                })
                .collect(),
        })
        .collect()
}

/// The quote as a single-create input, its lines inline (`owner`: set owner and team explicitly).
fn quote_input(q: &QuoteRow, owner: Option<Owner>) -> Map<String, Json> {
    let lines: Vec<Json> = q
        .lines
        .iter()
        .map(|l| {
            json!({"description": l.description, "unit": l.unit, "quantity": l.quantity,
                   "unit_price": format!("{}.{:02}", l.cents / 100, l.cents % 100), "tax_rate": l.tax_rate})
        })
        .collect();
    let mut m = obj(json!({
        "title": q.title, "contact_id": q.contact.to_string(), "valid_until": q.valid_until,
        "terms": QUOTE_TERMS, "quote_lines": lines,
    }));
    if let Some(o) = owner {
        m.insert("owner_id".into(), Json::String(o.id.to_string()));
        m.insert("team_id".into(), Json::String(o.team.to_string()));
    }
    m
}

/// A quote as the raw baseline stores it: ids, number and every derived amount computed before the
/// timed part, the totals by the core (`quote::totals::compute` with the tenant's default policy).
#[derive(Debug)]
struct RawQuote {
    id: Id,
    number: i64,
    reference: String,
    owner: Owner,
    row: QuoteRow,
    line_ids: Vec<Id>,
    /// Quantities and tax rates as stored (millionths).
    quantities: Vec<i64>,
    rates: Vec<i64>,
    totals: quote::totals::Totals,
    taxes: String,
}

fn quote_totals(q: &QuoteRow) -> Res<quote::totals::Totals> {
    let dec = |s: &str| crm_core::decimal::parse(s).ok_or_else(|| format!("bad decimal {s}"));
    let inputs = q
        .lines
        .iter()
        .map(|l| {
            Ok(quote::totals::LineInput {
                quantity: dec(&l.quantity)?,
                unit_price: Money(l.cents),
                discount_percent: None,
                discount_amount: None,
                tax_rate: dec(l.tax_rate)?,
                optional: false,
            })
        })
        .collect::<Res<Vec<_>>>()?;
    let policy = quote::policy(None);
    quote::totals::compute(&inputs, quote::totals::DocumentDiscount::None, &policy)
        .map_err(|e| format!("quote totals: {e:?}").into())
}

fn raw_quote(row: QuoteRow, number: i64, owner: Owner, now: Timestamp) -> Res<RawQuote> {
    let micros = |s: &str| {
        crm_core::decimal::parse(s)
            .and_then(crm_core::decimal::to_micros)
            .ok_or_else(|| format!("bad decimal {s}"))
    };
    let totals = quote_totals(&row)?;
    Ok(RawQuote {
        id: RandomIds.new_id(now),
        number,
        reference: format!("Q-{number:05}-R1"),
        owner,
        line_ids: row.lines.iter().map(|_| RandomIds.new_id(now)).collect(),
        quantities: row
            .lines
            .iter()
            .map(|l| micros(&l.quantity))
            .collect::<Result<_, _>>()?,
        rates: row.lines.iter().map(|l| micros(l.tax_rate)).collect::<Result<_, _>>()?,
        taxes: serde_json::to_value(&totals.taxes)?.to_string(),
        totals,
        row,
    })
}

/// A trivial "fit score" the raw baseline stores at insert time (the service runs the real model).
fn raw_fit_score(source: &str, cents: i64) -> i64 {
    let s = match source {
        "referral" => 20,
        "storm_canvass" | "website" | "phone_in" | "partner" => 10,
        _ => 0,
    };
    s + if cents >= 1_500_000 { 15 } else { 8 }
}

fn temperature(score: i64) -> &'static str {
    match score {
        70.. => "hot",
        40.. => "warm",
        _ => "cold",
    }
}

// ---------------------------------------------------------------------------------------------------
// Raw SQLite side
// ---------------------------------------------------------------------------------------------------

/// The store's connection settings, mirrored by the raw side (see `configure` and the constants at the
/// top of `crm-store/src/sqlite.rs`): page cache per connection role, memory-mapped reads, temp tables
/// in memory, WAL with `synchronous = NORMAL` and a checkpoint every 16,384 pages of log.
const RAW_WRITER_CACHE_KIB: i64 = 64 * 1024;
const RAW_READER_CACHE_KIB: i64 = 16 * 1024;
const RAW_MMAP_BYTES: i64 = 256 * 1024 * 1024;
const RAW_CHECKPOINT_PAGES: i64 = 16_384;

/// A raw connection to the same file with the settings the store gives the same role: the writer
/// (raw inserts and updates) or a read-only reader (raw gets and lists).
fn raw_connection(path: &Path, reader: bool) -> Res<Connection> {
    use rusqlite::OpenFlags;
    let flags = if reader {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.set_prepared_statement_cache_capacity(256);
    let cache = if reader {
        RAW_READER_CACHE_KIB
    } else {
        RAW_WRITER_CACHE_KIB
    };
    c.execute_batch(&format!("PRAGMA cache_size = -{cache}; PRAGMA temp_store = MEMORY"))?;
    let _: Option<i64> = c
        .query_row(&format!("PRAGMA mmap_size = {RAW_MMAP_BYTES}"), [], |r| r.get(0))
        .optional()?;
    if !reader {
        let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err("raw connection: cannot enable WAL".into());
        }
        c.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {RAW_CHECKPOINT_PAGES}"
        ))?;
    }
    Ok(c)
}

/// Creates `bench_raw_<table>` with exactly the store's DDL for `<table>` (columns and indexes), read
/// back from `sqlite_master`, so the baseline maintains the same indexes the store does.
fn clone_table(c: &Connection, table: &str, with_indexes: bool) -> Res<String> {
    clone_table_as(c, table, "raw", with_indexes)
}

/// [`clone_table`] named `bench_<copy>_<table>`, its indexes `bench_<copy>_<index>`: a second copy
/// of a table beside the first.
fn clone_table_as(c: &Connection, table: &str, copy: &str, with_indexes: bool) -> Res<String> {
    clone_table_into(c, c, table, copy, with_indexes)
}

/// [`clone_table_as`] with the DDL read from `from` and the copy made in `to` (another file).
fn clone_table_into(from: &Connection, c: &Connection, table: &str, copy: &str, with_indexes: bool) -> Res<String> {
    let raw = format!("bench_{copy}_{table}{}", if with_indexes { "" } else { "_plain" });
    let quoted = |s: &str| format!("\"{s}\"");
    let sql: String = from.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    let ddl = replace_name(&sql, table, &raw).ok_or_else(|| format!("cannot rename table in {sql}"))?;
    c.execute_batch(&format!("DROP TABLE IF EXISTS {}; {ddl}", quoted(&raw)))?;
    if with_indexes {
        let mut st = from.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
        )?;
        let idx: Vec<(String, String)> = st
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (name, sql) in idx {
            let new_name = format!("bench_{copy}_{name}");
            let s = replace_name(&sql, &name, &new_name)
                .and_then(|s| replace_name(&s, table, &raw))
                .ok_or_else(|| format!("cannot rename index in {sql}"))?;
            c.execute_batch(&s)?;
        }
    }
    Ok(raw)
}

/// Replaces the identifier `from` (quoted or bare) in a DDL statement, once.
fn replace_name(sql: &str, from: &str, to: &str) -> Option<String> {
    for (f, t) in [
        (format!("\"{from}\""), format!("\"{to}\"")),
        (format!("`{from}`"), format!("`{to}`")),
        (format!(" {from} "), format!(" {to} ")),
        (format!(" {from}("), format!(" {to}(")),
    ] {
        if sql.contains(&f) {
            return Some(sql.replacen(&f, &t, 1));
        }
    }
    None
}

/// Every stored column of an entity, in the order the store reads them.
fn read_columns(def: &EntityDef) -> Vec<&'static str> {
    let mut c = vec!["id", "version", "created_at", "updated_at"];
    c.extend(def.fields.iter().map(|f| f.name));
    if def.custom_fields {
        c.push("custom");
    }
    c
}

/// Every column an insert writes.
fn insert_columns(def: &EntityDef) -> Vec<&'static str> {
    let mut c = vec!["id", "org_id", "version", "created_at", "updated_at"];
    c.extend(def.fields.iter().map(|f| f.name));
    if def.custom_fields {
        c.push("custom");
    }
    c
}

fn insert_sql(table: &str, cols: &[&str]) -> String {
    let names = cols.join(", ");
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO {table} ({names}) VALUES ({})", params.join(", "))
}

/// Decodes every column of a row into owned Rust values (String, i64, f64, Vec<u8>).
fn decode_row(r: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Vec<SqlValue>> {
    (0..n).map(|i| r.get_ref(i).map(SqlValue::from)).collect()
}

/// Binds one generated lead to the full-row insert and runs it.
fn bind_lead(
    st: &mut rusqlite::Statement<'_>,
    cols: &[&str],
    r: &LeadRow,
    tenant: Id,
    owners: &[Owner],
    now: Timestamp,
) -> rusqlite::Result<usize> {
    let score = raw_fit_score(r.source, r.cents);
    for (i, c) in cols.iter().enumerate() {
        st.raw_bind_parameter(i + 1, lead_value(c, r, &tenant, &owners[r.owner], score, now))?;
    }
    st.raw_execute()
}

/// The stored value of one column of a generated lead (already normalised, as the store keeps it).
fn lead_value<'a>(
    column: &str,
    r: &'a LeadRow,
    tenant: &'a Id,
    o: &'a Owner,
    score: i64,
    now: Timestamp,
) -> rusqlite::types::ToSqlOutput<'a> {
    use rusqlite::types::{ToSqlOutput as Out, ValueRef as V};
    let text = |s: &'a str| Out::Borrowed(V::Text(s.as_bytes()));
    let id = |i: &'a Id| Out::Borrowed(V::Blob(&i.as_bytes()[..]));
    let opt = |s: Option<&'a str>| s.map_or(Out::Borrowed(V::Null), text);
    match column {
        "id" => id(&r.id),
        "org_id" => id(tenant),
        "version" => Out::Borrowed(V::Integer(1)),
        "created_at" | "updated_at" | "scored_at" => Out::Borrowed(V::Integer(now.0)),
        "first_name" => text(r.first),
        "last_name" => text(r.last),
        "email" => opt(r.email.as_deref()),
        "phone" => opt(r.phone_e164.as_deref()),
        "city" => text(r.city),
        "region" => text("CO"),
        "source" => text(r.source),
        "status" => text(r.status),
        "score" => Out::Borrowed(V::Integer(score)),
        "temperature" => text(temperature(score)),
        "score_model_version" => Out::Borrowed(V::Integer(0)),
        "owner_id" => id(&o.id),
        "team_id" => id(&o.team),
        "project_type" => text(r.project),
        "estimated_value" => Out::Borrowed(V::Integer(r.cents)),
        "priority" => text(r.priority),
        "external_id" => text(&r.external_id),
        "lost_reason" => opt(r.lost_reason),
        _ => Out::Borrowed(V::Null),
    }
}

fn bind_activity(
    st: &mut rusqlite::Statement<'_>,
    cols: &[&str],
    r: &ActRow,
    tenant: Id,
    now: Timestamp,
) -> rusqlite::Result<usize> {
    for (i, c) in cols.iter().enumerate() {
        let p = i + 1;
        match *c {
            "id" => st.raw_bind_parameter(p, &r.id.as_bytes()[..])?,
            "org_id" => st.raw_bind_parameter(p, &tenant.as_bytes()[..])?,
            "version" => st.raw_bind_parameter(p, 1i64)?,
            "created_at" | "updated_at" => st.raw_bind_parameter(p, now.0)?,
            "kind" => st.raw_bind_parameter(p, r.kind)?,
            "direction" => st.raw_bind_parameter(p, r.direction)?,
            "subject" => st.raw_bind_parameter(p, ACT_SUBJECT)?,
            "outcome" => st.raw_bind_parameter(p, r.outcome)?,
            "occurred_at" => st.raw_bind_parameter(p, r.occurred_at.0)?,
            "duration_minutes" => st.raw_bind_parameter(p, r.duration)?,
            "lead_id" => st.raw_bind_parameter(p, &r.lead.as_bytes()[..])?,
            "owner_id" => st.raw_bind_parameter(p, &r.owner.id.as_bytes()[..])?,
            "team_id" => st.raw_bind_parameter(p, &r.owner.team.as_bytes()[..])?,
            "external_id" => st.raw_bind_parameter(p, r.external_id.as_str())?,
            _ => st.raw_bind_parameter(p, rusqlite::types::Null)?,
        }
    }
    st.raw_execute()
}

/// Binds one precomputed quote to the full-row insert of `quotes` and runs it.
fn bind_quote(
    st: &mut rusqlite::Statement<'_>,
    cols: &[&str],
    q: &RawQuote,
    tenant: Id,
    now: Timestamp,
) -> rusqlite::Result<usize> {
    let t = &q.totals;
    for (i, c) in cols.iter().enumerate() {
        let p = i + 1;
        match *c {
            "id" => st.raw_bind_parameter(p, &q.id.as_bytes()[..])?,
            "org_id" => st.raw_bind_parameter(p, &tenant.as_bytes()[..])?,
            "version" | "revision" => st.raw_bind_parameter(p, 1i64)?,
            "created_at" | "updated_at" => st.raw_bind_parameter(p, now.0)?,
            "number" => st.raw_bind_parameter(p, q.number)?,
            "reference" => st.raw_bind_parameter(p, q.reference.as_str())?,
            "title" => st.raw_bind_parameter(p, q.row.title.as_str())?,
            "contact_id" => st.raw_bind_parameter(p, &q.row.contact.as_bytes()[..])?,
            "owner_id" => st.raw_bind_parameter(p, &q.owner.id.as_bytes()[..])?,
            "team_id" => st.raw_bind_parameter(p, &q.owner.team.as_bytes()[..])?,
            "valid_until" => st.raw_bind_parameter(p, q.row.valid_until.as_str())?,
            "terms" => st.raw_bind_parameter(p, QUOTE_TERMS)?,
            "status" => st.raw_bind_parameter(p, "draft")?,
            "currency" => st.raw_bind_parameter(p, "USD")?,
            "subtotal" => st.raw_bind_parameter(p, t.subtotal.0)?,
            "discount_total" => st.raw_bind_parameter(p, t.discount_total.0)?,
            "tax_total" => st.raw_bind_parameter(p, t.tax_total.0)?,
            "total" => st.raw_bind_parameter(p, t.total.0)?,
            "taxes" => st.raw_bind_parameter(p, q.taxes.as_str())?,
            "effective_discount_percent" => {
                st.raw_bind_parameter(p, crm_core::decimal::to_micros(t.effective_discount_percent))?
            }
            "line_count" => st.raw_bind_parameter(p, q.line_ids.len() as i64)?,
            _ => st.raw_bind_parameter(p, rusqlite::types::Null)?,
        }
    }
    st.raw_execute()
}

/// Binds line `i` of a precomputed quote to the full-row insert of `quote_lines` and runs it.
fn bind_quote_line(
    st: &mut rusqlite::Statement<'_>,
    cols: &[&str],
    q: &RawQuote,
    i: usize,
    tenant: Id,
    now: Timestamp,
) -> rusqlite::Result<usize> {
    let (l, t) = (&q.row.lines[i], &q.totals.lines[i]);
    for (c_i, c) in cols.iter().enumerate() {
        let p = c_i + 1;
        match *c {
            "id" => st.raw_bind_parameter(p, &q.line_ids[i].as_bytes()[..])?,
            "org_id" => st.raw_bind_parameter(p, &tenant.as_bytes()[..])?,
            "version" => st.raw_bind_parameter(p, 1i64)?,
            "created_at" | "updated_at" => st.raw_bind_parameter(p, now.0)?,
            "quote_id" => st.raw_bind_parameter(p, &q.id.as_bytes()[..])?,
            "position" => st.raw_bind_parameter(p, i as i64 + 1)?,
            "description" => st.raw_bind_parameter(p, l.description)?,
            "quantity" => st.raw_bind_parameter(p, q.quantities[i])?,
            "unit" => st.raw_bind_parameter(p, l.unit)?,
            "unit_price" => st.raw_bind_parameter(p, l.cents)?,
            "tax_rate" => st.raw_bind_parameter(p, q.rates[i])?,
            "optional" => st.raw_bind_parameter(p, false)?,
            "amount" => st.raw_bind_parameter(p, t.amount.0)?,
            "discount_share" => st.raw_bind_parameter(p, t.discount_share.0)?,
            "tax" => st.raw_bind_parameter(p, t.tax.0)?,
            "total" => st.raw_bind_parameter(p, t.total.0)?,
            _ => st.raw_bind_parameter(p, rusqlite::types::Null)?,
        }
    }
    st.raw_execute()
}

/// Raw bulk insert of generated rows into `table` in one transaction with one prepared statement.
fn raw_bulk_insert<R>(
    c: &mut Connection,
    table: &str,
    def: &EntityDef,
    rows: &[R],
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, &[&str], &R) -> rusqlite::Result<usize>,
) -> Res<()> {
    let cols = insert_columns(def);
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare(&insert_sql(table, &cols))?;
        for r in rows {
            bind(&mut st, &cols, r)?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn uuid_of(v: &SqlValue) -> Option<Id> {
    match v {
        SqlValue::Blob(b) => Id::from_slice(b).ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[derive(Debug)]
struct Tenant {
    tenant: Id,
    manager: Actor,
    sales: Vec<Actor>,
    /// Lead owners: the manager and the sales users, with their teams.
    owners: Vec<Owner>,
}

fn setup_tenant(svc: &Svc) -> Res<Tenant> {
    let org = block(svc.create_organization(&obj(json!({"name": "Bench Roofing"}))))?;
    let tenant = org.id;
    let system = Actor::system(tenant);
    let mut teams = Vec::new();
    for name in ["North", "South"] {
        teams.push(block(svc.create(&system, "team", &obj(json!({"name": name}))))?.id);
    }
    let user = |name: &str, role: &str, team: Id| -> Res<(Actor, Owner)> {
        let u = block(svc.create(
            &system,
            "user",
            &obj(
                json!({"name": name, "email": format!("{}@bench.test", name.to_lowercase()),
                         "role": role, "team_id": team.to_string()}),
            ),
        ))?;
        Ok((block(svc.actor(tenant, u.id))?, Owner { id: u.id, team }))
    };
    let (manager, m) = user("Maria", "manager", teams[0])?;
    let mut owners = vec![m];
    let mut sales = Vec::new();
    for (name, team) in [
        ("Sam", teams[0]),
        ("Sid", teams[0]),
        ("Sue", teams[1]),
        ("Sal", teams[1]),
    ] {
        let (a, o) = user(name, "sales", team)?;
        sales.push(a);
        owners.push(o);
    }
    Ok(Tenant {
        tenant,
        manager,
        sales,
        owners,
    })
}

fn check_import(what: &str, r: &ImportReport, rows: usize) -> Res<()> {
    if r.invalid > 0 || r.created as usize != rows || !r.applied {
        let first: Vec<String> = r
            .errors
            .iter()
            .take(3)
            .map(|e| format!("row {}: {:?}", e.row, e.errors))
            .collect();
        return Err(format!(
            "{what} import: {} rows, {} created, {} invalid, applied {}; {first:?}",
            r.rows, r.created, r.invalid, r.applied
        )
        .into());
    }
    Ok(())
}

fn run(args: &Args) -> Res<()> {
    if let Some(url) = args
        .database
        .as_ref()
        .and_then(|p| p.to_str())
        .filter(|u| crm_store::is_postgres_url(u))
    {
        return pg::run(args, url);
    }
    let n = args.leads.max(100);
    let plan = Plan::new(args.quick, n);
    let _tmp;
    let path = match &args.database {
        Some(p) => {
            if p.exists() {
                return Err(format!("{} exists; the harness seeds a new file", p.display()).into());
            }
            p.clone()
        }
        None => {
            let d = tempfile::tempdir()?;
            let p = d.path().join("bench.db");
            _tmp = d;
            p
        }
    };
    eprintln!(
        "harness: {n} leads, {} activities, {} ({}), plan {plan:?}",
        n / 2,
        path.display(),
        if args.quick { "quick" } else { "full" }
    );
    let store = Arc::new(AnyStore::from(SqliteStore::open(&path)?));
    let svc: Svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds))
        // As `crm serve` runs it (its default CRM_ORG_CACHE).
        .with_org_cache(Duration::from_secs(5));
    let t = setup_tenant(&svc)?;
    let mut raw = raw_connection(&path, false)?;
    let raw_r = raw_connection(&path, true)?;
    let now = SystemClock.now();
    let mut rng = Rng(0x5EED);

    // ---- import_leads ----
    let rows = gen_leads(&mut rng, n, t.owners.len(), "L", now);
    let csv = lead_csv(&rows, &t.owners);
    eprintln!("leads csv: {:.1} MB", csv.len() as f64 / 1e6);
    let raw_leads = clone_table(&raw, LEAD.table, true)?;
    let raw_plain = clone_table(&raw, LEAD.table, false)?;
    let (plain_t, ()) = time(|| {
        raw_bulk_insert(&mut raw, &raw_plain, &LEAD, &rows, |st, cols, r| {
            bind_lead(st, cols, r, t.tenant, &t.owners, now)
        })
    })?;
    raw.execute_batch(&format!("DROP TABLE {raw_plain}"))?;
    let every = Duration::from_millis(20);
    let (raw_t, raw_mem) = proc_mem::Phase::sampled(every, || {
        time(|| {
            raw_bulk_insert(&mut raw, &raw_leads, &LEAD, &rows, |st, cols, r| {
                bind_lead(st, cols, r, t.tenant, &t.owners, now)
            })
        })
    });
    let (raw_t, ()) = raw_t?;
    let opts = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let (svc_t, svc_mem) = proc_mem::Phase::sampled(every, || {
        time(|| Ok(block(svc.import_csv(&t.manager, "lead", csv.as_slice(), &opts))?))
    });
    let (svc_t, report) = svc_t?;
    check_import("lead", &report, n)?;
    let same_cx = same_rows::Ctx {
        tenant: t.tenant,
        actor: t.manager.user_id.ok_or("the manager is a user")?,
        owners: &t.owners,
        now,
    };
    let mut same_sizes = same_rows::Sizes::default();
    // After the service's import, so that its memory is measured from the same start as before,
    // and in a file of its own: three tables of a million rows dropped from this file would leave
    // gigabytes of free pages that every later phase would write into.
    let same_t = {
        let dir = tempfile::tempdir()?;
        let mut other = raw_connection(&dir.path().join("same_rows.db"), false)?;
        let tables = same_rows::Tables::copy_into(&raw, &other, t.tenant)?;
        tables.import(&mut other, &rows, &same_cx, &mut same_sizes)?
    };
    drop(csv);
    eprintln!(
        "import_leads: service {svc_t:?}, raw (same indexes) {raw_t:?}, raw (no indexes) {plain_t:?}; \
         anonymous memory growth (peak resident growth) service {:.1} ({:.1}) MiB, raw {:.1} ({:.1}) MiB",
        svc_mem.0, svc_mem.1, raw_mem.0, raw_mem.1
    );
    emit("import_leads", svc_t.as_secs_f64(), "s", Some(raw_t.as_secs_f64()), n);
    emit(
        "import_leads_rate",
        n as f64 / svc_t.as_secs_f64(),
        "rows/s",
        Some(n as f64 / raw_t.as_secs_f64()),
        n,
    );
    eprintln!(
        "import_leads: raw with the same rows as the service (lead, stage change, audit entry) {same_t:?}; \
         an audit entry's changes {:.0} bytes",
        same_sizes.changes()
    );
    emit(
        "import_leads_vs_same_rows",
        svc_t.as_secs_f64(),
        "s",
        Some(same_t.as_secs_f64()),
        n,
    );
    emit(
        "import_leads_same_rows_vs_raw",
        same_t.as_secs_f64(),
        "s",
        Some(raw_t.as_secs_f64()),
        n,
    );
    emit("import_leads_heap", svc_mem.0, "MiB", Some(raw_mem.0), n);
    emit("import_leads_peak_rss", svc_mem.1, "MiB", Some(raw_mem.1), n);
    emit(
        "import_leads_vs_unindexed",
        svc_t.as_secs_f64(),
        "s",
        Some(plain_t.as_secs_f64()),
        n,
    );

    // ---- import_activities ----
    let lead_ids: Vec<(Id, Owner)> = {
        let by_id: HashMap<Id, Owner> = t.owners.iter().map(|o| (o.id, *o)).collect();
        let mut st = raw.prepare("SELECT id, owner_id FROM leads WHERE org_id = ?1 ORDER BY id")?;
        let mut out = Vec::with_capacity(n);
        let mut q = st.query([&t.tenant.as_bytes()[..]])?;
        while let Some(r) = q.next()? {
            let id = uuid_of(&SqlValue::from(r.get_ref(0)?)).ok_or("lead id is not a uuid")?;
            let owner = uuid_of(&SqlValue::from(r.get_ref(1)?))
                .and_then(|o| by_id.get(&o).copied())
                .ok_or("lead owner is not a bench user")?;
            out.push((id, owner));
        }
        out
    };
    if lead_ids.len() != n {
        return Err(format!("expected {n} leads in the file, found {}", lead_ids.len()).into());
    }
    let acts = gen_activities(&mut rng, n / 2, &lead_ids, now);
    let csv = activity_csv(&acts);
    // The raw side's activities point at the raw twins of their leads (`raw_leads`: the same rows
    // under their own ids, matched by external id), so its re-score reads and writes raw tables only.
    let twin: HashMap<Id, Id> = {
        let sql = format!(
            "SELECT l.id, r.id FROM leads l JOIN {raw_leads} r ON r.org_id = l.org_id AND r.external_id = l.external_id \
             WHERE l.org_id = ?1"
        );
        let mut st = raw.prepare(&sql)?;
        let mut q = st.query([&t.tenant.as_bytes()[..]])?;
        let mut out = HashMap::with_capacity(n);
        while let Some(r) = q.next()? {
            let (l, w) = (
                uuid_of(&SqlValue::from(r.get_ref(0)?)),
                uuid_of(&SqlValue::from(r.get_ref(1)?)),
            );
            out.insert(l.ok_or("lead id is not a uuid")?, w.ok_or("raw lead id is not a uuid")?);
        }
        out
    };
    let raw_rows: Vec<ActRow> = acts
        .iter()
        .map(|a| twin.get(&a.lead).map(|&lead| ActRow { lead, ..a.clone() }))
        .collect::<Option<_>>()
        .ok_or("a lead has no raw twin")?;
    let touched: Vec<Id> = raw_rows
        .iter()
        .map(|a| a.lead)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let raw_acts = clone_table(&raw, ACTIVITY.table, true)?;
    let (raw_t, ()) = time(|| {
        raw_bulk_insert(&mut raw, &raw_acts, &ACTIVITY, &raw_rows, |st, cols, r| {
            bind_activity(st, cols, r, t.tenant, now)
        })
    })?;
    let (model, version) = block(svc.scoring_model(t.tenant))?;
    let cutoff = model
        .lookback_days()
        .map_or(i64::MIN, |d| SystemClock.now().plus_days(-d).0);
    let tables = (raw_leads.as_str(), raw_acts.as_str());
    let (rescore_t, _) = time(|| raw_rescore_in(&mut raw, t.tenant, tables, Some(&touched), cutoff, version, true))?;
    let (svc_t, report) = time(|| Ok(block(svc.import_csv(&t.manager, "activity", csv.as_slice(), &opts))?))?;
    check_import("activity", &report, acts.len())?;
    drop((csv, acts, raw_rows, twin));
    raw.execute_batch(&format!("DROP TABLE {raw_acts}"))?;
    let raw_all = raw_t + rescore_t;
    eprintln!(
        "import_activities: service {svc_t:?} (includes re-scoring their {} leads), raw insert {raw_t:?}, \
         raw insert and re-score of those leads {raw_all:?}",
        touched.len()
    );
    emit(
        "import_activities",
        svc_t.as_secs_f64(),
        "s",
        Some(raw_t.as_secs_f64()),
        n / 2,
    );
    emit(
        "import_activities_rescored",
        svc_t.as_secs_f64(),
        "s",
        Some(raw_all.as_secs_f64()),
        n / 2,
    );
    emit(
        "import_activities_rate",
        (n / 2) as f64 / svc_t.as_secs_f64(),
        "rows/s",
        Some((n / 2) as f64 / raw_t.as_secs_f64()),
        n / 2,
    );
    drop(rows);

    // ---- get_lead ----
    let ids: Vec<Id> = (0..plan.gets).map(|_| lead_ids[rng.index(lead_ids.len())].0).collect();
    let cols = read_columns(&LEAD);
    let get_sql = format!("SELECT {} FROM leads WHERE org_id = ?1 AND id = ?2", cols.join(", "));
    let tenant_b = t.tenant.as_bytes().to_vec();
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |_| {
            let mut st = raw_r.prepare_cached(&get_sql)?;
            for id in &ids {
                let row = st
                    .query_row((&tenant_b[..], &id.as_bytes()[..]), |r| decode_row(r, cols.len()))
                    .optional()?;
                black_box(row.ok_or("raw get: missing lead")?);
            }
            Ok(())
        },
        |_| {
            for id in &ids {
                black_box(block(svc.get(&t.manager, "lead", *id))?);
            }
            Ok(())
        },
    )?;
    emit(
        "get_lead",
        per_op(svc_t, ids.len(), 1e9),
        "ns/op",
        Some(per_op(raw_t, ids.len(), 1e9)),
        ids.len(),
    );

    // ---- get_lead_scoped: a sales user reading their team's leads (record scope checked per read) ----
    let reader = &t.sales[0];
    let team_ids: Vec<Id> = lead_ids
        .iter()
        .filter(|(_, o)| Some(o.team) == reader.team_id)
        .map(|(id, _)| *id)
        .collect();
    let ids: Vec<Id> = (0..plan.gets).map(|_| team_ids[rng.index(team_ids.len())]).collect();
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |_| {
            let mut st = raw_r.prepare_cached(&get_sql)?;
            for id in &ids {
                let row = st
                    .query_row((&tenant_b[..], &id.as_bytes()[..]), |r| decode_row(r, cols.len()))
                    .optional()?;
                black_box(row.ok_or("raw get: missing lead")?);
            }
            Ok(())
        },
        |_| {
            for id in &ids {
                black_box(block(svc.get(reader, "lead", *id))?);
            }
            Ok(())
        },
    )?;
    emit(
        "get_lead_scoped",
        per_op(svc_t, ids.len(), 1e9),
        "ns/op",
        Some(per_op(raw_t, ids.len(), 1e9)),
        ids.len(),
    );

    // ---- list_page ----
    let reqs: Vec<(usize, ListRequest)> = (0..plan.lists)
        .map(|i| {
            let o = i % t.owners.len();
            let req = ListRequest {
                q: Some(format!("status:new owner:{}", t.owners[o].id)),
                sort: vec![SortKey::desc("score")],
                limit: Some(50),
                ..Default::default()
            };
            (o, req)
        })
        .collect();
    let list_sql = format!(
        "SELECT {} FROM leads WHERE org_id = ?1 AND status = ?2 AND owner_id = ?3 ORDER BY score DESC, id DESC LIMIT 51",
        cols.join(", ")
    );
    explain_list(&raw_r, &list_sql, t.tenant)?;
    let owner_b: Vec<Vec<u8>> = t.owners.iter().map(|o| o.id.as_bytes().to_vec()).collect();
    let (mut raw_rows, mut svc_rows) = (0usize, 0usize);
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |_| {
            let mut st = raw_r.prepare_cached(&list_sql)?;
            raw_rows = 0;
            for (o, _) in &reqs {
                let mut q = st.query((&tenant_b[..], "new", &owner_b[*o][..]))?;
                let mut page = Vec::with_capacity(51);
                while let Some(r) = q.next()? {
                    page.push(decode_row(r, cols.len())?);
                }
                raw_rows += page.len().min(50);
                black_box(page);
            }
            Ok(())
        },
        |_| {
            svc_rows = 0;
            for (_, req) in &reqs {
                let page = block(svc.list(&t.manager, "lead", req))?;
                svc_rows += page.items.len();
                black_box(page);
            }
            Ok(())
        },
    )?;
    if raw_rows != svc_rows {
        eprintln!("WARNING list_page: raw returned {raw_rows} rows, service {svc_rows}");
    }
    emit(
        "list_page",
        per_op(svc_t, reqs.len(), 1e6),
        "us/op",
        Some(per_op(raw_t, reqs.len(), 1e6)),
        reqs.len(),
    );

    // ---- aggregates: the funnel (leads by status, with their value) and leads by source and month ----
    aggregates(&svc, &t.manager, &raw_r, &tenant_b, plan.rounds)?;
    // ---- reports: the funnel and the forecast, each beside raw SQL doing the same grouping ----
    reports(&svc, &t.manager, &raw_r, &tenant_b, plan.rounds)?;

    // ---- create_lead ----
    let actor = &t.sales[0];
    let me = t
        .owners
        .iter()
        .position(|o| Some(o.id) == actor.user_id)
        .ok_or("sales user is not an owner")?;
    let raw_batches: Vec<Vec<LeadRow>> = (0..=plan.rounds)
        .map(|round| {
            let mut b = gen_leads(&mut rng, plan.creates, t.owners.len(), &format!("R{round}-"), now);
            b.iter_mut().for_each(|r| r.owner = me);
            b
        })
        .collect();
    let svc_batches: Vec<Vec<Map<String, Json>>> = (0..=plan.rounds)
        .map(|round| {
            gen_leads(&mut rng, plan.creates, t.owners.len(), &format!("C{round}-"), now)
                .iter()
                .map(lead_input)
                .collect()
        })
        .collect();
    let ins_cols = insert_columns(&LEAD);
    let ins_sql = insert_sql(&raw_leads, &ins_cols);
    // The same rows as the service's create, into copies of their tables (the raw batches again:
    // the copies have their own unique indexes).
    let same = same_rows::Tables::copy(&raw, t.tenant)?;
    let same_cx = same_rows::Ctx {
        tenant: t.tenant,
        actor: actor.user_id.ok_or("the sales user is a user")?,
        owners: &t.owners,
        now,
    };
    let mut same_sizes = same_rows::Sizes::default();
    let best = alternate_all(
        plan.rounds,
        &mut [
            &mut |round| {
                for r in &raw_batches[round] {
                    raw.execute_batch("BEGIN IMMEDIATE")?;
                    {
                        let mut st = raw.prepare_cached(&ins_sql)?;
                        bind_lead(&mut st, &ins_cols, r, t.tenant, &t.owners, now)?;
                    }
                    raw.execute_batch("COMMIT")?;
                }
                Ok(())
            },
            &mut |round| {
                for r in &raw_batches[round] {
                    same.create(&raw, r, &same_cx, &mut same_sizes)?;
                }
                Ok(())
            },
            &mut |round| {
                for input in &svc_batches[round] {
                    black_box(block(svc.create(actor, "lead", input))?);
                }
                Ok(())
            },
        ],
    )?;
    let (raw_t, same_t, svc_t) = (best[0], best[1], best[2]);
    eprintln!(
        "create_lead: an audit entry's changes {:.0} bytes, an event's payload {:.0} bytes (raw with the same rows)",
        same_sizes.changes(),
        same_sizes.payload()
    );
    same.remove(&raw)?;
    emit_creates(svc_t, same_t, raw_t, plan.creates);
    drop((raw_batches, svc_batches));
    raw.execute_batch(&format!("DROP TABLE {raw_leads}"))?;

    // ---- rescore_all ----
    let total: i64 = raw.query_row("SELECT count(*) FROM leads WHERE org_id = ?1", [&tenant_b[..]], |r| {
        r.get(0)
    })?;
    let total = total as usize;
    let (model, version) = block(svc.scoring_model(t.tenant))?;
    let cutoff = |now: Timestamp| model.lookback_days().map_or(i64::MIN, |d| now.plus_days(-d).0);
    // Warm-up for both sides: one read-only pass of the raw loop over every lead and activity.
    raw_rescore(&mut raw, t.tenant, cutoff(SystemClock.now()), version, false)?;
    let (raw_t, written) = time(|| raw_rescore(&mut raw, t.tenant, cutoff(SystemClock.now()), version, true))?;
    // Make every stored score stale so the service writes every lead too (the raw pass wrote all).
    raw.execute(
        "UPDATE leads SET temperature = 'stale' WHERE org_id = ?1",
        [&tenant_b[..]],
    )?;
    let (svc_t, rep) = time(|| Ok(block(svc.rescore_all(&t.manager))?))?;
    eprintln!(
        "rescore_all: service {svc_t:?} (scanned {}, changed {}), raw {raw_t:?} (wrote {written})",
        rep.scanned, rep.changed
    );
    emit(
        "rescore_all",
        svc_t.as_secs_f64(),
        "s",
        Some(raw_t.as_secs_f64()),
        total,
    );
    emit(
        "rescore_all_rate",
        total as f64 / svc_t.as_secs_f64(),
        "leads/s",
        Some(total as f64 / raw_t.as_secs_f64()),
        total,
    );

    // ---- score_in_memory ----
    let now = SystemClock.now();
    let pairs = load_scoring_set(&svc, t.tenant, plan.score_leads, cutoff(now))?;
    let n_acts: usize = pairs.iter().map(|(_, a)| a.len()).sum();
    eprintln!("score_in_memory: {} leads, {n_acts} activities in memory", pairs.len());
    for (name, explain) in [("score_in_memory", false), ("explain_in_memory", true)] {
        let t0 = Instant::now();
        let mut scored = 0usize;
        while scored == 0 || t0.elapsed() < plan.score_time {
            for (lead, acts) in &pairs {
                if explain {
                    black_box(model.evaluate(lead, acts, now));
                } else {
                    black_box(model.score(lead, acts, now));
                }
            }
            scored += pairs.len();
        }
        emit(
            name,
            scored as f64 / t0.elapsed().as_secs_f64(),
            "leads/s",
            None,
            pairs.len(),
        );
    }

    run_quotes(&svc, &t, &raw, &raw_r, plan, &mut rng)?;
    let clients = args.clients.unwrap_or(n).max(100);
    front_desk::run(&svc, t.tenant, &mut raw, &raw_r, clients, plan.gets / 2, plan.rounds)?;
    let jobs = args.jobs.unwrap_or(if args.quick { 500 } else { 100_000 });
    field_work::run(&svc, t.tenant, &raw_r, jobs, (plan.gets / 20).max(50), plan.rounds)?;
    let upserts = args.upserts.unwrap_or(if args.quick { 2_000 } else { 100_000 });
    run_upserts(&svc, upserts, &mut rng)?;
    run_job_upserts(&svc, (upserts / 10).max(100))?;
    let sync_leads = args.sync_leads.unwrap_or(if args.quick { 3_000 } else { 100_000 });
    let dir = tempfile::tempdir()?;
    sync::run(dir.path(), sync_leads.max(2_000), &mut rng)
}

/// Upserts from an external system: `n` leads upserted as JSON rows twice, the first pass creating
/// every record and the second finding every row unchanged (skipped by its hash, nothing written),
/// each beside the CSV import of the same rows in this run (all-or-nothing, into a tenant of its
/// own, as the upserts get theirs). `upsert_create` / `upsert_unchanged`: seconds, ratio to the
/// import; `*_rate`: rows (created, or skipped) per second beside the import's rows per second.
fn run_upserts(svc: &Svc, n: usize, rng: &mut Rng) -> Res<()> {
    let now = SystemClock.now();
    let imported = setup_tenant(svc)?;
    let upserted = setup_tenant(svc)?;
    let rows = gen_leads(rng, n, imported.owners.len(), "U", now);
    let csv = lead_csv(&rows, &imported.owners);
    let opts = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let (import_t, report) = time(|| Ok(block(svc.import_csv(&imported.manager, "lead", csv.as_slice(), &opts))?))?;
    check_import("lead (upsert baseline)", &report, n)?;
    drop(csv);
    // The same rows as JSON objects, made as the upsert reads them (a chunk at a time).
    let json_rows = || {
        rows.iter().map(|r| {
            let o = upserted.owners[r.owner];
            let mut m = lead_input(r);
            m.insert("owner_id".into(), Json::String(o.id.to_string()));
            m.insert("team_id".into(), Json::String(o.team.to_string()));
            Ok(Json::Object(m))
        })
    };
    let up = UpsertOptions::new("bench");
    let (first_t, first) = time(|| Ok(block(svc.upsert_rows(&upserted.manager, "lead", &up, json_rows()))?))?;
    let (second_t, second) = time(|| Ok(block(svc.upsert_rows(&upserted.manager, "lead", &up, json_rows()))?))?;
    if first.created as usize != n || second.unchanged as usize != n || first.rejected + second.rejected > 0 {
        return Err(format!(
            "upserts of {n} rows: first {} created, {} refused {:?}; second {} unchanged",
            first.created,
            first.rejected,
            first.results.first(),
            second.unchanged
        )
        .into());
    }
    eprintln!("upserts: import {import_t:?}, first pass (creates) {first_t:?}, second pass (unchanged) {second_t:?}");
    let import_rate = n as f64 / import_t.as_secs_f64();
    emit(
        "upsert_create",
        first_t.as_secs_f64(),
        "s",
        Some(import_t.as_secs_f64()),
        n,
    );
    emit(
        "upsert_create_rate",
        n as f64 / first_t.as_secs_f64(),
        "rows/s",
        Some(import_rate),
        n,
    );
    emit(
        "upsert_unchanged",
        second_t.as_secs_f64(),
        "s",
        Some(import_t.as_secs_f64()),
        n,
    );
    emit(
        "upsert_unchanged_rate",
        n as f64 / second_t.as_secs_f64(),
        "rows/s",
        Some(import_rate),
        n,
    );
    Ok(())
}

/// The scheduler's sync: `n` jobs upserted with five steps each nested in the row (bound by their
/// own ids; the job derives its step count and progress from them, in one change set), beside the
/// same jobs upserted without steps into a tenant of their own in this run; then the same rows again
/// (all unchanged: nothing written) and the rows with one step of each job renamed (each job and
/// one step updated).
fn run_job_upserts(svc: &Svc, n: usize) -> Res<()> {
    const STEPS: usize = 5;
    let bare = setup_tenant(svc)?;
    let nested = setup_tenant(svc)?;
    let contact = |t: &Tenant| -> Res<String> {
        let c = block(svc.create(&t.manager, "contact", &obj(json!({"first_name": "Cleo"}))))?;
        Ok(c.id.to_string())
    };
    let (bare_contact, nested_contact) = (contact(&bare)?, contact(&nested)?);
    let rows = |contact: &str, steps: bool, renamed: bool| -> Vec<Json> {
        (0..n)
            .map(|i| {
                let mut row = json!({"external_id": format!("J{i}"), "kind": "journey",
                    "title": format!("Journey {i}"), "contact_id": contact, "scheduled_on": "2031-03-04"});
                if steps {
                    row["job_steps"] = (1..=STEPS)
                        .map(|k| {
                            let name = if renamed && k == 2 {
                                "Drive (rerouted)".to_owned()
                            } else {
                                format!("Step {k}")
                            };
                            json!({"external_id": format!("J{i}-{k}"), "name": name, "position": k})
                        })
                        .collect();
                }
                row
            })
            .collect()
    };
    let up = UpsertOptions::new("scheduler");
    let run = |t: &Tenant, rows: Vec<Json>| -> Res<(std::time::Duration, crm_core::service::UpsertReport)> {
        time(|| {
            Ok(block(svc.upsert_rows(
                &t.manager,
                "job",
                &up,
                rows.into_iter().map(Ok),
            ))?)
        })
    };
    let (bare_t, b) = run(&bare, rows(&bare_contact, false, false))?;
    let (first_t, first) = run(&nested, rows(&nested_contact, true, false))?;
    let (same_t, same) = run(&nested, rows(&nested_contact, true, false))?;
    let (changed_t, changed) = run(&nested, rows(&nested_contact, true, true))?;
    let counts = (b.created, first.created, same.unchanged, changed.updated);
    if counts != (n as u64, n as u64, n as u64, n as u64) {
        return Err(format!(
            "job upserts of {n} rows: bare/first created, unchanged, updated {counts:?}; {:?}",
            first.results.first()
        )
        .into());
    }
    eprintln!(
        "job upserts: {n} bare {bare_t:?}, with {STEPS} steps {first_t:?}, unchanged {same_t:?}, one step renamed {changed_t:?}"
    );
    let first_s = first_t.as_secs_f64();
    emit("upsert_jobs_with_steps", first_s, "s", Some(bare_t.as_secs_f64()), n);
    emit("upsert_jobs_unchanged", same_t.as_secs_f64(), "s", Some(first_s), n);
    emit(
        "upsert_jobs_one_step_changed",
        changed_t.as_secs_f64(),
        "s",
        Some(first_s),
        n,
    );
    Ok(())
}

/// The raw equivalent of a full re-score: every lead (all columns) in id order, 1,000 at a time, with
/// its activities inside the model's lookback, decoded; a simple score computed; and (if `write`) an
/// `UPDATE` of the score fields of every lead, all in one transaction. Returns the rows written.
fn raw_rescore(c: &mut Connection, tenant: Id, cutoff: i64, version: i64, write: bool) -> Res<usize> {
    let tables = (LEAD.table, ACTIVITY.table);
    raw_rescore_in(c, tenant, tables, None, cutoff, version, write)
}

/// [`raw_rescore`] over the tables `(leads, activities)`, of every lead or (`ids`, sorted) of those
/// leads only, 1,000 a statement.
fn raw_rescore_in(
    c: &mut Connection,
    tenant: Id,
    (leads_table, acts_table): (&str, &str),
    ids: Option<&[Id]>,
    cutoff: i64,
    version: i64,
    write: bool,
) -> Res<usize> {
    const BATCH: usize = 1000;
    let lead_cols = read_columns(&LEAD);
    let act_cols = read_columns(&ACTIVITY);
    let col = |cols: &[&str], name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let (src_i, value_i) = (col(&lead_cols, "source")?, col(&lead_cols, "estimated_value")?);
    let lead_i = col(&act_cols, "lead_id")?;
    let params = |k: usize, from: usize| (0..k).map(|i| format!("?{}", i + from)).collect::<Vec<_>>().join(", ");
    let lead_sql = format!(
        "SELECT {} FROM {leads_table} WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT {BATCH}",
        lead_cols.join(", ")
    );
    let lead_in_sql = |k: usize| {
        format!(
            "SELECT {} FROM {leads_table} WHERE org_id = ?1 AND id IN ({}) ORDER BY id",
            lead_cols.join(", "),
            params(k, 2)
        )
    };
    let act_sql = |k: usize| {
        format!(
            "SELECT {} FROM {acts_table} WHERE org_id = ?1 AND occurred_at >= ?2 AND lead_id IN ({}) ORDER BY occurred_at DESC, id",
            act_cols.join(", "),
            params(k, 3)
        )
    };
    let update_sql = format!(
        "UPDATE {leads_table} SET score = ?1, temperature = ?2, score_model_version = ?3, scored_at = ?4 WHERE org_id = ?5 AND id = ?6"
    );
    let now = SystemClock.now().0;
    let tx = c.transaction()?;
    let mut written = 0;
    let mut after: Vec<u8> = Vec::new();
    let mut chunks = ids.map(|ids| ids.chunks(BATCH));
    loop {
        let leads: Vec<Vec<SqlValue>> = {
            let mut out = Vec::with_capacity(BATCH);
            let mut st;
            let mut q = match chunks.as_mut() {
                None => {
                    st = tx.prepare_cached(&lead_sql)?;
                    st.query((&tenant.as_bytes()[..], &after[..]))?
                }
                Some(c) => {
                    let Some(batch) = c.next() else { break };
                    st = tx.prepare_cached(&lead_in_sql(batch.len()))?;
                    st.raw_bind_parameter(1, &tenant.as_bytes()[..])?;
                    for (i, id) in batch.iter().enumerate() {
                        st.raw_bind_parameter(i + 2, &id.as_bytes()[..])?;
                    }
                    st.raw_query()
                }
            };
            while let Some(r) = q.next()? {
                out.push(decode_row(r, lead_cols.len())?);
            }
            out
        };
        let Some(last) = leads.last() else {
            if chunks.is_some() { continue } else { break }
        };
        after = match &last[0] {
            SqlValue::Blob(b) => b.clone(),
            _ => return Err("lead id is not a blob".into()),
        };
        let mut by_lead: HashMap<Vec<u8>, Vec<Vec<SqlValue>>> = HashMap::new();
        {
            let mut st = tx.prepare_cached(&act_sql(leads.len()))?;
            st.raw_bind_parameter(1, &tenant.as_bytes()[..])?;
            st.raw_bind_parameter(2, cutoff)?;
            for (i, l) in leads.iter().enumerate() {
                st.raw_bind_parameter(i + 3, &l[0])?;
            }
            let mut q = st.raw_query();
            while let Some(r) = q.next()? {
                let a = decode_row(r, act_cols.len())?;
                if let SqlValue::Blob(b) = &a[lead_i] {
                    by_lead.entry(b.clone()).or_default().push(a);
                }
            }
        }
        let mut up = tx.prepare_cached(&update_sql)?;
        for l in &leads {
            let SqlValue::Blob(id) = &l[0] else { continue };
            let n_acts = by_lead.get(id).map_or(0, Vec::len) as i64;
            let source = match &l[src_i] {
                SqlValue::Text(s) => s.as_str(),
                _ => "",
            };
            let cents = match l[value_i] {
                SqlValue::Integer(c) => c,
                _ => 0,
            };
            let score = (raw_fit_score(source, cents) + 5 * n_acts).min(100);
            if write {
                up.execute((score, temperature(score), version, now, &tenant.as_bytes()[..], &id[..]))?;
                written += 1;
            } else {
                black_box(score);
            }
        }
    }
    tx.commit()?;
    Ok(written)
}

/// Loads up to `limit` leads (in id order) and their activities inside the model's lookback through
/// the store, for in-memory scoring.
fn load_scoring_set(svc: &Svc, tenant: Id, limit: usize, cutoff: i64) -> Res<Vec<(Record, Vec<Record>)>> {
    let store = svc.store();
    let mut out: Vec<(Record, Vec<Record>)> = Vec::with_capacity(limit);
    let mut after: Option<Id> = None;
    while out.len() < limit {
        let filter = after.map_or(Filter::All, |id| Filter::cmp("id", Op::Gt, id));
        let want = (limit - out.len()).min(1000) as u32;
        let leads = block(store.query(tenant, &LEAD, &StoreQuery::by_id(filter, want)))?;
        let Some(last) = leads.last() else { break };
        after = Some(last.id);
        let q = StoreQuery {
            filter: Filter::and([
                Filter::In {
                    field: "lead_id".into(),
                    values: leads.iter().map(|l| Value::Id(l.id)).collect(),
                },
                Filter::cmp("occurred_at", Op::Ge, Timestamp(cutoff)),
            ]),
            sort: vec![SortKey::desc("occurred_at"), SortKey::asc("id")],
            limit: u32::MAX,
        };
        let mut by_lead: HashMap<Id, Vec<Record>> = HashMap::new();
        for a in block(store.query(tenant, &ACTIVITY, &q))? {
            if let Some(l) = a.id_of("lead_id") {
                by_lead.entry(l).or_default().push(a);
            }
        }
        for l in leads {
            let acts = by_lead.remove(&l.id).unwrap_or_default();
            out.push((l, acts));
        }
    }
    Ok(out)
}

/// Prints the query plans of the raw list query and of the store's (to stderr).
fn explain_list(raw: &Connection, list_sql: &str, tenant: Id) -> Res<()> {
    let store_q = StoreQuery {
        filter: Filter::and([
            Filter::eq("status", "new"),
            Filter::cmp("owner_id", Op::Eq, Value::Id(tenant)),
        ]),
        // As the binder orders a `-score` page: the `id` tiebreak runs in the last key's direction.
        sort: vec![SortKey::desc("score"), SortKey::desc("id")],
        limit: 51,
    };
    let store_sql = crm_store::sql::select(&LEAD, tenant, &store_q, crm_store::Backend::Sqlite)?.0;
    print_plans(raw, "list_page", &[("raw", list_sql), ("store", &store_sql)])
}

/// The quote measurements: `create_quote` (a 20-line quote through `Service::create`) and
/// `list_quotes` (a page of quotes with their totals), each beside raw SQLite on the same file.
fn run_quotes(svc: &Svc, t: &Tenant, raw: &Connection, raw_r: &Connection, plan: Plan, rng: &mut Rng) -> Res<()> {
    let now = SystemClock.now();
    let tenant_b = t.tenant.as_bytes().to_vec();
    let actor = &t.sales[0];
    let me = *t
        .owners
        .iter()
        .find(|o| Some(o.id) == actor.user_id)
        .ok_or("sales user is not an owner")?;
    // The customers: contacts of the sales user (inside their team's scope).
    let contacts: Vec<Id> = (0..20)
        .map(|_| {
            let input = obj(json!({"first_name": rng.pick(FIRST), "last_name": rng.pick(LAST)}));
            Ok(block(svc.create(actor, "contact", &input))?.id)
        })
        .collect::<Res<_>>()?;

    // ---- seed: quotes of a few lines through the service, spread over the five owners ----
    let seed = gen_quotes(rng, plan.quotes, SEED_QUOTE_LINES, &contacts, "S", now);
    let (seed_t, ()) = time(|| {
        for (i, q) in seed.iter().enumerate() {
            let input = quote_input(q, Some(t.owners[i % t.owners.len()]));
            black_box(block(svc.create(&t.manager, "quote", &input))?);
        }
        Ok(())
    })?;
    eprintln!(
        "quotes: seeded {} quotes of {SEED_QUOTE_LINES} lines through the service in {seed_t:?}",
        seed.len()
    );
    drop(seed);

    // ---- create_quote ----
    let raw_quotes = clone_table(raw, QUOTE.table, true)?;
    let raw_lines = clone_table(raw, QUOTE_LINE.table, true)?;
    let mut number = 0i64;
    let raw_batches: Vec<Vec<RawQuote>> = (0..=plan.rounds)
        .map(|round| {
            gen_quotes(
                rng,
                plan.quote_creates,
                QUOTE_LINES,
                &contacts,
                &format!("R{round}-"),
                now,
            )
            .into_iter()
            .map(|q| {
                number += 1;
                raw_quote(q, number, me, now)
            })
            .collect::<Res<_>>()
        })
        .collect::<Res<_>>()?;
    let svc_rows: Vec<Vec<QuoteRow>> = (0..=plan.rounds)
        .map(|round| {
            gen_quotes(
                rng,
                plan.quote_creates,
                QUOTE_LINES,
                &contacts,
                &format!("C{round}-"),
                now,
            )
        })
        .collect();
    let svc_batches: Vec<Vec<Map<String, Json>>> = svc_rows
        .iter()
        .map(|b| b.iter().map(|q| quote_input(q, None)).collect())
        .collect();
    let (q_cols, l_cols) = (insert_columns(&QUOTE), insert_columns(&QUOTE_LINE));
    let (q_sql, l_sql) = (insert_sql(&raw_quotes, &q_cols), insert_sql(&raw_lines, &l_cols));
    let mut first: Option<Record> = None;
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |round| {
            for q in &raw_batches[round] {
                raw.execute_batch("BEGIN IMMEDIATE")?;
                {
                    let mut st = raw.prepare_cached(&q_sql)?;
                    bind_quote(&mut st, &q_cols, q, t.tenant, now)?;
                    let mut st = raw.prepare_cached(&l_sql)?;
                    for i in 0..q.line_ids.len() {
                        bind_quote_line(&mut st, &l_cols, q, i, t.tenant, now)?;
                    }
                }
                raw.execute_batch("COMMIT")?;
            }
            Ok(())
        },
        |round| {
            for input in &svc_batches[round] {
                let rec = block(svc.create(actor, "quote", input))?;
                if first.is_none() {
                    first = Some(rec);
                } else {
                    black_box(rec);
                }
            }
            Ok(())
        },
    )?;
    // The service derived the same totals the baseline stores (both from the core).
    let expected = quote_totals(&svc_rows[0][0])?;
    let got = first
        .as_ref()
        .map(|r| (r.get("total").cloned(), r.get("line_count").cloned()));
    if got != Some((Some(Value::Money(expected.total)), Some(Value::Int(QUOTE_LINES as i64)))) {
        eprintln!(
            "WARNING create_quote: the service's first quote has (total, line_count) {got:?}, expected {:?}",
            expected.total
        );
    }
    emit(
        "create_quote",
        per_op(svc_t, plan.quote_creates, 1e6),
        "us/op",
        Some(per_op(raw_t, plan.quote_creates, 1e6)),
        plan.quote_creates,
    );
    drop((raw_batches, svc_batches));
    raw.execute_batch(&format!("DROP TABLE {raw_lines}; DROP TABLE {raw_quotes}"))?;

    // ---- list_quotes: the newest page of the team's quotes, with their totals ----
    let cols = read_columns(&QUOTE);
    let list_sql = format!(
        "SELECT {} FROM quotes WHERE org_id = ?1 AND (team_id = ?2 OR owner_id = ?3) ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT 51",
        cols.join(", ")
    );
    explain_quotes(raw_r, &list_sql, actor)?;
    let team_b = actor.team_id.ok_or("sales user has no team")?.as_bytes().to_vec();
    let me_b = me.id.as_bytes().to_vec();
    let req = ListRequest {
        sort: vec![SortKey::desc("created_at")],
        limit: Some(50),
        ..Default::default()
    };
    let (mut raw_ids, mut svc_ids) = (Vec::new(), Vec::new());
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |_| {
            let mut st = raw_r.prepare_cached(&list_sql)?;
            for _ in 0..plan.lists {
                let mut q = st.query((&tenant_b[..], &team_b[..], &me_b[..]))?;
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
            for _ in 0..plan.lists {
                let page = block(svc.list(actor, "quote", &req))?;
                svc_ids = page.items.iter().map(|r| Some(r.id)).collect();
                black_box(page);
            }
            Ok(())
        },
    )?;
    if raw_ids != svc_ids || svc_ids.len() != 50 {
        eprintln!(
            "WARNING list_quotes: raw and service pages differ ({} and {} rows)",
            raw_ids.len(),
            svc_ids.len()
        );
    }
    emit(
        "list_quotes",
        per_op(svc_t, plan.lists, 1e6),
        "us/op",
        Some(per_op(raw_t, plan.lists, 1e6)),
        plan.lists,
    );
    Ok(())
}

/// An aggregate measured through the service and raw: its name, the request, and the SQL doing the
/// same grouping on SQLite and on PostgreSQL (the tenant bound as the one parameter; the row count in
/// the last column).
pub(crate) struct AggregateCase {
    pub name: &'static str,
    pub req: AggregateRequest,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The funnel (`by=status`, count and sum of the value) and `by=source,created_at:month`.
pub(crate) fn aggregate_cases() -> Res<[AggregateCase; 2]> {
    Ok([
        AggregateCase {
            name: "aggregate_funnel",
            req: AggregateRequest {
                group_by: vec!["status".parse()?],
                measures: vec![Measure::Sum("estimated_value".into()), Measure::Count],
                ..Default::default()
            },
            sqlite: "SELECT status, SUM(estimated_value), COUNT(*) FROM leads WHERE org_id = ?1 GROUP BY status",
            postgres: "SELECT status, CAST(SUM(estimated_value) AS bigint), COUNT(*) FROM leads WHERE org_id = $1 \
                       GROUP BY status",
        },
        AggregateCase {
            name: "aggregate_source_month",
            req: AggregateRequest {
                group_by: vec!["source".parse()?, "created_at:month".parse()?],
                measures: vec![Measure::Count],
                ..Default::default()
            },
            sqlite: "SELECT source, strftime('%Y-%m-01', created_at / 1000000, 'unixepoch'), COUNT(*) \
                     FROM leads WHERE org_id = ?1 GROUP BY 1, 2",
            postgres: "SELECT source, to_char(to_timestamp(created_at / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-01'), \
                       COUNT(*) FROM leads WHERE org_id = $1 GROUP BY 1, 2",
        },
    ])
}

/// The groups and rows of a service aggregate, to compare with the raw side's.
pub(crate) fn groups_and_rows(a: &crm_core::service::Aggregate) -> (usize, u64) {
    (a.groups.len(), a.groups.iter().map(|g| g.count).sum())
}

/// The [`aggregate_cases`] through the service, each beside its raw SQL on the same file; the
/// answers must agree in their number of groups and rows.
fn aggregates(svc: &Svc, reader: &Actor, raw: &Connection, tenant: &[u8], rounds: usize) -> Res<()> {
    for AggregateCase {
        name, req, sqlite: sql, ..
    } in aggregate_cases()?
    {
        print_plans(raw, name, &[("raw", sql)])?;
        let (mut raw_seen, mut svc_seen) = ((0, 0), (0, 0));
        let (raw_t, svc_t) = alternate(
            rounds,
            |_| {
                let mut st = raw.prepare_cached(sql)?;
                let last = st.column_count() - 1;
                let mut q = st.query([tenant])?;
                raw_seen = (0, 0);
                while let Some(r) = q.next()? {
                    raw_seen.0 += 1;
                    raw_seen.1 += r.get::<_, i64>(last)? as u64;
                    black_box(r.get_ref(0)?);
                }
                Ok(())
            },
            |_| {
                let a = block(svc.aggregate(reader, "lead", &req))?;
                svc_seen = groups_and_rows(&a);
                black_box(a);
                Ok(())
            },
        )?;
        if raw_seen != svc_seen {
            return Err(format!("{name}: raw (groups, rows) {raw_seen:?}, service {svc_seen:?}").into());
        }
        eprintln!("{name}: {svc_seen:?} (groups, leads); service {svc_t:?}, raw {raw_t:?}");
        emit(
            name,
            svc_t.as_secs_f64() * 1e6,
            "us/op",
            Some(raw_t.as_secs_f64() * 1e6),
            svc_seen.1 as usize,
        );
    }
    Ok(())
}

/// Prints the store's SQL and the query plans of the raw quote list and of the store's (to stderr).
fn explain_quotes(raw: &Connection, list_sql: &str, actor: &Actor) -> Res<()> {
    let store_q = StoreQuery {
        filter: actor.scope_filter(&QUOTE, Scope::Team),
        sort: vec![SortKey::desc("created_at"), SortKey::desc("id")],
        limit: 51,
    };
    let store_sql = crm_store::sql::select(&QUOTE, actor.tenant, &store_q, crm_store::Backend::Sqlite)?.0;
    eprintln!("list_quotes store SQL: {store_sql}");
    print_plans(raw, "list_quotes", &[("raw", list_sql), ("store", &store_sql)])
}

/// Prints the query plan of each statement (to stderr), its parameters bound to NULL.
fn print_plans(raw: &Connection, what: &str, sqls: &[(&str, &str)]) -> Res<()> {
    for (who, sql) in sqls {
        let mut st = raw.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let nulls = vec![rusqlite::types::Null; st.parameter_count()];
        let plan: Vec<String> = st
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
            .collect::<Result<_, _>>()?;
        eprintln!("{what} plan ({who}): {}", plan.join(" | "));
    }
    Ok(())
}

/// The lead's id as the text a stage change names it by (`record_id`), from the id column (a blob).
const LEAD_ID_TEXT: &str = "lower(substr(hex(l.id), 1, 8) || '-' || substr(hex(l.id), 9, 4) || '-' || \
                            substr(hex(l.id), 13, 4) || '-' || substr(hex(l.id), 17, 4) || '-' || substr(hex(l.id), 21))";

/// The funnel report (`svc.funnel`) beside the raw grouping by status, and the forecast report
/// (`svc.forecast`) beside raw SQL grouping leads by status and expected close month and the won
/// leads by the month of their latest change into `won`. The answers must agree in the leads they
/// count (and, for the forecast, the won leads).
fn reports(svc: &Svc, reader: &Actor, raw: &Connection, tenant: &[u8], rounds: usize) -> Res<()> {
    let funnel_sql = "SELECT status, SUM(estimated_value), COUNT(*) FROM leads WHERE org_id = ?1 GROUP BY status";
    let open_sql = "SELECT status, substr(expected_close_date, 1, 7), SUM(estimated_value), COUNT(*) FROM leads \
                    WHERE org_id = ?1 GROUP BY 1, 2";
    let won_sql = format!(
        "SELECT strftime('%Y-%m', w.at / 1000000, 'unixepoch'), SUM(l.estimated_value), COUNT(*) FROM leads l \
         LEFT JOIN (SELECT record_id, MAX(at) AS at FROM stage_changes WHERE org_id = ?1 AND entity = 'lead' \
         AND to_state = 'won' GROUP BY record_id) w ON w.record_id = {LEAD_ID_TEXT} \
         WHERE l.org_id = ?1 AND l.status = 'won' GROUP BY 1"
    );
    print_plans(raw, "report_forecast", &[("raw open", open_sql), ("raw won", &won_sql)])?;
    let count_rows = |sql: &str| -> Res<u64> {
        let mut st = raw.prepare_cached(sql)?;
        let last = st.column_count() - 1;
        let mut q = st.query([tenant])?;
        let mut n = 0u64;
        while let Some(r) = q.next()? {
            n += r.get::<_, i64>(last)? as u64;
            black_box(r.get_ref(0)?);
        }
        Ok(n)
    };

    let (mut raw_n, mut svc_n) = (0, 0);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            raw_n = count_rows(funnel_sql)?;
            Ok(())
        },
        |_| {
            let f = block(svc.funnel(reader, None))?;
            svc_n = f.total;
            black_box(f);
            Ok(())
        },
    )?;
    if raw_n != svc_n {
        return Err(format!("report_funnel: raw counted {raw_n} leads, service {svc_n}").into());
    }
    eprintln!("report_funnel: {svc_n} leads; service {svc_t:?}, raw {raw_t:?}");
    emit(
        "report_funnel",
        svc_t.as_secs_f64() * 1e6,
        "us/op",
        Some(raw_t.as_secs_f64() * 1e6),
        svc_n as usize,
    );

    let (mut raw_won, mut svc_won) = (0, 0);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            black_box(count_rows(open_sql)?);
            raw_won = count_rows(&won_sql)?;
            Ok(())
        },
        |_| {
            let f = block(svc.forecast(reader, None))?;
            svc_won = f.months.iter().map(|m| m.won_leads).sum();
            black_box(f);
            Ok(())
        },
    )?;
    if raw_won != svc_won {
        return Err(format!("report_forecast: raw counted {raw_won} won leads, service {svc_won}").into());
    }
    eprintln!("report_forecast: {svc_won} won leads; service {svc_t:?}, raw {raw_t:?}");
    emit(
        "report_forecast",
        svc_t.as_secs_f64() * 1e6,
        "us/op",
        Some(raw_t.as_secs_f64() * 1e6),
        svc_n as usize,
    );

    // Productivity: activities by owner, kind and ISO week (Monday, UTC); each owner's first
    // activity per lead; the creation time of the touched leads.
    let weeks_sql = "SELECT owner_id, kind, date(occurred_at / 1000000, 'unixepoch', '-6 days', 'weekday 1'), \
                     COUNT(*) FROM activities WHERE org_id = ?1 GROUP BY 1, 2, 3";
    let touches_sql = "SELECT owner_id, lead_id, MIN(occurred_at), COUNT(*) FROM activities \
                       WHERE org_id = ?1 AND lead_id IS NOT NULL GROUP BY 1, 2";
    let created_sql = "SELECT l.created_at, COUNT(*) FROM leads l WHERE l.org_id = ?1 AND l.id IN \
                       (SELECT lead_id FROM activities WHERE org_id = ?1 AND lead_id IS NOT NULL) GROUP BY l.id";
    print_plans(
        raw,
        "report_productivity",
        &[
            ("raw weeks", weeks_sql),
            ("raw touches", touches_sql),
            ("raw created", created_sql),
        ],
    )?;
    let (mut raw_acts, mut svc_acts) = (0, 0);
    let (raw_t, svc_t) = alternate(
        rounds,
        |_| {
            raw_acts = count_rows(weeks_sql)?;
            black_box(count_rows(touches_sql)?);
            black_box(count_rows(created_sql)?);
            Ok(())
        },
        |_| {
            let req = crm_core::service::ReportRequest::default();
            let kind = crm_core::service::ReportKind::Productivity;
            if let crm_core::service::ReportAnswer::Productivity(p) = block(svc.report(reader, kind, &req))? {
                svc_acts = p.activities;
                black_box(p);
            }
            Ok(())
        },
    )?;
    if raw_acts != svc_acts {
        return Err(format!("report_productivity: raw counted {raw_acts} activities, service {svc_acts}").into());
    }
    eprintln!("report_productivity: {svc_acts} activities; service {svc_t:?}, raw {raw_t:?}");
    emit(
        "report_productivity",
        svc_t.as_secs_f64() * 1e6,
        "us/op",
        Some(raw_t.as_secs_f64() * 1e6),
        svc_acts as usize,
    );
    Ok(())
}
