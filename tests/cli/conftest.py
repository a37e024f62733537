"""Fixtures for CLI tests against the fake clouds: Nova with an October 2022 of servers, and SolusVM."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openstack import warnings as os_warnings

from bridge.clock import FixedClock
from bridge.store.database import make_engine
from tests.fakes.nova import FakeOpenStack
from tests.fakes.solusvm import FakeSolusVM
from tests.support import reconciliation_store as story


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OS_", "BRIDGE_")):
            monkeypatch.delenv(key)
    for category in (os_warnings.RemovedInSDK50Warning, os_warnings.RemovedInSDK60Warning):
        warnings.filterwarnings("ignore", category=category, module="openstack")


@pytest.fixture
def nova() -> Iterator[FakeOpenStack]:
    with FakeOpenStack(FixedClock(datetime(2026, 11, 23, tzinfo=UTC))) as fake:
        fake.create_server("p-1", at=datetime(2022, 9, 15, tzinfo=UTC), name="web-1", server_id="a" * 8)
        db = fake.create_server(
            "p-1",
            at=datetime(2022, 10, 10, 12, 30, tzinfo=UTC),
            flavor="m1.large",
            name="db-1",
            server_id="b" * 8,
        )
        fake.delete(db, at=datetime(2022, 10, 20, tzinfo=UTC))
        fake.create_server(
            "p-2", at=datetime(2022, 10, 31, 23, 30, tzinfo=UTC), name="late-1", server_id="c" * 8
        )
        yield fake


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM(per_page=2) as fake:
        yield fake


@pytest.fixture
def config(tmp_path: Path, database_url: str, nova: FakeOpenStack, solus: FakeSolusVM) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        f"""
[database]
url = "{database_url}"
[logging]
format = "json"
[openstack]
enabled = true
auth_url = "{nova.auth_url}"
username = "{nova.username}"
project_name = "{nova.project_name}"
region_name = "{nova.region}"
password = "{nova.password}"
[solusvm]
enabled = true
url = "{solus.url}"
token = "{solus.token}"
[pricing]
token_price = 0.00100
[pricing.flavors]
"m1.small" = 0.0125
"m1.large" = 0.10
"""
    )
    return path


@pytest.fixture
def seeded(tmp_path: Path, database_url: str) -> list[str]:
    """The every-bucket October of tests/support/reconciliation_store.py in a store, and its --config."""
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\n{story.SETTINGS}')
    engine = make_engine(database_url)
    story.seed(engine)
    engine.dispose()
    return ["--config", str(path)]


@pytest.fixture
def clouds(seeded: list[str], tmp_path: Path) -> Iterator[list[str]]:
    """The seeded October, with Nova running the same servers (db-1 resized on Oct 9: Nova forgot 200 h)."""
    with FakeOpenStack(FixedClock(story.AS_OF)) as nova:
        for project, server, start, end in story.NOVA_SERVERS:
            nova.create_server(project, at=start, name=server, server_id=server)
            if end is not None:
                nova.delete(server, at=end)
        nova.resize("db-1", "m1.large", at=story.RESIZED_AT)
        path = Path(seeded[1])
        path.write_text(
            path.read_text()
            + f"""
[openstack]
enabled = true
auth_url = "{nova.auth_url}"
username = "{nova.username}"
project_name = "{nova.project_name}"
region_name = "{nova.region}"
password = "{nova.password}"
"""
        )
        yield seeded
