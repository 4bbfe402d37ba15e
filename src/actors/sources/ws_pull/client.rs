//! One target's pull loop: connect, ask every sampling interval, hand the samples to the
//! fleet and the outcome to the health actor; on a failed connect, a closed socket or an
//! agent silent for two intervals, report it unreachable and reconnect with exponential
//! backoff.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Target, TargetKind};
use crate::actors::messages::{AdmitSamples, IngestSamples, PullObserved, PullOutcome};
use crate::clock::Clock;
use crate::domain::metric;
use crate::ingest::ws_pull::{self as protocol, METRICS_REQUEST, Message, Reading};
use crate::policy::PolicyHandle;

/// First wait before a reconnect.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between reconnects.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Shortest silence that counts as a dead agent, whatever the interval.
const MIN_SILENCE: Duration = Duration::from_secs(1);

/// Where a pull loop sends what it learns.
#[derive(Clone)]
pub struct PullLinks {
    /// Samples of agents the controller runs.
    pub ingest: Recipient<IngestSamples>,
    /// Samples of static targets, which join their pool on first contact.
    pub admit: Recipient<AdmitSamples>,
    /// The health actor.
    pub health: Recipient<PullObserved>,
    /// Failed pulls per agent, for `GET /metrics`.
    pub failures: PullFailures,
}

/// Failed pulls (unreachable, closed, malformed) per agent since the controller started.
#[derive(Debug, Clone, Default)]
pub struct PullFailures(Arc<Mutex<BTreeMap<String, u64>>>);

impl PullFailures {
    /// Counts one failed pull of `agent`.
    fn count(&self, agent: &str) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(agent.to_string()).or_default() += 1;
        }
    }

    /// Drops `agent`'s count: it left the fleet.
    pub fn forget(&self, agent: &str) {
        if let Ok(mut counts) = self.0.lock() {
            counts.remove(agent);
        }
    }

    /// Every agent's count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Exponential backoff: `BACKOFF_INITIAL`, doubling up to `BACKOFF_MAX`, reset after a good
/// exchange.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

/// Why an exchange with an agent ended.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Silent(Duration),
    #[error("the agent closed the socket")]
    Closed,
    #[error("socket error: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

// === impl Backoff ===

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_INITIAL,
        }
    }
}

impl Backoff {
    /// How long to wait before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    /// Starts again from `BACKOFF_INITIAL`.
    pub fn reset(&mut self) {
        self.next = BACKOFF_INITIAL;
    }
}

/// Pulls `target` until the task is aborted.
pub async fn run(target: Target, links: PullLinks, policy: PolicyHandle, clock: Clock) {
    let mut puller = Puller {
        clock,
        target,
        links,
        policy,
        backoff: Backoff::default(),
        outage: None,
    };
    loop {
        let error = match puller.connect().await {
            Ok(socket) => puller.exchange(socket).await,
            Err(error) => error,
        };
        puller.unreachable(&error);
        let delay = puller.backoff.next_delay();
        tracing::debug!(message = "Reconnecting.", agent = %puller.target.agent, ?delay);
        tokio::time::sleep(delay).await;
    }
}

struct Puller {
    clock: Clock,
    target: Target,
    links: PullLinks,
    policy: PolicyHandle,
    backoff: Backoff,
    /// Since when the agent has not answered well, epoch milliseconds.
    outage: Option<i64>,
}

// === impl Puller ===

impl Puller {
    /// How long the agent may stay silent: two sampling intervals.
    fn silence(&self) -> Duration {
        (self.policy.sampling_interval() * 2).max(MIN_SILENCE)
    }

    async fn connect(&self) -> Result<Socket, PullError> {
        let connect = tokio_tungstenite::connect_async(self.target.url.as_str());
        match tokio::time::timeout(self.silence(), connect).await {
            Err(_) => Err(PullError::Silent(self.silence())),
            Ok(Err(error)) => Err(PullError::Connect(error.to_string())),
            Ok(Ok((socket, _response))) => Ok(socket),
        }
    }

    /// Asks and reads every interval until the socket fails; returns why it did.
    async fn exchange(&mut self, mut socket: Socket) -> PullError {
        loop {
            let asked = tokio::time::Instant::now();
            if let Err(error) = socket.send(WsMessage::text(METRICS_REQUEST)).await {
                return error.into();
            }
            let silence = self.silence();
            match tokio::time::timeout(silence, answer(&mut socket)).await {
                Err(_) => return PullError::Silent(silence),
                Ok(Err(error)) => return error,
                Ok(Ok(Ok(reading))) => self.deliver(reading).await,
                Ok(Ok(Err(error))) => self.malformed(&error),
            }
            tokio::time::sleep_until(asked + self.policy.sampling_interval()).await;
        }
    }

    /// Hands a good reading to the fleet and its status to the health actor.
    async fn deliver(&mut self, reading: Reading) {
        let agent = &self.target.agent;
        let mut samples = reading.samples(agent, self.clock.now_ms());
        if self.target.process_sampled {
            samples
                .retain(|s| s.metric != metric::CPU_PERCENT && s.metric != metric::MEMORY_PERCENT);
        }
        match &self.target.kind {
            TargetKind::Fleet => self.links.ingest.do_send(IngestSamples(samples)),
            TargetKind::Static { pool } => {
                let pools = [(agent.clone(), pool.clone())].into_iter().collect();
                // Awaited, so the fleet has registered the agent (and told the health actor
                // to track it) before the status below arrives.
                match self
                    .links
                    .admit
                    .send(AdmitSamples {
                        samples,
                        pools,
                        by: None,
                    })
                    .await
                {
                    Ok(refused) => {
                        if let Some(refused) = refused.first() {
                            self.refused(&refused.reason);
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::debug!(message = "Fleet gone; samples dropped.", %agent, %error);
                        return;
                    }
                }
            }
        }
        let status = reading.status.unwrap_or(crate::domain::AgentStatus::Active);
        self.report(PullOutcome::Reported(status));
        self.backoff.reset();
        if let Some(since) = self.outage.take() {
            tracing::info!(
                message = "Agent metrics pulled again.",
                %agent,
                url = %self.target.url,
                outage_ms = self.clock.now_ms() - since
            );
        }
    }

    fn malformed(&mut self, error: &protocol::ProtocolError) {
        self.report(PullOutcome::Malformed);
        self.links.failures.count(&self.target.agent);
        if self.begin_outage() {
            tracing::warn!(message = "Agent answered with no metrics.", agent = %self.target.agent, url = %self.target.url, %error);
        }
    }

    fn refused(&mut self, reason: &str) {
        if self.begin_outage() {
            tracing::warn!(message = "Pulled samples refused by the fleet.", agent = %self.target.agent, %reason);
        }
    }

    fn unreachable(&mut self, error: &PullError) {
        self.report(PullOutcome::Unreachable);
        self.links.failures.count(&self.target.agent);
        if self.begin_outage() {
            tracing::warn!(message = "Agent metrics cannot be pulled.", agent = %self.target.agent, url = %self.target.url, %error);
        } else {
            tracing::debug!(message = "Pull failed again.", agent = %self.target.agent, %error);
        }
    }

    /// Marks the start of an outage; true the first time, so it is logged once.
    fn begin_outage(&mut self) -> bool {
        if self.outage.is_some() {
            return false;
        }
        self.outage = Some(self.clock.now_ms());
        true
    }

    fn report(&self, outcome: PullOutcome) {
        self.links.health.do_send(PullObserved {
            agent: self.target.agent.clone(),
            outcome,
        });
    }
}

/// Reads until a metrics response (skipping other messages), a malformed one, or the end.
async fn answer(
    socket: &mut Socket,
) -> Result<Result<Reading, protocol::ProtocolError>, PullError> {
    loop {
        let text = match socket.next().await {
            None | Some(Ok(WsMessage::Close(_))) => return Err(PullError::Closed),
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(WsMessage::Text(text))) => text,
            // Pings are answered by tungstenite itself; binary frames are not this protocol.
            Some(Ok(_)) => continue,
        };
        match protocol::parse(&text) {
            Ok(Message::Response(reading)) => return Ok(Ok(reading)),
            Ok(Message::Other) => continue,
            Err(error) => return Ok(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), BACKOFF_INITIAL);
    }
}
