//! The worker's side of the WebSocket metrics protocol: a `GET /metrics` carrying
//! `Upgrade: websocket` becomes a socket on which every `{"type": "metrics_request"}` is
//! answered with a `metrics_response` (see the controller's `ingest::ws_pull` for the units):
//! the process's CPU (percent of one core, since the previous request on this socket) and
//! resident memory (percent of the host's), the mean latency and failure percent of the
//! `/work` tasks of the last minute (`null` without any), tasks in flight as
//! `activeConnections`, and `status` `busy` while tasks run, `active` with recent tasks,
//! `idle` otherwise. A plain `GET /metrics` still gets Prometheus text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::guard::GuardContext;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use serde_json::{Value, json};

use super::Worker;

/// What the worker calls its kind in `agentType`.
const AGENT_TYPE: &str = "swarmpilot-worker";
/// A CPU window shorter than this is too noisy; the process lifetime is used instead.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(200);

/// True for a request asking for a WebSocket (`Upgrade: websocket`, any case).
pub fn wants_websocket(ctx: &GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Accepts the socket and answers metrics requests on it until the client leaves.
pub async fn metrics_socket(
    request: HttpRequest,
    body: web::Payload,
    worker: web::Data<Arc<Worker>>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, mut stream) = actix_ws::handle(&request, body)?;
    let worker = worker.get_ref().clone();
    actix_web::rt::spawn(async move {
        let mut cpu = CpuWindow::new(worker.started);
        while let Some(Ok(message)) = stream.recv().await {
            let sent = match message {
                Message::Text(text) => session.text(answer(&worker, &mut cpu, &text)).await,
                Message::Ping(bytes) => session.pong(&bytes).await,
                Message::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// The reply to one text message.
fn answer(worker: &Worker, cpu: &mut CpuWindow, text: &str) -> String {
    let kind = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
    if kind.as_deref() != Some("metrics_request") {
        return json!({
            "type": "error",
            "message": "expected {\"type\": \"metrics_request\"}",
        })
        .to_string();
    }
    let now = Instant::now();
    let recent = worker.metrics.recent(now);
    let in_flight = worker.metrics.in_flight();
    let status = if in_flight > 0 {
        "busy"
    } else if recent.tasks > 0 {
        "active"
    } else {
        "idle"
    };
    json!({
        "type": "metrics_response",
        "agentType": AGENT_TYPE,
        "agentId": worker.config.id,
        "cpu": cpu.percent(now),
        "memory": memory_percent(),
        "responseTime": recent.mean_latency_ms,
        "errorRate": recent.error_percent,
        "activeConnections": in_flight,
        "lastHeartbeat": crate::clock::rfc3339(crate::clock::now_ms()),
        "status": status,
    })
    .to_string()
}

/// The process's CPU use between two requests.
struct CpuWindow {
    since: Instant,
    cpu_at_since: Duration,
    process_started: Instant,
}

// === impl CpuWindow ===

impl CpuWindow {
    fn new(process_started: Instant) -> CpuWindow {
        CpuWindow {
            since: Instant::now(),
            cpu_at_since: process_cpu_time(),
            process_started,
        }
    }

    /// Percent of one core used since the last call (or since the process started, when
    /// that window is too short to mean much).
    fn percent(&mut self, now: Instant) -> f64 {
        let cpu = process_cpu_time();
        let (wall, used) = if now.duration_since(self.since) >= MIN_CPU_WINDOW {
            (
                now.duration_since(self.since),
                cpu.saturating_sub(self.cpu_at_since),
            )
        } else {
            (now.duration_since(self.process_started), cpu)
        };
        self.since = now;
        self.cpu_at_since = cpu;
        if wall.is_zero() {
            return 0.0;
        }
        used.as_secs_f64() * 100.0 / wall.as_secs_f64()
    }
}

fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resident memory of this process, percent of the host's; `None` if it cannot be read.
fn memory_percent() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let total_pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    (total_pages > 0).then(|| resident_pages * 100.0 / total_pages as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_window_sees_cpu_burnt_and_memory_is_a_percent() {
        let mut window = CpuWindow::new(Instant::now());
        window.since -= Duration::from_millis(300);
        super::super::burn_cpu(Duration::from_millis(60));
        let percent = window.percent(Instant::now());
        assert!(percent > 5.0, "{percent}");
        let memory = memory_percent().expect("/proc/self/statm");
        assert!(memory > 0.0 && memory < 100.0, "{memory}");
    }
}
