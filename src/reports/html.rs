//! The HTML form of a report: one self-contained page (inline CSS, inline SVG charts, a few
//! lines of script to sort tables by a column), which opens with no network.

use std::fmt::Write as _;

use super::charts::charts;
use super::tables::tables;
use crate::domain::time::rfc3339;
use crate::report::Report;

/// Sorts a table by the clicked column: cells that are whole numbers as numbers, the rest
/// (times, names) as text.
const SORT_SCRIPT: &str = r#"
document.querySelectorAll("table.sortable th").forEach((th, i) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const down = th.dataset.dir !== "desc";
    th.dataset.dir = down ? "desc" : "asc";
    const key = (row) => row.cells[th.cellIndex].textContent;
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
      const numbers = x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny);
      const c = numbers ? nx - ny : x.localeCompare(y);
      return down ? -c : c;
    });
    rows.forEach((r) => body.appendChild(r));
  });
});
"#;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.window{color:#666;margin-top:0} .summary{background:#f5f8fc;border-left:4px solid #1f77b4;padding:.6rem 1rem}
.summary p{margin:.4rem 0} .charts{display:flex;flex-wrap:wrap;gap:1rem;justify-content:space-between} figure{margin:0}
figcaption{font-size:.8rem;color:#666} table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right} th{background:#f2f2f2;cursor:pointer}
td:first-child,th:first-child{text-align:left} .none{color:#888;font-style:italic}
.scroll{overflow-x:auto}
";

/// Escapes text for HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// The report as one HTML page.
pub fn html(report: &Report) -> String {
    let title = format!(
        "swarmpilot {} report{}",
        report.period,
        report
            .pool
            .as_ref()
            .map_or(String::new(), |p| format!(", pool {p}"))
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\
         <p class=\"window\">{} to {} · previous period from {} · built {}</p>\n",
        escape(&title),
        escape(&title),
        rfc3339(report.window.since_ms),
        rfc3339(report.window.until_ms),
        rfc3339(report.previous.since_ms),
        rfc3339(report.generated_ms),
    );
    let tables = tables(report);
    out.push_str("<section class=\"summary\" id=\"summary\">");
    for sentence in &report.summary {
        let _ = write!(out, "<p>{}</p>", escape(sentence));
    }
    out.push_str("</section>\n<h2>Charts</h2><div class=\"charts\">");
    for (caption, svg) in charts(report) {
        // plotters writes its own XML header; inline SVG starts at the element.
        let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        let _ = write!(
            out,
            "<figure>{svg}<figcaption>{}</figcaption></figure>",
            escape(&caption)
        );
    }
    out.push_str("</div>\n");
    for table in tables
        .iter()
        .filter(|t| t.name != "summary")
        .map(super::tables::Table::without_empty_columns)
    {
        let _ = write!(
            out,
            "<h2 id=\"{}\">{}</h2>",
            table.name,
            escape(table.title)
        );
        if table.rows.is_empty() {
            out.push_str("<p class=\"none\">None.</p>\n");
            continue;
        }
        let _ = write!(
            out,
            "<div class=\"scroll\"><table class=\"sortable\" data-table=\"{}\"><thead><tr>",
            table.name
        );
        for column in &table.columns {
            let _ = write!(out, "<th>{}</th>", escape(column));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &table.rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></div>\n");
    }
    let _ = writeln!(out, "<script>{SORT_SCRIPT}</script></body></html>");
    out
}
