"""The HTML report as a document: self-contained, defects first and in red, every section present.

tests/reports/test_report_in_browser.py opens it in a real browser; here its text is read.
"""

from __future__ import annotations

import re
import subprocess
import sys

from bridge.domain.reconciliation import Report


def test_the_page_fetches_nothing(october_page: str) -> None:
    page = october_page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(reference.startswith("#") for reference in references), references
    assert "url(http" not in page and "@import" not in page


def test_the_page_has_the_summary_three_svg_charts_and_a_row_per_client(
    october: Report, october_page: str
) -> None:
    page = october_page
    assert 'id="hours-collected">8,110.00<' in page
    assert 'id="hours-billed">5,512.95<' in page
    assert page.count("<svg") == 3
    for chart in ("chart-daily", "chart-revenue", "chart-not-billed"):
        assert f'id="{chart}"' in page
    assert page.count('<details class="client') == len(october.clients) == 10
    assert "Every collected hour of 2022-10 is in exactly one bucket" in page
    assert "663.19 EUR" in page and "483.67 EUR" in page and "402.00 EUR" in page


def test_a_double_billed_hour_comes_first_in_red(double_billed_page: str) -> None:
    page = double_billed_page
    defects = page.index('<section class="defects" id="defects">')
    assert defects < page.index('id="summary"') < page.index('id="clients"')
    assert "1 defect: 1.00 hours not accounted for exactly once" in page
    assert "billed on INV-2022-0001 and INV-2022-0009" in page
    assert '<details class="client defective">' in page


def test_drawing_no_page_imports_no_plotting_library() -> None:
    code = (
        "import sys, bridge.reports.html_report, bridge.reports.json_report, bridge.reports.csv_report;"
        "print('matplotlib' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
