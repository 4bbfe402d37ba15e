//! Declarative policy: the documented model, loading from a directory, and checks.
//!
//! Policy is pure: loading reads files, but nothing here talks to actors or the network.

mod load;
mod model;

pub use load::{DEFAULT_POLICY, LoadError, PolicyError, load_dir, load_str};
pub use model::{AlertLevel, AlertRule, DriverConfig, Global, Policy, PoolPolicy};
