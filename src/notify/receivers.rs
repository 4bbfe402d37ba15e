//! Real receivers for the notification tests: an SMTP server from Python's aiosmtpd and
//! Debian's prometheus-alertmanager, each a child process on a free loopback port, killed when
//! dropped, its output printed when the test failed. scripts/test installs both; a test that
//! finds one missing fails and says so rather than skipping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where Debian's package puts Alertmanager.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// How long a receiver may take to start, and a message to arrive.
const DEADLINE: Duration = Duration::from_secs(20);

/// The aiosmtpd handler: each message, decoded by Python's own email parser, appended to a
/// file as one JSON line.
const SMTP_SINK: &str = r#"
import email, email.policy, json

class Sink:
    def __init__(self, path):
        self.path = path

    @classmethod
    def from_cli(cls, parser, path):
        return cls(path)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "content_type": message.get_content_type(),
            # SMTP ends lines with CRLF; the tests compare text.
            "body": message.get_content().replace("\r\n", "\n"),
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"
"#;

/// A child process and its log; killed when dropped.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// An aiosmtpd server that keeps what it receives.
pub struct SmtpServer {
    /// The port on 127.0.0.1.
    pub port: u16,
    inbox: PathBuf,
    process: Process,
    _dir: tempfile::TempDir,
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

// === impl SmtpServer ===

impl SmtpServer {
    /// Starts `python3 -m aiosmtpd` on a free port and waits until it accepts connections.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on(free_port()).await
    }

    /// Starts `python3 -m aiosmtpd` on `port` of 127.0.0.1 and waits until it listens.
    pub async fn start_on(port: u16) -> SmtpServer {
        let importable = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            importable,
            "python3 cannot import aiosmtpd (the SMTP test server): run scripts/test, which installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp_sink.py"), SMTP_SINK).unwrap();
        let inbox = dir.path().join("inbox.jsonl");
        let mut command = Command::new("python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "smtp_sink.Sink"])
            .arg(&inbox)
            .current_dir(dir.path())
            .env("PYTHONPATH", dir.path());
        let mut process = Process::spawn("aiosmtpd", command, dir.path());
        let address = format!("127.0.0.1:{port}");
        wait_until("the SMTP server to listen", async || {
            process.assert_running();
            tokio::net::TcpStream::connect(&address).await.ok()
        })
        .await;
        SmtpServer {
            port,
            inbox,
            process,
            _dir: dir,
        }
    }

    /// Waits for `n` messages; returns every message received, decoded.
    pub async fn wait_for_messages(&mut self, n: usize) -> Vec<Value> {
        wait_until("the SMTP server to receive the messages", async || {
            self.process.assert_running();
            let messages = read_lines(&self.inbox);
            (messages.len() >= n).then_some(messages)
        })
        .await
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Value> {
        read_lines(&self.inbox)
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

/// The complete JSON lines of `path`; none when it does not exist yet.
fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).expect("a JSON line from the SMTP sink"))
        .collect()
}
