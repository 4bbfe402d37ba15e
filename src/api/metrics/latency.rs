//! How long the API takes to answer, per route pattern and method, and how long the
//! optimizer takes to decide: `swarmpilot_http_request_duration_seconds` and
//! `swarmpilot_decision_duration_seconds`, Prometheus histograms.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::Method;

use super::Page;
use crate::analytics::latency::{BUCKETS, LatencyHistogram, Snapshot};

/// The route a request that matched none is counted under (so that probing for paths does not
/// grow the page).
const UNMATCHED: &str = "unmatched";

/// The histograms by (route pattern, method).
type ByRoute = BTreeMap<(String, String), Arc<LatencyHistogram>>;

/// Each route's latency histogram, by (route pattern, method); shared by the HTTP workers.
#[derive(Debug, Clone, Default)]
pub struct RouteLatencies(Arc<Mutex<ByRoute>>);

impl RouteLatencies {
    /// Counts a request to `route` (its pattern, e.g. `/api/v1/agents/{id}`; none when no
    /// route matched) by `method` that took `secs`.
    pub fn observe(&self, route: Option<&str>, method: &Method, secs: f64) {
        let key = (
            route.unwrap_or(UNMATCHED).to_string(),
            method.as_str().to_string(),
        );
        let histogram = {
            let mut routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            routes.entry(key).or_default().clone()
        };
        histogram.observe(secs);
    }

    fn snapshots(&self) -> Vec<((String, String), Snapshot)> {
        let routes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .iter()
            .map(|(key, histogram)| (key.clone(), histogram.snapshot()))
            .collect()
    }
}

/// Writes both families to `page`.
pub(super) fn write(page: &mut Page, routes: &RouteLatencies, decisions: &LatencyHistogram) {
    let name = "swarmpilot_http_request_duration_seconds";
    page.family(
        name,
        "histogram",
        "Time to answer a request, by route and method.",
    );
    for ((route, method), snapshot) in routes.snapshots() {
        histogram(
            page,
            name,
            &[("route", &route), ("method", &method)],
            &snapshot,
        );
    }
    let name = "swarmpilot_decision_duration_seconds";
    page.family(
        name,
        "histogram",
        "Time the optimizer took to decide on every pool once.",
    );
    histogram(page, name, &[], &decisions.snapshot());
}

fn histogram(page: &mut Page, name: &str, labels: &[(&str, &str)], snapshot: &Snapshot) {
    let bucket = format!("{name}_bucket");
    for (le, count) in BUCKETS.iter().zip(snapshot.cumulative) {
        let le = le.to_string();
        let mut with_le = labels.to_vec();
        with_le.push(("le", &le));
        page.sample(&bucket, &with_le, count as f64);
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf"));
    page.sample(&bucket, &with_le, snapshot.count as f64);
    page.sample(&format!("{name}_sum"), labels, snapshot.sum_secs);
    page.sample(&format!("{name}_count"), labels, snapshot.count as f64);
}
