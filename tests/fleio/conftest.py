"""Fixtures for the OpenStack side: a fake Keystone + Nova on 127.0.0.1 and the SDK connected to it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import openstack.connection
import pytest
from openstack import warnings as os_warnings
from tenacity import wait_none

from bridge.clock import FixedClock
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack
from tests.fleio.helpers import NOW


@pytest.fixture(autouse=True)
def _quiet_sdk_deprecations() -> None:
    """openstacksdk warns about its own internals (influxdb, service_type) on every connection."""
    for category in (os_warnings.RemovedInSDK50Warning, os_warnings.RemovedInSDK60Warning):
        warnings.filterwarnings("ignore", category=category, module="openstack")


@pytest.fixture(autouse=True)
def _no_os_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """openstacksdk reads OS_* (and we read BRIDGE_OPENSTACK_*): none may leak in from the shell."""
    for key in list(os.environ):
        if key.startswith(("OS_", "BRIDGE_OPENSTACK_")):
            monkeypatch.delenv(key)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def fake(clock: FixedClock) -> Iterator[FakeOpenStack]:
    with FakeOpenStack(clock) as server:
        yield server


@pytest.fixture
def settings(fake: FakeOpenStack) -> OpenStackSettings:
    return OpenStackSettings(
        enabled=True,
        auth_url=fake.auth_url,
        username=fake.username,
        password=fake.password,
        project_name=fake.project_name,
        region_name=fake.region,
    )


@pytest.fixture
def conn(settings: OpenStackSettings) -> Iterator[openstack.connection.Connection]:
    connection = connect(settings)
    yield connection
    connection.close()


@pytest.fixture
def sleeps() -> list[float]:
    """What the collector asked to sleep (it never really sleeps in tests)."""
    return []


@pytest.fixture
def collector(
    conn: openstack.connection.Connection, clock: FixedClock, sleeps: list[float]
) -> NovaUsageCollector:
    return NovaUsageCollector(conn, clock=clock, retry_wait=wait_none(), sleep=sleeps.append)
