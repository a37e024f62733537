"""NovaServerActions through openstacksdk against the fake Nova: the right /action bodies, clear errors."""

from __future__ import annotations

from decimal import Decimal

import openstack.connection
import pytest
from tenacity import wait_none

from bridge.clock import FixedClock
from bridge.errors import VendorError
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.fleio.server_actions import NovaServerActions, ServerActionError
from tests.fakes.nova import FakeOpenStack, Fault
from tests.fleio.helpers import WINDOW, at, hours_by_id


@pytest.fixture
def actions(conn: openstack.connection.Connection) -> NovaServerActions:
    return NovaServerActions(conn)


def test_each_action_posts_its_body_to_the_servers_action_url(
    fake: FakeOpenStack, actions: NovaServerActions
) -> None:
    server = fake.create_server("p1", at=at(6))

    actions.suspend(server)
    actions.resume(server)
    actions.shelve(server)
    actions.unshelve(server)

    assert [(call.server_id, call.body) for call in fake.actions] == [
        (server, {"suspend": None}),
        (server, {"resume": None}),
        (server, {"shelve": None}),
        (server, {"unshelve": None}),
    ]
    posts = [r for r in fake.requests if r.method == "POST" and "/servers/" in r.path]
    assert {r.path for r in posts} == {f"/compute/v2.1/servers/{server}/action"}
    assert all(r.header("OpenStack-API-Version") for r in posts)
    assert fake.instance(server).vm_state == "active"


def test_states_follow_the_actions(fake: FakeOpenStack, actions: NovaServerActions) -> None:
    server = fake.create_server("p1", at=at(6))
    actions.suspend(server)
    assert fake.instance(server).vm_state == "suspended"
    actions.shelve(server)
    assert fake.instance(server).vm_state == "shelved_offloaded"


def test_unshelve_restarts_usage_at_the_unshelve(
    fake: FakeOpenStack, actions: NovaServerActions, clock: FixedClock, conn: openstack.connection.Connection
) -> None:
    server = fake.create_server("p1", at=at(6))
    clock.set(at(8))
    actions.shelve(server)
    clock.set(at(9, 30))
    actions.unshelve(server)
    clock.set(at(12))

    collector = NovaUsageCollector(conn, clock=clock, retry_wait=wait_none())
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.5")}


def test_an_action_the_state_does_not_allow_is_a_409_naming_action_and_server(
    fake: FakeOpenStack, actions: NovaServerActions
) -> None:
    server = fake.create_server("p1", at=at(6))
    actions.suspend(server)

    with pytest.raises(ServerActionError) as raised:
        actions.suspend(server)

    error = raised.value
    assert isinstance(error, VendorError)
    assert (error.status, error.action, error.server_id) == (409, "suspend", server)
    assert error.path == f"/servers/{server}/action"
    assert str(error).startswith(f"openstack /servers/{server}/action: suspend of server {server} failed")
    assert "vm_state suspended" in str(error)
    assert "127.0.0.1" not in str(error)


def test_an_unknown_server_is_a_404(actions: NovaServerActions) -> None:
    with pytest.raises(ServerActionError) as raised:
        actions.resume("0b5e7c1e-0000-4000-8000-000000000000")
    assert raised.value.status == 404
    assert "no such server" in raised.value.problem


def test_a_server_error_is_reported_without_the_host(fake: FakeOpenStack, actions: NovaServerActions) -> None:
    server = fake.create_server("p1", at=at(6))
    fake.fail_next(Fault.server_error())

    with pytest.raises(ServerActionError) as raised:
        actions.shelve(server)

    assert raised.value.status == 500
    assert "HTTP 500" in str(raised.value)
    assert "127.0.0.1" not in str(raised.value)
    assert fake.actions == []


def test_an_unreachable_nova_is_a_server_action_error(
    fake: FakeOpenStack, actions: NovaServerActions
) -> None:
    server = fake.create_server("p1", at=at(6))
    fake.fail_next(Fault.disconnect())

    with pytest.raises(ServerActionError) as raised:
        actions.suspend(server)

    assert raised.value.status is None
    assert "could not reach OpenStack" in str(raised.value)


@pytest.mark.parametrize("bad", ["", "../os-simple-tenant-usage", " abc"])
def test_a_malformed_server_id_never_reaches_the_url(actions: NovaServerActions, bad: str) -> None:
    with pytest.raises(ValueError, match="not a server id"):
        actions.suspend(bad)
