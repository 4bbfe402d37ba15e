//! The load generator: an open-loop stream of `POST /work` tasks spread round-robin over a
//! pool's agents, which it discovers through the controller's own API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::analytics::stats::quantile;

/// How often the agent list is refreshed from the API.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(500);
/// Latencies older than this drop out of the p95.
const LATENCY_WINDOW: Duration = Duration::from_secs(5);
/// Tasks in flight beyond this are shed (counted as failed) rather than queued.
const MAX_IN_FLIGHT: usize = 256;

/// Where and what to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL of the controller API, e.g. `http://127.0.0.1:8080`.
    pub api: String,
    /// Bearer token for the API.
    pub token: String,
    /// Pool whose agents receive the tasks.
    pub pool: String,
    /// CPU time each task asks for, milliseconds.
    pub cpu_ms: f64,
}

/// What the generator has done so far.
#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Name of the current phase.
    pub phase: String,
    /// Tasks per second asked for now.
    pub rate: f64,
    /// Tasks sent.
    pub sent: u64,
    /// Tasks that succeeded.
    pub ok: u64,
    /// Tasks that failed, timed out or were shed.
    pub failed: u64,
    /// Agents currently receiving tasks.
    pub targets: usize,
    latencies: VecDeque<(Instant, f64)>,
}

impl LoadStats {
    /// 95th percentile latency of the last few seconds, milliseconds.
    pub fn p95_ms(&self) -> Option<f64> {
        let values: Vec<f64> = self.latencies.iter().map(|&(_, l)| l).collect();
        quantile(&values, 0.95)
    }
}

/// A running load generator; dropping it does not stop it, `stop` does.
#[derive(Clone)]
pub struct LoadGenerator {
    stats: Arc<Mutex<LoadStats>>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Deserialize)]
struct AgentEntry {
    pool: String,
    status: String,
    endpoint: Option<String>,
}

impl LoadGenerator {
    /// Starts sending at rate 0; call `set_rate` to begin.
    pub fn start(config: LoadConfig) -> LoadGenerator {
        let generator = LoadGenerator {
            stats: Arc::new(Mutex::new(LoadStats::default())),
            stopped: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let worker = generator.clone();
        tokio::spawn(async move { worker.run(config).await });
        generator
    }

    fn lock(&self) -> MutexGuard<'_, LoadStats> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the rate, in tasks per second, and names the phase.
    pub fn set_rate(&self, phase: &str, rate: f64) {
        let mut stats = self.lock();
        stats.phase = phase.to_string();
        stats.rate = rate.max(0.0);
    }

    /// A copy of the statistics.
    pub fn stats(&self) -> LoadStats {
        let mut stats = self.lock();
        let cutoff = Instant::now() - LATENCY_WINDOW;
        while stats.latencies.front().is_some_and(|&(at, _)| at < cutoff) {
            stats.latencies.pop_front();
        }
        stats.clone()
    }

    /// Stops sending.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn run(&self, config: LoadConfig) {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(message = "Cannot build HTTP client.", %error);
                return;
            }
        };
        let mut targets: Vec<String> = Vec::new();
        let mut last_discovery: Option<Instant> = None;
        let mut next_target = 0usize;
        let mut credit = 0.0f64;
        let mut last = Instant::now();
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            ticker.tick().await;
            if last_discovery.is_none_or(|at| at.elapsed() >= DISCOVERY_INTERVAL) {
                last_discovery = Some(Instant::now());
                if let Some(found) = discover(&client, &config).await {
                    targets = found;
                    self.lock().targets = targets.len();
                }
            }
            let now = Instant::now();
            let rate = self.lock().rate;
            credit += rate * now.duration_since(last).as_secs_f64();
            last = now;
            while credit >= 1.0 {
                credit -= 1.0;
                if targets.is_empty() {
                    continue;
                }
                let target = targets[next_target % targets.len()].clone();
                next_target = next_target.wrapping_add(1);
                self.send_one(&client, target, config.cpu_ms, &in_flight);
            }
        }
    }

    fn send_one(
        &self,
        client: &reqwest::Client,
        target: String,
        cpu_ms: f64,
        in_flight: &Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::Ordering;
        self.lock().sent += 1;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.lock().failed += 1;
            return;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, stats, in_flight) = (client.clone(), self.clone(), in_flight.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let result = client
                .post(format!("{target}/work"))
                .json(&serde_json::json!({ "cpu_ms": cpu_ms }))
                .send()
                .await;
            let ok = matches!(&result, Ok(response) if response.status().is_success());
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let mut stats = stats.lock();
            if ok {
                stats.ok += 1;
                stats.latencies.push_back((Instant::now(), latency_ms));
            } else {
                stats.failed += 1;
            }
        });
    }
}

async fn discover(client: &reqwest::Client, config: &LoadConfig) -> Option<Vec<String>> {
    let response = client
        .get(format!("{}/api/v1/agents", config.api))
        .bearer_auth(&config.token)
        .send()
        .await
        .ok()?;
    let agents: Vec<AgentEntry> = response.json().await.ok()?;
    Some(
        agents
            .into_iter()
            .filter(|a| a.pool == config.pool && a.status != "offline")
            .filter_map(|a| a.endpoint)
            .collect(),
    )
}
