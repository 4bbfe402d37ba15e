//! Prometheus scrape as a source: `Scraper` reads every target's `/metrics` page on the
//! policy's sampling interval, each with its own timeout and in its own future so a slow
//! or dead target never holds the others back, and turns the series its mappings name into
//! samples (`ingest::scrape::map`; the text format is read by `ingest::scrape::text`).
//!
//! Targets are the policy's static `[[ingest.scrape]]` list, whose agents join their pool
//! through `AdmitSamples` like pushed ones, and the agents of each pool in
//! `[ingest.scrape_pools]`, read at their driver-reported endpoint and sent with
//! `IngestSamples`. A failing target is logged once per outage, counted in [`ScrapeStats`]
//! (shown by `GET /metrics`), and reported unreachable to the health actor, which marks the
//! agent `error` after a few failures in a row and `active` again on the next good scrape.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Recipient, SpawnHandle, WrapFuture,
};

use crate::actors::fleet::{FleetSnapshot, FleetSupervisor, GetFleet};
use crate::actors::messages::{AdmitSamples, IngestSamples, ScrapeObserved};
use crate::actors::{SamplingTick, schedule_sampling};
use crate::clock::Clock;
use crate::domain::Sample;
use crate::ingest::scrape::auth::{Clients, authorize};
use crate::ingest::scrape::promql::QueryError;
use crate::ingest::scrape::{map, promql, text};
use crate::policy::{MetricMapping, PolicyHandle};

/// Largest page read from a target, bytes.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// What the scraper asks for: the classic text format.
const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// What the operator can read about each target, by agent id; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ScrapeStats(Arc<Mutex<BTreeMap<String, TargetStats>>>);

/// The counts of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetStats {
    /// The agent's pool.
    pub pool: String,
    /// True when the last scrape succeeded.
    pub up: bool,
    /// Scrapes tried.
    pub scrapes: u64,
    /// Scrapes that failed.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Why the last failure happened.
    pub last_error: Option<String>,
}

impl ScrapeStats {
    /// A copy of every target's counts.
    pub fn snapshot(&self) -> BTreeMap<String, TargetStats> {
        // A poisoned lock only holds counters: still worth showing.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, agent: &str, change: impl FnOnce(&mut TargetStats)) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        change(all.entry(agent.to_string()).or_default());
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|agent, _| keep(agent));
    }
}

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer within the target's timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The request could not be made or the answer not read.
    #[error("request failed: {0}")]
    Request(String),
    /// The target answered with a status other than 2xx.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The page is larger than [`MAX_PAGE_BYTES`].
    #[error("page larger than {MAX_PAGE_BYTES} bytes")]
    TooLarge,
    /// The page is not the text exposition format.
    #[error("unparsable page: {0}")]
    Parse(#[from] text::ParseError),
}

/// The scrape actor.
pub struct Scraper {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    fleet: Addr<FleetSupervisor>,
    health: Recipient<ScrapeObserved>,
    clients: Clients,
    ticker: Option<(SpawnHandle, Duration)>,
    targets: HashMap<String, TargetState>,
    stats: ScrapeStats,
    inputs: promql::PoolInputs,
    queries_in_flight: HashSet<(String, String)>,
}

/// One scrape to make this round.
#[derive(Debug, Clone)]
struct Job {
    agent: String,
    pool: String,
    url: String,
    timeout_ms: u64,
    mappings: Vec<MetricMapping>,
    auth: crate::policy::HttpAuth,
    /// True for agents the controller runs (`IngestSamples`), false for static targets
    /// (`AdmitSamples`, which may register them).
    managed: bool,
}

#[derive(Debug, Default)]
struct TargetState {
    memory: map::Memory,
    in_flight: bool,
}

impl Scraper {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A scraper that sends what it reads to `fleet`, counts into `stats`, and keeps the
    /// policy's PromQL pool inputs in `inputs`.
    pub fn new(
        policy: PolicyHandle,
        fleet: Addr<FleetSupervisor>,
        health: Recipient<ScrapeObserved>,
        stats: ScrapeStats,
        inputs: promql::PoolInputs,
    ) -> Result<Self, reqwest::Error> {
        let clients = Clients::new()?;
        Ok(Scraper {
            span: tracing::info_span!("actor", actor = "scraper"),
            clock: Clock::system(),
            policy,
            fleet,
            health,
            clients,
            ticker: None,
            targets: HashMap::new(),
            stats,
            inputs,
            queries_in_flight: HashSet::new(),
        })
    }

    /// Every target of this round: the static ones, and the pools' agents in `snapshot`.
    fn jobs(&self, snapshot: Option<&FleetSnapshot>) -> Vec<Job> {
        let current = self.policy.current();
        let ingest = &current.policy.ingest;
        let mut jobs: Vec<Job> = ingest
            .scrape
            .iter()
            .map(|target| Job {
                agent: target.agent.clone(),
                pool: target.pool.clone().unwrap_or(ingest.default_pool.clone()),
                url: target.url.clone(),
                timeout_ms: target.timeout_ms,
                mappings: target.metrics.clone(),
                auth: target.auth.clone(),
                managed: false,
            })
            .collect();
        for agent in snapshot.map_or(&[][..], |s| &s.agents) {
            let (Some(pool), Some(endpoint)) = (
                ingest.scrape_pools.get(&agent.pool),
                agent.endpoint.as_ref(),
            ) else {
                continue;
            };
            if jobs.iter().any(|job| job.agent == agent.id) {
                continue;
            }
            jobs.push(Job {
                agent: agent.id.clone(),
                pool: agent.pool.clone(),
                url: format!("{}{}", endpoint.trim_end_matches('/'), pool.path),
                timeout_ms: pool.timeout_ms,
                mappings: pool.metrics.clone(),
                auth: pool.auth.clone(),
                managed: true,
            });
        }
        jobs
    }

    /// Starts a scrape of every job not still running from an earlier round, and forgets
    /// targets that are gone.
    fn start_round(&mut self, jobs: Vec<Job>, ctx: &mut Context<Self>) {
        self.targets
            .retain(|agent, _| jobs.iter().any(|job| &job.agent == agent));
        self.stats
            .retain(|agent| jobs.iter().any(|job| job.agent == agent));
        for job in jobs {
            let state = self.targets.entry(job.agent.clone()).or_default();
            if state.in_flight {
                tracing::debug!(message = "Scrape still running; round skipped.", agent = %job.agent);
                continue;
            }
            state.in_flight = true;
            let request = self
                .clients
                .client(&job.auth)
                .and_then(|client| authorize(client.get(&job.url), &job.auth))
                .map_err(|e| ScrapeError::Request(e.to_string()));
            let fetch = fetch(request, job.timeout_ms);
            ctx.spawn(fetch.into_actor(self).map(move |result, scraper, _ctx| {
                let _span = scraper.span.clone().entered();
                scraper.finish(job, result)
            }));
        }
    }

    /// Runs every PromQL query of the policy not still running from an earlier round.
    fn run_queries(&mut self, ctx: &mut Context<Self>) {
        let current = self.policy.current();
        let queries = &current.policy.ingest.promql;
        self.inputs
            .retain(|(pool, input)| queries.iter().any(|q| &q.pool == pool && &q.input == input));
        for query in queries {
            let key = (query.pool.clone(), query.input.clone());
            if !self.queries_in_flight.insert(key.clone()) {
                continue;
            }
            let (client, query) = (self.clients.client(&query.auth), query.clone());
            let ask = async move {
                let client = client.map_err(|e| QueryError::Request(e.to_string()))?;
                promql::query(
                    &client,
                    &query.server,
                    &query.query,
                    query.timeout_ms,
                    &query.auth,
                )
                .await
            };
            ctx.spawn(ask.into_actor(self).map(move |outcome, scraper, _ctx| {
let _span = scraper.span.clone().entered();
                scraper.queries_in_flight.remove(&key);
                let failed_before = scraper
                    .inputs
                    .snapshot()
                    .get(&key)
                    .is_some_and(|s| s.last_error.is_some());
                if let Err(error) = &outcome
                    && !failed_before
                {
                    tracing::warn!(message = "Pool input query failed.", pool = %key.0, input = %key.1, %error);
                }
                scraper.inputs.record(key, scraper.clock.now_ms(), outcome);
            }));
        }
    }

    /// Turns one scrape's result into samples, or counts its failure.
    fn finish(&mut self, job: Job, result: Result<text::Exposition, ScrapeError>) {
        let now = self.clock.now_ms();
        let Some(state) = self.targets.get_mut(&job.agent) else {
            // The target left the policy while it was being read.
            return;
        };
        state.in_flight = false;
        let exposition = match result {
            Ok(exposition) => exposition,
            Err(error) => {
                let mut failures = 0;
                self.stats.update(&job.agent, |stats| {
                    stats.pool = job.pool.clone();
                    stats.up = false;
                    stats.scrapes += 1;
                    stats.failures += 1;
                    stats.consecutive_failures += 1;
                    stats.last_error = Some(error.to_string());
                    failures = stats.consecutive_failures;
                });
                if failures == 1 {
                    tracing::warn!(message = "Scrape failed.", agent = %job.agent, url = %job.url, %error);
                }
                self.health.do_send(ScrapeObserved {
                    agent: job.agent.clone(),
                    reachable: false,
                });
                return;
            }
        };
        let mut was_down = false;
        self.stats.update(&job.agent, |stats| {
            was_down = stats.consecutive_failures > 0;
            stats.pool = job.pool.clone();
            stats.up = true;
            stats.scrapes += 1;
            stats.consecutive_failures = 0;
        });
        if was_down {
            tracing::info!(message = "Scrape target back.", agent = %job.agent);
        }
        self.health.do_send(ScrapeObserved {
            agent: job.agent.clone(),
            reachable: true,
        });
        let samples: Vec<Sample> = map::apply(&job.mappings, &exposition, now, &mut state.memory)
            .into_iter()
            .map(|(metric, value)| Sample {
                agent: job.agent.clone(),
                metric,
                ts_ms: now,
                value,
            })
            .collect();
        if samples.is_empty() {
            return;
        }
        if job.managed {
            self.fleet.do_send(IngestSamples(samples));
            return;
        }
        let admit = AdmitSamples {
            samples,
            pools: HashMap::from([(job.agent.clone(), job.pool.clone())]),
            by: None,
        };
        let fleet = self.fleet.clone();
        actix::spawn(async move {
            match fleet.send(admit).await {
                Ok(refused) => {
                    for refusal in refused {
                        tracing::debug!(message = "Scraped samples refused.", agent = %refusal.agent, reason = %refusal.reason);
                    }
                }
                Err(error) => {
                    tracing::debug!(message = "Fleet gone; scraped samples dropped.", %error)
                }
            }
        });
    }
}

/// Reads and parses one page.
async fn fetch(
    request: Result<reqwest::RequestBuilder, ScrapeError>,
    timeout_ms: u64,
) -> Result<text::Exposition, ScrapeError> {
    let timeout = Duration::from_millis(timeout_ms);
    let read = async {
        let mut response = request?
            .header(reqwest::header::ACCEPT, ACCEPT)
            .send()
            .await
            .map_err(|e| ScrapeError::Request(without_url(e)))?;
        if !response.status().is_success() {
            return Err(ScrapeError::Status(response.status().as_u16()));
        }
        let mut page = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ScrapeError::Request(without_url(e)))?
        {
            if page.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(ScrapeError::TooLarge);
            }
            page.extend_from_slice(&chunk);
        }
        Ok(page)
    };
    // One deadline for connecting, the headers and the whole body.
    let page = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ScrapeError::Timeout(timeout_ms))??;
    let page = String::from_utf8_lossy(&page);
    Ok(text::parse(&page)?)
}

/// The error and its causes, without the URL (the log line names it).
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl Actor for Scraper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        schedule_sampling(self, ctx);
    }
}

impl SamplingTick for Scraper {
    fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)> {
        &mut self.ticker
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.run_queries(ctx);
        let current = self.policy.current();
        if current.policy.ingest.scrape_pools.is_empty() {
            let jobs = self.jobs(None);
            self.start_round(jobs, ctx);
            return;
        }
        // The pools' agents come from the fleet: ask, then scrape.
        ctx.spawn(
            self.fleet
                .send(GetFleet)
                .into_actor(self)
                .map(|snapshot, scraper, ctx| {
                    let _span = scraper.span.clone().entered();
                    match snapshot {
                        Ok(snapshot) => {
                            let jobs = scraper.jobs(Some(&snapshot));
                            scraper.start_round(jobs, ctx);
                        }
                        Err(error) => tracing::debug!(message = "Fleet gone; no scrape.", %error),
                    }
                }),
        );
    }
}
