//! The subcommands: thin calls into the service, printing what it returns.

use crate::progress::Bar;
use crate::{Cli, Command, Mode, UpsertMode, Vertical};
use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::demo::{self, DemoSize};
use crm_core::entity;
use crm_core::error::{Error, Result};
use crm_core::query::{Filter, ListRequest, SortKey};
use crm_core::service::{AttachInput, ExportOptions, ImportMode, ImportOptions, Service, UpsertOptions};
use crm_core::store::Store;
use crm_core::value::{Id, Money, Value};
use crm_store::AnyStore;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// The store behind `--database`: a SQLite file, or a PostgreSQL URL (`postgres://...`). A PostgreSQL
/// store runs its I/O on its own small tokio runtime, so `main` drives everything with
/// `pollster::block_on` either way.
type Svc = Service<Arc<AnyStore>>;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    // Inspection opens the database read-only: a file on a read-only medium can be checked and
    // exported, and nothing (not even a migration) changes it.
    let store = Arc::new(match cli.command {
        Command::Check
        | Command::Export { .. }
        | Command::Summary { .. }
        | Command::Report { .. }
        | Command::Backup { .. } => crm_store::open_read_only(&cli.database)?,
        _ => crm_store::open(&cli.database)?,
    });
    let svc = Service::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    if let Command::Demo {
        leads,
        vertical,
        quotes,
        clients,
    } = cli.command
        && svc.tenants().await?.is_empty()
    {
        let started = std::time::Instant::now();
        let size = DemoSize {
            contacts: leads / 2,
            leads,
            activities_per_lead: 3,
        };
        let bar = Bar::start("demo");
        let d = match vertical {
            Vertical::Roofing => {
                demo::load_with(store.clone(), Arc::new(RandomIds), svc.now(), size, &bar.progress()).await?
            }
            Vertical::Moving => demo::load_moving(store.clone(), Arc::new(RandomIds), svc.now(), quotes).await?,
            Vertical::Esports => demo::load_esports(store.clone(), Arc::new(RandomIds), svc.now(), clients).await?,
        };
        drop(bar);
        eprintln!(
            "loaded the demo tenant {} into {} in {:.1?}",
            d.tenant,
            store.location(),
            started.elapsed()
        );
        for (role, _, email) in &d.users {
            eprintln!("  {role:<10} {email}");
        }
    }
    if let Command::Backup { out } = &cli.command {
        store.backup_to(out)?;
        eprintln!("backed up {} to {}", store.location(), out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let actor = actor(&svc, &cli).await?;
    let (database, blob_dir, blob_url) = (cli.database.clone(), cli.blob_dir.clone(), cli.blob_url.clone());
    match cli.command {
        Command::Demo { .. } => summary(&svc, &actor, 5).await?,
        Command::Summary { top } => summary(&svc, &actor, top).await?,
        Command::Import {
            entity,
            file,
            mode,
            upsert,
            mapping,
            no_disk_check,
        } => {
            let mut opts = ImportOptions {
                mode: match mode {
                    Mode::DryRun => ImportMode::DryRun,
                    Mode::AllOrNothing => ImportMode::AllOrNothing,
                    Mode::ValidRowsOnly => ImportMode::ValidRowsOnly,
                },
                upsert,
                ..Default::default()
            };
            for m in mapping {
                let (col, field) = m
                    .split_once('=')
                    .ok_or_else(|| Error::field("map", "invalid_format", "expected `CSV header=field`"))?;
                opts.mapping.insert(col.to_owned(), field.to_owned());
            }
            let f = std::fs::File::open(&file)
                .map_err(|e| Error::internal(format!("cannot open {}: {e}", file.display())))?;
            opts.input_bytes = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            opts.skip_disk_check = no_disk_check;
            let bar = Bar::start("import");
            opts.progress = bar.progress();
            let report = svc
                .import_csv(&actor, &entity, std::io::BufReader::new(f), &opts)
                .await?;
            drop(bar);
            crate::output::print(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
            if report.errors_omitted > 0 {
                eprintln!(
                    "crm: {} invalid rows; the report lists the first {} (\"errors\") and counts them all by field \
                     and code (\"error_counts\")",
                    report.invalid,
                    report.errors.len()
                );
            }
            if report.invalid > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Upsert {
            entity,
            system,
            file,
            mode,
            dry_run,
            all_or_nothing,
        } => {
            let opts = UpsertOptions {
                mode: match mode {
                    UpsertMode::CreateOnly => crm_core::service::UpsertMode::CreateOnly,
                    UpsertMode::UpdateOnly => crm_core::service::UpsertMode::UpdateOnly,
                    UpsertMode::Upsert => crm_core::service::UpsertMode::Upsert,
                },
                dry_run,
                all_or_nothing,
                ..UpsertOptions::new(system)
            };
            let f = std::fs::File::open(&file)
                .map_err(|e| Error::internal(format!("cannot open {}: {e}", file.display())))?;
            // Read as the upsert needs them: memory holds a chunk of rows, not the file.
            let rows = std::io::BufRead::lines(std::io::BufReader::new(f))
                .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(|l| match l {
                    Ok(l) => serde_json::from_str(&l).map_err(|e| {
                        crm_core::error::FieldError::new("row", "invalid_format", format!("not a JSON line: {e}"))
                    }),
                    Err(e) => Err(crm_core::error::FieldError::new(
                        "row",
                        "invalid_format",
                        format!("cannot read the line: {e}"),
                    )),
                });
            let report = svc.upsert_rows(&actor, &entity, &opts, rows).await?;
            crate::output::print(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
            if report.rejected > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Export {
            entity,
            q,
            fields,
            sort,
            raw,
            out,
        } => {
            // No bar while the CSV itself goes to the terminal.
            let bar = match out.is_some() || !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                true => Bar::start("export"),
                false => Bar::none(),
            };
            let opts = ExportOptions {
                fields: fields
                    .map(|f| f.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default(),
                q,
                filter: None,
                sort: sort.map(|s| SortKey::parse_list(&s)).unwrap_or_default(),
                raw,
                progress: bar.progress(),
            };
            let rows = match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .map_err(|e| Error::internal(format!("cannot create {}: {e}", path.display())))?;
                    svc.export_csv(&actor, &entity, &opts, std::io::BufWriter::new(f))
                        .await?
                }
                None => {
                    svc.export_csv(&actor, &entity, &opts, std::io::BufWriter::new(crate::output::Stdout))
                        .await?
                }
            };
            drop(bar);
            eprintln!("exported {rows} rows");
        }
        Command::Document { entity, id, out } => {
            let id = crm_core::value::parse_id(&id)
                .ok_or_else(|| Error::field("id", crm_core::error::codes::INVALID_FORMAT, "expected an id"))?;
            let html = svc.document(&actor, &entity, id).await?;
            match out {
                Some(path) => std::fs::write(&path, html)
                    .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?,
                None => crate::output::print(&html)?,
            }
        }
        Command::Attach {
            entity,
            id,
            file,
            kind,
            signer,
            name,
        } => {
            let id = crm_core::value::parse_id(&id)
                .ok_or_else(|| Error::field("id", crm_core::error::codes::INVALID_FORMAT, "expected an id"))?;
            let blobs = crm_store::blob::open_configured(&database, blob_dir.as_deref(), blob_url.as_deref())?;
            let svc = svc.with_blob_store(blobs);
            let mut content = std::fs::File::open(&file).map_err(|_| Error::not_found("file", file.display()))?;
            let input = AttachInput {
                kind,
                file_name: name
                    .or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default(),
                signer_name: signer,
                ..Default::default()
            };
            let rec = svc.attach(&actor, &entity, id, &input, &mut content).await?;
            crate::output::print(&serde_json::to_string_pretty(&rec.to_json()).unwrap_or_default())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Score => {
            let bar = Bar::start("score");
            let report = svc.rescore_all_with(&actor, &bar.progress()).await?;
            drop(bar);
            crate::output::print(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
        }
        Command::Check => {
            let report = svc.integrity_check(&actor).await?;
            crate::output::print(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
            if report.issue_count > 0 || report.audit_broken_at.is_some() {
                return Ok(ExitCode::from(2));
            }
        }
        Command::CheckIn {
            card,
            contact,
            location,
        } => {
            return crate::front_desk::check_in(&svc, &actor, card, contact, location).await;
        }
        Command::Report {
            report,
            q,
            by,
            tz,
            entity,
            cell,
            bins,
            json,
            svg,
        } => {
            let params = [
                ("by", by),
                ("tz", tz),
                ("entity", entity),
                ("cell", cell),
                ("bins", bins),
            ];
            crate::report::run(&svc, &actor, &report, q, &params, json, svg.as_deref()).await?
        }
        Command::MembershipNumbers { as_of } => crate::front_desk::numbers(&svc, &actor, as_of).await?,
        Command::ImportMembers { file, mode, dry_run } => {
            let mode = if dry_run { Mode::DryRun } else { mode };
            return crate::front_desk::import_members(&svc, &actor, &file, mode).await;
        }
        Command::Route { dry_run, lead } => {
            return match (dry_run, lead) {
                (Some(file), _) => crate::route::dry_run(&svc, &actor, &file).await,
                (None, Some(id)) => crate::route::lead(&svc, &actor, &id).await,
                (None, None) => unreachable!("clap requires one"),
            };
        }
        Command::Serve(_) | Command::Backup { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The tenant (given, or the only one) and the acting user (by email, or the system).
async fn actor(svc: &Svc, cli: &Cli) -> Result<Actor> {
    let tenant: Id = match &cli.tenant {
        Some(t) => crm_core::value::parse_id(t)
            .ok_or_else(|| Error::field("tenant", "invalid_format", "expected a tenant id"))?,
        None => match svc.tenants().await?.as_slice() {
            [only] => *only,
            [] => {
                return Err(Error::not_found(
                    "tenant",
                    "(database is empty: run `crm demo` or import an organization)",
                ));
            }
            _ => {
                return Err(Error::field(
                    "tenant",
                    "required",
                    "the database has several tenants: pass --tenant",
                ));
            }
        },
    };
    match &cli.as_user {
        None => Ok(Actor::system(tenant)),
        Some(email) => svc.actor_by_email(tenant, email).await,
    }
}

async fn summary(svc: &Svc, actor: &Actor, top: u32) -> Result<()> {
    let org = svc.get(actor, "organization", actor.tenant).await.ok();
    let count = |e: &'static str| async move {
        svc.store()
            .count(actor.tenant, entity::entity(e).expect("declared"), &Filter::All)
            .await
    };
    let mut out = std::io::BufWriter::new(crate::output::Stdout);
    let name = org
        .as_ref()
        .and_then(|o| o.str("name").map(str::to_owned))
        .unwrap_or_default();
    let w = |e: std::io::Error| Error::internal(format!("cannot write output: {e}"));
    writeln!(
        out,
        "{name}: {} leads, {} contacts, {} activities",
        count("lead").await?,
        count("contact").await?,
        count("activity").await?
    )
    .map_err(w)?;
    if count("lead").await? == 0 && count("membership").await? > 0 {
        // An esports centre's front desk: no sales pipeline to show.
        crate::front_desk::summary(svc, actor, &mut out).await?;
        out.flush().map_err(w)?;
        return Ok(());
    }
    writeln!(out, "\nPipeline").map_err(w)?;
    for s in svc.pipeline_summary(actor).await? {
        let value = s.value.map(money).unwrap_or_default();
        writeln!(out, "  {:<18} {:>7}  {:>16}", s.label, s.count, value).map_err(w)?;
    }
    writeln!(out, "\nTop leads").map_err(w)?;
    let req = ListRequest {
        filter: Some(svc.open_leads_filter(actor.tenant).await?),
        sort: vec![SortKey::desc("score")],
        limit: Some(top),
        ..Default::default()
    };
    for (i, lead) in svc.list(actor, "lead", &req).await?.items.iter().enumerate() {
        let text = |f: &str| lead.str(f).unwrap_or("").to_owned();
        let value = lead
            .get("estimated_value")
            .and_then(|v| if let Value::Money(m) = v { Some(money(*m)) } else { None })
            .unwrap_or_default();
        let why = svc.explain_score(actor, lead.id, None).await?;
        writeln!(
            out,
            "  {}. {} {} ({}, {}, {}) score {} {}",
            i + 1,
            text("first_name"),
            text("last_name"),
            text("source"),
            text("project_type"),
            value,
            why.score,
            why.temperature.key().to_uppercase()
        )
        .map_err(w)?;
        for c in &why.contributions {
            writeln!(
                out,
                "       {:>+7}  {} / {}{}",
                c.points,
                c.group,
                c.rule,
                if c.count > 1 {
                    format!(" (x{})", c.count)
                } else {
                    String::new()
                }
            )
            .map_err(w)?;
        }
    }
    if count("quote").await? > 0 {
        writeln!(out, "\nQuotes").map_err(w)?;
        for state in entity::quote::STATES {
            let req = ListRequest {
                q: Some(format!("state:{state}")),
                limit: Some(500),
                ..Default::default()
            };
            let n = svc.list(actor, "quote", &req).await?.items.len();
            let shown = if n == 500 { "500+".to_owned() } else { n.to_string() };
            writeln!(out, "  {:<18} {:>7}", state.replace('_', " "), shown).map_err(w)?;
        }
    }
    out.flush().map_err(w)?;
    Ok(())
}

/// `1234567` cents -> `$12,345.67`.
pub(crate) fn money(m: Money) -> String {
    let s = m.to_string();
    let (whole, cents) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = whole.strip_prefix('-').map_or(("", whole), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}${grouped}.{cents}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_is_grouped() {
        assert_eq!(super::money(crm_core::value::Money(123_456_789)), "$1,234,567.89");
        assert_eq!(super::money(crm_core::value::Money(-5)), "-$0.05");
    }
}
