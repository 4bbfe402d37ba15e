//! Prometheus text exposition, as a scrape reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::scrape::text::parse;

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse(text);
    }
});
