"""Billing cycles as an operator meets them (issue 15): a switch to calendar months bills no hour twice,
the first calendar cycle starts with the first service, and an imported client's anniversary is its first
service's, not the day it was imported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bridge.clock import FixedClock
from tests.fakes.nova import FakeOpenStack
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli

ANNIVERSARY = """
[configurations.anniversary]
billing_cycle_calendar = false
"""


@pytest.fixture
def nova() -> Iterator[FakeOpenStack]:
    """One server, created 2022-10-15 12:00 UTC in project p-9, running ever since."""
    with FakeOpenStack(FixedClock(datetime(2026, 11, 23, tzinfo=UTC))) as fake:
        fake.create_server("p-9", at=datetime(2022, 10, 15, 12, tzinfo=UTC), name="web-9", server_id="d" * 8)
        yield fake


@pytest.fixture
def settings(config: Path) -> list[str]:
    """The CLI tests' settings over this module's Nova, in 12-hour windows, with an anniversary
    configuration."""
    config.write_text(config.read_text().replace("[openstack]\n", "[openstack]\nwindow = 12\n") + ANNIVERSARY)
    return ["--config", str(config)]


def sync_until(capsys: pytest.CaptureFixture[str], cfg: list[str], until: str) -> None:
    code, _, err = run_cli(
        capsys, *cfg, "sync", "--source", "openstack", "--from", "2022-10-01T00:00:00Z", "--until", until
    )
    assert code == 0, err


def invoice(capsys: pytest.CaptureFixture[str], cfg: list[str], day: str) -> list[dict[str, Any]]:
    code, out, err = run_cli(capsys, *cfg, "invoice", "--date", day, "--json")
    assert code == 0, err
    invoices: list[dict[str, Any]] = json.loads(out)["invoices"]
    return invoices


def periods(invoices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["period"]["start"][:16], item["period"]["end"][:16]) for item in invoices]


def hours_of(invoices: list[dict[str, Any]]) -> Decimal:
    return sum(
        (Decimal(line["hours"]) for item in invoices for group in item["groups"] for line in group["lines"]),
        Decimal(0),
    )


def test_a_switch_to_calendar_months_on_11_20_bills_the_ongoing_cycle_then_a_stub_and_no_hour_twice(
    settings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add = ("client", "add", "--email", "ops@acme.com", "--name", "Acme", "--configuration", "anniversary")
    with time_machine.travel(datetime(2022, 10, 15, 12, tzinfo=UTC), tick=False):
        run_cli(capsys, *settings, *add)
    run_cli(capsys, *settings, "client", "link", "ops@acme.com", "--openstack-project", "p-9")
    sync_until(capsys, settings, "2022-11-15T00:00:00Z")
    first = invoice(capsys, settings, "2022-11-15")
    assert [item["period"]["end"][:10] for item in first] == ["2022-11-15"]

    with time_machine.travel(datetime(2022, 11, 20, 9, tzinfo=UTC), tick=False):
        code, out, _ = run_cli(
            capsys, *settings, "client", "set", "ops@acme.com", "--configuration", "default"
        )
    assert (code, out) == (0, "client 1 now uses configuration default\n")

    sync_until(capsys, settings, "2023-01-01T00:00:00Z")
    assert invoice(capsys, settings, "2022-12-01") == []  # the ongoing cycle runs to 12-15
    ongoing = invoice(capsys, settings, "2022-12-15")
    stub = invoice(capsys, settings, "2023-01-01")
    assert periods(ongoing) == [("2022-11-15T00:00", "2022-12-15T00:00")]
    assert periods(stub) == [("2022-12-15T00:00", "2023-01-01T00:00")]
    assert stub[0]["period"]["label"] == "2022-12-15"
    collected = Decimal(
        (datetime(2023, 1, 1, tzinfo=UTC) - datetime(2022, 10, 15, 12, tzinfo=UTC)).days * 24 + 12
    )
    assert hours_of(first + ongoing + stub) == collected  # every hour once

    code, out, _ = run_cli(capsys, *settings, "invoice", "list", "--json")
    assert len(json.loads(out)) == 3


def test_the_first_calendar_cycle_runs_from_the_first_service_to_the_1st(
    settings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, *settings, "client", "add", "--email", "ops@acme.com", "--name", "Acme")
    run_cli(capsys, *settings, "client", "link", "ops@acme.com", "--openstack-project", "p-9")
    sync_until(capsys, settings, "2022-11-01T00:00:00Z")
    (october,) = invoice(capsys, settings, "2022-11-01")
    assert october["period"] == {
        "start": "2022-10-15T12:00:00+00:00",
        "end": "2022-11-01T00:00:00+00:00",
        "label": "2022-10-15",
    }
    assert hours_of([october]) == Decimal(16 * 24 + 12)


def test_an_imported_client_is_billed_on_the_anniversary_of_its_first_service_not_of_its_import(
    config: Path, solus: FakeSolusVM, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text() + "[configurations.default]\nbilling_cycle_calendar = false\n")
    cfg = ["--config", str(config)]
    ann = solus.add_user("ann@example.com")
    plan = solus.add_plan("small", tokens_per_hour=3)
    solus.add_server(
        "ann-web", user_id=ann["id"], plan_id=plan["id"], created_at="2022-10-15T08:00:00.000000Z"
    )
    with time_machine.travel(datetime(2022, 11, 3, 10, tzinfo=UTC), tick=False):
        code, out, _ = run_cli(capsys, *cfg, "clients", "import", "--from", "solusvm", "--json")
    assert (code, json.loads(out)["created"]) == (0, [1])
    with time_machine.travel(datetime(2022, 11, 20, 1, 30, tzinfo=UTC), tick=False):
        assert run_cli(capsys, *cfg, "sync", "--source", "solusvm")[0] == 0

    # its anniversary is its server's creation (10-15 08:00), not the import on 11-03
    assert periods(invoice(capsys, cfg, "2022-12-03")) == [("2022-10-15T08:00", "2022-11-15T00:00")]
    assert periods(invoice(capsys, cfg, "2022-12-15")) == [("2022-11-15T00:00", "2022-12-15T00:00")]
