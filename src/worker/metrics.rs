//! The worker's own counters and latency histogram, rendered in Prometheus text format, and
//! the window of recent tasks the WebSocket metrics answer from.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds of the latency histogram buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How far back "recent" tasks go.
pub const RECENT_WINDOW: Duration = Duration::from_secs(60);
/// Most recent tasks remembered, whatever their age.
const RECENT_MAX: usize = 1024;

/// Counters of one worker; updated lock-free from every request (the recent window takes a
/// short lock).
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    done: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    latency_micros_sum: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    recent: Mutex<VecDeque<Finished>>,
}

/// What the tasks finished within `RECENT_WINDOW` add up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recent {
    /// Tasks finished.
    pub tasks: usize,
    /// Their mean latency, milliseconds; `None` without tasks.
    pub mean_latency_ms: Option<f64>,
    /// Percent of them that failed; `None` without tasks.
    pub error_percent: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Finished {
    at: Instant,
    latency_secs: f64,
    success: bool,
}

impl WorkerMetrics {
    /// Marks a task as started.
    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a task as finished after `latency_secs`, successfully or not.
    pub fn end(&self, latency_secs: f64, success: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if success {
            self.done.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros_sum
            .fetch_add((latency_secs * 1e6) as u64, Ordering::Relaxed);
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| latency_secs <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_MAX {
            recent.pop_front();
        }
        recent.push_back(Finished {
            at: Instant::now(),
            latency_secs,
            success,
        });
    }

    /// The tasks finished within `RECENT_WINDOW` before `now`.
    pub fn recent(&self, now: Instant) -> Recent {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|f| now.saturating_duration_since(f.at) > RECENT_WINDOW)
        {
            recent.pop_front();
        }
        let tasks = recent.len();
        if tasks == 0 {
            return Recent {
                tasks,
                mean_latency_ms: None,
                error_percent: None,
            };
        }
        let latency: f64 = recent.iter().map(|f| f.latency_secs).sum();
        let failed = recent.iter().filter(|f| !f.success).count();
        Recent {
            tasks,
            mean_latency_ms: Some(latency * 1000.0 / tasks as f64),
            error_percent: Some(failed as f64 * 100.0 / tasks as f64),
        }
    }

    /// Tasks currently running.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter, labelled with pool and agent.
    pub fn render(&self, pool: &str, agent: &str) -> String {
        let labels = labels(pool, agent);
        let done = self.done.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP swarmpilot_agent_tasks_total Tasks completed successfully."
        );
        let _ = writeln!(out, "# TYPE swarmpilot_agent_tasks_total counter");
        let _ = writeln!(out, "swarmpilot_agent_tasks_total{{{labels}}} {done}");
        let _ = writeln!(
            out,
            "# HELP swarmpilot_agent_tasks_failed_total Tasks that failed."
        );
        let _ = writeln!(out, "# TYPE swarmpilot_agent_tasks_failed_total counter");
        let _ = writeln!(
            out,
            "swarmpilot_agent_tasks_failed_total{{{labels}}} {failed}"
        );
        let _ = writeln!(
            out,
            "# HELP swarmpilot_agent_tasks_in_flight Tasks running now."
        );
        let _ = writeln!(out, "# TYPE swarmpilot_agent_tasks_in_flight gauge");
        let _ = writeln!(
            out,
            "swarmpilot_agent_tasks_in_flight{{{labels}}} {}",
            self.in_flight()
        );
        let _ = writeln!(
            out,
            "# HELP swarmpilot_agent_task_latency_seconds Task latency."
        );
        let _ = writeln!(
            out,
            "# TYPE swarmpilot_agent_task_latency_seconds histogram"
        );
        let mut cumulative = 0;
        for (le, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "swarmpilot_agent_task_latency_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let count = done + failed;
        let _ = writeln!(
            out,
            "swarmpilot_agent_task_latency_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "swarmpilot_agent_task_latency_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            out,
            "swarmpilot_agent_task_latency_seconds_count{{{labels}}} {count}"
        );
        out
    }
}

/// The labels of every series of the worker: its pool and id.
pub fn labels(pool: &str, agent: &str) -> String {
    format!("pool=\"{}\",agent=\"{}\"", escape(pool), escape(agent))
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_window_averages_latency_and_counts_failures_as_percent() {
        let metrics = WorkerMetrics::default();
        assert_eq!(metrics.recent(Instant::now()).mean_latency_ms, None);
        for (latency, ok) in [(0.010, true), (0.030, true), (0.020, false), (0.040, true)] {
            metrics.begin();
            metrics.end(latency, ok);
        }
        let recent = metrics.recent(Instant::now());
        assert_eq!(recent.tasks, 4);
        assert!((recent.mean_latency_ms.unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(recent.error_percent, Some(25.0));
        let later = Instant::now() + RECENT_WINDOW + Duration::from_secs(1);
        assert_eq!(metrics.recent(later).tasks, 0, "old tasks leave the window");
    }

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let metrics = WorkerMetrics::default();
        for (latency, ok) in [(0.004, true), (0.02, true), (0.3, false)] {
            metrics.begin();
            metrics.end(latency, ok);
        }
        let text = metrics.render("worker", "worker-1");
        let labels = "pool=\"worker\",agent=\"worker-1\"";
        for line in [
            format!("swarmpilot_agent_tasks_total{{{labels}}} 2"),
            format!("swarmpilot_agent_tasks_failed_total{{{labels}}} 1"),
            format!("swarmpilot_agent_tasks_in_flight{{{labels}}} 0"),
            format!("swarmpilot_agent_task_latency_seconds_bucket{{{labels},le=\"0.005\"}} 1"),
            format!("swarmpilot_agent_task_latency_seconds_bucket{{{labels},le=\"0.025\"}} 2"),
            format!("swarmpilot_agent_task_latency_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("swarmpilot_agent_task_latency_seconds_count{{{labels}}} 3"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
