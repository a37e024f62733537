"""Fixtures: a fresh fake VIES on 127.0.0.1 per test, and real clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bridge.vies import ViesClient, parse_vat_id
from tests.fakes.vies import FakeVies

VIES_NOW = datetime(2024, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)
REQUESTER = "DE136695976"
FAST_READ_TIMEOUT = 0.25
"""How long the client waits in the timeout tests; the fake holds its reply longer."""


@pytest.fixture
def fake() -> Iterator[FakeVies]:
    with FakeVies(now=lambda: VIES_NOW) as server:
        yield server


def make_client(fake: FakeVies, **overrides: object) -> ViesClient:
    """A real client for the fake: our requester VAT ID, and no waiting between attempts."""
    options: dict[str, object] = {"requester": parse_vat_id(REQUESTER), "backoff": lambda attempt: 0.0}
    options.update(overrides)
    return ViesClient(fake.url, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeVies) -> Iterator[ViesClient]:
    with make_client(fake) as vies:
        yield vies
