"""Pricing plans, discounts, billing periods and subscriptions (issue 8):

plan list|assign, discount add|list, period create|list|modify|move|delete|recharge, subscription add|charge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import click

from bridge.cli.base import (
    COUNT,
    ID,
    Context,
    amount_argument,
    cli,
    parse_day,
    parse_instant,
    pass_context,
    plain,
    print_json,
    text_argument,
)
from bridge.domain.bounds import DESCRIPTION_MAX, IDENTIFIER_MAX, check_instant, shown
from bridge.domain.money import round_money
from bridge.domain.periods import PeriodSpan
from bridge.domain.terms import DISCOUNT_SOURCES, ClientTerms
from bridge.errors import BridgeError, InputError, checked
from bridge.services.periods import DateChange, NewPeriod, PeriodsService, PeriodView, Recharged
from bridge.services.plans import InvoiceChange, PlansService, Recalculation
from bridge.services.views import StoredSubscription

START_HELP = (
    "now, current-period, previous-period (only in the grace period) or seconds since 1970 "
    "(startTimeInSeconds)"
)


def plans_service(context: Context) -> PlansService:
    return context.app.plans


def periods_service(context: Context) -> PeriodsService:
    return context.app.periods


def _excluding_month_end(context: Context, dry_run: bool, work: Any) -> Any:
    """Run ``work`` under the recalculation lease: one recalculation at a time, and never while any daemon
    runs month end (``invoicing``), which it excludes and is excluded by (bridge/sync/jobs.py)."""
    if dry_run:
        return work()
    runner = context.app.runner
    with runner.holding("recalculation") as held:
        if not held:
            raise BridgeError(runner.busy("recalculation"))
        return work()


# -- plans ------------------------------------------------------------------------------------------------


@cli.group()
def plan() -> None:
    """Pricing plans ([pricing] is plan "default"; [plans.<name>] adds more) and clients' assignments."""


@plan.command("list")
@click.argument("client_ref", metavar="[CLIENT]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (prices as strings).")
@pass_context
def plan_list(context: Context, client_ref: str | None, as_json: bool) -> None:
    """List the plans, or with CLIENT the client's plan assignments and the plan in force now."""
    service = plans_service(context)
    if client_ref is None:
        found = service.plans()
        if as_json:
            print_json(
                [
                    {
                        "name": item.name,
                        "description": item.description,
                        "flavors": {key: str(value) for key, value in item.flavors.items()},
                        "token_price": None if item.token_price is None else str(item.token_price),
                        "fees": {key: str(value) for key, value in item.fees.items()},
                    }
                    for item in found
                ]
            )
            return
        for item in found:
            prices = ", ".join(f"{flavor} {price}/h" for flavor, price in sorted(item.flavors.items()))
            token = f", token {item.token_price}" if item.token_price is not None else ""
            fees = "".join(f", fee {name} {value}" for name, value in sorted(item.fees.items()))
            click.echo(f"{item.name:<16} {item.description}  [{prices or 'no flavor prices'}{token}{fees}]")
        return
    client, terms = service.terms(client_ref)
    now = context.app.clock.now()
    if as_json:
        print_json(
            {
                "client": client.id,
                "plan_now": terms.plan_at(now),
                "assignments": [
                    {"plan": given.plan, "start": given.starts_at.isoformat()} for given in terms.assignments
                ],
            }
        )
        return
    click.echo(f"client {client.id} is on plan {terms.plan_at(now)}")
    for assignment in terms.assignments:
        click.echo(f"  {assignment.plan:<16} from {assignment.starts_at.isoformat()}")
    if not terms.assignments:
        click.echo("  (never assigned: the default plan)")


@plan.command("assign")
@click.argument("client_ref", metavar="CLIENT")
@click.argument("plan_name", metavar="PLAN")
@click.option("--start", "start", required=True, metavar="WHEN", help=START_HELP)
@click.option("--dry-run", is_flag=True, help="Show the invoices before and after; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (money as strings).")
@pass_context
def plan_assign(
    context: Context, client_ref: str, plan_name: str, start: str, dry_run: bool, as_json: bool
) -> None:
    """Put CLIENT on PLAN from --start; the invoices it reaches are recalculated (see docs)."""
    service = plans_service(context)
    result: Recalculation = _excluding_month_end(
        context, dry_run, lambda: service.assign(client_ref, plan_name, start, dry_run=dry_run)
    )
    _print_recalculation(result, as_json)


# -- discounts --------------------------------------------------------------------------------------------


@cli.group()
def discount() -> None:
    """Clients' discounts: a percentage or a fixed amount off, from a start, optionally until an end."""


@discount.command("add")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--percent", metavar="P", help="A percentage off, above 0 and at most 100 (e.g. 10).")
@click.option("--amount", metavar="AMOUNT", help="A fixed amount off each invoice, in the client's currency.")
@click.option("--source", type=click.Choice(DISCOUNT_SOURCES), help="Only lines of this source.")
@click.option(
    "--resource-kind", metavar="KIND", help="Only this flavor, SolusVM plan id or subscription name."
)
@click.option("--start", "start", required=True, metavar="WHEN", help=START_HELP)
@click.option("--end", "end", metavar="WHEN", help="Until this time (ISO date-time or seconds since 1970).")
@click.option("--dry-run", is_flag=True, help="Show the invoices before and after; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (money as strings).")
@pass_context
def discount_add(
    context: Context,
    client_ref: str,
    percent: str | None,
    amount: str | None,
    source: str | None,
    resource_kind: str | None,
    start: str,
    end: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Give CLIENT a discount from --start; the invoices it reaches are recalculated."""
    ends = _instant(end, "--end", context) if end is not None else None
    if percent is not None:
        amount_argument(percent, "--percent")
    if amount is not None:
        amount_argument(amount, "--amount")
    if resource_kind is not None and resource_kind.strip():
        resource_kind = text_argument(resource_kind, "--resource-kind", IDENTIFIER_MAX)
    service = plans_service(context)
    result: Recalculation = _excluding_month_end(
        context,
        dry_run,
        lambda: service.add_discount(
            client_ref,
            percent=percent,
            amount=amount,
            start=start,
            end=ends,
            source=source,
            resource_kind=resource_kind,
            dry_run=dry_run,
        ),
    )
    _print_recalculation(result, as_json)


@discount.command("list")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def discount_list(context: Context, client_ref: str, as_json: bool) -> None:
    """List CLIENT's discounts, oldest start first, and whether each is in force now."""
    client, terms = plans_service(context).terms(client_ref)
    now = context.app.clock.now()
    documents = _discounts(terms, now)
    if as_json:
        print_json(documents)
        return
    if not documents:
        click.echo(f"client {client.id} has no discounts")
    for item in documents:
        until = f" until {item['end']}" if item["end"] else ""
        state = "in force" if item["in_force"] else "not in force"
        click.echo(f"{item['label']:<32} from {item['start']}{until} ({state})")


def _discounts(terms: ClientTerms, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "kind": item.kind,
            "value": plain(item.value),
            "source": item.source,
            "resource_kind": item.resource_kind,
            "start": item.starts_at.isoformat(),
            "end": item.ends_at.isoformat() if item.ends_at else None,
            "label": item.label,
            "in_force": item.in_force(now),
        }
        for item in terms.discounts
    ]


# -- billing periods --------------------------------------------------------------------------------------


@cli.group()
def period() -> None:
    """Billing periods: the schedules subscriptions recharge on (monthly or yearly)."""


@period.command("create")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--frequency", required=True, type=click.Choice(["monthly", "yearly"]))
@click.option("--invoice-day", required=True, type=int, metavar="D", help="Day of the month, 1 to 31.")
@click.option("--invoice-month", type=int, metavar="M", help="Month 1 to 12 (yearly periods only).")
@click.option("--periods", type=COUNT, metavar="N", help="Number of periods (term); open-ended if left out.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def period_create(
    context: Context,
    client_ref: str,
    frequency: str,
    invoice_day: int,
    invoice_month: int | None,
    periods: int | None,
    as_json: bool,
) -> None:
    """Create an empty billing period for CLIENT and show when it next recharges."""
    view = periods_service(context).create(
        client_ref, frequency=frequency, invoice_day=invoice_day, invoice_month=invoice_month, periods=periods
    )
    if as_json:
        print_json(_period_json(view))
        return
    click.echo(f"created {_period_text(view)}")
    click.echo("  nothing happens with it until a subscription is in it")


@period.command("list")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def period_list(context: Context, client_ref: str, as_json: bool) -> None:
    """List CLIENT's billing periods and the subscriptions in each."""
    client, views = periods_service(context).of_client(client_ref)
    if as_json:
        print_json([_period_json(view) for view in views])
        return
    if not views:
        click.echo(
            f"client {client.id} has no billing periods; create one with `billing-bridge period create`"
        )
    for view in views:
        click.echo(_period_text(view))
        for item in view.subscriptions:
            click.echo(f"  subscription {item.id}: {_subscription_text(item)}")


@period.command("modify")
@click.argument("period_id", metavar="PERIOD", type=ID)
@click.option("--invoice-day", required=True, type=int, metavar="D", help="The new day of the month.")
@click.option("--invoice-month", type=int, metavar="M", help="The new month (yearly periods only).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def period_modify(
    context: Context, period_id: int, invoice_day: int, invoice_month: int | None, as_json: bool
) -> None:
    """Change PERIOD's billing date: the current period lengthens or shortens, with no proration."""
    change = periods_service(context).modify(period_id, invoice_day=invoice_day, invoice_month=invoice_month)
    if as_json:
        print_json(_date_change_json(change))
        return
    before, after = change.before, change.after
    longer = "longer" if change.days_added >= 0 else "shorter"
    click.echo(
        f"period {period_id}: current period {after.started_on} to {after.next_recharge_on} "
        f"({after.days} days, {abs(change.days_added)} days {longer} than to {before.next_recharge_on}); "
        f"next recharge {after.next_recharge_on}; no proration for the change"
    )


@period.command("move")
@click.argument("subscription_id", metavar="SUBSCRIPTION", type=ID)
@click.option("--to", "to", type=ID, metavar="PERIOD", help="An existing period of the same frequency.")
@click.option("--new", "new", is_flag=True, help="Into a new period (give --invoice-day ...).")
@click.option("--frequency", type=click.Choice(["monthly", "yearly"]), help="With --new; must be the same.")
@click.option("--invoice-day", type=int, metavar="D", help="With --new: day of the month.")
@click.option("--invoice-month", type=int, metavar="M", help="With --new: month (yearly).")
@click.option("--periods", type=COUNT, metavar="N", help="With --new: number of periods.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def period_move(
    context: Context,
    subscription_id: int,
    to: int | None,
    new: bool,
    frequency: str | None,
    invoice_day: int | None,
    invoice_month: int | None,
    periods: int | None,
    as_json: bool,
) -> None:
    """Move SUBSCRIPTION to another billing period (its frequency never changes)."""
    spec = None
    if new:
        if invoice_day is None:
            raise InputError("--new needs --invoice-day D (and --invoice-month M for a yearly period)")
        spec = NewPeriod(invoice_day, invoice_month, periods, frequency)
    elif any(value is not None for value in (frequency, invoice_day, invoice_month, periods)):
        raise InputError("--frequency, --invoice-day, --invoice-month and --periods go with --new only")
    view = periods_service(context).move(subscription_id, to=to, new=spec)
    if as_json:
        print_json(_period_json(view))
        return
    click.echo(f"subscription {subscription_id} moved to {_period_text(view)}")


@period.command("delete")
@click.argument("period_id", metavar="PERIOD", type=ID)
@pass_context
def period_delete(context: Context, period_id: int) -> None:
    """Delete an empty billing period, for good (it cannot be restored)."""
    periods_service(context).delete(period_id)
    click.echo(f"period {period_id} deleted")


@period.command("recharge")
@click.option(
    "--date", "on", metavar="YYYY-MM-DD", help="Recharge what is due by this date (default: today)."
)
@click.option("--dry-run", is_flag=True, help="Show what would be billed; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (money as strings).")
@pass_context
def period_recharge(context: Context, on: str | None, dry_run: bool, as_json: bool) -> None:
    """Bill every billing period whose recharge date has come, one invoice per period and date."""
    day = parse_day(on, "--date") if on is not None else None
    service = periods_service(context)
    done: list[Recharged] = _excluding_month_end(
        context, dry_run, lambda: service.recharge(day, dry_run=dry_run)
    )
    if as_json:
        print_json([_recharged_json(item) for item in done])
        return
    verb = "would bill" if dry_run else "billed"
    for item in done:
        what = item.reference or "nothing to bill"
        click.echo(
            f"period {item.period_id} (client {item.client_id}) {item.span.started_on} to "
            f"{item.span.next_recharge_on}: {verb} {item.total} ({what})"
        )
    if not done:
        click.echo("no billing period is due")


# -- subscriptions ----------------------------------------------------------------------------------------


@cli.group()
def subscription() -> None:
    """Subscriptions: recurring fees in a billing period, and one-off charges on them."""


@subscription.command("add")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--name", required=True, help="The subscription's name (a plan's fees.<name> prices it).")
@click.option("--amount", required=True, metavar="AMOUNT", help="Fee per period when the plan sets none.")
@click.option("--period", "period_id", required=True, type=ID, metavar="PERIOD", help="Its billing period.")
@click.option("--prorate", is_flag=True, help="Prorate the first, partial period.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def subscription_add(
    context: Context, client_ref: str, name: str, amount: str, period_id: int, prorate: bool, as_json: bool
) -> None:
    """Subscribe CLIENT to a recurring fee in one of its billing periods."""
    amount_argument(amount, "--amount")
    name = text_argument(name, "--name", IDENTIFIER_MAX)
    added = periods_service(context).subscribe(
        client_ref, name=name, amount=amount, period_id=period_id, prorate=prorate
    )
    if as_json:
        print_json(_subscription_json(added))
        return
    click.echo(f"subscription {added.id}: {_subscription_text(added)}")


@subscription.command("charge")
@click.argument("subscription_id", metavar="SUBSCRIPTION", type=ID)
@click.option("--amount", required=True, metavar="AMOUNT", help="The charge, for a whole period if prorated.")
@click.option("--description", required=True, help="What the charge is for.")
@click.option("--prorate", is_flag=True, help="Prorate from today to the billing date in force now.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (money as strings).")
@pass_context
def subscription_charge(
    context: Context, subscription_id: int, amount: str, description: str, prorate: bool, as_json: bool
) -> None:
    """Add a one-off charge to SUBSCRIPTION, billed at the end of its billing period."""
    amount_argument(amount, "--amount")
    description = text_argument(description, "--description", DESCRIPTION_MAX)
    view = periods_service(context).charge(
        subscription_id, amount=amount, description=description, prorate=prorate
    )
    bills = str(round_money(view.bills, view.currency))
    if as_json:
        print_json(
            {
                "id": view.charge.id,
                "subscription": subscription_id,
                "amount": plain(view.charge.amount),
                "prorate": view.charge.prorate,
                "bill_until": view.charge.bill_until.isoformat(),
                "bills": bills,
                "currency": view.currency,
            }
        )
        return
    until = f", prorated to {view.charge.bill_until}" if view.charge.prorate else ""
    click.echo(
        f"charge {view.charge.id} on subscription {subscription_id}: bills {bills} {view.currency} at the "
        f"end of the period{until}"
    )


# -- output -----------------------------------------------------------------------------------------------


def _print_recalculation(result: Recalculation, as_json: bool) -> None:
    if as_json:
        print_json(_recalculation_json(result))
        return
    start = result.start
    if result.recorded:
        state = "would be recorded (dry run)" if result.dry_run else "recorded"
    else:
        state = "already in force, nothing recorded"
    click.echo(
        f"{result.change} for client {result.client.id} from {start.at.isoformat()} ({start.given}): {state}"
    )
    for change in result.invoices:
        _print_change(change)


def _print_change(change: InvoiceChange) -> None:
    currency = change.currency
    name = f" {change.reference}" if change.reference else ""
    click.echo(
        f"  {change.period} ({change.state}{name}): old {_money(change.old_total, currency)}  "
        f"new {_money(change.new_total, currency)}  "
        f"difference {_money(change.difference, currency)} {currency}  -> {change.action}"
        + (f" by {change.replacement}" if change.replacement else "")
        + (f" (number {change.replacement_number})" if change.replacement_number else "")
    )
    rows = _side_by_side(change)
    if rows:
        click.echo(f"    {'line':<84} {'old':>10} {'new':>10}")
    for description, old, new in rows:
        click.echo(f"    {description[:84]:<84} {old:>10} {new:>10}")
    for problem in change.problems:
        click.echo(f"    cannot be priced: {problem}", err=True)


def _side_by_side(change: InvoiceChange) -> list[tuple[str, str, str]]:
    old = {line.reference: line for line in change.old_lines}
    new = {line.reference: line for line in change.new_lines}
    order = [line.reference for line in change.old_lines]
    order += [reference for reference in new if reference not in old]
    rows = []
    for reference in order:
        before, after = old.get(reference), new.get(reference)
        description = (after or before).description if (after or before) else reference  # type: ignore[union-attr]
        rows.append(
            (
                description,
                _money(before.amount, change.currency) if before else "-",
                _money(after.amount, change.currency) if after else "-",
            )
        )
    return rows


def _recalculation_json(result: Recalculation) -> dict[str, Any]:
    return {
        "client": {"id": result.client.id, "email": result.client.email},
        "change": result.change,
        "start": result.start.at.isoformat(),
        "start_given": result.start.given,
        "reaches_previous_period": result.start.reaches_previous,
        "recorded": result.recorded,
        "dry_run": result.dry_run,
        "invoices": [
            {
                "period": change.period,
                "state": change.state,
                "reference": change.reference,
                "replacement": change.replacement,
                "replacement_number": change.replacement_number,
                "action": change.action,
                "currency": change.currency,
                "old_total": _money(change.old_total, change.currency),
                "new_total": _money(change.new_total, change.currency),
                "difference": _money(change.difference, change.currency),
                "lines": [
                    {"description": description, "old_amount": old, "new_amount": new}
                    for description, old, new in _side_by_side(change)
                ],
                "problems": list(change.problems),
            }
            for change in result.invoices
        ],
    }


def _period_text(view: PeriodView) -> str:
    period = view.period
    schedule = period.span.period
    when = f"day {schedule.invoice_day}"
    if schedule.invoice_month is not None:
        when = f"{date(2024, schedule.invoice_month, 1):%B} {schedule.invoice_day}"
    term = f", {period.charged} of {period.periods} periods" if period.periods else ", open-ended"
    state = (
        f", ended {period.ended_on}" if period.ended_on else f", next recharge {period.span.next_recharge_on}"
    )
    return (
        f"period {period.id} (client {period.client_id}): {schedule.frequency} on {when}{term}; "
        f"current period {period.span.started_on} to {period.span.next_recharge_on}{state}; "
        f"{len(view.subscriptions)} subscription(s)"
    )


def _period_json(view: PeriodView) -> dict[str, Any]:
    period = view.period
    return {
        "id": period.id,
        "client": period.client_id,
        "frequency": period.frequency,
        "invoice_day": period.span.period.invoice_day,
        "invoice_month": period.span.period.invoice_month,
        "periods": period.periods,
        "charged": period.charged,
        "started_on": period.span.started_on.isoformat(),
        "next_recharge_on": period.span.next_recharge_on.isoformat(),
        "current_period_days": period.span.days,
        "ended_on": period.ended_on.isoformat() if period.ended_on else None,
        "subscriptions": [_subscription_json(item) for item in view.subscriptions],
    }


def _subscription_text(item: StoredSubscription) -> str:
    prorate = ", prorated" if item.prorate else ""
    return f"{item.name} {plain(item.amount)} {item.frequency}{prorate}, in period {item.period_id}"


def _subscription_json(item: StoredSubscription) -> dict[str, Any]:
    return {
        "id": item.id,
        "client": item.client_id,
        "period": item.period_id,
        "name": item.name,
        "frequency": item.frequency,
        "amount": f"{plain(item.amount)}",
        "prorate": item.prorate,
        "started_at": item.started_at.isoformat(),
        "billed_until": item.billed_until.isoformat() if item.billed_until else None,
    }


def _span_json(span: PeriodSpan) -> dict[str, Any]:
    return {
        "started_on": span.started_on.isoformat(),
        "next_recharge_on": span.next_recharge_on.isoformat(),
        "days": span.days,
    }


def _date_change_json(change: DateChange) -> dict[str, Any]:
    return {
        "period": change.period_id,
        "before": _span_json(change.before),
        "after": _span_json(change.after),
        "days_added": change.days_added,
        "prorated": False,
    }


def _recharged_json(item: Recharged) -> dict[str, Any]:
    return {
        "period": item.period_id,
        "client": item.client_id,
        "span": _span_json(item.span),
        "reference": item.reference,
        "number": item.number,
        "total": str(item.total),
        "lines": [{"description": text, "amount": str(amount)} for text, amount in item.lines],
    }


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


def _instant(text: str, option: str, context: Context) -> datetime:
    """Seconds since 1970, or an ISO date or date-time (a date or naive time in billing.timezone)."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        try:
            instant = datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise InputError(
                f"{option} {shown(text)} is out of range; give seconds since 1970-01-01 UTC"
            ) from None
        return checked(check_instant, instant, option)
    return parse_instant(value, option, context.app.settings.billing.zone())
