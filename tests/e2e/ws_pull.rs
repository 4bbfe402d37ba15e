//! WebSocket pull against two implementations of the protocol: a small agent on Python's
//! `websockets` package (independent of ours), listed as static targets, and the bundled
//! worker in a pool with `pull = "websocket"`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, get_text, wait_for};

/// An agent speaking the metrics protocol: each `metrics_request` on `/metrics` is answered
/// with the reply given on the command line (`garbage` answers something that is not JSON);
/// with a third argument N, it falls silent after N answers, its socket left open.
const PYTHON_AGENT: &str = r#"
import asyncio, datetime, json, sys
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

PORT = int(sys.argv[1])
REPLY = sys.argv[2]
MUTE_AFTER = int(sys.argv[3]) if len(sys.argv) > 3 else None
answered = 0

async def handler(ws):
    global answered
    if ws.request.path != "/metrics":
        await ws.close(1008, "only /metrics")
        return
    try:
        async for message in ws:
            if json.loads(message).get("type") != "metrics_request":
                continue
            if MUTE_AFTER is not None and answered >= MUTE_AFTER:
                continue
            answered += 1
            if REPLY == "garbage":
                await ws.send("this is not json")
                continue
            reply = dict(json.loads(REPLY), type="metrics_response")
            reply["lastHeartbeat"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
            await ws.send(json.dumps(reply))
    except ConnectionClosed:
        pass  # the controller went away: nothing to answer

async def main():
    async with serve(handler, "127.0.0.1", PORT) as server:
        print("listening", flush=True)
        await server.serve_forever()

asyncio.run(main())
"#;

/// A Python agent process, killed when dropped.
struct PythonAgent {
    child: Child,
}

impl PythonAgent {
    /// Starts the agent on `port`, answering `reply`; waits until it listens.
    fn start(dir: &std::path::Path, port: u16, reply: &str) -> PythonAgent {
        PythonAgent::start_args(dir, port, &[reply])
    }

    /// Starts the agent on `port` with `args` (the reply, then when to fall silent).
    fn start_args(dir: &std::path::Path, port: u16, args: &[&str]) -> PythonAgent {
        let importable = Command::new("python3")
            .args(["-c", "import websockets.asyncio.server"])
            .status()
            .expect("python3 runs");
        assert!(
            importable.success(),
            "python3 cannot import websockets (the test's agent): run scripts/test, which installs it"
        );
        let script = dir.join("agent.py");
        std::fs::write(&script, PYTHON_AGENT).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python agent");
        let stdout = child.stdout.take().unwrap();
        let first = BufReader::new(stdout).lines().next();
        assert!(
            matches!(&first, Some(Ok(line)) if line == "listening"),
            "the Python agent did not start: {first:?}"
        );
        PythonAgent { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PythonAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `N` distinct free loopback ports (all held until all are chosen).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// The agent `id` of the fleet, once `check` accepts it.
async fn agent_where(
    server: &Server,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, Duration::from_secs(15), || async {
        let agents = server.agents().await;
        agents.into_iter().find(|a| a["id"] == id && check(a))
    })
    .await
}

#[tokio::test]
async fn a_python_agent_is_pulled_marked_offline_when_killed_and_pulled_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let [port, err_port] = free_ports();
    let reply = json!({"agentType": "researcher", "cpu": 37.5, "memory": 12.25,
        "responseTime": 180, "errorRate": 2.5, "activeConnections": 4, "status": "busy"});
    let mut agent = PythonAgent::start(dir.path(), port, &reply.to_string());
    let failing = json!({"cpu": 1, "status": "error"});
    let _failing = PythonAgent::start(dir.path(), err_port, &failing.to_string());
    // The heartbeat timeout is long, so an offline verdict within it comes from the pull.
    let server = Server::start(&format!(
        r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 60

[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[[ingest.websocket]]
agent = "py-1"
pool = "external"
url = "ws://127.0.0.1:{port}/metrics"

[[ingest.websocket]]
agent = "py-err"
pool = "external"
url = "ws://127.0.0.1:{err_port}/metrics"
"#
    ));

    let seen = agent_where(&server, "py-1", "py-1's pulled samples", |a| {
        a["metrics"].get("active_connections").is_some() && a["status"] == "busy"
    })
    .await;
    assert_eq!(seen["pool"], "external", "{seen}");
    let metrics = &seen["metrics"];
    for (metric, value) in [
        ("cpu_percent", 37.5),
        ("memory_percent", 12.25),
        ("response_time_ms", 180.0),
        ("error_rate", 2.5),
        ("active_connections", 4.0),
    ] {
        assert_eq!(metrics[metric].as_f64(), Some(value), "{metric}: {seen}");
    }
    // An agent that says it is in error shows so.
    agent_where(&server, "py-err", "py-err reporting error", |a| {
        a["status"] == "error"
    })
    .await;

    let failures = r#"swarmpilot_pull_failures_total{agent="py-1"}"#;
    let failed_before = server.metric(failures).await.unwrap_or(0.0);
    agent.kill();
    let killed_at = std::time::Instant::now();
    agent_where(&server, "py-1", "py-1 offline after its agent died", |a| {
        a["status"] == "offline"
    })
    .await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "the pull, not the 60 s heartbeat timeout, noticed"
    );
    // A few reconnects (0.5 s, 1 s, 2 s...) fail: one warning for the whole outage.
    wait_for("three failed pulls", Duration::from_secs(20), || async {
        let failed = server.metric(failures).await?;
        (failed >= failed_before + 3.0).then_some(())
    })
    .await;

    let back = json!({"cpu": 55, "memory": 12.25, "status": "active"});
    let _agent = PythonAgent::start(dir.path(), port, &back.to_string());
    let recovered = agent_where(&server, "py-1", "py-1 pulled again", |a| {
        a["status"] == "active" && a["metrics"]["cpu_percent"].as_f64() == Some(55.0)
    })
    .await;
    assert!(killed_at.elapsed() < Duration::from_secs(30), "{recovered}");
    let log = server.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("Agent metrics cannot be pulled.") && l.contains("py-1"))
        .count();
    assert_eq!(warnings, 1, "one warning per outage, not per retry:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("Agent metrics pulled again.") && l.contains("py-1")),
        "{log}"
    );
}

#[tokio::test]
async fn garbled_and_silent_agents_are_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let [bad_port, mute_port] = free_ports();
    let _garbled = PythonAgent::start(dir.path(), bad_port, "garbage");
    let reply = json!({"cpu": 3, "status": "active"}).to_string();
    let _mute = PythonAgent::start_args(dir.path(), mute_port, &[&reply, "3"]);
    let pushed = json!([{"agent": "py-bad", "metric": "queue_size", "value": 1}]);
    // The heartbeat timeout is long, so an offline verdict within it comes from the pull.
    let server = Server::start(&format!(
        r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 60

[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[[ingest.websocket]]
agent = "py-bad"
pool = "external"
url = "ws://127.0.0.1:{bad_port}/metrics"

[[ingest.websocket]]
agent = "py-mute"
pool = "external"
url = "ws://127.0.0.1:{mute_port}/metrics"
"#
    ));
    // The garbled agent never answers with metrics, so it joins through a pushed sample.
    let (status, reply) = server.post_json("/api/v1/samples", &pushed).await;
    assert_eq!(status, 200, "{reply}");
    agent_where(&server, "py-bad", "py-bad in error", |a| {
        a["status"] == "error"
    })
    .await;

    // The mute one answers three times, then keeps its socket open and says nothing.
    agent_where(&server, "py-mute", "py-mute pulled", |a| {
        a["status"] == "active"
    })
    .await;
    let started = std::time::Instant::now();
    agent_where(&server, "py-mute", "py-mute offline once silent", |a| {
        a["status"] == "offline"
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "two silent intervals, not 60 s"
    );
}

#[tokio::test]
async fn bundled_workers_are_pulled_for_their_response_time_and_error_rate() {
    let server = Server::start(
        r#"
[global]
sampling_interval_secs = 1

[pools.worker]
min_agents = 1
max_agents = 1
pull = "websocket"
"#,
    );
    let worker = wait_for("a worker pulled", Duration::from_secs(20), || async {
        let agents = server.agents().await;
        agents
            .into_iter()
            .find(|a| a["status"] == "idle" && a["endpoint"].is_string())
    })
    .await;
    assert!(
        worker["metrics"].get("response_time_ms").is_none(),
        "no tasks yet, so no response time: {worker}"
    );
    let id = worker["id"].as_str().unwrap().to_string();
    let endpoint = worker["endpoint"].as_str().unwrap().to_string();

    let client = reqwest::Client::new();
    for fail in [false, false, false, false, true] {
        let response = client
            .post(format!("{endpoint}/work"))
            .json(&json!({"cpu_ms": 40, "fail": fail}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().is_success(), !fail);
    }
    let pulled = agent_where(&server, &id, "the worker's response time", |a| {
        a["metrics"].get("response_time_ms").is_some() && a["status"] == "active"
    })
    .await;
    let metrics = &pulled["metrics"];
    let response_ms = metrics["response_time_ms"].as_f64().unwrap();
    assert!(
        (40.0..2000.0).contains(&response_ms),
        "each task burnt 40 ms of CPU: {pulled}"
    );
    assert_eq!(metrics["error_rate"].as_f64(), Some(20.0), "{pulled}");
    assert_eq!(
        metrics["active_connections"].as_f64(),
        Some(0.0),
        "{pulled}"
    );

    // A plain GET of the same path still serves Prometheus text.
    let text = get_text(&format!("{endpoint}/metrics")).await;
    assert!(
        text.contains("swarmpilot_agent_tasks_failed_total"),
        "{text}"
    );
}
