//! Real receivers for the notification tests: Debian's prometheus-alertmanager, a child
//! process on a free loopback port, killed when dropped, its output printed when the test
//! failed. scripts/test installs it; a test that finds it missing fails and says so rather
//! than skipping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where Debian's package puts Alertmanager.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// How long a receiver may take to start, and a message to arrive.
const DEADLINE: Duration = Duration::from_secs(20);

/// A child process and its log; killed when dropped.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// An Alertmanager with one blackhole receiver.
pub struct Alertmanager {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    process: Process,
    _dir: tempfile::TempDir,
}

// === impl Process ===

impl Process {
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}; run scripts/test"));
        Process { name, child, log }
    }

    /// Panics with the log when the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} exited ({status}):\n{log}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {} output ---\n{log}--- end ---", self.name);
        }
    }
}

// === impl Alertmanager ===

impl Alertmanager {
    /// Starts Alertmanager on a free port, clustering off, and waits for `/-/ready`.
    pub async fn start() -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER_BIN).is_file(),
            "{ALERTMANAGER_BIN} is missing: run scripts/test, which installs Debian's prometheus-alertmanager"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{}", free_port());
        let mut command = Command::new(ALERTMANAGER_BIN);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={}", &url["http://".len()..]))
            .arg("--cluster.listen-address=");
        let mut process = Process::spawn("alertmanager", command, dir.path());
        let client = reqwest::Client::new();
        let ready = format!("{url}/-/ready");
        wait_until("Alertmanager to be ready", async || {
            process.assert_running();
            let response = client.get(&ready).send().await.ok();
            response.filter(|r| r.status().is_success())
        })
        .await;
        Alertmanager {
            url,
            process,
            _dir: dir,
        }
    }

    /// Alertmanager's own `GET /api/v2/alerts`: the alerts it holds that have not resolved.
    pub async fn alerts(&mut self) -> Vec<Value> {
        self.process.assert_running();
        let response = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .expect("GET /api/v2/alerts");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("a JSON array of alerts")
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `check` every 50 ms until it gives a value; panics after the deadline.
pub async fn wait_until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
