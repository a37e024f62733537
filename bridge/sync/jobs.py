"""Jobs and the runner that gives every job run a lease and a diary entry.

A job is a function of a :class:`JobContext`, listed in :mod:`bridge.sync.registry`; the daemon
schedules each by its cron expression in ``[schedule]``, and ``billing-bridge`` commands run the same
functions by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine

from bridge.clock import Clock
from bridge.logs import get_logger, masker
from bridge.settings import Settings
from bridge.store import jobs as store

log = get_logger(__name__)

RUN_STATUSES = ("succeeded", "failed", "skipped")


class JobStopped(Exception):
    """Raised by :meth:`JobContext.checkpoint` when the daemon is shutting down between steps."""


@dataclass
class JobContext:
    """What a running job may use: the clock, the store, the settings, and the stop signal."""

    clock: Clock
    engine: Engine
    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)

    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def checkpoint(self) -> None:
        """Call between steps: a shutdown ends the job here, with the finished steps committed."""
        if self.stop_event.is_set():
            raise JobStopped()


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    run: Callable[[JobContext], Any]


@dataclass(frozen=True)
class JobOutcome:
    job: str
    status: str
    result: Any = None
    error: str | None = None


class JobRunner:
    """Runs a job under its lease and records the run; a failure is recorded, never raised."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        owner: str,
        *,
        jobs: dict[str, JobSpec],
        metrics: CollectorRegistry | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.owner = owner
        self.jobs = jobs
        self.stop_event = stop_event or threading.Event()
        self.lease_ttl = timedelta(seconds=settings.daemon.lease_seconds)
        self.runs_total = Counter(
            "billing_bridge_job_runs",
            "Job runs by this process, by outcome",
            ["job", "status"],
            registry=metrics,
        )
        for name in self.jobs:
            for status in RUN_STATUSES:
                self.runs_total.labels(job=name, status=status)

    def run(self, name: str) -> JobOutcome:
        spec = self.jobs[name]
        with self.holding(name) as held:
            if not held:
                log.info("job skipped: another daemon holds its lease", job=name)
                self.runs_total.labels(job=name, status="skipped").inc()
                return JobOutcome(name, "skipped")
            with self.engine.begin() as connection:
                run_id = store.start_run(connection, name, self.owner, self.clock.now())
            outcome = JobOutcome(name, "failed", error="interrupted")
            try:
                outcome = self._call(spec)
            finally:
                with self.engine.begin() as connection:
                    store.finish_run(connection, run_id, outcome.status, self.clock.now(), outcome.error)
        self.runs_total.labels(job=name, status=outcome.status).inc()
        return outcome

    @contextmanager
    def holding(self, name: str) -> Iterator[bool]:
        """Hold the job's lease for the block (renewed while it runs); yields False if another holds it.

        The CLI takes the same lease as the daemon's job, so a manual `billing-bridge sync` never runs
        beside the scheduled one.
        """
        lease = f"job:{name}"
        with self.engine.begin() as connection:
            held = store.try_acquire_lease(connection, lease, self.owner, self.clock.now(), self.lease_ttl)
        if not held:
            yield False
            return
        keeper = _LeaseKeeper(self, lease)
        keeper.start()
        try:
            yield True
        finally:
            keeper.stop()
            with self.engine.begin() as connection:
                store.release_lease(connection, lease, self.owner)

    def _call(self, spec: JobSpec) -> JobOutcome:
        ctx = JobContext(self.clock, self.engine, self.settings, self.stop_event)
        log.info("job started", job=spec.name)
        try:
            result = spec.run(ctx)
        except JobStopped:
            log.info("job stopped between steps for shutdown", job=spec.name)
            return JobOutcome(spec.name, "failed", error="stopped for shutdown before finishing")
        except Exception as error:
            summary = masker.mask_text(f"{type(error).__name__}: {error}")[:1000]
            log.error("job failed", job=spec.name, error=summary, exc_info=True)
            return JobOutcome(spec.name, "failed", error=summary)
        log.info("job finished", job=spec.name)
        return JobOutcome(spec.name, "succeeded", result=result)


class _LeaseKeeper:
    """Renews a running job's lease so a long run is not taken over by another daemon."""

    def __init__(self, runner: JobRunner, lease: str) -> None:
        self._runner = runner
        self._lease = lease
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{lease}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self._runner.lease_ttl.total_seconds() / 3
        while not self._done.wait(interval):
            runner = self._runner
            with runner.engine.begin() as connection:
                store.try_acquire_lease(
                    connection, self._lease, runner.owner, runner.clock.now(), runner.lease_ttl
                )
