//! The quote as the customer reads it: one self-contained, printable HTML page (no script, no
//! external asset) with the tenant, the customer, the lines, the totals, the validity and the
//! revision. Pure: the service hands in what the reader may see.

use super::fields::*;
use crate::entity::DocumentCtx;
use crate::record::Record;
use crate::value::Value;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A field's shown text (empty when unset or hidden from the reader).
fn text(r: &Record, field: &str) -> String {
    match r.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::Text(s)) => esc(s),
        Some(v) => esc(v
            .to_json()
            .as_str()
            .map_or_else(|| v.to_json().to_string(), str::to_owned)
            .as_str()),
    }
}

/// The customer's display name: a company's name, or a contact's first and last name.
fn customer_name(r: &Record) -> String {
    match r.str("name") {
        Some(n) => esc(n),
        None => esc([r.str("first_name"), r.str("last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str()),
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem;margin:0}table{width:100%;border-collapse:collapse;margin:1rem 0}\
th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:left}td.n,th.n{text-align:right}\
tfoot td{border:0}.muted{color:#666}.optional td{color:#666;font-style:italic}\
@media print{body{margin:0}}";

/// Renders the quote page.
pub fn render(cx: &DocumentCtx<'_>) -> String {
    let q = cx.record;
    let currency = text(q, CURRENCY);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Quote {reference}</title><style>{STYLE}</style></head><body>\
         <header><p class=\"muted\">{tenant}</p><h1>Quote {reference}</h1>\
         <p>Revision {revision} · valid until {valid} · {currency}</p>",
        reference = text(q, REFERENCE),
        tenant = text(cx.org, "name"),
        revision = text(q, REVISION),
        valid = text(q, VALID_UNTIL),
    );
    if let Some(state) = q.str(STATE)
        && state != "sent"
        && state != "accepted"
    {
        let _ = write!(h, "<p><strong>{}</strong></p>", esc(&state.replace('_', " ")));
    }
    h.push_str("</header>");
    if let Some(c) = cx.refs.first() {
        let _ = write!(
            h,
            "<section><h2>For</h2><p>{}<br>{} {} {}</p></section>",
            customer_name(c),
            text(c, "address_line"),
            text(c, "postal_code"),
            text(c, "city")
        );
    }
    if let Some(title) = q.str("title") {
        let _ = write!(h, "<h2>{}</h2>", esc(title));
    }
    h.push_str(
        "<table><thead><tr><th>#</th><th>Description</th><th class=\"n\">Quantity</th>\
         <th class=\"n\">Unit price</th><th class=\"n\">Tax %</th><th class=\"n\">Amount</th></tr></thead><tbody>",
    );
    let lines = cx
        .children
        .iter()
        .find(|(d, _)| d.name == "quote_line")
        .map(|(_, r)| r.as_slice())
        .unwrap_or(&[]);
    for l in lines {
        let optional = l.get(OPTIONAL) == Some(&Value::Bool(true));
        let _ = write!(
            h,
            "<tr{cls}><td>{pos}</td><td>{desc}{opt}</td><td class=\"n\">{qty} {unit}</td><td class=\"n\">{price}</td>\
             <td class=\"n\">{rate}</td><td class=\"n\">{amount}</td></tr>",
            cls = if optional { " class=\"optional\"" } else { "" },
            pos = text(l, POSITION),
            desc = text(l, "description"),
            opt = if optional { " (optional, not included)" } else { "" },
            qty = text(l, QUANTITY),
            unit = text(l, "unit"),
            price = text(l, UNIT_PRICE),
            rate = text(l, TAX_RATE),
            amount = text(l, AMOUNT),
        );
    }
    h.push_str("</tbody><tfoot>");
    let mut row = |label: &str, value: String| {
        let _ = write!(
            h,
            "<tr><td colspan=\"5\" class=\"n\">{label}</td><td class=\"n\">{value}</td></tr>"
        );
    };
    row("Subtotal", text(q, SUBTOTAL));
    if q.get(DISCOUNT_TOTAL).and_then(Value::as_i64).unwrap_or(0) != 0 {
        row("Discount", format!("−{}", text(q, DISCOUNT_TOTAL)));
    }
    if let Some(Value::Json(serde_json::Value::Array(taxes))) = q.get(TAXES) {
        for t in taxes {
            let s = |k: &str| esc(t[k].as_str().unwrap_or_default());
            if t["tax"].as_str().is_some_and(|x| x != "0.00") {
                row(&format!("Tax {} % on {}", s("rate"), s("base")), s("tax"));
            }
        }
    }
    row(
        &format!("<strong>Total {currency}</strong>"),
        format!("<strong>{}</strong>", text(q, TOTAL)),
    );
    h.push_str("</tfoot></table>");
    for (field, label) in [("terms", "Terms"), ("notes", "Notes")] {
        if let Some(s) = q.str(field) {
            let _ = write!(
                h,
                "<section><h2>{label}</h2><p>{}</p></section>",
                esc(s).replace('\n', "<br>")
            );
        }
    }
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_it_shows() {
        assert_eq!(
            super::esc("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
