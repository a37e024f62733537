"""The processes the crash tests kill or pause: one job run (``push``, ``usage_sync``, ``invoicing``), as the
daemon runs it, in a child process.

Started through a multiprocessing forkserver that has imported this module (and so the bridge) once, so
each of the tests' many restarts costs a fork, not a Python start-up. The child's clock is a
:class:`FileClock` the test moves, so a test can let a paused child's lease expire without waiting. A
:class:`Tripwire` kills the child at the Nth SQL statement or commit it makes, counted by SQLAlchemy
events the harness registers on the child's engine (the bridge itself has no test hook).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, event

from bridge.bootstrap import build_app
from bridge.domain.instants import as_utc
from bridge.logs import configure
from bridge.settings import parse_settings

OWNER = "crash-test-daemon"
"""The default owner: every run is the same daemon restarted, so it takes over its own lease at once."""
EXIT_FAILED = 3
"""The child's exit code when its job run failed (a lease lost, a stopped push)."""

Moment = Literal["statement", "commit", "after_commit"]
HANG_GUARD_SECONDS = 120.0
"""Only to turn a hung child (or a trap that never springs) into a clear failure; nothing is timed."""


class Victim:
    """The child process a vendor fake kills, known once it has started (a trap may spring before)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._known = threading.Event()

    def aim(self, pid: int | None) -> None:
        self._pid = pid
        self._known.set()

    def kill(self) -> None:
        if not self._known.wait(HANG_GUARD_SECONDS) or self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it finished first
            os.kill(self._pid, signal.SIGKILL)


class FileClock:
    """Now, as the test last wrote it to ``path``: one clock for a test and all its child processes."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    def now(self) -> datetime:
        return as_utc(datetime.fromisoformat(self._path.read_text()))

    def set(self, instant: datetime) -> None:
        """Move the clock (atomically: a reader sees the old or the new time, never half a line)."""
        draft = self._path.with_name(self._path.name + ".draft")
        draft.write_text(as_utc(instant).isoformat())
        os.replace(draft, self._path)


@dataclass(frozen=True)
class Tripwire:
    """SIGKILL the child itself at the ``at``-th ``moment``: just before an SQL statement runs
    (``statement``; with ``matching``, only statements that begin so are counted), just before a commit
    (``commit``: the transaction is lost), or as the transaction after that commit begins
    (``after_commit``: the commit is kept, nothing after it)."""

    moment: Moment
    at: int
    matching: str | None = None

    def arm(self, engine: Engine) -> None:
        count = [0]
        lock = threading.Lock()

        def tick(*args: Any) -> None:
            if self.matching is not None and not str(args[2]).lstrip().startswith(self.matching):
                return
            with lock:
                count[0] += 1
                fire = count[0] >= self.at
            if fire:
                os.kill(os.getpid(), signal.SIGKILL)

        if self.moment == "statement":
            event.listen(engine, "before_cursor_execute", tick)
        elif self.moment == "commit":
            event.listen(engine, "commit", tick)
        else:
            count[0] = -1  # the first transaction's begin is not after a commit
            event.listen(engine, "begin", tick)


def run_job(
    database_url: str,
    sections: dict[str, Any],
    clock_path: str,
    job: str = "push",
    owner: str = OWNER,
    tripwire: Tripwire | None = None,
) -> None:
    """Run ``job`` once at the clock's time and exit 0 when it succeeded, EXIT_FAILED when it failed (the
    tests kill most runs before either)."""
    configure("warning", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    settings = parse_settings({**sections, "database": {"url": database_url}})
    app = build_app(settings, clock=FileClock(clock_path), owner=owner)
    if tripwire is not None:
        tripwire.arm(app.engine)
    outcome = app.runner.run(job)
    app.close()
    os._exit(0 if outcome.status == "succeeded" else EXIT_FAILED)


def push_once(database_url: str, whmcs: dict[str, Any], clock_path: str, owner: str = OWNER) -> None:
    """One ``push`` job run with ``[whmcs]`` as given (and the daemon's minimum lease)."""
    run_job(database_url, {"whmcs": whmcs, "daemon": {"lease_seconds": 30}}, clock_path, "push", owner)


def killable_push(
    forkserver: BaseContext, victim: Victim, database_url: str, whmcs: dict[str, Any], clock_path: str
) -> int | None:
    """:func:`push_once` in a child of ``forkserver``, aimed at by ``victim`` (a fake's trap kills it);
    returns its exit code (``-SIGKILL`` when killed). A child still running after HANG_GUARD_SECONDS is
    killed and reported as hanging."""
    child = forkserver.Process(target=push_once, args=(database_url, whmcs, clock_path))  # type: ignore[attr-defined]
    child.start()
    victim.aim(child.pid)
    child.join(HANG_GUARD_SECONDS)
    if child.is_alive():
        child.kill()
        raise AssertionError(f"the push did not end (no exit after {HANG_GUARD_SECONDS:.0f} s): it hangs")
    code: int | None = child.exitcode
    return code
