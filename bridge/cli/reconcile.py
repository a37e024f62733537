"""``billing-bridge reconcile --month 2022-10``: every collected hour of the month traced to an invoice line
or a named reason (issue 18, docs/reconciliation.md).

Read-only (no lease): it reads the store, asks invoicing for a dry run and, for the whole month, the
clouds' own figures. Exit 0 even with defects (they are findings the report shows first), 2 on bad input.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import click

from bridge.cli.base import Context, cli, pass_context, text_argument, writable_path
from bridge.cli.progress import progress_bar
from bridge.domain.bounds import IDENTIFIER_MAX
from bridge.domain.reconciliation import Summary
from bridge.errors import InputError
from bridge.reports.labels import BUCKET_TITLES, DEFECT_TITLES, SOURCE_TITLES, hours_text, money_text
from bridge.reports.publish import Outputs, write_month


@cli.command()
@click.option("--month", "label", required=True, metavar="YYYY-MM", help="The calendar month, e.g. 2022-10.")
@click.option("--client", "client_ref", metavar="CLIENT", help="Only this client (id or email).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (hours and money as strings).")
@click.option("--html", "html_file", metavar="FILE", help="Write the HTML report (self-contained) to FILE.")
@click.option(
    "--csv", "csv_file", metavar="FILE", help="Write one row per client, source and bucket to FILE."
)
@pass_context
def reconcile(
    context: Context,
    label: str,
    client_ref: str | None,
    as_json: bool,
    html_file: str | None,
    csv_file: str | None,
) -> None:
    """Trace every collected hour of --month to an invoice line or a named reason, exactly once."""
    label = text_argument(label, "--month", 16)
    if client_ref is not None:
        client_ref = text_argument(client_ref, "--client", IDENTIFIER_MAX)
    html_path = writable_path(html_file, "--html")
    csv_path = writable_path(csv_file, "--csv")
    service = context.app.reconciliation
    try:
        month = service.month(label)
    except ValueError as error:
        raise InputError(f"--month: {error}") from None
    if client_ref is not None:
        context.app.clients.get(client_ref)  # an unknown client is bad input, named before any work
    with ExitStack() as stack:
        outputs = Outputs(
            json=sys.stdout if as_json else None,
            csv=stack.enter_context(_open(csv_path)) if csv_path else None,
            html=stack.enter_context(_open(html_path)) if html_path else None,
        )
        expected = 1 if client_ref is not None else context.app.clients.count()
        progress = stack.enter_context(progress_bar("reconciling clients", as_json=as_json))
        summary = write_month(
            service, month, outputs, client_ref=client_ref, progress=progress, expected=expected
        )
    if not as_json:
        _describe(summary)


def _open(path: Path) -> TextIO:
    return path.open("w", encoding="utf-8", newline="")


def _describe(summary: Summary) -> None:
    """The summary as text: the defects first, then hours per source and bucket, then money."""
    click.echo(f"reconciliation of {summary.month.label} ({summary.month.zone}), {summary.clients} clients")
    if summary.defect_count:
        click.echo(
            f"DEFECTS: {summary.defect_count} resources, {hours_text(summary.defect_hours)} h not in exactly "
            "one bucket"
        )
        for defect in summary.defects:
            click.echo(
                f"  {DEFECT_TITLES[defect.kind]}: client {defect.client_id or '-'} {defect.source} "
                f"{defect.resource_name} ({defect.resource_id}) {defect.plan}: {hours_text(defect.hours)} h; "
                f"{defect.detail}"
            )
    for source in summary.hours:
        click.echo(
            f"{SOURCE_TITLES[source.source]}: {hours_text(source.collected)} h collected, "
            f"{hours_text(source.billed)} h billed"
        )
        for bucket, hours in source.buckets:
            if hours:
                click.echo(f"  {BUCKET_TITLES[bucket]}: {hours_text(hours)} h")
    for money in summary.money:
        click.echo(
            f"money {money.currency}: invoiced {money_text(money.invoiced, money.currency)}, confirmed "
            f"{money_text(money.confirmed, money.currency)}, paid {money_text(money.paid, money.currency)}"
        )
