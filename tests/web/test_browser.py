"""A real browser through the six steps: Debian's chromium, driven by Debian's chromedriver, clicks
through the pages served by the bridge, with a screenshot of each page in test-artifacts/enrollment/.

Skipped when chromium or chromedriver is missing, unless BRIDGE_REQUIRE_SERVICES=1 (then it fails);
`make test` installs both from Debian (scripts/ensure-system-packages). Nothing is ever downloaded: the
driver and the browser are given by path, so Selenium Manager is never asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from bridge.bootstrap import App
from tests.fakes.solusvm import FakeSolusVM
from tests.support.databases import services_required
from tests.web.enrollment_site import PASSWORD, Site, running_site, solusvm_section

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "enrollment"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,900",
)
EMAIL = "ada@example.com"


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"{CHROMIUM} or {CHROMEDRIVER} is missing (`make system-packages` installs them)"
        if services_required():
            pytest.fail(f"{message}; BRIDGE_REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(message)
    monkeypatch.setenv("SE_OFFLINE", "true")  # belt and braces: Selenium Manager must not download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM() as fake:
        yield fake


@pytest.fixture
def site(make_app: Callable[..., App], solus: FakeSolusVM) -> Iterator[Site]:
    with running_site(
        make_app,
        enrollment={"company_name": "Nimbus Hosting", "postpay_terms_version": "2024-06"},
        solusvm=solusvm_section(solus),
    ) as running:
        yield running


class Pages:
    """The browser, with a wait and a numbered screenshot per page."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver
        self.shots: list[Path] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        path = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot at {path}"
        self.shots.append(path)

    def wait_for(self, url: str) -> None:
        WebDriverWait(self.driver, 15).until(expected_conditions.url_to_be(url))

    def heading(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "h1").text)

    def fill(self, **fields: str) -> None:
        for name, value in fields.items():
            box = self.driver.find_element(By.NAME, name)
            box.clear()
            box.send_keys(value)

    def click(self, element_id: str) -> None:
        self.driver.find_element(By.ID, element_id).click()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_person_signs_up_in_a_real_browser_and_lands_in_solusvm(
    chromium: WebDriver, site: Site, solus: FakeSolusVM
) -> None:
    pages = Pages(chromium)
    # 1. landing page
    chromium.get(site.url("/"))
    assert pages.heading() == "Cloud servers, billed after use"
    assert "Nimbus Hosting" in chromium.title
    pages.shot("landing")
    pages.click("start")
    pages.wait_for(site.url("/signup"))
    # 2. the form: first with a weak password, then right
    pages.shot("signup-form")
    pages.fill(name="Ada Lovelace", company="Analytical Engines", email=EMAIL)
    pages.fill(password="short1", password_confirm="short1")
    pages.click("submit")
    WebDriverWait(chromium, 15).until(
        expected_conditions.presence_of_element_located((By.ID, "password-error"))
    )
    assert "Use at least 10 characters" in chromium.find_element(By.ID, "password-error").text
    assert chromium.find_element(By.NAME, "email").get_attribute("value") == EMAIL
    pages.shot("signup-errors")
    pages.fill(password=PASSWORD, password_confirm=PASSWORD)
    pages.click("submit")
    pages.wait_for(site.url("/signup/sent"))
    assert pages.heading() == "Check your email"
    pages.shot("check-your-email")
    # 3. + 4. the link from the mail, and the terms
    link = site.last_link(EMAIL)
    chromium.get(link)
    assert pages.heading() == "Almost there, Ada Lovelace"
    pages.shot("terms")
    pages.click("accept_terms")
    pages.click("accept_postpay_terms")
    pages.click("submit")
    # 5. + 6. the account, and the login button
    pages.wait_for(site.url("/welcome"))
    assert pages.heading() == "Welcome, Ada Lovelace"
    assert [client.email for client in site.app.clients.all()] == [EMAIL]
    pages.shot("welcome")
    pages.click("sso")
    WebDriverWait(chromium, 15).until(expected_conditions.url_contains(f"{solus.url}/auth/by_token?token="))
    ((user_id, _),) = solus.login_tokens
    assert solus.users[user_id]["email"] == EMAIL
    pages.shot("solusvm-single-sign-on")
    # The link again, in a browser that is not signed in: used.
    chromium.delete_all_cookies()
    chromium.get(link)
    assert pages.heading() == "This link has already been used"
    pages.shot("link-already-used")

    assert len(solus.users) == 1
    assert all(path.stat().st_size > 1000 for path in pages.shots)
    assert requests.get(site.url("/"), timeout=10).status_code == 200
