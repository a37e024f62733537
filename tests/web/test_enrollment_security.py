"""What keeps the sign-up pages safe, as an attacker or a careful reviewer would probe them: CSRF, rate
limits, no user enumeration, cookie flags, the reverse proxy, headers, and a password that goes to
SolusVM once and nowhere else."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.logs import configure
from bridge.store.tables import metadata, terms_acceptances
from tests.fakes.solusvm import FakeSolusVM
from tests.web.enrollment_site import (
    PASSWORD,
    Site,
    accept_terms,
    csrf_of,
    running_site,
    sign_up,
    solusvm_section,
)

EMAIL = "ada@example.com"


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM() as fake:
        yield fake


@pytest.fixture
def site(make_app: Callable[..., App], solus: FakeSolusVM) -> Iterator[Site]:
    with running_site(make_app, solusvm=solusvm_section(solus)) as running:
        yield running


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_every_form_needs_its_csrf_token(site: Site) -> None:
    browser = requests.Session()
    forged = browser.post(
        site.url("/signup"),
        data={"name": "Ada", "email": EMAIL, "password": PASSWORD, "password_confirm": PASSWORD},
        timeout=10,
    )
    assert forged.status_code == 400
    assert "This form has expired or was sent from another site" in forged.text
    assert site.mails() == []

    sign_up(site, browser)
    link = site.last_link(EMAIL)
    browser.get(link, timeout=10)
    for target in (link, f"{link}/renew"):
        answer = browser.post(target, data={"csrf_token": "guessed", "accept_terms": "yes"}, timeout=10)
        assert answer.status_code == 400
    assert site.app.clients.all() == []
    assert len(site.mails()) == 1
    assert "Almost there" in browser.get(link, timeout=10).text, "the link still works"


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_sign_up_requests_are_limited_per_email_and_per_ip(make_app: Callable[..., App]) -> None:
    limits = {"signup_limit_per_ip": 3, "signup_limit_per_email": 2, "rate_limit_window_minutes": 60}
    with running_site(make_app, enrollment=limits) as site:
        browser = requests.Session()
        assert sign_up(site, browser).status_code == 200
        assert sign_up(site, browser).status_code == 200
        third = sign_up(site, browser)
        assert third.status_code == 429
        assert "Please try again in 60 minutes." in third.text
        assert third.headers["Retry-After"] == "3600"
        other = sign_up(site, browser, email="grace@example.com")
        assert other.status_code == 429, "the fourth request from the same address"
        assert len(site.mails()) == 2

        site.app.clock.advance(timedelta(minutes=60))
        assert sign_up(site, browser, email="grace@example.com").status_code == 200
        assert len(site.mails("grace@example.com")) == 1


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_forwarded_addresses_count_only_from_a_trusted_proxy(make_app: Callable[..., App]) -> None:
    limits = {"signup_limit_per_ip": 1, "signup_limit_per_email": 10}
    with running_site(make_app, enrollment=limits) as site:
        spoofing = requests.Session()
        spoofing.headers["X-Forwarded-For"] = "198.51.100.1"
        assert sign_up(site, spoofing, email="a@example.com").status_code == 200
        spoofing.headers["X-Forwarded-For"] = "198.51.100.2"
        assert sign_up(site, spoofing, email="b@example.com").status_code == 429

    with running_site(make_app, enrollment={**limits, "trusted_proxies": ["127.0.0.1"]}) as site:
        proxied = requests.Session()
        for number, email in enumerate(("c@example.com", "d@example.com"), 1):
            proxied.headers["X-Forwarded-For"] = f"203.0.113.9, 198.51.100.{number}"
            assert sign_up(site, proxied, email=email).status_code == 200
        accept_terms(site, proxied, site.last_link("d@example.com"))
        with site.app.engine.connect() as connection:
            accepted_from = connection.scalar(select(terms_acceptances.c.accepted_from))
        assert accepted_from == "198.51.100.2", "the right-most hop the trusted proxy saw"


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_cookies_are_http_only_same_site_and_secure_behind_https(make_app: Callable[..., App]) -> None:
    https = {"public_url": "https://signup.example.com/", "trusted_proxies": ["127.0.0.1"]}
    with running_site(make_app, enrollment=https) as site:
        browser = requests.Session()
        browser.headers["X-Forwarded-Proto"] = "https"
        form = browser.get(site.url("/signup"), timeout=10)
        cookie = form.headers["Set-Cookie"]
        assert cookie.startswith("bb_session=")
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" in cookie
        assert form.headers["Strict-Transport-Security"] == "max-age=31536000"
        browser.post(
            site.url("/signup"),
            data={
                "csrf_token": csrf_of(form.text),
                "name": "Ada",
                "email": EMAIL,
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
            cookies={"bb_session": form.cookies["bb_session"]},
            timeout=10,
        )
        body = site.mails(EMAIL)[-1].get_content()
        assert "https://signup.example.com/verify/" in body, "links use public_url, never the Host header"

    with running_site(make_app) as site:
        assert "Secure" not in requests.get(site.url("/signup"), timeout=10).headers["Set-Cookie"]


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_pages_forbid_framing_sniffing_caching_and_referrers(site: Site) -> None:
    page = requests.get(site.url("/"), timeout=10)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer", "a link's token never leaves in a Referer"
    assert page.headers["Cache-Control"] == "no-store"


def test_the_password_reaches_solusvm_once_and_is_never_stored_logged_mailed_or_shown(
    site: Site, solus: FakeSolusVM
) -> None:
    logs = io.StringIO()
    configure("debug", "json", stream=logs)
    browser = requests.Session()
    pages = [sign_up(site, browser)]
    link = site.last_link(EMAIL)
    token = link.rsplit("/", 1)[1]
    pages.append(accept_terms(site, browser, link))
    pages.append(browser.get(site.url("/sso"), allow_redirects=False, timeout=10))

    creates = solus.requests_to("POST", "/api/v1/users")
    assert [request.body["password"] for request in creates] == [PASSWORD]
    everything = _dump(site.app)
    assert PASSWORD not in everything
    assert token not in everything, "the database keeps a keyed digest of the link, not the link"
    # The bridge's lines: urllib3's are this test's own HTTP client, which shares the process.
    bridge_lines = "\n".join(line for line in logs.getvalue().splitlines() if '"urllib3.' not in line)
    assert PASSWORD not in bridge_lines
    assert token not in bridge_lines
    assert "/verify/***" in bridge_lines
    for mail in site.mails():
        assert PASSWORD not in mail.as_string()
    for page in pages:
        assert PASSWORD not in page.text


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_bad_input_gets_a_message_per_field_and_keeps_all_but_the_password(site: Site) -> None:
    browser = requests.Session()
    answer = sign_up(site, browser, email="ada@", name="", password="short1", confirm="short1")
    assert answer.status_code == 400
    assert "Enter your name." in answer.text
    assert "Enter a valid email address, like name@example.com." in answer.text
    assert "Use at least 10 characters for the password." in answer.text
    assert 'value="ada@"' in answer.text
    assert "short1" not in answer.text

    for password, confirm, message in [
        ("onlyletters-here", None, "Use both letters and digits in the password."),
        ("Password123", None, "This password is too easy to guess; choose another."),
        ("lovelace-2024-x", None, "Do not use your name or email address in the password."),
        (PASSWORD, "Another-Pass-123", "The two passwords differ; type the same password twice."),
    ]:
        answer = sign_up(site, browser, password=password, confirm=confirm)
        assert answer.status_code == 400
        assert message in answer.text
    assert site.mails() == []


def _dump(app: App) -> str:
    """Every value in every table, as text."""
    with app.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row)) for table in metadata.sorted_tables for row in connection.execute(select(table))
        )
