//! `swarmpilot detect`: streaming anomaly scores for a `timestamp,value` CSV series.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use super::series::SeriesReader;
use crate::analytics::anomaly::{Detector, DetectorConfig};

/// Rows between progress lines on stderr.
const PROGRESS_EVERY: u64 = 1_000_000;

/// Scores `input` into `output` (`timestamp,value,anomaly_score`); the output appears only
/// when every row was good.
pub fn run(input: &Path, output: &Path, allow_unsorted: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let reader = SeriesReader::open(input)?.allow_unsorted(allow_unsorted);
    let partial = output.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let result = (|| -> anyhow::Result<u64> {
        writeln!(out, "timestamp,value,anomaly_score")?;
        let mut detector = Detector::new(DetectorConfig::default());
        let mut rows = 0u64;
        for row in reader {
            let row = row?;
            let score = detector.update(row.value);
            writeln!(out, "{},{},{score:.6}", row.timestamp, row.value_text)?;
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("detect: {rows} rows scored");
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
                "detect: {rows} rows scored in {:.0} ms -> {}",
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
