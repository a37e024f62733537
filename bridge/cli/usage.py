"""Usage collection by hand and what was collected: sync, usage show, usage unlinked, clients import."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import click

from bridge.cli.base import Context, cli, parse_instant, pass_context, plain, print_json
from bridge.cli.progress import progress_bar
from bridge.domain.clients import LinkKind
from bridge.errors import EXIT_BAD_INPUT, EXIT_FAILURE, BridgeError, InputError
from bridge.services.clients import import_accounts
from bridge.services.views import ResourceUsage
from bridge.usage.sync import SourceReport, parse_sources


@cli.command("sync")
@click.option("--source", default="all", show_default=True, help="openstack, solusvm or all.")
@click.option(
    "--until", metavar="DATETIME", help="Collect windows ending by then (default: now less the settle delay)."
)
@click.option("--from", "start", metavar="DATETIME", help="Re-collect from here instead of the watermark.")
@click.option("--dry-run", is_flag=True, help="Collect and report, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def sync(
    context: Context, source: str, until: str | None, start: str | None, dry_run: bool, as_json: bool
) -> None:
    """Collect usage now, under the same lease as the daemon's usage_sync job."""
    app = context.app
    zone = app.settings.billing.zone()
    sources = parse_sources(source)
    until_at = parse_instant(until, "--until", zone) if until is not None else None
    start_at = parse_instant(start, "--from", zone) if start is not None else None
    with app.runner.holding("usage_sync") as held:
        if not held:
            raise BridgeError("usage_sync is running in another daemon right now; try again when it finishes")
        with progress_bar("collecting windows", as_json=as_json) as progress:
            reports = app.usage_sync().run(
                sources, until=until_at, start=start_at, dry_run=dry_run, progress=progress
            )
    if as_json:
        print_json([asdict(report) for report in reports])
    else:
        for report in reports:
            click.echo(_describe(report))
    if any(report.refused_field for report in reports):  # a reply refused for a named field: bad input
        raise click.exceptions.Exit(EXIT_BAD_INPUT)
    if any(report.error for report in reports):
        raise click.exceptions.Exit(EXIT_FAILURE)


def _describe(report: SourceReport) -> str:
    prefix = f"{report.source}{' (dry run)' if report.dry_run else ''}:"
    if report.skipped:
        return f"{prefix} skipped, {report.skipped}"
    if report.error and not report.windows:
        return f"{prefix} stopped: {report.error}"
    done = (
        f"{report.windows} windows, {report.records} records ({report.inserted} new, {report.raised} raised)"
        if report.windows
        else "nothing new to collect"
    )
    span = (
        f" {report.collected_from.isoformat()} -> {report.collected_until.isoformat()}"
        if report.collected_until and report.collected_from
        else ""
    )
    line = f"{prefix} {done}{span}"
    return f"{line}; stopped: {report.error}" if report.error else line


@cli.group()
def usage() -> None:
    """Collected usage."""


@usage.command("show")
@click.option("--client", "client_ref", required=True, metavar="CLIENT", help="Client id or email.")
@click.option("--from", "start", required=True, metavar="DATE", help="First day (billing time zone).")
@click.option("--to", "end", required=True, metavar="DATE", help="Day after the last (exclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def usage_show(context: Context, client_ref: str, start: str, end: str, as_json: bool) -> None:
    """Hours per resource of one client's linked accounts, windows starting in [--from, --to)."""
    app = context.app
    zone = app.settings.billing.zone()
    start_at, end_at = parse_instant(start, "--from", zone), parse_instant(end, "--to", zone)
    if end_at <= start_at:
        raise InputError("--to must be after --from")
    client = app.clients.get(client_ref)
    resources = [_resource_json(usage) for usage in app.views.client_usage(client, start_at, end_at)]
    if as_json:
        print_json({"client": client.id, "from": start_at, "to": end_at, "resources": resources})
        return
    if not resources:
        click.echo(f"no usage for client {client.id} between {start_at.isoformat()} and {end_at.isoformat()}")
    for entry in resources:
        tokens = f"  {entry['tokens']} tokens" if "tokens" in entry else ""
        if "observed_hours" in entry:
            tokens += f"  ({entry['observed_hours']} h observed, {entry['inferred_hours']} h inferred)"
        click.echo(
            f"{entry['source']:<10} {entry['resource_name']:<24} {entry['resource_id']:<38} "
            f"{','.join(entry['plans']):<16} {entry['hours']:>12} h{tokens}"
        )


def _resource_json(usage: ResourceUsage) -> dict[str, Any]:
    document: dict[str, Any] = {
        "source": usage.source,
        "resource_id": usage.resource_id,
        "resource_name": usage.resource_name,
        "plans": list(usage.plans),
        "hours": plain(usage.hours),
    }
    if usage.tokens is not None:
        document["tokens"] = plain(usage.tokens)
    if usage.observed_hours is not None:
        document["observed_hours"], document["inferred_hours"] = usage.observed_hours, usage.inferred_hours
    return document


@usage.command("unlinked")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def usage_unlinked(context: Context, as_json: bool) -> None:
    """Owners with usage but no client: kept, and billable once linked with `client link`."""
    found = context.app.views.unlinked_owners()
    if as_json:
        print_json([asdict(item) for item in found])
        return
    if not found:
        click.echo("every owner with usage is linked to a client")
    for item in found:
        option = "--openstack-project" if item.source == "openstack" else "--solusvm-user"
        click.echo(
            f"{item.source:<10} owner {item.owner:<36} {item.resources} resources, {item.records} records, "
            f"{item.first_window.isoformat()} .. {item.last_window.isoformat()}  "
            f"(link: billing-bridge client link CLIENT {option} {item.owner})"
        )


@cli.group("clients")
def clients_group() -> None:
    """Bulk operations on clients."""


@clients_group.command("import")
@click.option(
    "--from", "origin", required=True, type=click.Choice(["solusvm"]), help="Where the accounts are."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def clients_import(context: Context, origin: str, as_json: bool) -> None:
    """Create (or link by email) a client for every SolusVM user not linked yet; safe to repeat."""
    app = context.app
    if not app.settings.solusvm.enabled:
        raise InputError("solusvm.enabled is false; set [solusvm] enabled, url and token first")
    with app.solusvm_client(time.sleep) as client:
        users = client.users()
    accounts = [(str(user.id), user.email, user.email.split("@")[0]) for user in users]
    result = import_accounts(app.clients, LinkKind.SOLUSVM_USER, accounts)
    if as_json:
        print_json(
            {
                "created": [item.id for item in result.created],
                "linked": [item.id for item in result.linked],
                "already_linked": result.already_linked,
            }
        )
        return
    click.echo(
        f"{len(result.created)} clients created, {len(result.linked)} existing clients linked, "
        f"{result.already_linked} already linked"
    )
