"""Fixtures: a fresh fake WHMCS on 127.0.0.1 per test, and real clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tenacity

from bridge.whmcs import WhmcsClient
from tests.fakes.whmcs import FakeWhmcs

# How long the client waits for an answer in the timeout tests; the fake holds its reply longer.
FAST_READ_TIMEOUT = 0.25


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(hold_seconds=2.0) as server:
        yield server


def make_client(fake: FakeWhmcs, **overrides: object) -> WhmcsClient:
    """A real client for the fake: no waiting between read attempts, a small page for paging tests."""
    options: dict[str, object] = {"wait": tenacity.wait_none(), "read_timeout": 5.0, "page_size": 3}
    options.update(overrides)
    return WhmcsClient(fake.url, fake.identifier, fake.secret, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeWhmcs) -> Iterator[WhmcsClient]:
    with make_client(fake) as whmcs:
        yield whmcs


@pytest.fixture
def fast_client(fake: FakeWhmcs) -> Iterator[WhmcsClient]:
    """A client that gives up after FAST_READ_TIMEOUT seconds, for the timeout faults."""
    with make_client(fake, read_timeout=FAST_READ_TIMEOUT) as whmcs:
        yield whmcs


@pytest.fixture
def client_id(client: WhmcsClient) -> int:
    """A client that exists in the fake."""
    return client.add_client(
        firstname="Ada",
        lastname="Lovelace",
        email="ada@example.com",
        address1="1 Analytical Row",
        city="London",
        state="London",
        postcode="N1 1AA",
        country="GB",
        phonenumber="+44.2071234567",
        companyname="Engines Ltd",
    )
