"""/metrics gauges of the latest reconciliation: hours not billed per reason, so an alert can fire."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from bridge.domain.reconciliation import Report
from bridge.reports.archive import ReportArchive
from bridge.reports.json_report import head_document
from bridge.reports.metrics import ReconciliationCollector


def scrape(archive: ReportArchive) -> str:
    registry = CollectorRegistry()
    registry.register(ReconciliationCollector(archive))
    return generate_latest(registry).decode()


def test_not_billed_hours_per_reason_and_the_defects_of_the_latest_report(
    tmp_path: Path, double_billed: Report
) -> None:
    archive = ReportArchive(tmp_path)
    assert scrape(archive) == ""
    with archive.writing(archive.files("2022-10").summary) as out:
        json.dump(head_document(double_billed.summary), out)
    page = scrape(archive)
    prefix = "billing_bridge_reconciliation"
    assert f'{prefix}_not_billed_hours{{month="2022-10",reason="held",source="openstack"}} 1044.0' in page
    assert (
        f'{prefix}_not_billed_hours{{month="2022-10",reason="below_cap",source="solusvm"}} 29.714286' in page
    )
    assert f'{prefix}_collected_hours{{month="2022-10",source="solusvm"}} 844.0' in page
    assert f'{prefix}_defects{{month="2022-10"}} 1.0' in page
    assert f'{prefix}_defect_hours{{month="2022-10"}} 1.0' in page
    assert f'{prefix}_as_of_seconds{{month="2022-10"}} 1.6689456e+09' in page
