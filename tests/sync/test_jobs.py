"""Job runs are recorded, failures never escape, and two daemons never run one job at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store import jobs as store
from bridge.sync.jobs import JobContext, JobRunner, JobSpec, LeaseLost


def runner_for(app: App, owner: str, jobs: dict[str, JobSpec]) -> JobRunner:
    return JobRunner(app, owner, jobs=jobs, masker=app.masker)


def test_a_failing_job_is_recorded_with_its_error_and_does_not_raise(app: App) -> None:
    def broken(_ctx: JobContext) -> None:
        raise RuntimeError("nova said no")

    outcome = runner_for(app, "d1", {"broken": JobSpec("broken", "fails", broken)}).run("broken")
    assert outcome.status == "failed"
    with app.engine.connect() as connection:
        last = store.last_run(connection, "broken")
    assert last is not None
    assert (last.status, last.error) == ("failed", "RuntimeError: nova said no")
    assert last.finished_at is not None


def test_a_job_error_never_carries_a_secret(make_app: Callable[..., App]) -> None:
    app = make_app(health={"admin_token": "tok-abcdef-123"})

    def leaky(_ctx: JobContext) -> None:
        raise RuntimeError("auth with tok-abcdef-123 refused")

    with capture_logs() as logs:
        outcome = runner_for(app, "d1", {"leaky": JobSpec("leaky", "leaks", leaky)}).run("leaky")
    assert outcome.error == "RuntimeError: auth with *** refused"
    (failed,) = [entry for entry in logs if entry["event"] == "job run"]
    assert (failed["log_level"], failed["job"], failed["outcome"], failed["error"]) == (
        "error",
        "leaky",
        "failed",
        "RuntimeError: auth with *** refused",
    )


def test_two_daemons_never_run_the_same_job_at_once(app: App) -> None:
    """Daemon B asks for the job while daemon A is inside it: B skips, and runs it once A is done."""
    inside = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow(ctx: JobContext) -> None:
        calls.append("run")
        inside.set()
        release.wait(timeout=30)

    jobs = {"slow": JobSpec("slow", "blocks until released", slow)}
    daemon_a = runner_for(app, "host-a:1", jobs)
    daemon_b = runner_for(app, "host-b:2", jobs)
    first = threading.Thread(target=daemon_a.run, args=["slow"])
    first.start()
    assert inside.wait(timeout=30)
    assert daemon_b.run("slow").status == "skipped"
    release.set()
    first.join(timeout=30)
    release.set()
    assert daemon_b.run("slow").status == "succeeded"
    assert calls == ["run", "run"]


def test_an_expired_lease_of_a_dead_daemon_is_taken_over(app: App, clock: FixedClock) -> None:
    with app.engine.begin() as connection:
        assert store.try_acquire_lease(connection, "job:x", "dead:1", clock.now(), timedelta(minutes=5))
    with app.engine.begin() as connection:
        assert not store.try_acquire_lease(connection, "job:x", "live:2", clock.now(), timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    with app.engine.begin() as connection:
        assert store.try_acquire_lease(connection, "job:x", "live:2", clock.now(), timedelta(minutes=5))


def test_racing_daemons_take_a_free_lease_exactly_once(app: App, clock: FixedClock) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def contend(owner: str) -> None:
        barrier.wait(timeout=30)
        try:
            with app.engine.begin() as connection:
                if store.try_acquire_lease(connection, "job:race", owner, clock.now(), timedelta(minutes=5)):
                    winners.append(owner)
        except Exception as error:  # a lock timeout counts as losing, never as winning twice
            pytest.fail(f"{owner}: {error}")

    threads = [threading.Thread(target=contend, args=[f"d{i}"]) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1


def test_housekeeping_prunes_only_runs_older_than_the_retention(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    app = make_app(daemon={"job_run_retention_days": 30})
    with app.engine.begin() as connection:
        old = store.start_run(connection, "x", "d", clock.now() - timedelta(days=31))
        store.finish_run(connection, old, "succeeded", clock.now() - timedelta(days=31), None)
        recent = store.start_run(connection, "x", "d", clock.now() - timedelta(days=29))
        store.finish_run(connection, recent, "succeeded", clock.now() - timedelta(days=29), None)
    with capture_logs() as logs:
        outcome = app.runner.run("housekeeping")
    assert (outcome.status, outcome.result) == ("succeeded", {"job_runs": 1, "usage_hours": 0})
    assert [(entry["event"], entry.get("count"), entry.get("outcome")) for entry in logs] == [
        ("job runs pruned", 1, None),
        ("hourly usage pruned", 0, None),
        ("job run", None, "succeeded"),
    ]
    assert logs[0]["before"] == (clock.now() - timedelta(days=30)).isoformat()
    with app.engine.connect() as connection:
        remaining = {run.id for run in store.runs(connection)}
    assert old not in remaining and recent in remaining


def test_job_metrics_count_runs_by_outcome(app: App) -> None:
    app.runner.run("housekeeping")
    value = app.metrics.get_sample_value(
        "billing_bridge_job_runs_total", {"job": "housekeeping", "status": "succeeded"}
    )
    assert value == 1.0
    assert app.metrics.get_sample_value(
        "billing_bridge_job_last_success_timestamp_seconds", {"job": "housekeeping"}
    )


def test_every_acquisition_gets_a_new_token_and_only_the_current_one_renews(
    app: App, clock: FixedClock
) -> None:
    ttl = timedelta(minutes=5)
    with app.engine.begin() as connection:
        first = store.try_acquire_lease(connection, "job:x", "daemon:1", clock.now(), ttl)
        again = store.try_acquire_lease(connection, "job:x", "daemon:1", clock.now(), ttl)  # restarted
    assert first and again and first != again
    with app.engine.begin() as connection:
        assert not store.renew_lease(connection, "job:x", first, clock.now(), ttl), "fenced off"
        assert store.renew_lease(connection, "job:x", again, clock.now(), ttl)
    clock.advance(ttl)
    with app.engine.begin() as connection:
        assert not store.renew_lease(connection, "job:x", again, clock.now(), ttl), "a renewal too late"


def test_a_lease_past_its_expiry_stops_the_run_at_its_next_checkpoint(app: App, clock: FixedClock) -> None:
    """A renewal that did not come in time (the process was paused, the database unreachable): the run
    stops before its next external call, and the job is recorded as failed, naming the lease."""
    steps: list[str] = []

    def long_job(ctx: JobContext) -> None:
        steps.append("first call")
        clock.advance(timedelta(seconds=app.settings.daemon.lease_seconds))
        ctx.checkpoint()
        steps.append("second call")

    outcome = runner_for(app, "d1", {"long": JobSpec("long", "outlives its lease", long_job)}).run("long")

    assert steps == ["first call"]
    assert outcome.status == "failed"
    assert "lease job:long lost: it expired at" in (outcome.error or "")


def test_a_lease_taken_over_fails_the_holders_checks_and_fenced_writes(app: App, clock: FixedClock) -> None:
    with app.runner.holding("push") as lease:
        assert lease is not None
        lease.check()
        clock.advance(timedelta(seconds=app.settings.daemon.lease_seconds))
        with app.engine.begin() as connection:  # another daemon, once the lease expired
            assert store.try_acquire_lease(
                connection, lease.name, "other:2", clock.now(), timedelta(minutes=5)
            )
        with pytest.raises(LeaseLost):
            lease.check()
        with app.engine.connect() as connection:
            assert not connection.scalar(select(store.holds(lease.name, lease.token, clock.now())))
