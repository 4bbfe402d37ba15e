//! The actors of the controller, one module each, with the messages they share.
//!
//! They exchange typed messages along the path
//! `Collector → FleetSupervisor → AgentActor → {Health, Alert, FleetSupervisor}` and
//! `Optimizer → Actuator → driver`, as `ARCHITECTURE.md` draws it.

pub mod actuator;
pub mod agent;
pub mod alert;
pub mod collector;
pub mod fleet;
pub mod health;
pub mod messages;
pub mod optimizer;
pub mod policy;
