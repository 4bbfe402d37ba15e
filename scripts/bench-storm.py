#!/usr/bin/env python3
"""The storm of scripts/bench-storm: while AGENTS agents x 10 metrics push every 2 s for LOAD
seconds and then all fall silent at once, reads the API every second (GET /api/v1/alerts,
/api/v1/agents, /metrics, /healthz) and times each call, samples the server's RSS and CPU
every 5 s, receives the webhook notifications on a port of its own, and reports:

- agents declared offline while they still pushed (from the server's log);
- the slowest API call during the load and after the silence;
- when the first grouped notification about the silent agents came, and how many came;
- RSS (max, and at the end) and when the controller was idle again (under 5% of a core for
  10 s) after the silence, and its CPU over 20 s once the prober has stopped too.

Usage: bench-storm.py URL TOKEN SERVER_PID SERVER_LOG WEBHOOK_PORT LOAD AGENTS AFTER
"""

import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

CLK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records every webhook POST: when it came and how many alerts it carried."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            alerts = len(json.loads(body).get("details", {}).get("alerts", []))
        except ValueError:
            alerts = 0
        Receiver.received.append((time.monotonic(), alerts, body[:200]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def prober(url, token, stop, timings):
    """Calls each read route every second; records (when, route, seconds, status)."""
    target = urllib.parse.urlsplit(url)
    headers = {"Authorization": f"Bearer {token}"}
    routes = ["/healthz", "/api/v1/alerts", "/api/v1/agents", "/metrics"]
    while not stop.is_set():
        for route in routes:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            start = time.monotonic()
            try:
                conn.request("GET", route, headers=headers)
                reply = conn.getresponse()
                reply.read()
                status = reply.status
            except OSError as error:
                status = str(error)
            timings.append((start, route, time.monotonic() - start, status))
            conn.close()
        stop.wait(1.0)


def main():
    url, token, pid, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    port, load, agents, after = int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop, timings = threading.Event(), []
    threading.Thread(target=prober, args=(url, token, stop, timings), daemon=True).start()

    began = time.monotonic()
    print(f"pushing {agents} agents x 10 metrics every 2 s for {load:.0f} s", flush=True)
    pusher = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(__file__), "bench-memory-load.py"),
         url + "/api/v1/samples", token, str(pid), str(load), str(agents), "0"],
        stdout=subprocess.DEVNULL)
    samples = []  # (when, rss, cpu share of one core over the last 5 s)
    last_cpu, last_at = cpu_secs(pid), time.monotonic()
    silent_at = None
    while True:
        time.sleep(5)
        now = time.monotonic()
        cpu = cpu_secs(pid)
        samples.append((now, rss_mib(pid), (cpu - last_cpu) / (now - last_at)))
        last_cpu, last_at = cpu, now
        if silent_at is None and pusher.poll() is not None:
            # The pusher ended within the last 5 s: its last round was at most 5 s before.
            silent_at = time.monotonic()
            cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 7))
            offline_before = sum(1 for line in open(log)
                                 if "Agent offline." in line and line[:19] < cutoff)
            print(f"silent at {silent_at - began:.0f} s; agents declared offline while pushing "
                  f"(logged before {cutoff}): {offline_before}", flush=True)
        if silent_at is not None and now - silent_at >= after:
            break
        print(f"{now - began:5.0f} s  RSS {samples[-1][1]:7.1f} MiB  CPU {samples[-1][2]:5.2f} "
              f"cores  notifications {len(Receiver.received)}", flush=True)
    stop.set()
    # Then without the prober: what the controller spends on its own, 10k agents silent and
    # the shipped policy's two workers still reporting.
    time.sleep(3)
    quiet_from, quiet_cpu = time.monotonic(), cpu_secs(pid)
    time.sleep(20)
    unread = (cpu_secs(pid) - quiet_cpu) / (time.monotonic() - quiet_from)

    def slowest(since, until):
        window = [t for t in timings if since <= t[0] < until]
        return max(window, key=lambda t: t[2]) if window else None

    during = slowest(began, silent_at)
    later = slowest(silent_at, time.monotonic())
    failed = [t for t in timings if t[3] != 200]
    notes = [r for r in Receiver.received if r[0] >= silent_at]
    idle_at = None
    for i, (when, _, _) in enumerate(samples):
        if when > silent_at and all(s[2] < 0.05 for s in samples[i:i + 2]) and i + 1 < len(samples):
            idle_at = when
            break
    print("--- storm figures ---")
    print(f"agents: {agents}; load {load:.0f} s, then silent for {after:.0f} s")
    print(f"slowest call while pushing: {during[1]} {during[2] * 1000:.0f} ms" if during else "none")
    print(f"slowest call after the silence: {later[1]} {later[2] * 1000:.0f} ms" if later else "none")
    print(f"calls that failed: {len(failed)} of {len(timings)}")
    if notes:
        print(f"first notification after the silence: {notes[0][0] - silent_at:.1f} s; "
              f"{len(notes)} notifications carrying {sum(n[1] for n in notes)} alerts")
    else:
        print("no notification after the silence")
    print("calls while pushing, by route (p50 / p99 / max ms, how many over 100 ms):")
    for route in sorted({t[1] for t in timings}):
        took = sorted(t[2] * 1000 for t in timings if t[1] == route and began <= t[0] < silent_at)
        if took:
            over = sum(1 for ms in took if ms > 100)
            print(f"  {route:<16} {took[len(took) // 2]:7.1f} / {took[int(len(took) * 0.99)]:7.1f}"
                  f" / {took[-1]:7.1f}  ({over} of {len(took)} over 100 ms)")
    print(f"RSS: max {max(s[1] for s in samples):.0f} MiB, at the end {samples[-1][1]:.0f} MiB")
    # The trend of the last half of the load: a leak shows as a slope, a buffer filling as a
    # slope that flattens.
    half = [(w - began, r) for w, r, _ in samples if began + (silent_at - began) / 2 <= w < silent_at]
    if len(half) > 2:
        n = len(half)
        mx = sum(x for x, _ in half) / n
        my = sum(y for _, y in half) / n
        slope = sum((x - mx) * (y - my) for x, y in half) / sum((x - mx) ** 2 for x, _ in half)
        print(f"RSS trend over the last half of the load: {slope * 600:+.1f} MiB per 10 minutes")
    csv_path = os.environ.get("SAMPLES_CSV")
    if csv_path:
        with open(csv_path, "w") as out:
            out.write("elapsed_s,rss_mib,cpu_cores,pushing\n")
            for when, rss, cpu in samples:
                out.write(f"{when - began:.1f},{rss:.1f},{cpu:.3f},{int(when < silent_at)}\n")
    print(f"idle again (under 5% of a core for 10 s): "
          f"{idle_at - silent_at:.0f} s after the silence" if idle_at else "idle: not within the run")
    print(f"CPU over the last 20 s, the prober stopped: {unread:.3f} cores")


if __name__ == "__main__":
    main()
