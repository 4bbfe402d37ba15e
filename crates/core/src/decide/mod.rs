//! The decisions the controller's actors take, as functions of what they know and the time
//! passed in: an agent's health verdict (`health`); alert states (`alerts`) and their routing
//! to channels (`route`); the optimizer's per-agent rules (`agents`: leaks, error bursts,
//! anomalies, hot agents), threshold tuning (`thresholds`), what a pool's planner is fed
//! (`load`) and proposes (`scale`); which pool an agent met through its samples joins
//! (`membership`); the risk gate's holds and modes (`gate`), verification
//! of an applied change (`verify`), what a restart recovers (`recover`) and how failed actions
//! are retried (`retry`), and how fast each API caller may go (`rate`). Nothing here
//! sends, sleeps or reads a clock.

pub mod agents;
pub mod alerts;
pub mod budget;
pub mod concurrency;
pub mod cost;
pub mod gate;
pub mod health;
pub mod load;
pub mod membership;
pub mod rate;
pub mod recover;
pub mod retry;
pub mod route;
pub mod scale;
pub mod spread;
pub mod thresholds;
pub mod verify;
