"""The daemon's reconcile job: last month's report (and the month before's, which late usage still changes)
kept under <state_dir>/reports, served on the operator endpoint behind the admin token, and its not-billed
hours per reason in /metrics."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.daemon import Daemon
from bridge.settings import Settings
from bridge.store.database import make_engine
from bridge.sync.systemd import SystemdNotifier
from tests.support import reconciliation_store as story

TOKEN = "admin-token-0123456789"
DECEMBER = datetime(2022, 12, 1, tzinfo=UTC)


@pytest.fixture
def daemon(database_url: str, make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Daemon]:
    engine = make_engine(database_url)
    story.seed(engine)
    engine.dispose()
    sections = tomllib.loads(story.SETTINGS)
    settings = make_settings(database_url, health={"listen": "127.0.0.1:0", "admin_token": TOKEN}, **sections)
    app = build_app(settings, clock=FixedClock(story.AS_OF), owner="test-daemon")
    running = Daemon(app, notifier=SystemdNotifier({}))
    running.start()
    yield running
    running.shutdown()
    app.close()


def get(daemon: Daemon, path: str, token: str | None = TOKEN) -> requests.Response:
    assert daemon.health is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{daemon.health.port}{path}", headers=headers, timeout=10)


def not_billed(daemon: Daemon) -> dict[tuple[str, str], float]:
    text = get(daemon, "/metrics").text
    family = next(
        family
        for family in text_string_to_metric_families(text)
        if family.name == "billing_bridge_reconciliation_not_billed_hours"
    )
    return {
        (s.labels["source"], s.labels["reason"]): s.value
        for s in family.samples
        if s.labels["month"] == "2022-10"
    }


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_job_keeps_last_months_report_and_the_endpoint_serves_it_behind_the_token(
    daemon: Daemon, tmp_path: Path
) -> None:
    app: App = daemon.app
    assert get(daemon, "/reports/latest").status_code == 404
    assert "billing_bridge_reconciliation_not_billed_hours" not in get(daemon, "/metrics").text

    outcome = app.runner.run("reconcile")
    assert (outcome.status, outcome.result["month"], outcome.result["defects"]) == ("succeeded", "2022-10", 0)
    reports = tmp_path / "state" / "reports"
    assert sorted(path.name for path in reports.iterdir()) == [  # September's hourly rows are not kept
        "reconciliation-2022-10.csv",
        "reconciliation-2022-10.html",
        "reconciliation-2022-10.json",
        "reconciliation-2022-10.summary.json",
    ]

    assert get(daemon, "/reports/latest", token=None).status_code == 401
    assert get(daemon, "/reports/latest.json", token="wrong").status_code == 401
    page = get(daemon, "/reports/latest")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Ada Analytics" in page.text and "<svg" in page.text
    assert get(daemon, "/reports/latest.json").json()["month"]["label"] == "2022-10"

    hours = not_billed(daemon)
    assert hours[("openstack", "held")] == 1044
    assert hours[("openstack", "unlinked_owner")] == 50
    assert hours[("openstack", "suspended_not_billed")] == 264
    assert hours[("solusvm", "held")] == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_job_reconciles_the_month_before_too_so_late_usage_billed_after_it_shows(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    story.seed(engine)
    with engine.begin() as tx:  # November's invoice bills the 20 h of batch-1 that came after October's
        november = story.invoice(tx, "INV-2022-0030", 2, "2.00", period=(story.NOV, DECEMBER))
        story.line(tx, november, 1, "batch-1", "20", "2.00", late=True)
    engine.dispose()
    sections = tomllib.loads(story.SETTINGS)
    sections["billing"]["hourly_usage_months"] = 2  # October's hourly rows are kept through December
    settings = make_settings(database_url, **sections)
    app = build_app(settings, clock=FixedClock(DECEMBER + timedelta(days=4)), owner="test-daemon")
    try:
        outcome = app.runner.run("reconcile")
    finally:
        app.close()
    assert outcome.status == "succeeded"
    assert (outcome.result["month"], outcome.result["months"]) == ("2022-11", {"2022-10": 0, "2022-11": 0})
    reports = tmp_path / "state" / "reports"
    assert app.report_archive.latest() == app.report_archive.files("2022-11")
    october = json.loads((reports / "reconciliation-2022-10.json").read_text())
    buckets = october["summary"]["hours"]["by_source"]["openstack"]["buckets"]
    assert (buckets["invoiced_late"], buckets["not_yet_invoiced"]) == ("29.333333", "0")
