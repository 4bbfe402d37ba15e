use std::process::Command;

use crate::util::EXE;

fn detect(input_text: &str) -> (i32, String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    std::fs::write(&input, input_text).unwrap();
    let result = Command::new(EXE)
        .args(["detect", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&result.stderr).replace(&input.display().to_string(), "IN");
    (
        result.status.code().unwrap_or(-1),
        stderr,
        std::fs::read_to_string(&output).ok(),
    )
}

#[test]
fn detect_writes_one_score_per_row_and_flags_a_spike() {
    let mut text = String::from("timestamp,value\n");
    for i in 0..1500 {
        let value = if i == 1200 {
            500.0
        } else {
            50.0 + (i % 7) as f64
        };
        text.push_str(&format!("{},{value}\n", 1_396_310_400 + i * 300));
    }
    let (code, stderr, output) = detect(&text);
    assert_eq!(code, 0, "{stderr}");
    let output = output.expect("output written");
    let rows: Vec<&str> = output.lines().collect();
    assert_eq!(rows[0], "timestamp,value,anomaly_score");
    assert_eq!(rows.len(), 1501);
    let scores: Vec<f64> = rows[1..]
        .iter()
        .map(|r| r.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(scores[1200] >= 0.5, "spike scored {}", scores[1200]);
}

#[test]
fn detect_refuses_bad_input_with_its_location_and_writes_nothing() {
    let table = [
        (
            "time,value\n1,2\n",
            "IN:1: missing column `timestamp` (header: time,value)",
        ),
        (
            "timestamp,value\n1,2\n2,x\n",
            "IN:3: `x` is not a number (column value)",
        ),
        (
            "timestamp,value\n5,1\n4,1\n",
            "IN:3: timestamp `4` is earlier than the row before it",
        ),
        (
            "timestamp,value\nnoon,1\n",
            "IN:2: `noon` is not a timestamp",
        ),
    ];
    for (input, expected) in table {
        let (code, stderr, output) = detect(input);
        assert_eq!(code, 1, "{input:?}");
        assert!(stderr.contains(expected), "{input:?}: {stderr}");
        assert!(output.is_none(), "{input:?}: no output on error");
    }
}

#[test]
fn forecast_writes_h_columns_from_the_rows_before() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    let mut text = String::from("timestamp,value\n");
    for i in 0..600 {
        let value = 100.0 + 30.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
        text.push_str(&format!("{},{value}\n", 1_396_310_400 + i * 3600));
    }
    std::fs::write(&input, text).unwrap();
    let result = Command::new(EXE)
        .args(["forecast", "--horizon", "3", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let written = std::fs::read_to_string(&output).unwrap();
    let rows: Vec<&str> = written.lines().collect();
    assert_eq!(rows[0], "timestamp,value,f1,f2,f3");
    assert_eq!(rows.len(), 601);
    assert!(
        rows[1].ends_with(",,,"),
        "empty while warming up: {}",
        rows[1]
    );
    // Row 500 forecasts rows 501..503 of the daily wave closely.
    let cells: Vec<f64> = rows[501]
        .split(',')
        .skip(2)
        .map(|c| c.parse().unwrap())
        .collect();
    for (h, forecast) in cells.iter().enumerate() {
        let i = 500 + h + 1;
        let actual = 100.0 + 30.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
        assert!(
            (forecast - actual).abs() < 2.0,
            "h={} {forecast} vs {actual}",
            h + 1
        );
    }

    let bad = Command::new(EXE)
        .args(["forecast", "--horizon", "3", "--input"])
        .arg(dir.path().join("missing.csv"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.csv: cannot open"));
}
