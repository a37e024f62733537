"""Per-IP and per-email limits on sign-up and link requests: a sliding window, in memory.

Counts live in the process that serves the pages (a restart forgets them; several daemons each count
their own). Time comes from the injected clock, so tests move it instead of waiting.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from bridge.clock import Clock

SWEEP_AT = 10_000
"""With this many keys remembered, the idle ones are forgotten."""


class RateLimiter:
    def __init__(self, clock: Clock, window: timedelta) -> None:
        self._clock = clock
        self._window = window
        self._hits: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, limits: Iterable[tuple[str, int]]) -> timedelta | None:
        """Count one request against each ``(key, limit)``; None when every key is within its limit,
        else how long until the fullest one allows again (and nothing is counted)."""
        now = self._clock.now()
        wanted = list(limits)
        with self._lock:
            wait: timedelta | None = None
            for key, limit in wanted:
                hits = self._recent(key, now)
                if len(hits) >= limit:
                    until = hits[len(hits) - limit] + self._window - now
                    wait = until if wait is None else max(wait, until)
            if wait is not None:
                return wait
            for key, _ in wanted:
                self._hits.setdefault(key, deque()).append(now)
            if len(self._hits) > SWEEP_AT:
                for key in [key for key in self._hits if not self._recent(key, now)]:
                    del self._hits[key]
        return None

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        hits = self._hits.get(key, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        return hits
