//! The worker as an AI agent: each task may call a model provider (OpenAI-style
//! `POST {provider}/v1/chat/completions`, answering `usage.prompt_tokens` and
//! `usage.completion_tokens`, or 429 for its rate limit), and the tasks it runs at once are
//! limited by a concurrency the controller sets (`GET`/`POST /concurrency`,
//! `{"limit": 4}`; at start `--concurrency` or `SWARMPILOT_CONCURRENCY`). Tasks past the
//! limit wait their turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most concurrency the worker accepts.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// How long a model call may take before it counts as a timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How many tasks run at once; changing it takes effect for the tasks that start next.
#[derive(Debug)]
pub struct Concurrency {
    limit: AtomicU32,
    permits: Arc<Semaphore>,
    /// Turns to take back as the tasks holding them end (after a lower limit).
    owed: Arc<AtomicU32>,
}

/// One task's turn; ending it frees the turn, or gives it back to a lowered limit.
#[derive(Debug)]
pub struct Turn {
    permit: Option<OwnedSemaphorePermit>,
    owed: Arc<AtomicU32>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let owed = self
                .owed
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| o.checked_sub(1));
            if owed.is_ok() {
                permit.forget();
            }
        }
    }
}

impl Concurrency {
    /// A limit of `limit` tasks at once.
    pub fn new(limit: u32) -> Concurrency {
        Concurrency {
            limit: AtomicU32::new(limit),
            permits: Arc::new(Semaphore::new(limit as usize)),
            owed: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Waits for a turn to run a task.
    pub async fn acquire(&self) -> Option<Turn> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        Some(Turn {
            permit: Some(permit),
            owed: self.owed.clone(),
        })
    }

    /// Sets the limit: a higher one frees turns at once, a lower one takes the free turns
    /// back at once and the others as the tasks holding them end.
    pub fn set(&self, limit: u32) {
        let old = self.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            let mut more = limit - old;
            // Turns still owed to an earlier decrease are simply not taken.
            while more > 0 {
                let owed = self.owed.load(Ordering::Acquire);
                if owed == 0 {
                    break;
                }
                let cancel = owed.min(more);
                if self
                    .owed
                    .compare_exchange(owed, owed - cancel, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    more -= cancel;
                }
            }
            self.permits.add_permits(more as usize);
        } else {
            let mut fewer = old - limit;
            while fewer > 0 {
                match self.permits.try_acquire() {
                    Ok(free) => {
                        free.forget();
                        fewer -= 1;
                    }
                    Err(_) => break,
                }
            }
            self.owed.fetch_add(fewer, Ordering::AcqRel);
        }
    }
}

/// What one model call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered, with the tokens used.
    Done {
        /// Input tokens.
        tokens_in: u64,
        /// Output tokens.
        tokens_out: u64,
    },
    /// Refused for the provider's rate limit (429).
    RateLimited,
    /// No answer in time.
    Timeout,
    /// Any other failure.
    Failed,
}

/// A client of one model provider, with the counters `/metrics` shows.
#[derive(Debug)]
pub struct ModelClient {
    url: String,
    /// The model the calls name; the controller may move the agent to another.
    model: std::sync::RwLock<String>,
    http: reqwest::Client,
    /// Calls made, by outcome, and what they used.
    pub counts: ModelCounts,
}

/// Counters of model calls.
#[derive(Debug, Default)]
pub struct ModelCounts {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls refused for the rate limit.
    pub rate_limited: AtomicU64,
    /// Calls that timed out.
    pub timeouts: AtomicU64,
    /// Calls that failed otherwise.
    pub failed: AtomicU64,
    /// Input tokens used.
    pub tokens_in: AtomicU64,
    /// Output tokens used.
    pub tokens_out: AtomicU64,
    /// Time spent in calls, microseconds.
    pub call_micros: AtomicU64,
}

impl ModelClient {
    /// A client of the provider at `url` (its base, e.g. `http://127.0.0.1:9000`) using
    /// `model`.
    pub fn new(url: &str, model: &str) -> ModelClient {
        ModelClient {
            url: format!("{}/v1/chat/completions", url.trim_end_matches('/')),
            model: std::sync::RwLock::new(model.to_string()),
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .unwrap_or_default(),
            counts: ModelCounts::default(),
        }
    }

    /// The model the calls name now.
    pub fn model(&self) -> String {
        self.model.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Names `model` in the calls from now on.
    pub fn set_model(&self, model: &str) {
        if let Ok(mut slot) = self.model.write() {
            *slot = model.to_string();
        }
    }

    /// Makes one call for a task and counts it.
    pub async fn call(&self) -> CallOutcome {
        let started = Instant::now();
        let body = serde_json::json!({
            "model": self.model(),
            "messages": [{"role": "user", "content": "Work on the next task."}],
        });
        let outcome = match self.http.post(&self.url).json(&body).send().await {
            Err(error) if error.is_timeout() => CallOutcome::Timeout,
            Err(_) => CallOutcome::Failed,
            Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                CallOutcome::RateLimited
            }
            Ok(response) if !response.status().is_success() => CallOutcome::Failed,
            Ok(response) => match response.json::<serde_json::Value>().await {
                Ok(answer) => {
                    let usage = &answer["usage"];
                    CallOutcome::Done {
                        tokens_in: usage["prompt_tokens"].as_u64().unwrap_or(0),
                        tokens_out: usage["completion_tokens"].as_u64().unwrap_or(0),
                    }
                }
                Err(_) => CallOutcome::Failed,
            },
        };
        let counts = &self.counts;
        counts.calls.fetch_add(1, Ordering::Relaxed);
        let micros = started.elapsed().as_micros() as u64;
        counts.call_micros.fetch_add(micros, Ordering::Relaxed);
        match outcome {
            CallOutcome::Done {
                tokens_in,
                tokens_out,
            } => {
                counts.tokens_in.fetch_add(tokens_in, Ordering::Relaxed);
                counts.tokens_out.fetch_add(tokens_out, Ordering::Relaxed);
            }
            CallOutcome::RateLimited => {
                counts.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            CallOutcome::Timeout => {
                counts.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            CallOutcome::Failed => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// The Prometheus text of the model counters, with `labels`.
    pub fn render(&self, labels: &str, out: &mut String) {
        use std::fmt::Write as _;
        let c = &self.counts;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = [
            ("calls", "Model calls made.", load(&c.calls)),
            (
                "rate_limited",
                "Model calls refused for the provider's rate limit.",
                load(&c.rate_limited),
            ),
            ("timeouts", "Model calls that timed out.", load(&c.timeouts)),
            (
                "errors",
                "Model calls that failed otherwise.",
                load(&c.failed),
            ),
            (
                "input_tokens",
                "Model input tokens used.",
                load(&c.tokens_in),
            ),
            (
                "output_tokens",
                "Model output tokens used.",
                load(&c.tokens_out),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP swarmpilot_agent_model_{name}_total {help}");
            let _ = writeln!(out, "# TYPE swarmpilot_agent_model_{name}_total counter");
            let _ = writeln!(
                out,
                "swarmpilot_agent_model_{name}_total{{{labels}}} {value}"
            );
        }
        let seconds = load(&c.call_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP swarmpilot_agent_model_call_seconds Model call time."
        );
        let _ = writeln!(out, "# TYPE swarmpilot_agent_model_call_seconds summary");
        let _ = writeln!(
            out,
            "swarmpilot_agent_model_call_seconds_sum{{{labels}}} {seconds}"
        );
        let _ = writeln!(
            out,
            "swarmpilot_agent_model_call_seconds_count{{{labels}}} {}",
            load(&c.calls)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lower_limit_takes_turns_back_as_tasks_end() {
        let concurrency = Concurrency::new(3);
        let first = concurrency.acquire().await.unwrap();
        let second = concurrency.acquire().await.unwrap();
        concurrency.set(1);
        assert_eq!(concurrency.limit(), 1);
        // The free turn went at once; one more goes back when a task ends.
        assert_eq!(concurrency.permits.available_permits(), 0);
        drop(first);
        assert_eq!(
            concurrency.permits.available_permits(),
            0,
            "owed to the lower limit"
        );
        drop(second);
        assert_eq!(
            concurrency.permits.available_permits(),
            1,
            "one turn: the limit"
        );
        let only = concurrency.acquire().await.unwrap();
        assert!(
            concurrency.permits.try_acquire().is_err(),
            "a second task waits"
        );
        concurrency.set(3);
        assert_eq!(concurrency.permits.available_permits(), 2);
        // Lowered while busy, raised before the task ends: nothing stays owed.
        concurrency.set(1);
        assert_eq!(concurrency.permits.available_permits(), 0);
        concurrency.set(2);
        drop(only);
        assert_eq!(concurrency.permits.available_permits(), 2);
    }
}
