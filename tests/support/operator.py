"""The operator endpoint as a test reaches it: a started daemon with an admin token, and GETs over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests

from bridge.bootstrap import App
from bridge.daemon import Daemon
from bridge.sync.systemd import SystemdNotifier

TOKEN = "admin-token-0123456789"
HEALTH = {"listen": "127.0.0.1:0", "admin_token": TOKEN}
"""The ``[health]`` section: any free port, this admin token."""


@contextmanager
def running(app: App) -> Iterator[Daemon]:
    """The daemon of ``app``, started (its operator endpoint listening) and shut down after."""
    daemon = Daemon(app, notifier=SystemdNotifier({}))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.shutdown()


def get(daemon: Daemon, path: str, token: str | None = TOKEN) -> requests.Response:
    """GET ``path`` from the daemon's operator endpoint, with ``token`` as the Bearer token (None: none)."""
    assert daemon.health is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{daemon.health.port}{path}", headers=headers, timeout=10)
