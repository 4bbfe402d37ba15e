//! swarmpilot-core: the part of swarmpilot that does no I/O.
//!
//! Domain types, the policy model and its checks (text in, errors out), analytics (anomaly
//! detection, forecasts, scaling math, risk), and the decisions the actors take on them
//! (`decide`: what to propose, how to verify, what a restart recovers). It depends on no async runtime, actor
//! system, HTTP client or server, database or OS crate; the `swarmpilot` package wires it to
//! messages, time, processes and the network.

#![warn(missing_docs)]

pub mod analytics;
pub mod decide;
pub mod domain;
pub mod policy;
pub mod report;
