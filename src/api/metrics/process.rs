//! The controller's build and process families, as every Prometheus client library exports
//! them: `swarmpilot_build_info`, `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds` and
//! `process_start_time_seconds`, read from `/proc/self`.

use super::Page;

/// Writes the build and process families to `page`; a `/proc` file that cannot be read
/// leaves its family out.
pub(super) fn write(page: &mut Page) {
    page.family(
        "swarmpilot_build_info",
        "gauge",
        "The controller's version, always 1.",
    );
    page.sample(
        "swarmpilot_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (in parentheses, which may hold spaces): the third
    // field there is number 3 of stat(5).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    if let (Some(utime), Some(stime)) = (field(14), field(15))
        && ticks > 0.0
    {
        page.family(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, seconds.",
        );
        page.sample("process_cpu_seconds_total", &[], (utime + stime) / ticks);
    }
    if let Some(vsize) = field(23) {
        page.family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, bytes.",
        );
        page.sample("process_virtual_memory_bytes", &[], vsize);
    }
    if let Some(rss) = field(24) {
        page.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, bytes.",
        );
        page.sample("process_resident_memory_bytes", &[], rss * page_size);
    }
    if let (Some(start), Ok(uptime)) = (field(22), std::fs::read_to_string("/proc/uptime"))
        && let Some(up) = uptime
            .split_whitespace()
            .next()
            .and_then(|u| u.parse::<f64>().ok())
        && ticks > 0.0
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        page.family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, seconds.",
        );
        page.sample("process_start_time_seconds", &[], now - up + start / ticks);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        page.family("process_open_fds", "gauge", "Open file descriptors.");
        page.sample("process_open_fds", &[], fds.count() as f64);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        page.family(
            "process_max_fds",
            "gauge",
            "Most open file descriptors allowed.",
        );
        page.sample("process_max_fds", &[], limit.rlim_cur as f64);
    }
}
