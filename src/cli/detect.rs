//! `swarmpilot detect`: streaming anomaly scores for a `timestamp,value` CSV series.

use std::path::Path;

use crate::analytics::anomaly::{Detector, DetectorConfig};
use crate::series_csv::{SeriesReader, write_rows};

/// Scores `input` into `output` (`timestamp,value,anomaly_score`); the output appears only
/// when every row was good.
pub fn run(input: &Path, output: &Path, allow_unsorted: bool) -> anyhow::Result<()> {
    let reader = SeriesReader::open(input)?.allow_unsorted(allow_unsorted);
    let mut detector = Detector::new(DetectorConfig::default());
    write_rows(
        "detect",
        reader,
        output,
        "timestamp,value,anomaly_score",
        |out, row| {
            let score = detector.update(row.value);
            writeln!(out, "{},{},{score:.6}", row.timestamp, row.value_text)
        },
    )
}
