"""The progress bar of a long manual run: counts and ETA on a terminal, nothing otherwise.

Click's own progress bar (click is already the CLI's library, so no new dependency, and it draws counts,
a bar and an ETA on one line it rewrites). The services only report counts (:mod:`bridge.progress`); this
module draws them. Nothing is drawn when standard output is not a terminal (a pipe, a file, cron, the
systemd units) or with ``--json``: then the output is the command's own, and the logs stay JSON on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from bridge.progress import Progress, no_progress


def wanted(as_json: bool) -> bool:
    """Whether a bar is drawn: standard output is a terminal and the output is not JSON."""
    return not as_json and sys.stdout.isatty()


REDRAWS = 500
"""At most about this many redraws of a bar: enough to see it move, few enough to cost nothing."""


@contextmanager
def progress_bar(label: str, *, as_json: bool) -> Iterator[Progress]:
    """A :data:`~bridge.progress.Progress` that draws ``label``, ``done/total``, the bar and the ETA.

    The bar starts at the first report (when the total is known) and is finished on leaving the block,
    also when the run fails, so the terminal's next line starts clean.
    """
    if not wanted(as_json):
        yield no_progress
        return
    drawn = _Bar(label)
    try:
        yield drawn.report
    finally:
        drawn.finish()


class _Bar:
    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None  # click's ProgressBar, made at the first report

    def report(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=max(total, 1), label=self._label, show_pos=True, show_eta=True, show_percent=True
            )
            self._bar.__enter__()
        self._bar.length = max(total, done, 1)
        step = max(1, total // REDRAWS)  # a run reporting every client redraws ~REDRAWS times, not 20,000
        if done - self._bar.pos >= step or (done == total and done > self._bar.pos):
            self._bar.update(done - self._bar.pos)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
