"""Suspension that suspends (issue 15 point 8): a client over its credit limit has its OpenStack project
disabled in Keystone, as Fleio suspends a client's project, exactly once; paying resumes it.

The bridge talks to the fake Keystone and Nova over HTTP through openstacksdk; the decision and its outbox
rows are written by ``process_clients``, the cloud actions carry them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.store.tables import outbox
from tests.fakes.nova import FakeOpenStack
from tests.support.usage import CREDIT_START, run_vm

START = CREDIT_START
HOUR = timedelta(hours=1)


@pytest.fixture
def cloud(clock: FixedClock) -> Iterator[FakeOpenStack]:
    clock.set(START)
    with FakeOpenStack(clock) as fake:
        fake.add_project("p-1", "acme", owner="acme", password="acme-Passw0rd")
        fake.create_server("p-1", at=START, server_id="vm-1")
        yield fake


@pytest.fixture
def app(make_app: Callable[..., App], cloud: FakeOpenStack) -> App:
    app = make_app(
        openstack=cloud.section(),
        pricing={"flavors": {"m1.large": "1.00"}},
        configurations={"default": {"suspension": {"enabled": True}}},
    )
    client = app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
    return app


def kinds(app: App) -> list[str]:
    with app.engine.connect() as connection:
        return [row.kind for row in connection.execute(select(outbox.c.kind).order_by(outbox.c.id))]


def actions(app: App, at_hour: int) -> list[str]:
    return [
        decision["action"]
        for report in app.credit.process(START + at_hour * HOUR)
        for decision in report.decisions
    ]


def test_a_client_over_its_credit_limit_has_its_project_disabled_once_though_the_answer_was_lost(
    app: App, cloud: FakeOpenStack, clock: FixedClock
) -> None:
    run_vm(app, "p-1", "m1.large", 3)  # $3 used, no credit: under the limit of 0
    clock.set(START + 3 * HOUR)
    assert actions(app, 3) == ["suspend"]
    cloud.drop_after_next_project_update()  # Keystone disables it, the answer never arrives

    first = app.cloud_actions().run()

    assert first.done == ["suspend_server openstack:vm-1"]
    assert [line.split(":")[0] for line in first.waiting] == ["disable_project openstack"]
    assert cloud.project("p-1").enabled is False
    assert actions(app, 4) == ["keep_suspended"]  # deciding again writes no second row
    assert kinds(app) == ["suspend_server", "disable_project", "mail_client"]  # and the client is told, once
    second = app.cloud_actions().run()
    assert second.done == ["disable_project openstack:p-1"]
    assert app.cloud_actions().run().done == []
    assert cloud.project_updates == [("p-1", {"enabled": False})]  # one PATCH in all
    assert cloud.instance("vm-1").vm_state == "suspended"


def test_paying_resumes_the_client_and_enables_its_project_before_its_servers(
    app: App, cloud: FakeOpenStack, clock: FixedClock
) -> None:
    run_vm(app, "p-1", "m1.large", 3)
    clock.set(START + 3 * HOUR)
    assert actions(app, 3) == ["suspend"]
    app.cloud_actions().run()
    app.credit.add_credit("1", Decimal(50), "paid")
    clock.set(START + 5 * HOUR)

    assert actions(app, 5) == ["resume"]
    done = app.cloud_actions().run().done

    assert done == ["enable_project openstack:p-1", "resume_server openstack:vm-1"]
    assert cloud.project_updates == [("p-1", {"enabled": False}), ("p-1", {"enabled": True})]
    assert cloud.project("p-1").enabled is True
    assert cloud.instance("vm-1").vm_state == "active"
