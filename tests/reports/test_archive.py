"""The report archive: one set of files per month, the latest by month, written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.domain.reconciliation import Report
from bridge.reports.archive import ReportArchive
from bridge.reports.json_report import head_document


def keep_summary(archive: ReportArchive, report: Report, month: str) -> None:
    with archive.writing(archive.files(month).summary) as out:
        json.dump(head_document(report.summary), out)


def test_the_latest_report_is_the_latest_month_whose_summary_is_in_place(
    tmp_path: Path, october: Report
) -> None:
    archive = ReportArchive(tmp_path / "reports")
    assert (archive.months(), archive.latest(), archive.latest_summary()) == ([], None, None)
    keep_summary(archive, october, "2022-10")
    keep_summary(archive, october, "2022-09")
    (tmp_path / "reports" / "reconciliation-2022-11.html").write_text("<p>half a month</p>")
    assert archive.months() == ["2022-09", "2022-10"]
    latest = archive.latest()
    assert latest is not None
    assert (latest.month, latest.html.name, latest.json.name) == (
        "2022-10",
        "reconciliation-2022-10.html",
        "reconciliation-2022-10.json",
    )
    summary = archive.latest_summary()
    assert summary is not None and summary["summary"]["hours"]["collected"] == "8110"


def test_a_report_that_fails_half_way_leaves_the_previous_one(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path)
    target = archive.files("2022-10").html
    with archive.writing(target) as out:
        out.write("<p>the first</p>")
    with pytest.raises(RuntimeError), archive.writing(target) as out:
        out.write("<p>the second, cut")
        raise RuntimeError("disk full")
    assert target.read_text() == "<p>the first</p>"
    assert [path.name for path in tmp_path.iterdir()] == ["reconciliation-2022-10.html"]
