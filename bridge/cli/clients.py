"""Clients and their links to OpenStack, SolusVM and WHMCS accounts."""

from __future__ import annotations

from typing import Any

import click

from bridge.cli.base import Context, cli, pass_context, print_json
from bridge.domain.clients import Client, LinkKind
from bridge.errors import InputError
from bridge.services.taxes import TaxStanding
from bridge.services.views import Agreement


@cli.group()
def client() -> None:
    """Clients and the accounts they own in OpenStack, SolusVM and WHMCS."""


@client.command("add")
@click.option("--email", required=True, help="The client's email (unique).")
@click.option("--name", required=True, help="The client's name or company.")
@click.option("--currency", help="ISO 4217 code (default: billing.currency).")
@click.option("--configuration", help="Named configuration (default: default).")
@click.option(
    "--country", help="ISO 3166-1 alpha-2 country (DE, FR, US); without it, the home country's tax."
)
@click.option("--vat-id", help="EU VAT ID, checked offline then with VIES (may make the client tax exempt).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_add(
    context: Context,
    email: str,
    name: str,
    currency: str | None,
    configuration: str | None,
    country: str | None,
    vat_id: str | None,
    as_json: bool,
) -> None:
    """Add a client (with --vat-id and taxes.auto_eu_exemption, VIES may mark it tax exempt, seed 001)."""
    added = context.app.clients.add(
        email=email, name=name, currency=currency, configuration=configuration, country=country, vat_id=vat_id
    )
    if added.vat_id is not None:
        added = context.app.taxes.validate(added)
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
    standing = context.app.taxes.standing(str(found.id))
    changes = service(context).auto_invoicing_history(found.id)
    if as_json:
        print_json(
            {
                **_client_json(found),
                "agreement": _agreement_json(agreement),
                "credit": account_json(account),
                "tax": _tax_json(standing),
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
    for line in _tax_lines(standing):
        click.echo(line)
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


def tax_summary(item: Client) -> str:
    """The client's tax identity in one line: ``country FR, VAT ID FR40303265045, tax exempt (...)``."""
    country = item.country or "not given (taxed as the home country)"
    vat_id = item.vat_id or "none"
    exemption = item.exemption
    if exemption is None:
        exempt = "not tax exempt"
    else:
        state = "tax exempt" if exemption.exempt else "not tax exempt"
        exempt = f"{state} (by {exemption.by} at {exemption.at.isoformat()}: {exemption.why})"
    return f"country {country}, VAT ID {vat_id}, {exempt}"


def _tax_lines(standing: TaxStanding) -> list[str]:
    """The VIES evidence under the client's tax line: what VIES's answers mean now, and the last three."""
    lines = []
    if standing.vies is not None:
        lines.append(f"  VIES           {standing.vies.why}")
    for check in standing.checks[-3:]:
        said = check.outcome.value if check.code is None else f"{check.outcome.value} ({check.code})"
        number = f", consultation {check.consultation_number}" if check.consultation_number else ""
        lines.append(f"    asked {check.asked_at.isoformat()}: {said}{number}")
    return lines


def _tax_json(standing: TaxStanding) -> dict[str, Any]:
    return {
        "tax_exempt": standing.client.exemption is not None and standing.client.exemption.exempt,
        "exemption_history": [
            {"exempt": item.exempt, "by": item.by, "at": item.at.isoformat(), "why": item.why}
            for item in standing.history
        ],
        "vies": None
        if standing.vies is None
        else {"confirmed": standing.vies.confirmed, "why": standing.vies.why},
        "vies_checks": [
            {
                "vat_id": check.vat_id,
                "asked_at": check.asked_at.isoformat(),
                "outcome": check.outcome.value,
                "code": check.code,
                "request_date": check.request_date.isoformat() if check.request_date else None,
                "consultation_number": check.consultation_number,
            }
            for check in standing.checks
        ],
    }


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
        "country": item.country,
        "vat_id": item.vat_id,
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
    if item.country or item.vat_id or item.exemption:
        click.echo(f"  tax            {tax_summary(item)}")
    click.echo(f"  created        {item.created_at.isoformat()}")
    for link in item.links:
        click.echo(f"  {link.kind.value:<14} {link.external_id}")
