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
}

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
        if self.halt.get().is_none() {
            self.halt.set(Some(Halted {
                reason: reason.clone(),
                since_ms: self.clock.now_ms(),
            }));
            self.tell_alerts(true);
        }
        ActuatorError::Halted(reason)
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
        if self.halt.get().is_none() || self.calls > 0 {
            return;
        }
        if let Err(error) = self.store.check_writable() {
            tracing::debug!(message = "Store still refuses writes.", %error);
            return;
        }
        tracing::warn!(message = "Store takes writes again; reconciling as after a crash.");
        self.halt.set(None);
        self.tell_alerts(false);
        self.verifying.clear();
        for activity in self.activity.values_mut() {
            activity.in_flight = None;
        }
        self.recover(ctx);
    }
}
