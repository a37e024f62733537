"""The sign-up pages' own HTTP server: threaded, on ``enrollment.listen``, beside the operator endpoint.

Request lines carry single-use tokens (``/verify/<token>``, ``/sso/<token>``), so they are logged (at
debug level) with the token replaced by ``***``.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bridge.logs import MASK, get_logger

log = get_logger(__name__)

_TOKEN_IN_PATH = re.compile(r"/(verify|sso)/[^/?\s\"]+")


def redact(text: str) -> str:
    """``text`` with any link token in it replaced by ``***``."""
    return _TOKEN_IN_PATH.sub(rf"/\1/{MASK}", text)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("enrollment request", line=redact(format % args))


class EnrollmentServer:
    """Serves a WSGI app on a background thread until :meth:`stop`; raises OSError when it cannot listen."""

    def __init__(self, app: Callable[..., Iterable[bytes]], host: str, port: int) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app, server_class=server_class, handler_class=_Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="enrollment", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
