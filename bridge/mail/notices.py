"""Client notifications rendered from their templates (the ``NoticeTexts`` port of bridge/services/ports.py).

One template per event, ``mail_<event>.txt`` (bridge/web/templates; the operator's ``template_dir``
replaces any of them). A template's first line is ``Subject: ...``, then a blank line, then the body. It
sees the notice's facts (bridge/domain/notifications.py), ``client`` (name, email, id), ``company`` and
``site`` (the sign-up site's address), and the filter ``local`` that prints an instant in the billing time
zone. The sender is the client configuration's (seed 001: notification sender name and email).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import jinja2

from bridge.domain.clients import Client
from bridge.domain.notifications import (
    CreditExhausted,
    CreditLow,
    InvoiceIssued,
    InvoiceOverdue,
    MailText,
    Notice,
    Resumed,
    Suspended,
    Terminated,
)
from bridge.errors import ConfigError
from bridge.mail.templates import mail_templates
from bridge.mail.transport import company_name, sender
from bridge.settings import Configurations, Settings

SUBJECT = "Subject:"


class NoticeMail:
    """Renders a notice for a client; the bodies are plain text."""

    def __init__(self, settings: Settings, configurations: Configurations) -> None:
        self._settings = settings
        self._configurations = configurations
        self._zone = settings.billing.zone()
        self._templates = mail_templates(settings)
        self._templates.filters["local"] = lambda instant: local(instant, self._zone)

    def render(self, notice: Notice, client: Client) -> MailText:
        name = f"mail_{notice.event.value}.txt"
        try:
            text = self._templates.get_template(name).render(
                client=client,
                company=company_name(self._settings),
                site=self._settings.enrollment.base_url(),
                **notice.facts(),
            )
        except jinja2.TemplateError as error:
            raise ConfigError(
                f"mail template {name}: {error}; fix the template in enrollment.template_dir"
            ) from None
        subject, body = split_subject(text, name)
        section = self._configurations.section(client.configuration)
        return MailText(sender(self._settings, section), subject, body)


def check_templates(settings: Settings) -> None:
    """Render every notification template once with sample facts (``check-config``): a template the
    operator broke is refused before the daemon needs it, with a ConfigError naming it."""
    mail = NoticeMail(settings, Configurations.from_settings(settings))
    for notice in _samples():
        mail.render(notice, _SAMPLE_CLIENT)


_SAMPLE_AT = datetime(2026, 1, 1, tzinfo=UTC)
_SAMPLE_CLIENT = Client(1, "client@example.com", "Sample Client", "USD", "default", _SAMPLE_AT)


def _samples() -> list[Notice]:
    at, ten, usd = _SAMPLE_AT, Decimal(10), "USD"
    later = at + timedelta(days=14)
    return [
        CreditLow(24, ten, usd, Decimal(1), ten, at + timedelta(hours=10)),
        CreditExhausted(-ten, usd, Decimal(0), True, later),
        Suspended(-ten, usd, Decimal(0), ("openstack:vm-1 (web)",), False, later),
        Suspended(ten, usd, Decimal(0), ("openstack:vm-1 (web)",), True, None, by_staff=True),
        Resumed(ten, usd, ("openstack:vm-1 (web)",), False),
        Resumed(ten, usd, ("openstack:vm-1 (web)",), True, by_staff=True),
        Terminated(-ten, usd, ("openstack:vm-1 (web)",)),
        InvoiceIssued("BB-1-2026-01", "1", ten, usd, at, later),
        InvoiceOverdue("BB-1-2026-01", "1", ten, usd, at, later),
    ]


def split_subject(text: str, template: str) -> tuple[str, str]:
    """(subject, body) of a rendered notification; a template without its Subject line is the operator's
    mistake, named with the fix."""
    first, _, rest = text.lstrip("\n").partition("\n")
    if not first.startswith(SUBJECT) or not first[len(SUBJECT) :].strip():
        raise ConfigError(
            f"mail template {template}: its first line must be 'Subject: ...'; "
            "fix the template in enrollment.template_dir"
        )
    return first[len(SUBJECT) :].strip(), rest.strip("\n") + "\n"


def local(instant: datetime | None, zone: ZoneInfo) -> str:
    """``2026-03-03 06:00 UTC``: an instant as the client reads it, in the billing time zone."""
    if instant is None:
        return ""
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
