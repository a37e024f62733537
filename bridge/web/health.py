"""The operator endpoint: liveness, readiness, a JSON status and Prometheus metrics.

``/healthz`` answers while the scheduler runs; ``/readyz`` only while the database answers and its schema
is at the code's head; ``/status``, ``/metrics``, ``/reports/latest`` (the latest reconciliation page;
``.json`` its summary) and ``/clients/<id>/can-create`` (may the client create or upgrade services now, and
why: what a panel asks before creating a resource; ``?by=whmcs`` when ``<id>`` is the WHMCS client id)
need ``health.admin_token`` as a Bearer token when one is set. Nothing here reveals a secret.
"""

from __future__ import annotations

import hmac
import json
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine

from bridge.errors import BridgeError, InputError, NotFound
from bridge.logs import get_logger
from bridge.reports.archive import ReportArchive
from bridge.services.credit import CreationCheck
from bridge.settings import HealthSettings
from bridge.store.database import schema_state
from bridge.web.server import BackgroundServer

log = get_logger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class HealthApp:
    """A WSGI application; ``is_alive`` and ``status`` are given by the daemon that owns it."""

    def __init__(
        self,
        engine: Engine,
        metrics: CollectorRegistry,
        *,
        is_alive: Callable[[], bool],
        status: Callable[[], dict[str, Any]],
        readiness_problems: Callable[[], list[str]] = list,
        admin_token: str | None = None,
        reports: ReportArchive | None = None,
        can_create: Callable[[str, bool], CreationCheck] | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._is_alive = is_alive
        self._status = status
        self._readiness_problems = readiness_problems
        self._admin_token = admin_token
        self._reports = reports
        self._can_create = can_create

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "only GET is served here"})
        if path == "/healthz":
            return self._healthz(start_response)
        if path == "/readyz":
            return self._readyz(start_response)
        if path in ("/status", "/metrics", *LATEST_REPORT):
            if not self._authorised(environ):
                return _json(start_response, "401 Unauthorized", {"error": "Bearer admin token required"})
            if path in LATEST_REPORT:
                return latest_report(self._reports, path, start_response)
            return (
                self._status_page(start_response) if path == "/status" else self._metrics_page(start_response)
            )
        if (client_ref := _can_create_client(path)) is not None:
            if not self._authorised(environ):
                return _json(start_response, "401 Unauthorized", {"error": "Bearer admin token required"})
            by_whmcs = parse_qs(environ.get("QUERY_STRING", "")).get("by") == ["whmcs"]
            return self._can_create_page(start_response, client_ref, by_whmcs)
        return _json(
            start_response,
            "404 Not Found",
            {
                "error": f"no page {path}; try /healthz /readyz /status /metrics /reports/latest "
                "/clients/<id>/can-create"
            },
        )

    def _can_create_page(
        self, start_response: StartResponse, client_ref: str, by_whmcs: bool
    ) -> Iterable[bytes]:
        if self._can_create is None:
            return _json(start_response, "404 Not Found", {"error": "can-create is not served here"})
        try:
            check = self._can_create(client_ref, by_whmcs)
        except NotFound as error:
            return _json(start_response, "404 Not Found", {"error": str(error)})
        except InputError as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        except Exception as error:
            log.error("can-create failed", error=str(error))
            return _json(
                start_response, "503 Service Unavailable", {"error": "can-create unavailable; see the logs"}
            )
        return _json(start_response, "200 OK", check.document())

    def _healthz(self, start_response: StartResponse) -> Iterable[bytes]:
        if self._is_alive():
            return _json(start_response, "200 OK", {"status": "alive"})
        return _json(start_response, "503 Service Unavailable", {"status": "scheduler not running"})

    def _readyz(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            state = schema_state(self._engine)
        except BridgeError as error:
            return _json(
                start_response, "503 Service Unavailable", {"status": "not ready", "reason": str(error)}
            )
        if not state.at_head:
            reason = (
                f"schema at {state.current or 'none'}, code needs {state.head}: run `billing-bridge migrate`"
            )
            return _json(start_response, "503 Service Unavailable", {"status": "not ready", "reason": reason})
        problems = self._readiness_problems()
        if problems:
            return _json(
                start_response, "503 Service Unavailable", {"status": "degraded", "reasons": problems}
            )
        return _json(start_response, "200 OK", {"status": "ready", "schema": state.current})

    def _status_page(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return _json(start_response, "200 OK", self._status())
        except Exception as error:
            log.error("status page failed", error=str(error))
            return _json(
                start_response, "503 Service Unavailable", {"error": "status unavailable; see the logs"}
            )

    def _metrics_page(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = generate_latest(self._metrics)
        except Exception as error:
            log.error("metrics collection failed", error=str(error))
            return _json(
                start_response, "503 Service Unavailable", {"error": "metrics unavailable; see the logs"}
            )
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    def _authorised(self, environ: Environ) -> bool:
        if not self._admin_token:
            return True
        given = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self._admin_token.encode())


def _can_create_client(path: str) -> str | None:
    """The client reference of a ``/clients/<id>/can-create`` path, else None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "" and parts[1] == "clients" and parts[3] == "can-create" and parts[2]:
        return unquote(parts[2])
    return None


LATEST_REPORT = ("/reports/latest", "/reports/latest.json")
"""The latest reconciliation: the HTML page, and its summary document."""


def latest_report(archive: ReportArchive | None, path: str, start_response: StartResponse) -> list[bytes]:
    """The latest month's page (``/reports/latest``) or summary (``/reports/latest.json``); 404 before the
    first report."""
    latest = archive.latest() if archive is not None else None
    if latest is None:
        return _json(start_response, "404 Not Found", {"error": "no reconciliation report yet"})
    html = path == "/reports/latest"
    body = (latest.html if html else latest.summary).read_bytes()
    kind = "text/html; charset=utf-8" if html else "application/json"
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: StartResponse, status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class HealthServer(BackgroundServer):
    """The operator endpoint's server (request lines logged at debug level); HTTPS with ``tls``."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(
            app,
            host,
            port,
            name="health",
            log_request=lambda line: log.debug("health request", line=line),
            workers=HEALTH_WORKERS,
            tls=tls,
        )


HEALTH_WORKERS = 4
"""Scrapes and probes served at once: a few, for Prometheus and the service manager."""


def tls_context(settings: HealthSettings) -> ssl.SSLContext | None:
    """The server's TLS context from ``health.tls_cert_file``/``tls_key_file`` (checked when the settings
    were read); None when they are unset."""
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context
