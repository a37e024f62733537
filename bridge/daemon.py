"""The process: the scheduler, the health and sign-up servers, signals, and a clean stop in time.

One instance per job at a time (and, through leases, across daemons), missed runs coalesced into one,
a failing job recorded and logged but never fatal. ``daemon.run_on_start`` names jobs run once at start.

SIGTERM/SIGINT set the stop event: retry waits in the vendor clients end at once (they sleep on it) and
jobs stop at their next checkpoint. Running jobs get ``daemon.shutdown_timeout_seconds`` to get there;
a job still running after that (stuck in a vendor's socket read, say) is abandoned, logged by name, and
the process exits 0 all the same (:attr:`Daemon.abandoned`; ``billing-bridge run`` then ends the process
without waiting for that thread). An abandoned job's lease lapses after ``daemon.lease_seconds``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from datetime import datetime
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bridge.bootstrap import App
from bridge.logs import get_logger
from bridge.settings import JOB_OFF, split_address
from bridge.sync.jobs import JobOutcome, JobRunner
from bridge.sync.systemd import SystemdNotifier
from bridge.web.enrollment.site import EnrollmentSite, start_enrollment
from bridge.web.health import HealthApp, HealthServer, tls_context

log = get_logger(__name__)


EXECUTOR_LOGGER = "apscheduler.executors"


def quiet_scheduler_logs() -> None:
    """Leave the log line of a job run to the job runner (bridge/sync/jobs.py: "job run", one per run,
    with its outcome). APScheduler's executor logs "Running job" and then "executed successfully" at info
    for every run, even one that failed (the runner records a failure; it never raises to APScheduler);
    its warnings (a missed run, a job that raised past the runner) still show."""
    logging.getLogger(EXECUTOR_LOGGER).setLevel(logging.WARNING)


class RunningJobs:
    """The jobs running in the scheduler's threads, so that shutdown can wait for them, up to a limit.

    A run the scheduler hands over once shutdown began (it was queued behind busy threads) never starts.
    """

    def __init__(self, runner: JobRunner) -> None:
        self._runner = runner
        self._running: Counter[str] = Counter()
        self._changed = threading.Condition()

    def run(self, name: str) -> JobOutcome:
        with self._changed:
            if self._runner.stop_event.is_set():
                outcome = JobOutcome(name, "skipped", error="the daemon is shutting down")
                log.info("job run", job=name, outcome=outcome.status, error=outcome.error)
                return outcome
            self._running[name] += 1
        try:
            return self._runner.run(name)
        finally:
            with self._changed:
                self._running[name] -= 1
                if not self._running[name]:
                    del self._running[name]
                self._changed.notify_all()

    def wait_until_idle(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for every running job to end; the names still running."""
        with self._changed:
            self._changed.wait_for(lambda: not self._running, timeout)
            return sorted(self._running)


class Daemon:
    def __init__(self, app: App, *, notifier: SystemdNotifier | None = None) -> None:
        self.app = app
        self.notifier = notifier or SystemdNotifier()
        self.stop_event = app.runner.stop_event
        self.started_at: datetime | None = None
        quiet_scheduler_logs()
        self.scheduler = BackgroundScheduler(
            timezone=app.settings.billing.zone(),
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
        )
        self.health: HealthServer | None = None
        self.enrollment: EnrollmentSite | None = None
        self._watchdog: threading.Thread | None = None
        self.running = RunningJobs(app.runner)
        self.abandoned: list[str] = []  # jobs still running when shutdown gave up waiting for them

    def start(self) -> None:
        """Check the schema, schedule the jobs, serve health, and tell systemd we are ready."""
        self.app.require_schema()
        self.started_at = self.app.clock.now()
        for name in self.app.jobs:
            expression = getattr(self.app.settings.schedule, name, JOB_OFF)
            if expression == JOB_OFF:
                log.info("job not scheduled (off)", job=name)
                continue
            trigger = CronTrigger.from_crontab(expression, timezone=self.app.settings.billing.zone())
            self.scheduler.add_job(self.running.run, trigger, args=[name], id=name, name=name)
        for name in self.app.settings.daemon.run_on_start:
            run_date = self.app.clock.now()
            self.scheduler.add_job(
                self.running.run, "date", run_date=run_date, args=[name], id=f"{name}@start", name=name
            )
        self.scheduler.start()
        if self.app.settings.health.enabled:
            self._start_health()
        if self.app.settings.enrollment.enabled:
            self.enrollment = start_enrollment(
                self.app.enrollment, self.app.settings, self.app.clock, self.app.self_service
            )
        self.notifier.ready()
        interval = self.notifier.watchdog_interval()
        if interval:
            self._watchdog = threading.Thread(target=self._pet_watchdog, args=(interval,), daemon=True)
            self._watchdog.start()
        log.info(
            "daemon started",
            jobs=[job.id for job in self.scheduler.get_jobs()],
            health=self._health_address(),
        )

    def handle_signals(self) -> None:
        """Make SIGTERM/SIGINT a clean shutdown; before :meth:`start`, so one that comes as soon as systemd
        hears READY=1 is one too (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def run_until_stopped(self) -> None:
        """Block until SIGTERM/SIGINT (or :meth:`request_stop`), then shut down cleanly."""
        self.handle_signals()
        self.stop_event.wait()
        self.shutdown()

    def request_stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        """Stop scheduling, end retries, give running jobs the shutdown timeout, then stop serving."""
        self.notifier.stopping()
        timeout = self.app.settings.daemon.shutdown_timeout_seconds
        log.info("daemon stopping: letting running jobs reach their next step", timeout_seconds=timeout)
        self.stop_event.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.abandoned = self.running.wait_until_idle(timeout)
        for name in self.abandoned:
            log.warning(
                "job abandoned at shutdown: still running after daemon.shutdown_timeout_seconds",
                job=name,
                timeout_seconds=timeout,
            )
        if self.health is not None:
            self.health.stop()
        if self.enrollment is not None:
            self.enrollment.stop()
        log.info("daemon stopped", abandoned=self.abandoned)

    def status(self) -> dict[str, Any]:
        report = self.app.views.status(list(self.app.jobs), started_at=self.started_at)
        scheduled = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        for job in report["jobs"]:
            fire = scheduled.get(job["name"])
            job["next_run"] = fire.isoformat() if fire else None
        report["scheduler_running"] = self.scheduler.running
        return report

    def _start_health(self) -> None:
        host, port = split_address(self.app.settings.health.listen)
        token = self.app.settings.health.admin_token
        app = HealthApp(
            self.app.engine,
            self.app.metrics,
            is_alive=lambda: bool(self.scheduler.running),
            status=self.status,
            readiness_problems=self.app.outbox.readiness_problems,
            admin_token=token.get_secret_value() if token else None,
            reports=self.app.report_archive,
            can_create=lambda client, by_whmcs: self.app.credit.creation_check(client, whmcs=by_whmcs),
        )
        self.health = HealthServer(app, host, port, tls=tls_context(self.app.settings.health))
        self.health.start()

    def _health_address(self) -> str | None:
        return f"{self.app.settings.health.listen}" if self.health else None

    def _pet_watchdog(self, interval: float) -> None:
        while not self.stop_event.wait(interval):
            if self.scheduler.running:
                self.notifier.watchdog()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal received", signal=signal.Signals(signum).name)
        self.stop_event.set()
