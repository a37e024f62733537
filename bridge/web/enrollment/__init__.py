"""The post-pay sign-up pages and single sign-on into SolusVM (issue 9), served by the daemon.

:func:`start_enrollment` wires the service, the mailer, the Flask app and the server from settings, and
schedules the retry of SolusVM users that sign-up had to defer (``[schedule] enrollment``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.bootstrap import App
from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.enrollment import EnrollmentService, build_enrollment
from bridge.settings import Settings, split_address
from bridge.store.unit_of_work import UnitOfWork
from bridge.web.enrollment.app import create_app, mail_templates
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


__all__ = ["EnrollmentServer", "EnrollmentSite", "create_app", "start_enrollment"]
