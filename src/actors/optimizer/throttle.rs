//! The optimizer's rate-limit step for each pool (`decide::concurrency`): a pool whose model
//! provider throttles it does not scale out or restart agents for the latency and errors
//! that causes; with a `concurrency` section its concurrency comes down instead, and goes
//! back up once the throttling has stopped. A pool that lists `equivalent_models` first moves
//! agents off a throttled model to a quiet equivalent (`decide::spread`), one at a time; its
//! concurrency comes down only when no equivalent can take one, when its driver cannot move
//! an agent, or for a minute after the actuator refused or held a move.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::actors::actuator::ActuatorError;
use crate::decide::concurrency::{ThrottleWatch, Throttling};
use crate::decide::spread;
use crate::domain::Proposal;
use crate::domain::fleet::AgentView;
use crate::domain::pool::PoolActivity;
use crate::policy::{DEFAULT_THROTTLE_PERCENT, DriverConfig, PoolPolicy};

/// What throttling says about one pool this tick.
#[derive(Debug)]
pub(super) enum Step {
    /// Not throttled: the pool's other rules decide, and this raise (if any) comes last.
    Normal(Option<Proposal>),
    /// Throttled: no scaling or restarts, only this change (if any): an agent moved to an
    /// equivalent model, or the concurrency lowered.
    Throttled(Option<Proposal>),
}

/// How long a pool's spreading waits after the actuator refused or held a move.
const SPREAD_HOLD_MS: i64 = 60_000;

/// Pools whose last `switch_model` the actuator refused or held, and until when; shared with
/// the task that hears the actuator's answer.
#[derive(Debug, Clone, Default)]
pub(super) struct SpreadHolds(Arc<Mutex<HashMap<String, i64>>>);

impl SpreadHolds {
    /// Holds `pool`'s spreading from `now_ms`, the actuator having answered `error`.
    pub fn hold(&self, pool: &str, now_ms: i64, error: &ActuatorError) {
        if matches!(error, ActuatorError::Busy { .. }) {
            // Another action is in flight: the move comes again once it is done.
            return;
        }
        tracing::info!(message = "Spreading held; concurrency decides meanwhile.", %pool, %error);
        if let Ok(mut holds) = self.0.lock() {
            holds.insert(pool.to_string(), now_ms + SPREAD_HOLD_MS);
        }
    }

    /// Whether `pool` may spread its agents now: a driver that can move one, and no hold.
    pub fn allows(&self, name: &str, pool: &PoolPolicy, now_ms: i64) -> bool {
        let movable = !matches!(
            pool.driver,
            DriverConfig::Kubernetes { .. } | DriverConfig::None
        );
        let held = self
            .0
            .lock()
            .ok()
            .and_then(|h| h.get(name).copied())
            .is_some_and(|until| now_ms < until);
        movable && !held
    }
}

/// The step for pool `name` under `pool`, from its `agents` (and the models `assigned` to
/// them, `None` when it may not spread them now) and the actuator's `activity`.
pub(super) fn step(
    watch: &mut ThrottleWatch,
    name: &str,
    pool: &PoolPolicy,
    (agents, assigned): (&[&AgentView], Option<&BTreeMap<String, String>>),
    activity: PoolActivity,
    now_ms: i64,
) -> Step {
    let threshold = pool
        .concurrency
        .as_ref()
        .map_or(DEFAULT_THROTTLE_PERCENT, |c| c.throttle_percent);
    if let (Some(own), Some(assigned)) = (&pool.model, assigned) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(driver: &str) -> PoolPolicy {
        let text = format!("min_agents = 2\ndriver = {{ type = \"{driver}\" }}\n");
        toml::from_str(&text).expect("a pool")
    }

    #[test]
    fn a_refused_move_holds_spreading_for_a_minute_and_a_busy_pool_does_not() {
        let holds = SpreadHolds::default();
        let process = pool("process");
        assert!(holds.allows("p", &process, 0));
        let busy = ActuatorError::Busy {
            pool: "p".into(),
            action: 7,
        };
        holds.hold("p", 0, &busy);
        assert!(holds.allows("p", &process, 1), "busy: asked again later");
        holds.hold("p", 0, &ActuatorError::Paused);
        assert!(!holds.allows("p", &process, SPREAD_HOLD_MS - 1));
        assert!(holds.allows("p", &process, SPREAD_HOLD_MS));
        assert!(holds.allows("q", &process, 1), "other pools are not held");
        assert!(
            !holds.allows("p", &pool("none"), SPREAD_HOLD_MS),
            "no driver to move one"
        );
    }
}
