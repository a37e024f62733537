"""A month's reconciliation written out: to the files the CLI was asked for, or into the archive.

The reconciliation service (bridge/services/reconciliation.py) yields each client's result once; the JSON
document streams them as they come, and the CSV and the HTML page (which need every client after the
summary) keep the results of the month in memory only when they are asked for.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol, TextIO

from bridge.domain.reconciliation import ClientResult, Month, Summary
from bridge.reports.archive import ReportArchive, ReportFiles
from bridge.reports.csv_report import Grain, write_csv
from bridge.reports.json_report import JsonReportWriter, head_document


class Reconciles(Protocol):
    """The reconciliation read model (bridge.services.reconciliation.ReconciliationService)."""

    def last_month(self) -> Month: ...

    def reconcile(
        self, month: Month, *, client_ref: str | None = None, each: Callable[[ClientResult], None] = ...
    ) -> Summary: ...


@dataclass(frozen=True)
class Outputs:
    """Where each format goes (None: not written)."""

    json: TextIO | None = None
    csv: TextIO | None = None
    html: TextIO | None = None
    csv_grain: Grain = "client"


CHECKPOINT_EVERY = 500
"""Clients between two calls of the caller's ``checkpoint`` (a daemon job stops there at shutdown)."""


def write_month(
    service: Reconciles,
    month: Month,
    outputs: Outputs,
    *,
    client_ref: str | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> Summary:
    """Reconcile ``month`` (one client with ``client_ref``) into ``outputs``; returns the summary."""
    kept: list[ClientResult] = []
    counted = itertools.count()
    keep = outputs.csv is not None or outputs.html is not None
    with ExitStack() as stack:
        writer = stack.enter_context(JsonReportWriter(outputs.json)) if outputs.json is not None else None

        def each(result: ClientResult) -> None:
            if next(counted) % CHECKPOINT_EVERY == 0:
                checkpoint()
            if writer is not None:
                writer.client(result)
            if keep:
                kept.append(result)

        summary = service.reconcile(month, client_ref=client_ref, each=each)
        if writer is not None:
            writer.finish(summary)
    if outputs.csv is not None:
        write_csv(month.label, kept, outputs.csv, outputs.csv_grain)
    if outputs.html is not None:
        from bridge.reports.html_report import write_html  # jinja2 and matplotlib: only for a page

        write_html(summary, kept, outputs.html)
    return summary


class ReportPublisher:
    """Writes a month's report into the archive (the daemon's job): the document, the CSV and the page,
    and last the summary, since a report counts once its summary is in place."""

    def __init__(self, service: Reconciles, archive: ReportArchive) -> None:
        self.service = service
        self.archive = archive

    def publish_last_month(
        self, checkpoint: Callable[[], None] = lambda: None
    ) -> tuple[ReportFiles, Summary]:
        """The report of the month before the current one (what the daemon job runs after invoicing)."""
        return self.publish(self.service.last_month(), checkpoint)

    def publish(
        self, month: Month, checkpoint: Callable[[], None] = lambda: None
    ) -> tuple[ReportFiles, Summary]:
        files = self.archive.files(month.label)
        archive = self.archive
        with (
            archive.writing(files.json) as json_out,
            archive.writing(files.csv) as csv_out,
            archive.writing(files.html) as html_out,
        ):
            outputs = Outputs(json_out, csv_out, html_out)
            summary = write_month(self.service, month, outputs, checkpoint=checkpoint)
        with archive.writing(files.summary) as out:
            json.dump(head_document(summary), out, indent=2)
            out.write("\n")
        return files, summary
