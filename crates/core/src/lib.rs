//! swarmpilot-core: the part of swarmpilot that does no I/O.
//!
//! Domain types, the policy model and its checks (text in, errors out), and analytics
//! (anomaly detection, forecasts, scaling math, risk). It depends on no async runtime, actor
//! system, HTTP client or server, database or OS crate; the `swarmpilot` package wires it to
//! messages, time, processes and the network.

#![warn(missing_docs)]

pub mod analytics;
pub mod domain;
pub mod policy;
