use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::EXE;

/// Three days every 5 minutes: 20 at night, 80 from 08:00 to 20:00, with a little wobble.
fn daily_trace(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("timestamp,value\n");
    for i in 0..864 {
        let hour = (i % 288) as f64 / 12.0;
        let level = if (8.0..20.0).contains(&hour) {
            80.0
        } else {
            20.0
        };
        let wobble = ((i * 7919) % 11) as f64 - 5.0;
        text.push_str(&format!("{},{}\n", 1_396_310_400 + i * 300, level + wobble));
    }
    let path = dir.join("daily.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn replay(args: &[&str]) -> Output {
    Command::new(EXE).arg("replay").args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn replay_compares_the_three_strategies_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let trace = daily_trace(dir.path());
    let chart = dir.path().join("compare.png");
    let out = replay(&[
        "--trace",
        trace.to_str().unwrap(),
        "--compare",
        "--json",
        "--plot",
        chart.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let [hpa, ours, oracle] = results.as_array().unwrap().as_slice() else {
        panic!("three results: {results}");
    };
    assert_eq!(hpa["strategy"], "hpa");
    assert_eq!(ours["strategy"], "swarmpilot");
    assert_eq!(oracle["strategy"], "oracle");
    // From the first to the last row, every 15 s.
    let ticks = (863 * 300) / 15 + 1;
    for result in [hpa, ours, oracle] {
        assert_eq!(result["ticks"], ticks);
        assert_eq!(result["settings"]["tick_secs"], 15);
        for field in ["slo_violation_seconds", "agent_seconds", "scale_actions"] {
            assert!(result[field].is_u64(), "{field} in {result}");
        }
        assert!(result["max_agents"].as_u64().unwrap() <= 40);
    }
    // The morning step overloads the reactive HPA; the optimizer sees it coming.
    let violations = |r: &Value| r["slo_violation_seconds"].as_u64().unwrap();
    let cost = |r: &Value| r["agent_seconds"].as_u64().unwrap();
    assert!(violations(hpa) > 0, "{hpa}");
    assert!(violations(ours) * 2 <= violations(hpa), "{ours} vs {hpa}");
    assert!(cost(ours) <= cost(hpa), "{ours} vs {hpa}");
    // Perfect foresight: violations only while the first agents start, and the fewest
    // agent-seconds of the three.
    assert!(violations(oracle) <= 60, "{oracle}");
    assert!(
        cost(oracle) < cost(ours) && cost(oracle) < cost(hpa),
        "{oracle}"
    );
    // A real PNG of the chart's size.
    let png = std::fs::read(&chart).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1600, 600));
}

#[test]
fn replay_prints_a_table_for_one_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let trace = daily_trace(dir.path());
    let out = replay(&["--trace", trace.to_str().unwrap(), "--strategy", "hpa"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("17261 ticks of 15 s"), "{stdout}");
    assert!(lines[1].split_whitespace().eq([
        "strategy",
        "slo_violation_seconds",
        "agent_seconds",
        "scale_actions",
        "direction_changes",
        "max_agents"
    ]));
    assert!(lines[2].starts_with("hpa "), "{stdout}");
    assert_eq!(lines.len(), 3, "{stdout}");
}

#[test]
fn bad_traces_and_settings_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "timestamp,value\n1396310400,5\n1396310700,-5\n").unwrap();
    let out = replay(&["--trace", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3: load `-5` is negative", bad.display())),
        "{stderr}"
    );
    let trace = daily_trace(dir.path());
    let trace = trace.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--min-agents", "5", "--max-agents", "2"],
            "--min-agents (5) is above",
        ),
        (
            &["--peak-agents", "0"],
            "--peak-agents must be a positive number",
        ),
        (
            &["--policy", "policies/default.toml", "--pool", "nope"],
            "--pool nope: no such pool",
        ),
        (
            &["--plot", "x.png", "--plot-span", "500:600"],
            "--plot-span: the trace has no ticks",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(EXE)
            .args(["replay", "--trace", trace])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Flags that do not parse are refused before anything runs.
    let out = replay(&["--trace", trace, "--plot-span", "5:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ends before it starts"));
}

#[test]
fn replay_compare_prints_swarmpilots_ratios_to_hpa_and_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let trace = daily_trace(dir.path());
    let out = replay(&["--trace", trace.to_str().unwrap(), "--compare"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().skip(2).take(3).collect();
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert_eq!(names, ["hpa", "swarmpilot", "oracle"], "{stdout}");
    let agent_seconds = |name: &str| -> f64 {
        let row = rows.iter().find(|r| r.starts_with(name)).unwrap();
        row.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let line = stdout
        .lines()
        .find(|l| l.starts_with("swarmpilot / oracle: agent-seconds "))
        .unwrap_or_else(|| panic!("no oracle ratio in:\n{stdout}"));
    let printed: f64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    let expected = agent_seconds("swarmpilot") / agent_seconds("oracle");
    assert!((printed - expected).abs() < 0.001, "{line} vs {expected}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("swarmpilot / hpa: SLO violation seconds ")),
        "{stdout}"
    );
}

/// Flat at 10, then a burst in two steps a minute apart: 30 from minute 10, 60 from minute 11,
/// to minute 19 (rows every 15 s).
fn two_step_burst(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("timestamp,value\n");
    for i in 0..76 {
        let minute = i as f64 / 4.0;
        let value = if minute >= 11.0 {
            60.0
        } else if minute >= 10.0 {
            30.0
        } else {
            10.0
        };
        text.push_str(&format!("{},{value}\n", 1_396_310_400 + i * 15));
    }
    let path = dir.join("burst.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_replay_paces_swarmpilot_as_the_actuator_does_one_action_per_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let trace = two_step_burst(dir.path());
    let run = |cooldown_secs: u64| -> Value {
        let policy = dir.path().join(format!("cooldown-{cooldown_secs}.toml"));
        std::fs::write(
            &policy,
            format!(
                "[automation]\ncooldown_secs = {cooldown_secs}\n\
                 [pools.replay]\ntarget_cpu_percent = 75\nstartup_secs = 60\n\
                 scale_down_stabilization_secs = 60\n"
            ),
        )
        .unwrap();
        let out = replay(&[
            "--trace",
            trace.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let free = run(0);
    let paced = run(600);
    let actions = |r: &Value| r["scale_actions"].as_u64().unwrap();
    let held = |r: &Value| r["held_by_pacing"].as_u64().unwrap();
    // Unpaced, the burst's two steps are two scale-outs; within a 600 s cooldown the second
    // waits, and the run (shorter than the cooldown after the first) ends with one.
    assert!(actions(&free) >= 2, "{free}");
    assert_eq!(held(&free), 0, "{free}");
    assert_eq!(actions(&paced), 1, "{paced}");
    assert!(held(&paced) >= 1, "{paced}");
    // Held back, the pool runs short: more violation than unpaced.
    let violations = |r: &Value| r["slo_violation_seconds"].as_u64().unwrap();
    assert!(violations(&paced) > violations(&free), "{paced} vs {free}");
}
