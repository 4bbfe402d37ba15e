//! The scaling plan of one pool: the HPA rule of `analytics::scaling` applied to the most
//! load expected before a new agent could serve, not to the load now.
//!
//! The expected load is the highest of: the load now; the forecaster's peak within the lead
//! time (start-up time plus one interval), believed beyond twice its recent error; the recent
//! trend carried over the lead time. The plan adds a margin: the mean amount by which the
//! load recently exceeded what was planned for it, plus how far it usually moves in a lead
//! time (noise), with spikes capped so a rare one does not buy agents for days.
//! The tolerance keeps a size against noise, but only for a while: once a settling period
//! (five scale-down windows) needed fewer agents at exactly the target, the pool goes to the
//! most it needed.
//!
//! The live optimizer and `swarmpilot replay` both decide through [`PoolPlanner`], so a
//! replayed trace exercises the same decisions the controller makes.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::forecast::{ForecastConfig, Forecaster, Model, linear_trend};
#[cfg(test)]
use super::scaling::RateLimit;
use super::scaling::{Scaler, ScalingConfig, ScalingDecision, scale_up_limit};

/// Steps ahead each pool's load is forecast: the longest lead time a plan looks at.
pub const FORECAST_HORIZON: usize = 30;
/// Weight of each new shortfall in the running mean that sets the margin.
const SHORTFALL_WEIGHT: f64 = 0.05;
/// Scale-down windows of lower need after which the tolerance no longer keeps the size.
const SETTLE_WINDOWS: i64 = 5;
/// Weight of each new movement in the running mean swing of the load over a lead time.
const SWING_WEIGHT: f64 = 0.01;
/// A movement counts up to this many times the running swing...
const SWING_CAP: f64 = 3.0;
/// ...plus this share of the load, so the swing can grow from zero.
const SWING_FLOOR: f64 = 0.01;
/// A forecast rise is believed only beyond this many times the model's recent error.
const BELIEF_ERRORS: f64 = 2.0;

/// One scaling plan and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// The HPA decision on the planned load (its `desired` after the settling rule).
    pub decision: ScalingDecision,
    /// The pool's total load now.
    pub load: f64,
    /// The highest load expected within the lead time (forecast or trend), if any.
    pub forecast_peak: Option<f64>,
    /// The margin added for recent shortfalls and the load's usual swing.
    pub margin: f64,
    /// The load planned for: the higher of now and the expected peak, plus the margin.
    pub planned: f64,
    /// Decision intervals looked ahead: agent start-up time plus one interval.
    pub lead_ticks: usize,
    /// Whether the expected peak, not the load now, set the plan.
    pub forecast_led: bool,
}

impl Plan {
    /// The number of agents the pool should have.
    pub fn desired(&self) -> usize {
        self.decision.desired
    }
}

/// The planner of one pool: its scaler, load forecaster and recent history.
#[derive(Debug, Clone)]
pub struct PoolPlanner {
    scaler: Scaler,
    forecaster: Forecaster,
    forecast: Option<Vec<f64>>,
    /// The latest loads, newest last, for the recent trend.
    recent: VecDeque<f64>,
    /// Loads observed so far: the planner's clock, in intervals.
    observed: u64,
    /// The latest plans (interval made at, load planned for, lead), newest last.
    plans: VecDeque<(u64, f64, usize)>,
    /// Running mean of how far the load rose above what was planned for it.
    shortfall: f64,
    /// Running mean of how far the load moves in one lead time, spikes capped.
    swing: f64,
    /// Agents each recent plan needed at exactly the target, for the settling rule.
    needs: VecDeque<(i64, usize)>,
}

impl PoolPlanner {
    /// A planner with no history.
    pub fn new(config: ScalingConfig) -> Self {
        PoolPlanner {
            scaler: Scaler::new(config),
            forecaster: Forecaster::new(ForecastConfig::default(), FORECAST_HORIZON),
            forecast: None,
            recent: VecDeque::with_capacity(FORECAST_HORIZON + 1),
            observed: 0,
            plans: VecDeque::with_capacity(FORECAST_HORIZON + 1),
            shortfall: 0.0,
            swing: 0.0,
            needs: VecDeque::new(),
        }
    }

    /// Holds the pool at `size` in the scale-down window while it changes.
    pub fn hold(&mut self, now_ms: i64, size: usize) {
        self.scaler.hold(now_ms, size);
    }

    /// Folds in the pool's total load (the sum over its agents, in the units of the target
    /// per agent), measured once per decision interval.
    pub fn observe(&mut self, total_load: f64) {
        if !total_load.is_finite() {
            return;
        }
        self.forecast = self.forecaster.update(total_load);
        push_bounded(&mut self.recent, total_load);
        self.observed += 1;
        let now = self.observed;
        // The plan in force now: the latest whose agents have had time to start (a plan made
        // at interval t with lead L has its agents serving from t + L - 1).
        let in_force = self
            .plans
            .iter()
            .rev()
            .find(|&&(at, _, lead)| at + (lead as u64 - 1).max(1) <= now)
            .copied();
        if let Some((_, planned, lead)) = in_force {
            let short = (total_load - planned).max(0.0);
            self.shortfall += SHORTFALL_WEIGHT * (short - self.shortfall);
            if self.recent.len() > lead {
                // How far the load moved in one lead time; a rare jump (a spike) counts only
                // up to a few times the usual swing, so the margin follows noise, not spikes.
                let before = self.recent[self.recent.len() - 1 - lead];
                let cap = SWING_CAP * self.swing + SWING_FLOOR * total_load.abs();
                let moved = (total_load - before).abs().min(cap);
                self.swing += SWING_WEIGHT * (moved - self.swing);
            }
        }
    }

    /// The latest forecast of the total load for the next intervals.
    pub fn forecast(&self) -> Option<&[f64]> {
        self.forecast.as_deref()
    }

    /// The forecasting model in use and the season length it found.
    pub fn model(&self) -> (Model, usize) {
        (self.forecaster.model(), self.forecaster.season())
    }

    /// Plans the pool's size at `now_ms` from `current` agents carrying `total_load`, with
    /// new agents taking `lead_ticks - 1` intervals to start.
    pub fn plan(
        &mut self,
        config: ScalingConfig,
        now_ms: i64,
        current: usize,
        total_load: f64,
        lead_ticks: usize,
    ) -> Plan {
        self.scaler.set_config(config);
        let lead_ticks = lead_ticks.clamp(1, FORECAST_HORIZON);
        let forecast_peak = self.expected_peak(total_load, lead_ticks);
        // Never less than the load now: a forecast fall never scales in below the need.
        let expected = forecast_peak.map_or(total_load, |peak| peak.max(total_load));
        push_bounded(&mut self.plans, (self.observed, expected, lead_ticks));
        let margin = self.shortfall + self.swing;
        let planned = expected + margin;
        let per_agent = planned / current.max(1) as f64;
        let mut decision = self.scaler.decide(now_ms, current, per_agent);
        if current == 0 && planned > 0.0 && config.target > 0.0 {
            // Nothing to scale from by ratio: start what the load needs, as fast as a
            // scale-up may go.
            let needed = (planned / config.target).ceil() as usize;
            let floor = config.min_agents;
            decision.desired = needed
                .min(scale_up_limit(0))
                .clamp(floor, config.max_agents.max(floor));
        }
        if let Some(settled) = self.settle(config, now_ms, current, planned)
            && decision.desired == current
        {
            decision.desired = settled;
        }
        Plan {
            decision,
            load: total_load,
            forecast_peak,
            margin,
            planned,
            lead_ticks,
            forecast_led: expected > total_load,
        }
    }

    /// The highest load expected within `lead` intervals: the forecaster's peak, or the
    /// recent rise carried on, whichever is higher.
    fn expected_peak(&mut self, load: f64, lead: usize) -> Option<f64> {
        let model = self
            .forecast
            .as_ref()
            .and_then(|f| f.iter().take(lead).copied().reduce(f64::max));
        // A forecast rise counts only beyond twice the model's recent error, so a model that
        // expects a spike again where it came before does not buy agents for a guess.
        let model = model.map(|peak| {
            let error = self.forecaster.error().unwrap_or(0.0);
            if peak > load {
                load + (peak - load - BELIEF_ERRORS * error).max(0.0)
            } else {
                peak
            }
        });
        let trend = recent_slope(&mut self.recent, lead + 1)
            .filter(|slope| *slope > 0.0)
            .map(|slope| load + slope * lead as f64);
        match (model, trend) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// A smaller size once a whole settling period needed fewer agents at the target.
    fn settle(
        &mut self,
        config: ScalingConfig,
        now_ms: i64,
        current: usize,
        planned: f64,
    ) -> Option<usize> {
        if config.target <= 0.0 {
            return None;
        }
        let need = (planned / config.target - 1e-9).ceil().max(0.0) as usize;
        self.needs.push_back((now_ms, need));
        let period = config.scale_down_window_ms * SETTLE_WINDOWS;
        let mut covered = false;
        while let Some(&(at, _)) = self.needs.front() {
            if now_ms - at <= period {
                break;
            }
            self.needs.pop_front();
            covered = true;
        }
        let most = self.needs.iter().map(|&(_, n)| n).max()?;
        let floor = config.min_agents;
        (covered && most < current).then(|| most.clamp(floor, config.max_agents.max(floor)))
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T) {
    if queue.len() > FORECAST_HORIZON {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// The least-squares slope per interval of the last `points` values (at least three).
fn recent_slope(values: &mut VecDeque<f64>, points: usize) -> Option<f64> {
    let n = points.min(values.len());
    if n < 3 {
        return None;
    }
    let all = values.make_contiguous();
    Some(linear_trend(&all[all.len() - n..]).1)
}

/// Decision intervals to look ahead for agents that take `startup_ms` to start: the start-up
/// time, rounded up, plus the interval until the next decision.
pub fn lead_ticks(startup_ms: i64, interval_ms: i64) -> usize {
    let interval = interval_ms.max(1);
    let startup = startup_ms.max(0);
    ((startup + interval - 1) / interval) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScalingConfig {
        ScalingConfig {
            min_agents: 1,
            max_agents: 40,
            target: 70.0,
            tolerance: 0.1,
            scale_down_window_ms: 60_000,
            scale_up: RateLimit::HPA_UP,
            scale_down: RateLimit::HPA_DOWN,
        }
    }

    #[test]
    fn without_a_forecast_the_plan_is_the_hpa_rule() {
        let mut planner = PoolPlanner::new(config());
        let plan = planner.plan(config(), 0, 4, 4.0 * 90.0, 5);
        assert_eq!(plan.forecast_peak, None);
        assert_eq!(plan.desired(), 6, "ceil(4 × 90/70)");
        assert!(!plan.forecast_led);
    }

    #[test]
    fn a_rising_load_is_met_before_it_arrives() {
        let mut planner = PoolPlanner::new(config());
        // A steady ramp: the load grows by 10% of an agent per interval.
        let mut plan = None;
        for i in 0..200 {
            let load = 100.0 + 10.0 * i as f64;
            planner.observe(load);
            plan = Some(planner.plan(config(), i * 15_000, 20, load, 5));
        }
        let plan = plan.unwrap();
        let peak = plan.forecast_peak.expect("forecasting after warm-up");
        // Five intervals ahead of 2090 on a slope of 10: about 2140.
        assert!((peak - 2140.0).abs() < 15.0, "peak {peak}");
        assert!(plan.forecast_led);
        assert_eq!(plan.desired(), (plan.planned / 70.0).ceil() as usize);
        // The margin is at most how far the ramp moves in a lead time (5 × 10).
        assert!(plan.margin <= 50.0, "margin {}", plan.margin);
        assert!(plan.desired() >= (peak / 70.0).ceil() as usize);
    }

    #[test]
    fn loads_above_the_plan_add_a_margin() {
        let mut planner = PoolPlanner::new(config());
        for _ in 0..2 {
            planner.observe(100.0);
            planner.plan(config(), 0, 5, 100.0, 2);
        }
        // The plan made one interval ago covered 100; 200 arrived: a shortfall of 100.
        planner.observe(200.0);
        let plan = planner.plan(config(), 0, 5, 200.0, 2);
        // Plus the swing: the move of 100 in one lead time, capped at 1% of the load while
        // the running swing is still zero.
        let swing = SWING_WEIGHT * SWING_FLOOR * 200.0;
        assert!((plan.margin - (100.0 * SHORTFALL_WEIGHT + swing)).abs() < 1e-9);
        // The rise of 50 per interval over the last three, carried two intervals on.
        assert_eq!(plan.forecast_peak, Some(300.0));
        assert!((plan.planned - (305.0 + swing)).abs() < 1e-9);
        assert!(plan.forecast_led);
    }

    #[test]
    fn the_tolerance_keeps_a_size_only_for_the_settling_period() {
        let config = ScalingConfig {
            tolerance: 0.2,
            ..config()
        };
        let mut planner = PoolPlanner::new(config);
        // Ten agents at 60% each against a 70% target: within tolerance, but nine would do.
        let period = config.scale_down_window_ms * SETTLE_WINDOWS;
        let mut sizes = Vec::new();
        for tick in 0..=(period / 15_000 + 1) {
            planner.observe(600.0);
            sizes.push(planner.plan(config, tick * 15_000, 10, 600.0, 5).desired());
        }
        let settled = sizes.iter().position(|&n| n == 9).expect("settles to 9");
        assert_eq!(settled as i64, period / 15_000 + 1, "{sizes:?}");
        assert!(sizes[..settled].iter().all(|&n| n == 10));
    }

    #[test]
    fn an_empty_pool_starts_what_the_load_needs() {
        let config = ScalingConfig {
            min_agents: 0,
            ..config()
        };
        let mut planner = PoolPlanner::new(config);
        planner.observe(150.0);
        assert_eq!(
            planner.plan(config, 0, 0, 150.0, 5).desired(),
            3,
            "ceil(150 / 70)"
        );
        planner.observe(1000.0);
        let plan = planner.plan(config, 15_000, 0, 1000.0, 5);
        assert_eq!(
            plan.desired(),
            4,
            "no faster than a scale-up from zero may go"
        );
    }

    #[test]
    fn lead_time_counts_start_up_and_the_next_interval() {
        assert_eq!(lead_ticks(60_000, 15_000), 5);
        assert_eq!(lead_ticks(61_000, 15_000), 6);
        assert_eq!(lead_ticks(0, 2_000), 1);
        assert_eq!(lead_ticks(5_000, 2_000), 4);
    }
}
