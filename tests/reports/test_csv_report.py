"""The CSV report: one row per client (or resource) and bucket, defects as rows a filter finds."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from bridge.domain.reconciliation import Report
from bridge.reports.csv_report import CLIENT_COLUMNS, RESOURCE_COLUMNS, write_csv


def rows(report: Report, grain: str) -> list[dict[str, str]]:
    out = io.StringIO()
    write_csv("2022-10", report.clients, out, grain)  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_one_row_per_client_source_and_bucket_adds_up_to_the_month(october: Report) -> None:
    table = rows(october, "client")
    assert tuple(table[0]) == CLIENT_COLUMNS
    assert sum(Decimal(row["hours"]) for row in table) == october.summary.collected
    bob = [
        (row["source"], row["bucket"], row["hours"], row["not_charged"])
        for row in table
        if row["client_id"] == "2"
    ]
    assert bob == [
        ("openstack", "invoiced", "766.666667", ""),
        ("openstack", "below_cap", "77.333333", "7.73"),
        ("openstack", "not_yet_invoiced", "20", ""),
        ("solusvm", "invoiced", "714.285714", ""),
        ("solusvm", "below_cap", "29.714286", "0.21"),
    ]


def test_one_row_per_resource_and_bucket_names_the_setting_to_add(october: Report) -> None:
    table = rows(october, "resource")
    assert tuple(table[0]) == RESOURCE_COLUMNS
    gpu = next(row for row in table if row["resource_id"] == "gpu-1")
    assert (gpu["bucket"], gpu["hours"], gpu["settings_key"]) == (
        "held",
        "300",
        'pricing.flavors."g1.xlarge"',
    )
    orphan = next(row for row in table if row["resource_id"] == "stray-1")
    assert (orphan["client_id"], orphan["client"], orphan["bucket"]) == (
        "",
        "unlinked owner p-orphan",
        "unlinked_owner",
    )


def test_a_double_billed_hour_is_a_defect_row(double_billed: Report) -> None:
    for grain in ("client", "resource"):
        (defect,) = [row for row in rows(double_billed, grain) if row["bucket"].startswith("defect:")]
        assert (defect["bucket"], defect["hours"]) == ("defect:in_two_buckets", "1")
