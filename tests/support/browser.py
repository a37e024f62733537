"""Debian's chromium driven by Debian's chromedriver, headless, for the browser tests.

Skipped when chromium or chromedriver is missing, unless BRIDGE_REQUIRE_SERVICES=1 (then it fails);
`make test` installs both from Debian (scripts/ensure-system-packages). Nothing is ever downloaded: the
driver and the browser are given by path, so Selenium Manager is never asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.support.databases import services_required

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def start_chromium(profile: Path, monkeypatch: pytest.MonkeyPatch, window: str = "1100,900") -> WebDriver:
    """A headless chromium with its profile in ``profile``; skips (or fails) when it is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"{CHROMIUM} or {CHROMEDRIVER} is missing (`make system-packages` installs them)"
        if services_required():
            pytest.fail(f"{message}; BRIDGE_REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(message)
    monkeypatch.setenv("SE_OFFLINE", "true")  # belt and braces: Selenium Manager must not download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={window}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver
