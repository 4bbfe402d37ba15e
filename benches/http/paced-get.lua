-- wrk script: each connection waits DELAY_MS between requests, so C connections send about
-- C * 1000 / DELAY_MS requests a second whatever the latency (a paced load, not a flood).
-- The bearer token comes from SWARMPILOT_TOKEN; `done` prints the rate and percentiles.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "10")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SWARMPILOT_TOKEN")

function delay()
    return delay_ms
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    io.write(string.format("requests: %d in %.1f s = %.0f/s, errors: %d non-2xx, %d socket\n",
        summary.requests, secs, summary.requests / secs, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout))
    for _, p in ipairs({50, 90, 99, 99.9}) do
        io.write(string.format("p%s: %.2f ms\n", p, latency:percentile(p) / 1000))
    end
    io.write(string.format("max: %.2f ms\n", latency.max / 1000))
end
