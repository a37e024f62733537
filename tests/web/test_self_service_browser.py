"""Issue 19's acceptance in a real browser (Debian's chromium, as the sign-up browser test): a client signs
in, switches auto-invoicing to a fixed 200, the operator sees it in `client show`, and the client downloads
an invoice PDF. Screenshots of each page go to test-artifacts/self-service/.

The README's screenshot tour (docs/images/tour-*.png) comes from this test: run it with
BRIDGE_REGENERATE_SCREENSHOTS=1 to write them again (the PDF's first page through pdftoppm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from bridge.bootstrap import App
from tests.documents.conftest import pdf_tools, poppler  # noqa: F401 (pdf_tools: a fixture)
from tests.support.browser import start_chromium
from tests.support.cli import run_cli
from tests.web.enrollment_site import PASSWORD, Site, running_site
from tests.web.self_service_site import EMAIL, SECTIONS, signed_up_client, with_an_invoice

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "self-service"
TOUR = ROOT / "docs" / "images"
REGENERATE = os.environ.get("BRIDGE_REGENERATE_SCREENSHOTS") == "1"


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path / "chromium-profile", monkeypatch, window="1100,1500")
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "downloads")}
    )
    yield driver
    driver.quit()


@pytest.fixture
def site(make_app: Callable[..., App]) -> Iterator[Site]:
    with running_site(make_app, **SECTIONS) as running:
        yield running


class Pages:
    """The browser, with a numbered screenshot per page (and, when regenerating, the README's tour)."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver
        self.shots: list[Path] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str, tour: str | None = None) -> None:
        path = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot at {path}"
        self.shots.append(path)
        if tour and REGENERATE:
            shutil.copyfile(path, TOUR / f"tour-{tour}.png")

    def wait_for(self, url: str) -> None:
        WebDriverWait(self.driver, 15).until(expected_conditions.url_to_be(url))

    def by_id(self, element_id: str) -> str:
        return str(self.driver.find_element(By.ID, element_id).text)

    def click(self, element_id: str) -> None:
        self.driver.find_element(By.ID, element_id).click()

    def type(self, element_id: str, text: str) -> None:
        box = self.driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(text)


@pytest.mark.usefixtures("pdf_tools")
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_client_signs_in_switches_to_a_fixed_200_and_downloads_an_invoice_pdf(
    chromium: WebDriver,
    site: Site,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client_id = signed_up_client(site)
    with_an_invoice(site, client_id)
    (invoice,) = site.app.views.invoices(client_id=client_id)
    pages = Pages(chromium)
    chromium.get(site.url("/signup"))
    pages.shot("signup", tour="signup")
    # sign in
    chromium.get(site.url("/signin"))
    pages.shot("signin")
    pages.type("email", EMAIL)
    pages.type("password", PASSWORD)
    pages.click("submit")
    pages.wait_for(site.url("/account"))
    assert pages.by_id("credit") == "-28.00 USD"
    assert pages.by_id("burn-rate") == "1.0000 USD/h"
    pages.shot("account")
    # a fixed 200 top-up (seed 000)
    pages.click("mode-fixed")
    pages.type("fixed-amount", "200")
    pages.click("save-auto-invoicing")
    pages.wait_for(site.url("/account?saved=1"))
    assert "on, a fixed amount of 200.00 USD" in pages.by_id("auto-invoicing-now")
    pages.shot("fixed-200", tour="account")
    settings = tmp_path / "operator.toml"
    settings.write_text(f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\n')
    code, out, _ = run_cli(capsys, "--config", str(settings), "client", "show", EMAIL)
    assert code == 0
    assert "auto-invoicing     on, a fixed amount of 200.00 USD (the client's choice)" in out
    assert f"by client {client_id} (self-service from 127.0.0.1): fixed:120.00 -> fixed:200.00" in out
    # the invoice, as HTML and as a PDF download
    pages.click(f"invoice-{invoice.id}-html")
    pages.wait_for(site.url(f"/account/invoices/{invoice.id}"))
    assert "Nimbus Hosting" in chromium.page_source
    pages.shot("invoice-html", tour="invoice")
    chromium.back()
    pages.wait_for(site.url("/account?saved=1"))
    pages.click(f"invoice-{invoice.id}-pdf")
    pdf = tmp_path / "downloads" / f"invoice-{invoice.display_number}.pdf"
    WebDriverWait(chromium, 30).until(lambda _: pdf.exists() and pdf.read_bytes().endswith(b"%%EOF\n"))
    assert "Nimbus Hosting" in poppler("pdftotext", pdf, "-")
    page = ARTIFACTS / f"{len(pages.shots) + 1:02d}-invoice-pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(page)], check=True)
    if REGENERATE:
        shutil.copyfile(page.with_suffix(".png"), TOUR / "tour-invoice-pdf.png")
    assert all(path.stat().st_size > 1000 for path in [*pages.shots, page.with_suffix(".png")])
