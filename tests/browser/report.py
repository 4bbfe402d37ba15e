#!/usr/bin/env python3
"""Opens a swarmpilot HTML report in headless Chromium, offline, and checks what it shows.

    python3 tests/browser/report.py --report /path/final-....html --screenshot /tmp/report.png

Steps (each with a deadline, never a fixed sleep):
  1. open the file (file://, no server) and wait for its heading and summary;
  2. check the charts drew (inline SVG with a size and lines) and nothing was fetched;
  3. sort the agents table by clicking a column heading, as a person would, and check the
     rows came out in order;
  4. save the screenshot.

Exits 0 on success; on failure prints why and the browser's console and exits 1.
"""

import argparse
import os
import shutil
import sys
import tempfile

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from chromium import StepFailed, log, start_browser, wait


def open_report(driver, path):
    driver.get("file://" + os.path.abspath(path))
    heading = wait(driver, 20, "the heading", lambda d: d.find_elements(By.TAG_NAME, "h1"))
    title = heading[0].text
    if "swarmpilot" not in title or "report" not in title:
        raise StepFailed(f"unexpected heading {title!r}")
    summary = driver.find_elements(By.CSS_SELECTOR, "#summary p")
    if len(summary) < 3:
        raise StepFailed(f"the summary has {len(summary)} sentences")
    log(f"step 1 ok: {title!r}, {len(summary)} summary sentences")


def check_charts(driver):
    sizes = driver.execute_script(
        """return [...document.querySelectorAll('figure svg')].map((s) => {
             const r = s.getBoundingClientRect();
             return [r.width, r.height, s.querySelectorAll('polyline, path, line').length];
           });"""
    )
    # Each pool's size and CPU; response time only when agents report it.
    if len(sizes) < 2:
        raise StepFailed(f"{len(sizes)} charts drawn, expected at least 2")
    for width, height, lines in sizes:
        if width < 100 or height < 100 or lines == 0:
            raise StepFailed(f"a chart is empty: {width}x{height}, {lines} lines")
    fetched = driver.execute_script("return performance.getEntriesByType('resource').length")
    if fetched:
        raise StepFailed(f"the page fetched {fetched} resources; it must open offline")
    log(f"step 2 ok: {len(sizes)} charts drawn, nothing fetched")


def sort_agents(driver):
    table = driver.find_element(By.CSS_SELECTOR, 'table[data-table="agents"]')
    headers = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    column = headers.index("utilisation_percent")
    table.find_elements(By.TAG_NAME, "th")[column].click()

    def values(d):
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        cells = [r.find_elements(By.TAG_NAME, "td")[column].text for r in rows]
        return [float(c) for c in cells if c]

    got = wait(driver, 5, "the sorted column", lambda d: values(d) or None)
    if got != sorted(got, reverse=True):
        raise StepFailed(f"utilisation_percent not sorted high to low: {got}")
    log(f"step 3 ok: agents sorted by utilisation_percent, {len(got)} rows")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="the HTML report file")
    parser.add_argument("--screenshot", required=True, help="where to save the PNG")
    args = parser.parse_args()

    profile = tempfile.mkdtemp(prefix="swarmpilot-report-")
    driver = None
    try:
        driver = start_browser(profile, size=(1400, 1500))
        open_report(driver, args.report)
        check_charts(driver)
        sort_agents(driver)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(args.screenshot)
        log(f"step 4 ok: screenshot saved to {args.screenshot}")
        log("all steps passed")
        return 0
    except (StepFailed, WebDriverException, ValueError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        if driver is not None:
            for entry in driver.get_log("browser"):
                print(f"  {entry.get('level')}: {entry.get('message')}", file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
