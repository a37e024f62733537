"""A WSGI app served on a background thread: the operator endpoint and the sign-up pages each run one.

The server keeps its promises under abuse: a fixed pool of ``workers`` threads serves the connections
(those beyond the pool and a short queue are closed at once, so a flood cannot grow threads without
end), and each connection gets ``request_timeout`` seconds to send its whole request, headers and body:
a client that sends them slowly ("slowloris") is hung up on when that time is up, never holding a worker
for longer. The same time bounds every read and write on the socket. With ``tls`` the server speaks
HTTPS; the handshake counts against the same time.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

MAX_BODY = 256 * 1024
"""The largest request body read (the sign-up form is far smaller; Flask refuses above 64 KiB)."""
QUEUED_PER_WORKER = 2
"""Connections that may wait for a free worker, per worker, before new ones are closed at once."""


class _PooledServer(WSGIServer):
    """A WSGI server whose connections are served on a bounded pool of threads."""

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[WSGIRequestHandler],
        *,
        workers: int,
        request_timeout: float,
        tls: ssl.SSLContext | None,
        name: str,
        log_request: Callable[[str], None],
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.request_timeout = request_timeout
        self.log_request = log_request
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(workers * (1 + QUEUED_PER_WORKER))
        super().__init__(address, handler)  # closes the server (and so the pool) when it cannot listen
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):  # pool and queue full: hang up rather than grow
            self.log_request(f"{client_address[0]} refused: every worker busy and the queue full")
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (reset, timed out, a TLS error) is one log line, not a traceback."""
        self.log_request(f"{client_address[0]} connection failed")

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _RequestHandler(WSGIRequestHandler):
    """Reads the whole request (TLS handshake, request line, headers, body) within the server's request
    time, then runs the application on the body read."""

    server: _PooledServer

    def setup(self) -> None:
        self.request.settimeout(self.server.request_timeout)  # every read and write on the socket
        self.hung_up = threading.Event()
        super().setup()

    def handle(self) -> None:
        watchdog = threading.Timer(self.server.request_timeout, self._hang_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            body = self._read_request()
        except (OSError, ValueError):  # hung up on, reset, timed out, or a TLS handshake that failed
            body = None
        finally:
            watchdog.cancel()
        if body is None or self.hung_up.is_set():
            return
        output: Any = self.wfile
        handler = ServerHandler(io.BytesIO(body), output, self.get_stderr(), self.get_environ())
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref logs through it
        handler.run(self.server.get_app())  # type: ignore[arg-type]

    def _read_request(self) -> bytes | None:
        """The request's body once the request line and headers are parsed; None when an error was sent."""
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return None
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return None
        if not self.parse_request():
            return None
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Send a Content-Length")
            return None
        length_text = self.headers.get("Content-Length") or "0"
        if not length_text.isdigit():
            self.send_error(400, "Bad Content-Length")
            return None
        length = int(length_text)
        if length > MAX_BODY:
            self.send_error(413)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            return None  # the client went away mid-body
        return body

    def _hang_up(self) -> None:
        """The request took too long to arrive: close the connection, so the worker is free again."""
        self.hung_up.set()
        self.server.log_request(f"{self.client_address[0]} hung up on: request not sent in time")
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log_request(format % args)


class BackgroundServer:
    """Serves ``app`` on ``host:port`` (IPv4 or IPv6) until :meth:`stop`; OSError when it cannot listen.

    ``log_request`` receives each access-log line, so a server can redact what its URLs carry.
    ``workers`` and ``request_timeout`` bound the threads and the time a request may take to arrive
    (module docstring); ``tls`` makes it HTTPS.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        host: str,
        port: int,
        *,
        name: str,
        log_request: Callable[[str], None],
        workers: int = 8,
        request_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _PooledServer(
            (host, port),
            _RequestHandler,
            workers=workers,
            request_timeout=request_timeout,
            tls=tls,
            name=name,
            log_request=log_request,
        )
        self._server.set_app(app)
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
