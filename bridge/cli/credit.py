"""The credit engine by hand: credit add/show, client set/can-create/suspend/resume, process-clients."""

from __future__ import annotations

import getpass
from decimal import Decimal

import click

from bridge.cli.base import (
    Context,
    amount_argument,
    cli,
    parse_instant,
    pass_context,
    plain,
    print_json,
)
from bridge.cli.clients import client, tax_summary
from bridge.cli.progress import progress_bar
from bridge.errors import InputError
from bridge.services.credit import Account, CreditService, StaffAction


def service(context: Context) -> CreditService:
    return context.app.credit


@cli.group()
def credit() -> None:
    """Client credit: payments in, up-to-date credit, burn rate."""


@credit.command("add")
@click.argument("client_ref", metavar="CLIENT")
@click.argument("amount")
@click.option(
    "--reference", required=True, help="The payment's reference; the same reference twice is one payment."
)
@click.option("--description", help="Shown in the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def credit_add(
    context: Context, client_ref: str, amount: str, reference: str, description: str | None, as_json: bool
) -> None:
    """Record a payment of AMOUNT (in the client's currency) for CLIENT."""
    value = amount_argument(amount, "AMOUNT")
    created, account = service(context).add_credit(client_ref, value, reference, description)
    if as_json:
        print_json({"recorded": created, **account_json(account)})
        return
    verb = "recorded" if created else "already recorded (same reference), nothing changed"
    click.echo(f"payment {reference}: {verb}; credit {account.credit} {account.client.currency}")


@credit.command("invoice")
@click.argument("client_ref", metavar="CLIENT")
@click.argument("amount")
@click.option(
    "--reference",
    required=True,
    help="Your reference for it (an order id); the same reference is one invoice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the invoice as JSON (as `invoice show --json`).")
@pass_context
def credit_invoice(context: Context, client_ref: str, amount: str, reference: str, as_json: bool) -> None:
    """Invoice CLIENT for AMOUNT of credit (net of tax). With taxes.tax_on_add_credit_invoices the invoice
    adds tax on top (50.00 at 19 % is 59.50); paid, it adds AMOUNT to the credit."""
    from bridge.cli.invoices import print_stored

    value = amount_argument(amount, "AMOUNT")
    text = reference.strip()
    if not text or len(text) > 64 or not text.isprintable():
        raise InputError("--reference must be 1 to 64 printable characters, e.g. --reference order-7")
    issued = context.app.invoicing.add_credit_invoice(client_ref, value, text)
    print_stored(context, issued.reference, as_json)


@credit.command("show")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def credit_show(context: Context, client_ref: str, as_json: bool) -> None:
    """CLIENT's credit, up-to-date credit, burn rate, hours left, agreement and suspension, and the ledger."""
    app = context.app
    account = service(context).account(client_ref)
    ledger = app.views.ledger(account.client.id)
    if as_json:
        document = account_json(account)
        document["ledger"] = [
            {
                "kind": e.kind,
                "amount": plain(e.amount),
                "reference": e.reference,
                "at": e.occurred_at.isoformat(),
            }
            for e in ledger
        ]
        document["suspensions"] = [
            {
                "from": span.start.isoformat(),
                "to": span.end.isoformat() if span.end else None,
                "reason": span.reason,
                "by": span.by,
                "shelved": span.shelved,
            }
            for span in service(context).suspensions(client_ref)
        ]
        print_json(document)
        return
    for line in account_lines(account):
        click.echo(line)
    for entry in ledger:
        when = f"{entry.occurred_at:%Y-%m-%d %H:%M}"
        click.echo(f"  {when}  {entry.kind:<8} {entry.amount:>14.2f}  {entry.description}")


def account_json(account: Account) -> dict[str, object]:
    limit_hours = account.hours_until(account.credit_limit)
    zero_hours = account.hours_until(Decimal(0))
    return {
        "client": account.client.id,
        "currency": account.client.currency,
        "configuration": account.client.configuration,
        "credit": plain(account.credit),
        "unsettled_usage": str(account.unsettled),
        "up_to_date_credit": str(account.up_to_date),
        "burn_rate_per_hour": plain(account.burn_rate),
        "hours_until_zero": None if zero_hours is None else str(zero_hours),
        "credit_limit": str(account.credit_limit),
        "hours_until_credit_limit": None if limit_hours is None else str(limit_hours),
        "agreement": account.has_agreement,
        "suspended_at": account.state.suspended_at.isoformat() if account.state.suspended_at else None,
        "terminated_at": account.state.terminated_at.isoformat() if account.state.terminated_at else None,
        "auto_invoicing": {
            "choice": account.auto_invoicing.choice,
            "chosen_by_client": account.own_auto_invoicing is not None,
            "description": account.auto_invoicing.describe(account.client.currency),
        },
        "running": [f"{r.source}:{r.resource_id}" for r in account.running],
        "warnings": list(account.problems),
    }


def account_lines(account: Account) -> list[str]:
    cur = account.client.currency
    zero = account.hours_until(Decimal(0))
    limit = account.hours_until(account.credit_limit)
    state = (
        "suspended since " + account.state.suspended_at.isoformat()
        if account.state.suspended_at
        else "active"
    )
    return [
        f"client {account.client.id}: {account.client.name} ({account.client.configuration})",
        f"  credit             {account.credit:.2f} {cur}",
        f"  unsettled usage    {account.unsettled:.2f} {cur}",
        f"  up-to-date credit  {account.up_to_date:.2f} {cur}",
        f"  burn rate          {account.burn_rate:.4f} {cur}/h ({len(account.running)} running)",
        f"  hours left         {'-' if zero is None else f'{zero:.1f}'} to zero, "
        f"{'-' if limit is None else f'{limit:.1f}'} to the credit limit ({account.credit_limit:.2f})",
        f"  agreement          {'yes' if account.has_agreement else 'no'}",
        f"  state              {state}",
        f"  auto-invoicing     {_auto_invoicing_text(account)}",
        *(f"  warning            {problem}" for problem in account.problems),
    ]


@client.command("set")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--configuration", help="Named configuration from [configurations.<name>].")
@click.option(
    "--auto-invoicing",
    "auto_invoicing",
    metavar="off|estimated|fixed:AMOUNT",
    help="CLIENT's own credit auto-invoicing (seed 000), over its configuration's: off, the estimated "
    "monthly consumption, or a fixed amount in its currency (fixed:200). Kept in the ledger of changes.",
)
@click.option("--country", help="The client's country, ISO 3166-1 alpha-2 (DE, FR, GR, US).")
@click.option("--vat-id", help='The client\'s EU VAT ID (checked offline, then with VIES); "" removes it.')
@click.option(
    "--tax-exempt/--no-tax-exempt",
    "tax_exempt",
    default=None,
    help="Staff's decision on the tax exemption (needs --reason); it stands until staff change it.",
)
@click.option("--reason", help="Why the client is (not) tax exempt; kept with who and when.")
@click.option("--by", "decided_by", help="Who decides the exemption (default: your login name).")
@pass_context
def client_set(
    context: Context,
    client_ref: str,
    configuration: str | None,
    auto_invoicing: str | None,
    country: str | None,
    vat_id: str | None,
    tax_exempt: bool | None,
    reason: str | None,
    decided_by: str | None,
) -> None:
    """Assign CLIENT to a configuration, set its own auto-invoicing choice, or its country, VAT ID or tax
    exemption (seed 001)."""
    tax_options = (country, vat_id, tax_exempt, reason)
    taxes_given = any(option is not None for option in tax_options)
    if configuration is None and auto_invoicing is None and not taxes_given:
        raise InputError(
            "give --configuration NAME, --auto-invoicing off|estimated|fixed:AMOUNT, --country, --vat-id "
            "or --tax-exempt/--no-tax-exempt"
        )
    if configuration is not None and configuration not in context.app.configurations.names():
        known = ", ".join(context.app.configurations.names())
        raise InputError(f"--configuration {configuration!r} is not defined; use one of: {known}")
    if taxes_given:  # checked before anything else is written: a bad VAT ID changes nothing
        _set_tax_identity(context, client_ref, tax_options, decided_by or _operator())
    if auto_invoicing is not None:  # checked first: a bad value changes nothing
        change = service(context).set_auto_invoicing(
            client_ref, auto_invoicing, changed_by=f"operator {_operator()}"
        )
    if configuration is not None:
        updated = context.app.clients.set_configuration(client_ref, configuration)
        click.echo(f"client {updated.id} now uses configuration {updated.configuration}")
    if auto_invoicing is not None:
        account = service(context).account(client_ref)
        verb = "unchanged" if change is None else "now"
        click.echo(f"client {account.client.id} auto-invoicing {verb}: {_auto_invoicing_text(account)}")
        if not service(context).auto_invoicing_feature:
            click.echo(
                "note: billing.credit_auto_invoicing is off, so no client is auto-invoiced until it is on"
            )


def _set_tax_identity(
    context: Context,
    client_ref: str,
    options: tuple[str | None, str | None, bool | None, str | None],
    by: str,
) -> None:
    from bridge.services.taxes import TaxIdentityChange

    country, vat_id, exempt, reason = options
    updated = context.app.taxes.change(client_ref, TaxIdentityChange(country, vat_id, exempt, reason, by))
    click.echo(f"client {updated.id}: {tax_summary(updated)}")


def _auto_invoicing_text(account: Account) -> str:
    described = account.auto_invoicing.describe(account.client.currency)
    whose = "the client's choice" if account.own_auto_invoicing is not None else "the configuration's default"
    return f"{described} ({whose})"


def _operator() -> str:
    """Who runs the command, for the ledger of changes (the login name; "unknown" without one)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@client.command("can-create")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_can_create(context: Context, client_ref: str, as_json: bool) -> None:
    """Whether CLIENT may create or upgrade services now (required credit for new services); exit 1 if not."""
    check = service(context).creation_check(client_ref)
    verdict = check.verdict
    if as_json:
        print_json(check.document())
    else:
        click.echo(f"{'yes' if verdict.allowed else 'no'}: {verdict.reason}")
    if not verdict.allowed:
        raise click.exceptions.Exit(1)


@client.command("suspend")
@click.argument("client_ref", metavar="CLIENT")
@click.option(
    "--shelve/--no-shelve",
    default=None,
    help="Shelve the OpenStack servers (default: the configuration's shelve_instances_on_suspend).",
)
@click.option("--reason", help="Why, kept in the suspension history (default: suspended by staff).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_suspend(
    context: Context, client_ref: str, shelve: bool | None, reason: str | None, as_json: bool
) -> None:
    """Suspend CLIENT now: its servers suspended (or shelved) and its OpenStack projects disabled, so it can
    neither resume nor create servers. Only `client resume` ends a suspension made here."""
    done = service(context).suspend(client_ref, shelve=shelve, reason=reason)
    _staff_action(context, "suspended", done, as_json)


@client.command("resume")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_resume(context: Context, client_ref: str, as_json: bool) -> None:
    """Resume a suspended CLIENT now: its OpenStack projects enabled, its servers resumed (or unshelved)."""
    done = service(context).resume(client_ref)
    _staff_action(context, "resumed", done, as_json)


def _staff_action(context: Context, verb: str, done: StaffAction, as_json: bool) -> None:
    """Carry out the outbox rows the action wrote (the daemon's cloud_actions job would too) and say so."""
    actions = context.app.cloud_actions().run()
    cloud = actions.done + actions.waiting + actions.failed
    if as_json:
        print_json(
            {
                "client": done.client.id,
                "action": verb,
                "at": done.at.isoformat(),
                "reason": done.reason,
                "acted_on": list(done.acted_on),
                "cloud": cloud,
                "warnings": list(done.warnings),
            }
        )
        return
    click.echo(f"client {done.client.id} {verb} at {done.at.isoformat()}: {done.reason}")
    for line in cloud:
        click.echo(f"cloud: {line}")
    for warning in done.warnings:
        click.echo(f"warning: {warning}")


@cli.command("process-clients")
@click.option("--at", "at_text", metavar="DATETIME", help="Decide for this moment (default: now).")
@click.option("--client", "client_ref", metavar="CLIENT", help="Only this client.")
@click.option("--dry-run", is_flag=True, help="Show the decisions and why; write and do nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def process_clients(
    context: Context, at_text: str | None, client_ref: str | None, dry_run: bool, as_json: bool
) -> None:
    """Run the credit engine: notifications, suspension, termination, auto pay and auto-invoices.

    Then carry out the cloud actions and mail the client notifications it decided."""
    app = context.app
    zone = app.settings.billing.zone()
    at = parse_instant(at_text, "--at", zone) if at_text is not None else app.clock.now()
    with app.runner.holding("process_clients") as held:
        if not held:
            raise InputError(
                "process_clients is running in another daemon right now; try again when it finishes"
            )
        with progress_bar("processing clients", as_json=as_json) as progress:
            reports = service(context).process(at, dry_run=dry_run, client_ref=client_ref, progress=progress)
        actions = None if dry_run else app.cloud_actions().run()
    mails = None if dry_run else app.mail_delivery().run()
    if as_json:
        print_json(
            {"at": at.isoformat(), "dry_run": dry_run, "clients": [report.document() for report in reports]}
        )
        return
    for report in reports:
        for decision in report.decisions:
            click.echo(f"client {report.client.id}: {decision['action']}: {decision.get('reason', '')}")
    if actions is not None:
        for line in actions.done + actions.waiting + actions.failed:
            click.echo(f"cloud: {line}")
    if mails is not None:
        for line in mails.sent:
            click.echo(f"mail: sent {line}")
        for line in mails.waiting + mails.failed:
            click.echo(f"mail: {line}")
    if not any(report.decisions for report in reports):
        click.echo(f"nothing to do at {at.isoformat()}")
