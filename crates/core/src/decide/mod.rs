//! The decisions the controller's actors take, as functions of what they know: an agent's
//! health verdict (`health`), the
//! optimizer's per-agent rules (`agents`: leaks, error bursts, anomalies, hot agents), its
//! threshold tuning (`thresholds`), what a pool's planner is fed (`load`) and what it proposes (`scale`), the risk
//! gate's holds and modes (`gate`), the actuator's verification of an applied change (`verify`)
//! and what a restart recovers (`recover`). Time comes in as an argument;
//! nothing here sends, sleeps or reads a clock.

pub mod agents;
pub mod gate;
pub mod health;
pub mod load;
pub mod recover;
pub mod scale;
pub mod thresholds;
pub mod verify;
