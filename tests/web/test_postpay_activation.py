"""Issue 15 point 10: a client the bridge already knows (a WHMCS client, imported or pushed) activates SolusVM
post-pay from the landing page, signed in with the WHMCS panel's single-use link, instead of a sign-up that
would only say "account already exists"."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.domain.clients import LinkKind
from bridge.store.tables import ledger_entries, terms_acceptances
from tests.fakes.solusvm import FakeSolusVM
from tests.web.enrollment_site import Site, csrf_of, running_site, sign_up, solusvm_section

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough

EMAIL = "linus@example.com"
TOKEN = "panel-token-0123456789abcdef"


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM() as fake:
        yield fake


@pytest.fixture
def site(make_app: Callable[..., App], solus: FakeSolusVM) -> Iterator[Site]:
    enrollment = {"panel_token": TOKEN, "postpay_terms_version": "2024-06"}
    with running_site(make_app, enrollment=enrollment, solusvm=solusvm_section(solus)) as running:
        client = running.app.clients.add(email=EMAIL, name="Linus Torvalds")
        running.app.clients.link(str(client.id), LinkKind.WHMCS_CLIENT, "77")
        yield running


def panel(site: Site) -> dict[str, object]:
    answer = requests.get(
        site.url("/api/enrollment"),
        params={"whmcs_client_id": "77"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200
    found = answer.json()
    assert isinstance(found, dict)
    return found


def activate(site: Site, browser: requests.Session, token: str, *documents: str) -> requests.Response:
    data = {"csrf_token": token, **{f"accept_{key}": "yes" for key in documents}}
    return browser.post(site.url("/activate"), data=data, timeout=30, allow_redirects=False)


def test_an_existing_whmcs_client_activates_postpay_from_the_panels_link(
    site: Site, solus: FakeSolusVM
) -> None:
    before = panel(site)
    assert before["enrolled"] is False and before["login_url"] is None
    browser = requests.Session()
    opened = browser.get(str(before["activate_url"]), timeout=10, allow_redirects=False)
    assert (opened.status_code, opened.headers["Location"]) == (303, "/account")
    landing = browser.get(site.url("/"), timeout=10).text
    assert 'id="activate"' in landing and 'id="start"' not in landing  # no sign-up for an existing client

    token = csrf_of(browser.get(site.url("/activate"), timeout=10).text)
    refused = activate(site, browser, token, "terms")
    assert refused.status_code == 400 and "Please accept the Post-Pay Terms" in refused.text
    assert solus.users == {}
    done = activate(site, browser, token, "terms", "postpay_terms")
    assert (done.status_code, done.headers["Location"]) == (303, "/welcome")
    assert [user["email"] for user in solus.users.values()] == [EMAIL]
    assert "Log in to SolusVM" in browser.get(site.url("/welcome"), timeout=10).text

    after = panel(site)
    assert after["enrolled"] is True and str(after["login_url"]).startswith(site.url("/sso/"))
    again = activate(site, browser, token, "terms", "postpay_terms")  # a second submit: nothing made twice
    assert again.status_code == 303 and len(solus.users) == 1
    with site.app.engine.connect() as connection:
        accepted = connection.execute(select(terms_acceptances.c.document, terms_acceptances.c.version)).all()
        assert sorted(map(tuple, accepted)) == [("postpay_terms", "2024-06"), ("terms", "1")]
        assert connection.execute(select(ledger_entries)).all() == []  # no credit booked: money unchanged


def test_signing_up_again_still_makes_no_second_account(site: Site) -> None:
    """The sign-up form keeps its answer for an address with an account (a mail, the same page), and the
    mail now says where to sign in to activate post-pay."""
    browser = requests.Session()
    sent = sign_up(site, browser, email=EMAIL, name="Linus Torvalds")
    assert sent.url == site.url("/signup/sent")
    assert len(site.app.clients.all()) == 1
    body = site.mails(EMAIL)[-1].get_content()
    assert "already exists" in body and site.url("/signin") in body
