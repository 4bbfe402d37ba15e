//! The live actuator's pacing on a simulated pool: one action in flight per pool (an applied
//! scale is verified for the policy's `verification.window_secs` before the pool is free),
//! then the cooldown and the hourly cap, judged by the same `decide::gate::pace` the
//! actuator calls; a scale-up from below `min_agents` is never held, as live.

use std::collections::VecDeque;

use crate::decide::gate::{pace, restores_minimum};
use crate::domain::Change;
use crate::policy::Automation;

/// The pool name holds are reported under (one pool is simulated).
const POOL: &str = "replay";
/// An hour, milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// What the actuator would let through, tick by tick.
#[derive(Debug, Clone)]
pub struct Pacing {
    automation: Automation,
    min_agents: usize,
    /// When the action in flight finishes its verification, epoch milliseconds.
    in_flight_until: Option<i64>,
    /// When the last action finished.
    last_finished_ms: Option<i64>,
    /// When each action of the last hour was applied, oldest first.
    applied: VecDeque<i64>,
    /// Changes held back so far.
    pub held: u64,
}

impl Pacing {
    /// Pacing under `automation`, for a pool of at least `min_agents`.
    pub fn new(automation: Automation, min_agents: usize) -> Self {
        Pacing {
            automation,
            min_agents,
            in_flight_until: None,
            last_finished_ms: None,
            applied: VecDeque::new(),
            held: 0,
        }
    }

    /// The size the pool gets at `now_ms` when `desired` is asked of a pool of `current`:
    /// `desired` if the actuator would apply it now (and it is then in flight), else
    /// `current`.
    pub fn admit(&mut self, now_ms: i64, current: usize, desired: usize) -> usize {
        if desired == current {
            return current;
        }
        if let Some(until) = self.in_flight_until {
            if until > now_ms {
                self.held += 1;
                return current;
            }
            self.in_flight_until = None;
            self.last_finished_ms = Some(until);
        }
        while self
            .applied
            .front()
            .is_some_and(|&at| at <= now_ms - HOUR_MS)
        {
            self.applied.pop_front();
        }
        let change = Change::Scale {
            from: current,
            to: desired,
        };
        let restoring = restores_minimum(&change, current, self.min_agents, false);
        let paced = pace(
            POOL,
            self.last_finished_ms,
            self.applied.len(),
            &self.automation,
            now_ms,
        );
        if paced.is_err() && !restoring {
            self.held += 1;
            return current;
        }
        self.applied.push_back(now_ms);
        let window_ms = self.automation.verification.window_secs as i64 * 1000;
        if window_ms > 0 {
            self.in_flight_until = Some(now_ms + window_ms);
        } else {
            self.last_finished_ms = Some(now_ms);
        }
        desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn automation(cooldown_secs: u64, max_actions_per_hour: u32, window_secs: u64) -> Automation {
        let mut automation = Automation {
            cooldown_secs,
            max_actions_per_hour,
            ..Automation::default()
        };
        automation.verification.window_secs = window_secs;
        automation
    }

    #[test]
    fn one_action_in_flight_then_the_cooldown_hold_the_next() {
        let mut pacing = Pacing::new(automation(30, 60, 20), 1);
        assert_eq!(pacing.admit(0, 2, 4), 4);
        // Verifying until 20 s, then cooling down until 50 s.
        assert_eq!(pacing.admit(15_000, 4, 6), 4);
        assert_eq!(pacing.admit(30_000, 4, 6), 4);
        assert_eq!(pacing.admit(45_000, 4, 6), 4);
        assert_eq!(pacing.admit(50_000, 4, 6), 6);
        assert_eq!(pacing.held, 3);
        // Nothing asked, nothing held.
        assert_eq!(pacing.admit(55_000, 6, 6), 6);
        assert_eq!(pacing.held, 3);
    }

    #[test]
    fn the_hourly_cap_holds_until_the_oldest_action_is_an_hour_old_but_not_a_return_to_the_minimum()
    {
        let mut pacing = Pacing::new(automation(0, 2, 0), 2);
        assert_eq!(pacing.admit(0, 2, 3), 3);
        assert_eq!(pacing.admit(60_000, 3, 4), 4);
        assert_eq!(pacing.admit(120_000, 4, 5), 4, "the cap");
        // Below the minimum, capacity is restored whatever the cap.
        assert_eq!(pacing.admit(180_000, 1, 2), 2);
        assert_eq!(pacing.admit(HOUR_MS + 1, 2, 3), 2, "three in the last hour");
        assert_eq!(pacing.admit(HOUR_MS + 60_001, 2, 3), 3);
    }
}
