"""The operator endpoint answers what an on-call operator needs, and nothing secret."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from bridge.bootstrap import App, build_app
from bridge.sync.daemon import Daemon
from bridge.sync.systemd import SystemdNotifier
from bridge.web.health import HealthApp

TOKEN = "admin-token-0123456789"


@pytest.fixture
def daemon(make_app: Callable[..., App]) -> Iterator[Daemon]:
    app = make_app(health={"listen": "127.0.0.1:0", "admin_token": TOKEN})
    running = Daemon(app, notifier=SystemdNotifier({}))
    running.start()
    yield running
    running.shutdown()


def get(daemon: Daemon, path: str, token: str | None = TOKEN) -> requests.Response:
    assert daemon.health is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{daemon.health.port}{path}", headers=headers, timeout=10)


def test_healthz_and_readyz_answer_200_while_running(daemon: Daemon) -> None:
    assert get(daemon, "/healthz", token=None).status_code == 200
    ready = get(daemon, "/readyz", token=None)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_status_and_metrics_need_the_admin_token(daemon: Daemon) -> None:
    assert get(daemon, "/status", token=None).status_code == 401
    assert get(daemon, "/metrics", token="wrong").status_code == 401
    assert get(daemon, "/status").status_code == 200


def test_status_lists_each_job_with_last_run_and_next_run_and_no_secret(daemon: Daemon) -> None:
    daemon.app.runner.run("housekeeping")
    response = get(daemon, "/status")
    report = response.json()
    assert report["scheduler_running"] is True
    assert report["uptime_seconds"] >= 0
    job = next(job for job in report["jobs"] if job["name"] == "housekeeping")
    assert job["last_run"]["status"] == "succeeded"
    assert job["next_run"] is not None
    assert TOKEN not in response.text


def test_metrics_have_the_job_series(daemon: Daemon) -> None:
    daemon.app.runner.run("housekeeping")
    text = get(daemon, "/metrics").text
    assert 'billing_bridge_job_runs_total{job="housekeeping",status="succeeded"} 1.0' in text
    assert 'billing_bridge_job_runs_total{job="housekeeping",status="failed"} 0.0' in text
    assert 'billing_bridge_job_last_success_timestamp_seconds{job="housekeeping"}' in text
    assert 'billing_bridge_job_last_duration_seconds{job="housekeeping"}' in text
    assert TOKEN not in text


def call(app: HealthApp, path: str) -> tuple[str, Any]:
    status: list[str] = []
    body = b"".join(
        app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda code, _headers: status.append(code))
    )
    return status[0], body


def test_readyz_is_503_with_the_reason_when_the_schema_is_behind(
    make_settings: Callable[..., Any], empty_database_url: str
) -> None:
    app = build_app(make_settings(empty_database_url))
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: True, status=dict)
    try:
        status, body = call(health, "/readyz")
    finally:
        app.close()
    assert status.startswith("503")
    assert b"run `billing-bridge migrate`" in body


def test_readyz_is_503_when_the_database_does_not_answer(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", database={"connect_timeout_seconds": 1}
    )
    app = build_app(settings)
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: True, status=dict)
    try:
        status, body = call(health, "/readyz")
    finally:
        app.close()
    assert status.startswith("503")
    assert b"database does not answer" in body


def test_healthz_is_503_when_the_scheduler_has_stopped(app: App) -> None:
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: False, status=dict)
    assert call(health, "/healthz")[0].startswith("503")


def test_status_and_metrics_show_each_usage_source_watermark_lag_and_error(daemon: Daemon) -> None:
    from datetime import timedelta

    from bridge.store import usage as usage_store

    app = daemon.app
    now = app.clock.now()
    with app.engine.begin() as connection:
        usage_store.advance_watermark(connection, "openstack", now - timedelta(hours=2), 1488, now)
        usage_store.record_error(connection, "solusvm", "solusvm /api/v1/servers: HTTP 401", now)
    usage = get(daemon, "/status").json()["usage"]
    assert usage["openstack"]["lag_seconds"] == 7200
    assert usage["openstack"]["records_collected"] == 1488
    assert usage["solusvm"]["last_error"] == "solusvm /api/v1/servers: HTTP 401"
    metrics = get(daemon, "/metrics").text
    assert 'billing_bridge_usage_lag_seconds{source="openstack"} 7200.0' in metrics
    assert 'billing_bridge_usage_records_collected{source="openstack"} 1488.0' in metrics
    assert 'billing_bridge_usage_last_collection_failed{source="solusvm"} 1.0' in metrics
