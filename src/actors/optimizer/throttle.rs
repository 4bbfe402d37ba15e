//! The optimizer's rate-limit step for each pool (`decide::concurrency`): a pool whose model
//! provider throttles it does not scale out or restart agents for the latency and errors
//! that causes; with a `concurrency` section its concurrency comes down instead, and goes
//! back up once the throttling has stopped.

use crate::decide::concurrency::{ThrottleWatch, Throttling};
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

/// The step for pool `name` under `pool`, from its `agents` and the actuator's `activity`.
pub(super) fn step(
    watch: &mut ThrottleWatch,
    name: &str,
    pool: &PoolPolicy,
    agents: &[&AgentView],
    activity: PoolActivity,
    now_ms: i64,
) -> Step {
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
