//! OTLP/HTTP JSON bodies (OTLP's JSON mapping): counted, decoded, then mapped to samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmpilot::ingest::otlp::Encoding;

fuzz_target!(|body: &[u8]| swarmpilot_fuzz::otlp(body, Encoding::Json));
