"""`billing-bridge reconcile`: SolusVM servers seen in October against the hours billed for them, read from
the evidence the SolusVM sync stored (servers kept after deletion, polls, activity), never from the live API.

On top of the every-bucket October (tests/support/reconciliation_store.py), Hal's Hosting (client 20, SolusVM
user 41) has server 101 running all month and billed on INV-2022-0020, and server 102 that stayed stopped;
user 99, linked to no client, ran server 103 all month and was deleted on Oct 31 before the next sync.
SolusVM is enabled with an address nothing listens on: the reconciliation does not call it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.store import solusvm_evidence as evidence
from bridge.store.database import make_engine
from tests.cli.test_json_schemas import check
from tests.support import reconciliation_store as story
from tests.support.reconcile import reconcile

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

SEP = datetime(2022, 9, 1, tzinfo=UTC)
DELETED_AT = datetime(2022, 10, 31, 18, tzinfo=UTC)


@pytest.fixture
def seen(seeded: list[str], database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.begin() as tx:
        story.add_client(tx, 20, "Hal's Hosting", [("solusvm_user", "41")], created=SEP)
        evidence.save_servers(
            tx,
            [
                evidence.StoredServer(101, "hal-web", 41, 7, SEP, story.AS_OF),
                evidence.StoredServer(102, "hal-spare", 41, 7, SEP, story.AS_OF),
                evidence.StoredServer(103, "stray-vps", 99, 7, SEP, DELETED_AT - timedelta(hours=6)),
            ],
        )
        polls = [(101, "running"), (102, "stopped"), (103, "running")]
        evidence.save_polls(
            tx,
            [
                evidence.StoredPoll(server_id, at, state)
                for server_id, state in polls
                for at in (SEP, story.OCT)
            ],
        )
        evidence.save_polls(
            tx, [evidence.StoredPoll(server_id, story.NOV, state) for server_id, state in polls[:2]]
        )
        deletion = evidence.StoredRecord(
            evidence.TASK, 1, 103, "vm-delete", "done", DELETED_AT, DELETED_AT, DELETED_AT, None, story.NOV
        )
        evidence.save_records(tx, [deletion])
        story._ran(tx, "101", "41", story.OCT, story.NOV, plan="7", source="solusvm")
        story._ran(tx, "103", "99", story.OCT, DELETED_AT, plan="7", source="solusvm")
        hal = story.invoice(tx, "INV-2022-0020", 20, "5.21")
        story.line(
            tx, hal, 1, "101", "744", "5.21", plan="7", price="0.001", source="solusvm", tokens=(7, 5208)
        )
    engine.dispose()
    path = Path(seeded[1])
    path.write_text(
        path.read_text() + '\n[solusvm]\nenabled = true\nurl = "https://127.0.0.1:9"\ntoken = "unused"\n'
    )
    return seeded


def servers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {server["server_id"]: server for server in document["cloud"]["solusvm"]["servers"]}


def test_each_server_seen_in_the_month_is_held_against_the_hours_billed_for_it(
    seen: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = reconcile(capsys, seen, "--month", "2022-10", "--json")
    assert code == 0
    solusvm = json.loads(out)["cloud"]["solusvm"]
    assert (solusvm["seen"], solusvm["seen_not_billed"]) == (3, 2)
    assert solusvm["collected_not_seen"] == ["vps-1"]  # the story's vps-1 has hours but no stored evidence
    by_id = servers(json.loads(out))
    assert list(by_id) == ["102", "103", "101"]  # nothing billed first
    billed = by_id["101"]
    assert (billed["client_id"], billed["collected_hours"], billed["billed_hours"], billed["reason"]) == (
        "20",
        "744",
        "744",
        "",
    )
    assert billed["observed_hours"] + billed["inferred_hours"] == 744
    stopped = by_id["102"]
    assert (stopped["collected_hours"], stopped["billed_hours"]) == ("0", "0")
    assert stopped["client_id"] == "20"  # no hours, but its user is Hal's
    assert stopped["reason"] == "not running in the month: no runtime to bill"
    stray = by_id["103"]
    assert stray["observed_hours"] + stray["inferred_hours"] == 738  # deleted on Oct 31 18:00
    assert (stray["collected_hours"], stray["billed_hours"], stray["not_billed"]) == (
        "738",
        "0",
        {"unlinked_owner": "738"},
    )
    assert stray["reason"].startswith("unlinked_owner: ")
    assert stray["client_id"] is None


def test_the_servers_seen_are_in_the_csv_and_on_the_page(
    seen: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page, sheet = tmp_path / "october.html", tmp_path / "october.csv"
    code, _, _ = reconcile(capsys, seen, "--month", "2022-10", "--html", str(page), "--csv", str(sheet))
    assert code == 0
    rows = [
        row for row in csv.DictReader(io.StringIO(sheet.read_text())) if row["bucket"].startswith("solusvm:")
    ]
    assert [(row["bucket"], row["hours"]) for row in rows] == [
        ("solusvm:not_billed", "0"),
        ("solusvm:not_billed", "0"),
        ("solusvm:billed", "744"),
    ]
    assert rows[1]["detail"].startswith("server 103 stray-vps (user 99): runtime 738 h")
    assert "unlinked_owner: " in rows[1]["detail"]
    html = page.read_text()
    assert "SolusVM servers seen vs billed" in html
    assert "stray-vps (103)" in html
    assert "not running in the month: no runtime to bill" in html


def test_without_solusvm_enabled_its_side_is_not_asked(
    seeded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = reconcile(capsys, seeded, "--month", "2022-10", "--json")
    assert code == 0
    assert json.loads(out)["cloud"]["solusvm"] is None


def test_the_cloud_side_of_the_json_matches_its_schema_with_both_clouds_asked(
    seen: list[str], clouds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nova's figures (a resize it forgot) and the SolusVM servers seen, typed field by field."""
    code, out, _ = reconcile(capsys, seen, "--month", "2022-10", "--json")
    assert code == 0
    cloud = check("reconcile.json", out)["cloud"]
    assert [server["action"] for server in cloud["nova"]["recovered"]] == ["resize"]
    assert len(cloud["solusvm"]["servers"]) == 3

    document = json.loads(out)
    document["cloud"]["solusvm"]["servers"][0]["hours"] = document["cloud"]["solusvm"]["servers"][0].pop(
        "collected_hours"
    )
    with pytest.raises(AssertionError, match="collected_hours"):  # a renamed field is caught
        check("reconcile.json", json.dumps(document))
