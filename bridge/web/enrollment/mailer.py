"""The sign-up mails: rendered from brandable templates, sent by the transport of bridge/mail/transport.py
(SMTP, or ``.eml`` files under ``mail_sink_dir``, default ``<state_dir>/mail``: open the newest file and
follow the link). Mails carry single-use links; they are never logged.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import jinja2

from bridge.clock import Clock
from bridge.mail.transport import Transport, company_name, mail_host, sender
from bridge.mail.transport import mail_sink as mail_sink
from bridge.settings import Settings


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
        message["Message-ID"] = make_msgid(domain=mail_host(self._settings))
        message["Auto-Submitted"] = "auto-generated"
        # Not quoted-printable: its soft line breaks would cut a long link in a mail read from the file sink.
        message.set_content(body, cte="7bit" if body.isascii() else "8bit")
        self._transport.send(message)
