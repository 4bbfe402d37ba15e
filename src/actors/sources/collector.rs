//! `Collector`: samples the host and every watched agent process with sysinfo on the policy's
//! interval and sends the samples to the fleet.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, Context, Handler, Recipient, SpawnHandle};
use sysinfo::{Disks, Networks, Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

use crate::actors::fleet::HOST_AGENT;
use crate::actors::messages::{ForgetAgent, IngestSamples, ProcessExited, WatchProcess};
use crate::actors::{SamplingTick, schedule_sampling};
use crate::clock::Clock;
use crate::domain::{Sample, metric};
use crate::policy::PolicyHandle;

/// The collector actor.
pub struct Collector {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    ticker: Option<(SpawnHandle, Duration)>,
    sink: Recipient<IngestSamples>,
    system: System,
    disks: Option<Disks>,
    networks: Option<Networks>,
    watched: HashMap<String, Watched>,
    last_tick_ms: i64,
    /// Told when a watched process has exited.
    exits: Option<Recipient<ProcessExited>>,
}

struct Watched {
    pid: Pid,
    /// Accumulated CPU milliseconds and when they were read: CPU use is the delta between
    /// two reads, so the first read of a process yields no CPU sample.
    last_cpu: Option<(u64, i64)>,
}

impl Collector {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.last_tick_ms = clock.now_ms();
        self.clock = clock;
        self
    }

    /// A collector that samples on the policy's interval and sends to `sink`.
    pub fn new(
        policy: PolicyHandle,
        sink: Recipient<IngestSamples>,
    ) -> Result<Self, sysinfo::Error> {
        let system = System::new()?;
        Ok(Collector {
            span: tracing::info_span!("actor", actor = "collector"),
            clock: Clock::system(),
            policy,
            ticker: None,
            sink,
            system,
            // Disks and networks are optional extras: a host without them still gets sampled.
            disks: Disks::new_with_refreshed_list().ok(),
            networks: Networks::new_with_refreshed_list().ok(),
            watched: HashMap::new(),
            last_tick_ms: crate::clock::now_ms(),
            exits: None,
        })
    }

    /// Tells `exits` (the health actor) when a watched process has exited.
    pub fn with_exits(mut self, exits: Recipient<ProcessExited>) -> Self {
        self.exits = Some(exits);
        self
    }

    /// Takes one round of samples: host-wide first, then every watched process.
    fn collect(&mut self) -> Vec<Sample> {
        let now = self.clock.now_ms();
        let elapsed_secs = ((now - self.last_tick_ms) as f64 / 1000.0).max(0.001);
        self.last_tick_ms = now;
        let mut samples = Vec::with_capacity(8 + 3 * self.watched.len());
        let mut push = |agent: &str, name: &str, value: f64| {
            samples.push(Sample {
                agent: agent.to_string(),
                metric: name.to_string(),
                ts_ms: now,
                value,
            })
        };

        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        push(
            HOST_AGENT,
            metric::SYSTEM_CPU_PERCENT,
            f64::from(self.system.global_cpu_usage()),
        );
        let total_memory = self.system.total_memory() as f64;
        if total_memory > 0.0 {
            let used = self.system.used_memory() as f64;
            push(
                HOST_AGENT,
                metric::SYSTEM_MEMORY_PERCENT,
                used / total_memory * 100.0,
            );
        }
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            let (read, written) = disks.iter().fold((0u64, 0u64), |(r, w), disk| {
                let usage = disk.usage();
                (r + usage.read_bytes, w + usage.written_bytes)
            });
            push(
                HOST_AGENT,
                metric::SYSTEM_DISK_READ_BPS,
                read as f64 / elapsed_secs,
            );
            push(
                HOST_AGENT,
                metric::SYSTEM_DISK_WRITE_BPS,
                written as f64 / elapsed_secs,
            );
        }
        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            let (rx, tx) = networks.iter().fold((0u64, 0u64), |(rx, tx), (_, data)| {
                (rx + data.received(), tx + data.transmitted())
            });
            push(
                HOST_AGENT,
                metric::SYSTEM_NET_RX_BPS,
                rx as f64 / elapsed_secs,
            );
            push(
                HOST_AGENT,
                metric::SYSTEM_NET_TX_BPS,
                tx as f64 / elapsed_secs,
            );
        }

        // Only the watched pids: refreshing every process on the host costs far more.
        let pids: Vec<Pid> = self.watched.values().map(|w| w.pid).collect();
        if !pids.is_empty() {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
        let mut exited: Vec<(String, u32)> = Vec::new();
        for (agent, watched) in &mut self.watched {
            let gone = self.system.process(watched.pid).is_none_or(|process| {
                matches!(
                    process.status(),
                    ProcessStatus::Zombie | ProcessStatus::Dead
                )
            });
            if gone {
                exited.push((agent.clone(), watched.pid.as_u32()));
                continue;
            }
            let Some(process) = self.system.process(watched.pid) else {
                continue;
            };
            let cpu_ms = process.accumulated_cpu_time();
            if let Some((last_ms, last_at)) = watched.last_cpu
                && now > last_at
            {
                let used = cpu_ms.saturating_sub(last_ms) as f64;
                push(
                    agent,
                    metric::CPU_PERCENT,
                    used / (now - last_at) as f64 * 100.0,
                );
            }
            watched.last_cpu = Some((cpu_ms, now));
            let memory = process.memory() as f64;
            push(agent, metric::MEMORY_BYTES, memory);
            if total_memory > 0.0 {
                push(agent, metric::MEMORY_PERCENT, memory / total_memory * 100.0);
            }
        }
        // An exited process is offline at once; its next incarnation is watched anew.
        for (agent, pid) in exited {
            self.watched.remove(&agent);
            if let Some(exits) = &self.exits {
                exits.do_send(ProcessExited { agent, pid });
            }
        }
        samples
    }
}

impl Actor for Collector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        schedule_sampling(self, ctx);
    }
}

impl SamplingTick for Collector {
    fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)> {
        &mut self.ticker
    }

    fn tick(&mut self, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let samples = self.collect();
        self.sink.do_send(IngestSamples(samples));
    }
}

// === impl Handler ===

impl Handler<WatchProcess> for Collector {
    type Result = ();

    fn handle(&mut self, msg: WatchProcess, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.watched.insert(
            msg.agent,
            Watched {
                pid: Pid::from_u32(msg.pid),
                last_cpu: None,
            },
        );
    }
}

impl Handler<ForgetAgent> for Collector {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.watched.remove(&msg.agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::Actor;

    struct Discard;
    impl Actor for Discard {
        type Context = Context<Self>;
    }
    impl Handler<IngestSamples> for Discard {
        type Result = ();
        fn handle(&mut self, _: IngestSamples, _: &mut Context<Self>) {}
    }

    #[actix::test]
    async fn samples_host_and_a_watched_process() {
        let sink = Discard.start().recipient();
        let policy = crate::policy::load_str("t.toml", "").unwrap();
        let mut collector = Collector::new(PolicyHandle::new(policy), sink).unwrap();
        collector.watched.insert(
            "me".into(),
            Watched {
                pid: Pid::from_u32(std::process::id()),
                last_cpu: None,
            },
        );
        let first = collector.collect();
        assert!(first.iter().any(|s| s.metric == metric::SYSTEM_CPU_PERCENT));
        assert!(
            first
                .iter()
                .any(|s| s.agent == "me" && s.metric == metric::MEMORY_BYTES)
        );
        assert!(
            !first.iter().any(|s| s.metric == metric::CPU_PERCENT),
            "not primed yet"
        );
        crate::worker::burn_cpu(Duration::from_millis(300));
        let second = collector.collect();
        let cpu = second
            .iter()
            .find(|s| s.agent == "me" && s.metric == metric::CPU_PERCENT)
            .expect("cpu after priming");
        assert!(cpu.value > 0.0, "{cpu:?}");
    }
}
