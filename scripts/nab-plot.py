#!/usr/bin/env python3
"""Draws a few NAB series with swarmpilot's anomaly scores and the labelled windows.

Usage: scripts/nab-plot.py [RESULTS_DIR] [OUT_PNG]
  RESULTS_DIR: what scripts/nab-score wrote (default target/nab-results)
  OUT_PNG:     default docs/nab-detections.png
Installs matplotlib with pip when it is missing.
"""
import csv
import json
import os
import subprocess
import sys
from datetime import datetime

try:
    import matplotlib
except ImportError:
    print("nab-plot: installing matplotlib", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"])
    import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
NAB = os.environ.get("NAB_DIR", os.path.join(ROOT, "..", "shared", "nab"))
SERIES = [
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/nyc_taxi.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
]
THRESHOLD = 0.4145  # the standard-profile threshold score.py picked (BENCHMARKS.md)


def parse(ts):
    return datetime.strptime(ts.split(".")[0], "%Y-%m-%d %H:%M:%S")


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "nab-results")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "nab-detections.png")
    with open(os.path.join(NAB, "windows.json")) as f:
        windows = json.load(f)
    fig, axes = plt.subplots(len(SERIES), 1, figsize=(14, 3.2 * len(SERIES)))
    for ax, name in zip(axes, SERIES):
        with open(os.path.join(results, name)) as f:
            rows = list(csv.DictReader(f))
        times = [parse(r["timestamp"]) for r in rows]
        values = [float(r["value"]) for r in rows]
        scores = [float(r["anomaly_score"]) for r in rows]
        ax.plot(times, values, lw=0.6, color="#1f4e79")
        for start, end in windows.get(name, []):
            ax.axvspan(parse(start), parse(end), color="#f4b183", alpha=0.5, lw=0)
        ax.set_title(name, fontsize=10, loc="left")
        twin = ax.twinx()
        twin.set_ylim(0, 1.05)
        twin.plot(times, scores, lw=0.5, color="#7f7f7f", alpha=0.6)
        hits = [(t, s) for t, s in zip(times, scores) if s >= THRESHOLD]
        twin.scatter([t for t, _ in hits], [s for _, s in hits], color="#c00000", s=14, zorder=3)
        twin.set_ylabel("anomaly score", fontsize=8)
    fig.suptitle("swarmpilot detect on NAB: value (blue), labelled windows (orange), "
                 "score (grey), detections above the threshold (red)", fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=90)
    print("wrote", out)


if __name__ == "__main__":
    main()
