"""What keeps the sign-up pages safe, as an attacker or a careful reviewer would probe them: CSRF, rate
limits, no user enumeration, cookie flags, the reverse proxy, headers, and a password that goes to
SolusVM once and nowhere else."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
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


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_a_used_link_signs_in_only_the_browser_that_used_it_even_within_the_grace(
    site: Site, solus: FakeSolusVM
) -> None:
    """The link is in a mailbox, a proxy log, a shoulder away: sending it again from another browser a
    minute after the client used it must not sign that browser in, nor lead it into SolusVM."""
    client = requests.Session()
    sign_up(site, client)
    link = site.last_link(EMAIL)
    page = client.get(link, timeout=10)
    data = {"csrf_token": csrf_of(page.text), "accept_terms": "yes", "accept_postpay_terms": "yes"}
    assert "Welcome, Ada Lovelace" in client.post(link, data=data, timeout=10).text
    site.app.clock.advance(timedelta(minutes=1))

    stranger = requests.Session()
    own_form = stranger.get(site.url("/signup"), timeout=10)
    replay = stranger.post(link, data={**data, "csrf_token": csrf_of(own_form.text)}, timeout=10)
    assert replay.status_code == 410
    assert "This link has already been used" in replay.text
    assert stranger.get(site.url("/welcome"), timeout=10).url == site.url("/"), "not signed in"
    sso = stranger.get(site.url("/sso"), allow_redirects=False, timeout=10)
    assert (sso.status_code, sso.headers["Location"]) == (303, "/")
    assert solus.login_tokens == [], "no SolusVM login token was made for the stranger"

    again = client.post(link, data=data, timeout=10)  # the client's own browser re-sends the form
    assert again.status_code == 200 and "Welcome, Ada Lovelace" in again.text
    assert len(site.app.clients.all()) == 1


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_link_and_sso_urls_are_rate_limited_per_address(
    make_app: Callable[..., App], solus: FakeSolusVM
) -> None:
    with running_site(make_app, solusvm=solusvm_section(solus), enrollment={"link_limit_per_ip": 3}) as site:
        guesser = requests.Session()
        answers = [guesser.get(site.url(f"/verify/guess-{number}"), timeout=10) for number in range(3)]
        assert [answer.status_code for answer in answers] == [404, 404, 404]
        for path in ("/verify/guess-3", "/sso/guess-4"):
            limited = guesser.get(site.url(path), timeout=10)
            assert limited.status_code == 429, path
            assert limited.headers["Retry-After"] == "3600"
        site.app.clock.advance(timedelta(minutes=60))
        assert guesser.get(site.url("/verify/guess-5"), timeout=10).status_code == 404, "the window slid"


def _half_a_request(site: Site) -> socket.socket:
    """A connection that sends the request line and one header, then nothing more (slowloris)."""
    slow = socket.create_connection(("127.0.0.1", int(site.base.rsplit(":", 1)[1])))
    slow.settimeout(60)  # a guard against a hang if the server never answers; not a timing assertion
    slow.sendall(b"GET /signup HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return slow


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_a_client_sending_its_request_slowly_is_hung_up_on_and_frees_its_worker(
    make_app: Callable[..., App],
) -> None:
    settings = {"workers": 1, "request_timeout_seconds": 1}
    with running_site(make_app, enrollment=settings) as site:
        slow = _half_a_request(site)  # takes the one worker
        served = requests.get(site.url("/signup"), timeout=60)  # waits its turn, then is served
        assert served.status_code == 200
        assert slow.recv(1024) == b"", "the server hung up on the slow client without an answer"
        slow.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough
def test_many_slow_clients_never_grow_the_server_beyond_its_workers(make_app: Callable[..., App]) -> None:
    settings = {"workers": 2, "request_timeout_seconds": 1}
    before = set(threading.enumerate())
    with running_site(make_app, enrollment=settings) as site:
        slow = [_half_a_request(site) for _ in range(8)]  # more than the workers and their queue hold
        for connection in slow:  # each is hung up on in turn (or, beyond the queue, closed at once)
            with contextlib.suppress(ConnectionResetError):
                assert connection.recv(1024) == b""
            connection.close()
        serving = [
            thread for thread in set(threading.enumerate()) - before if thread.name.startswith("enrollment_")
        ]
        assert 1 <= len(serving) <= 2, "two workers served every connection"
        assert requests.get(site.url("/signup"), timeout=60).status_code == 200
