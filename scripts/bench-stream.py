#!/usr/bin/env python3
"""Measures of scripts/bench-stream: the controller's CPU without and with stream clients, and
how long an action log row takes from its write to a client.

Usage: bench-stream.py URL TOKEN SERVER_PID SECS CLIENTS
"""

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request

import websockets

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def post(url, token, path, body):
    request = urllib.request.Request(url + path, json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


async def window(pid, secs, work=None):
    """CPU share of one core used by `pid` over `secs` seconds while `work` runs."""
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    if work is None:
        await asyncio.sleep(secs)
    else:
        await asyncio.wait_for(work, secs + 30)
    return (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


async def client(url, token, stop, counts, delays, measure):
    ws_url = url.replace("http", "ws", 1) + "/api/v1/stream"
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None) as socket:
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(socket.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            arrived = time.time() * 1000
            counts[0] += 1
            # Only the measuring client parses: the others stand for browsers elsewhere.
            if measure and '"topic":"actions"' in text:
                delays.append(arrived - json.loads(text)["entry"]["ts_ms"])


async def with_clients(url, token, pid, secs, clients):
    stop, counts, delays = asyncio.Event(), [0], []
    tasks = [asyncio.create_task(client(url, token, stop, counts, delays, i == 0))
             for i in range(clients)]
    await asyncio.sleep(5)  # connected and past their snapshots

    async def actions():
        size, until = 3, time.monotonic() + secs
        while time.monotonic() < until:
            try:
                await asyncio.to_thread(post, url, token, "/api/v1/actions",
                                        {"pool": "worker", "change": {"type": "scale", "to": size}})
            except urllib.error.HTTPError:
                # The pool is busy with the optimizer's own action: try again shortly.
                await asyncio.sleep(2)
                continue
            size = 5 - size
            await asyncio.sleep(12)  # past the 10 s verification window

    share = await window(pid, secs, actions())
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return share, counts[0], sorted(delays)


async def main():
    url, token, pid, secs, clients = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        float(sys.argv[4]), int(sys.argv[5])
    await asyncio.sleep(20)  # the agents joined and the load is steady
    idle = await window(pid, secs)
    print(f"controller CPU without stream clients: {idle * 100:.1f}% of a core", flush=True)
    busy, received, delays = await with_clients(url, token, pid, secs, clients)
    print(f"controller CPU with {clients} clients: {busy * 100:.1f}% of a core "
          f"(+{(busy - idle) * 100:.1f} points); {received} messages received", flush=True)
    if delays:
        p50, worst = delays[len(delays) // 2], delays[-1]
        print(f"action log row to client: {len(delays)} rows, median {p50:.0f} ms, "
              f"worst {worst:.0f} ms", flush=True)


asyncio.run(main())
