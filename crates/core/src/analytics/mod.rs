//! Analytics: anomaly detection, forecasts, scaling math and statistics over plain numbers.
//!
//! Nothing here does I/O or knows about actors, so every function can be tested and
//! benchmarked alone.

pub mod anomaly;
pub mod forecast;
pub mod latency;
pub mod planner;
pub mod ring;
pub mod risk;
pub mod rollup;
pub mod scaling;
pub mod stats;
pub mod usage;
