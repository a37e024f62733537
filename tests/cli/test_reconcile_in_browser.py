"""What `billing-bridge reconcile --html` writes, opened in Debian's chromium: the every-bucket October read
from a real store renders its summary, three charts and the client table; the screenshot goes to
test-artifacts/reconcile/cli-report.png (docs/images/reconciliation.png is a copy of it).

Skipped when chromium or chromedriver is missing, unless BRIDGE_REQUIRE_SERVICES=1 (then it fails).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.reports.test_report_in_browser import WIDTH, screenshot
from tests.support.browser import start_chromium
from tests.support.reconcile import reconcile

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path / "chromium-profile", monkeypatch, window=f"{WIDTH},900")
    yield driver
    driver.quit()


def test_the_page_the_cli_writes_shows_summary_charts_and_clients(
    clouds: list[str], chromium: WebDriver, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page, table = tmp_path / "october.html", tmp_path / "october.csv"
    code, out, _ = reconcile(capsys, clouds, "--month", "2022-10", "--html", str(page), "--csv", str(table))
    assert code == 0
    assert out.splitlines()[1] == "OpenStack: 6,522.00 h collected, 4,222.67 h billed"

    chromium.get(page.as_uri())
    assert chromium.title == "Reconciliation 2022-10 - billing-bridge"
    assert chromium.find_element(By.ID, "hours-collected").text == "7,266.00"
    assert (
        chromium.find_element(By.ID, "defects").text
        == "✓ Every collected hour of 2022-10 is in exactly one bucket."
    )
    for chart in ("chart-daily", "chart-revenue", "chart-not-billed"):
        svg = chromium.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 100, (chart, svg.size)
        assert svg.find_elements(By.CSS_SELECTOR, "path"), f"{chart} has nothing drawn"
    names = [
        row.find_element(By.CSS_SELECTOR, "summary .name").text
        for row in chromium.find_elements(By.CSS_SELECTOR, "#clients details.client")
    ]
    assert names[:2] == ["Ada Analytics (#1)", "Bob's Bakery (#2)"]
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert screenshot(chromium, "cli-report.png").stat().st_size > 50_000

    with table.open(encoding="utf-8", newline="") as rows:
        held = [row for row in csv.DictReader(rows) if row.get("bucket") == "held"]
    assert held, "the CSV has the held hours"
