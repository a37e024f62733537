"""The golden month: `invoice --date 2022-11-01 --dry-run --json` over a fixed October, byte for byte.

The middle layer is redesigned behind this file (issue 13): any byte that changes in the operator's JSON is a
behaviour change and fails here. Regenerate only for an intended change: BRIDGE_REGENERATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from bridge.clock import FixedClock
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli

GOLDEN = Path(__file__).parent / "golden" / "invoice_2022-11-01_dry_run.json"
REGENERATE = os.environ.get("BRIDGE_REGENERATE_GOLDEN") == "1"  # read before the CLI fixtures clear BRIDGE_*
RUN_AT = datetime(2022, 11, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _solusvm_october(solus: FakeSolusVM, sync: Callable[[], None]) -> None:
    """SolusVM user 7's server 41 ran 100 hours at 2 tokens/h (10-03 08:00 to 10-07 12:00), recorded by
    the node as it happened and billed from the runtime two daily syncs saw (issue 14)."""
    solus._ids.update(user=6, plan=2, server=40)  # the ids the golden file names: user 7, plan 3, server 41
    user = solus.add_user("vps@tokens.net")
    plan = solus.add_plan("vps", tokens_per_hour=2, tokens_per_month=150)
    solus.clock = FixedClock(datetime(2022, 10, 3, 8, tzinfo=UTC))
    server = solus.create_server("vps-41", user_id=user["id"], plan_id=plan["id"])
    with time_machine.travel(datetime(2022, 10, 4, tzinfo=UTC), tick=False):
        sync()
    solus.clock = FixedClock(datetime(2022, 10, 7, 12, tzinfo=UTC))
    solus.stop_server(server["id"])
    with time_machine.travel(datetime(2022, 10, 8, tzinfo=UTC), tick=False):
        sync()


def test_the_october_dry_run_json_is_byte_identical_to_the_golden_file(
    config: Path, solus: FakeSolusVM, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = '[pricing.solusvm_plans."3"]\ntokens_per_hour = 2\ntokens_per_month = 150\n'
    config.write_text(config.read_text() + rates)
    cfg = ["--config", str(config)]
    _solusvm_october(solus, lambda: _sync_solusvm(capsys, cfg))
    with time_machine.travel(RUN_AT, tick=False):
        until = ("--until", "2022-11-01T00:00:00Z")
        assert run_cli(capsys, *cfg, "sync", "--source", "openstack", *until)[0] == 0
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


def _sync_solusvm(capsys: pytest.CaptureFixture[str], cfg: list[str]) -> None:
    code, _, err = run_cli(capsys, *cfg, "sync", "--source", "solusvm")
    assert code == 0, err
