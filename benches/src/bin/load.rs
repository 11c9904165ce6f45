//! The HTTP load benchmark: `crm serve` (crm-server) on loopback over a SQLite file of N leads, driven
//! by a closed-loop load generator (tokio + hyper-util, keep-alive), each scenario next to the same
//! use case called in-process through `crm_core::service::Service` on the same file, in the same run.
//!
//! 1. Prepares (or reuses, with `--database`) a file with a bench tenant of N leads (imported through
//!    the service in chunks of 50,000, the harness's fast path) and bench users with a password.
//! 2. Starts `target/release/crm serve` on a free loopback port (fixed JWT secret, rate limit raised
//!    out of the way), signs the users in, creates API keys.
//! 3. One request at a time: GET lead over HTTP against `Service::get`, and `GET /healthz`.
//! 4. For `get_lead`, `list_page` and `create_lead`: in-process baseline (`--concurrency` threads), then
//!    HTTP (`--concurrency` connections), `--seconds` each; throughput, exact p50/p99, statuses, server
//!    and generator CPU per request. `healthz` over HTTP only: the floor of the HTTP stack.
//! 5. Saturation: restarts the server with a small `CRM_MAX_IN_FLIGHT` and a per-caller rate limit and
//!    hits it with `--sat-concurrency` connections spread over several users and API keys: shares of
//!    200/503/429, p99 of accepted requests, the server's RSS before and after.
//!
//! stdout: one JSON object per line (the harness's keys plus details); a human summary goes to stderr.
//!
//! ```text
//! cargo run --release -p crm-bench --bin load -- [--leads N] [--concurrency C] [--seconds S] [--database PATH]
//! ```

#[path = "../proc_mem.rs"]
mod proc_mem;

use clap::Parser;
use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::demo::{CITIES, FIRST, LAST, PROJECTS, Rng, STATUSES};
use crm_core::entity::{LEAD, LEAD_SOURCES};
use crm_core::query::{Filter, ListRequest, SortKey};
use crm_core::service::{ImportMode, ImportOptions, Service};
use crm_core::store::Store;
use crm_core::value::Id;
use crm_store::SqliteStore;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use proc_mem::Mem;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator `crm` runs with (ADR 0022), so both sides of every ratio use it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Res<T> = Result<T, Box<dyn Error>>;
type Svc = Service<Arc<SqliteStore>>;
type Http = Client<HttpConnector, Full<Bytes>>;

const ORG_NAME: &str = "Load Bench Roofing";
const ADMIN_EMAIL: &str = "load-admin@bench.test";
const PASSWORD: &str = "load-bench-password-0123456789";
const JWT_SECRET: &str = "load-bench-jwt-secret-load-bench-jwt-secret";
/// Leads imported per `import_csv` call while seeding.
const CHUNK: usize = 50_000;
/// Lead ids sampled for `get_lead`.
const SAMPLE: usize = 10_000;
/// "No limit" for the fixed-concurrency phases.
const HIGH_RATE: u32 = 1_000_000_000;
/// Statuses the `list_page` scenario cycles through, following each for up to `LIST_DEPTH` pages.
const LIST_STATUSES: &[&str] = &["new", "contacted", "qualified", "appointment_set", "proposal_sent"];
const LIST_DEPTH: usize = 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "HTTP load benchmark of `crm serve` on loopback: JSON lines on stdout, ratios against the in-process service"
)]
struct Args {
    /// Leads in the bench tenant (topped up by import when the file has fewer).
    #[arg(long, default_value_t = 1_000_000)]
    leads: usize,
    /// Connections (HTTP) and threads (in-process baseline) of the fixed-concurrency phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured seconds at the start of every HTTP phase.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// SQLite file to create or reuse (the bench tenant is found by its admin's email); a temporary
    /// file by default.
    #[arg(long)]
    database: Option<PathBuf>,
    /// The `crm` binary; by default the `crm` next to this binary (`target/release/crm`).
    #[arg(long)]
    crm_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p crm-cli -p crm-bench` first (it runs when started through
    /// cargo and `--crm-bin` is not given).
    #[arg(long)]
    no_build: bool,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Connections of the saturation phase.
    #[arg(long, default_value_t = 256)]
    sat_concurrency: usize,
    /// `CRM_MAX_IN_FLIGHT` of the saturation server.
    #[arg(long, default_value_t = 16)]
    sat_in_flight: usize,
    /// Callers of the saturation phase: half users (access tokens), half API keys.
    #[arg(long, default_value_t = 8)]
    sat_keys: usize,
    /// `CRM_RATE_LIMIT` (per caller, requests/s) of the saturation server; by default the fair share
    /// of the measured `get_lead` throughput (throughput / callers). The burst is the same number.
    #[arg(long)]
    sat_rate: Option<u32>,
    /// Fixed-concurrency scenarios to run, comma-separated (`healthz`, `get_lead`, `list_page`,
    /// `create_lead`); the saturation phase needs `get_lead`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "healthz,get_lead,list_page,create_lead",
        value_parser = clap::builder::PossibleValuesParser::new(["healthz", "get_lead", "list_page", "create_lead"]),
    )]
    scenarios: Vec<String>,
    /// Skip the saturation phase.
    #[arg(long)]
    no_saturation: bool,
}

/// When the run started (progress lines carry the time since).
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// A progress line on stderr, with the seconds since the start.
macro_rules! note {
    ($($t:tt)*) => {
        eprintln!("[{:>6.1} s] {}", START.get_or_init(Instant::now).elapsed().as_secs_f64(), format!($($t)*))
    };
}

fn main() {
    START.get_or_init(Instant::now);
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("load failed: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------

/// Rounds to 4 significant digits.
fn sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 4 - 1 - x.abs().log10().floor() as i32;
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Prints one result line: the harness's keys, then `extra`. `ratio` is the cost against the
/// baseline, lower is better: `value / baseline` on time and size lines, `baseline / value` on
/// throughput lines (`/s`); `null` without a baseline.
fn emit(name: &str, value: f64, unit: &str, baseline: Option<f64>, n: usize, extra: Json) {
    let ratio = baseline.filter(|b| *b > 0.0 && value > 0.0).map(|b| {
        if unit.ends_with("/s") {
            sig(b / value)
        } else {
            sig(value / b)
        }
    });
    let mut line = Map::new();
    line.insert("name".into(), json!(name));
    line.insert("value".into(), json!(sig(value)));
    line.insert("unit".into(), json!(unit));
    line.insert("baseline".into(), json!(baseline.map(sig)));
    line.insert("baseline_unit".into(), json!(unit));
    line.insert("ratio".into(), json!(ratio));
    line.insert("n".into(), json!(n));
    if let Json::Object(m) = extra {
        line.extend(m);
    }
    println!("{}", Json::Object(line));
}

/// Latencies (ns) of one phase, with the statuses seen.
#[derive(Debug, Default)]
struct Stats {
    /// Latencies of the requests counted as accepted (the scenario's success status), sorted.
    ok: Vec<u64>,
    /// Latencies of every other answer, sorted.
    other: Vec<u64>,
    /// Status -> count (`0`: connection error, `1`: client timeout).
    status: BTreeMap<u16, usize>,
    /// The measured window.
    window: Duration,
    /// Server and load-generator CPU seconds over the phase (HTTP phases).
    cpu: Option<(f64, f64)>,
}

impl Stats {
    fn new(mut recs: Vec<(u16, u64)>, ok: u16, window: Duration) -> Stats {
        let mut s = Stats {
            window,
            ..Default::default()
        };
        for (st, _) in &recs {
            *s.status.entry(*st).or_default() += 1;
        }
        recs.sort_unstable_by_key(|r| r.1);
        for (st, ns) in recs {
            if st == ok {
                s.ok.push(ns);
            } else {
                s.other.push(ns);
            }
        }
        s
    }
    fn total(&self) -> usize {
        self.ok.len() + self.other.len()
    }
    fn ok_rps(&self) -> f64 {
        self.ok.len() as f64 / self.window.as_secs_f64().max(1e-9)
    }
    fn share(&self, status: u16) -> f64 {
        *self.status.get(&status).unwrap_or(&0) as f64 / self.total().max(1) as f64
    }
    fn status_json(&self) -> Json {
        let m: Map<String, Json> = self
            .status
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    0 => "connection_error".to_owned(),
                    1 => "timeout".to_owned(),
                    k => k.to_string(),
                };
                (key, json!(v))
            })
            .collect();
        Json::Object(m)
    }
}

/// Exact nearest-rank percentile of sorted nanoseconds, in microseconds.
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------------------

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

/// The bench tenant of the file: its id and admin, and every bench user (email, id).
#[derive(Debug)]
struct Bench {
    tenant: Id,
    admin: Actor,
    users: Vec<(String, Id)>,
    leads: usize,
}

/// Finds the bench tenant (by its admin's email) or creates it, makes sure `users` bench users exist
/// (the admin first) with the bench password, and tops the tenant up to `leads` leads.
fn prepare(svc: &Svc, leads: usize, users: usize) -> Res<Bench> {
    let mut found = None;
    for t in block(svc.tenants())? {
        if let Ok(a) = block(svc.actor_by_email(t, ADMIN_EMAIL)) {
            found = Some((t, a));
            break;
        }
    }
    let (tenant, team) = match &found {
        Some((t, a)) => (*t, a.team_id),
        None => {
            let org = block(svc.create_organization(&obj(json!({"name": ORG_NAME}))))?;
            let team = block(svc.create(&Actor::system(org.id), "team", &obj(json!({"name": "Load"}))))?;
            (org.id, Some(team.id))
        }
    };
    let system = Actor::system(tenant);
    // One hash for every bench user (argon2 is slow on purpose).
    let phc = crm_server::auth::password::hash_now(PASSWORD);
    let same = |_: &str| -> crm_core::Result<String> { Ok(phc.clone()) };
    let mut out = Vec::new();
    for i in 0..users.max(1) {
        let email = if i == 0 {
            ADMIN_EMAIL.to_owned()
        } else {
            format!("load-user{i}@bench.test")
        };
        let id = match block(svc.actor_by_email(tenant, &email)) {
            Ok(a) => a.user_id.ok_or("bench user without a user id")?,
            Err(_) => {
                let mut input = json!({"name": format!("Load User {i}"), "email": email, "role": "admin"});
                if let Some(team) = team {
                    input["team_id"] = json!(team.to_string());
                }
                block(svc.create(&system, "user", &obj(input)))?.id
            }
        };
        block(svc.set_password(&system, id, PASSWORD, &same))?;
        out.push((email, id));
    }
    let admin = block(svc.actor(tenant, out[0].1))?;
    let mut have = block(svc.store().count(tenant, &LEAD, &Filter::All))? as usize;
    if have < leads {
        note!("seeding: {have} leads in the bench tenant, importing {}", leads - have);
        let t0 = Instant::now();
        let nonce = now_micros();
        let mut rng = Rng(0x10AD ^ nonce);
        let opts = ImportOptions {
            mode: ImportMode::AllOrNothing,
            ..Default::default()
        };
        let mut chunk_no = 0;
        while have < leads {
            let n = (leads - have).min(CHUNK);
            let csv = lead_csv(&mut rng, n, &format!("LB{nonce:x}-{chunk_no}-"));
            let rep = block(svc.import_csv(&admin, "lead", csv.as_slice(), &opts))?;
            if rep.created as usize != n || !rep.applied {
                let first: Vec<String> = rep
                    .errors
                    .iter()
                    .take(3)
                    .map(|e| format!("row {}: {:?}", e.row, e.errors))
                    .collect();
                return Err(format!("seeding: {n} rows, {} created; {first:?}", rep.created).into());
            }
            have += n;
            chunk_no += 1;
            note!(
                "seeding: {have}/{leads} leads ({:.0} s, {:.0} leads/s)",
                t0.elapsed().as_secs_f64(),
                (have as f64) / t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(Bench {
        tenant,
        admin,
        users: out,
        leads: have,
    })
}

/// Microseconds since the epoch (unique tags for generated data).
fn now_micros() -> u64 {
    use crm_core::clock::Clock;
    SystemClock.now().0 as u64
}

const PRIORITIES: &[&str] = &["low", "medium", "medium", "high", "urgent"];
const VALUES: &[u64] = &[3_500, 8_000, 12_500, 18_000, 26_000, 45_000];

/// `n` generated leads as CSV (the harness's data, owned by the importing admin).
fn lead_csv(rng: &mut Rng, n: usize, prefix: &str) -> Vec<u8> {
    let mut s = String::with_capacity(n * 180 + 200);
    s.push_str(
        "first_name,last_name,email,phone,city,region,source,status,project_type,estimated_value,priority,external_id,lost_reason\n",
    );
    for i in 0..n {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let status = rng.pick(STATUSES);
        let email = if rng.chance(60) {
            format!(
                "{}.{}.{prefix}{i}@mail.example",
                first.to_lowercase(),
                last.to_lowercase()
            )
        } else {
            String::new()
        };
        let phone = if rng.chance(80) {
            format!("720-555-{:04}", rng.below(10_000))
        } else {
            String::new()
        };
        let value = VALUES[rng.index(VALUES.len())] + rng.below(2000);
        let lost = if status == "lost" { "price" } else { "" };
        let _ = writeln!(
            s,
            "{first},{last},{email},{phone},{},CO,{},{status},{},{value}.{:02},{},{prefix}{i},{lost}",
            rng.pick(CITIES),
            rng.pick(LEAD_SOURCES),
            rng.pick(PROJECTS),
            rng.below(100),
            rng.pick(PRIORITIES),
        );
    }
    s.into_bytes()
}

/// A random sample of the tenant's lead ids (straight from the file).
fn sample_ids(path: &Path, tenant: Id, n: usize) -> Res<Vec<Id>> {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = c.prepare("SELECT id FROM leads WHERE org_id = ?1 ORDER BY random() LIMIT ?2")?;
    let rows = st.query_map((&tenant.as_bytes()[..], n as i64), |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::with_capacity(n);
    for r in rows {
        out.push(Id::from_slice(&r?)?);
    }
    if out.is_empty() {
        return Err("no leads to read".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `GET /healthz`: no authentication, no database; the floor of the HTTP stack (HTTP only).
    Health,
    Get,
    List,
    Create,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Health => "healthz",
            Kind::Get => "get_lead",
            Kind::List => "list_page",
            Kind::Create => "create_lead",
        }
    }
    fn ok(self) -> u16 {
        if self == Kind::Create { 201 } else { 200 }
    }
}

/// One worker's next request (and its state: the list cursor, the create counter).
#[derive(Debug)]
struct Job {
    kind: Kind,
    ids: Arc<Vec<Id>>,
    rng: Rng,
    /// `list_page`: status index, cursor, pages followed.
    status: usize,
    cursor: Option<String>,
    depth: usize,
    /// `create_lead`: unique email prefix and counter.
    tag: String,
    n: u64,
    /// In-process `list_page`: also write the page as the JSON the server answers with.
    json: bool,
}

impl Job {
    fn new(kind: Kind, ids: Arc<Vec<Id>>, worker: usize, tag: &str) -> Job {
        Job {
            kind,
            ids,
            rng: Rng(0xB00 + worker as u64),
            status: worker % LIST_STATUSES.len(),
            cursor: None,
            depth: 0,
            tag: format!("{tag}{worker}"),
            n: 0,
            json: false,
        }
    }

    fn next_id(&mut self) -> Id {
        self.ids[self.rng.index(self.ids.len())]
    }

    fn create_input(&mut self) -> Json {
        self.n += 1;
        json!({
            "first_name": "Load",
            "last_name": format!("Bench{}", self.n),
            "email": format!("load.{}.{}@bench.test", self.tag, self.n),
            "source": "website",
            "status": "new",
        })
    }

    /// Moves the list state on after a page: the next page, or the next status after `LIST_DEPTH`.
    fn page_done(&mut self, next: Option<String>) {
        self.depth += 1;
        match next {
            Some(c) if self.depth < LIST_DEPTH => self.cursor = Some(c),
            _ => {
                self.cursor = None;
                self.depth = 0;
                self.status = (self.status + 1) % LIST_STATUSES.len();
            }
        }
    }

    fn http(&mut self, base: &str, auth: &str) -> Res<Request<Full<Bytes>>> {
        let b = Request::builder().header("authorization", auth);
        let req = match self.kind {
            Kind::Health => Request::builder()
                .method("GET")
                .uri(format!("{base}/healthz"))
                .body(Full::new(Bytes::new()))?,
            Kind::Get => b
                .method("GET")
                .uri(format!("{base}/api/v1/leads/{}", self.next_id()))
                .body(Full::new(Bytes::new()))?,
            Kind::List => {
                let mut uri = format!(
                    "{base}/api/v1/leads?limit=50&sort=-score&q=status%3A{}",
                    LIST_STATUSES[self.status]
                );
                if let Some(c) = &self.cursor {
                    uri.push_str("&cursor=");
                    uri.push_str(&urlenc(c));
                }
                b.method("GET").uri(uri).body(Full::new(Bytes::new()))?
            }
            Kind::Create => b
                .method("POST")
                .uri(format!("{base}/api/v1/leads"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(self.create_input().to_string())))?,
        };
        Ok(req)
    }

    fn http_done(&mut self, status: u16, body: &[u8]) {
        if self.kind == Kind::List {
            let next = if status == 200 { next_cursor(body) } else { None };
            self.page_done(next);
        }
    }

    /// The same use case in-process.
    fn inproc(&mut self, svc: &Svc, actor: &Actor) -> crm_core::error::Result<()> {
        match self.kind {
            Kind::Health => {}
            Kind::Get => {
                std::hint::black_box(block(svc.get(actor, "lead", self.next_id()))?);
            }
            Kind::List => {
                let req = ListRequest {
                    q: Some(format!("status:{}", LIST_STATUSES[self.status])),
                    sort: vec![SortKey::desc("score")],
                    limit: Some(50),
                    cursor: self.cursor.take(),
                    ..Default::default()
                };
                let page = block(svc.list(actor, "lead", &req))?;
                self.page_done(page.next_cursor.clone());
                if self.json {
                    std::hint::black_box(page_json(&page));
                }
                std::hint::black_box(page);
            }
            Kind::Create => {
                let input = obj(self.create_input());
                std::hint::black_box(block(svc.create(actor, "lead", &input))?);
            }
        }
        Ok(())
    }
}

/// A page as the server writes its answer (`crm-server/src/routes/records.rs`): `items` and
/// `next_cursor`, straight from the records into a buffer sized once for the page.
fn page_json(page: &crm_core::query::Page<crm_core::record::Record>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 * (page.items.len() + 1));
    out.extend_from_slice(b"{\"items\":");
    let written = serde_json::to_writer(&mut out, &page.items).and_then(|()| {
        out.extend_from_slice(b",\"next_cursor\":");
        serde_json::to_writer(&mut out, &page.next_cursor)
    });
    if written.is_ok() {
        out.push(b'}');
    }
    out
}

/// The `next_cursor` of a page, found without parsing the page (the generator shares the machine's
/// two cores with the server: parsing 50 leads into `serde_json::Value` costs more client CPU than the
/// server spends on some requests). The key is the page's last; no lead field has that name.
fn next_cursor(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"next_cursor\":";
    let at = body.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let rest = std::str::from_utf8(&body[at..]).ok()?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

fn urlenc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The in-process baseline: `threads` threads calling the service for `dur` after a short warm-up.
fn inproc_phase(svc: &Svc, actor: &Actor, kind: Kind, ids: &Arc<Vec<Id>>, threads: usize, dur: Duration) -> Res<Stats> {
    inproc_phase_as(svc, actor, kind, false, ids, threads, dur)
}

/// [`inproc_phase`], a page also written as JSON when `json`.
fn inproc_phase_as(
    svc: &Svc,
    actor: &Actor,
    kind: Kind,
    json: bool,
    ids: &Arc<Vec<Id>>,
    threads: usize,
    dur: Duration,
) -> Res<Stats> {
    let warm = dur.min(Duration::from_millis(500));
    let start = Instant::now();
    let (measure, end) = (start + warm, start + warm + dur);
    let tag = format!("p{:x}-", now_micros());
    let recs: Vec<Vec<(u16, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let mut job = Job::new(kind, ids.clone(), w, &tag);
                job.json = json;
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let t0 = Instant::now();
                        if t0 >= end {
                            break;
                        }
                        let st = match job.inproc(svc, actor) {
                            Ok(()) => kind.ok(),
                            Err(_) => 500,
                        };
                        if t0 >= measure {
                            out.push((st, t0.elapsed().as_nanos() as u64));
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let window = end.saturating_duration_since(measure);
    let stats = Stats::new(recs.into_iter().flatten().collect(), kind.ok(), window);
    if stats.ok.is_empty() {
        return Err(format!("in-process {}: no successful call", kind.name()).into());
    }
    Ok(stats)
}

/// A closed-loop HTTP phase: `workers` tasks, each sending its next request as soon as the previous
/// answer is read, for `warmup + dur`; only requests started after the warm-up count.
/// `auth(worker)` is the worker's Authorization header. Also returns each worker's statuses.
#[allow(clippy::too_many_arguments)]
async fn http_phase(
    http: &Http,
    base: &str,
    kind: Kind,
    ids: &Arc<Vec<Id>>,
    workers: usize,
    auth: impl Fn(usize) -> String,
    warmup: Duration,
    dur: Duration,
    server_pid: u32,
) -> Res<(Stats, Vec<BTreeMap<u16, usize>>)> {
    let cpu0 = (cpu_seconds(server_pid), cpu_seconds(std::process::id()));
    let start = Instant::now();
    let (measure, end) = (start + warmup, start + warmup + dur);
    let tag = format!("h{:x}-", now_micros());
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let mut job = Job::new(kind, ids.clone(), w, &tag);
        let (http, base, auth) = (http.clone(), base.to_owned(), auth(w));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let Ok(req) = job.http(&base, &auth) else { break };
                let (status, body) = match tokio::time::timeout(REQUEST_TIMEOUT, send(&http, req)).await {
                    Ok(Ok((s, b))) => (s, b),
                    Ok(Err(_)) => (0, Bytes::new()),
                    Err(_) => (1, Bytes::new()),
                };
                let ns = t0.elapsed().as_nanos() as u64;
                if t0 >= measure {
                    out.push((status, ns));
                }
                job.http_done(status, &body);
                if status == 0 {
                    // A refused or reset connection: do not spin.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            out
        }));
    }
    let mut recs = Vec::new();
    let mut per_worker = Vec::with_capacity(workers);
    for t in tasks {
        let r = t.await?;
        let mut m = BTreeMap::new();
        for (st, _) in &r {
            *m.entry(*st).or_default() += 1;
        }
        per_worker.push(m);
        recs.extend(r);
    }
    let cpu1 = (cpu_seconds(server_pid), cpu_seconds(std::process::id()));
    let window = end.saturating_duration_since(measure);
    let mut stats = Stats::new(recs, kind.ok(), window);
    if let (Some(s0), Some(c0), Some(s1), Some(c1)) = (cpu0.0, cpu0.1, cpu1.0, cpu1.1) {
        stats.cpu = Some((s1 - s0, c1 - c0));
    }
    Ok((stats, per_worker))
}

async fn send(http: &Http, req: Request<Full<Bytes>>) -> Res<(u16, Bytes)> {
    let res = http.request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The server's count of database connections its store opened (`/metrics`), when it reports one.
async fn connections_opened(http: &Http, base: &str) -> Res<Option<u64>> {
    let req = Request::builder()
        .uri(format!("{base}/metrics"))
        .body(Full::new(Bytes::new()))?;
    let (_, body) = send(http, req).await?;
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("crm_store_connections_opened_total "))
        .and_then(|n| n.trim().parse().ok()))
}

async fn call(http: &Http, method: &str, url: &str, auth: Option<&str>, body: Option<Json>) -> Res<(u16, Json)> {
    let mut b = Request::builder().method(method).uri(url);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let bytes = match body {
        Some(j) => {
            b = b.header("content-type", "application/json");
            Bytes::from(j.to_string())
        }
        None => Bytes::new(),
    };
    let (status, body) = send(http, b.body(Full::new(bytes))?).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Json::Null)))
}

// ---------------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------------

/// `crm serve` as a child process; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
struct Server {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(bin: &Path, db: &Path, env: &[(&str, String)], log: PathBuf) -> Res<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("CRM_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--database")
            .arg(db)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("CRM_JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(log.with_extension("err"))?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits until `/healthz` answers 200.
    async fn ready(&mut self, http: &Http) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(st) = c.try_wait()?
            {
                let err = std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default();
                return Err(format!("crm serve exited ({st}): {}", err.trim()).into());
            }
            if let Ok((200, _)) = call(http, "GET", &format!("{}/healthz", self.base), None, None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("crm serve did not become ready in 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn memory(&self) -> Mem {
        self.read_memory().unwrap_or_default()
    }

    fn read_memory(&self) -> Option<Mem> {
        Mem::of(&self.pid().to_string())
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The caller of saturation worker `w`: every other connection belongs to caller 0 (the greedy one),
/// the rest are spread over the other callers.
fn greedy_caller(w: usize, callers: usize) -> usize {
    if w.is_multiple_of(2) || callers < 2 {
        0
    } else {
        1 + (w / 2) % (callers - 1)
    }
}

impl Mem {
    fn json(&self) -> Json {
        json!({"peak_kib": self.peak, "anon_kib": self.anon, "file_kib": self.file})
    }
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The `crm` binary: `--crm-bin`, else `crm` beside this binary, built first when run through cargo.
fn crm_binary(args: &Args) -> Res<PathBuf> {
    if let Some(p) = &args.crm_bin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("crm");
    if let (false, Ok(cargo)) = (args.no_build, std::env::var("CARGO")) {
        // With crm-bench in the same build, crm-cli shares this binary's dependency builds (the same
        // features), so only the `crm` crate itself is compiled. The server is built in this binary's
        // own profile (its directory's name: `release`, or `debug`, which is the `dev` profile).
        let profile = match exe.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(dir) => dir.to_string(),
            None => "release".to_string(),
        };
        note!("building the server: cargo build --profile {profile} -p crm-cli -p crm-bench");
        let st = Command::new(cargo)
            .args(["build", "--profile", &profile, "-q", "-p", "crm-cli", "-p", "crm-bench"])
            .status()?;
        if !st.success() {
            return Err(format!("cargo build --profile {profile} -p crm-cli -p crm-bench failed").into());
        }
    }
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p crm-cli -p crm-bench` (or pass --crm-bin)",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

/// The 1-minute load average (how busy the shared machine was).
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn run(args: &Args) -> Res<()> {
    let bin = crm_binary(args)?;
    let dir = tempfile::tempdir()?;
    let path = args.database.clone().unwrap_or_else(|| dir.path().join("load.db"));
    let c = args.concurrency.max(1);
    let dur = Duration::from_secs_f64(args.seconds.max(0.1));
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let users = args.sat_keys.div_ceil(2).max(1);
    let api_keys = args.sat_keys / 2;

    // The fixed-concurrency server's CRM_MAX_IN_FLIGHT: limits out of the way.
    let in_flight = 512.max(2 * c.max(args.sat_concurrency));
    // As `crm serve` opens it: a reader kept per request in flight, sharing the page-cache budget.
    let store = Arc::new(SqliteStore::open(&path)?.with_readers(in_flight));
    let svc: Svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds))
        // As `crm serve` runs it (its default CRM_ORG_CACHE).
        .with_org_cache(Duration::from_secs(5));
    let bench = prepare(&svc, args.leads, users)?;
    note!("sampling lead ids");
    let ids = Arc::new(sample_ids(&path, bench.tenant, SAMPLE)?);
    let n_leads = bench.leads;
    note!(
        "load: {} ({n_leads} leads), concurrency {c}, {:.1} s per phase, server {}",
        path.display(),
        dur.as_secs_f64(),
        bin.display()
    );
    let common = |extra: Json| -> Json {
        let mut m = obj(json!({"leads": n_leads}));
        m.extend(obj(extra));
        Json::Object(m)
    };
    let mut summary: Vec<String> = Vec::new();
    let load_start = loadavg();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);

    // ---- the server for the fixed-concurrency phases: limits out of the way ----
    let mut server = Server::start(
        &bin,
        &path,
        &[
            ("CRM_RATE_LIMIT", HIGH_RATE.to_string()),
            ("CRM_RATE_BURST", HIGH_RATE.to_string()),
            ("CRM_MAX_IN_FLIGHT", in_flight.to_string()),
        ],
        dir.path().join("server.log"),
    )?;
    let (tokens, keys) = rt.block_on(async {
        server.ready(&http).await?;
        let mut tokens = Vec::new();
        for (email, _) in &bench.users {
            let (st, body) = call(
                &http,
                "POST",
                &format!("{}/api/v1/auth/login", server.base),
                None,
                Some(json!({"organization": bench.tenant, "email": email, "password": PASSWORD})),
            )
            .await?;
            let tok = body["access_token"]
                .as_str()
                .filter(|_| st == 200)
                .ok_or_else(|| format!("sign-in of {email}: {st} {body}"))?;
            tokens.push(format!("Bearer {tok}"));
        }
        let mut keys = Vec::new();
        for i in 0..api_keys {
            let (st, body) = call(
                &http,
                "POST",
                &format!("{}/api/v1/api_keys", server.base),
                Some(&tokens[0]),
                Some(json!({"name": format!("load bench {i}")})),
            )
            .await?;
            let key = body["key"]
                .as_str()
                .filter(|_| st == 201)
                .ok_or_else(|| format!("API key: {st} {body}"))?;
            keys.push(format!("Bearer {key}"));
        }
        // An API key reads a lead before anything is measured (a scenario without a single successful
        // request fails the run too).
        let (st, body) = call(
            &http,
            "GET",
            &format!("{}/api/v1/leads/{}", server.base, ids[0]),
            Some(&keys.first().unwrap_or(&tokens[0]).clone()),
            None,
        )
        .await?;
        if st != 200 {
            return Err(format!("GET lead: {st} {body}").into());
        }
        Ok::<_, Box<dyn Error>>((tokens, keys))
    })?;
    let admin_auth = tokens[0].clone();
    let pid = server.pid();
    let mem0 = server.memory();

    // ---- one request at a time: the HTTP overhead on a single request ----
    note!("server ready (pid {pid}); one request at a time");
    let serial = dur.min(Duration::from_secs(3));
    let serial_warm = warmup.min(Duration::from_millis(300));
    let base_s = inproc_phase(&svc, &bench.admin, Kind::Get, &ids, 1, serial)?;
    let (http_s, _) = rt.block_on(http_phase(
        &http,
        &server.base,
        Kind::Get,
        &ids,
        1,
        |_| admin_auth.clone(),
        serial_warm,
        serial,
        pid,
    ))?;
    let (health_s, _) = rt.block_on(http_phase(
        &http,
        &server.base,
        Kind::Health,
        &ids,
        1,
        |_| admin_auth.clone(),
        serial_warm,
        serial,
        pid,
    ))?;
    emit(
        "get_lead_serial_p50",
        pct(&http_s.ok, 0.5),
        "us",
        Some(pct(&base_s.ok, 0.5)),
        http_s.total(),
        common(json!({
            "concurrency": 1,
            "status": http_s.status_json(),
            "p99_us": sig(pct(&http_s.ok, 0.99)),
            "baseline_p99_us": sig(pct(&base_s.ok, 0.99)),
        })),
    );
    emit(
        "healthz_serial_p50",
        pct(&health_s.ok, 0.5),
        "us",
        None,
        health_s.total(),
        common(json!({"concurrency": 1, "status": health_s.status_json(), "p99_us": sig(pct(&health_s.ok, 0.99))})),
    );
    summary.push(format!(
        "one request at a time: GET lead p50 {:.0} us over HTTP vs {:.1} us in-process ({:.1}x); GET /healthz p50 {:.0} us",
        pct(&http_s.ok, 0.5),
        pct(&base_s.ok, 0.5),
        pct(&http_s.ok, 0.5) / pct(&base_s.ok, 0.5).max(1e-9),
        pct(&health_s.ok, 0.5),
    ));

    // ---- the fixed-concurrency scenarios (healthz: the HTTP stack alone, no baseline) ----
    let mut get_http: Option<Stats> = None;
    for kind in [Kind::Health, Kind::Get, Kind::List, Kind::Create] {
        let name = kind.name();
        if !args.scenarios.iter().any(|s| s == name) {
            continue;
        }
        let base = if kind == Kind::Health {
            None
        } else {
            note!("{name}: in-process, {c} threads");
            Some(inproc_phase(&svc, &bench.admin, kind, &ids, c, dur)?)
        };
        // A page's in-process work with the JSON the server writes for it: what is left over HTTP
        // is the protocol, the sign-in check and the hops.
        let base_json = if kind == Kind::List {
            note!("{name}: in-process with its JSON, {c} threads");
            Some(inproc_phase_as(&svc, &bench.admin, kind, true, &ids, c, dur)?)
        } else {
            None
        };
        note!("{name}: HTTP, {c} connections");
        let opened_before = rt.block_on(connections_opened(&http, &server.base))?;
        let (h, _) = rt.block_on(http_phase(
            &http,
            &server.base,
            kind,
            &ids,
            c,
            |_| admin_auth.clone(),
            warmup,
            if kind == Kind::Health { serial } else { dur },
            pid,
        ))?;
        let opened_after = rt.block_on(connections_opened(&http, &server.base))?;
        // Database connections the phase opened (warm-up included), per request measured.
        let opened = opened_before
            .zip(opened_after)
            .map(|(a, b)| b.saturating_sub(a) as f64 / h.total().max(1) as f64);
        let (srv_cpu, cli_cpu) = h.cpu.unwrap_or_default();
        let per_req = |cpu: f64| cpu * 1e6 / h.total().max(1) as f64;
        emit(
            &format!("{name}_rps"),
            h.ok_rps(),
            "req/s",
            base.as_ref().map(Stats::ok_rps),
            h.total(),
            common(json!({
                "concurrency": c,
                "seconds": sig(h.window.as_secs_f64()),
                "status": h.status_json(),
                "server_cpu_us_per_req": sig(per_req(srv_cpu)),
                "client_cpu_us_per_req": sig(per_req(cli_cpu)),
                "store_connections_opened_per_req": opened,
            })),
        );
        for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
            emit(
                &format!("{name}_{label}"),
                pct(&h.ok, p),
                "us",
                base.as_ref().map(|b| pct(&b.ok, p)),
                h.ok.len(),
                common(json!({"concurrency": c})),
            );
        }
        // Server CPU per request against the in-process CPU per call (every core busy for the
        // in-process phase: cores / calls per second).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let inproc_cpu = |b: &Stats| cores * 1e6 / b.ok_rps().max(1e-9);
        for (suffix, b) in [("", &base), ("_with_json", &base_json)] {
            if let Some(b) = b {
                emit(
                    &format!("{name}_server_cpu_vs_inproc{suffix}"),
                    per_req(srv_cpu),
                    "us",
                    Some(inproc_cpu(b)),
                    h.total(),
                    common(json!({"concurrency": c, "cores": cores})),
                );
            }
        }
        if let Some(b) = &base_json {
            summary.push(format!(
                "{name:<12} in-process with its JSON {:>7.0} ops/s; server CPU per request {:.2}x the in-process CPU, {:.2}x with the JSON",
                b.ok_rps(),
                per_req(srv_cpu) / base.as_ref().map_or(f64::NAN, inproc_cpu),
                per_req(srv_cpu) / inproc_cpu(b),
            ));
        }
        let errors = h.total() - h.ok.len();
        let inproc = base.as_ref().map_or_else(String::new, |b| {
            format!(
                " | in-process {:>7.0} ops/s  p50 {:>6.0} us  p99 {:>6.0} us",
                b.ok_rps(),
                pct(&b.ok, 0.5),
                pct(&b.ok, 0.99)
            )
        });
        summary.push(format!(
            "{name:<12} HTTP {:>6.0} req/s  p50 {:>6.0} us  p99 {:>6.0} us  errors {errors:<4} server CPU {:>5.0} us/req  client CPU {:>4.0} us/req{inproc}",
            h.ok_rps(),
            pct(&h.ok, 0.5),
            pct(&h.ok, 0.99),
            per_req(srv_cpu),
            per_req(cli_cpu),
        ));
        if h.ok.is_empty() {
            return Err(format!("{name}: no successful HTTP request: {:?}", h.status).into());
        }
        if kind == Kind::Get {
            get_http = Some(h);
        }
    }
    let mem1 = server.memory();
    emit(
        "server_rss_fixed_before",
        mem0.rss as f64,
        "KiB",
        None,
        0,
        common(mem0.json()),
    );
    emit(
        "server_rss_fixed_after",
        mem1.rss as f64,
        "KiB",
        Some(mem0.rss as f64),
        0,
        common(mem1.json()),
    );
    summary.push(format!(
        "server RSS (no limits): {:.1} MiB after sign-in, {:.1} MiB after the scenarios ({:.1} anonymous, {:.1} file/mmap; peak {:.1} MiB)",
        Mem::mib(mem0.rss),
        Mem::mib(mem1.rss),
        Mem::mib(mem1.anon),
        Mem::mib(mem1.file),
        Mem::mib(mem1.peak),
    ));
    server.stop();

    // ---- saturation ----
    if let (false, Some(get_http)) = (args.no_saturation, get_http) {
        let callers: Vec<String> = tokens.iter().chain(keys.iter()).cloned().collect();
        let rate = args
            .sat_rate
            .unwrap_or_else(|| ((get_http.ok_rps() / callers.len() as f64).round() as u32).max(1));
        let sat_c = args.sat_concurrency.max(1);
        note!(
            "saturation: {sat_c} connections, {} callers, CRM_MAX_IN_FLIGHT={}, CRM_RATE_LIMIT={rate} (burst {rate})",
            callers.len(),
            args.sat_in_flight
        );
        let mut sat = Server::start(
            &bin,
            &path,
            &[
                ("CRM_RATE_LIMIT", rate.to_string()),
                ("CRM_RATE_BURST", rate.to_string()),
                ("CRM_MAX_IN_FLIGHT", args.sat_in_flight.to_string()),
            ],
            dir.path().join("saturation.log"),
        )?;
        rt.block_on(sat.ready(&http))?;
        let before = sat.memory();
        let (s, per_worker) = rt.block_on(http_phase(
            &http,
            &sat.base,
            Kind::Get,
            &ids,
            sat_c,
            |w| callers[greedy_caller(w, callers.len())].clone(),
            warmup,
            dur,
            sat.pid(),
        ))?;
        let (mut greedy, mut others) = (BTreeMap::new(), BTreeMap::new());
        for (w, m) in per_worker.iter().enumerate() {
            let into = if greedy_caller(w, callers.len()) == 0 {
                &mut greedy
            } else {
                &mut others
            };
            for (st, n) in m {
                *into.entry(*st).or_insert(0usize) += n;
            }
        }
        let class = |m: &BTreeMap<u16, usize>| {
            let total = m.values().sum::<usize>().max(1) as f64;
            let share = |st: u16| sig(*m.get(&st).unwrap_or(&0) as f64 / total);
            json!({"requests": m.values().sum::<usize>(), "200": share(200), "503": share(503), "429": share(429)})
        };
        let after = sat.memory();
        sat.stop();
        let detail = json!({
            "concurrency": sat_c,
            "callers": callers.len(),
            "max_in_flight": args.sat_in_flight,
            "rate_limit": rate,
            "status": s.status_json(),
            "greedy_caller": class(&greedy),
            "other_callers": class(&others),
        });
        for (st, label) in [(200, "ok"), (503, "503"), (429, "429")] {
            emit(
                &format!("saturation_{label}_share"),
                s.share(st),
                "share",
                None,
                s.total(),
                common(detail.clone()),
            );
        }
        emit(
            "saturation_ok_rps",
            s.ok_rps(),
            "req/s",
            Some(get_http.ok_rps()),
            s.ok.len(),
            common(json!({"concurrency": sat_c})),
        );
        emit(
            "saturation_ok_p99",
            pct(&s.ok, 0.99),
            "us",
            Some(pct(&get_http.ok, 0.99)),
            s.ok.len(),
            common(json!({"concurrency": sat_c, "p50_us": sig(pct(&s.ok, 0.5))})),
        );
        emit(
            "saturation_rejected_p99",
            pct(&s.other, 0.99),
            "us",
            None,
            s.other.len(),
            common(json!({"concurrency": sat_c, "p50_us": sig(pct(&s.other, 0.5))})),
        );
        emit(
            "server_rss_saturation_before",
            before.rss as f64,
            "KiB",
            None,
            0,
            common(before.json()),
        );
        emit(
            "server_rss_saturation_after",
            after.rss as f64,
            "KiB",
            Some(before.rss as f64),
            0,
            common(after.json()),
        );
        let (srv_cpu, _) = s.cpu.unwrap_or_default();
        summary.push(format!(
            "saturation ({sat_c} connections, {} callers, max in flight {}, {rate} req/s per caller): {} requests, \
             200 {:.1}%, 503 {:.1}%, 429 {:.1}%, other {:.1}%; accepted {:.0} req/s (unlimited server: {:.0}), \
             p99 accepted {:.0} us (unsaturated {:.0} us), p99 rejected {:.0} us; server CPU {:.1} s; \
             RSS {:.1} -> {:.1} MiB ({:.1} anonymous; peak {:.1} MiB); greedy caller (half the connections) {}, the others {}",
            callers.len(),
            args.sat_in_flight,
            s.total(),
            100.0 * s.share(200),
            100.0 * s.share(503),
            100.0 * s.share(429),
            100.0 * (1.0 - s.share(200) - s.share(503) - s.share(429)).max(0.0),
            s.ok_rps(),
            get_http.ok_rps(),
            pct(&s.ok, 0.99),
            pct(&get_http.ok, 0.99),
            pct(&s.other, 0.99),
            srv_cpu,
            Mem::mib(before.rss),
            Mem::mib(after.rss),
            Mem::mib(after.anon),
            Mem::mib(after.peak),
            class(&greedy),
            class(&others),
        ));
    }

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    emit(
        "machine_load",
        loadavg(),
        "loadavg",
        None,
        cpus,
        common(json!({"at_start": load_start, "cpus": cpus})),
    );
    eprintln!(
        "\nsummary ({n_leads} leads, {c} connections, {:.1} s per phase; {cpus} CPUs, load average {load_start:.1} at the start, {:.1} at the end):",
        dur.as_secs_f64(),
        loadavg()
    );
    for l in &summary {
        eprintln!("  {l}");
    }
    Ok(())
}
