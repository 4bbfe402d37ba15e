//! What the fuzz targets share.

use swarmpilot::ingest::otlp::{Clock, Encoding, SeriesMemory, decode, map};

/// Decodes an OTLP body in `encoding` as the API does (items counted first), then maps it to
/// samples twice, the second time against the cumulative series the first one remembered.
pub fn otlp(body: &[u8], encoding: Encoding) {
    let Ok(request) = decode(body, encoding, 256) else {
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
}
