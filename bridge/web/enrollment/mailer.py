"""The sign-up mails: rendered from brandable templates, sent by SMTP or written to a directory.

Without ``enrollment.smtp_host`` each mail is written as an ``.eml`` file to ``mail_sink_dir`` (default
``<state_dir>/mail``), readable by the bridge's user only, so the flow works with no mail server: open
the newest file and follow the link. Mails carry single-use links; they are never logged.
"""

from __future__ import annotations

import os
import secrets
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import jinja2

from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.settings import Settings

log = get_logger(__name__)


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class FileSink:
    """Writes each mail to ``directory/<time>-<random>.eml``."""

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{self._clock.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
        path = self.directory / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(message.as_bytes())
        log.info("mail written to the file sink", path=str(path), subject=message["Subject"])


class SmtpTransport:
    """Sends through the SMTP server of the settings, with STARTTLS (verified) unless turned off."""

    def __init__(self, settings: Settings) -> None:
        self._config = settings.enrollment

    def send(self, message: EmailMessage) -> None:
        config = self._config
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout_seconds) as smtp:
            if config.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.smtp_user:
                password = config.smtp_password.get_secret_value() if config.smtp_password else ""
                smtp.login(config.smtp_user, password)
            smtp.send_message(message)
        log.info("mail sent", subject=message["Subject"])


class TemplateMail:
    """The :class:`~bridge.services.ports.Mailer` of the pages: plain-text templates
    ``mail_sign_up.txt`` and ``mail_already_enrolled.txt``, branded like the pages."""

    def __init__(
        self, templates: jinja2.Environment, transport: Transport, settings: Settings, clock: Clock
    ) -> None:
        self._templates = templates
        self._transport = transport
        self._settings = settings
        self._clock = clock

    def sign_up_link(self, to: str, name: str, link: str, expires_at: datetime) -> None:
        company = company_name(self._settings)
        body = self._render("mail_sign_up.txt", name=name, link=link, expires_at=expires_at)
        self._send(to, f"Confirm your email to finish signing up with {company}", body)

    def already_enrolled(self, to: str, name: str) -> None:
        company = company_name(self._settings)
        body = self._render("mail_already_enrolled.txt", name=name)
        self._send(to, f"Your {company} account", body)

    def _render(self, template: str, **values: object) -> str:
        config = self._settings.enrollment
        return self._templates.get_template(template).render(
            company=company_name(self._settings),
            base_url=config.base_url(),
            ttl_hours=config.link_ttl_hours,
            solusvm_url=self._settings.solusvm.url,
            **values,
        )

    def _send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = sender(self._settings)
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = make_msgid(domain=urlsplit(self._settings.enrollment.base_url()).hostname)
        message["Auto-Submitted"] = "auto-generated"
        # Not quoted-printable: its soft line breaks would cut a long link in a mail read from the file sink.
        message.set_content(body, cte="7bit" if body.isascii() else "8bit")
        self._transport.send(message)


def transport_for(settings: Settings, clock: Clock) -> Transport:
    """SMTP when ``smtp_host`` is set, else the file sink."""
    config = settings.enrollment
    if config.smtp_host:
        return SmtpTransport(settings)
    return FileSink(mail_sink(settings), clock)


def mail_sink(settings: Settings) -> Path:
    configured = settings.enrollment.mail_sink_dir
    return Path(configured) if configured else settings.daemon.resolved_state_dir() / "mail"


def company_name(settings: Settings) -> str:
    """``enrollment.company_name``, else the default configuration's company name, else a plain phrase."""
    return (
        settings.enrollment.company_name
        or settings.configurations["default"].company_name
        or "Cloud services"
    )


def sender(settings: Settings) -> str:
    config = settings.enrollment
    if config.smtp_from:
        return config.smtp_from
    host = urlsplit(config.base_url()).hostname or "localhost"
    return formataddr((company_name(settings), f"no-reply@{host}"))
