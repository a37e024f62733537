"""The golden month: `invoice --date 2022-11-01 --dry-run --json` over a fixed October, byte for byte.

The middle layer is redesigned behind this file (issue 13): any byte that changes in the operator's JSON is a
behaviour change and fails here. Regenerate only for an intended change: BRIDGE_REGENERATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine

from bridge.domain.usage import UsageRecord, Window
from bridge.store.database import make_engine
from bridge.store.usage import ingest_window
from tests.support.cli import run_cli

GOLDEN = Path(__file__).parent / "golden" / "invoice_2022-11-01_dry_run.json"
REGENERATE = os.environ.get("BRIDGE_REGENERATE_GOLDEN") == "1"  # read before the CLI fixtures clear BRIDGE_*
RUN_AT = datetime(2022, 11, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _solusvm_october(database_url: str) -> None:
    """SolusVM user 7's server ran 100 hours at 2 tokens/h, ingested as sync stores it, hour by hour."""
    engine = make_engine(database_url)
    start = datetime(2022, 10, 3, 8, tzinfo=UTC)
    with engine.begin() as connection:
        for hour in range(100):
            window = Window(start + timedelta(hours=hour), start + timedelta(hours=hour + 1))
            record = UsageRecord("solusvm", "41", "vps-41", "7", "3", window, Decimal(1), Decimal(2))
            ingest_window(connection, "solusvm", window, [record], window.end)
    engine.dispose()


def test_the_october_dry_run_json_is_byte_identical_to_the_golden_file(
    config: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = '[pricing.solusvm_plans."3"]\ntokens_per_hour = 2\ntokens_per_month = 150\n'
    config.write_text(config.read_text() + rates)
    cfg = ["--config", str(config)]
    with time_machine.travel(RUN_AT, tick=False):
        until = ("--until", "2022-11-01T00:00:00Z")
        assert run_cli(capsys, *cfg, "sync", "--source", "openstack", *until)[0] == 0
        _solusvm_october(database_url)
        for email, name, link in (
            ("ops@acme.com", "Acme Ltd", ("--openstack-project", "p-1")),
            ("late@night.io", "Night Owl", ("--openstack-project", "p-2")),
            ("vps@tokens.net", "Token Shop", ("--solusvm-user", "7")),
            ("idle@quiet.org", "Quiet Org", ("--openstack-project", "p-9")),
        ):
            assert run_cli(capsys, *cfg, "client", "add", "--email", email, "--name", name)[0] == 0
            assert run_cli(capsys, *cfg, "client", "link", email, *link)[0] == 0
        code, out, err = run_cli(capsys, *cfg, "invoice", "--date", "2022-11-01", "--dry-run", "--json")
    assert code == 0, err
    if REGENERATE:
        GOLDEN.write_text(out)
    assert out == GOLDEN.read_text()
