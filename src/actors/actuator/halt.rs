//! Failing closed: when the store refuses to record a transition, actuation stops (nothing is
//! proposed, applied, approved or rolled back), `store_write_failed` fires, and `GET /readyz`
//! and `GET /api/v1/automation` say why. The in-memory state keeps what the store last
//! recorded: the pool stays busy. Once a probe write works and no driver call is running,
//! the actuator forgets its in-memory flights and reconciles from the store and the drivers
//! exactly as after a crash (`recover`).

use std::sync::{Arc, Mutex};

use actix::Context;
use serde::Serialize;

use super::{Actuator, ActuatorError};
use crate::actors::alert::{ControllerAlert, STORE_WRITE_FAILED};
use crate::domain::{Action, ActionState};
use crate::policy::AlertLevel;

/// Why actuation stopped, and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Halted {
    /// What could not be written, and the store's error.
    pub reason: String,
    /// When, epoch milliseconds.
    pub since_ms: i64,
}

/// Whether actuation is stopped; shared between the actuator and the API.
#[derive(Debug, Clone, Default)]
pub struct Halt(Arc<Mutex<Option<Halted>>>);

impl Halt {
    /// Why actuation is stopped, if it is.
    pub fn get(&self) -> Option<Halted> {
        self.0.lock().map(|h| h.clone()).unwrap_or(None)
    }

    fn set(&self, halted: Option<Halted>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = halted;
        }
    }

    /// Stops actuation for `reason` unless it is stopped already; true if this call did.
    pub(super) fn trip(&self, reason: String, since_ms: i64) -> bool {
        let Ok(mut slot) = self.0.lock() else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(Halted { reason, since_ms });
        true
    }
}

/// How long after a halt the actuator first probes the store; doubled (up to
/// [`RESUME_MAX_MS`]) when it halts again within a minute of resuming, so a store that takes
/// the probe but not real writes does not make it flap every second.
const RESUME_FIRST_MS: i64 = 1_000;
/// The longest wait between a halt and the next probe.
const RESUME_MAX_MS: i64 = 60_000;

/// The agent name the store alert carries.
const CONTROLLER: &str = "controller";

impl Actuator {
    /// Refuses anything that would write while actuation is stopped.
    pub(super) fn check_running(&self) -> Result<(), ActuatorError> {
        match self.halt.get() {
            Some(halted) => Err(ActuatorError::Halted(halted.reason)),
            None => Ok(()),
        }
    }

    /// Records a transition of action `id`, or stops actuation when the store refuses it.
    pub(super) fn record(
        &mut self,
        id: i64,
        state: ActionState,
        reason: &str,
        actor: &str,
    ) -> Result<Action, ActuatorError> {
        self.check_running()?;
        self.store
            .transition(id, state, reason, actor)
            .map_err(|error| self.halt_on(&format!("action {id} to {state}"), error.into()))
    }

    /// Stops actuation if `error` is the store's; answers the error either way.
    pub(super) fn halt_on(&mut self, what: &str, error: ActuatorError) -> ActuatorError {
        let ActuatorError::Store(cause) = &error else {
            return error;
        };
        let mut chain = cause.to_string();
        let mut source = std::error::Error::source(cause);
        while let Some(inner) = source {
            chain.push_str(": ");
            chain.push_str(&inner.to_string());
            source = inner.source();
        }
        let reason = format!("the store refused a write ({what}): {chain}");
        tracing::error!(message = "Log write failed; actuation stops.", %reason);
        self.halt.trip(reason.clone(), self.clock.now_ms());
        self.halted_now();
        ActuatorError::Halted(reason)
    }

    /// Says so once actuation stopped (by this actor or a step of a driver call): the alert
    /// fires, and the next probe waits longer if the last resume was recent.
    pub(super) fn halted_now(&mut self) {
        let Some(halted) = self.halt.get() else {
            return;
        };
        if self.resume.alerted {
            return;
        }
        self.resume.alerted = true;
        self.tell_alerts(true);
        let recent = halted.since_ms - self.resume.resumed_ms < 60_000;
        self.resume.wait_ms = if recent {
            (self.resume.wait_ms * 2).clamp(RESUME_FIRST_MS, RESUME_MAX_MS)
        } else {
            RESUME_FIRST_MS
        };
    }

    fn tell_alerts(&self, firing: bool) {
        if let Some(alerts) = &self.alerts {
            alerts.do_send(ControllerAlert {
                name: STORE_WRITE_FAILED,
                level: AlertLevel::Critical,
                agent: CONTROLLER.to_string(),
                pool: "-".to_string(),
                firing,
                resolve_after_ms: None,
            });
        }
    }

    /// While stopped: once the store takes a write again and no driver call runs, forgets
    /// the in-memory flights and reconciles from the store as after a crash.
    pub(super) fn try_resume(&mut self, ctx: &mut Context<Self>) {
        let Some(halted) = self.halt.get() else {
            return;
        };
        self.halted_now();
        let now = self.clock.now_ms();
        if self.calls > 0 || now < halted.since_ms.max(self.resume.probed_ms) + self.resume.wait_ms
        {
            return;
        }
        self.resume.probed_ms = now;
        if let Err(error) = self.store.check_writable() {
            tracing::debug!(message = "Store still refuses writes.", %error);
            return;
        }
        // The actions to reconcile must be readable before anything is let go.
        if let Err(error) = self.store.actions_in(&ActionState::IN_FLIGHT) {
            tracing::warn!(message = "Store takes writes but cannot list actions in flight.", %error);
            return;
        }
        tracing::warn!(message = "Store takes writes again; reconciling as after a crash.");
        self.halt.set(None);
        self.resume.alerted = false;
        self.resume.resumed_ms = now;
        self.tell_alerts(false);
        self.verifying.clear();
        for activity in self.activity.values_mut() {
            activity.in_flight = None;
        }
        self.recover(ctx);
    }
}

/// Where the actuator stands with resuming after a halt.
#[derive(Debug, Default)]
pub(super) struct Resume {
    /// The halt was said (alert fired).
    alerted: bool,
    /// When the store was last probed.
    probed_ms: i64,
    /// When actuation last resumed.
    resumed_ms: i64,
    /// How long after a halt (or the last probe) the next probe waits.
    wait_ms: i64,
}
