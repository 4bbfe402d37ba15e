//! The dashboard in a real browser: Debian's headless Chromium, driven by Selenium
//! (`tests/browser/dashboard.py`), against a running demo. It signs in with the token, sees an
//! agent's CPU change live, approves the demo's pending restart with the button, sees the
//! action reach `applied` in the log view without a reload, and saves a screenshot. Then the
//! demo's final HTML report is opened from its file (`tests/browser/report.py`): its charts
//! drew, nothing was fetched, a table sorts by a click, and a screenshot is saved.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{EXE, demo_slot, processes_of};

#[test]
fn the_dashboard_shows_the_fleet_live_and_approves_a_restart_with_its_button() {
    for (what, ok) in [
        (
            "/usr/bin/chromium",
            std::path::Path::new("/usr/bin/chromium").exists(),
        ),
        (
            "/usr/bin/chromedriver",
            std::path::Path::new("/usr/bin/chromedriver").exists(),
        ),
        (
            "python3's selenium",
            Command::new("python3")
                .args(["-c", "import selenium"])
                .status()
                .is_ok_and(|s| s.success()),
        ),
    ] {
        assert!(ok, "{what} is missing: run scripts/test, which installs it");
    }
    let _slot = demo_slot();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut demo = Command::new(EXE)
        .args([
            "demo",
            "--duration",
            "240",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    // The demo says where its dashboard is and, once stopped, where its final report is;
    // the rest of its output is read and dropped.
    let (tell, told) = mpsc::channel();
    let (tell_report, told_report) = mpsc::channel();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("dashboard:") {
                let _ = tell.send(url.trim().trim_end_matches('/').to_string());
            }
            if let Some(path) = line.trim().strip_prefix("final report:") {
                let _ = tell_report.send(path.trim().to_string());
            }
        }
    });
    let url = told
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo printed its dashboard address");
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let browser = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/dashboard.py"
        ))
        .args(["--url", &url, "--token", token.trim(), "--timeout", "150"])
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .expect("run the browser test");
    // Ctrl-C stops the demo and every worker it started.
    // SAFETY: signalling a child we started.
    unsafe { libc::kill(demo.id() as i32, libc::SIGINT) };
    let stopped = demo.wait().expect("the demo exits");
    let report = String::from_utf8_lossy(&browser.stdout);
    assert!(
        browser.status.success(),
        "the browser test failed:\n{report}\n{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    assert!(report.contains("all steps passed"), "{report}");
    assert!(stopped.success(), "the demo exited with {stopped}");
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "not a screenshot"
    );
    assert!(processes_of(&data_dir).is_empty(), "workers left behind");

    // The demo's final report, opened from its file with no server, as a person would.
    let html = told_report
        .try_iter()
        .find(|path| path.ends_with(".html"))
        .expect("the demo printed where its HTML report is");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let browser = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/report.py"
        ))
        .args(["--report", &html])
        .arg("--screenshot")
        .arg(&shot)
        .output()
        .expect("run the report's browser test");
    let said = String::from_utf8_lossy(&browser.stdout);
    assert!(
        browser.status.success() && said.contains("all steps passed"),
        "the report's browser test failed:\n{said}\n{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot of the report");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "not a screenshot"
    );
}
