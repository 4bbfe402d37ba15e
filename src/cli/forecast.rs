//! `swarmpilot forecast`: streaming forecasts for a `timestamp,value` CSV series.

use std::path::Path;

use crate::analytics::forecast::{ForecastConfig, Forecaster};
use crate::series_csv::{SeriesReader, write_rows};

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
    let reader = SeriesReader::open(input)?.allow_unsorted(allow_unsorted);
    let columns: Vec<String> = (1..=horizon).map(|h| format!("f{h}")).collect();
    let header = format!("timestamp,value,{}", columns.join(","));
    let mut forecaster = Forecaster::new(ForecastConfig::default(), horizon);
    let empty = ",".repeat(horizon - 1);
    write_rows("forecast", reader, output, &header, |out, row| {
        write!(out, "{},{},", row.timestamp, row.value_text)?;
        match forecaster.update(row.value) {
            Some(forecast) => {
                let cells: Vec<String> = forecast.iter().map(|f| format!("{f:.6}")).collect();
                writeln!(out, "{}", cells.join(","))
            }
            None => writeln!(out, "{empty}"),
        }
    })
}
