//! Log output: `--log-format json` writes one JSON object a line, and RUST_LOG sets the
//! levels when SWARMPILOT_LOG is unset.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::util::EXE;

#[test]
fn json_logs_at_the_level_rust_log_sets() {
    let data_dir = tempfile::tempdir().unwrap();
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.toml");
    let mut child = Command::new(EXE)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--policies", policies, "--data-dir"])
        .arg(data_dir.path())
        .env_remove("SWARMPILOT_LOG")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swarmpilot serve");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (with a deadline) for the start line, for one debug line, which only RUST_LOG
    // asked for (serve's own default level is info), and for the first action's transition,
    // logged inside the actuator's span.
    let (mut started, mut debug, mut transition) = (None, None, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while started.is_none() || debug.is_none() || transition.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = received.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no start, debug and transition lines in 30 s: {started:?} {debug:?}")
        });
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
        if event["fields"]["message"] == "Controller started." {
            started = Some(event.clone());
        }
        if event["fields"]["message"] == "Action transition." {
            transition = Some(event.clone());
        }
        if event["level"] == "DEBUG" {
            debug = Some(event);
        }
    }
    let started = started.unwrap();
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(started["fields"]["addr"].as_str().is_some(), "{started}");
    assert!(started["timestamp"].is_string(), "{started}");
    // The pool filling up to its minimum: which action, pool, states and why, in the
    // actuator's span.
    let transition = transition.unwrap();
    let fields = &transition["fields"];
    assert!(fields["action"].is_u64(), "{transition}");
    assert_eq!(fields["pool"], "worker", "{transition}");
    assert!(
        fields["to"].is_string() && fields["reason"].is_string(),
        "{transition}"
    );
    assert_eq!(transition["span"]["actor"], "actuator", "{transition}");
    child.kill().unwrap();
    child.wait().unwrap();
}
