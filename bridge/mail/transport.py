"""How a mail leaves: SMTP, or a file under ``mail_sink_dir`` (default ``<state_dir>/mail``).

Without ``enrollment.smtp_host`` each mail is written as an ``.eml`` file readable by the bridge's user
only, so the bridge works with no mail server. A mail sent under a ``key`` (a client notification's outbox
reference) is idempotent where the transport can make it so:

* the file sink writes ``<key>.eml`` atomically (a temporary file linked into place), so a second send
  of the same key writes nothing, and :meth:`FileSink.delivered` answers exactly whether it went out;
* SMTP cannot be asked what it accepted, so :meth:`SmtpTransport.delivered` answers None (unknown). The
  mail carries a Message-ID derived from the key, the same on every attempt: a crash after the server
  accepted the DATA and before the bridge recorded it means one resend, with the same Message-ID, which
  mail systems and clients that deduplicate by Message-ID show once.
"""

from __future__ import annotations

import os
import re
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.settings import ConfigurationSettings, Settings

log = get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Transport(Protocol):
    def send(self, message: EmailMessage, key: str | None = None) -> None:
        """Send ``message``; under ``key``, a second send of the same key sends nothing where the
        transport can tell (see the module docstring)."""
        ...

    def delivered(self, key: str) -> bool | None:
        """Whether the mail sent under ``key`` went out: True, False, or None when the transport cannot
        know (SMTP)."""
        ...


def safe_key(key: str) -> str:
    """``key`` as a file name and a Message-ID's left part: letters, digits, dot, dash and underscore."""
    return _UNSAFE.sub("_", key)[:200]


class FileSink:
    """Writes each mail to ``directory/<key>.eml`` (or ``<time>-<random>.eml`` without a key)."""

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock

    def path_of(self, key: str) -> Path:
        return self.directory / f"{safe_key(key)}.eml"

    def delivered(self, key: str) -> bool:
        return self.path_of(key).exists()

    def send(self, message: EmailMessage, key: str | None = None) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if key is None:
            path = self.directory / f"{self._clock.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
            _write_new(path, message.as_bytes())
        else:
            path = self.path_of(key)
            if not _publish(path, message.as_bytes()):
                log.info("mail already in the file sink, not written again", path=str(path))
                return
        log.info("mail written to the file sink", path=str(path), subject=message["Subject"])


def _write_new(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(path: Path, data: bytes) -> bool:
    """Write ``path`` whole or not at all: a temporary file, synced, then hard-linked into place (which
    fails if the name exists: never two copies, never half a mail). False when it existed already."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_new(temporary, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


class SmtpTransport:
    """Sends through the SMTP server of the settings, with STARTTLS (verified) unless turned off."""

    def __init__(self, settings: Settings) -> None:
        self._config = settings.enrollment

    def delivered(self, key: str) -> None:
        return None

    def send(self, message: EmailMessage, key: str | None = None) -> None:
        config = self._config
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout_seconds) as smtp:
            if config.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.smtp_user:
                password = config.smtp_password.get_secret_value() if config.smtp_password else ""
                smtp.login(config.smtp_user, password)
            smtp.send_message(message)
        log.info("mail sent", subject=message["Subject"])


def transport_for(settings: Settings, clock: Clock) -> Transport:
    """SMTP when ``smtp_host`` is set, else the file sink."""
    if settings.enrollment.smtp_host:
        return SmtpTransport(settings)
    return FileSink(mail_sink(settings), clock)


def mail_sink(settings: Settings) -> Path:
    configured = settings.enrollment.mail_sink_dir
    return Path(configured) if configured else settings.daemon.resolved_state_dir() / "mail"


def mail_host(settings: Settings) -> str:
    """The host name Message-IDs and the default sender address use: the sign-up site's."""
    return urlsplit(settings.enrollment.base_url()).hostname or "localhost"


def company_name(settings: Settings) -> str:
    """``enrollment.company_name``, else the default configuration's company name, else a plain phrase."""
    return (
        settings.enrollment.company_name
        or settings.configurations["default"].company_name
        or "Cloud services"
    )


def sender(settings: Settings, configuration: ConfigurationSettings | None = None) -> str:
    """The From of a mail (seed 001): a configuration's notification sender email, with its sender name
    when set; else ``enrollment.smtp_from``; else the company name at ``no-reply@<the site's host>``."""
    fallback = settings.enrollment.smtp_from or formataddr(
        (company_name(settings), f"no-reply@{mail_host(settings)}")
    )
    if configuration is None:
        return fallback
    name = configuration.notification_sender_name
    address = configuration.notification_sender_email
    if not address:
        return formataddr((name, parseaddr(fallback)[1])) if name else fallback
    return formataddr((name, address)) if name else address
