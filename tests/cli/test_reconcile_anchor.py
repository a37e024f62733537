"""`billing-bridge reconcile` draws a client's cycles as invoicing does: anchored on its first service,
not on the day the client was added to the bridge (seed 001).

Ivy was added on Aug 3 but her first VM started on Sep 15 06:00, so her anniversary cycles run from Sep 15
06:00 to Oct 15, then Oct 15 to Nov 15; `invoice --date 2022-11-20` bills both. ivy-1 ran Sep 15 06:00 to
Oct 10 in daily windows from 06:00 (210 h of them in October: a window is in the month it starts in),
ivy-2 Oct 20 to Nov 10 (288 h in October), each cycle under the billable-seconds cap. Anchored on Aug 3,
October would be cut at Oct 3 and Nov 3, on no invoice's period.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.database import make_engine
from tests.support import reconciliation_store as story
from tests.support.cli import run_cli
from tests.support.reconcile import at_as_of, reconcile

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

ADDED = datetime(2022, 8, 3, tzinfo=UTC)
FIRST_VM = datetime(2022, 9, 15, 6, tzinfo=UTC)


@pytest.fixture
def ivy(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Ivy's two VMs, invoiced by `billing-bridge invoice` on the story's day."""
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\n{story.SETTINGS}')
    engine = make_engine(database_url)
    with engine.begin() as tx:
        links = [("openstack_project", "p-ivy")]
        story.add_client(tx, 1, "Ivy's Inn", links, created=ADDED, configuration="anniversary")
        story._ran(tx, "ivy-1", "p-ivy", FIRST_VM, datetime(2022, 10, 10, tzinfo=UTC))
        story._ran(
            tx, "ivy-2", "p-ivy", datetime(2022, 10, 20, tzinfo=UTC), datetime(2022, 11, 10, tzinfo=UTC)
        )
    engine.dispose()
    config = ["--config", str(path)]
    code, _, err = run_cli(capsys, *config, "invoice", "--date", "2022-11-20", app_factory=at_as_of)
    assert code == 0, err
    return config


def test_hours_are_matched_to_the_cycles_invoicing_drew_from_the_first_service(
    ivy: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = reconcile(capsys, ivy, "--month", "2022-10", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["defects"]["count"] == 0
    openstack = document["summary"]["hours"]["by_source"]["openstack"]
    assert openstack["collected"] == "498"
    assert {bucket: hours for bucket, hours in openstack["buckets"].items() if float(hours)} == {
        "invoiced": "498"
    }
    (client,) = document["clients"]
    cycles = {(r["resource_id"], r["cycle_start"], r["cycle_end"], r["hours"]) for r in client["resources"]}
    assert cycles == {
        ("ivy-1", "2022-09-15T06:00:00+00:00", "2022-10-15T00:00:00+00:00", "210"),
        ("ivy-2", "2022-10-15T00:00:00+00:00", "2022-11-15T00:00:00+00:00", "288"),
    }
