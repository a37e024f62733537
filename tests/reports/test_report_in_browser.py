"""The HTML report in a real browser: Debian's chromium opens the every-bucket October from a file and the
summary, the three charts and the client table render; screenshots go to test-artifacts/reconcile/.

Skipped when chromium or chromedriver is missing, unless BRIDGE_REQUIRE_SERVICES=1 (then it fails); see
tests/support/browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from bridge.domain.reconciliation import Report
from bridge.reports.html_report import write_html
from tests.support.browser import start_chromium

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "reconcile"
WIDTH = 1280


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path / "chromium-profile", monkeypatch, window=f"{WIDTH},900")
    yield driver
    driver.quit()


def open_report(driver: WebDriver, report: Report, directory: Path) -> None:
    page = directory / "reconciliation-2022-10.html"
    with page.open("w", encoding="utf-8") as out:
        write_html(report.summary, report.clients, out)
    driver.get(page.as_uri())


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, however long: the window grows to the document's height first."""
    driver.execute_script("window.scrollTo(0, 0)")
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, height + 120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
    return path


def test_the_summary_three_charts_and_the_client_table_render(
    chromium: WebDriver, october: Report, tmp_path: Path
) -> None:
    open_report(chromium, october, tmp_path)
    assert chromium.title == "Reconciliation 2022-10 - billing-bridge"
    assert chromium.find_element(By.ID, "hours-collected").text == "8,110.00"
    assert chromium.find_element(By.ID, "hours-billed").text == "5,512.95"
    assert (
        chromium.find_element(By.ID, "defects").text
        == "✓ Every collected hour of 2022-10 is in exactly one bucket."
    )
    for chart in ("chart-daily", "chart-revenue", "chart-not-billed"):
        svg = chromium.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 100, (chart, svg.size)
        assert svg.find_elements(By.CSS_SELECTOR, "path"), f"{chart} has nothing drawn"
    rows = chromium.find_elements(By.CSS_SELECTOR, "#clients details.client")
    assert [row.find_element(By.CSS_SELECTOR, "summary .name").text for row in rows][:3] == [
        "Ada Analytics (#1)",
        "Bob's Bakery (#2)",
        "Carol's Clinic (#3)",
    ]
    bob = rows[1]
    assert not bob.find_element(By.CSS_SELECTOR, ".drill").is_displayed()
    bob.find_element(By.TAG_NAME, "summary").click()
    drill = bob.find_element(By.CSS_SELECTOR, ".drill")
    assert drill.is_displayed()
    assert "the billable-seconds cap" in drill.text and "7.73 EUR not charged" in drill.text
    fetched = chromium.execute_script("return performance.getEntriesByType('resource').length")
    assert fetched == 0, "the report fetched something"
    assert screenshot(chromium, "report.png").stat().st_size > 50_000


def test_a_double_billed_hour_shows_first_in_red(
    chromium: WebDriver, double_billed: Report, tmp_path: Path
) -> None:
    open_report(chromium, double_billed, tmp_path)
    defects = chromium.find_element(By.ID, "defects")
    first_section = chromium.find_element(By.CSS_SELECTOR, "main > section")
    assert first_section == defects
    assert defects.value_of_css_property("border-top-color") == "rgba(180, 35, 24, 1)"  # DEFECT_RED
    assert "1 defect: 1.00 hours not accounted for exactly once" in defects.text
    assert "web-1" in defects.text and "billed on INV-2022-0001 and INV-2022-0009" in defects.text
    screenshot(chromium, "report-with-a-defect.png")
