"""A month's reconciliation written out: to the files the CLI was asked for, or into the archive.

The reconciliation service (bridge/services/reconciliation.py) gives a reconciler and the month's
evidence client by client; the JSON document and the CSV are written as the results come, and the HTML
page (which needs the summary before the clients) from the results kept, or, for a large month, from a
second pass over the store, so memory stays bounded either way.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol, TextIO

from bridge.domain.reconciliation import ClientEvidence, ClientResult, Month, Reconciler, Summary
from bridge.progress import Progress, Tally, no_progress
from bridge.reports.archive import ReportArchive, ReportFiles
from bridge.reports.csv_report import Grain, write_csv, write_solusvm_servers
from bridge.reports.json_report import JsonReportWriter, head_document


class Reconciles(Protocol):
    """The reconciliation read model (bridge.services.reconciliation.ReconciliationService)."""

    def recent_months(self, count: int) -> list[Month]: ...

    def begin(
        self, month: Month, *, client_ref: str | None = None, cloud: bool = True
    ) -> tuple[Reconciler, Iterator[ClientEvidence]]: ...


@dataclass(frozen=True)
class Outputs:
    """Where each format goes (None: not written)."""

    json: TextIO | None = None
    csv: TextIO | None = None
    html: TextIO | None = None
    csv_grain: Grain = "client"


CHECKPOINT_EVERY = 500
"""Clients between two calls of the caller's ``checkpoint`` (a daemon job stops there at shutdown)."""
KEPT_AT_MOST = 2_000
"""Clients whose results are kept for the page; a larger month is read a second time to draw it, so its
memory stays bounded (the store is only read, so the second pass finds the same evidence)."""


def write_month(
    service: Reconciles,
    month: Month,
    outputs: Outputs,
    *,
    client_ref: str | None = None,
    checkpoint: Callable[[], None] = lambda: None,
    progress: Progress = no_progress,
    expected: int = 0,
) -> Summary:
    """Reconcile ``month`` (one client with ``client_ref``) into ``outputs``; returns the summary.

    ``progress`` hears how many clients are reconciled of ``expected`` (the owners linked to no client
    come after them, and grow the total).

    The JSON document and the CSV are written as the clients come; the page needs the summary before the
    clients, so it is drawn after them, from the results kept or from a second pass.
    """
    kept: list[ClientResult] | None = [] if outputs.html is not None else None
    reconciler, evidence = service.begin(month, client_ref=client_ref)
    tally = Tally(progress, total=expected)
    with ExitStack() as stack:
        writer = stack.enter_context(JsonReportWriter(outputs.json)) if outputs.json is not None else None

        def results() -> Iterator[ClientResult]:
            nonlocal kept
            for count, one in enumerate(evidence):
                if count % CHECKPOINT_EVERY == 0:
                    checkpoint()
                result = reconciler.add(one)
                if writer is not None:
                    writer.client(result)
                if kept is not None:
                    kept.append(result)
                    if len(kept) > KEPT_AT_MOST:
                        kept = None
                tally.advance()
                yield result

        if outputs.csv is not None:
            write_csv(month.label, results(), outputs.csv, outputs.csv_grain)
        else:
            collections.deque(results(), maxlen=0)
        tally.finish()
        summary = reconciler.summary()
        if outputs.csv is not None:
            write_solusvm_servers(month.label, summary.cloud.solusvm, outputs.csv, outputs.csv_grain)
        if writer is not None:
            writer.finish(summary)
    if outputs.html is not None:
        from bridge.reports.html_report import write_html  # jinja2 and matplotlib: only for a page

        clients = kept if kept is not None else _second_pass(service, month, client_ref, checkpoint)
        write_html(summary, clients, outputs.html)
    return summary


def _second_pass(
    service: Reconciles, month: Month, client_ref: str | None, checkpoint: Callable[[], None]
) -> Iterator[ClientResult]:
    reconciler, evidence = service.begin(month, client_ref=client_ref, cloud=False)
    for count, one in enumerate(evidence):
        if count % CHECKPOINT_EVERY == 0:
            checkpoint()
        yield reconciler.add(one)


RECENT_MONTHS = 2
"""Months the daemon job reconciles each day, at most: last month and the one before it (late usage of a
month is invoiced with the next cycle, so it lands in the month after the month after), when
``billing.hourly_usage_months`` keeps that one's hourly rows (2 or more)."""


class ReportPublisher:
    """Writes a month's report into the archive (the daemon's job): the document, the CSV and the page,
    and last the summary, since a report counts once its summary is in place."""

    def __init__(self, service: Reconciles, archive: ReportArchive) -> None:
        self.service = service
        self.archive = archive

    def publish_recent(
        self, retained_months: int, checkpoint: Callable[[], None] = lambda: None
    ) -> list[tuple[ReportFiles, Summary]]:
        """The reports of the :data:`RECENT_MONTHS` months before the current one whose hourly usage is
        still kept (``retained_months``: ``billing.hourly_usage_months``; a pruned month would read as
        never collected), oldest first, so the latest report stays last month's. What the daemon job runs
        after each day's invoicing: late usage billed on a later invoice and WHMCS's confirmations change
        a month after it ended."""
        count = max(1, min(RECENT_MONTHS, retained_months))
        return [self.publish(month, checkpoint) for month in self.service.recent_months(count)]

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
