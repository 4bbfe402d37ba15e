"""What the browser tests share: Debian's headless Chromium through Selenium, timed logs, and
waits with a deadline that fail naming what they waited for."""

import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
POLL = 0.25


class StepFailed(Exception):
    """A step missed its deadline or saw something wrong."""


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_browser(profile_dir, size=(1400, 1000)):
    """Headless Chromium with its own profile, keeping the page's console for failures."""
    options = Options()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS + [f"--window-size={size[0]},{size[1]}"]:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(driver, seconds, what, condition):
    """Waits until `condition(driver)` is truthy, answering it; fails naming `what`."""
    try:
        return WebDriverWait(driver, seconds, poll_frequency=POLL).until(condition)
    except TimeoutException:
        raise StepFailed(f"timed out after {seconds:.0f} s waiting for {what}") from None
