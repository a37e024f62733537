"""Clients and their links to OpenStack, SolusVM and WHMCS accounts."""

from __future__ import annotations

from typing import Any

import click

from bridge.cli.base import Context, cli, pass_context, print_json
from bridge.domain.clients import Client, LinkKind
from bridge.errors import InputError
from bridge.services.views import Agreement


@cli.group()
def client() -> None:
    """Clients and the accounts they own in OpenStack, SolusVM and WHMCS."""


@client.command("add")
@click.option("--email", required=True, help="The client's email (unique).")
@click.option("--name", required=True, help="The client's name or company.")
@click.option("--currency", help="ISO 4217 code (default: billing.currency).")
@click.option("--configuration", help="Named configuration (default: default).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_add(
    context: Context, email: str, name: str, currency: str | None, configuration: str | None, as_json: bool
) -> None:
    """Add a client."""
    added = context.app.clients.add(email=email, name=name, currency=currency, configuration=configuration)
    _print_client(added, as_json)


@client.command("link")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--openstack-project", help="OpenStack project id.")
@click.option("--solusvm-user", help="SolusVM user id.")
@click.option("--whmcs-client", help="WHMCS client id.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_link(
    context: Context,
    client_ref: str,
    openstack_project: str | None,
    solusvm_user: str | None,
    whmcs_client: str | None,
    as_json: bool,
) -> None:
    """Link CLIENT (id or email) to one external account."""
    given = {
        LinkKind.OPENSTACK_PROJECT: openstack_project,
        LinkKind.SOLUSVM_USER: solusvm_user,
        LinkKind.WHMCS_CLIENT: whmcs_client,
    }
    chosen = [(kind, value) for kind, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise InputError("give exactly one of --openstack-project, --solusvm-user, --whmcs-client")
    kind, external_id = chosen[0]
    _print_client(context.app.clients.link(client_ref, kind, external_id), as_json)


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_list(context: Context, as_json: bool) -> None:
    """List clients."""
    found = context.app.clients.all()
    if as_json:
        print_json([_client_json(item) for item in found])
        return
    if not found:
        click.echo("no clients yet; add one with `billing-bridge client add --email ... --name ...`")
    for item in found:
        links = ", ".join(f"{link.kind.value}={link.external_id}" for link in item.links) or "no links"
        click.echo(
            f"{item.id:>6}  {item.email:<32} {item.name:<24} {item.currency} {item.configuration}  {links}"
        )


@client.command("show")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_show(context: Context, client_ref: str, as_json: bool) -> None:
    """Show one client (by id or email): links, agreement, credit, burn rate, hours left, suspension."""
    from bridge.cli.credit import account_json, account_lines, service

    found = context.app.clients.get(client_ref)
    agreement = context.app.payments.agreement(found.id)
    account = service(context).account(str(found.id))
    changes = service(context).auto_invoicing_history(found.id)
    if as_json:
        print_json(
            {
                **_client_json(found),
                "agreement": _agreement_json(agreement),
                "credit": account_json(account),
                "auto_invoicing_changes": [
                    {
                        "at": change.changed_at.isoformat(),
                        "by": change.changed_by,
                        "old": change.old_choice,
                        "new": change.new_choice,
                    }
                    for change in changes
                ],
            }
        )
        return
    _print_client(found, as_json)
    click.echo(f"  agreement      {_agreement_text(agreement)}")
    for line in account_lines(account)[1:]:
        if not line.lstrip().startswith("agreement"):  # shown above, with when it was last read
            click.echo(line)
    for change in changes:
        old = change.old_choice or "configuration default"
        click.echo(
            f"  auto-invoicing changed {change.changed_at.isoformat()} by {change.changed_by}: "
            f"{old} -> {change.new_choice}"
        )


@client.command("update")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--email", help="The client's new email.")
@click.option("--name", help="The client's new name.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_update(
    context: Context, client_ref: str, email: str | None, name: str | None, as_json: bool
) -> None:
    """Change CLIENT's email or name (with WHMCS on, the next push sends it with UpdateClient)."""
    if email is None and name is None:
        raise InputError("give --email or --name (or both)")
    _print_client(context.app.clients.update(client_ref, email=email, name=name), as_json)


def _agreement_json(agreement: Agreement | None) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {
        "has_agreement": agreement.has_agreement,
        "changed_at": agreement.changed_at.isoformat(),
        "checked_at": agreement.checked_at.isoformat(),
    }


def _agreement_text(agreement: Agreement | None) -> str:
    """The agreement status for the credit engine, as last read from WHMCS (payments_sync)."""
    if agreement is None:
        return "unknown (not read from WHMCS yet)"
    state = "yes" if agreement.has_agreement else "no"
    return f"{state} (since {agreement.changed_at.isoformat()}, last read {agreement.checked_at.isoformat()})"


def _client_json(item: Client) -> dict[str, Any]:
    return {
        "id": item.id,
        "email": item.email,
        "name": item.name,
        "currency": item.currency,
        "configuration": item.configuration,
        "created_at": item.created_at.isoformat(),
        "links": [
            {
                "kind": link.kind.value,
                "external_id": link.external_id,
                "created_at": link.created_at.isoformat(),
            }
            for link in item.links
        ],
    }


def _print_client(item: Client, as_json: bool) -> None:
    if as_json:
        print_json(_client_json(item))
        return
    click.echo(f"client {item.id}: {item.name} <{item.email}>")
    click.echo(f"  currency       {item.currency}")
    click.echo(f"  configuration  {item.configuration}")
    click.echo(f"  created        {item.created_at.isoformat()}")
    for link in item.links:
        click.echo(f"  {link.kind.value:<14} {link.external_id}")
