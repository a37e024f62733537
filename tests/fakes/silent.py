"""A vendor that never answers: a TCP server on 127.0.0.1 that accepts connections, reads what is sent and
never replies, so the client's request hangs until its own read timeout."""

from __future__ import annotations

import socket
import threading


class SilentServer:
    """Use as a context manager; :attr:`requested` is set once any request bytes have arrived."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-vendor", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    def _swallow(self, connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                self.requested.set()
        except OSError:
            return
