"""A client with money on its page, for the self-service tests: signed up through the real pages (so it
signs in with its sign-up password), a VM that ran 28 hours at 1.00/h, and a credit auto-invoice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from bridge.domain.clients import LinkKind
from tests.support.usage import run_vm
from tests.web.enrollment_site import PASSWORD, Site, accept_terms, csrf_of, sign_up

EMAIL = "ada@example.com"
SECTIONS: dict[str, Any] = {
    "enrollment": {"company_name": "Nimbus Hosting", "postpay_terms_version": "2024-06"},
    "pricing": {"flavors": {"m1.large": "1.00"}},
    "configurations": {
        "default": {
            "generate_invoices": True,
            "company_name": "Nimbus Hosting",
            "company_details": "1 Cloud Street, Lisbon",
        }
    },
}
"""The sections of the app behind the site: invoices issued by the bridge, with the provider's name."""


def signed_up_client(site: Site, email: str = EMAIL, name: str = "Ada Lovelace", project: str = "p-1") -> int:
    """A client made through the sign-up pages (in a browser of its own), using ``project``; its id."""
    browser = requests.Session()
    sign_up(site, browser, email=email, name=name)
    accept_terms(site, browser, site.last_link(email), ("terms", "postpay_terms"))
    client = site.app.clients.get(email)
    site.app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, project)
    return client.id


def with_an_invoice(site: Site, client_id: int, project: str = "p-1") -> None:
    """28 hours of a 1.00/h VM and a process_clients run that issues a 120.00 fixed auto-invoice."""
    app = site.app
    now = app.clock.now()
    run_vm(app, project, "m1.large", 28, start=now - timedelta(hours=28), vm=f"vm-{project}")
    app.credit.set_auto_invoicing(str(client_id), "fixed:120", changed_by="test set-up")
    app.credit.process(now)


def sign_in(
    site: Site, browser: requests.Session, email: str = EMAIL, password: str = PASSWORD
) -> requests.Response:
    """The sign-in form, as a person fills it in."""
    form = browser.get(site.url("/signin"), timeout=10)
    data = {"csrf_token": csrf_of(form.text), "email": email, "password": password}
    return browser.post(site.url("/signin"), data=data, timeout=10, allow_redirects=False)
