//! Operator conventions of `serve`: flags from the environment, SIGHUP reloads the policy
//! (and does not end the process, as it would by default), and `/metrics` carries the build
//! and process families.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{EXE, client, get_text, wait_for};

#[tokio::test]
async fn serve_takes_its_flags_from_the_environment_and_survives_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("p.toml"),
        "[pools.external]\nmin_agents = 0\ndriver = { type = \"none\" }\n",
    )
    .unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(EXE)
        .arg("serve")
        .env("SWARMPILOT_LISTEN", "127.0.0.1:0")
        .env("SWARMPILOT_POLICIES", &policies)
        .env("SWARMPILOT_DATA_DIR", dir.path().join("data"))
        .env("SWARMPILOT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .find_map(|line| {
            Some(
                line.ok()?
                    .strip_prefix("swarmpilot listening on ")?
                    .to_string(),
            )
        })
        .unwrap_or_else(|| {
            panic!(
                "no address; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )
        });
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        dir.path().join("data/admin.token").exists(),
        "the data directory came from the environment"
    );

    let page = get_text(&format!("{url}/metrics")).await;
    let version = format!(
        "swarmpilot_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    for wanted in [
        version.as_str(),
        "process_open_fds ",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
    ] {
        assert!(
            page.lines().any(|l| l.starts_with(wanted)),
            "no {wanted:?} in\n{page}"
        );
    }

    // SIGHUP: the policy is reloaded and the controller goes on serving.
    // SAFETY: kill sends a signal to the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    wait_for("the reload logged", Duration::from_secs(10), || async {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.contains("SIGHUP: reloading the policy.").then_some(())
    })
    .await;
    let health = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the controller"
    );
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_definitions() {
    let run = |args: &[&str]| {
        let output = Command::new(EXE).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for command in ["serve", "hook", "mock-provider", "actions"] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
    let man = run(&["man"]);
    assert!(man.contains(".TH swarmpilot 1"), "{man}");
    assert!(man.contains("serve"), "{man}");
    let (code, stderr) = {
        let output = Command::new(EXE)
            .args(["completions", "tcsh"])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "an unknown shell is a usage error: {stderr}");
}
