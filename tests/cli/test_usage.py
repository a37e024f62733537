"""`billing-bridge sync` / `usage` / `clients import` against fake Nova and SolusVM on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from bridge.store.database import make_engine
from bridge.store.tables import usage_records, usage_watermarks
from tests.fakes.nova import FakeOpenStack
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli


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
def test_a_reply_refused_for_a_field_exits_2_names_the_source_and_moves_no_watermark(
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
    assert code == 2
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

    with time_machine.travel(datetime(2024, 1, 1, 1, 30, tzinfo=UTC), tick=False):  # created 00:00
        code, out, _ = run_cli(capsys, *cfg, "sync", "--source", "solusvm", "--json")
        (report,) = json.loads(out)
        assert (code, report["records"]) == (0, 2)  # the runtime of hours 00:00 and 01:00
        code, out, _ = run_cli(
            capsys,
            *cfg,
            "usage",
            "show",
            "--client",
            "ann@example.com",
            "--from",
            "2023-12-31",
            "--to",
            "2024-01-02",
            "--json",
        )
    (resource,) = json.loads(out)["resources"]
    assert (resource["resource_name"], resource["hours"], resource["tokens"]) == ("ann-web", "1.5", "4.5")
