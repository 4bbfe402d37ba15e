//! OTLP/HTTP protobuf bodies: counted on the wire, decoded, then mapped to samples twice
//! (the second time against the cumulative series the first one remembered).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::otlp::{Clock, Encoding, SeriesMemory, decode, map};

fuzz_target!(|body: &[u8]| {
    let Ok(request) = decode(body, Encoding::Protobuf, 256) else {
        return;
    };
    let mut memory = SeriesMemory::default();
    for now_ms in [1_765_000_000_000, 1_765_000_010_000] {
        let clock = Clock {
            now_ms,
            max_future_secs: 300,
        };
        let _ = map(&request, clock, &mut memory);
    }
});
