"""Times `swarmpilot hook` runs from spawn to exit (see scripts/bench-hook).

Usage: bench-hook.py BINARY N, with SWARMPILOT_URL and SWARMPILOT_TOKEN set.
"""

import os
import subprocess
import sys
import time


def timed(argv, env):
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or done.stderr:
        sys.exit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr}")
    return elapsed


def summary(name, times):
    times = sorted(times)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"{name:<34} p50 {p(0.5):6.1f} ms   p95 {p(0.95):6.1f} ms   max {times[-1]:6.1f} ms")


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    env = dict(os.environ, SWARMPILOT_AGENT="bench-agent", SWARMPILOT_POOL="external")
    run = f"{os.getpid()}"
    version, pre, post = [], [], []
    for i in range(n):
        version.append(timed([binary, "--version"], env))
        task = f"bench-{run}-{i}"
        pre.append(timed([binary, "hook", "pre-task", "--task", task], env))
        post.append(
            timed(
                [binary, "hook", "post-task", "--task", task, "--model", "gpt-4o-mini",
                 "--provider", "openai", "--tokens-in", "1200", "--tokens-out", "300"],
                env,
            )
        )
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{n} tasks", file=sys.stderr, flush=True)
    summary("swarmpilot --version (start only)", version)
    summary("hook pre-task", pre)
    summary("hook post-task (with tokens)", post)


if __name__ == "__main__":
    main()
