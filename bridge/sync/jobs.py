"""Jobs and the runner that gives every job run a lease and a diary entry.

A job is a function of a :class:`JobContext`, listed in :mod:`bridge.sync.registry`; the daemon
schedules each by its cron expression in ``[schedule]``, and ``billing-bridge`` commands run the same
functions by hand.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.logs import SecretMasker, get_logger
from bridge.settings import Settings
from bridge.store import jobs as store
from bridge.store.unit_of_work import StoreError, UnitOfWork

if TYPE_CHECKING:
    from bridge.reports.publish import ReportPublisher
    from bridge.services.credit import CreditService
    from bridge.services.enrollment import EnrollmentService
    from bridge.services.invoicing import InvoicingService
    from bridge.services.payments import PaymentsSync
    from bridge.services.periods import PeriodsService
    from bridge.services.taxes import TaxService
    from bridge.sync.cloud_actions import CloudActions
    from bridge.sync.mail_delivery import MailDelivery
    from bridge.sync.push import OutboxPusher
    from bridge.usage.retention import HourlyRetention
    from bridge.usage.sync import UsageSync

Sleep = Callable[[float], None]
"""A vendor client's wait between retries (:func:`bridge.sync.waits.stop_aware_sleep` in a job)."""

log = get_logger(__name__)

RUN_STATUSES = ("succeeded", "failed", "skipped")


EXCLUSIONS: dict[str, tuple[str, ...]] = {
    "invoicing": ("recalculation",),
    "recalculation": ("invoicing",),
}
"""Work that never runs beside other work, across every daemon on the database: month end (``invoicing``)
and a plan recalculation (bridge/services/plans.py, which replaces issued invoices) each refuse to start
while the other's lease is held by anyone (:meth:`JobRunner.holding`)."""


class JobStopped(Exception):
    """Raised by :meth:`JobContext.checkpoint` when the daemon is shutting down between steps."""


class LeaseLost(BridgeError):
    """The run's lease expired (a renewal failed or came too late) or another holder took it: the run stops
    before its next external call, leaving what it was doing for the new holder to settle."""


class Lease:
    """One acquisition of a job's lease: its name, its token (new at every acquisition) and when it
    expires as far as this holder knows. Shared by the holder's threads and its renewer; thread-safe.

    :meth:`check` is the holder's guard before every external call: it raises :class:`LeaseLost` once a
    renewal failed, or once the clock reaches the expiry (a renewal that has not come in time, say after
    the process was paused). The store's fenced writes check the same lease in the database.
    """

    def __init__(self, name: str, token: str, owner: str, clock: Clock, expires_at: datetime) -> None:
        self.name = name
        self.token = token
        self.owner = owner
        self._clock = clock
        self._expires_at = expires_at
        self._lost: str | None = None
        self._lock = threading.Lock()

    @property
    def expires_at(self) -> datetime:
        with self._lock:
            return self._expires_at

    def renewed(self, expires_at: datetime) -> None:
        with self._lock:
            if self._lost is None:
                self._expires_at = expires_at

    def lose(self, reason: str) -> None:
        with self._lock:
            if self._lost is None:
                self._lost = reason

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is still held, unexpired by the clock."""
        with self._lock:
            lost, expires_at = self._lost, self._expires_at
        if lost is None and self._clock.now() >= expires_at:
            lost = f"it expired at {expires_at.isoformat()} before a renewal came in"
        if lost is not None:
            self.lose(lost)
            raise LeaseLost(f"lease {self.name} lost: {lost}; stopped before the next external call")

    def __repr__(self) -> str:  # the token is no secret, but it is noise in logs
        return f"Lease({self.name!r}, owner={self.owner!r})"


@contextmanager
def hold_lease(
    uow: UnitOfWork, clock: Clock, name: str, owner: str, ttl: timedelta
) -> Iterator[Lease | None]:
    """Hold the lease ``name`` for the block, renewed every third of ``ttl``; None if another holds it."""
    now = clock.now()
    with uow.writing() as connection:
        token = store.try_acquire_lease(connection, name, owner, now, ttl)
    if token is None:
        yield None
        return
    lease = Lease(name, token, owner, clock, now + ttl)
    keeper = _LeaseKeeper(uow, clock, lease, ttl)
    keeper.start()
    try:
        yield lease
    finally:
        keeper.stop()
        with uow.writing() as connection:
            store.release_lease(connection, name, token)


class JobServices(Protocol):
    """What a job may use of the app (:class:`bridge.bootstrap.App` is one; the daemon's moving parts do
    not import the composition root): the clock, the store, the settings and the services, built once."""

    @property
    def clock(self) -> Clock: ...
    @property
    def uow(self) -> UnitOfWork: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def invoicing(self) -> InvoicingService: ...
    @property
    def credit(self) -> CreditService: ...
    @property
    def periods(self) -> PeriodsService: ...
    @property
    def payments(self) -> PaymentsSync: ...
    @property
    def enrollment(self) -> EnrollmentService: ...
    @property
    def taxes(self) -> TaxService: ...
    def usage_sync(self, *, checkpoint: Callable[[], None], sleep: Sleep) -> UsageSync: ...
    @property
    def hourly_retention(self) -> HourlyRetention: ...
    def cloud_actions(self, *, sleep: Sleep) -> CloudActions: ...
    def mail_delivery(self) -> MailDelivery: ...
    def pusher(self, **options: Any) -> OutboxPusher: ...
    @property
    def reports(self) -> ReportPublisher: ...


@dataclass
class JobContext:
    """What a running job may use: the app (its services), the stop signal, the lease it runs under (None
    only when a test calls a job function directly) and the metrics registry."""

    app: JobServices
    stop_event: threading.Event = field(default_factory=threading.Event)
    lease: Lease | None = None
    metrics: CollectorRegistry | None = None

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def settings(self) -> Settings:
        return self.app.settings

    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def checkpoint(self) -> None:
        """Call between steps: a shutdown ends the job here, with the finished steps committed; so does a
        lost lease (:class:`LeaseLost`), since another runner may have the job by now."""
        if self.stop_event.is_set():
            raise JobStopped()
        if self.lease is not None:
            self.lease.check()


@dataclass(frozen=True)
class JobSpec:
    """A job. A ``shared`` job partitions its work by client through the database (month end,
    process_clients: bridge/services/chunks.py; the push: bridge/store/push_claims.py), so every daemon
    runs it at once and each takes its own clients: its lease is per daemon, keeping only one run of it
    at a time in each."""

    name: str
    description: str
    run: Callable[[JobContext], Any]
    shared: bool = False


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
        app: JobServices,
        owner: str,
        *,
        jobs: dict[str, JobSpec],
        masker: SecretMasker,
        metrics: CollectorRegistry | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.app = app
        self.uow = app.uow
        self.clock = app.clock
        settings = app.settings
        self.owner = owner
        self.jobs = jobs
        self.masker = masker
        self.stop_event = stop_event or threading.Event()
        self.lease_ttl = timedelta(seconds=settings.daemon.lease_seconds)
        self.metrics = metrics
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
        """Run the job once under its lease; one log line, "job run", says how it ended (see :meth:`_log`)."""
        spec = self.jobs[name]
        with self.holding(name) as lease:
            if lease is None:
                outcome = JobOutcome(name, "skipped", error=self.busy(name))
                self._log(outcome, started=self.clock.now())
                self.runs_total.labels(job=name, status="skipped").inc()
                return outcome
            started = self.clock.now()
            with self.uow.writing() as connection:
                run_id = store.start_run(connection, name, self.owner, started)
            outcome, failure = JobOutcome(name, "failed", error="interrupted"), None
            try:
                outcome, failure = self._call(spec, lease)
            finally:
                with self.uow.writing() as connection:
                    store.finish_run(connection, run_id, outcome.status, self.clock.now(), outcome.error)
                self._log(outcome, started=started, failure=failure)
        self.runs_total.labels(job=name, status=outcome.status).inc()
        return outcome

    def _log(self, outcome: JobOutcome, *, started: datetime, failure: BaseException | None = None) -> None:
        """The run's one log line: ``job run`` with the job, its outcome (succeeded, failed, skipped), how
        long it took by the clock, and, when it failed, the error (masked) and the traceback of an
        unexpected exception. Info when it succeeded or was skipped, error when it failed."""
        fields: dict[str, Any] = {
            "job": outcome.job,
            "outcome": outcome.status,
            "seconds": round((self.clock.now() - started).total_seconds(), 3),
        }
        if outcome.error is not None:
            fields["error"] = outcome.error
        if outcome.status == "failed":
            log.error("job run", **fields, exc_info=failure or False)
        else:
            log.info("job run", **fields)

    @contextmanager
    def holding(self, name: str) -> Iterator[Lease | None]:
        """Hold the job's lease ``job:<name>`` for the block (renewed while it runs); None if another
        holds it, or if work it excludes (:data:`EXCLUSIONS`) runs anywhere now.

        The CLI takes the same lease as the daemon's job, so a manual `billing-bridge sync` never runs
        beside the scheduled one. A shared job's lease is this daemon's own (:func:`job_lease`); a name
        that is no job (``recalculation``) is one lease for every daemon.

        Exclusion goes through the database without a lock held across the work: the lease is taken and
        committed first, then the excluded work's leases are read in a new transaction. Of two daemons
        starting excluded work at once, the later reader sees the other's committed lease, so at most one
        goes on (both may give up; each says to try again).
        """
        spec = self.jobs.get(name)
        worker = self.owner if spec is not None and spec.shared else None
        with hold_lease(self.uow, self.clock, job_lease(name, worker), self.owner, self.lease_ttl) as lease:
            if lease is not None and self._excluded(name):
                yield None
                return
            yield lease

    def busy(self, name: str) -> str:
        """Why :meth:`holding` gave no lease for ``name``: who runs it, or the work it excludes, now."""
        spec = self.jobs.get(name)
        leases = [job_lease(name, self.owner if spec is not None and spec.shared else None)]
        leases += [job_lease(work) for work in EXCLUSIONS.get(name, ())]
        now = self.clock.now()
        with self.uow.reading() as connection:
            for lease in leases:
                # this daemon's own leases never refuse it (it takes them over), so they are no reason
                holders = [
                    owner for owner in store.live_holders(connection, lease, now) if owner != self.owner
                ]
                if holders:
                    work = _doing(lease.removeprefix("job:").split("@")[0])
                    return f"{work} is running in {', '.join(holders)} right now; try again when it finishes"
        return f"{_doing(name)} was running elsewhere a moment ago; try again"

    def _excluded(self, name: str) -> bool:
        excluded = EXCLUSIONS.get(name, ())
        if not excluded:
            return False
        now = self.clock.now()
        with self.uow.reading() as connection:
            return any(store.live_holders(connection, job_lease(work), now) for work in excluded)

    def _call(self, spec: JobSpec, lease: Lease | None = None) -> tuple[JobOutcome, BaseException | None]:
        """The job's outcome, and the unexpected exception that failed it (for the log's traceback)."""
        ctx = JobContext(self.app, self.stop_event, lease, self.metrics)
        try:
            result = spec.run(ctx)
        except LeaseLost as error:
            return JobOutcome(spec.name, "failed", error=str(error)), None
        except JobStopped:
            return JobOutcome(spec.name, "failed", error="stopped for shutdown before finishing"), None
        except Exception as error:
            summary = self.masker.mask_text(f"{type(error).__name__}: {error}")[:1000]
            return JobOutcome(spec.name, "failed", error=summary), error
        return JobOutcome(spec.name, "succeeded", result=result), None


def _doing(work: str) -> str:
    return "a plan recalculation" if work == "recalculation" else work


def job_lease(name: str, worker: str | None = None) -> str:
    """The lease a job (and the CLI command doing the same work) runs under; a shared job's is one per
    ``worker`` (its owner, hashed to fit the lease's name)."""
    if worker is None:
        return f"job:{name}"
    return f"job:{name}@{hashlib.sha256(worker.encode()).hexdigest()[:16]}"


class _LeaseKeeper:
    """Renews a running job's lease every third of its time, so a long run is not taken over; a renewal
    that finds the lease expired or taken marks it lost, and the run stops before its next external call.
    A renewal that cannot reach the database is tried again; the lease then ends at its last expiry."""

    def __init__(self, uow: UnitOfWork, clock: Clock, lease: Lease, ttl: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._lease = lease
        self._ttl = ttl
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{lease.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self._ttl.total_seconds() / 3
        lease = self._lease
        while not self._done.wait(interval):
            now = self._clock.now()
            try:
                with self._uow.writing() as connection:
                    renewed = store.renew_lease(connection, lease.name, lease.token, now, self._ttl)
            except StoreError as error:
                log.warning("lease renewal failed; tried again", lease=lease.name, error=str(error)[:200])
                continue
            if not renewed:
                log.error("lease lost: expired before its renewal, or taken over", lease=lease.name)
                lease.lose(f"the renewal at {now.isoformat()} found it expired or taken over")
                return
            lease.renewed(now + self._ttl)
