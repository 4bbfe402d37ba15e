//! The agents' section of `GET /metrics` at 10,000 agents x 10 metrics (issue 21): written
//! when nothing changed since the last scrape, when two agents changed (a quiet fleet with
//! the shipped policy's two local workers), and when every agent changed (a fleet pushing).
//! The list is dropped outside the timing, as a snapshot outlives the scrape that reads it.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use swarmpilot::actors::fleet::AgentView;
use swarmpilot::api::ScrapeCache;
use swarmpilot::domain::fleet::FleetAgents;

#[path = "common/mix.rs"]
mod mix;
use mix::WATCHED_MIX;

/// The allocator the binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AGENTS: usize = 10_000;

/// The fleet with every value moved by `round`.
fn fleet(round: u64) -> FleetAgents {
    let agents = (0..AGENTS)
        .map(|i| {
            let mut agent = AgentView::blank(&format!("storm-{i}"), "external");
            agent.metrics = (WATCHED_MIX.iter().enumerate())
                .map(|(j, m)| (m.to_string(), (i * 10 + j) as f64 * 1.237 + round as f64))
                .collect();
            Arc::new(agent)
        })
        .collect();
    Arc::new(agents)
}

fn scrape(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_agents_10000x10");
    group.sample_size(20);

    let cache = ScrapeCache::default();
    let list = fleet(0);
    cache.agent_lines(&list);
    group.bench_function("nothing_changed", |b| b.iter(|| cache.agent_lines(&list)));

    let mut round = 0;
    let mut last = (*list).clone();
    group.bench_function("two_agents_changed", |b| {
        b.iter_batched_ref(
            || {
                round += 1;
                for agent in &mut last[..2] {
                    Arc::make_mut(agent)
                        .metrics
                        .set("cpu_percent", round as f64);
                }
                Arc::new(last.clone())
            },
            |list| cache.agent_lines(list),
            BatchSize::PerIteration,
        )
    });

    group.bench_function("every_agent_changed", |b| {
        b.iter_batched_ref(
            || {
                round += 1;
                fleet(round)
            },
            |list| cache.agent_lines(list),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
