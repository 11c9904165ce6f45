//! `crm report NAME --svg FILE`: the report's main series as a horizontal bar chart in one
//! self-contained SVG file (no script, no external font or stylesheet). Every bar is labelled with
//! the number the table prints, as text, so the figure reads without the table; bar lengths are
//! only scaled to those numbers.

use crate::commands::money;
use crm_core::decimal::Decimal;
use crm_core::service::ReportAnswer;
use crm_core::value::Money;
use std::fmt::Write;

/// One bar: its label, the value its length is scaled to, and the text printed beside it.
struct Bar {
    label: String,
    value: f64,
    text: String,
}

/// What a chart draws: a title, a line under it (totals), and per series (a name and a colour)
/// one bar per row.
struct Chart {
    title: String,
    note: String,
    series: Vec<(&'static str, &'static str)>,
    rows: Vec<(String, Vec<Bar>)>,
}

fn num(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

fn cents(m: Money) -> f64 {
    m.0 as f64
}

fn bar(label: &str, value: f64, text: String) -> Bar {
    Bar {
        label: label.to_owned(),
        value,
        text,
    }
}

fn single(title: &str, note: String, name: &'static str, rows: impl Iterator<Item = (String, f64, String)>) -> Chart {
    Chart {
        title: title.to_owned(),
        note,
        series: vec![(name, BLUE)],
        rows: rows
            .map(|(label, value, text)| (label.clone(), vec![bar(name, value, text)]))
            .collect(),
    }
}

const BLUE: &str = "#0b5cad";
const GREEN: &str = "#1a7f37";

/// The chart of a report.
fn chart(answer: &ReportAnswer) -> Chart {
    match answer {
        ReportAnswer::Funnel(f) => single(
            "Funnel: leads that reached each stage",
            format!("{} leads, {} won", f.total, f.won),
            "reached",
            f.steps
                .iter()
                .map(|s| (s.label.clone(), s.reached as f64, s.reached.to_string())),
        ),
        ReportAnswer::Velocity(v) => single(
            "Velocity: average days in each stage",
            format!("stays that ended; {} won, {} lost", v.won, v.lost),
            "average days",
            v.stages.iter().map(|s| {
                let text = s.average_days.map_or_else(|| "-".to_owned(), |d| format!("{d} d"));
                (s.stage.clone(), s.average_days.map_or(0.0, num), text)
            }),
        ),
        ReportAnswer::Forecast(f) => Chart {
            title: "Forecast: weighted open value and value won by month".to_owned(),
            note: format!(
                "pipeline {}, weighted {}, won {}",
                money(f.pipeline_value),
                money(f.weighted_value),
                money(f.won_value)
            ),
            series: vec![("weighted", BLUE), ("won", GREEN)],
            rows: f
                .months
                .iter()
                .map(|m| {
                    let month = m.month.clone().unwrap_or_else(|| "no date".to_owned());
                    (
                        month,
                        vec![
                            bar("weighted", cents(m.weighted_value), money(m.weighted_value)),
                            bar("won", cents(m.won_value), money(m.won_value)),
                        ],
                    )
                })
                .collect(),
        },
        ReportAnswer::Breakdown(b) => {
            let by = serde_json::to_value(b.by)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            single(
                &format!("Revenue (won value) by {by}"),
                format!("{} groups", b.rows.len()),
                "won value",
                b.rows.iter().map(|r| {
                    (
                        r.key.clone().unwrap_or_else(|| "(none)".to_owned()),
                        cents(r.won_value),
                        money(r.won_value),
                    )
                }),
            )
        }
        ReportAnswer::Productivity(p) => single(
            "Productivity: activities per user",
            format!("{} activities", p.activities),
            "activities",
            p.users.iter().map(|u| {
                (
                    u.user.clone().unwrap_or_else(|| "(none)".to_owned()),
                    u.activities as f64,
                    u.activities.to_string(),
                )
            }),
        ),
        ReportAnswer::Cohort(c) => single(
            "Cohorts: leads by month of creation",
            format!("as of {}", c.as_of),
            "leads",
            c.cohorts
                .iter()
                .map(|c| (c.cohort.clone(), c.leads as f64, c.leads.to_string())),
        ),
        ReportAnswer::Geo(g) => single(
            "Map: records per cell (latitude, longitude of its centre)",
            format!(
                "{} {}s with coordinates in cells of {} degrees",
                g.records, g.entity, g.cell
            ),
            "records",
            g.features.iter().map(|f| {
                let [lon, lat] = f.properties.center;
                (
                    format!("{lat}, {lon}"),
                    f.properties.records as f64,
                    f.properties.records.to_string(),
                )
            }),
        ),
        ReportAnswer::LifetimeValue(l) => single(
            "Lifetime value: customers per value bin",
            format!("{} {}s, total {}", l.customers, l.entity, money(l.total)),
            "customers",
            l.histogram.iter().map(|b| {
                (
                    format!("{} to {}", money(b.from), money(b.to)),
                    b.customers as f64,
                    b.customers.to_string(),
                )
            }),
        ),
    }
}

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters; the core refuses them in text anyway.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const LABEL_W: f64 = 260.0;
const BAR_W: f64 = 360.0;
const VALUE_W: f64 = 150.0;
const BAR_H: f64 = 16.0;

/// The report as an SVG document.
pub fn render(answer: &ReportAnswer) -> String {
    let c = chart(answer);
    let per_row = BAR_H * c.series.len() as f64 + 8.0;
    let legend = if c.series.len() > 1 { 22.0 } else { 0.0 };
    let top = 52.0 + legend;
    let width = LABEL_W + BAR_W + VALUE_W;
    let height = top + per_row * c.rows.len().max(1) as f64 + 10.0;
    let max = c
        .rows
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.value))
        .fold(0.0_f64, f64::max);
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="title" font-family="sans-serif" font-size="12">
<title id="title">{}</title>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="8" y="20" font-size="14" font-weight="bold">{}</text>
<text x="8" y="38" fill="#444444">{}</text>"##,
        esc(&c.title),
        esc(&c.title),
        esc(&c.note)
    );
    if c.series.len() > 1 {
        for (i, (name, colour)) in c.series.iter().enumerate() {
            let x = LABEL_W + i as f64 * 140.0;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="48" width="12" height="12" fill="{colour}"/><text x="{}" y="58">{}</text>"#,
                x + 16.0,
                esc(name)
            );
        }
    }
    if c.rows.is_empty() {
        let _ = writeln!(s, r#"<text x="8" y="{}">Nothing to show.</text>"#, top + 12.0);
    }
    for (i, (label, bars)) in c.rows.iter().enumerate() {
        let y = top + i as f64 * per_row;
        let _ = writeln!(
            s,
            r#"<g><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 6.0,
            y + 12.0,
            esc(label)
        );
        for (j, b) in bars.iter().enumerate() {
            let by = y + j as f64 * BAR_H;
            let w = if max > 0.0 && b.value > 0.0 {
                (b.value / max * BAR_W).max(1.0)
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                r#"<rect x="{LABEL_W}" y="{by}" width="{w:.1}" height="{}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{}">{}</text>"#,
                BAR_H - 2.0,
                c.series[j].1,
                esc(&b.label),
                esc(&b.text),
                LABEL_W + w + 4.0,
                by + 11.0,
                esc(&b.text)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(super::esc("a<b & \"c\"\u{7}"), "a&lt;b &amp; &quot;c&quot;\u{fffd}");
    }
}
