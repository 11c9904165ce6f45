//! The esports centre's front desk on the command line: the point-of-sale import.

use crate::Mode;
use crm_core::access::Actor;
use crm_core::error::{Error, Result};
use crm_core::service::{ImportMode, PosImportOptions, Service};
use crm_core::store::Store;
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
