//! swarmpilot: an autonomous controller for fleets of software agents.
//!
//! The pure part (domain types, the policy model and checks, analytics, the decisions) is
//! the `swarmpilot-core` crate, re-exported here as `domain`, `analytics`, `decide` and, with
//! the reading of policy files, `policy`. `actors` wire it to messages and time; `drivers`,
//! `ingest`, `notify`, `store`, `api` and `worker` (the bundled worker) are the edges that
//! touch processes, disks and the network. `ARCHITECTURE.md` at the repository root is the
//! map.

#![warn(missing_docs)]

pub mod actors;
pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod demo;
pub mod drivers;
pub mod font;
pub mod http_error;
pub mod ingest;
pub mod mock_provider;
pub mod notify;
pub mod policy;
pub mod replay;
pub mod reports;
pub mod series_csv;
pub mod store;
pub mod worker;

pub use swarmpilot_core::{analytics, decide, domain, report};
