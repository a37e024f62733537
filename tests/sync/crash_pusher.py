"""The process the crash test kills: one ``push`` job run, as the daemon runs it, in a child process.

Started through a multiprocessing forkserver that has imported this module (and so the bridge) once, so
each of the test's many restarts costs a fork, not a Python start-up.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from bridge.bootstrap import build_app
from bridge.clock import FixedClock
from bridge.logs import configure
from bridge.settings import parse_settings

OWNER = "crash-test-daemon"
"""Every run is the same daemon restarted, so it takes over its own lease at once."""


def push_once(database_url: str, whmcs: dict[str, Any], now: str) -> None:
    """Run the push job once at ``now`` (ISO 8601) and exit 0 when it succeeded (the test kills most runs
    before that)."""
    configure("warning", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    settings = parse_settings({"database": {"url": database_url}, "whmcs": whmcs})
    app = build_app(settings, clock=FixedClock(datetime.fromisoformat(now)), owner=OWNER)
    outcome = app.runner.run("push")
    app.close()
    os._exit(0 if outcome.status == "succeeded" else 3)
