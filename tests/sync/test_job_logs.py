"""One log line per job run, with its outcome: the runner's "job run", never APScheduler's own lines.

APScheduler's executor says "Running job" and then "executed successfully" for every run, also right
after a run that failed (the runner records a failure and returns; it never raises to the scheduler).
"""

from __future__ import annotations

import logging
import threading

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.daemon import Daemon
from bridge.sync.jobs import JobContext, JobRunner, JobSpec
from bridge.sync.systemd import SystemdNotifier


def broken(_ctx: JobContext) -> None:
    raise RuntimeError("nova said no")


def fine(_ctx: JobContext) -> str:
    return "done"


def test_each_run_through_the_scheduler_logs_one_line_with_its_outcome_and_apscheduler_none(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app.runner.jobs["broken"] = JobSpec("broken", "fails", broken)
    app.runner.jobs["fine"] = JobSpec("fine", "succeeds", fine)
    daemon = Daemon(app, notifier=SystemdNotifier({}))
    finished: list[str] = []
    both = threading.Event()

    def ran(event: JobExecutionEvent) -> None:
        finished.append(event.job_id)
        if len(finished) == 2:
            both.set()

    daemon.scheduler.add_listener(ran, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    for name in ("broken", "fine"):
        daemon.scheduler.add_job(daemon.running.run, "date", args=[name], id=name)  # due now
    with capture_logs() as logs, caplog.at_level(logging.INFO, logger="apscheduler"):
        daemon.scheduler.start()
        try:
            assert both.wait(60), finished
        finally:
            daemon.scheduler.shutdown(wait=True)

    runs = sorted((entry["job"], entry["outcome"], entry["log_level"]) for entry in logs)
    assert runs == [("broken", "failed", "error"), ("fine", "succeeded", "info")]
    (failed,) = [entry for entry in logs if entry["outcome"] == "failed"]
    assert failed["event"] == "job run" and failed["error"] == "RuntimeError: nova said no"
    assert isinstance(failed["exc_info"], RuntimeError)  # the traceback goes with the one line
    executor = [
        record.getMessage() for record in caplog.records if record.name.startswith("apscheduler.exec")
    ]
    assert executor == []  # no "Running job", no "executed successfully" after the failure


def test_a_run_another_daemon_holds_is_one_skipped_line(app: App) -> None:
    jobs = {"fine": JobSpec("fine", "succeeds", fine)}
    other = JobRunner(app, "other-daemon", jobs=jobs, masker=app.masker)
    with other.holding("fine"), capture_logs() as logs:
        outcome = JobRunner(app, "this-daemon", jobs=jobs, masker=app.masker).run("fine")

    assert outcome.status == "skipped"
    assert [(entry["event"], entry["outcome"], entry["log_level"]) for entry in logs] == [
        ("job run", "skipped", "info")
    ]
