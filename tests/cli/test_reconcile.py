"""`billing-bridge reconcile`: October 2022 with every bucket present, read from a real store."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.reports import publish
from bridge.store.database import make_engine
from tests.support import reconciliation_store as story
from tests.support.reconcile import reconcile


def nonzero(buckets: dict[str, str]) -> dict[str, str]:
    return {bucket: hours for bucket, hours in buckets.items() if Decimal(hours)}


def by_source(document: dict[str, Any]) -> dict[str, Any]:
    return document["summary"]["hours"]["by_source"]  # type: ignore[no-any-return]


def test_every_hour_of_the_month_is_in_exactly_one_bucket_with_the_right_totals(
    seeded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = reconcile(capsys, seeded, "--month", "2022-10", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["defects"]["count"] == 0
    openstack, solusvm = by_source(document)["openstack"], by_source(document)["solusvm"]
    assert openstack["collected"] == "6522"
    assert nonzero(openstack["buckets"]) == story.EXPECTED_OPENSTACK
    assert solusvm["collected"] == "744"
    assert nonzero(solusvm["buckets"]) == story.EXPECTED_SOLUSVM
    for client in document["clients"]:
        for resource in client["resources"]:
            placed = sum(Decimal(p["hours"]) for p in resource["placements"])
            assert placed == Decimal(resource["hours"]), (client, resource)


def test_a_double_billed_hour_is_flagged_first(
    seeded: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    with engine.begin() as tx:
        twice = story.invoice(tx, "INV-2022-0011", 1, "0.10", push="pending")
        story.line(tx, twice, 1, "web-1", "1", "0.10")
    engine.dispose()
    code, out, _ = reconcile(capsys, seeded, "--month", "2022-10", "--json")
    document = json.loads(out)
    assert code == 0
    assert list(document)[1] == "defects" or "defects" in document
    assert document["defects"]["count"] == 1
    (defect,) = document["defects"]["listed"]
    assert (defect["kind"], defect["resource_id"], defect["hours"]) == ("in_two_buckets", "web-1", "1")

    code, text, _ = reconcile(capsys, seeded, "--month", "2022-10")
    assert text.splitlines()[1].startswith("DEFECTS: 1 resources, 1.00 h")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_nova_hours_plus_the_hours_it_forgot_at_a_resize_match_the_collected_hours(
    clouds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = reconcile(capsys, clouds, "--month", "2022-10", "--json")
    assert code == 0
    nova = json.loads(out)["cloud"]["nova"]
    assert (nova["projects"], nova["matching"], nova["mismatches"]) == (9, 9, [])
    assert (nova["nova_hours"], nova["forgotten_hours"], nova["collected_hours"]) == ("6322", "200", "6522")
    (db,) = nova["recovered"]
    assert (db["server_id"], db["action"], db["hours"]) == ("db-1", "resize", "200")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_large_months_page_is_drawn_from_a_second_pass_and_reads_the_same(
    seeded: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, again = tmp_path / "kept.html", tmp_path / "again.html"
    assert reconcile(capsys, seeded, "--month", "2022-10", "--html", str(kept))[0] == 0
    monkeypatch.setattr(publish, "KEPT_AT_MOST", 2)
    assert reconcile(capsys, seeded, "--month", "2022-10", "--html", str(again))[0] == 0
    assert again.read_text() == kept.read_text()
    assert "Carol&#39;s Clinic (#7)" in again.read_text()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_one_client_is_reconciled_alone(seeded: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = reconcile(
        capsys, seeded, "--month", "2022-10", "--client", "client5@example.com", "--json"
    )
    document = json.loads(out)
    assert code == 0
    assert [client["name"] for client in document["clients"]] == ["Fay's Foundry"]
    assert nonzero(by_source(document)["openstack"]["buckets"]) == {
        "invoiced": "480",
        "suspended_not_billed": "264",
    }


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--month", "October"),
            "error: --month: month 'October' is not of the form YYYY-MM, such as 2022-10",
        ),
        (("--month", "2022-10", "--client", "nobody@example.com"), "error: no client"),
        (
            ("--month", "2022-10", "--html", "/no/such/dir/r.html"),
            "error: --html /no/such/dir/r.html: the directory",
        ),
        (("--month", "2022-10", "--csv", "/tmp"), "error: --csv /tmp is a directory"),
        (("--month", ""), "error: --month"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_option(
    seeded: list[str], capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = reconcile(capsys, seeded, *args)
    assert (code, out) == (2, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
