"""Waits that end when the daemon shuts down: what every vendor client's retry back-off sleeps with.

The vendor clients take a ``sleep`` callable (tests pass one that records the waits); the jobs hand them
:func:`stop_aware_sleep`, so a retry loop against an unreachable vendor ends at SIGTERM instead of sleeping
through systemd's stop timeout.
"""

from __future__ import annotations

import threading

from bridge.sync.jobs import JobStopped, Sleep

__all__ = ["Sleep", "stop_aware_sleep"]


def stop_aware_sleep(stop_event: threading.Event) -> Sleep:
    """Wait ``seconds``, or raise :class:`~bridge.sync.jobs.JobStopped` as soon as ``stop_event`` is set
    (at once if it already is), so no retry starts after a shutdown began."""

    def sleep(seconds: float) -> None:
        if stop_event.wait(max(0.0, seconds)):
            raise JobStopped()

    return sleep
