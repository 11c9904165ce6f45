//! The esports centre's front desk on the command line: the point-of-sale import, check-in, the
//! owner's numbers and the demo summary's members part.

use crate::Mode;
use crm_core::access::Actor;
use crm_core::entity::membership::status as client_status;
use crm_core::error::{Error, Result, codes};
use crm_core::query::{ListRequest, MAX_BULK_PAGE_SIZE};
use crm_core::service::{CheckInInput, ImportMode, PosImportOptions, Service};
use crm_core::store::Store;
use crm_core::value::Id;
use std::path::Path;
use std::process::ExitCode;

/// `crm import-members FILE`: prints the per-row report as JSON; exit status 2 when a row failed.
pub async fn import_members<S: Store>(svc: &Service<S>, actor: &Actor, file: &Path, mode: Mode) -> Result<ExitCode> {
    let opts = PosImportOptions {
        mode: match mode {
            Mode::DryRun => ImportMode::DryRun,
            Mode::AllOrNothing => ImportMode::AllOrNothing,
            Mode::ValidRowsOnly => ImportMode::ValidRowsOnly,
        },
        ..Default::default()
    };
    let f = std::fs::File::open(file).map_err(|e| Error::internal(format!("cannot open {}: {e}", file.display())))?;
    let report = svc
        .import_point_of_sale(actor, std::io::BufReader::new(f), &opts)
        .await?;
    crate::output::print(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
    Ok(if report.invalid > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `crm check-in`: prints the answer as JSON; exit status 3 when refused.
pub async fn check_in<S: Store>(
    svc: &Service<S>,
    actor: &Actor,
    card: Option<String>,
    contact: Option<String>,
    location: Option<String>,
) -> Result<ExitCode> {
    let id = |flag: &str, s: Option<String>| -> Result<Option<Id>> {
        s.map(|s| {
            crm_core::value::parse_id(&s).ok_or_else(|| Error::field(flag, codes::INVALID_FORMAT, "expected an id"))
        })
        .transpose()
    };
    let input = CheckInInput {
        contact_id: id("contact", contact)?,
        card,
        location_id: id("location", location)?,
    };
    let answer = svc.check_in(actor, &input).await?;
    crate::output::print(&serde_json::to_string_pretty(&answer).unwrap_or_default())?;
    Ok(if answer.outcome == "refused" {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `crm membership-numbers`: the owner's numbers as JSON.
pub async fn numbers<S: Store>(svc: &Service<S>, actor: &Actor, as_of: Option<String>) -> Result<()> {
    let day = as_of
        .map(|s| {
            time::Date::parse(&s, DAY).map_err(|_| Error::field("as_of", codes::INVALID_FORMAT, "expected YYYY-MM-DD"))
        })
        .transpose()?;
    let n = svc.membership_numbers(actor, day).await?;
    crate::output::print(&serde_json::to_string_pretty(&n).unwrap_or_default())
}

const DAY: &[time::format_description::FormatItem<'static>] = time::macros::format_description!("[year]-[month]-[day]");

/// The summary's front desk part: clients by membership status and the owner's headline numbers.
pub async fn summary<S: Store, W: std::io::Write>(svc: &Service<S>, actor: &Actor, out: &mut W) -> Result<()> {
    let w = |e: std::io::Error| Error::internal(format!("cannot write output: {e}"));
    writeln!(out, "\nMembers").map_err(w)?;
    for status in client_status::CLIENT_STATUSES {
        let req = ListRequest {
            q: Some(format!("membership:{status}")),
            limit: Some(MAX_BULK_PAGE_SIZE),
            ..Default::default()
        };
        let mut n = 0;
        let mut page = svc.list_bulk(actor, "contact", &req).await?;
        loop {
            n += page.items.len();
            match page.next_cursor.take() {
                Some(c) => {
                    let req = ListRequest {
                        cursor: Some(c),
                        ..req.clone()
                    };
                    page = svc.list_bulk(actor, "contact", &req).await?;
                }
                None => break,
            }
        }
        writeln!(out, "  {status:<18} {n:>7}").map_err(w)?;
    }
    let n = svc.membership_numbers(actor, None).await?;
    let today: u64 = n.check_ins_per_day.last().map_or(0, |d| d.check_ins);
    writeln!(
        out,
        "  active now {}, expiring in 7 days {}, in 30 days {}; check-ins on {}: {today}",
        n.active_members,
        n.expiring_7_days,
        n.expiring_30_days,
        n.check_ins_per_day.last().map_or("-", |d| d.day.as_str())
    )
    .map_err(w)?;
    Ok(())
}
