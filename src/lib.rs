//! swarmpilot: an autonomous controller for fleets of software agents.
//!
//! The crate is layered as `ARCHITECTURE.md` at the repository root describes: `policy` and `analytics` are pure,
//! `actors` wire them to messages and time, and `drivers`, `store`, `api` and `agent` are the
//! edges that touch processes, disks and the network.

#![warn(missing_docs)]

pub mod actors;
pub mod agent;
pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod demo;
pub mod drivers;
pub mod ingest;
pub mod notify;
pub mod policy;
pub mod replay;
pub mod store;

pub use swarmpilot_core::{analytics, domain};
