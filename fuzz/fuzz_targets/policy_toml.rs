//! A policy file: parsed and checked as `swarmpilot policy check` and hot reload do.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = swarmpilot::policy::load_str("fuzz.toml", text);
    }
});
