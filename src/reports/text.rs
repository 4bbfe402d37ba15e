//! The text and CSV forms of a report.

use std::fmt::Write as _;

use super::tables::{Table, tables};
use crate::domain::time::rfc3339;
use crate::report::Report;

/// Rows as columns padded to their widest cell (counted in characters, so `→` is one),
/// two spaces apart; the last column is not padded.
pub fn align(rows: &[Vec<String>], prefix: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = prefix.to_string();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The report as text: a heading, the summary as paragraphs, then each table; the key
/// figures one row per figure, one column per pool, the previous period in brackets.
pub fn text(report: &Report) -> String {
    let mut out = heading(report);
    for table in tables(report).iter().map(Table::without_empty_columns) {
        if table.name == "summary" {
            for row in &table.rows {
                let _ = writeln!(out, "{}", row[0]);
            }
            out.push('\n');
            continue;
        }
        let _ = writeln!(out, "{}", table.title);
        if table.rows.is_empty() {
            out.push_str("  (none)\n\n");
            continue;
        }
        let rows = if table.name == "kpis" {
            kpis_by_figure(&table)
        } else {
            let mut rows = vec![table.columns.iter().map(|c| c.to_string()).collect()];
            rows.extend(table.rows.iter().map(|r| {
                r.iter()
                    .map(|c| if c.is_empty() { "-".into() } else { c.clone() })
                    .collect()
            }));
            rows
        };
        out.push_str(&align(&rows, "  "));
        out.push('\n');
    }
    out
}

fn heading(report: &Report) -> String {
    format!(
        "swarmpilot {} report{}\n{} to {} (previous period from {})\n\n",
        report.period,
        report
            .pool
            .as_ref()
            .map_or(String::new(), |p| format!(", pool {p}")),
        rfc3339(report.window.since_ms),
        rfc3339(report.window.until_ms),
        rfc3339(report.previous.since_ms),
    )
}

/// The key-figures table turned: a row per figure, `current (previous)` per pool.
fn kpis_by_figure(table: &Table) -> Vec<Vec<String>> {
    let mut rows = vec![
        std::iter::once("figure".to_string())
            .chain(table.rows.iter().map(|r| r[0].clone()))
            .collect::<Vec<_>>(),
    ];
    let dash = |s: &String| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.clone()
        }
    };
    for (c, name) in table.columns.iter().enumerate().skip(1) {
        if name.starts_with("previous_") {
            continue;
        }
        let previous = table
            .columns
            .iter()
            .position(|p| p.strip_prefix("previous_") == Some(name));
        let mut row = vec![name.to_string()];
        for r in &table.rows {
            let cell = match previous {
                Some(p) => format!("{} ({})", dash(&r[c]), dash(&r[p])),
                None => dash(&r[c]),
            };
            row.push(cell);
        }
        rows.push(row);
    }
    rows
}

/// One CSV table: its header, then its rows, each led by the table's name when `tagged`.
pub fn csv_table(table: &Table, tagged: bool) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let lead = |first: &str| tagged.then(|| first.to_string());
    let header: Vec<String> = lead("table")
        .into_iter()
        .chain(table.columns.iter().map(|c| c.to_string()))
        .collect();
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(&header);
    for row in &table.rows {
        let record: Vec<String> = lead(table.name)
            .into_iter()
            .chain(row.iter().cloned())
            .collect();
        let _ = writer.write_record(&record);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The report as one CSV file: each table its own block (a header row whose first cell is
/// `table`, then rows whose first cell is the table's name), blocks a blank line apart.
pub fn csv(report: &Report) -> String {
    tables(report)
        .iter()
        .map(|t| csv_table(t, true))
        .collect::<Vec<_>>()
        .join("\n")
}
