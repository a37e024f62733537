"""Invoicing by hand and reading invoices: invoice [--date], invoice list|show|pay|cancel."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from bridge.cli.base import (
    Context,
    StreamedJson,
    cli,
    parse_day,
    parse_instant,
    pass_context,
    print_json,
    text_argument,
    writable_path,
)
from bridge.cli.progress import progress_bar
from bridge.documents.invoices import (
    held_item,
    run_item,
    skipped_item,
    stored_document,
    stored_html,
    stored_pdf,
    with_runtime,
)
from bridge.domain.bounds import ID_MAX, IDENTIFIER_MAX
from bridge.domain.invoicing import Held, Skipped
from bridge.domain.money import round_money
from bridge.errors import BridgeError
from bridge.services.invoicing import InvoicingRun, InvoicingService, IssuedInvoice

if TYPE_CHECKING:
    from bridge.bootstrap import App


def service(context: Context) -> InvoicingService:
    return context.app.invoicing


@cli.group(invoke_without_command=True)
@click.option(
    "--date",
    "invoice_date",
    metavar="YYYY-MM-DD",
    help="Invoice date (default: today); 2022-11-01 bills October 2022.",
)
@click.option("--client", "client_ref", metavar="CLIENT", help="Only this client (id or email).")
@click.option("--dry-run", is_flag=True, help="Show exactly what would be invoiced; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (money as strings).")
@click.pass_context
def invoice(
    ctx: click.Context, invoice_date: str | None, client_ref: str | None, dry_run: bool, as_json: bool
) -> None:
    """Invoice every client's ended billing cycles as of --date (each cycle once), or manage invoices."""
    if ctx.invoked_subcommand is not None:
        return
    context: Context = ctx.obj
    app = context.app
    day = (
        parse_day(invoice_date, "--date")
        if invoice_date is not None
        else app.clock.now().astimezone(app.settings.billing.zone()).date()
    )
    zone = app.settings.billing.zone()
    report = _JsonReport(app, zone) if as_json else _TextReport(zone, dry_run)
    with report, app.runner.holding("invoicing") as held:
        if not held:
            raise BridgeError(app.runner.busy("invoicing"))
        with progress_bar("invoicing clients", as_json=as_json) as progress:
            run = service(context).run(
                day, client_ref=client_ref, dry_run=dry_run, progress=progress, listener=report
            )
        report.print(run)
    if run.counts.held:
        raise click.exceptions.Exit(1)


class _JsonReport:
    """The run's ``--json`` document, streamed: each outcome is written out as it comes (StreamedJson), so
    the run keeps none of them."""

    def __init__(self, app: App, zone: ZoneInfo) -> None:
        self._app = app
        self._zone = zone
        self._document = StreamedJson({}, ("invoices", "already_invoiced", "held", "skipped"))

    def __enter__(self) -> _JsonReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self._document.__exit__(*exc)

    def issued(self, invoice: IssuedInvoice) -> None:
        (item,) = with_runtime(
            {"invoices": [run_item(invoice, self._zone)]}, _runtime_splits(self._app, [invoice])
        )["invoices"]
        self._document.add("invoices", item)

    def already_invoiced(self, item: Skipped) -> None:
        self._document.add("already_invoiced", skipped_item(item))

    def held(self, item: Held) -> None:
        self._document.add("held", held_item(item))

    def skipped(self, item: Skipped) -> None:
        self._document.add("skipped", skipped_item(item))

    def print(self, run: InvoicingRun) -> None:
        self._document.update(invoice_date=run.invoice_date.isoformat(), dry_run=run.dry_run)
        self._document.print()


class _TextReport:
    """The run as text, in the order the operator reads it (issued, already invoiced, skipped, then the
    held ones on stderr), each section spooled to a temporary file as it comes."""

    def __init__(self, zone: ZoneInfo, dry_run: bool) -> None:
        self._zone = zone
        self._verb = "would invoice" if dry_run else "invoiced"
        self._files = ExitStack()
        self._sections = {
            name: self._files.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))  # noqa: SIM115 closed in __exit__
            for name in ("issued", "already", "skipped", "held")
        }

    def __enter__(self) -> _TextReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self._files.close()

    def issued(self, invoice: IssuedInvoice) -> None:
        draft = invoice.draft
        number = invoice.number or invoice.proforma_number or f"to WHMCS ({draft.reference})"
        ends = draft.cycle.end.astimezone(self._zone).isoformat(timespec="minutes")
        preview = f"PREVIEW, the cycle ends {ends}: " if invoice.preview else ""
        self._sections["issued"].write(
            f"{preview}{self._verb} client {invoice.client.id} {draft.cycle.label}: {draft.total} "
            f"{draft.currency}, {len(draft.lines)} lines, {number}\n"
        )

    def already_invoiced(self, item: Skipped) -> None:
        self._sections["already"].write(
            f"client {item.client.id} {item.reference}: {item.reason}, nothing new\n"
        )

    def skipped(self, item: Skipped) -> None:
        self._sections["skipped"].write(
            f"client {item.client.id} {item.reference}: not invoiced, {item.reason}\n"
        )

    def held(self, item: Held) -> None:
        lines = [f"client {item.client.id} {item.reference}: HELD"]
        if item.problem:
            lines.append(f"  {item.problem}")
        for error in item.errors:
            fix = f"; add {error.settings_key} to the settings" if error.settings_key else ""
            lines.append(f"  {error.source} {error.resource_name} ({error.resource_id}): {error.reason}{fix}")
        self._sections["held"].write("".join(f"{line}\n" for line in lines))

    def print(self, run: InvoicingRun) -> None:
        for name, spool in self._sections.items():
            spool.seek(0)
            while block := spool.read(1 << 16):
                click.echo(block, nl=False, err=name == "held")
        counts = run.counts
        if not (counts.issued or counts.already_invoiced or counts.skipped or counts.held):
            click.echo(f"nothing to invoice as of {run.invoice_date.isoformat()}")


def _runtime_splits(app: App, issued: list[IssuedInvoice]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per SolusVM line (resource id, period start): its billed hours as (observed, inferred); observed
    never more than the line bills, the rest inferred."""
    lines = [line for invoice in issued for line in invoice.draft.lines if line.source == "solusvm"]
    if not lines:
        return {}
    found = app.views.solusvm_runtime(
        [(line.resource_id, line.period.start, line.period.end) for line in lines]
    )
    splits = {}
    for line in lines:
        split = found.get((line.resource_id, line.period.start))
        if split is not None:
            billed = int(line.billed_hours)
            observed = min(split.observed_hours, billed)
            splits[(line.resource_id, line.period.start.isoformat())] = (observed, billed - observed)
    return splits


@invoice.command("list")
@click.option("--client", "client_ref", metavar="CLIENT", help="Only this client.")
@click.option("--status", type=click.Choice(["draft", "unpaid", "paid", "cancelled"]))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def invoice_list(context: Context, client_ref: str | None, status: str | None, as_json: bool) -> None:
    """List invoices, newest first."""
    app = context.app
    client_id = app.clients.get(client_ref).id if client_ref else None
    found = app.views.invoices(client_id=client_id, status=status)
    if as_json:
        print_json(
            [
                {
                    "number": item.display_number,
                    "reference": item.reference,
                    "client": item.client_id,
                    "status": item.status,
                    "issuer": item.issuer,
                    "total": _total(item.total, item.currency),
                    "currency": item.currency,
                    "date": item.issued_at.date().isoformat(),
                }
                for item in found
            ]
        )
        return
    if not found:
        click.echo("no invoices")
    for item in found:
        click.echo(
            f"{item.display_number:<20} client {item.client_id:<6} {item.status:<9} {item.issuer:<6} "
            f"{_total(item.total, item.currency):>12} {item.currency}  {item.reference}"
        )


@invoice.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--html", "as_html", is_flag=True, help="Print the printable HTML invoice.")
@click.option(
    "--pdf",
    "pdf_file",
    metavar="FILE",
    help="Write the invoice's PDF to FILE (the same bytes each time: dated the invoice's issue).",
)
@pass_context
def invoice_show(context: Context, number: str, as_json: bool, as_html: bool, pdf_file: str | None) -> None:
    """Show one invoice by its number, proforma number or reference."""
    pdf_path = writable_path(pdf_file, "--pdf")
    app = context.app
    stored = service(context).find(_number(number))
    client = app.clients.get(str(stored.client_id))
    zone = app.settings.billing.zone()
    config = app.configurations.section(client.configuration)
    if pdf_path is not None:
        pdf_path.write_bytes(stored_pdf(stored, client, zone, config))
        click.echo(f"invoice {stored.display_number}: PDF written to {pdf_path}")
    elif as_html:
        click.echo(stored_html(stored, client, zone, config))
    else:
        print_stored(context, stored.reference, as_json)


def print_stored(context: Context, reference: str, as_json: bool) -> None:
    """The stored invoice ``reference`` (or number), as ``invoice show`` prints it (text, or ``--json``)."""
    stored = service(context).find(reference)
    client = context.app.clients.get(str(stored.client_id))
    document = stored_document(stored, client, context.app.settings.billing.zone())
    if as_json:
        print_json(document)
        return
    click.echo(f"invoice {stored.display_number} ({document['status']}) for {client.name} <{client.email}>")
    click.echo(f"  date {document['date']}  due {document['due_date']}  reference {stored.reference}")
    for group in document["groups"]:
        click.echo(f"  {group['title']}:")
        for line in group["lines"]:
            click.echo(f"    {line['description']:<90} {line['amount']:>10}")
        click.echo(f"    {'subtotal':<90} {group['subtotal']:>10}")
    taxes = document.get("taxes")
    if taxes is not None:
        click.echo(f"  subtotal {taxes['subtotal']} {document['currency']}")
        for line in taxes["lines"]:
            click.echo(f"  {line['label']} on {line['base']}: {line['amount']} {document['currency']}")
        click.echo(f"  tax {taxes['tax']} {document['currency']}")
        if taxes["reverse_charge"]:
            click.echo(f"  {taxes['reverse_charge']}")
    click.echo(f"  total {document['total']} {document['currency']}")


@invoice.command("pay")
@click.argument("number")
@click.option("--date", "paid_on", metavar="DATETIME", help="When it was paid (default: now).")
@pass_context
def invoice_pay(context: Context, number: str, paid_on: str | None) -> None:
    """Record that an invoice was paid (a proforma becomes fiscal with the next number)."""
    app = context.app
    paid_at = parse_instant(paid_on, "--date", app.settings.billing.zone()) if paid_on is not None else None
    paid = service(context).mark_paid(_number(number), paid_at=paid_at)
    click.echo(f"invoice {paid.display_number} paid ({paid.reference})")


@invoice.command("cancel")
@click.argument("number")
@pass_context
def invoice_cancel(context: Context, number: str) -> None:
    """Cancel an unpaid invoice (its number stays used: fiscal numbering has no gaps)."""
    cancelled = service(context).cancel(_number(number))
    click.echo(f"invoice {cancelled.display_number} cancelled")


@invoice.group("numbering")
def invoice_numbering() -> None:
    """A configuration's fiscal numbering."""


@invoice_numbering.command("set")
@click.argument("configuration", metavar="CONFIG")
@click.option("--next", "next_number", type=click.IntRange(1, ID_MAX), required=True, help="The next number.")
@pass_context
def invoice_numbering_set(context: Context, configuration: str, next_number: int) -> None:
    """Raise CONFIG's next fiscal number (never downward, never to a used number)."""
    name = text_argument(configuration, "CONFIG", IDENTIFIER_MAX)
    previous, rendered = service(context).set_next_fiscal_number(name, next_number)
    click.echo(f"configuration {name}: next fiscal number {next_number} (was {previous}), e.g. {rendered}")


def _total(amount: Decimal, currency: str) -> str:
    """An invoice total as the invoice prints it, to the currency's minor unit (30.00 USD, 3000 JPY)."""
    return str(round_money(amount, currency))


def _number(text: str) -> str:
    """NUMBER as the store can look it up (an invoice number, proforma number or reference)."""
    return text_argument(text, "NUMBER", IDENTIFIER_MAX)
