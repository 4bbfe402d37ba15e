//! The load generator: an open-loop stream of `POST /work` tasks spread over a pool's agents
//! by their load weights (smooth weighted round-robin, as nginx does), both of which it
//! discovers through the controller's own API, so a `redistribute` action moves real load.

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
    id: String,
    pool: String,
    status: String,
    endpoint: Option<String>,
}

#[derive(Deserialize)]
struct PoolEntry {
    name: String,
    #[serde(default)]
    weights: std::collections::BTreeMap<String, WeightEntry>,
}

#[derive(Deserialize)]
struct WeightEntry {
    weight: f64,
}

/// One agent receiving tasks: where, its weight, and its running credit.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    endpoint: String,
    weight: f64,
    current: f64,
}

/// Picks the next target by smooth weighted round-robin: every target gains its weight,
/// the richest is chosen and pays the total. Weight 0 is never chosen.
fn pick(targets: &mut [Target]) -> Option<String> {
    let total: f64 = targets.iter().map(|t| t.weight).sum();
    if total <= 0.0 {
        return None;
    }
    for target in targets.iter_mut() {
        target.current += target.weight;
    }
    let best = targets
        .iter_mut()
        .max_by(|a, b| a.current.total_cmp(&b.current))?;
    best.current -= total;
    Some(best.endpoint.clone())
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
        let mut targets: Vec<Target> = Vec::new();
        let mut last_discovery: Option<Instant> = None;
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
                    // Keep the running credits of targets whose endpoint and weight stayed.
                    let same = |a: &[Target], b: &[Target]| {
                        a.len() == b.len()
                            && a.iter()
                                .zip(b)
                                .all(|(x, y)| x.endpoint == y.endpoint && x.weight == y.weight)
                    };
                    if !same(&found, &targets) {
                        targets = found;
                    }
                    self.lock().targets = targets.iter().filter(|t| t.weight > 0.0).count();
                }
            }
            let now = Instant::now();
            let rate = self.lock().rate;
            credit += rate * now.duration_since(last).as_secs_f64();
            last = now;
            while credit >= 1.0 {
                credit -= 1.0;
                if let Some(target) = pick(&mut targets) {
                    self.send_one(&client, target, config.cpu_ms, &in_flight);
                }
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

async fn discover(client: &reqwest::Client, config: &LoadConfig) -> Option<Vec<Target>> {
    let get = |path: &str| {
        client
            .get(format!("{}{path}", config.api))
            .bearer_auth(&config.token)
            .send()
    };
    let agents: Vec<AgentEntry> = get("/api/v1/agents").await.ok()?.json().await.ok()?;
    let pools: Vec<PoolEntry> = get("/api/v1/pools").await.ok()?.json().await.ok()?;
    let weights = pools.into_iter().find(|p| p.name == config.pool)?.weights;
    Some(
        agents
            .into_iter()
            .filter(|a| a.pool == config.pool && a.status != "offline")
            .filter_map(|a| {
                let weight = weights.get(&a.id).map_or(1.0, |w| w.weight);
                Some(Target {
                    endpoint: a.endpoint?,
                    weight,
                    current: 0.0,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_round_robin_follows_the_weights_smoothly() {
        let target = |endpoint: &str, weight| Target {
            endpoint: endpoint.into(),
            weight,
            current: 0.0,
        };
        let mut targets = vec![
            target("a", 5.0),
            target("b", 1.0),
            target("c", 1.0),
            target("d", 0.0),
        ];
        let picks: Vec<String> = (0..7).filter_map(|_| pick(&mut targets)).collect();
        assert_eq!(picks, ["a", "a", "c", "a", "b", "a", "a"]);
        let mut none = vec![target("x", 0.0)];
        assert_eq!(pick(&mut none), None);
    }
}
