//! `swarmpilot detect`: streaming anomaly scores for a `timestamp,value` CSV series.

use std::path::Path;

use anyhow::{Context, bail};

use crate::analytics::anomaly::{Detector, DetectorConfig};
use crate::series_csv::{SeriesReader, write_rows};

/// Scores `input` into `output` (`timestamp,value,anomaly_score`); the first `warm_up` rows
/// (default: NAB's probationary period for the file's length) only teach the detector and
/// score 0. The output appears only when every row was good.
pub fn run(
    input: &Path,
    output: &Path,
    allow_unsorted: bool,
    warm_up: Option<u64>,
    config: DetectorConfig,
) -> anyhow::Result<()> {
    let reader = SeriesReader::open(input)?.allow_unsorted(allow_unsorted);
    let warm_up = match warm_up {
        Some(rows) => rows,
        None => nab_probation(data_rows(input)?),
    };
    let mut detector = Detector::new(config);
    write_rows(
        "detect",
        reader,
        output,
        "timestamp,value,anomaly_score",
        |out, row| {
            let score = if detector.seen() < warm_up {
                detector.learn(row.value);
                0.0
            } else {
                detector.update(row.value)
            };
            writeln!(out, "{},{},{score:.6}", row.timestamp, row.value_text)
        },
    )
}

/// NAB's probationary period for a file of `rows` rows: 15% of it, at most 750 rows.
pub fn nab_probation(rows: u64) -> u64 {
    (rows * 15 / 100).min(750)
}

/// Rows below the header line of the CSV file at `path`, counted as it streams past.
fn data_rows(path: &Path) -> anyhow::Result<u64> {
    use std::io::BufRead;
    let cannot = || format!("cannot read {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let mut lines = 0u64;
    for line in std::io::BufReader::new(file).split(b'\n') {
        if !line
            .with_context(cannot)?
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            lines += 1;
        }
    }
    Ok(lines.saturating_sub(1))
}

/// The default detector configuration with each `NAME=VALUE` of `parameters` applied
/// (`kmeans.lags=3` reaches into a nested part).
pub fn config_with(parameters: &[String]) -> anyhow::Result<DetectorConfig> {
    let mut config = serde_json::to_value(DetectorConfig::default())?;
    for parameter in parameters {
        let Some((name, value)) = parameter.split_once('=') else {
            bail!("--set {parameter}: expected NAME=VALUE");
        };
        let value: serde_json::Value = serde_json::from_str(value.trim())
            .with_context(|| format!("--set {name}: '{value}' is not a number"))?;
        let mut slot = &mut config;
        for part in name.trim().split('.') {
            slot = slot
                .get_mut(part)
                .with_context(|| format!("--set {name}: no detector parameter '{part}'"))?;
        }
        if !slot.is_number() {
            bail!("--set {name}: '{name}' is a group of parameters, not one");
        }
        *slot = value;
    }
    serde_json::from_value(config).context("--set: a value does not fit its parameter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_override_the_defaults_and_bad_ones_are_named() {
        let config =
            config_with(&["hold_after_detection=7".into(), "kmeans.lags=3".into()]).unwrap();
        assert_eq!(config.hold_after_detection, 7);
        assert_eq!(config.kmeans.lags, 3);
        let error = config_with(&["hold_after=7".into()]).unwrap_err();
        assert!(error.to_string().contains("'hold_after'"), "{error}");
        let error = config_with(&["kmeans=7".into()]).unwrap_err();
        assert!(error.to_string().contains("group"), "{error}");
        assert!(config_with(&["hold_after_detection=-1".into()]).is_err());
    }

    #[test]
    fn the_default_warm_up_is_nabs_probationary_period() {
        assert_eq!(nab_probation(1000), 150);
        assert_eq!(nab_probation(22_695), 750);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut text = String::from("timestamp,value\n");
        for i in 0..100 {
            let value = if i == 10 { 1000.0 } else { f64::from(i % 3) };
            text += &format!("2020-01-01 00:{:02}:{:02},{value}\n", i / 60, i % 60);
        }
        std::fs::write(&input, text).unwrap();
        let output = dir.path().join("out.csv");
        run(&input, &output, false, None, DetectorConfig::default()).unwrap();
        let scores: Vec<f64> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(scores.len(), 100);
        assert!(scores[..15].iter().all(|&s| s == 0.0), "{scores:?}");
    }
}
