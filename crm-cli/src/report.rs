//! `crm report NAME`: a report of [`crm_core::analytics`] as a table (or `--json`), over the leads
//! the acting user may read that match `--q`.

use crate::commands::money;
use crm_core::access::Actor;
use crm_core::analytics::breakdown::BreakdownBy;
use crm_core::decimal::Decimal;
use crm_core::error::{Error, Result};
use crm_core::service::{ReportAnswer, ReportKind, ReportRequest, Service};
use crm_core::store::Store;
use std::io::Write;

/// Runs the report `name` and prints it.
pub async fn run<S: Store>(
    svc: &Service<S>,
    actor: &Actor,
    name: &str,
    q: Option<String>,
    by: Option<String>,
    json: bool,
) -> Result<()> {
    let kind: ReportKind = name.parse()?;
    let req = ReportRequest {
        q,
        by: by.as_deref().map(str::parse::<BreakdownBy>).transpose()?,
    };
    let answer = svc.report(actor, kind, &req).await?;
    if json {
        return crate::output::print(&serde_json::to_string_pretty(&answer).unwrap_or_default());
    }
    let mut out = std::io::BufWriter::new(crate::output::Stdout);
    table(&answer, &mut out).map_err(|e| Error::internal(format!("cannot write output: {e}")))
}

fn pct(p: Option<Decimal>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p}%"))
}

fn days(d: Option<Decimal>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{d} d"))
}

/// The answer as a plain text table.
pub fn table(answer: &ReportAnswer, out: &mut impl Write) -> std::io::Result<()> {
    match answer {
        ReportAnswer::Funnel(f) => {
            writeln!(
                out,
                "{:<18} {:>8} {:>8} {:>8} {:>10} {:>16}",
                "stage", "now", "reached", "dropped", "conversion", "value now"
            )?;
            for s in &f.steps {
                writeln!(
                    out,
                    "{:<18} {:>8} {:>8} {:>8} {:>10} {:>16}",
                    s.label,
                    s.current,
                    s.reached,
                    s.drop_off,
                    pct(s.conversion_percent),
                    money(s.current_value)
                )?;
            }
            writeln!(
                out,
                "{} leads: {} won ({}), {} lost, {} outside the pipeline; win rate {}, overall conversion {}",
                f.total,
                f.won,
                money(f.won_value),
                f.lost,
                f.other,
                pct(f.win_rate_percent),
                pct(f.overall_conversion_percent)
            )?;
        }
        ReportAnswer::Velocity(v) => {
            writeln!(
                out,
                "{:<18} {:>8} {:>12} {:>12} {:>8}",
                "stage", "stays", "average", "median", "now"
            )?;
            for s in &v.stages {
                writeln!(
                    out,
                    "{:<18} {:>8} {:>12} {:>12} {:>8}",
                    s.stage,
                    s.stays,
                    days(s.average_days),
                    days(s.median_days),
                    s.in_stage_now
                )?;
            }
            writeln!(
                out,
                "{} won, {} lost: win rate {}; time to close {} on average, {} median",
                v.won,
                v.lost,
                pct(v.win_rate_percent),
                days(v.average_days_to_close),
                days(v.median_days_to_close)
            )?;
        }
        ReportAnswer::Forecast(f) => {
            writeln!(
                out,
                "{:<8} {:>8} {:>16} {:>16} {:>8} {:>16}",
                "month", "open", "pipeline", "weighted", "won", "won value"
            )?;
            for m in &f.months {
                writeln!(
                    out,
                    "{:<8} {:>8} {:>16} {:>16} {:>8} {:>16}",
                    m.month.as_deref().unwrap_or("no date"),
                    m.open_leads,
                    money(m.pipeline_value),
                    money(m.weighted_value),
                    m.won_leads,
                    money(m.won_value)
                )?;
            }
            writeln!(
                out,
                "total: pipeline {}, weighted {}, won {}",
                money(f.pipeline_value),
                money(f.weighted_value),
                money(f.won_value)
            )?;
        }
        ReportAnswer::Breakdown(b) => {
            let by = serde_json::to_value(b.by)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writeln!(
                out,
                "{:<38} {:>7} {:>7} {:>7} {:>7} {:>10} {:>9} {:>16}",
                by, "leads", "open", "won", "lost", "conversion", "win rate", "revenue"
            )?;
            for r in &b.rows {
                writeln!(
                    out,
                    "{:<38} {:>7} {:>7} {:>7} {:>7} {:>10} {:>9} {:>16}",
                    r.key.as_deref().unwrap_or("(none)"),
                    r.leads,
                    r.open,
                    r.won,
                    r.lost,
                    pct(r.conversion_percent),
                    pct(r.win_rate_percent),
                    money(r.won_value)
                )?;
            }
        }
    }
    out.flush()
}
