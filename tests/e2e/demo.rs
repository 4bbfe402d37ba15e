use std::process::Command;

use crate::util::{EXE, processes_of};

#[test]
fn the_demo_scales_gates_a_restart_rolls_back_a_mistake_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let output = Command::new(EXE)
        .args([
            "demo",
            "--duration",
            "150",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("scale-outs under load:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let count = |label: &str| -> u32 {
        let after = verdict.split(label).nth(1).unwrap_or_default();
        after
            .trim()
            .split(' ')
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0)
    };
    assert!(count("scale-outs under load:") >= 1, "{stdout}");
    assert!(count("scale-ins:") >= 1, "{stdout}");
    // The leaking worker's restart waited for approval, with the command shown, and expired.
    assert!(count("approvals expired:") >= 1, "{stdout}");
    assert!(stdout.contains("waits for approval"), "{stdout}");
    assert!(stdout.contains("swarmpilot actions approve"), "{stdout}");
    assert!(stdout.contains("expired unapproved"), "{stdout}");
    // The operator's mistake was caught by verification and undone.
    assert!(count("rolled back:") >= 1, "{stdout}");
    assert!(stdout.contains("verification failed"), "{stdout}");
    assert!(stdout.contains("Actions taken"), "{stdout}");
    assert!(processes_of(&data_dir).is_empty(), "workers left behind");
}
