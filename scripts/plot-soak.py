#!/usr/bin/env python3
"""Draws a soak run's RSS and CPU over time from the samples `scripts/bench-storm` keeps.

Usage: AGENTS=2000 LOAD=3900 AFTER=30 SAMPLES_CSV=soak.csv scripts/bench-storm
       scripts/plot-soak.py soak.csv docs/soak-2000-agents.png [TITLE]

Prints the RSS trend (least squares, MiB per 10 minutes) over each quarter of the push, so a
buffer filling (a slope that flattens) tells itself from a leak (a slope that stays).
Installs matplotlib with pip when it is missing.
"""

import csv
import subprocess
import sys

try:
    import matplotlib
except ImportError:
    print("plot-soak: installing matplotlib", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"])
    import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def slope(points):
    """Least-squares slope of (x, y) points, y per x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    title = sys.argv[3] if len(sys.argv) > 3 else "soak"
    t = [float(r["elapsed_s"]) / 60 for r in rows]
    rss = [float(r["rss_mib"]) for r in rows]
    cpu = [float(r["cpu_cores"]) for r in rows]
    pushing = [(m, r) for m, r, row in zip(t, rss, rows) if row["pushing"] == "1" and m >= 0]
    end = max(m for m, _ in pushing)
    for q in range(4):
        part = [(m, r) for m, r in pushing if q * end / 4 <= m < (q + 1) * end / 4]
        if len(part) > 2:
            print(f"RSS trend, minutes {q * end / 4:4.0f} to {(q + 1) * end / 4:4.0f}: "
                  f"{slope(part) * 10:+6.1f} MiB per 10 minutes "
                  f"({part[0][1]:.0f} to {part[-1][1]:.0f} MiB)")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(t, rss, color="tab:blue")
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.set_title(title)
    bottom.plot(t, cpu, color="tab:orange", linewidth=0.8)
    bottom.set_ylabel("CPU (cores)")
    bottom.set_xlabel("minutes since the push began")
    bottom.grid(alpha=0.3)
    for axis in (top, bottom):
        axis.axvline(end, color="grey", linestyle="--", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
