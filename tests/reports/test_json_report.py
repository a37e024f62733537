"""The JSON report: a stable shape, exact decimals, defects first, the same streamed or whole."""

from __future__ import annotations

import io
import json
from decimal import Decimal

from bridge.domain.reconciliation import Report
from bridge.reports.json_report import FORMAT, JsonReportWriter, not_billed_by_reason, render_json


def test_the_document_opens_with_its_format_the_month_and_the_defects(october: Report) -> None:
    document = json.loads(render_json(october))
    assert list(document) == ["format", "month", "defects", "summary", "cloud", "clients"]
    assert document["format"] == FORMAT
    assert document["month"] == {
        "label": "2022-10",
        "start": "2022-10-01T00:00:00+00:00",
        "end": "2022-11-01T00:00:00+00:00",
        "zone": "UTC",
        "as_of": "2022-11-20T12:00:00+00:00",
    }
    assert document["defects"] == {"count": 0, "hours": "0", "listed": []}


def test_hours_are_exact_decimal_strings_per_source_and_bucket(october: Report) -> None:
    hours = json.loads(render_json(october))["summary"]["hours"]
    assert (hours["collected"], hours["billed"]) == ("8110", "5512.952381")
    assert hours["not_billed"] == {
        "below_cap": "107.047619",
        "not_yet_invoiced": "188",
        "held": "1044",
        "skipped": "844",
        "unlinked_owner": "50",
        "suspended_not_billed": "264",
        "removed_by_recalculation": "100",
    }
    assert hours["by_source"]["solusvm"] == {
        "collected": "844",
        "billed": "714.285714",
        "resources": 2,
        "buckets": {
            "invoiced": "714.285714",
            "invoiced_late": "0",
            "below_cap": "29.714286",
            "not_yet_invoiced": "0",
            "held": "0",
            "skipped": "100",
            "unlinked_owner": "0",
            "suspended_not_billed": "0",
            "removed_by_recalculation": "0",
        },
    }


def test_a_client_drills_down_to_its_resources_and_placements(october: Report) -> None:
    clients = json.loads(render_json(october))["clients"]
    bob = next(client for client in clients if client["name"] == "Bob's Bakery")
    assert (bob["client_id"], bob["hours"], bob["billed"]) == ("2", "1608", "1480.952381")
    app = next(resource for resource in bob["resources"] if resource["resource_id"] == "app-1")
    assert app["placements"][1] == {
        "bucket": "below_cap",
        "hours": "77.333333",
        "detail": "the billable-seconds cap (INV-2022-0002, line openstack:app-1:m1.small:2022-10)",
        "invoice": "INV-2022-0002",
        "not_charged": "7.73",
        "settings_key": None,
    }
    orphan = clients[-1]
    assert (orphan["client_id"], orphan["name"], orphan["owners"]) == (
        None,
        "unlinked owner p-orphan",
        ["p-orphan"],
    )


def test_a_double_billed_hour_is_listed_among_the_defects_with_its_resource(double_billed: Report) -> None:
    document = json.loads(render_json(double_billed))
    assert document["defects"]["count"] == 1
    assert document["defects"]["listed"] == [
        {
            "kind": "in_two_buckets",
            "client_id": "1",
            "source": "openstack",
            "resource_id": "web-1",
            "resource_name": "web-1",
            "plan": "m1.small",
            "hours": "1",
            "detail": (
                "billed on INV-2022-0001 and INV-2022-0009, beyond the hours collected: the same hours twice"
            ),
        }
    ]
    ada = document["clients"][0]
    assert [defect["resource_id"] for defect in ada["defects"]] == ["web-1"]


def test_the_streamed_writer_writes_the_same_document(october: Report) -> None:
    out = io.StringIO()
    with JsonReportWriter(out) as writer:
        for result in october.clients:
            writer.client(result)
        writer.finish(october.summary)
    assert json.loads(out.getvalue()) == json.loads(render_json(october))


def test_a_month_without_clients_is_still_a_whole_document(october: Report) -> None:
    out = io.StringIO()
    with JsonReportWriter(out) as writer:
        writer.finish(october.summary)
    assert json.loads(out.getvalue())["clients"] == []


def test_not_billed_hours_per_reason_read_back_exactly_for_the_metrics(october: Report) -> None:
    figures = {
        (source, reason): hours
        for source, reason, hours in not_billed_by_reason(json.loads(render_json(october)))
    }
    assert figures[("openstack", "held")] == Decimal("1044")
    assert figures[("solusvm", "below_cap")] == Decimal("29.714286")
    assert len(figures) == 14
