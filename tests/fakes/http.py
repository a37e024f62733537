"""A fake vendor's HTTP server on 127.0.0.1, served from a background thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ServerThread:
    """Serves ``server`` (bound to 127.0.0.1, port 0 for a free one) until :meth:`stop`."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name=name, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


Reply = tuple[int, str, bytes]
"""(HTTP status, content type, body)."""


class ReplyingHandler(BaseHTTPRequestHandler):
    """A request handler that writes a fake's reply, or hangs up without one when the reply is None."""

    timeout = 10

    def answer(self, reply: Reply | None) -> None:
        if reply is None:
            self.close_connection = True
            return
        self.reply(*reply)

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr."""
