"""Wiring the sign-up site: the enrollment service with its keys, mailer and SolusVM accounts, the Flask app
and its server.

:func:`start_enrollment` serves the pages from settings; the retry of SolusVM users that sign-up had to
defer runs as the registry's ``enrollment`` job (``[schedule] enrollment``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.bootstrap import App
from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.enrollment import EnrollmentService
from bridge.services.ports import Mailer, SolusVMAccounts
from bridge.settings import Settings, split_address
from bridge.store.unit_of_work import UnitOfWork
from bridge.web.enrollment.app import create_app, mail_templates
from bridge.web.enrollment.keys import LinkKeys, secret_key
from bridge.web.enrollment.mailer import TemplateMail, transport_for
from bridge.web.enrollment.server import EnrollmentServer

log = get_logger(__name__)


@dataclass
class EnrollmentSite:
    """The running sign-up site: its service, and its server (None when it could not listen)."""

    service: EnrollmentService
    server: EnrollmentServer | None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def solusvm_factory(settings: Settings, clock: Clock) -> Callable[[], SolusVMAccounts] | None:
    """A maker of SolusVM clients (one per call: a client is not thread-safe), or None when SolusVM is off."""
    if not settings.solusvm.enabled:
        return None
    from bridge.solusvm.client import SolusVMClient

    return lambda: SolusVMClient.from_settings(settings.solusvm, clock=clock)


def build_enrollment(
    uow: UnitOfWork,
    clock: Clock,
    settings: Settings,
    clients: ClientService,
    *,
    mail: Mailer | None = None,
    solusvm: Callable[[], SolusVMAccounts] | None = None,
) -> EnrollmentService:
    """The service wired from settings: the signing key, and SolusVM when ``[solusvm]`` is enabled."""
    return EnrollmentService(
        uow,
        clock,
        settings,
        clients,
        LinkKeys(secret_key(settings)),
        mail=mail,
        solusvm=solusvm or solusvm_factory(settings, clock),
    )


def build_site_service(
    uow: UnitOfWork, clock: Clock, settings: Settings, clients: ClientService
) -> EnrollmentService:
    """The enrollment service with the mailer of the settings (SMTP, or the file sink)."""
    mail = TemplateMail(mail_templates(settings), transport_for(settings, clock), settings, clock)
    return build_enrollment(uow, clock, settings, clients, mail=mail)


def start_enrollment(app: App) -> EnrollmentSite:
    """Serve the sign-up pages on ``enrollment.listen`` (the registry's ``enrollment`` job does retries).

    A port that cannot be bound is logged as an error and leaves billing running (the site is off until
    the daemon restarts with a free address): the daemon's first duty is billing.
    """
    settings = app.settings
    service = build_site_service(app.uow, app.clock, settings, app.clients)
    host, port = split_address(settings.enrollment.listen)
    server: EnrollmentServer | None
    try:
        server = EnrollmentServer(
            create_app(service, settings, app.clock),
            host,
            port,
            workers=settings.enrollment.workers,
            request_timeout=settings.enrollment.request_timeout_seconds,
        )
    except OSError as error:
        log.error(
            "sign-up pages not served: cannot listen; set enrollment.listen to a free address",
            listen=settings.enrollment.listen,
            error=error.strerror or str(error),
        )
        server = None
    else:
        server.start()
        log.info("sign-up pages served", listen=f"{host}:{server.port}", url=settings.enrollment.base_url())
    return EnrollmentSite(service, server)


__all__ = [
    "EnrollmentServer",
    "EnrollmentSite",
    "build_enrollment",
    "create_app",
    "solusvm_factory",
    "start_enrollment",
]
