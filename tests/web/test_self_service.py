"""A client's own pages (issue 19) as a client and as an attacker would use them: sign in with the sign-up
password or a single-use link, see credit and invoices, choose auto-invoicing; refused without the CSRF
token, for another client's invoice, and after the session expired."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import requests

from bridge.bootstrap import App
from bridge.clock import FixedClock
from tests.documents.conftest import pdf_tools  # noqa: F401 (a fixture)
from tests.web.enrollment_site import PASSWORD, Site, csrf_of, running_site
from tests.web.self_service_site import EMAIL, SECTIONS, sign_in, signed_up_client, with_an_invoice

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the web layer: one database is enough


@pytest.fixture
def site(make_app: Callable[..., App]) -> Iterator[Site]:
    sections = {**SECTIONS, "enrollment": {**SECTIONS["enrollment"], "signin_limit_per_email": 3}}
    with running_site(make_app, **sections) as running:
        yield running


@pytest.fixture
def ada(site: Site) -> int:
    client_id = signed_up_client(site)
    with_an_invoice(site, client_id)
    return client_id


def choose(site: Site, browser: requests.Session, **form: str) -> requests.Response:
    page = browser.get(site.url("/account"), timeout=10)
    data = {"csrf_token": csrf_of(page.text), **form}
    return browser.post(site.url("/account/auto-invoicing"), data=data, timeout=10, allow_redirects=False)


def choice_of(site: Site, client_id: int) -> str:
    return site.app.credit.account(str(client_id)).auto_invoicing.choice


def test_a_client_signs_in_with_its_sign_up_password_and_sees_credit_burn_rate_hours_and_invoices(
    site: Site, ada: int
) -> None:
    browser = requests.Session()
    assert (
        browser.get(site.url("/account"), timeout=10, allow_redirects=False).headers["Location"] == "/signin"
    )
    wrong = sign_in(site, browser, password="Not-The-Password-1")
    assert wrong.status_code == 401 and "do not match an account" in wrong.text
    right = sign_in(site, browser)
    assert (right.status_code, right.headers["Location"]) == (303, "/account")
    page = browser.get(site.url("/account"), timeout=10).text
    assert 'id="credit">-28.00 USD' in page  # 28 hours at 1.00/h, nothing paid
    assert 'id="burn-rate">1.0000 USD/h' in page
    assert "none: top up" in page
    assert "120.00 USD" in page and 'href="/account/invoices/' in page
    assert f'id="notification-address">{EMAIL}<' in page
    assert 'id="sso"' in page and 'id="activate"' not in page  # signed up: post-pay is on


def test_the_client_switches_to_a_fixed_200_and_the_change_is_ledgered_with_who_and_when(
    site: Site, ada: int
) -> None:
    browser = requests.Session()
    sign_in(site, browser)
    done = choose(site, browser, enabled="on", mode="fixed", fixed_amount="200")
    assert (done.status_code, done.headers["Location"]) == (303, "/account?saved=1")
    assert choice_of(site, ada) == "fixed:200.00"
    newest = site.app.credit.auto_invoicing_history(ada)[0]
    assert (newest.old_choice, newest.new_choice) == ("fixed:120.00", "fixed:200.00")
    assert newest.changed_by == f"client {ada} (self-service from 127.0.0.1)"
    bad = choose(site, browser, enabled="on", mode="fixed", fixed_amount="lots")
    assert bad.status_code == 400 and "the fixed amount is not a number" in bad.text
    off = choose(site, browser, mode="estimated")  # the box unticked
    assert off.status_code == 303 and choice_of(site, ada) == "off"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(site: Site, ada: int) -> None:
    browser = requests.Session()
    sign_in(site, browser)
    forged = browser.post(
        site.url("/account/auto-invoicing"),
        data={"enabled": "on", "mode": "fixed", "fixed_amount": "5000"},
        timeout=10,
    )
    assert forged.status_code == 400 and "sent from another site" in forged.text
    assert choice_of(site, ada) == "fixed:120.00"
    assert len(site.app.credit.auto_invoicing_history(ada)) == 1  # the set-up's, nothing more


def test_another_clients_invoice_is_not_found_in_html_or_pdf(site: Site, ada: int) -> None:
    grace = signed_up_client(site, "grace@example.com", "Grace Hopper", project="p-2")
    with_an_invoice(site, grace, project="p-2")
    (own,) = site.app.views.invoices(client_id=ada)
    (other,) = site.app.views.invoices(client_id=grace)
    browser = requests.Session()
    sign_in(site, browser)
    assert browser.get(site.url(f"/account/invoices/{own.id}"), timeout=10).status_code == 200
    for path in (f"/account/invoices/{other.id}", f"/account/invoices/{other.id}/pdf", "/account/invoices/x"):
        refused = browser.get(site.url(path), timeout=30)
        assert refused.status_code == 404, path
        assert "Grace Hopper" not in refused.text and "grace@example.com" not in refused.text


def test_an_expired_session_is_refused(site: Site, ada: int, clock: FixedClock) -> None:
    browser = requests.Session()
    sign_in(site, browser)
    token = csrf_of(browser.get(site.url("/account"), timeout=10).text)
    clock.advance(timedelta(hours=site.app.settings.enrollment.session_hours, seconds=1))
    page = browser.get(site.url("/account"), timeout=10, allow_redirects=False)
    assert (page.status_code, page.headers["Location"]) == (303, "/signin")
    (invoice,) = site.app.views.invoices(client_id=ada)
    pdf = browser.get(site.url(f"/account/invoices/{invoice.id}/pdf"), timeout=10, allow_redirects=False)
    assert (pdf.status_code, pdf.headers["Location"]) == (303, "/signin")
    late = browser.post(
        site.url("/account/auto-invoicing"),
        data={"csrf_token": token, "enabled": "on", "mode": "estimated"},
        timeout=10,
        allow_redirects=False,
    )
    assert (late.status_code, late.headers["Location"]) == (303, "/signin")
    assert choice_of(site, ada) == "fixed:120.00"


def test_a_single_use_link_from_the_panel_or_support_signs_in_once(site: Site, ada: int) -> None:
    link, _ = site.app.self_service.account_link(EMAIL)
    browser = requests.Session()
    opened = browser.get(link, timeout=10, allow_redirects=False)
    assert (opened.status_code, opened.headers["Location"]) == (303, "/account")
    assert "Ada Lovelace" in browser.get(site.url("/account"), timeout=10).text
    again = requests.get(link, timeout=10, allow_redirects=False)
    assert again.status_code == 410 and "already been used" in again.text


def test_a_client_that_came_by_link_sets_a_password_and_signs_in_with_it(site: Site) -> None:
    client = site.app.clients.add(email="linus@example.com", name="Linus Torvalds")  # a WHMCS client
    link, _ = site.app.self_service.account_link(str(client.id))
    browser = requests.Session()
    browser.get(link, timeout=10)
    token = csrf_of(browser.get(site.url("/account"), timeout=10).text)
    weak = {"csrf_token": token, "password": "short1", "password_confirm": "short1"}
    refused = browser.post(site.url("/account/password"), data=weak, timeout=10)
    assert refused.status_code == 400 and "Use at least 10 characters" in refused.text
    chosen = {"csrf_token": token, "password": PASSWORD, "password_confirm": PASSWORD}
    done = browser.post(site.url("/account/password"), data=chosen, timeout=10, allow_redirects=False)
    assert (done.status_code, done.headers["Location"]) == (303, "/account?password=1")
    signed_in = sign_in(site, requests.Session(), email="linus@example.com")
    assert (signed_in.status_code, signed_in.headers["Location"]) == (303, "/account")


def test_password_sign_ins_are_rate_limited_per_email(site: Site, ada: int) -> None:
    answers = [
        sign_in(site, requests.Session(), password=f"Wrong-{n}-Password").status_code for n in range(3)
    ]
    assert answers == [401, 401, 401]
    limited = sign_in(site, requests.Session(), password=PASSWORD)
    assert limited.status_code == 429 and "Retry-After" in limited.headers


@pytest.mark.usefixtures("pdf_tools")
def test_the_invoice_opens_as_html_and_downloads_as_the_pdf_of_the_cli(site: Site, ada: int) -> None:
    (invoice,) = site.app.views.invoices(client_id=ada)
    browser = requests.Session()
    sign_in(site, browser)
    html = browser.get(site.url(f"/account/invoices/{invoice.id}"), timeout=10)
    assert html.headers["Content-Type"].startswith("text/html")
    assert "Nimbus Hosting" in html.text and "120.00" in html.text
    assert "Credit for the next 30 days of usage" in html.text and "Price/hour" not in html.text
    pdf = browser.get(site.url(f"/account/invoices/{invoice.id}/pdf"), timeout=60)
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert (
        pdf.headers["Content-Disposition"] == f'attachment; filename="invoice-{invoice.display_number}.pdf"'
    )
    assert pdf.content.startswith(b"%PDF")
