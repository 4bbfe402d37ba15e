//! `swarmpilot forecast`: streaming forecasts for a `timestamp,value` CSV series.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use super::series::SeriesReader;
use crate::analytics::forecast::{ForecastConfig, Forecaster};

/// Rows between progress lines on stderr.
const PROGRESS_EVERY: u64 = 100_000;

/// Writes, for every row t, the forecasts made from rows 0..t for t+1..t+H as columns
/// `f1..fH` (empty while warming up); the output appears only when every row was good.
pub fn run(
    input: &Path,
    output: &Path,
    horizon: usize,
    allow_unsorted: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1000).contains(&horizon),
        "--horizon must be between 1 and 1000"
    );
    let started = Instant::now();
    let reader = SeriesReader::open(input)?.allow_unsorted(allow_unsorted);
    let partial = output.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let result = (|| -> anyhow::Result<u64> {
        let columns: Vec<String> = (1..=horizon).map(|h| format!("f{h}")).collect();
        writeln!(out, "timestamp,value,{}", columns.join(","))?;
        let mut forecaster = Forecaster::new(ForecastConfig::default(), horizon);
        let empty = ",".repeat(horizon - 1);
        let mut rows = 0u64;
        for row in reader {
            let row = row?;
            write!(out, "{},{},", row.timestamp, row.value_text)?;
            match forecaster.update(row.value) {
                Some(forecast) => {
                    let cells: Vec<String> = forecast.iter().map(|f| format!("{f:.6}")).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
                None => writeln!(out, "{empty}")?,
            }
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("forecast: {rows} rows");
            }
        }
        out.flush()?;
        Ok(rows)
    })();
    match result {
        Ok(rows) => {
            std::fs::rename(&partial, output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            eprintln!(
                "forecast: {rows} rows in {:.0} ms -> {}",
                started.elapsed().as_secs_f64() * 1000.0,
                output.display()
            );
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}
