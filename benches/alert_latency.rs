//! Alert latency, end to end: from the HTTP push of the sample that makes a rule fire
//! (`for_secs = 0`) to a real webhook receiver holding the notification.
//!
//! Starts the real `swarmpilot serve` (release build) on loopback with a rule on
//! `queue_size`, a route with `group_wait_secs = 0` grouped by agent, and a webhook channel
//! pointing at a receiver in this process. Each round pushes one breaching sample for a new
//! agent (so each alert is a new group, notified at once) and waits for its message; the
//! latencies' percentiles are printed. Run: `cargo bench --bench alert_latency`
//! (`ROUNDS=N` to change the 300 rounds).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A webhook receiver on its own thread; records when each agent's message arrived.
fn start_receiver() -> (String, Arrivals) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let arrivals: Arrivals = Arc::default();
    let kept = arrivals.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let kept = kept.clone();
                App::new().route(
                    "/hook",
                    web::post().to(move |body: web::Json<Value>| {
                        let kept = kept.clone();
                        async move {
                            let now = Instant::now();
                            if let Some(alerts) = body["details"]["alerts"].as_array() {
                                for alert in alerts {
                                    if let Some(agent) = alert["labels"]["agent"].as_str() {
                                        kept.lock().unwrap().entry(agent.into()).or_insert(now);
                                    }
                                }
                            }
                            HttpResponse::Ok().finish()
                        }
                    }),
                )
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
            let _ = server.await;
        });
    });
    (url, arrivals)
}

/// The server under test, stopped when dropped (also when a round fails).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let (hook, arrivals) = start_receiver();
    let dir = tempfile::tempdir().expect("temp dir");
    let (policies, data) = (dir.path().join("policies"), dir.path().join("data"));
    std::fs::create_dir_all(&policies).expect("policies dir");
    let url_file = dir.path().join("hook.url");
    std::fs::write(&url_file, &hook).expect("url file");
    let policy = format!(
        "[global]\nheartbeat_timeout_secs = 600\n\
         [pools.edge]\nmin_agents = 0\nmax_agents = 100000\ndriver = {{ type = \"none\" }}\n\
         [alert_defaults]\nenabled = false\navailability = false\n\
         [[alerts]]\nname = \"queue_deep\"\nmetric = \"queue_size\"\nabove = 100\nfor_secs = 0\n\
         [channels.hook]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nchannels = [\"hook\"]\ngroup_by = [\"agent\"]\ngroup_wait_secs = 0\n",
        url_file.display()
    );
    std::fs::write(policies.join("bench.toml"), policy).expect("policy");
    let mut child = Served(
        Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
            .args(["serve", "--listen", "127.0.0.1:0", "--policies"])
            .arg(&policies)
            .arg("--data-dir")
            .arg(&data)
            .env("SWARMPILOT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swarmpilot serve"),
    );
    // The first line that says where it listens, e.g. `swarmpilot listening on http://...`.
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("the server's output").expect("a line");
        if let Some(url) = line.strip_prefix("swarmpilot listening on ") {
            break url.trim().trim_end_matches('/').to_string();
        }
    };
    let api = format!("{base}/api/v1/samples");
    let token = std::fs::read_to_string(data.join("admin.token")).expect("token");
    let client = reqwest::Client::new();
    let push = |agent: String, value: f64| {
        let batch = json!([{"agent": agent, "metric": "queue_size", "value": value,
                            "labels": {"pool": "edge"}}]);
        client
            .post(&api)
            .bearer_auth(token.trim())
            .json(&batch)
            .send()
    };
    // Warm up: the agent actor, the HTTP connections, the receiver.
    for i in 0..20 {
        push(format!("warm-{i}"), 1.0).await.expect("push");
    }

    let mut latencies = Vec::with_capacity(rounds);
    let started = Instant::now();
    for round in 0..rounds {
        let agent = format!("a-{round}");
        push(agent.clone(), 1.0).await.expect("push");
        let sent = Instant::now();
        let response = push(agent.clone(), 500.0).await.expect("push");
        assert!(response.status().is_success(), "{}", response.status());
        let deadline = sent + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = arrivals.lock().unwrap().get(&agent).copied() {
                break at;
            }
            assert!(Instant::now() < deadline, "no notification for {agent}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.saturating_duration_since(sent));
        if (round + 1) % 50 == 0 {
            eprintln!(
                "{} / {rounds} rounds ({:.0} s)",
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(child);
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "sample → webhook, {rounds} alerts: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().expect("rounds"))
    );
}
