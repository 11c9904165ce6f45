//! `crm report NAME`: a report of [`crm_core::analytics`] as a table (or `--json`), over what the
//! acting user may read that matches `--q`; with `--svg FILE`, also a bar chart of it (`svg.rs`).

use crate::commands::money;
use crm_core::access::Actor;
use crm_core::decimal::Decimal;
use crm_core::error::{Error, Result};
use crm_core::service::{ReportAnswer, ReportKind, ReportRequest, Service};
use crm_core::store::Store;
use std::io::Write;

/// Runs the report `name` with the given parameters (`by`, `tz`, `entity`, `cell`, `bins`: read by
/// the core's [`ReportRequest::from_params`], as the HTTP API reads its query) and prints it.
pub async fn run<S: Store>(
    svc: &Service<S>,
    actor: &Actor,
    name: &str,
    q: Option<String>,
    params: &[(&str, Option<String>)],
    json: bool,
    svg: Option<&std::path::Path>,
) -> Result<()> {
    let kind: ReportKind = name.parse()?;
    let get = |k: &str| -> Option<&str> {
        if k == "q" {
            return q.as_deref();
        }
        params.iter().find(|(n, _)| *n == k).and_then(|(_, v)| v.as_deref())
    };
    let req = ReportRequest::from_params(get)?;
    let answer = svc.report(actor, kind, &req).await?;
    if let Some(path) = svg {
        std::fs::write(path, crate::svg::render(&answer))
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    }
    if json {
        return crate::output::print(&serde_json::to_string_pretty(&answer).unwrap_or_default());
    }
    let mut out = std::io::BufWriter::new(crate::output::Stdout);
    table(&answer, &mut out).map_err(|e| Error::internal(format!("cannot write output: {e}")))
}

/// A column of a table: its header, width, and whether it is left-aligned (text) or right-aligned
/// (numbers).
struct Col<'a>(&'a str, usize, bool);

/// Writes a header line and one line per row, each cell padded to its column's width and cells
/// separated by one space.
fn grid(out: &mut impl Write, cols: &[Col<'_>], rows: impl IntoIterator<Item = Vec<String>>) -> std::io::Result<()> {
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        cols.iter()
            .zip(cells)
            .map(|(Col(_, w, left), v)| if *left { format!("{v:<w$}") } else { format!("{v:>w$}") })
            .collect::<Vec<_>>()
            .join(" ")
    };
    writeln!(out, "{}", line(&mut cols.iter().map(|c| c.0)))?;
    for r in rows {
        writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
    }
    Ok(())
}

fn pct(p: Option<Decimal>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p}%"))
}

fn days(d: Option<Decimal>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{d} d"))
}

fn opt(s: Option<&str>, none: &str) -> String {
    s.unwrap_or(none).to_owned()
}

fn hours(h: Option<Decimal>) -> String {
    h.map_or_else(|| "-".to_owned(), |h| format!("{h} h"))
}

/// `lead` → `leads`, `company` → `companies`.
fn plural(entity: &str) -> String {
    match entity.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{entity}s"),
    }
}

fn kinds(k: &std::collections::BTreeMap<String, u64>) -> String {
    k.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The answer as a plain text table.
pub fn table(answer: &ReportAnswer, out: &mut impl Write) -> std::io::Result<()> {
    match answer {
        ReportAnswer::Funnel(f) => {
            let cols = [
                Col("stage", 18, true),
                Col("now", 8, false),
                Col("reached", 8, false),
                Col("dropped", 8, false),
                Col("conversion", 10, false),
                Col("value now", 16, false),
            ];
            grid(
                out,
                &cols,
                f.steps.iter().map(|s| {
                    vec![
                        s.label.clone(),
                        s.current.to_string(),
                        s.reached.to_string(),
                        s.drop_off.to_string(),
                        pct(s.conversion_percent),
                        money(s.current_value),
                    ]
                }),
            )?;
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
            let cols = [
                Col("stage", 18, true),
                Col("stays", 8, false),
                Col("average", 12, false),
                Col("median", 12, false),
                Col("now", 8, false),
            ];
            grid(
                out,
                &cols,
                v.stages.iter().map(|s| {
                    vec![
                        s.stage.clone(),
                        s.stays.to_string(),
                        days(s.average_days),
                        days(s.median_days),
                        s.in_stage_now.to_string(),
                    ]
                }),
            )?;
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
            let cols = [
                Col("month", 8, true),
                Col("open", 8, false),
                Col("pipeline", 16, false),
                Col("weighted", 16, false),
                Col("won", 8, false),
                Col("won value", 16, false),
            ];
            grid(
                out,
                &cols,
                f.months.iter().map(|m| {
                    vec![
                        opt(m.month.as_deref(), "no date"),
                        m.open_leads.to_string(),
                        money(m.pipeline_value),
                        money(m.weighted_value),
                        m.won_leads.to_string(),
                        money(m.won_value),
                    ]
                }),
            )?;
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
            let cols = [
                Col(&by, 38, true),
                Col("leads", 7, false),
                Col("open", 7, false),
                Col("won", 7, false),
                Col("lost", 7, false),
                Col("conversion", 10, false),
                Col("win rate", 9, false),
                Col("revenue", 16, false),
            ];
            grid(
                out,
                &cols,
                b.rows.iter().map(|r| {
                    vec![
                        opt(r.key.as_deref(), "(none)"),
                        r.leads.to_string(),
                        r.open.to_string(),
                        r.won.to_string(),
                        r.lost.to_string(),
                        pct(r.conversion_percent),
                        pct(r.win_rate_percent),
                        money(r.won_value),
                    ]
                }),
            )?;
        }
        ReportAnswer::Productivity(p) => {
            let cols = [
                Col("user", 36, true),
                Col("week", 10, true),
                Col("activities", 10, false),
                Col("by kind", 0, true),
            ];
            grid(
                out,
                &cols,
                p.weeks.iter().map(|w| {
                    vec![
                        opt(w.user.as_deref(), "(none)"),
                        opt(w.week.as_deref(), "-"),
                        w.activities.to_string(),
                        kinds(&w.by_kind),
                    ]
                }),
            )?;
            writeln!(out)?;
            let cols = [
                Col("user", 36, true),
                Col("activities", 10, false),
                Col("leads", 7, false),
                Col("answered", 8, false),
                Col("response avg", 12, false),
                Col("median", 10, false),
            ];
            grid(
                out,
                &cols,
                p.users.iter().map(|u| {
                    vec![
                        opt(u.user.as_deref(), "(none)"),
                        u.activities.to_string(),
                        u.leads_touched.to_string(),
                        u.response.leads.to_string(),
                        hours(u.response.average_hours),
                        hours(u.response.median_hours),
                    ]
                }),
            )?;
            writeln!(
                out,
                "{} activities; {} leads answered: first response {} on average, {} median",
                p.activities,
                p.response.leads,
                hours(p.response.average_hours),
                hours(p.response.median_hours)
            )?;
        }
        ReportAnswer::Cohort(c) => {
            let cols = [
                Col("cohort", 7, true),
                Col("leads", 7, false),
                Col("month", 7, true),
                Col("+", 3, false),
                Col("won", 7, false),
                Col("won %", 7, false),
                Col("active", 7, false),
                Col("active %", 8, false),
            ];
            grid(
                out,
                &cols,
                c.cohorts.iter().flat_map(|c| {
                    c.months.iter().map(move |m| {
                        vec![
                            c.cohort.clone(),
                            c.leads.to_string(),
                            m.month.clone(),
                            m.offset.to_string(),
                            m.won.to_string(),
                            pct(m.won_percent),
                            m.active.to_string(),
                            pct(m.active_percent),
                        ]
                    })
                }),
            )?;
        }
        ReportAnswer::Geo(g) => {
            let cols = [
                Col("south", 10, false),
                Col("west", 11, false),
                Col("records", 8, false),
                Col("value", 16, false),
            ];
            grid(
                out,
                &cols,
                g.features.iter().map(|f| {
                    let sw = f.geometry.coordinates.first().and_then(|r| r.first()).copied();
                    vec![
                        sw.map_or_else(String::new, |p| p[1].to_string()),
                        sw.map_or_else(String::new, |p| p[0].to_string()),
                        f.properties.records.to_string(),
                        f.properties.value.map_or_else(|| "-".to_owned(), money),
                    ]
                }),
            )?;
            writeln!(
                out,
                "{} {} with coordinates in {} cells of {} degrees",
                g.records,
                plural(&g.entity),
                g.features.len(),
                g.cell
            )?;
        }
        ReportAnswer::LifetimeValue(l) => {
            let cols = [
                Col("from", 16, false),
                Col("to", 16, false),
                Col("customers", 9, false),
                Col("value", 16, false),
            ];
            grid(
                out,
                &cols,
                l.histogram
                    .iter()
                    .map(|b| vec![money(b.from), money(b.to), b.customers.to_string(), money(b.value)]),
            )?;
            let ps: Vec<String> = l
                .percentiles
                .iter()
                .map(|p| format!("p{} {}", p.percentile, money(p.value)))
                .collect();
            writeln!(
                out,
                "{} {}: total {} ({} from won leads, {} from accepted quotes); average {}; {}",
                l.customers,
                plural(&l.entity),
                money(l.total),
                money(l.from_leads),
                money(l.from_quotes),
                l.average.map_or_else(|| "-".to_owned(), money),
                ps.join(", ")
            )?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_pad_columns_and_name_entities_in_the_plural() {
        let mut out = Vec::new();
        let rows = vec![vec!["new".to_owned(), "3".to_owned()]];
        super::grid(
            &mut out,
            &[super::Col("stage", 6, true), super::Col("n", 3, false)],
            rows,
        )
        .unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "stage    n\nnew      3\n");
        assert_eq!(
            (super::plural("lead"), super::plural("company")),
            ("leads".to_owned(), "companies".to_owned())
        );
    }
}
