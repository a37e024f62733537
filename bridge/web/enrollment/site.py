"""Serving the sign-up site: the app's enrollment service (built in :mod:`bridge.bootstrap`, with its mailer,
keys and SolusVM accounts) through the Flask app and the bounded server.

The registry's ``enrollment`` job retries the SolusVM users that sign-up had to defer
(``[schedule] enrollment``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.services.enrollment import EnrollmentService
from bridge.services.self_service import SelfService
from bridge.settings import Settings, split_address
from bridge.web.enrollment.app import create_app
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


def start_enrollment(
    service: EnrollmentService,
    settings: Settings,
    clock: Clock,
    self_service: SelfService | None = None,
) -> EnrollmentSite:
    """Serve the sign-up pages on ``enrollment.listen`` (the registry's ``enrollment`` job does retries).

    A port that cannot be bound is logged as an error and leaves billing running (the site is off until
    the daemon restarts with a free address): the daemon's first duty is billing.
    """
    host, port = split_address(settings.enrollment.listen)
    server: EnrollmentServer | None
    try:
        server = EnrollmentServer(
            create_app(service, settings, clock, self_service),
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
