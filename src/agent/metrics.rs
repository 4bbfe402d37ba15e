//! The worker's own counters and latency histogram, rendered in Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters of one worker; updated lock-free from every request.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    done: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    latency_micros_sum: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
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
    }

    /// Tasks currently running.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter, labelled with pool and agent.
    pub fn render(&self, pool: &str, agent: &str) -> String {
        let labels = format!("pool=\"{}\",agent=\"{}\"", escape(pool), escape(agent));
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
