"""A running sign-up site for the enrollment tests: the real Flask app on the real server on 127.0.0.1,
the file mail sink read back as a person would read their inbox, and small helpers for the forms."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from bridge.bootstrap import App
from bridge.services.enrollment import EnrollmentService
from bridge.settings import split_address
from bridge.web.enrollment.mailer import mail_sink
from bridge.web.enrollment.server import EnrollmentServer
from bridge.web.enrollment.site import create_app
from tests.fakes.solusvm import FakeSolusVM

PASSWORD = "Blue-Harbour-42-Kite"
LINK = re.compile(r"(http://\S+/verify/[A-Za-z0-9_\-]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def solusvm_section(fake: FakeSolusVM) -> dict[str, Any]:
    """``[solusvm]`` for the fake: one try per call, so a fault is an answer, never a wait."""
    return {"enabled": True, "url": fake.url, "token": fake.token, "max_attempts": 1}


@dataclass
class Site:
    app: App
    service: EnrollmentService
    base: str

    @property
    def mail_dir(self) -> Path:
        return mail_sink(self.app.settings)

    def mails(self, to: str | None = None) -> list[EmailMessage]:
        """The mails in the file sink, oldest first (file names start with the clock's time)."""
        if not self.mail_dir.exists():
            return []
        found = []
        for path in sorted(self.mail_dir.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            if to is None or message["To"] == to:
                found.append(message)
        return found

    def last_link(self, to: str) -> str:
        body = self.mails(to)[-1].get_content()
        match = LINK.search(body)
        assert match, f"no sign-up link in the mail:\n{body}"
        return match.group(1)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@contextmanager
def running_site(make_app: Callable[..., App], **sections: dict[str, Any]) -> Iterator[Site]:
    """The sign-up site of an app built from ``sections``, served on a free port until the block ends;
    its server has the workers and request time of ``enrollment`` as the daemon gives them."""
    enrollment = {"listen": f"127.0.0.1:{free_port()}", **sections.pop("enrollment", {})}
    app = make_app(enrollment=enrollment, **sections)
    service = app.enrollment
    config = app.settings.enrollment
    host, port = split_address(config.listen)
    server = EnrollmentServer(
        create_app(service, app.settings, app.clock, app.self_service),
        host,
        port,
        workers=config.workers,
        request_timeout=config.request_timeout_seconds,
    )
    server.start()
    try:
        yield Site(app, service, f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_up(
    site: Site,
    browser: requests.Session,
    *,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    company: str = "Analytical Engines Ltd",
    password: str = PASSWORD,
    confirm: str | None = None,
    **more: str,
) -> requests.Response:
    """Steps 1 and 2 as a person does them: open the form, fill it in (``more``: other fields, such as
    country and vat_id), send it."""
    form = browser.get(site.url("/signup"), timeout=10)
    return browser.post(
        site.url("/signup"),
        data={
            "csrf_token": csrf_of(form.text),
            "name": name,
            "company": company,
            "email": email,
            "password": password,
            "password_confirm": password if confirm is None else confirm,
            **more,
        },
        timeout=10,
    )


def accept_terms(
    site: Site, browser: requests.Session, link: str, documents: tuple[str, ...] = ("terms",)
) -> requests.Response:
    """Step 4: open the mailed link, tick the documents, send."""
    page = browser.get(link, timeout=10)
    data = {"csrf_token": csrf_of(page.text), **{f"accept_{key}": "yes" for key in documents}}
    return browser.post(link, data=data, timeout=10)
