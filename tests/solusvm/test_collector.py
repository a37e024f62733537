"""The SolusVM observer believes only plausible servers: one created in the future is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bridge.clock import FixedClock
from bridge.domain.usage import Window
from bridge.errors import VendorError
from bridge.solusvm.client import SolusVMClient
from bridge.solusvm.collector import SolusVMObserver
from tests.fakes.solusvm import FakeSolusVM

NOW = datetime(2024, 6, 1, 12, 10, tzinfo=UTC)
THIS_HOUR = Window(datetime(2024, 6, 1, 12, tzinfo=UTC), datetime(2024, 6, 1, 13, tzinfo=UTC))


def observer_with_server(
    fake: FakeSolusVM, make_client: Callable[..., SolusVMClient], created_at: str
) -> SolusVMObserver:
    user = fake.add_user("ann@example.com")
    plan = fake.add_plan("small", tokens_per_hour=7)
    fake.add_server("web-1", user_id=user["id"], plan_id=plan["id"], created_at=created_at)
    return SolusVMObserver(make_client(), FixedClock(NOW))


def test_a_server_created_in_the_future_is_refused_naming_the_field(
    fake: FakeSolusVM, make_client: Callable[..., SolusVMClient]
) -> None:
    observer = observer_with_server(fake, make_client, "2024-06-02T00:00:00Z")

    with pytest.raises(VendorError) as raised:
        observer.collect(THIS_HOUR)

    assert (raised.value.path, raised.value.field) == ("/api/v1/servers", "created_at")
    assert "2024-06-02T00:00:00+00:00 for server 1, in the future" in raised.value.problem


def test_a_created_at_a_little_ahead_of_our_clock_is_believed(
    fake: FakeSolusVM, make_client: Callable[..., SolusVMClient]
) -> None:
    observer = observer_with_server(fake, make_client, "2024-06-01T12:13:00Z")
    records = observer.collect(THIS_HOUR)
    assert [(record.resource_id, record.window.start.hour) for record in records] == [("1", 12)]
