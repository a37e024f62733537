"""How far a long run has got, as the services report it: counts as they go, nothing about terminals.

A service that walks many clients (invoicing, the credit engine, the push, a sync, a reconciliation)
takes a :data:`Progress` callback and calls it with how many items it has done out of how many; the CLI
turns that into a progress bar on a terminal (bridge/cli/progress.py), the daemon passes nothing. So the
services import no terminal library and the bar's look stays the CLI's business.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
"""``progress(done, total)``: ``done`` of ``total`` items finished; called as the run goes, ``done`` never
going back. ``total`` may grow when a run learns of more work (the bar follows it)."""


def no_progress(done: int, total: int) -> None:
    """The default: nobody is watching (the daemon's jobs, tests, ``--json``)."""


class Tally:
    """The counts of one run, reported as they change: work learnt of (:meth:`expect`), work done
    (:meth:`advance`), and :meth:`finish`, which closes the total on what was done (a run that finds
    fewer items than it expected still ends at 100 %)."""

    def __init__(self, progress: Progress = no_progress, *, total: int = 0) -> None:
        self._progress = progress
        self.done = 0
        self.total = total
        if total:
            progress(0, total)

    def expect(self, more: int) -> None:
        self.total += more
        self._progress(self.done, self.total)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.total = max(self.total, self.done)
        self._progress(self.done, self.total)

    def finish(self) -> None:
        self.total = self.done
        self._progress(self.done, self.total)
