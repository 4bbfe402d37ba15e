//! Helpers for the end-to-end tests: a real `swarmpilot serve` on a free loopback port, an
//! HTTP client with its token, and waiting on conditions with deadlines.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_swarmpilot");

/// A controller process started for one test; stopped (and its log printed if the test
/// failed) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// Admin bearer token.
    pub token: String,
    /// Data directory.
    pub data_dir: PathBuf,
    log_path: PathBuf,
    /// What the server's environment gets beside the test's, kept for restarts.
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Server {
    /// Starts `swarmpilot serve` with `policy` as its only policy file.
    pub fn start(policy: &str) -> Server {
        Server::start_dir(&[("test.toml", policy)])
    }

    /// Starts `swarmpilot serve` on a policy directory holding `files` (name, text).
    pub fn start_dir(files: &[(&str, &str)]) -> Server {
        Server::start_dir_with_env(files, &[])
    }

    /// Starts `swarmpilot serve` with `policy`, and `env` (name, value) in its environment.
    pub fn start_with_env(policy: &str, env: &[(&str, &str)]) -> Server {
        Server::start_dir_with_env(&[("test.toml", policy)], env)
    }

    fn start_dir_with_env(files: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        for (name, text) in files {
            std::fs::write(policies.join(name), text).unwrap();
        }
        if let Some(store) = store_under_test(files) {
            std::fs::write(policies.join("zz-test-store.toml"), store).unwrap();
        }
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let (child, url) = spawn(&policies, &data_dir, &log_path, env);
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("admin token")
            .trim()
            .to_string();
        Server {
            child: Some(child),
            url,
            token,
            data_dir,
            log_path,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _dir: dir,
            client: client(),
        }
    }

    /// Stops the server with SIGTERM and starts it again on the same directories.
    pub fn restart(&mut self) {
        let status = self.stop_with(libc::SIGTERM);
        assert!(status.success(), "{status:?}");
        self.start_again();
    }

    /// Kills the server with SIGKILL (no chance to clean up) and starts it again.
    pub fn crash_and_restart(&mut self) {
        self.stop_with(libc::SIGKILL);
        self.start_again();
    }

    fn start_again(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (child, url) = spawn(&self.policies_dir(), &self.data_dir, &self.log_path, &env);
        self.child = Some(child);
        self.url = url;
    }

    /// GET `path` with the admin token; returns the status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, Some(&self.token)).await
    }

    /// GET `path`, or `None` when no answer came (a standby's server stops as it takes
    /// over, and may drop a request in flight).
    pub async fn try_get(&self, path: &str) -> Option<(u16, Value)> {
        let request = self.client.get(format!("{}{path}", self.url));
        let response = request.bearer_auth(&self.token).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// GET `path` with the given token (or none).
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Every page of the paged list at `first`, following each `Link: <...>; rel="next"`
    /// header to the end; asserts that each answered 200, held at most `limit` rows, and
    /// that each Link is well formed and leads somewhere new (at most 1,000 pages).
    pub async fn pages(&self, first: &str, limit: usize) -> Vec<Vec<Value>> {
        let mut next = Some(first.to_string());
        let mut pages = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = next.take() {
            assert!(
                seen.insert(path.clone()),
                "the Link header leads back to {path}"
            );
            assert!(pages.len() < 1000, "more than 1,000 pages from {first}");
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{path}");
            next = response.headers().get("Link").map(|link| {
                let link = link.to_str().expect("an ASCII Link header");
                let (target, rel) = link
                    .strip_prefix('<')
                    .and_then(|l| l.split_once('>'))
                    .unwrap_or_else(|| panic!("malformed Link header {link:?}"));
                assert_eq!(rel, "; rel=\"next\"", "{link}");
                target.to_string()
            });
            let page: Vec<Value> = response.json().await.expect("a JSON array");
            assert!(page.len() <= limit, "{path}: {} rows", page.len());
            pages.push(page);
        }
        pages
    }

    /// The text of `GET /metrics`, when it answers.
    pub async fn metrics_page(&self) -> Option<String> {
        let response = self.client.get(format!("{}/metrics", self.url)).send();
        response.await.ok()?.text().await.ok()
    }

    /// One unlabelled sample of `GET /metrics`, when the page has it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let page = self.metrics_page().await?;
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until the fleet holds one agent with a CPU reading.
    pub async fn one_ready_agent(&self) {
        wait_for("one ready agent", Duration::from_secs(20), || async {
            let agents = self.agents().await;
            (agents.len() == 1 && agents[0]["metrics"]["cpu_percent"].is_number()).then_some(())
        })
        .await;
    }

    /// Runs the Python `script` with `args`, its OpenTelemetry exporter pointed at this
    /// controller with its token (as an operator configures any OTLP exporter); panics unless
    /// it succeeds within 90 s. Answers its stdout.
    pub async fn run_otel_script(
        &self,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let output = tokio::process::Command::new("python3")
            .arg(script)
            .args(args)
            .env(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                format!("{}/v1/metrics", self.url),
            )
            // The exporter's documented header syntax: URL-encoded `key=value` pairs.
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("Authorization=Bearer%20{}", self.token),
            )
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(90), output)
            .await
            .expect("the OpenTelemetry script finishes within 90 s")
            .expect("python3 runs (scripts/test installs the OpenTelemetry SDK)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "the script's exports failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Waits until the alert actor has evaluated every alert at `ms` or later (epoch
    /// milliseconds on the host clock) and no notification is on its way: whatever that
    /// evaluation decided to send has arrived. The marker an absence check waits for.
    pub async fn alerts_looked_at(&self, ms: i64) {
        wait_for(
            "an alert evaluation with nothing in flight",
            Duration::from_secs(30),
            || async {
                let last = self
                    .metric("swarmpilot_alert_last_evaluation_timestamp_seconds")
                    .await?;
                let in_flight = self.metric("swarmpilot_notifications_in_flight").await?;
                (last * 1000.0 >= ms as f64 && in_flight == 0.0).then_some(())
            },
        )
        .await
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The directory the server loads its policy from.
    pub fn policies_dir(&self) -> PathBuf {
        self._dir.path().join("policies")
    }

    /// POST `body` to `path` with the admin token; returns the status and JSON body.
    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST a JSON `body` to `path` with the admin token; returns the status and JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_json_as(path, body, &self.token).await
    }

    /// POST a JSON `body` to `path` with `token`.
    pub async fn post_json_as(&self, path: &str, body: &Value, token: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The agents of the fleet, each in full (`GET /api/v1/agents/{id}` of every agent the
    /// list names; one that leaves in between is left out).
    pub async fn agents(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/agents?limit=5000").await;
        assert_eq!(status, 200, "{body}");
        let mut agents = Vec::new();
        for summary in body.as_array().cloned().unwrap_or_default() {
            let id = summary["id"].as_str().unwrap_or_default();
            let (status, agent) = self.get(&format!("/api/v1/agents/{id}")).await;
            if status == 200 {
                agents.push(agent);
            }
        }
        agents
    }

    /// The action log, newest first.
    pub async fn log(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/log?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Sends `signal` to the server and waits for it to exit.
    pub fn stop_with(&mut self, signal: i32) -> std::process::ExitStatus {
        self.stop_within(signal, Duration::from_secs(20)).0
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server again on the same directories after it stopped.
    pub fn start_after_stop(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.start_again();
    }

    /// Sends `signal` to the server and waits, at most `limit`, for it to exit; returns how
    /// it exited and how long that took.
    pub fn stop_within(
        &mut self,
        signal: i32,
        limit: Duration,
    ) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("server running");
        let sent = Instant::now();
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = sent + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after signal {signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            eprintln!(
                "--- server log ({}) ---\n{log}--- end ---",
                self.log_path.display()
            );
        }
        if self.child.is_some() {
            self.stop_with(libc::SIGTERM);
        }
    }
}

/// Starts `swarmpilot serve` and waits for the line that gives its address.
fn spawn(
    policies: &Path,
    data_dir: &Path,
    log_path: &Path,
    env: &[(&str, &str)],
) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .unwrap();
    let mut child = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--policies"])
        .arg(policies)
        .arg("--data-dir")
        .arg(data_dir)
        .env("SWARMPILOT_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start swarmpilot serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("swarmpilot listening on ") {
                    break url.trim().to_string();
                }
            }
            _ => {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                panic!("server exited before listening; its log:\n{log}");
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// With `SWARMPILOT_TEST_STORE=postgres`, the whole suite runs on PostgreSQL: each server
/// whose policy names no store gets a new database of the test server. Unset (or `sqlite`),
/// servers keep the SQLite file of their data directory.
fn store_under_test(files: &[(&str, &str)]) -> Option<String> {
    match std::env::var("SWARMPILOT_TEST_STORE").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("SWARMPILOT_TEST_STORE={other}: sqlite or postgres"),
    }
    if files.iter().any(|(_, text)| text.contains("[store]")) {
        return None;
    }
    let url = swarmpilot::store::testing::TestServer::shared().fresh_database();
    Some(format!("[store]\nurl = \"{url}\"\n"))
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// True if a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Pids of processes whose environment names `controller_dir` as their controller.
pub fn processes_of(controller_dir: &Path) -> Vec<u32> {
    let needle = format!("SWARMPILOT_CONTROLLER={}", controller_dir.display());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let matches = environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes());
        if matches && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The pids of the fleet's agents.
pub fn pids(agents: &[Value]) -> Vec<u32> {
    agents
        .iter()
        .filter_map(|a| a["pid"].as_u64().map(|p| p as u32))
        .collect()
}

/// The body of a plain `GET url` (no token), as text.
pub async fn get_text(url: &str) -> String {
    let response = client().get(url).send().await;
    let response = response.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.text().await.expect("a text body")
}

/// An HTTP client that drops idle connections before the server's keep-alive (5 s) closes
/// them, so a request never races the server's close (hyper's `IncompleteMessage`).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client")
}

/// A real HTTP receiver on loopback that keeps every JSON body POSTed to it.
pub struct Receiver {
    /// Where to POST, e.g. `http://127.0.0.1:40125/hook`.
    pub url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    /// Starts the receiver on its own thread and actix system.
    pub fn start() -> Receiver {
        Receiver::failing_first(0)
    }

    /// A receiver that answers 500 to its first `failures` requests (keeping nothing), then
    /// 200, as a receiver that is briefly down would.
    pub fn failing_first(failures: usize) -> Receiver {
        use actix_web::{App, HttpResponse, HttpServer, web};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let attempts = std::sync::Arc::new(AtomicUsize::new(0));
        let (kept, counted) = (bodies.clone(), attempts.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let (kept, counted) = (kept.clone(), counted.clone());
                    App::new().route(
                        "/hook",
                        web::post().to(move |body: web::Json<Value>| {
                            let (kept, counted) = (kept.clone(), counted.clone());
                            async move {
                                if counted.fetch_add(1, Ordering::SeqCst) < failures {
                                    return HttpResponse::InternalServerError().finish();
                                }
                                kept.lock().unwrap().push(body.into_inner());
                                HttpResponse::Ok().finish()
                            }
                        }),
                    )
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
                let _ = server.await;
            });
        });
        Receiver {
            url,
            bodies,
            attempts,
        }
    }

    /// Requests received so far, failed ones included.
    pub fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Held by the tests that run a whole demo (workers, a load generator, a browser): two of
/// them at once on a two-core machine starve each other's timing.
static DEMO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits until no other demo test runs; the demo slot is held until the guard drops.
pub fn demo_slot() -> std::sync::MutexGuard<'static, ()> {
    DEMO.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one run of the `swarmpilot` binary did.
pub struct Run {
    /// Its exit code (-1 when a signal ended it).
    pub code: i32,
    /// What it printed.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Runs `swarmpilot ARGS` with `env` set and nothing inherited that would choose the
/// controller or the token.
pub async fn swarmpilot(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(EXE)
        .args(args)
        .env_remove("SWARMPILOT_URL")
        .env_remove("SWARMPILOT_TOKEN")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run swarmpilot");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `secret` to a token file in `dir` and answers the policy lines that make it the
/// token of a `viewer` named `viewer`.
pub fn viewer_token(dir: &std::path::Path, secret: &str) -> String {
    let file = dir.join("viewer.token");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    format!(
        "[[global.tokens]]\nname = \"viewer\"\nrole = \"viewer\"\ntoken_file = {:?}\n",
        file.display().to_string()
    )
}
