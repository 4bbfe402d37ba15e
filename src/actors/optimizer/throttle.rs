//! The optimizer's rate-limit step for each pool (`decide::concurrency`): a pool whose model
//! provider throttles it does not scale out or restart agents for the latency and errors
//! that causes; with a `concurrency` section its concurrency comes down instead, and goes
//! back up once the throttling has stopped. A pool that lists `equivalent_models` first moves
//! agents off a throttled model to a quiet equivalent (`decide::spread`), one at a time; its
//! concurrency comes down only when no equivalent can take one.

use std::collections::BTreeMap;

use crate::decide::concurrency::{ThrottleWatch, Throttling};
use crate::decide::spread;
use crate::domain::Proposal;
use crate::domain::fleet::AgentView;
use crate::domain::pool::PoolActivity;
use crate::policy::{DEFAULT_THROTTLE_PERCENT, PoolPolicy};

/// What throttling says about one pool this tick.
#[derive(Debug)]
pub(super) enum Step {
    /// Not throttled: the pool's other rules decide, and this raise (if any) comes last.
    Normal(Option<Proposal>),
    /// Throttled: no scaling or restarts, only this concurrency decrease (if any).
    Throttled(Option<Proposal>),
}

/// The step for pool `name` under `pool`, from its `agents` (and the models `assigned` to
/// them) and the actuator's `activity`.
pub(super) fn step(
    watch: &mut ThrottleWatch,
    name: &str,
    pool: &PoolPolicy,
    (agents, assigned): (&[&AgentView], &BTreeMap<String, String>),
    activity: PoolActivity,
    now_ms: i64,
) -> Step {
    let threshold = pool
        .concurrency
        .as_ref()
        .map_or(DEFAULT_THROTTLE_PERCENT, |c| c.throttle_percent);
    if let Some(own) = &pool.model {
        let models: Vec<&str> = std::iter::once(own)
            .chain(&pool.equivalent_models)
            .map(|m| m.name.as_str())
            .collect();
        if let Some(spread) = spread::plan(name, &models, assigned, agents, threshold) {
            // Throttled on one model: keep the watch's clock, and move an agent first.
            watch.observe(name, Throttling::of(agents).as_ref(), threshold, now_ms);
            return Step::Throttled(Some(spread));
        }
    }
    let throttling = Throttling::of(agents);
    let Some(concurrency) = &pool.concurrency else {
        return if watch.observe(name, throttling.as_ref(), DEFAULT_THROTTLE_PERCENT, now_ms) {
            Step::Throttled(None)
        } else {
            Step::Normal(None)
        };
    };
    let current = activity.concurrency.unwrap_or(concurrency.max);
    let proposal = watch.plan(name, concurrency, current, throttling.as_ref(), now_ms);
    let throttled = throttling.is_some_and(|t| t.throttled(concurrency.throttle_percent));
    if throttled {
        Step::Throttled(proposal)
    } else {
        Step::Normal(proposal)
    }
}

/// Whether `agents` are throttled at the pool's threshold, for decisions outside the tick.
pub(super) fn throttled(pool: &PoolPolicy, agents: &[&AgentView]) -> bool {
    let threshold = pool
        .concurrency
        .as_ref()
        .map_or(DEFAULT_THROTTLE_PERCENT, |c| c.throttle_percent);
    Throttling::of(agents).is_some_and(|t| t.throttled(threshold))
}
