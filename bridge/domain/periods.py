"""Billing periods, subscriptions and recurring fees (seed 004): pure rules, and what a recharge bills.

A period recharges on its invoice day (and month, if yearly); its current span runs from ``started_on`` to
``next_recharge_on``. Changing the invoice day keeps the start and moves the next recharge to the first new
invoice day after today, with no proration for the change itself (the 1st -> the 6th lengthens October to
36 days; the 30th -> the 22nd on the 20th shortens the span by 8 days). A prorated charge is prorated over
the span in force when it was added and keeps that (its billing date is fixed then); one added after a
change uses the new date.

A recharge (:func:`recharge`, on the period's next recharge date) bills the span that ends then, post-pay
like usage: one invoice with each due subscription's fee and the charges added to them, less the client's
discounts on ``fees``. A subscription's fee is its plan's ``fees.<name>`` if the client's plan in force at
the span's end sets one, else its own amount. An empty period only rolls its dates forward.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from bridge.domain.cycles import BillingPeriod, TimeZone, local_midnight
from bridge.domain.effects import InvoiceItem
from bridge.domain.invoicing import InvoiceLine, flat_line, line_items, zero_skipped
from bridge.domain.money import check_currency, round_money
from bridge.domain.references import recurring_invoice
from bridge.domain.terms import DEFAULT_PLAN, FEES, ClientTerms, Discount

FEES_SOURCE = FEES
"""The source of a recurring invoice's lines."""
_TICK = timedelta(microseconds=1)
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


def period_of(frequency: str, invoice_day: int, invoice_month: int | None) -> BillingPeriod:
    """The schedule, with errors that name the CLI option to fix."""
    if frequency not in ("monthly", "yearly"):
        raise ValueError(f"--frequency {frequency!r} is unknown; use monthly or yearly")
    if frequency == "monthly" and invoice_month is not None:
        raise ValueError("--invoice-month is only for yearly periods; leave it out for a monthly one")
    if frequency == "yearly" and invoice_month is None:
        raise ValueError("a yearly period needs --invoice-month 1 to 12 as well as --invoice-day")
    if not 1 <= invoice_day <= 31:
        raise ValueError(f"--invoice-day {invoice_day} is not a day of a month; use 1 to 31")
    if invoice_month is not None:
        if not 1 <= invoice_month <= 12:
            raise ValueError(f"--invoice-month {invoice_month} is not a month; use 1 to 12")
        longest = calendar.monthrange(2024, invoice_month)[1]  # a leap year: Feb 29 is a valid invoice day
        if invoice_day > longest:
            raise ValueError(
                f"--invoice-day {invoice_day} does not exist in {calendar.month_name[invoice_month]}; "
                f"use 1 to {longest}"
            )
    return BillingPeriod(frequency, invoice_day, invoice_month)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PeriodSpan:
    """A billing period's schedule and its current span ``[started_on, next_recharge_on)`` in local dates."""

    period: BillingPeriod
    started_on: date
    next_recharge_on: date

    def __post_init__(self) -> None:
        if self.next_recharge_on <= self.started_on:
            raise ValueError(
                f"next recharge {self.next_recharge_on} is not after the start {self.started_on}"
            )

    @classmethod
    def opened(cls, period: BillingPeriod, today: date) -> PeriodSpan:
        """A new period: the span of its schedule that contains ``today``."""
        following = period.next_recharge_date(today)
        return cls(period, _recharge_before(period, following), following)

    @property
    def days(self) -> int:
        return (self.next_recharge_on - self.started_on).days

    def with_schedule(self, period: BillingPeriod, today: date) -> PeriodSpan:
        """The invoice day (and month) changed on ``today`` (seed 004): the span keeps its start and ends on
        the first new invoice day after ``today``; nothing is prorated for the change itself."""
        if period.frequency != self.period.frequency:
            raise ValueError(
                f"a {self.period.frequency} period cannot become {period.frequency}; "
                "a subscription's frequency never changes"
            )
        return PeriodSpan(period, self.started_on, period.next_recharge_date(today))

    def recharged(self) -> PeriodSpan:
        """The next span, after the recharge on ``next_recharge_on``."""
        return PeriodSpan(
            self.period, self.next_recharge_on, self.period.next_recharge_date(self.next_recharge_on)
        )


def _recharge_before(period: BillingPeriod, following: date) -> date:
    """The recharge date one step before ``following`` (clamped like every recharge date)."""
    index = following.year * 12 + following.month - 1 - period.step_months
    return period.recharge_date(index)


def prorated(amount: Decimal, since: date, until: date, span_start: date) -> Decimal:
    """``amount`` for the days from ``since`` to ``until`` out of the span ``[span_start, until)``, unrounded.

    A charge added on the first day of the span (or before it) pays in full; one added on ``until`` or
    later pays nothing.
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    full = (until - span_start).days
    if full <= 0:
        raise ValueError(f"the span {span_start}..{until} is empty")
    used = min(max((until - since).days, 0), full)
    return amount * used / full


@dataclass(frozen=True)
class Charge:
    """A one-off charge on a subscription, billed at the end of its period.

    ``span_start`` and ``bill_until`` are the period's span when the charge was added; a prorated charge
    keeps them even if the billing date changes later (seed 004: prorated to the old billing date).
    """

    amount: Decimal
    added_on: date
    span_start: date
    bill_until: date
    prorate: bool

    @classmethod
    def added(cls, amount: Decimal, on: date, span: PeriodSpan, prorate: bool) -> Charge:
        return cls(amount, on, span.started_on, span.next_recharge_on, prorate)

    def value(self) -> Decimal:
        """What is billed, unrounded."""
        if not self.prorate:
            return self.amount
        return prorated(self.amount, self.added_on, self.bill_until, self.span_start)


def fee_value(
    amount: Decimal, *, started_on: date, billed_until: date | None, span: PeriodSpan, prorate: bool
) -> Decimal:
    """A subscription's fee at the recharge that ends ``span``, unrounded.

    A full fee per recharge whatever the span's length (no proration for billing-date changes); only a
    subscription's first span, if it started inside the span and prorates, pays for its days.
    """
    if prorate and billed_until is None and started_on > span.started_on:
        return prorated(amount, started_on, span.next_recharge_on, span.started_on)
    return amount


@dataclass(frozen=True)
class RecurringItem:
    """One line of a recurring invoice before discounts: a subscription's fee or a charge."""

    subscription: str
    description: str
    value: Decimal


def discounted_items(
    items: Sequence[RecurringItem], discounts: Sequence[Discount], currency: str
) -> list[tuple[RecurringItem, Decimal, str]]:
    """(item, rounded amount, discount note) for each item, discounts of source ``fees`` (or none) applied;
    the resource kind of a recurring item is its subscription's name."""
    check_currency(currency)
    values = []
    for item in items:
        factor = Decimal(1)
        for discount in discounts:
            if discount.kind == "percentage" and discount.applies_to(FEES, item.subscription):
                factor *= (_HUNDRED - discount.value) / _HUNDRED
        values.append(item.value * factor)
    shares = [_ZERO] * len(items)
    for discount in discounts:
        if discount.kind != "fixed":
            continue
        remaining = discount.value
        for index, item in enumerate(items):
            if remaining <= 0:
                break
            if not discount.applies_to(FEES, item.subscription):
                continue
            take = min(remaining, values[index] - shares[index])
            if take > 0:
                shares[index] += take
                remaining -= take
    result = []
    for index, item in enumerate(items):
        notes = [
            f"{d.value.normalize():f}% off"
            for d in discounts
            if d.kind == "percentage" and d.applies_to(FEES, item.subscription)
        ]
        if shares[index] > 0:
            notes.append(f"{round_money(shares[index], currency)} {currency} off")
        note = "".join(f", {text}" for text in notes)
        result.append((item, round_money(values[index] - shares[index], currency), note))
    return result


# -- a recharge -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A recurring fee in a period: ``amount`` each recharge from the local day ``started_on`` on;
    ``billed_until`` is the recharge date it was last billed up to (None: never billed)."""

    id: int
    name: str
    amount: Decimal
    prorate: bool
    started_on: date
    billed_until: date | None


@dataclass(frozen=True)
class PendingCharge:
    """A one-off charge on a subscription not billed yet (its span fixed when it was added, seed 004)."""

    id: int
    subscription_id: int
    description: str
    charge: Charge


@dataclass(frozen=True)
class RechargeInvoice:
    """The invoice a recharge issues: kind ``recurring``, for the span's local days."""

    reference: str
    period: tuple[datetime, datetime]
    lines: tuple[InvoiceLine, ...]
    total: Decimal
    notes: str

    @property
    def items(self) -> tuple[InvoiceItem, ...]:
        """The lines as a client sees them in WHMCS."""
        return line_items(self.lines)


@dataclass(frozen=True)
class Recharge:
    """What one recharge of a period does: the span it bills and the next, the subscriptions and charges it
    bills (``billed_until`` becomes the recharge date), the count of recharges, the invoice if any.

    ``charged`` is None for an empty period: only its dates move, it does not count as a recharge.
    """

    span: PeriodSpan
    next_span: PeriodSpan
    subscriptions: tuple[int, ...]
    charges: tuple[int, ...]
    charged: int | None
    ended_on: date | None
    lines: tuple[tuple[str, Decimal], ...]
    total: Decimal
    invoice: RechargeInvoice | None

    @property
    def recharged_on(self) -> date:
        return self.span.next_recharge_on


def recharge(
    *,
    client_id: int,
    period_id: int,
    span: PeriodSpan,
    charged: int,
    periods: int | None,
    subscriptions: Sequence[Subscription],
    charges: Sequence[PendingCharge],
    terms: ClientTerms,
    plan_fees: Mapping[str, Mapping[str, Decimal]],
    currency: str,
    invoice_zero_amounts: bool,
    zone: TimeZone,
) -> Recharge:
    """Bill the span of a period that ends on its next recharge date (see the module docstring).

    ``subscriptions`` are every subscription the period holds; ``charges`` the unbilled charges of them;
    ``plan_fees`` the ``fees`` of each configured plan. ``charged`` recharges were made before, of
    ``periods`` (None: open-ended); the last one ends the period.
    """
    day = span.next_recharge_on
    if not subscriptions:  # an empty period: nothing happens but its dates
        return Recharge(span, span.recharged(), (), (), None, None, (), Decimal(0), None)
    starts, ends = local_midnight(span.started_on, zone), local_midnight(day, zone)
    last = ends - _TICK
    plan = terms.plan_at(last)
    due = [
        item
        for item in subscriptions
        if item.started_on < day and (item.billed_until is None or item.billed_until < day)
    ]
    fees = plan_fees.get(plan, {}) if plan != DEFAULT_PLAN else {}
    bills = [_fee_bill(item, span, fees) for item in due]
    names = {item.id: item.name for item in due}
    billed = [
        charge for charge in charges if charge.subscription_id in names and charge.charge.added_on < day
    ]
    bills += [_charge_bill(charge, names[charge.subscription_id]) for charge in billed]
    priced = discounted_items([bill.item for bill in bills], terms.discounts_at(last), currency)
    total = sum((amount for _, amount, _ in priced), Decimal(0))
    lines = tuple((item.description + note, amount) for item, amount, note in priced)
    invoice = None
    if priced and not zero_skipped(total, invoice_zero_amounts):
        reference = recurring_invoice(client_id, period_id, day)
        invoice = RechargeInvoice(
            reference=reference,
            period=(starts, ends),
            lines=tuple(
                bill.line(position, amount, note, plan, (starts, ends))
                for position, (bill, (_, amount, note)) in enumerate(zip(bills, priced, strict=True), 1)
            ),
            total=total,
            notes=f"{reference}: recurring charges {span.started_on} to {day - timedelta(days=1)}",
        )
    count = charged + 1
    return Recharge(
        span=span,
        next_span=span.recharged(),
        subscriptions=tuple(item.id for item in due),
        charges=tuple(charge.id for charge in billed) if invoice is not None else (),
        charged=count,
        ended_on=day if periods is not None and count >= periods else None,
        lines=lines,
        total=total,
        invoice=invoice,
    )


@dataclass(frozen=True)
class _Bill:
    """A recurring invoice line before discounts, with what its stored line needs."""

    item: RecurringItem
    resource_id: str
    line_reference: str
    unit_price: Decimal

    def line(
        self, position: int, amount: Decimal, note: str, plan: str, period: tuple[datetime, datetime]
    ) -> InvoiceLine:
        return flat_line(
            position,
            line_reference=self.line_reference,
            source=FEES_SOURCE,
            resource_id=self.resource_id,
            resource_name=self.item.subscription,
            plan=plan,
            period=period,
            unit_price=self.unit_price,
            amount=amount,
            description=self.item.description + note,
        )


def _fee_bill(item: Subscription, span: PeriodSpan, fees: Mapping[str, Decimal]) -> _Bill:
    """A subscription's fee for ``span``: its plan's ``fees.<name>`` if set, else its own amount."""
    fee = fees.get(item.name, item.amount)
    value = fee_value(
        fee, started_on=item.started_on, billed_until=item.billed_until, span=span, prorate=item.prorate
    )
    prorated_note = f", prorated from {item.started_on}" if value != fee else ""
    last_day = span.next_recharge_on - timedelta(days=1)
    text = f"{item.name} {span.started_on} to {last_day}{prorated_note}"
    return _Bill(RecurringItem(item.name, text, value), f"subscription:{item.id}", f"fee:{item.id}", fee)


def _charge_bill(pending: PendingCharge, name: str) -> _Bill:
    charge = pending.charge
    prorated_note = f", prorated {charge.added_on} to {charge.bill_until}" if charge.prorate else ""
    item = RecurringItem(name, f"{pending.description}{prorated_note}", charge.value())
    return _Bill(item, f"charge:{pending.id}", f"charge:{pending.id}", charge.amount)
