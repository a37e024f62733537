"""The latest reconciliation as Prometheus gauges, so an alert can fire on hours not billed or defects.

Read from the latest summary in the archive at each scrape (a small file), never from the store::

    billing_bridge_reconciliation_not_billed_hours{source, reason}   hours of the month not billed, per reason
    billing_bridge_reconciliation_collected_hours{source}            hours collected in the month
    billing_bridge_reconciliation_billed_hours{source}               hours billed (invoiced and invoiced late)
    billing_bridge_reconciliation_defects                            resources with hours in no or two buckets
    billing_bridge_reconciliation_defect_hours                       their hours
    billing_bridge_reconciliation_as_of_seconds                      when the report's evidence was read

Every series carries the label ``month`` of the report, so a dashboard shows which month it speaks of.
Before the first report there are no series at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.reports.archive import ReportArchive
from bridge.reports.json_report import not_billed_by_reason

PREFIX = "billing_bridge_reconciliation"


class ReconciliationCollector(Collector):
    """Gauges of the latest report in ``archive``; register it with the endpoint's registry."""

    def __init__(self, archive: ReportArchive) -> None:
        self._archive = archive

    def collect(self) -> Iterator[Metric]:
        document = self._archive.latest_summary()
        if document is None:
            return
        yield from summary_metrics(document)


def summary_metrics(document: dict[str, Any]) -> Iterator[Metric]:
    """The gauges of one summary document (json_report.head_document)."""
    month = document["month"]["label"]
    not_billed = GaugeMetricFamily(
        f"{PREFIX}_not_billed_hours",
        "Hours collected in the month and not billed, per source and reason",
        labels=["month", "source", "reason"],
    )
    for source, reason, hours in not_billed_by_reason(document):
        not_billed.add_metric([month, source, reason], float(hours))
    yield not_billed
    by_source = document["summary"]["hours"]["by_source"]
    for name, key, text in (
        ("collected_hours", "collected", "Hours collected in the month, per source"),
        ("billed_hours", "billed", "Hours of the month on standing invoices, per source"),
    ):
        family = GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=["month", "source"])
        for source, figures in by_source.items():
            family.add_metric([month, source], float(Decimal(figures[key])))
        yield family
    defects = document["defects"]
    yield _gauge("defects", "Resources whose hours are in no bucket or in two", month, defects["count"])
    yield _gauge("defect_hours", "Hours in no bucket or in two", month, float(Decimal(defects["hours"])))
    as_of = datetime.fromisoformat(document["month"]["as_of"]).timestamp()
    yield _gauge("as_of_seconds", "When the latest report's evidence was read (Unix time)", month, as_of)


def _gauge(name: str, text: str, month: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=["month"])
    gauge.add_metric([month], value)
    return gauge
