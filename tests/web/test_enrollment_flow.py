"""The six steps of post-pay enrollment as a person goes through them, against the fake SolusVM and the
fake WHMCS on 127.0.0.1, on every database: the account is made once, whatever the browser does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.domain.clients import LinkKind
from bridge.store.tables import enrollments, ledger_entries, outbox, terms_acceptances
from tests.fakes.solusvm import FakeSolusVM
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import whmcs_section
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
def whmcs() -> Iterator[FakeWhmcs]:
    with FakeWhmcs() as fake:
        yield fake


@pytest.fixture
def site(make_app: Callable[..., App], solus: FakeSolusVM, whmcs: FakeWhmcs) -> Iterator[Site]:
    with running_site(
        make_app,
        enrollment={"company_name": "Nimbus Hosting", "postpay_terms_version": "2024-06"},
        solusvm=solusvm_section(solus),
        whmcs=whmcs_section(whmcs),
        configurations={
            "default": {
                "client_initial_credit": "5.00",
                "auto_order_on_signup": True,
                "auto_order_service": "SolusVM post-pay",
            }
        },
    ) as running:
        yield running


def test_the_six_steps_make_a_client_a_whmcs_client_and_a_solusvm_user_who_can_log_in(
    site: Site, solus: FakeSolusVM, whmcs: FakeWhmcs
) -> None:
    browser = requests.Session()
    # 1. the landing page
    landing = browser.get(site.url("/"), timeout=10)
    assert landing.status_code == 200
    assert "Nimbus Hosting" in landing.text
    assert 'href="/signup"' in landing.text
    # 2. the form
    sent = sign_up(site, browser, email="Ada@Example.com")
    assert sent.status_code == 200
    assert sent.url == site.url("/signup/sent")
    assert "Check your email" in sent.text
    # 3. the mail, with a link to this site
    (mail,) = site.mails()
    assert mail["To"] == EMAIL
    assert "Nimbus Hosting" in mail["Subject"]
    link = site.last_link(EMAIL)
    assert link.startswith(f"{site.base}/verify/")
    assert "expires in 24 hours" in mail.get_content()
    # 4. the terms: both documents must be accepted
    terms = browser.get(link, timeout=10)
    assert "Terms of Service" in terms.text
    assert "Post-Pay Terms &amp; Conditions" in terms.text
    assert "(version 2024-06)" in terms.text
    half = browser.post(link, data={"csrf_token": csrf_of(terms.text), "accept_terms": "yes"}, timeout=10)
    assert half.status_code == 400
    assert "Please accept the Post-Pay Terms &amp; Conditions to continue." in half.text
    assert site.app.clients.all() == []
    # 5. accepted: the account is made
    welcome = accept_terms(site, browser, link, ("terms", "postpay_terms"))
    # 6. the login page
    assert welcome.url == site.url("/welcome")
    assert "Welcome, Ada Lovelace" in welcome.text
    assert "We have ordered <strong>SolusVM post-pay</strong> for you." in welcome.text
    assert 'id="sso"' in welcome.text
    assert ">Log in to SolusVM<" in welcome.text

    (client,) = site.app.clients.all()
    assert (client.email, client.name) == (EMAIL, "Ada Lovelace")
    (user,) = solus.users.values()
    assert user["email"] == EMAIL
    assert solus.passwords[user["id"]] == PASSWORD, "the SolusVM user has the password chosen at sign-up"
    assert client.external_ids(LinkKind.SOLUSVM_USER) == [str(user["id"])]
    with site.app.engine.connect() as connection:
        credit = connection.execute(select(ledger_entries)).one()
        accepted = connection.execute(select(terms_acceptances).order_by(terms_acceptances.c.id)).all()
    assert (credit.reference, credit.amount, credit.currency) == (
        f"BB-INITIAL-{client.id}",
        Decimal("5.00"),
        "USD",
    )
    assert [(row.document, row.version, row.accepted_at) for row in accepted] == [
        ("terms", "1", site.app.clock.now()),
        ("postpay_terms", "2024-06", site.app.clock.now()),
    ]
    assert accepted[0].accepted_from == "127.0.0.1"

    # The WHMCS client goes out through the outbox, once.
    site.app.pusher().run()
    assert [c.email for c in whmcs.clients.values()] == [EMAIL]
    assert site.app.clients.get(EMAIL).external_ids(LinkKind.WHMCS_CLIENT) == [str(next(iter(whmcs.clients)))]

    # Single sign-on: to the SolusVM control panel with a fresh one-time token.
    sso = browser.get(site.url("/sso"), allow_redirects=False, timeout=10)
    assert sso.status_code == 303
    ((user_id, token),) = solus.login_tokens
    assert user_id == user["id"]
    assert (
        sso.headers["Location"] == f"{solus.url}/auth/by_token?token={requests.utils.quote(token, safe='')}"
    )


def test_a_double_submit_and_a_reload_make_nothing_twice(site: Site, solus: FakeSolusVM) -> None:
    browser = requests.Session()
    sign_up(site, browser)
    link = site.last_link(EMAIL)
    page = browser.get(link, timeout=10)
    data = {"csrf_token": csrf_of(page.text), "accept_terms": "yes", "accept_postpay_terms": "yes"}

    answers: list[requests.Response] = []
    gate = threading.Barrier(2)

    def submit() -> None:
        gate.wait()
        answers.append(browser.post(link, data=data, timeout=30))

    clicks = [threading.Thread(target=submit) for _ in range(2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    again = browser.post(link, data=data, timeout=10)  # the browser re-sends the form
    reload = browser.get(site.url("/welcome"), timeout=10)

    for answer in [*answers, again, reload]:
        assert answer.status_code == 200, answer.text
        assert "Welcome, Ada Lovelace" in answer.text
    assert len(site.app.clients.all()) == 1
    assert len(solus.users) == 1
    assert len(solus.requests_to("POST", "/api/v1/users")) == 1
    with site.app.engine.connect() as connection:
        kinds = connection.execute(select(outbox.c.kind).order_by(outbox.c.id)).scalars().all()
        assert kinds == ["add_client", "add_credit"], "the client and its initial credit go to WHMCS once"
        assert len(connection.execute(select(ledger_entries)).all()) == 1
        assert len(connection.execute(select(terms_acceptances)).all()) == 2


def test_an_expired_link_says_so_and_sends_a_new_one_that_works(site: Site, solus: FakeSolusVM) -> None:
    browser = requests.Session()
    sign_up(site, browser)
    old = site.last_link(EMAIL)
    site.app.clock.advance(timedelta(hours=24))

    expired = browser.get(old, timeout=10)
    assert expired.status_code == 410
    assert "This link has expired" in expired.text
    renewed = browser.post(f"{old}/renew", data={"csrf_token": csrf_of(expired.text)}, timeout=10)
    assert "Check your email" in renewed.text
    fresh = site.last_link(EMAIL)
    assert fresh != old
    assert len(site.mails(EMAIL)) == 2

    assert browser.get(old, timeout=10).status_code == 404, "only the newest link works"
    welcome = accept_terms(site, browser, fresh, ("terms", "postpay_terms"))
    assert "Welcome, Ada Lovelace" in welcome.text
    (user,) = solus.users.values()
    assert solus.passwords[user["id"]] == PASSWORD, "the password survived the renewal, sealed"


def test_a_link_used_once_cannot_be_used_again_later(site: Site) -> None:
    browser = requests.Session()
    sign_up(site, browser)
    link = site.last_link(EMAIL)
    accept_terms(site, browser, link, ("terms", "postpay_terms"))
    site.app.clock.advance(timedelta(hours=1))

    stranger = requests.Session()
    page = stranger.get(link, timeout=10)
    assert page.status_code == 410
    assert "This link has already been used" in page.text
    replay = stranger.post(
        link, data={"csrf_token": csrf_of(stranger.get(site.url("/signup"), timeout=10).text)}, timeout=10
    )
    assert replay.status_code == 410
    assert stranger.get(site.url("/welcome"), timeout=10).url == site.url("/"), "the link signed nobody in"
    assert len(site.app.clients.all()) == 1


def test_a_duplicate_email_gets_the_same_page_and_a_mail_saying_so(site: Site, solus: FakeSolusVM) -> None:
    first = requests.Session()
    sign_up(site, first)
    accept_terms(site, first, site.last_link(EMAIL), ("terms", "postpay_terms"))

    second = requests.Session()
    again = sign_up(site, second, name="Someone Else", password="Other-Secret-77-word")
    fresh = sign_up(site, requests.Session(), email="grace@example.com", name="Grace Hopper")

    assert again.status_code == fresh.status_code == 200
    assert again.url == fresh.url == site.url("/signup/sent")
    assert again.text == fresh.text, "the page does not tell whether the address has an account"
    notice = site.mails(EMAIL)[-1]
    assert notice["Subject"] == "Your Nimbus Hosting account"
    assert "an account\nwith this address already exists, so no new one was created" in notice.get_content()
    assert "/verify/" not in notice.get_content()
    assert [client.email for client in site.app.clients.all()] == [EMAIL]
    assert len(solus.users) == 1


def test_signing_up_again_before_confirming_replaces_the_request_and_its_link(site: Site) -> None:
    browser = requests.Session()
    sign_up(site, browser, name="Ada L")
    first = site.last_link(EMAIL)
    sign_up(site, browser, name="Ada Lovelace", company="")
    second = site.last_link(EMAIL)

    assert browser.get(first, timeout=10).status_code == 404
    page = browser.get(second, timeout=10)
    assert "Almost there, Ada Lovelace" in page.text
    with site.app.engine.connect() as connection:
        (row,) = connection.execute(select(enrollments)).all()
    assert (row.name, row.company, row.state) == ("Ada Lovelace", "", "pending")


def test_sso_sends_anyone_not_enrolled_to_the_landing_page(site: Site) -> None:
    answer = requests.get(site.url("/sso"), allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_hosting_company_brands_the_pages_and_the_mails(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    brand = tmp_path / "brand"
    brand.mkdir()
    (brand / "terms.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Nimbus terms v{{ version }}</h1>{% endblock %}'
    )
    (brand / "mail_sign_up.txt").write_text("Welcome aboard {{ name }}: {{ link }}\n")
    branding = {
        "company_name": "Nimbus Hosting",
        "logo_url": "https://cdn.example.com/nimbus.svg",
        "template_dir": str(brand),
        "terms_version": "7",
    }
    with running_site(make_app, enrollment=branding) as site:
        landing = requests.get(site.url("/"), timeout=10).text
        assert '<img src="https://cdn.example.com/nimbus.svg" alt="Nimbus Hosting">' in landing
        assert "<title>Cloud servers, billed after use · Nimbus Hosting</title>" in landing
        assert "<h1>Nimbus terms v7</h1>" in requests.get(site.url("/terms"), timeout=10).text
        sign_up(site, requests.Session())
        (mail,) = site.mails(EMAIL)
        assert mail.get_content().startswith("Welcome aboard Ada Lovelace: http://127.0.0.1:")
        assert mail["From"] == "Nimbus Hosting <no-reply@127.0.0.1>"
