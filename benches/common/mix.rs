//! The metrics an agent of the benchmarks reports, shared by the benches that include it.

/// Ten metrics of which four are watched by the default policy's anomaly detectors.
pub const WATCHED_MIX: [&str; 10] = [
    "cpu_percent",
    "memory_percent",
    "response_time_ms",
    "error_rate",
    "queue_size",
    "requests_per_sec",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
];
