//! `POST /api/v1/samples` bodies: parsed and checked item by item under small limits, so
//! that the limit paths are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::push::{Limits, parse};

fuzz_target!(|body: &[u8]| {
    let limits = Limits {
        max_future_secs: 300,
        max_items: 64,
        max_listed: 4,
        max_labels: 4,
        max_label_bytes: 32,
    };
    if let Ok(batch) = parse(body, 1_765_000_000_000, limits) {
        assert!(batch.samples.len() <= limits.max_items);
    }
});
