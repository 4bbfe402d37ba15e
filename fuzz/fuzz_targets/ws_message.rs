//! A text message from an agent on the WebSocket pull connection, then its samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::ws_pull::{Message, parse};

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(Message::Response(reading)) = parse(text)
    {
        let _ = reading.samples("agent-1", 1_765_000_000_000);
    }
});
