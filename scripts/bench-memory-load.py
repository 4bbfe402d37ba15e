#!/usr/bin/env python3
"""Load of scripts/bench-memory: pushes AGENTS agents x METRICS metrics to POST /api/v1/samples
every INTERVAL seconds for DURATION seconds (batches of at most 2,500 agents, under the 4 MiB
body limit), and prints the server's resident memory (VmRSS of /proc/PID/status) every 30 s.
With FILL > 0 it first pushes FILL rounds as fast as the server takes them, stamped INTERVAL
apart in the past, so that the ring buffers are full before the timed run starts.

Usage: bench-memory-load.py URL TOKEN SERVER_PID [DURATION=600] [AGENTS=10000] [FILL=0]
"""

import http.client
import json
import math
import sys
import time
import urllib.parse

# Each metric's (level, swing): a healthy fleet, below every default alert threshold.
METRICS = {"cpu_percent": (30, 10), "memory_percent": (50, 10), "response_time_ms": (200, 50),
           "error_rate": (1, 0.5), "queue_size": (20, 10), "requests_per_sec": (100, 30),
           "disk_read_bytes": (5e5, 2e5), "disk_write_bytes": (3e5, 1e5),
           "net_rx_bytes": (1e6, 3e5), "net_tx_bytes": (8e5, 2e5)}
INTERVAL = 2.0
PER_BATCH = 2500


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def push_round(conn, path, headers, agents, rounds, ts):
    """Pushes one round of every agent's metrics at `ts`; answers the samples accepted."""
    accepted = 0
    for first in range(0, agents, PER_BATCH):
        batch = [{"agent": f"mem-{a}", "metric": m, "timestamp": ts,
                  "value": round(level + swing * math.sin(rounds / 30 + a), 3)}
                 for a in range(first, min(first + PER_BATCH, agents))
                 for m, (level, swing) in METRICS.items()]
        conn.request("POST", path, json.dumps(batch), headers)
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            sys.exit(f"HTTP {reply.status}: {body[:300]!r}")
        accepted += json.loads(body)["accepted"]
    return accepted


def main():
    url, token, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else 600
    agents = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    fill = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    print(f"start: RSS {rss_mib(pid):.1f} MiB", flush=True)
    rounds = accepted = 0
    if fill > 0:
        fill_start = time.monotonic()
        now_ms = int(time.time() * 1000)
        print(f"filling: {fill} rounds stamped {INTERVAL:.0f} s apart, ending now", flush=True)
        for r in range(fill):
            ts = now_ms - int((fill - r) * INTERVAL * 1000)
            accepted += push_round(conn, target.path, headers, agents, rounds, ts)
            rounds += 1
            if rounds % 50 == 0 or rounds == fill:
                print(f"  filled {rounds}/{fill} rounds in {time.monotonic() - fill_start:.0f} s,"
                      f" RSS {rss_mib(pid):.1f} MiB", flush=True)
    start = time.monotonic()
    print("elapsed_s  rounds  samples_accepted  RSS_MiB  push_s_last_round", flush=True)
    print(f"{0:9.0f}  {rounds:6d}  {accepted:16d}  {rss_mib(pid):7.1f}", flush=True)
    next_report = 30.0
    while time.monotonic() - start < duration:
        round_start = time.monotonic()
        ts = int(time.time() * 1000)
        accepted += push_round(conn, target.path, headers, agents, rounds, ts)
        rounds += 1
        push_s = time.monotonic() - round_start
        elapsed = time.monotonic() - start
        if elapsed >= next_report:
            print(f"{elapsed:9.0f}  {rounds:6d}  {accepted:16d}  {rss_mib(pid):7.1f}  {push_s:6.2f}",
                  flush=True)
            next_report += 30.0
        time.sleep(max(0.0, INTERVAL - push_s))
    print(f"end: {rounds} rounds, {accepted} samples accepted, RSS {rss_mib(pid):.1f} MiB",
          flush=True)


if __name__ == "__main__":
    main()
