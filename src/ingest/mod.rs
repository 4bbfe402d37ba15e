//! Every way a sample comes in from outside the controller: the JSON batch API (`push.rs`),
//! task tracking (`tasks.rs`, samples made from reported work), Prometheus scrape
//! (`scrape/`) and, beside them, the other formats agents speak. Each path turns its input into
//! [`Sample`](crate::domain::Sample)s, checks each one here, and hands them to the fleet with
//! `AdmitSamples`, which lets agents it has not met join a pool (or refuses them).
//!
//! The HTTP handlers of the push paths live in `api`; those formats know no transport. The
//! pull paths (`ws_pull/`) are clients: they open the sockets themselves.

pub mod otlp;
#[cfg(test)]
mod proptests;
pub mod push;
pub mod scrape;
pub mod tasks;
pub mod ws_pull;

use serde::Serialize;

pub use crate::domain::names::{
    MAX_AGENT_LEN, MAX_METRIC_LEN, check_agent, check_metric, check_timestamp, check_value,
};

/// The refusals of one request: every one counted, the first `cap` (by index) kept to be
/// listed, so a request of a million bad items answers in kilobytes.
#[derive(Debug, Default)]
pub struct Refusals {
    listed: Vec<Rejection>,
    total: usize,
    cap: usize,
}

impl Refusals {
    /// No refusals yet; `cap` of them will be listed.
    pub fn new(cap: usize) -> Self {
        Refusals {
            listed: Vec::new(),
            total: 0,
            cap,
        }
    }

    /// Counts `rejection`, kept if it is among the first `cap` by index.
    pub fn push(&mut self, rejection: Rejection) {
        self.total += 1;
        self.listed.push(rejection);
        // Sorted and cut back now and then: at most twice the cap is ever held.
        if self.listed.len() >= self.cap.max(1) * 2 {
            self.trim();
        }
    }

    /// How many were refused in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The first `cap` refusals, in index order.
    pub fn into_listed(mut self) -> Vec<Rejection> {
        self.trim();
        self.listed
    }

    fn trim(&mut self) {
        self.listed.sort_by_key(|r| r.index);
        self.listed.truncate(self.cap);
    }
}

/// One refused item of a batch: where it was, which field, and why.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Rejection {
    /// Position of the item in the batch, from 0.
    pub index: usize,
    /// The field at fault, e.g. `value`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}
