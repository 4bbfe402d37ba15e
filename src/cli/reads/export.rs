//! `swarmpilot export --what metrics|alerts|log --format json|csv [--since --until]`: the
//! controller's records written to stdout a page (or one series) at a time, so an export of
//! any size holds one page in memory. CSV has a header row; JSON is one array.

use std::io::Write;

use serde_json::{Value, json};

use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::text;

/// Rows read per page.
const PAGE: usize = 1000;
/// One rollup point per minute, the finest the store keeps.
const STEP_SECS: i64 = 60;
/// Minutes read per request of a series (the route answers at most 10,000 points).
const CHUNK_MS: i64 = 9_000 * STEP_SECS * 1000;
/// The window of a metrics export that names no `--since`: the last day.
const DEFAULT_METRICS_MS: i64 = 24 * 3_600_000;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Every agent's per-minute rollups of every metric it reports.
    Metrics,
    /// The alert history: every state change.
    Alerts,
    /// The action log: every transition.
    Log,
}

/// How to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON array of objects.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The window asked for, epoch milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// From (inclusive).
    pub since_ms: Option<i64>,
    /// Until (exclusive).
    pub until_ms: Option<i64>,
}

impl Window {
    fn holds(&self, ts_ms: i64) -> bool {
        self.since_ms.is_none_or(|s| ts_ms >= s) && self.until_ms.is_none_or(|u| ts_ms < u)
    }
}

/// Writes rows as they come: CSV lines under a header, or the items of one JSON array.
/// Nothing is written before the first row or the end, so a refused request leaves stdout
/// empty.
struct Sink<W: Write> {
    out: W,
    format: Format,
    columns: &'static [&'static str],
    rows: usize,
    opened: bool,
}

impl<W: Write> Sink<W> {
    fn new(out: W, format: Format, columns: &'static [&'static str]) -> std::io::Result<Self> {
        Ok(Sink {
            out,
            format,
            columns,
            rows: 0,
            opened: false,
        })
    }

    /// The header row, or the array's opening bracket, once.
    fn open(&mut self) -> std::io::Result<()> {
        if std::mem::replace(&mut self.opened, true) {
            return Ok(());
        }
        match self.format {
            Format::Csv => self.csv_line(self.columns.iter().map(|c| c.to_string())),
            Format::Json => self.out.write_all(b"["),
        }
    }

    /// One row: an object whose fields include `columns`.
    fn row(&mut self, row: &Value) -> std::io::Result<()> {
        self.open()?;
        match self.format {
            Format::Csv => {
                let cells = self.columns.iter().map(|c| match &row[*c] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                self.csv_line(cells.collect::<Vec<_>>().into_iter())?;
            }
            Format::Json => {
                let separator: &[u8] = if self.rows == 0 { b"\n" } else { b",\n" };
                self.out.write_all(separator)?;
                serde_json::to_writer(&mut self.out, row)?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn csv_line(&mut self, cells: impl Iterator<Item = String>) -> std::io::Result<()> {
        let mut writer = csv::WriterBuilder::new().from_writer(&mut self.out);
        writer.write_record(cells.collect::<Vec<_>>())?;
        writer.flush()
    }

    fn finish(mut self) -> std::io::Result<usize> {
        self.open()?;
        if self.format == Format::Json {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

/// Writes `what` in `window` to stdout as `format`; answers how many rows.
pub async fn run(
    client: &ApiClient,
    what: What,
    format: Format,
    window: Window,
) -> Result<usize, ClientError> {
    let stdout = std::io::stdout().lock();
    let written = |e: std::io::Error| ClientError::Output(e.to_string());
    let (columns, history): (&'static [&'static str], _) = match what {
        What::Log => (
            &[
                "seq",
                "time",
                "action_id",
                "kind",
                "pool",
                "agent",
                "from_state",
                "to_state",
                "actor",
                "reason",
            ],
            Some("/api/v1/log"),
        ),
        What::Alerts => (
            &[
                "seq",
                "time",
                "rule",
                "agent",
                "pool",
                "level",
                "from_state",
                "to_state",
                "value",
                "metric",
                "threshold",
                "message",
            ],
            Some("/api/v1/alerts/history"),
        ),
        What::Metrics => (
            &[
                "agent", "pool", "metric", "time", "ts_ms", "count", "min", "max", "mean", "p95",
            ],
            None,
        ),
    };
    let mut sink = Sink::new(stdout, format, columns).map_err(written)?;
    match history {
        Some(path) => backwards(client, path, window, &mut sink).await?,
        None => metrics(client, window, &mut sink).await?,
    }
    sink.finish().map_err(written)
}

/// Pages back through a newest-first list (its `Link` headers), writing the rows in
/// `window`, and stops at the first page that reaches before it.
async fn backwards<W: Write>(
    client: &ApiClient,
    path: &str,
    window: Window,
    sink: &mut Sink<W>,
) -> Result<(), ClientError> {
    let mut pages = client.pages(path, &[("limit", PAGE.to_string())])?;
    while let Some(rows) = pages.next().await? {
        for row in rows
            .iter()
            .filter(|r| window.holds(r["ts_ms"].as_i64().unwrap_or(0)))
        {
            sink.row(row)
                .map_err(|e| ClientError::Output(e.to_string()))?;
        }
        // Newest first: a page that reaches before the window ends the export.
        let oldest = rows.last().and_then(|r| r["ts_ms"].as_i64());
        if oldest.is_some_and(|ts| window.since_ms.is_some_and(|s| ts < s)) {
            break;
        }
    }
    Ok(())
}

/// Writes every agent's rollups of every metric it reports, one series at a time.
async fn metrics<W: Write>(
    client: &ApiClient,
    window: Window,
    sink: &mut Sink<W>,
) -> Result<(), ClientError> {
    let now_ms = crate::clock::now_ms();
    let until = window.until_ms.unwrap_or(now_ms);
    let since = window.since_ms.unwrap_or(until - DEFAULT_METRICS_MS);
    let agents = client
        .get_all("/api/v1/agents", &[("limit", "5000".into())])
        .await?;
    for agent in &agents {
        let id = text(&agent["id"]);
        let detail = match client.get(&format!("/api/v1/agents/{id}"), &[]).await {
            Ok(detail) => detail,
            // Gone since the list was read.
            Err(ClientError::Status { status: 404, .. }) => continue,
            Err(error) => return Err(error),
        };
        let metrics: Vec<String> = detail["metrics"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for metric in metrics {
            let mut from = since;
            while from < until {
                let to = (from + CHUNK_MS).min(until);
                let series = client
                    .get(
                        &format!("/api/v1/agents/{id}/series/{metric}"),
                        &[
                            ("since", from.to_string()),
                            ("until", to.to_string()),
                            ("step", STEP_SECS.to_string()),
                        ],
                    )
                    .await?;
                for point in series["points"].as_array().into_iter().flatten() {
                    if !window.holds(point["ts_ms"].as_i64().unwrap_or(from)) {
                        continue;
                    }
                    let mut row = json!({"agent": id, "pool": agent["pool"], "metric": metric});
                    for (key, value) in point.as_object().into_iter().flatten() {
                        row[key] = value.clone();
                    }
                    sink.row(&row)
                        .map_err(|e| ClientError::Output(e.to_string()))?;
                }
                from = to;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_json_is_one_array() {
        let rows = [
            json!({"a": 1, "b": "x, y"}),
            json!({"a": null, "b": "say \"hi\""}),
        ];
        let mut csv = Vec::new();
        let mut sink = Sink::new(&mut csv, Format::Csv, &["a", "b"]).unwrap();
        rows.iter().for_each(|r| sink.row(r).unwrap());
        assert_eq!(sink.finish().unwrap(), 2);
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "a,b\n1,\"x, y\"\n,\"say \"\"hi\"\"\"\n"
        );
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out, Format::Json, &["a", "b"]).unwrap();
        rows.iter().for_each(|r| sink.row(r).unwrap());
        sink.finish().unwrap();
        let back: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, json!(rows));
    }

    #[test]
    fn a_window_holds_its_start_but_not_its_end() {
        let window = Window {
            since_ms: Some(10),
            until_ms: Some(20),
        };
        assert!(window.holds(10) && window.holds(19));
        assert!(!window.holds(9) && !window.holds(20));
    }
}
