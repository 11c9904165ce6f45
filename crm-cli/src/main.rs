//! `crm`: the command line over a CRM database (a SQLite file by default).
//!
//! ```text
//! crm demo                      # create crm.db with the demo roofing tenant and print a summary
//! crm summary                   # pipeline by stage and the top leads with their score explanations
//! crm import --entity lead --file leads.csv --mode all-or-nothing
//! crm upsert --entity job --system scheduler --file jobs.jsonl --mode upsert
//! crm export --entity lead --q "status:new score>=60" > hot.csv
//! crm score                     # re-score every lead as of now
//! crm check                     # integrity report
//! crm backup --out copy.db      # a consistent copy, also while a server runs
//! crm serve --demo              # the HTTP API on 127.0.0.1:8080 (reference at /docs)
//! crm import-members pos.csv --mode all-or-nothing   # the point of sale's clients and memberships
//! crm check-in --card 500123    # the front desk: allowed, warned or refused, and why
//! crm report funnel --q "source:referral"   # a report as a table (see docs/analytics.md)
//! crm route --dry-run leads.csv # who the routing rules would give each row's lead to
//! ```

mod commands;
mod front_desk;
mod output;
mod progress;
mod report;
mod route;
mod serve;
mod svg;

/// mimalloc for the whole binary (the CLI and `crm serve`): see ADR 0022.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "crm",
    version,
    about = "An embeddable CRM engine: command line",
    after_help = "Examples:
  crm demo                                         # a roofing company in crm.db, with its summary
  crm --database moving.db demo --vertical moving  # a moving company: quotes, a crew and its journeys
  crm import --file examples/data/leads.csv        # a dry run: every row checked, nothing written
  crm export --q 'score>=60' --fields first_name,score --out hot.csv
  crm attach --entity job --id ID --file roof.jpg --kind photo   # a photo on a job
  crm serve --demo                                 # the HTTP API on localhost:8080

Exit status: 0 done, 1 failed, 2 done with rows or issues to look at, 75 the database was busy
(docs/cli.md)."
)]
struct Cli {
    /// Database: a SQLite file path (created if missing).
    #[arg(long, short, global = true, env = "CRM_DATABASE", default_value = "crm.db")]
    database: PathBuf,
    /// Directory of attachment bytes (photos, documents, signatures); default: next to a SQLite
    /// database, its name with `.blobs` for its extension (`crm.db` -> `crm.blobs`).
    #[arg(long, global = true, env = "CRM_BLOB_DIR")]
    blob_dir: Option<PathBuf>,
    /// Keep attachment bytes in an S3-compatible bucket instead of a directory:
    /// `s3://bucket[/prefix]`, with the usual AWS environment (AWS_ENDPOINT, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP); see docs/attachments.md.
    #[arg(long, global = true, env = "CRM_BLOB_URL", conflicts_with = "blob_dir")]
    blob_url: Option<String>,
    /// Tenant (organization) id; defaults to the only tenant in the database.
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// Act as the user with this email (defaults to the system, with the admin role).
    #[arg(long = "as", global = true)]
    as_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or open the database, load a demo tenant if it has none, print a summary.
    Demo {
        /// Leads to generate (contacts are half as many), roofing.
        #[arg(long, default_value_t = 3000)]
        leads: usize,
        /// Which business: a roofing company (leads, scoring), a moving company (quotes) or an
        /// esports centre (plans, memberships, check-ins).
        #[arg(long, value_enum, default_value_t = Vertical::Roofing)]
        vertical: Vertical,
        /// Quotes to generate, moving.
        #[arg(long, default_value_t = 300)]
        quotes: usize,
        /// Clients to generate, esports.
        #[arg(long, default_value_t = 2000)]
        clients: usize,
    },
    /// Pipeline by stage and the top leads with their score explanations.
    Summary {
        #[arg(long, default_value_t = 5)]
        top: u32,
    },
    /// Import a CSV file into an entity type; prints the per-row report as JSON.
    Import {
        #[arg(long, default_value = "lead")]
        entity: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Mode::DryRun)]
        mode: Mode,
        /// Update records whose external_id matches instead of creating duplicates.
        #[arg(long)]
        upsert: bool,
        /// Column mapping, `CSV header=field` (repeatable; `header=` ignores the column); other headers
        /// are matched to field names.
        #[arg(long = "map")]
        mapping: Vec<String>,
        /// Write even if the database's file system seems to have less free space than the import
        /// needs (see docs/cli.md, "Disk needs"); a disk that does fill up still fails with nothing written.
        #[arg(long)]
        no_disk_check: bool,
    },
    /// Create or update records from an external system's JSON Lines file (one object a line, each
    /// with its id in that system under `external_id`); rows equal to the last ones received are
    /// skipped without a write. Prints the per-row report as JSON.
    Upsert {
        #[arg(long, default_value = "lead")]
        entity: String,
        /// The source system (`scheduler`): rows are bound to records per system and external id.
        #[arg(long)]
        system: String,
        /// JSON Lines: one object a line (blank lines are skipped), read a chunk at a time.
        #[arg(long)]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = UpsertMode::Upsert)]
        mode: UpsertMode,
        /// Check every row and report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write nothing if any row is refused (default: write the rows that pass).
        #[arg(long)]
        all_or_nothing: bool,
    },
    /// Export an entity type as CSV (formula-safe unless --raw) to stdout or --out.
    Export {
        #[arg(long, default_value = "lead")]
        entity: String,
        /// Text filter, e.g. `status:new score>=60`.
        #[arg(long)]
        q: Option<String>,
        /// Comma-separated fields (default: every readable field).
        #[arg(long)]
        fields: Option<String>,
        /// Sort, e.g. `-score,created_at`.
        #[arg(long)]
        sort: Option<String>,
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a record's printable HTML document (a quote the customer reads) to stdout or --out.
    Document {
        #[arg(long, default_value = "quote")]
        entity: String,
        /// The record's id.
        id: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Attach a file (a photo, a document, a signature) to a record; prints the attachment record
    /// as JSON. The bytes go to the blob directory (--blob-dir; see docs/attachments.md).
    Attach {
        /// The record's entity type (contact, company, lead, quote, job, job_step).
        #[arg(long)]
        entity: String,
        /// The record's id.
        #[arg(long)]
        id: String,
        /// The file to attach (streamed; the tenant's attachment_max_bytes applies).
        #[arg(long)]
        file: PathBuf,
        /// photo, document or signature (the core's default: document).
        #[arg(long, default_value = "")]
        kind: String,
        /// Who signed (a signature needs it).
        #[arg(long)]
        signer: Option<String>,
        /// The name to keep (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Re-score every lead of the tenant as of now.
    Score,
    /// Report stored rows that break today's rules, and verify the audit chain.
    Check,
    /// Write a consistent copy of the SQLite database to a new file (safe while a server runs).
    Backup {
        /// The copy: a new file (an existing one is refused).
        #[arg(long)]
        out: PathBuf,
    },
    /// Import the point of sale's client list (card number, name, contact details, plan, start and
    /// end dates): creates or updates clients by card number with their current membership; prints
    /// the per-row report as JSON (see docs/front-desk.md).
    ImportMembers {
        /// The CSV file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Mode::DryRun)]
        mode: Mode,
        /// Shorthand for `--mode dry-run` (the default): validate and report, write nothing.
        #[arg(long, conflicts_with = "mode")]
        dry_run: bool,
    },
    /// Check a client in at the front desk by card number or id; prints the answer (outcome, reason,
    /// status, end date, visits left) as JSON. Exit status 3 when the tenant's policy refuses.
    CheckIn {
        /// The client's card number (their external id).
        #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
        card: Option<String>,
        /// The client's id.
        #[arg(long)]
        contact: Option<String>,
        /// Where (a location id).
        #[arg(long)]
        location: Option<String>,
    },
    /// The owner's membership numbers as of a day (default today): active members, expiring in 7
    /// and 30 days, renewals and churn per month, check-ins per day and per hour of the week (JSON).
    MembershipNumbers {
        /// The day, `YYYY-MM-DD`.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A report over the leads the acting user may read, as a table (see docs/analytics.md):
    /// `funnel`, `velocity` (time in stage, win rate, time to close), `forecast` (weighted, by
    /// expected close month, against what was won), `breakdown` (conversion and revenue by
    /// source, owner or team), `productivity` (activities per user and week by kind, leads touched,
    /// response time; --q filters activities), `cohort` (leads by month of creation: won and still
    /// active per later month), `geo` (records with coordinates in a grid; --json is GeoJSON) or
    /// `lifetime_value` (the distribution of contacts' or companies' value).
    Report {
        /// Which report.
        report: String,
        /// Text filter over what the report counts (leads; activities for productivity; the
        /// --entity for geo and lifetime_value), e.g. `source:referral owner:me`.
        #[arg(long)]
        q: Option<String>,
        /// The breakdown's groups: `source` (default), `owner` or `team`.
        #[arg(long)]
        by: Option<String>,
        /// productivity, cohort: the UTC offset weeks and months are cut at (`+02:00`; default UTC).
        #[arg(long, allow_hyphen_values = true)]
        tz: Option<String>,
        /// geo: what to count (`lead`, the default, `contact`, `company`); lifetime_value: whose
        /// value (`contact`, the default, or `company`).
        #[arg(long)]
        entity: Option<String>,
        /// geo: the cell size in degrees (default 0.1).
        #[arg(long)]
        cell: Option<String>,
        /// lifetime_value: the histogram's bins (default 10, at most 100).
        #[arg(long)]
        bins: Option<String>,
        /// Print the report as JSON (what the HTTP API answers) instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the report's main series as a bar chart to this SVG file (beside the
        /// table or the JSON).
        #[arg(long, value_name = "FILE.svg")]
        svg: Option<PathBuf>,
    },
    /// Lead routing (see docs/routing.md): with --dry-run FILE.csv, who the tenant's routing rules
    /// would give each row's lead to (row, owner, team, rule), writing nothing; with --lead ID, route
    /// a stored lead again now. Exit status 2 when a row is not a valid lead.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["dry_run", "lead"])))]
    Route {
        /// A CSV file of leads (a header row of lead field names).
        #[arg(long, value_name = "FILE.csv")]
        dry_run: Option<PathBuf>,
        /// The id of a stored lead to route again.
        #[arg(long)]
        lead: Option<String>,
    },
    /// Serve the HTTP API (see docs/server.md).
    Serve(crm_server::ServeArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Vertical {
    Roofing,
    Moving,
    Esports,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum UpsertMode {
    CreateOnly,
    UpdateOnly,
    Upsert,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    DryRun,
    AllOrNothing,
    ValidRowsOnly,
}

/// Exit status of a command that failed because the database was busy: try again.
const TEMPFAIL: u8 = 75;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        return serve::run(&cli.database, cli.blob_dir.as_deref(), cli.blob_url.as_deref(), args);
    }
    match pollster::block_on(commands::run(cli)) {
        Ok(code) => code,
        // The reader of stdout went away (`crm export | head`): its part is done, as with `cat`.
        Err(_) if output::closed() => ExitCode::SUCCESS,
        Err(e @ crm_core::Error::Unavailable { retry_after, .. }) => {
            // Busy (another process holds the write lock): worth running again, which scripts can
            // tell from the status (sysexits' EX_TEMPFAIL).
            eprintln!("crm: {e} in {retry_after} s");
            if let Some(cause) = e.internal_cause() {
                eprintln!("  cause: {cause}");
            }
            ExitCode::from(TEMPFAIL)
        }
        Err(e) => {
            eprintln!("crm: {e}");
            // Whoever runs the CLI operates the database: show the cause a server would only log.
            if let Some(cause) = e.internal_cause() {
                eprintln!("  cause: {cause}");
            }
            for f in e.field_errors() {
                eprintln!("  {}: {} ({})", f.path, f.message, f.code);
            }
            ExitCode::FAILURE
        }
    }
}
