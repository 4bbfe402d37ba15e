#!/usr/bin/env python3
"""First render of the dashboard (issue 19): signs in once in Debian's headless Chromium, then
loads the fleet view ROUNDS times (a reload each; the token stays in the tab's
sessionStorage) and times, from the navigation's start (performance.timeOrigin):
  - rows: the first agent row shows a CPU value;
  - all:  every agent the controller lists (X-Total-Count) has its row;
  - live: the event stream is open (#conn-status says "live").
Prints each round and the median and worst of each.

Usage: bench-dashboard.py URL TOKEN AGENTS [ROUNDS=10]
"""

import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/scripts/", 1)[0] + "/tests/browser")
from dashboard import sign_in, start_browser  # noqa: E402

# Runs in each new document before the page's own scripts: marks, in milliseconds since the
# navigation began, when each milestone is first seen in the DOM.
OBSERVER = """
window.__marks = {};
new MutationObserver(() => {
  const marks = window.__marks;
  const now = performance.now();
  if (marks.rows === undefined) {
    const cell = document.querySelector('tr[data-agent] [data-metric="cpu_percent"]');
    if (cell && /\\d/.test(cell.textContent)) marks.rows = now;
  }
  if (marks.all === undefined && document.querySelectorAll('tr[data-agent]').length >= AGENTS) {
    marks.all = now;
  }
  const status = document.getElementById('conn-status');
  if (marks.live === undefined && status && status.textContent.trim() === 'live') marks.live = now;
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def one_round(driver, url, n):
    # A new query string makes it a full navigation (a hash change alone would not reload).
    driver.get(f"{url}/?round={n}#/fleet")
    deadline = time.monotonic() + 30
    marks = {}
    while len(marks) < 3 and time.monotonic() < deadline:
        marks = driver.execute_script("return window.__marks || {};")
    return marks


def main():
    url, token, agents = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    with tempfile.TemporaryDirectory() as profile:
        driver = start_browser(profile)
        try:
            sign_in(driver, url, token)
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                   {"source": OBSERVER.replace("AGENTS", str(agents))})
            results = []
            for n in range(rounds):
                seen = one_round(driver, url, n)
                results.append(seen)
                print(f"round {n + 1}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in seen.items()),
                      flush=True)
        finally:
            driver.quit()
    for key in ("rows", "all", "live"):
        values = [r[key] for r in results if key in r]
        missing = len(results) - len(values)
        if values:
            print(f"{key}: median {statistics.median(values):.0f} ms, worst {max(values):.0f} ms"
                  + (f", missing in {missing} rounds" if missing else ""))
        else:
            print(f"{key}: never within 30 s")


if __name__ == "__main__":
    main()
