"""Fixtures for the SolusVM adapter: a running fake node and a client that records its waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tenacity import RetryCallState

from bridge.solusvm.client import SolusVMClient
from tests.fakes.solusvm import FakeSolusVM


def doubling_backoff(state: RetryCallState) -> float:
    """A deterministic backoff for assertions: 0.5 s, 1 s, 2 s, ..."""
    return 0.5 * 2.0 ** (state.attempt_number - 1)


@pytest.fixture
def fake() -> Iterator[FakeSolusVM]:
    with FakeSolusVM(per_page=100) as node:
        yield node


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait the client asked for, in seconds; nothing really sleeps."""
    return []


@pytest.fixture
def make_client(fake: FakeSolusVM, sleeps: list[float]) -> Iterator[Callable[..., SolusVMClient]]:
    clients: list[SolusVMClient] = []

    def build(**overrides: Any) -> SolusVMClient:
        options: dict[str, Any] = {
            "url": fake.url,
            "token": fake.token,
            "sleep": sleeps.append,
            "backoff": doubling_backoff,
            "max_attempts": 3,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        }
        options.update(overrides)
        client = SolusVMClient(options.pop("url"), options.pop("token"), **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., SolusVMClient]) -> SolusVMClient:
    return make_client()
