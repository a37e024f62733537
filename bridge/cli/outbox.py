"""The push to WHMCS by hand and the outbox behind it: push, outbox (list, retry, cancel), payments-sync."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from bridge.bootstrap import App
from bridge.cli.base import ID, Context, cli, pass_context, print_json
from bridge.cli.progress import progress_bar
from bridge.errors import BridgeError, InputError
from bridge.services.outbox import ListedRow
from bridge.services.views import OutboxRow
from bridge.sync.push import PushReport, RowNote


def _require_whmcs(app: App) -> None:
    if not app.settings.whmcs.enabled:
        raise InputError("whmcs.enabled is false; set [whmcs] enabled, url, identifier and secret first")


@cli.command("push")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; call nothing, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def push(context: Context, dry_run: bool, as_json: bool) -> None:
    """Send pending outbox rows to WHMCS now, under the same lease as the daemon's push job.

    Exits 1 when a row failed or had to be put off (the outbox command shows them).
    """
    app = context.app
    _require_whmcs(app)
    pusher = app.pusher()
    if dry_run:
        report = pusher.run(dry_run=True)
    else:
        with app.runner.holding("push") as lease:
            if lease is None:
                raise BridgeError(app.runner.busy("push"))
            with progress_bar("pushing clients", as_json=as_json) as progress:
                report = pusher.run(lease=lease, progress=progress)
    if as_json:
        print_json(
            {
                "dry_run": report.dry_run,
                "enqueued": report.enqueued,
                "rows": [asdict(n) for n in report.notes],
            }
        )
    else:
        _describe_push(report)
    if report.trouble:
        raise click.exceptions.Exit(1)


def _describe_push(report: PushReport) -> None:
    for client_id in report.enqueued:
        verb = "would enqueue" if report.dry_run else "enqueued"
        click.echo(f"client {client_id}: {verb} add_client (not in WHMCS yet; matched by email first)")
    for note in report.notes:
        click.echo(_note_line(note, report.dry_run))
    if report.dry_run:
        due = len(report.of("planned"))
        click.echo(f"dry run: {due} rows would be sent, {len(report.of('blocked'))} wait; nothing was sent")
        return
    counts = report.counts()
    click.echo(
        f"{counts.get('sent', 0) + counts.get('looked_up', 0)} rows pushed "
        f"({counts.get('looked_up', 0)} found already in WHMCS), {counts.get('failed', 0)} failed, "
        f"{counts.get('postponed', 0)} put off, {counts.get('blocked', 0)} clients waiting"
    )


def _note_line(note: RowNote, dry_run: bool) -> str:
    head = f"#{note.row_id:<6} client {note.client_id:<6} {note.kind:<15} {note.reference}"
    if dry_run:
        return f"{head}: {note.message}" if note.result == "blocked" else f"{head}: {note.action}"
    remote = f" (WHMCS id {note.remote_id})" if note.remote_id else ""
    if note.result == "sent":
        return f"{head}: sent{remote}"
    if note.result == "looked_up":
        return f"{head}: already in WHMCS{remote}, not sent again"
    return f"{head}: {note.result}: {note.message}"


@cli.group("outbox", invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(["pending", "in-doubt", "failed", "done", "cancelled"]),
    help="Only rows in this state (default: every row not settled: pending, in-doubt, failed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def outbox(click_context: click.Context, state: str | None, as_json: bool) -> None:
    """Effects waiting for WHMCS, oldest first; `outbox retry ID` and `outbox cancel ID` act on one."""
    if click_context.invoked_subcommand is not None:
        return
    context = click_context.find_object(Context)
    assert context is not None
    app = context.app
    listed = app.outbox.rows(state)
    if as_json:
        print_json([_row_json(item.row, item.blocked_by) for item in listed])
        return
    if not listed:
        click.echo(f"no outbox rows {state or 'waiting'}")
    for item in listed:
        click.echo(_row_line(item))


@outbox.command("retry")
@click.argument("row_id", metavar="ID", type=ID)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def outbox_retry(context: Context, row_id: int, as_json: bool) -> None:
    """Send row ID at the next push (a failed row is looked up in WHMCS first, so it never goes twice)."""
    app = context.app
    row = app.outbox.retry(row_id)
    if as_json:
        print_json(_row_json(row, None))
        return
    click.echo(
        f"outbox row {row.id} ({row.kind.value} {row.reference}) is {_state(row)}; it goes at the next push"
    )


@outbox.command("cancel")
@click.argument("row_id", metavar="ID", type=ID)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def outbox_cancel(context: Context, row_id: int, as_json: bool) -> None:
    """Never send row ID. A row in doubt may already be in WHMCS: check there."""
    app = context.app
    service = app.outbox
    was = service.get(row_id)
    row = service.cancel(row_id)
    if as_json:
        print_json(_row_json(row, None))
        return
    click.echo(f"outbox row {row.id} ({row.kind.value} {row.reference}) cancelled; it will not be sent")
    if was.state.value == "in_doubt":
        click.echo(f"note: it was in doubt, so WHMCS may hold it already; look for {row.reference} there")


@cli.command("payments-sync")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def payments_sync(context: Context, as_json: bool) -> None:
    """Read paid invoices and clients' agreements from WHMCS now (the daemon's payments_sync job)."""
    app = context.app
    _require_whmcs(app)
    with app.runner.holding("payments_sync") as held:
        if not held:
            raise BridgeError(
                "payments_sync is running in another daemon right now; try again when it finishes"
            )
        report = app.payments.run()
    if as_json:
        print_json(asdict(report))
    else:
        click.echo(
            f"{report.invoices_checked} pushed invoices read, {len(report.paid)} paid "
            f"({', '.join(report.paid) or 'none'}); {report.agreements_checked} agreements read, "
            f"{len(report.agreements_changed)} changed"
        )
        for reference in report.missing:
            click.echo(f"invoice {reference}: its WHMCS invoice no longer exists")
        for error in report.errors:
            click.echo(f"not read: {error}")
    if report.errors or report.missing:
        raise click.exceptions.Exit(1)


def _state(row: OutboxRow) -> str:
    return row.state.value.replace("_", "-")


def _row_line(item: ListedRow) -> str:
    row = item.row
    line = (
        f"#{row.id:<6} {_state(row):<9} client {row.client_id:<6} {row.kind.value:<15} {row.reference:<28} "
        f"tries {row.attempts:<3} since {row.created_at.isoformat()}"
    )
    if row.remote_id:
        line += f"  WHMCS id {row.remote_id}"
    if item.blocked_by is not None and item.blocked_by != row.id:
        line += f"  (waits behind failed #{item.blocked_by})"
    if row.last_error:
        line += f"\n        last error: {row.last_error}"
    return line


def _row_json(row: OutboxRow, blocked_by: int | None) -> dict[str, Any]:
    document = asdict(row)
    document["kind"] = row.kind.value
    document["state"] = row.state.value
    document["blocked_by"] = blocked_by
    return document
