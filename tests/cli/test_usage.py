"""`billing-bridge sync` / `usage` / `clients import` against fake Nova and SolusVM on 127.0.0.1."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openstack import warnings as os_warnings
from sqlalchemy import select

from bridge.clock import FixedClock
from bridge.store.database import make_engine
from bridge.store.tables import usage_records, usage_watermarks
from tests.cli.test_base import run_cli
from tests.fakes.nova import FakeOpenStack
from tests.fakes.solusvm import FakeSolusVM


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
"""
    )
    return path


def store_dump(database_url: str) -> list[tuple[object, ...]]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(select(usage_records).order_by(usage_records.c.id))]
        rows += [tuple(row) for row in connection.execute(select(usage_watermarks))]
    engine.dispose()
    return rows


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sync_collects_october_once_and_usage_show_gives_hours_per_vm(
    config: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ["--config", str(config)]
    code, out, err = run_cli(capsys, *cfg, "sync", "--source", "openstack", "--until", "2022-11-01T00:00:00Z")
    assert code == 0, err
    assert out.startswith("openstack: 744 windows")
    assert "2022-10-01T00:00:00+00:00 -> 2022-11-01T00:00:00+00:00" in out
    before = store_dump(database_url)
    code, out, _ = run_cli(capsys, *cfg, "sync", "--source", "openstack", "--until", "2022-11-01T00:00:00Z")
    assert (code, out.strip()) == (0, "openstack: nothing new to collect")
    assert store_dump(database_url) == before

    run_cli(capsys, *cfg, "client", "add", "--email", "ops@acme.com", "--name", "Acme")
    run_cli(capsys, *cfg, "client", "link", "ops@acme.com", "--openstack-project", "p-1")
    code, out, _ = run_cli(
        capsys,
        *cfg,
        "usage",
        "show",
        "--client",
        "ops@acme.com",
        "--from",
        "2022-10-01",
        "--to",
        "2022-11-01",
        "--json",
    )
    shown = {item["resource_name"]: item for item in json.loads(out)["resources"]}
    assert shown["web-1"]["hours"] == "744"
    assert shown["web-1"]["plans"] == ["m1.small"]
    assert shown["db-1"]["hours"] == "227.5"  # 2022-10-10 12:30 to 2022-10-20 00:00
    assert shown["db-1"]["plans"] == ["m1.large"]

    code, out, _ = run_cli(capsys, *cfg, "usage", "unlinked", "--json")
    unlinked = json.loads(out)
    assert [(item["source"], item["owner"], item["records"]) for item in unlinked] == [
        ("openstack", "p-2", 1)
    ]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sync_dry_run_json_reports_and_writes_nothing(
    config: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "--config",
        str(config),
        "sync",
        "--source",
        "openstack",
        "--until",
        "2022-10-01T03:00:00Z",
        "--from",
        "2022-10-01",
        "--dry-run",
        "--json",
    )
    (report,) = json.loads(out)
    assert code == 0
    assert (report["dry_run"], report["windows"], report["records"]) == (True, 3, 3)
    assert store_dump(database_url) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_vendor_error_exits_1_names_the_source_and_moves_no_watermark(
    config: Path, database_url: str, nova: FakeOpenStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.nova import Fault

    nova.fail_next(Fault.missing_field("hours"), times=2)  # version discovery takes the first
    code, out, err = run_cli(
        capsys,
        "--config",
        str(config),
        "sync",
        "--source",
        "openstack",
        "--from",
        "2022-10-01",
        "--until",
        "2022-10-01T02:00:00Z",
    )
    assert code == 1
    field = "'tenant_usages[0].server_usages[0].hours'"
    assert f"openstack: stopped: openstack /os-simple-tenant-usage field {field}" in out
    assert nova.password not in out + err
    assert all(row[1] is None for row in store_dump(database_url))  # watermark row holds only the error


@pytest.mark.parametrize("backend", ["sqlite"])
def test_solusvm_sync_bills_the_running_server_and_import_creates_clients_once(
    config: Path, solus: FakeSolusVM, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = solus.add_user("ann@example.com")
    bob = solus.add_user("bob@example.com")
    plan = solus.add_plan("small", tokens_per_hour=3)
    solus.add_server("ann-web", user_id=ann["id"], plan_id=plan["id"])
    solus.add_server("bob-off", user_id=bob["id"], plan_id=plan["id"], status="stopped")
    cfg = ["--config", str(config)]
    run_cli(capsys, *cfg, "client", "add", "--email", "bob@example.com", "--name", "Bob")
    code, out, _ = run_cli(capsys, *cfg, "clients", "import", "--from", "solusvm", "--json")
    assert (code, json.loads(out)) == (0, {"created": [2], "linked": [1], "already_linked": 0})
    code, out, _ = run_cli(capsys, *cfg, "clients", "import", "--from", "solusvm")
    assert out.strip() == "0 clients created, 0 existing clients linked, 2 already linked"

    code, out, _ = run_cli(capsys, *cfg, "sync", "--source", "solusvm", "--json")
    (report,) = json.loads(out)
    assert (code, report["records"]) == (0, 1)
    today = datetime.now(UTC).date()
    code, out, _ = run_cli(
        capsys,
        *cfg,
        "usage",
        "show",
        "--client",
        "ann@example.com",
        "--from",
        str(today - timedelta(days=1)),
        "--to",
        str(today + timedelta(days=2)),
        "--json",
    )
    (resource,) = json.loads(out)["resources"]
    assert (resource["resource_name"], resource["hours"], resource["tokens"]) == ("ann-web", "1", "3")
