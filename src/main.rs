//! The `swarmpilot` binary: parses the command line, runs it, picks the exit code.

use std::io::IsTerminal;

use clap::Parser;
use swarmpilot::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: ingestion allocates and frees small strings at a high
/// rate from several threads, where glibc spent 40% of the time and kept freed memory in
/// per-thread arenas (BENCHMARKS.md, "Ingestion").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = swarmpilot::cli::Cli::parse();
    // The demo draws its own view on stdout; logs go to stderr and stay quiet by default.
    let default_level = match cli.command {
        swarmpilot::cli::Command::Serve { .. } => "info",
        swarmpilot::cli::Command::Demo { .. } => "error",
        _ => "warn",
    };
    // SWARMPILOT_LOG wins; RUST_LOG is honoured when it is unset, as most Rust programs do.
    let filter = EnvFilter::try_from_env("SWARMPILOT_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Pretty => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    let code = match swarmpilot::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    };
    std::process::exit(code);
}
