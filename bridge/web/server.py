"""A WSGI app served on a background thread: the operator endpoint and the sign-up pages each run one."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class BackgroundServer:
    """Serves ``app`` on ``host:port`` (IPv4 or IPv6) until :meth:`stop`; OSError when it cannot listen.

    ``log_request`` receives each access-log line, so a server can redact what its URLs carry.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        host: str,
        port: int,
        *,
        name: str,
        log_request: Callable[[str], None],
    ) -> None:
        class Handler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log_request(format % args)

        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app, server_class=server_class, handler_class=Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
