"""The read models: what ``usage show`` and ``status`` print, summed and shaped in one place."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bridge.bootstrap import App
from bridge.domain.clients import LinkKind
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.services.views import ResourceUsage
from bridge.store import usage as usage_store
from tests.support.clock import START


def _record(source: Source, resource: str, name: str, owner: str, plan: str, hour: int) -> UsageRecord:
    window = Window(START + timedelta(hours=hour), START + timedelta(hours=hour + 1))
    tokens = Decimal(7) if source == "solusvm" else None
    return UsageRecord(source, resource, name, owner, plan, window, Decimal(1), tokens)


def test_client_usage_sums_each_resource_of_the_clients_accounts_only(app: App) -> None:
    records = [
        _record("openstack", "i-1", "web", "p-1", "m1.small", 0),
        _record("openstack", "i-1", "web-renamed", "p-1", "m1.large", 1),
        _record("solusvm", "9", "vps", "42", "3", 0),
        _record("solusvm", "9", "vps", "42", "3", 1),
        _record("openstack", "i-2", "theirs", "p-2", "m1.small", 0),
    ]
    with app.engine.begin() as connection:
        for record in records:
            usage_store.ingest_window(connection, record.source, record.window, [record], START)
    client = app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
    linked = app.clients.link(str(client.id), LinkKind.SOLUSVM_USER, "42")

    found = app.views.client_usage(linked, START, START + timedelta(hours=2))

    assert found == [
        ResourceUsage("openstack", "i-1", "web-renamed", ("m1.large", "m1.small"), Decimal(2), None),
        ResourceUsage("solusvm", "9", "vps", ("3",), Decimal(2), Decimal(14)),
    ]
    assert app.views.client_usage(linked, START + timedelta(hours=2), START + timedelta(hours=3)) == []


def test_status_names_each_job_with_its_schedule_and_next_run_in_the_billing_zone(app: App) -> None:
    report = app.views.status(["invoicing", "no_such_job"])
    jobs = {job["name"]: job for job in report["jobs"]}
    assert jobs["invoicing"]["schedule"] == "30 0 * * *"
    assert jobs["invoicing"]["next_run"] == "2026-11-24T00:30:00+00:00"
    assert (jobs["no_such_job"]["schedule"], jobs["no_such_job"]["next_run"]) == ("off", None)
    assert jobs["invoicing"]["last_run"]["status"] is None
