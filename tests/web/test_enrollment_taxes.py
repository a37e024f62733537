"""The sign-up form's country and VAT ID (issue 16, seed 001 "Auto set EU tax exemption"): a business of
another EU member state whose VAT ID VIES confirms becomes a tax exempt client; a VAT ID failing its check
digits is shown back to be corrected, and never reaches VIES."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from bridge.bootstrap import App
from tests.fakes.vies import FakeVies
from tests.web.enrollment_site import Site, accept_terms, running_site, sign_up

FRENCH_VAT_ID = "FR40303265045"
EMAIL = "ada@example.com"


@pytest.fixture
def vies() -> Iterator[FakeVies]:
    with FakeVies() as fake:
        fake.register(FRENCH_VAT_ID)
        yield fake


@pytest.fixture
def site(make_app: Callable[..., App], vies: FakeVies) -> Iterator[Site]:
    with running_site(
        make_app,
        taxes={
            "enabled": True,
            "home_country": "DE",
            "auto_eu_exemption": True,
            "rules": {"DE": {"name": "VAT", "rate": "19"}, "FR": {"name": "TVA", "rate": "20"}},
        },
        vies={"url": vies.url, "attempts": 1, "retry_wait_max_seconds": 0},
    ) as running:
        yield running


def test_a_french_business_signing_up_with_a_confirmed_vat_id_is_tax_exempt(
    site: Site, vies: FakeVies
) -> None:
    browser = requests.Session()
    sent = sign_up(site, browser, country="fr", vat_id="FR 403 032 650 45")
    assert sent.url == site.url("/signup/sent")
    accept_terms(site, browser, site.last_link(EMAIL))
    (client,) = site.app.clients.all()
    assert (client.country, client.vat_id) == ("FR", FRENCH_VAT_ID)
    assert client.exemption is not None and client.exemption.exempt
    assert client.exemption.by == "vies" and "reverse charge" in client.exemption.why
    assert vies.numbers_asked() == [FRENCH_VAT_ID]


def test_a_vat_id_failing_its_check_digits_is_shown_back_and_never_sent(site: Site, vies: FakeVies) -> None:
    browser = requests.Session()
    page = sign_up(site, browser, country="FR", vat_id="FR40303265046")
    assert page.status_code == 400
    assert "This VAT ID fails the check digits" in page.text
    assert 'value="FR40303265046"' in page.text
    assert site.mails() == []
    assert vies.numbers_asked() == []


def test_the_country_and_vat_id_are_optional(site: Site, vies: FakeVies) -> None:
    browser = requests.Session()
    sign_up(site, browser)
    accept_terms(site, browser, site.last_link(EMAIL))
    (client,) = site.app.clients.all()
    assert (client.country, client.vat_id, client.exemption) == (None, None, None)
    assert vies.numbers_asked() == []
