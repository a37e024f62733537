"""Step 5 when SolusVM is off, slow, or already knows the person: the account is still made once, the
login page says what happened, and the SolusVM user follows when SolusVM can make it (never with a kept
password)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from bridge.bootstrap import App
from bridge.domain.clients import LinkKind
from bridge.store.enrollment import SolusVMState
from tests.fakes.solusvm import FakeSolusVM
from tests.web.enrollment_site import PASSWORD, Site, accept_terms, running_site, sign_up, solusvm_section

EMAIL = "ada@example.com"


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM() as fake:
        yield fake


def enroll(site: Site) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    sign_up(site, browser)
    return browser, accept_terms(site, browser, site.last_link(EMAIL))


def solusvm_state(site: Site) -> SolusVMState:
    (enrollment,) = site.service.recent()
    return enrollment.solusvm_state


def test_without_solusvm_the_client_is_made_the_page_says_so_and_the_user_follows_later(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    with running_site(make_app) as site:
        browser, welcome = enroll(site)
        assert "Welcome, Ada Lovelace" in welcome.text
        assert "SolusVM is not connected to this billing system yet" in welcome.text
        assert '<button type="button" disabled id="sso">Log in to SolusVM</button>' in welcome.text
        sso = browser.get(site.url("/sso"), timeout=10)
        assert sso.status_code == 503
        assert "SolusVM is not connected to this billing system yet" in sso.text
        assert [client.email for client in site.app.clients.all()] == [EMAIL]

    # Later the operator connects SolusVM; the scheduled retry makes the user, with a random password.
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        assert site.service.retry_pending() == 1
        (user,) = solus.users.values()
        assert user["email"] == EMAIL
        assert solus.passwords[user["id"]] != PASSWORD, "the chosen password was never kept"
        assert solusvm_state(site) is SolusVMState.NO_PASSWORD
        assert site.app.clients.get(EMAIL).external_ids(LinkKind.SOLUSVM_USER) == [str(user["id"])]
        welcome = browser.get(site.url("/welcome"), timeout=10)
        assert "The password you chose\n  could not be used for it" in welcome.text
        sso = browser.get(site.url("/sso"), allow_redirects=False, timeout=10)
        assert sso.headers["Location"].startswith(f"{solus.url}/auth/by_token?token=")
        assert site.service.retry_pending() == 0, "nothing left to do"


def test_solusvm_not_answering_defers_the_user_and_the_login_button_makes_it(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    solus.fail_next(1, status=503, method="POST", path="/api/v1/users")
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        browser, welcome = enroll(site)
        assert "SolusVM did not answer just now" in welcome.text
        assert solus.users == {}
        (enrollment,) = site.service.recent()
        assert enrollment.solusvm_state is SolusVMState.PENDING
        assert "HTTP 503" in (enrollment.solusvm_error or "")

        sso = browser.get(site.url("/sso"), allow_redirects=False, timeout=10)
        assert sso.status_code == 303
        assert sso.headers["Location"].startswith(f"{solus.url}/auth/by_token?token=")
        assert len(solus.users) == 1
        assert solusvm_state(site) is SolusVMState.NO_PASSWORD


def test_a_create_whose_answer_was_lost_is_settled_by_lookup_into_one_user(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    solus.commit_then_drop_next(method="POST", path="/api/v1/users")
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        _, welcome = enroll(site)
        assert "Your SolusVM login is ready." in welcome.text
        (user,) = solus.users.values()
        assert solus.passwords[user["id"]] == PASSWORD
        assert solusvm_state(site) is SolusVMState.CREATED


def test_an_existing_solusvm_user_is_linked_and_keeps_its_password(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    existing = solus.add_user(EMAIL, password="their-old-Passw0rd")
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        browser, welcome = enroll(site)
        assert "You already had a SolusVM login with this email address" in welcome.text
        assert solus.requests_to("POST", "/api/v1/users") == []
        assert solus.passwords[existing["id"]] == "their-old-Passw0rd"
        assert site.app.clients.get(EMAIL).external_ids(LinkKind.SOLUSVM_USER) == [str(existing["id"])]
        sso = browser.get(site.url("/sso"), allow_redirects=False, timeout=10)
        assert sso.status_code == 303


def test_solusvm_refusing_the_user_is_shown_and_kept_for_the_operator(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    solus.fail_next(1, status=422, method="POST", path="/api/v1/users")
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        browser, welcome = enroll(site)
        assert "We could not create your SolusVM login" in welcome.text
        (enrollment,) = site.service.recent()
        assert enrollment.solusvm_state is SolusVMState.FAILED
        assert "HTTP 422" in (enrollment.solusvm_error or "")
        assert site.service.retry_pending() == 0, "a refusal is not retried blindly"
        assert browser.get(site.url("/sso"), timeout=10).status_code == 503


def _panel(site: Site, token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(site.url("/api/enrollment"), params=params, headers=headers, timeout=10)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_whmcs_panel_endpoint_answers_enrolled_with_a_login_link_or_not_with_the_sign_up_page(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    with running_site(make_app) as site:
        assert _panel(site, "x", email=EMAIL).status_code == 404, "off without enrollment.panel_token"

    token = "panel-token-0123456789"
    with running_site(make_app, enrollment={"panel_token": token}, solusvm=solusvm_section(solus)) as site:
        assert _panel(site, None, email=EMAIL).status_code == 401
        assert _panel(site, "wrong", email=EMAIL).status_code == 401
        assert _panel(site, token, email=EMAIL).json() == {
            "enrolled": False,
            "login_url": None,
            "expires_at": None,
            "signup_url": f"{site.base}/",
        }
        enroll(site)
        answer = _panel(site, token, email=EMAIL).json()
        assert answer["enrolled"] is True
        assert answer["login_url"].startswith(f"{site.base}/sso/")
        # A browser that never signed up here follows the panel's button straight into SolusVM, once.
        visitor = requests.Session()
        sso = visitor.get(answer["login_url"], allow_redirects=False, timeout=10)
        assert sso.headers["Location"] == "/sso"
        into = visitor.get(site.url("/sso"), allow_redirects=False, timeout=10)
        assert into.headers["Location"].startswith(f"{solus.url}/auth/by_token?token=")
        again = requests.get(answer["login_url"], timeout=10)
        assert again.status_code == 410
        assert "This link has already been used" in again.text
        assert _panel(site, token, whmcs_client_id="x").status_code == 400
