"""Fixtures the push tests share: a WHMCS fake per test, and a forkserver for the pushes they kill."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
from collections.abc import Iterator

import pytest

from tests.fakes.whmcs import FakeWhmcs


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs() as server:
        yield server


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    """Children that import the crash pusher once: a killed push restarts in milliseconds, not seconds."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.support.crash_pusher"])
    return context
