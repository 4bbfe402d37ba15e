//! A `timestamp,value` CSV series, as `detect`, `forecast` and `replay --trace` read it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use swarmpilot::series_csv::SeriesReader;

fuzz_target!(|body: &[u8]| {
    static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
    let path = FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("swarmpilot-fuzz-{}.csv", std::process::id()))
    });
    std::fs::write(path, body).unwrap();
    for allow_unsorted in [false, true] {
        if let Ok(reader) = SeriesReader::open(path) {
            for row in reader.allow_unsorted(allow_unsorted) {
                if row.is_err() {
                    break;
                }
            }
        }
    }
});
