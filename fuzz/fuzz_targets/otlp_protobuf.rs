//! OTLP/HTTP protobuf bodies: counted on the wire, decoded, then mapped to samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::otlp::Encoding;

fuzz_target!(|body: &[u8]| swarmpilot_fuzz::otlp(body, Encoding::Protobuf));
