-- wrk script of scripts/bench-http: POSTs one JSON batch of 1,000 samples (100 agents x 10
-- metrics, timestamps left to the controller's clock) to /api/v1/samples with the bearer
-- token in SWARMPILOT_TOKEN. METRICS=watched puts the four metrics the default anomaly
-- detectors watch in the mix; otherwise none of the ten is watched.

local watched = { "cpu_percent", "memory_percent", "response_time_ms", "error_rate",
  "queue_size", "requests_per_sec", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes",
  "net_tx_bytes" }
local plain = { "queue_size", "requests_per_sec", "disk_read_bytes", "disk_write_bytes",
  "net_rx_bytes", "net_tx_bytes", "open_files", "threads", "gc_pause_ms", "cache_hit_ratio" }
local metrics = os.getenv("METRICS") == "watched" and watched or plain

local items = {}
for a = 0, 99 do
  for m, metric in ipairs(metrics) do
    items[#items + 1] = string.format('{"agent":"http-%d","metric":"%s","value":%d.5}',
      a, metric, (a * 7 + m * 3) % 60)
  end
end

wrk.method = "POST"
wrk.body = "[" .. table.concat(items, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("SWARMPILOT_TOKEN"), "SWARMPILOT_TOKEN")

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("requests: %d in %.1f s, not 200 or failed: %d\n",
    summary.requests, seconds, failed))
  io.write(string.format("samples/s: %.0f\n", summary.requests / seconds * 1000))
  io.write(string.format("latency p50: %.1f ms, p99: %.1f ms, max: %.1f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
