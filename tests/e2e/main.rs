//! End-to-end tests: the real `swarmpilot` binary, real worker processes, a real HTTP
//! server on a free loopback port.

mod util;
// A scripted JSON server (orchestrators, API servers, PromQL) on a loopback port.
mod fake_http;
// Real notification receivers (aiosmtpd, prometheus-alertmanager), shared with the unit tests.
#[path = "../../src/notify/receivers.rs"]
mod receivers;

// The API surface: auth, errors, the read endpoints.
mod api;
// The worker's slow-down fault.
mod worker_faults;
// Scaling out on a load step and back in after the stabilization window.
mod scaling;
// Dead workers are noticed and replaced; no process outlives its controller.
mod lifecycle;
// The offline detector and forecaster: outputs, and errors with their location.
mod detect;
// Policy files: checking, the schema, hot reload, validation.
mod policy;
// The controller's own threshold changes live in an overlay; manual actions and rollback.
mod overlay;
// The risk gate: approvals with roles and expiry, verification and automatic rollback,
// pause, and recovery after a kill -9.
mod gate;
// What the gate refuses: a busy pool, a stale approved action, a forbidden class, late or
// unauthorised rollbacks.
mod refusals;
// Alerts routed to a real webhook: grouping, repeat interval, the resolved message.
mod alerts;
// The action log's pages, filters and CSV export, and the dry run.
mod log;
// The replay harness: both strategies on a trace, the chart, and errors.
mod replay;
// The demo command, start to finish.
mod demo;
// `swarmpilot actions`: the real binary listing, deciding and rolling back over REST.
mod actions_cli;
// Samples pushed over the API: per-item errors, unknown agents joining pools, body limits.
mod ingest;
// Alerts from pushed samples to every channel's real receiver; inhibition, silences, failing
// and dead receivers.
mod alert_paths;
// WebSocket pull: a Python `websockets` agent and bundled workers, unhealthy and back.
mod ws_pull;
// Task tracking over HTTP (timings, rates, timeouts, errors) and per-minute rollups by step.
mod tasks;
// OTLP/HTTP metrics: the real OpenTelemetry Python SDK pushing, OTLP JSON, gzip, errors.
mod otlp;
// Prometheus scrape of a real node exporter and the bundled workers; GET /metrics checked by promtool.
mod scrape;
// Pool inputs read with PromQL from a real Prometheus that scrapes the bundled workers.
mod promql;
// The layers the compiler holds: swarmpilot-core depends on no runtime, HTTP, database or OS crate.
mod layers;
// Log lines as JSON, levels from RUST_LOG.
mod logging;
// The main package's modules: no cycle, no edge ARCHITECTURE.md rules out.
mod modules;
// Each GET route's JSON shape, compared with the one recorded before the wire types existed.
mod responses;
// Workers start with a scrubbed environment.
mod worker_env;
// Membership of driver pools (ghost agents), and restarts that escalate instead of leaving
// a ghost.
mod membership;
// The store refusing writes in each action state: actuation stops, says so, and recovers.
mod store_faults;
// SIGKILL in each action state (intact log, no orphan, recovery) and SIGTERM under load.
mod shutdown;
// The store on PostgreSQL: crash recovery and store failures.
mod postgres;
// A pool of 100,000 agents seen only through a PromQL aggregate.
mod aggregates;
// Leader election on a Kubernetes Lease, against a fake API server.
mod kube_lease;
// The live event stream: snapshot and transitions, tickets, filters, a slow client dropped.
mod stream;
// The OpenAPI document, checked by schemathesis against the running server.
mod openapi;
// The dashboard in headless Chromium against a running demo.
mod dashboard;
// The everyday reads of the CLI against a running server, and their errors.
mod reads_cli;
// swarmpilot report and GET /api/v1/reports/{period}.
mod reports;
// Hostile bodies: item bombs refused before they are built, within bounded memory.
mod limits;
// Slow bodies: a cap of requests in flight per token and a deadline on every body.
mod slow_bodies;
// Query parameters: arbitrary values on every GET route answer 2xx or a named 4xx.
mod queries;
// AI agent fleets: GenAI metrics and task usage become token, cost and error series.
mod genai;
// Scrapes with bearer tokens, basic auth, headers and a private CA.
mod scrape_auth;
// Operator conventions: flags from the environment, SIGHUP, build and process metrics.
mod conventions;
// Rate limits: a throttled pool lowers its concurrency instead of scaling out.
mod throttle;
// The API over TLS, and no plaintext beyond loopback unless the policy says so.
mod tls;
