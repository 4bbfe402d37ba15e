#!/usr/bin/env python3
"""Drives the swarmpilot dashboard in headless Chromium against a running controller.

    python3 tests/browser/dashboard.py --url http://127.0.0.1:18080 --token TOKEN \
        --screenshot /tmp/fleet.png [--timeout 120]

Steps (each with a deadline, never a fixed sleep):
  1. sign in with the token and wait for the live stream (#conn-status says "live");
  2. on the fleet view, read an agent's CPU and wait until it changes without a reload;
  3. open Approvals by its nav link, wait for a pending restart, comment and approve it;
  4. open Log by its nav link and wait until that action's row is in state "applied";
  5. go back to Fleet, wait for the charts to draw, and save the screenshot.

Meant for a demo controller (`swarmpilot demo`), whose leaking worker gets a restart that
waits for approval. Exits 0 on success; on failure prints why and the browser's console, saves
`<screenshot>-failure.png` beside the screenshot, and exits 1.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from chromium import StepFailed, log, start_browser, wait

# Action states after which a restart will never become "applied".
DEAD_ENDS = {"rejected", "expired", "failed", "rolled_back", "superseded"}


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def click_nav(driver, name):
    """Opens a view by clicking its link in the header, as a person would."""
    driver.find_element(By.CSS_SELECTOR, f'a[data-nav="{name}"]').click()
    wait(driver, 10, f"the {name} view", lambda d: d.execute_script("return location.hash") == f"#/{name}")


def sign_in(driver, url, token):
    driver.get(url)
    field = wait(driver, 20, "the token form", lambda d: visible(d, "#token-input"))
    field.send_keys(token)
    driver.find_element(By.ID, "token-submit").click()

    def live_or_refused(d):
        error = d.find_element(By.ID, "login-error")
        if error.is_displayed() and error.text:
            raise StepFailed(f"the token was refused: {error.text}")
        return d.find_element(By.ID, "conn-status").text.strip() == "live"

    wait(driver, 30, '#conn-status to say "live"', live_or_refused)
    role = driver.find_element(By.ID, "role").text
    log(f"step 1 ok: signed in as {role}, stream live")


def visible(driver, selector):
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found and found[0].is_displayed() else None


# [agent id, CPU text] of the row of agent arguments[0], or (when null) of the first agent
# that reports (a number, and a status other than offline or starting).
READ_CPU = """
const cpu = (row) => row.querySelector('[data-metric="cpu_percent"]')?.textContent.trim() ?? '';
const reporting = (row) => /^-?[0-9.]+$/.test(cpu(row))
  && !['offline', 'starting'].includes(row.dataset.status);
const rows = [...document.querySelectorAll('tr[data-agent]')];
const want = arguments[0];
const row = want ? rows.find((r) => r.dataset.agent === want) : rows.find(reporting);
return row ? [row.dataset.agent, cpu(row)] : null;
"""


def live_cpu_update(driver, timeout):
    js(driver, "window.__noReload = true")
    first = wait(driver, 30, "an agent row with a CPU value", lambda d: js(d, READ_CPU, None))
    agent, value = first
    log(f"step 2: agent {agent} shows CPU {value}; waiting for a live change")
    state = {"agent": agent, "value": value}

    def changed(d):
        if not js(d, "return window.__noReload === true"):
            raise StepFailed("the page reloaded")
        now = js(d, READ_CPU, state["agent"])
        if now is None:
            # The agent left (scaled in or replaced): follow another one.
            now = js(d, READ_CPU, None)
            if now:
                state["agent"], state["value"] = now
            return False
        return now[1] if now[1] != state["value"] else False

    new = wait(driver, timeout, f"the CPU of {state['agent']} to change from {state['value']}", changed)
    log(f"step 2 ok: agent {state['agent']} CPU {state['value']} -> {new} (no reload)")


FIND_RESTART = """
const card = document.querySelector('div[data-action-id][data-kind="restart"]');
return card && card.querySelector('button[data-act="approve"]') ? card.dataset.actionId : null;
"""

CARD_TEXT = """
const card = document.querySelector(`div[data-action-id="${arguments[0]}"]`);
return card ? card.textContent : null;
"""

ERROR_TOASTS = "return [...document.querySelectorAll('.toast.error')].map((t) => t.textContent)"


def approve_restart(driver, timeout):
    click_nav(driver, "approvals")
    log("step 3: on Approvals, waiting for a pending restart")
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StepFailed(f"no restart could be approved within {timeout} s")
        action_id = wait(driver, remaining, "a pending restart card", lambda d: js(d, FIND_RESTART))
        card = driver.find_element(By.CSS_SELECTOR, f'div[data-action-id="{action_id}"]')
        log(f"step 3: restart #{action_id} is waiting: {card.find_element(By.CSS_SELECTOR, '.reason').text}")
        errors_before = len(js(driver, ERROR_TOASTS))
        try:
            card.find_element(By.TAG_NAME, "textarea").send_keys("approved by the browser test")
            card.find_element(By.CSS_SELECTOR, 'button[data-act="approve"]').click()
        except WebDriverException as error:
            log(f"step 3: card #{action_id} went away before approval ({error.__class__.__name__}); waiting for another")
            continue

        def decided(d):
            errors = js(d, ERROR_TOASTS)
            if len(errors) > errors_before:
                return ("error", errors[-1])
            text = js(d, CARD_TEXT, action_id)
            if text is None:
                return ("ok", None)
            # A card kept after our approval because it needs another person's is a failure
            # of the demo's policy (its restart should wait for one approver), not a wait.
            so_far = re.search(r"(\d+) of (\d+) approvals", text)
            if so_far and 0 < int(so_far.group(1)) < int(so_far.group(2)):
                raise StepFailed(f"restart #{action_id} needs approvals from more people: {so_far.group(0)}")
            return False

        outcome, message = wait(driver, 20, f"restart #{action_id} to leave the approvals", decided)
        if outcome == "ok":
            log(f"step 3 ok: approved restart #{action_id}")
            return action_id
        log(f"step 3: approving #{action_id} failed ({message}); waiting for another restart")


def wait_applied(driver, action_id, timeout):
    click_nav(driver, "log")
    log(f"step 4: on Log, waiting for action #{action_id} to be applied")
    row = f'tr[data-log-action="{action_id}"]'

    def applied(d):
        found = d.find_elements(By.CSS_SELECTOR, row)
        if not found:
            return False
        state = found[0].get_attribute("data-state")
        if state in DEAD_ENDS:
            raise StepFailed(f"action #{action_id} ended {state}, not applied")
        return state == "applied"

    wait(driver, timeout, f'{row}[data-state="applied"]', applied)
    log(f"step 4 ok: action #{action_id} applied, row updated live")


# True once a canvas has at least one drawn (non-transparent) pixel.
CANVAS_DRAWN = """
const canvas = document.querySelector(arguments[0]);
if (!canvas || !canvas.width || !canvas.height) return false;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
return false;
"""


MODELS_TEXT = """
const span = document.querySelector('article.pool[data-pool="worker"] .models');
return span ? span.textContent : null;
"""


def fleet_screenshot(driver, path):
    click_nav(driver, "fleet")
    # The demo's workers call a mock model provider: the pool card sums their model use.
    models = wait(driver, 30, "the worker pool's model use", lambda d: js(d, MODELS_TEXT))
    if "tokens/s in" not in models:
        raise StepFailed(f"the pool card's model use reads {models!r}")
    log(f"step 5: the worker pool shows {models!r}")
    for what, selector in [("a pool chart", "article.pool .uplot canvas"),
                           ("an agent sparkline", "tr[data-agent] td.metric .uplot canvas")]:
        wait(driver, 30, f"{what} to draw", lambda d, s=selector: js(d, CANVAS_DRAWN, s))
    driver.save_screenshot(path)
    log(f"step 5 ok: charts drawn, screenshot saved to {path}")


def report_failure(driver, screenshot, error):
    print(f"FAILED: {error}", file=sys.stderr, flush=True)
    if driver is None:
        return
    root, ext = os.path.splitext(screenshot)
    failure = f"{root}-failure{ext or '.png'}"
    try:
        driver.save_screenshot(failure)
        print(f"failure screenshot: {failure}", file=sys.stderr)
    except WebDriverException as shot_error:
        print(f"(no failure screenshot: {shot_error.msg})", file=sys.stderr)
    try:
        entries = driver.get_log("browser")
    except WebDriverException:
        entries = []
    print(f"browser console ({len(entries)} entries):", file=sys.stderr)
    for entry in entries:
        print(f"  {entry.get('level')}: {entry.get('message')}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the dashboard, e.g. http://127.0.0.1:18080")
    parser.add_argument("--token", required=True, help="an approver or admin token")
    parser.add_argument("--screenshot", required=True, help="where to save the fleet view PNG")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for each long wait (default 120)")
    args = parser.parse_args()

    profile = tempfile.mkdtemp(prefix="swarmpilot-browser-")
    driver = None
    try:
        driver = start_browser(profile)
        log(f"chromium {driver.capabilities.get('browserVersion', '?')} started")
        sign_in(driver, args.url, args.token)
        live_cpu_update(driver, args.timeout)
        action_id = approve_restart(driver, args.timeout)
        wait_applied(driver, action_id, args.timeout)
        fleet_screenshot(driver, args.screenshot)
        log("all steps passed")
        return 0
    except (StepFailed, WebDriverException) as error:
        report_failure(driver, args.screenshot, error)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
