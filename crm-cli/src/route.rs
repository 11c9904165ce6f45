//! `crm route`: who the tenant's routing rules give leads to — a dry run over a CSV file, or
//! re-routing one stored lead. The core decides (`Service::route_dry_run_csv`, `Service::route_lead`);
//! this prints its answers with the users' emails and the teams' names.

use crm_core::access::Actor;
use crm_core::error::{Error, Result, codes};
use crm_core::service::{Routed, Service};
use crm_core::store::Store;
use crm_core::value::Id;
use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

/// Names users (by email) and teams (by name) as the actor may read them; an id otherwise.
struct Names<'a, S> {
    svc: &'a Service<S>,
    actor: &'a Actor,
    seen: HashMap<(&'static str, Id), String>,
}

impl<S: Store> Names<'_, S> {
    async fn of(&mut self, entity: &'static str, field: &str, id: Option<Id>) -> String {
        let Some(id) = id else { return "-".into() };
        if let Some(n) = self.seen.get(&(entity, id)) {
            return n.clone();
        }
        let name = match self.svc.get(self.actor, entity, id).await {
            Ok(r) => r.str(field).map_or_else(|| id.to_string(), str::to_owned),
            Err(_) => id.to_string(),
        };
        self.seen.insert((entity, id), name.clone());
        name
    }

    async fn line(&mut self, row: u64, r: &Routed) -> String {
        let owner = self.of("user", "email", r.owner_id).await;
        let team = self.of("team", "name", r.team_id).await;
        let why = match &r.decision {
            Some(d) => format!("{} ({})", d.rule, d.strategy),
            None => "no rule: the owner stays as given (or the importer)".into(),
        };
        format!("{row}\t{owner}\t{team}\t{why}")
    }
}

/// `crm route --dry-run FILE.csv`: one line per data row (row, owner, team, rule); writes nothing.
/// Exit status 2 when a row is not a valid lead.
pub async fn dry_run<S: Store>(svc: &Service<S>, actor: &Actor, file: &Path) -> Result<ExitCode> {
    let f = std::fs::File::open(file).map_err(|e| Error::internal(format!("cannot open {}: {e}", file.display())))?;
    let rows = svc.route_dry_run_csv(actor, std::io::BufReader::new(f)).await?;
    let mut names = Names {
        svc,
        actor,
        seen: HashMap::new(),
    };
    crate::output::print("row\towner\tteam\trule")?;
    let mut invalid = 0;
    for r in &rows {
        let line = match &r.routed {
            Some(routed) => names.line(r.row, routed).await,
            None => {
                invalid += 1;
                let errs: Vec<String> = r
                    .errors
                    .iter()
                    .map(|e| format!("{}: {} ({})", e.path, e.message, e.code))
                    .collect();
                format!("{}\tinvalid\t-\t{}", r.row, errs.join("; "))
            }
        };
        crate::output::print(&line)?;
    }
    Ok(if invalid > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `crm route --lead ID`: routes a stored lead again by the rules now and prints the decision.
pub async fn lead<S: Store>(svc: &Service<S>, actor: &Actor, id: &str) -> Result<ExitCode> {
    let id: Id = crm_core::value::parse_id(id)
        .ok_or_else(|| Error::field("lead", codes::INVALID_FORMAT, "expected a lead id"))?;
    let (_, routed) = svc.route_lead(actor, id).await?;
    let mut names = Names {
        svc,
        actor,
        seen: HashMap::new(),
    };
    crate::output::print("row\towner\tteam\trule")?;
    crate::output::print(&names.line(1, &routed).await)?;
    Ok(ExitCode::SUCCESS)
}
