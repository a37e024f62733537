"""Invoices: drafts (a pure function of a client, a cycle, its usage and prices) and the plan of a run.

The same inputs always give the same draft: lines in one fixed order (source, resource name, resource id,
period, plan), a reference derived from client and cycle (``BB-42-2022-10`` for a calendar month,
``BB-42-2024-01-31`` for a cycle starting on that local date), and a total that is the sum of the rounded
lines. So a re-run, a manual ``--date`` run or a catch-up after a missed 1st rebuilds the identical draft
under the identical reference, and the store or WHMCS can recognise it instead of billing twice.

A resource whose usage cannot be priced (a flavor without a price, say) does not block the others: the
draft keeps the lines that could be priced and the result lists the resource and the settings key that
fixes it. Such a client's invoice is *held* until that is fixed; other clients' invoices proceed.

Late usage (it arrived after its cycle was invoiced) is re-priced with the whole of its original cycle,
so the round-up to whole SolusVM hours and the monthly caps see the full cycle; only what goes beyond the
lines already invoiced is billed, on lines marked late and carrying their original period.

**The plan of a run** (:func:`plan_invoices`, after Kill Bill's invoice generator: the invoices that
exist are an input). For one client, the cycles a run looks at (the last ended one and the catch-up
cycles before it), the usage collected in them and the client's standing usage invoices decide
everything: a cycle with an invoice is *already invoiced* (its usage collected since is *late* and goes on
the next invoice), a missed cycle with usage is invoiced on its own, and each invoice is *held* (usage
that cannot be priced), *skipped* (a cycle before ``generate_invoices_after``, a zero total) or issued,
by the bridge or by WHMCS, dated the run's invoice date and due ``invoice_due_days`` later.

**Status.** An issued invoice is ``unpaid`` (``draft`` is never stored by a run); it becomes ``paid`` or
``cancelled``, and neither changes again (:data:`TRANSITIONS`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from bridge.domain.clients import Client
from bridge.domain.configuration import Configuration
from bridge.domain.cycles import BillingCycle, local_midnight
from bridge.domain.effects import InvoiceItem
from bridge.domain.money import check_currency, round_money
from bridge.domain.pricing import (
    DEFAULT_BILLABLE_SECONDS_PER_MONTH,
    PriceBook,
    PricedLine,
    PricedUsage,
    UnpricedResource,
    price_usage,
)
from bridge.domain.references import usage_invoice
from bridge.domain.tax import InvoiceTaxes
from bridge.domain.terms import CopiedLine, PriceSchedule, discounted_lines, price_with_terms
from bridge.domain.usage import SOURCES, Source, UsageRecord, as_source

Status = Literal["draft", "unpaid", "paid", "cancelled"]
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"unpaid", "cancelled"}),
    "unpaid": frozenset({"paid", "cancelled"}),
    "paid": frozenset(),
    "cancelled": frozenset(),
}
"""The statuses an invoice of each status may become: paid and cancelled invoices are final."""

BRIDGE = "bridge"
WHMCS = "whmcs"
"""An invoice's issuer: the bridge numbers it itself, or WHMCS does (through the outbox); :func:`issuer`."""

NEW_STATUS: Status = "unpaid"
"""The status every invoice is stored with (a draft is never stored)."""

_TICK = timedelta(microseconds=1)


def can_become(status: str, to: str) -> bool:
    """Whether an invoice that is ``status`` may become ``to``."""
    return to in TRANSITIONS.get(status, frozenset())


def zero_skipped(total: Decimal, invoice_zero_amounts: bool) -> bool:
    """Whether an invoice of ``total`` is not issued: a zero total, unless zero amounts are invoiced
    (``invoice_zero_amounts``; usage invoices and recharges alike)."""
    return total == 0 and not invoice_zero_amounts


def display_number(number: str | None, proforma_number: str | None, reference: str) -> str:
    """What the client sees as an invoice's number: fiscal, else proforma, else the reference."""
    return number or proforma_number or reference


def due_at(configuration: Configuration, issued_at: datetime) -> datetime:
    """When an invoice issued at ``issued_at`` is due: ``invoice_due_days`` later."""
    return issued_at + timedelta(days=configuration.invoice_due_days)


@dataclass(frozen=True)
class LateUsage:
    """Usage of an already invoiced ``cycle`` that arrived after its invoice was made.

    ``records`` holds every usage record of ``cycle``, the ones invoiced before as well as the late
    ones; ``invoiced`` holds the lines already invoiced for ``cycle`` (earlier late lines included).
    Only the quantity beyond what was invoiced is billed again.
    """

    cycle: BillingCycle
    records: tuple[UsageRecord, ...]
    invoiced: tuple[PricedLine, ...] = ()

    def __post_init__(self) -> None:
        for line in self.invoiced:
            if line.period != self.cycle:
                raise ValueError(
                    f"invoiced line {line.reference} is not of the late usage's cycle {self.cycle}"
                )


@dataclass(frozen=True)
class InvoiceDraft:
    """The invoice one client owes for one billing cycle, before it is issued.

    ``lines`` are kept in the one line order, so they come grouped by source; ``total`` is the sum of the
    rounded lines and is not rounded again.
    """

    client_id: str
    currency: str
    cycle: BillingCycle
    lines: tuple[PricedLine, ...] = ()

    def __post_init__(self) -> None:
        if not self.client_id or self.client_id != self.client_id.strip():
            raise ValueError(
                f"client id {self.client_id!r} must be non-empty text without surrounding spaces"
            )
        check_currency(self.currency)
        for line in self.lines:
            self._check_line(line)
        object.__setattr__(self, "lines", tuple(sorted(self.lines, key=lambda line: line.sort_key)))

    def _check_line(self, line: PricedLine) -> None:
        if line.currency != self.currency:
            raise ValueError(f"line {line.reference} is in {line.currency}, the invoice in {self.currency}")
        if line.late and line.period.end > self.cycle.start:
            raise ValueError(
                f"late line {line.reference} is not of a cycle before the invoice's {self.cycle}"
            )
        if not line.late and line.period != self.cycle:
            raise ValueError(f"line {line.reference} is of {line.period}, not of the invoice's {self.cycle}")

    @property
    def reference(self) -> str:
        return invoice_reference(self.client_id, self.cycle)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def late_lines(self) -> tuple[PricedLine, ...]:
        return tuple(line for line in self.lines if line.late)

    def by_source(self) -> Mapping[Source, tuple[PricedLine, ...]]:
        """The lines grouped by source (``openstack`` first), leaving out sources without lines."""
        groups = {source: tuple(line for line in self.lines if line.source == source) for source in SOURCES}
        return {source: lines for source, lines in groups.items() if lines}

    def subtotal(self, source: Source) -> Decimal:
        return sum((line.amount for line in self.lines if line.source == source), Decimal(0))


@dataclass(frozen=True)
class DraftResult:
    """A draft and the resources that could not be priced; with any error the invoice is held."""

    draft: InvoiceDraft
    errors: tuple[UnpricedResource, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", tuple(sorted(self.errors, key=lambda error: error.sort_key)))

    @property
    def held(self) -> bool:
        """Whether the invoice must wait until the listed errors are fixed."""
        return bool(self.errors)


def invoice_reference(client_id: str, cycle: BillingCycle) -> str:
    """The deterministic reference of a client's invoice for ``cycle``: ``BB-<client>-<cycle label>``."""
    return usage_invoice(client_id, cycle.label)


def draft_invoice(
    client_id: str,
    currency: str,
    cycle: BillingCycle,
    usage_records: Iterable[UsageRecord],
    price_book: PriceBook,
    *,
    late_usage: Iterable[LateUsage] = (),
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> DraftResult:
    """The invoice draft of ``client_id`` for ``cycle``, from that client's usage records in ``cycle``.

    ``late_usage`` adds the usage of earlier, already invoiced cycles that arrived since (see
    :class:`LateUsage`). ``billable_seconds_per_month`` is the client's configuration (None: the limit is
    off). Raises ValueError when the inputs contradict each other (a price book in another currency, late
    usage of a cycle that is not earlier, the same late cycle twice).
    """
    if price_book.currency != currency:
        raise ValueError(f"the price book is in {price_book.currency}, the invoice in {currency}")
    priced = [
        price_usage(usage_records, cycle, price_book, billable_seconds_per_month=billable_seconds_per_month)
    ]
    for late in _checked_late_usage(late_usage, cycle):
        priced.append(
            price_late_usage(late, price_book, billable_seconds_per_month=billable_seconds_per_month)
        )
    lines = tuple(line for part in priced for line in part.lines)
    errors = tuple(error for part in priced for error in part.errors)
    return DraftResult(InvoiceDraft(client_id, currency, cycle, lines), errors)


def draft_with_terms(
    client_id: str,
    currency: str,
    cycle: BillingCycle,
    usage_records: Iterable[UsageRecord],
    schedule: PriceSchedule,
    *,
    late_usage: Iterable[LateUsage] = (),
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> DraftResult:
    """:func:`~bridge.domain.invoicing.draft_invoice` under the client's terms instead of one price book.

    Late usage of an earlier cycle is priced with the plan and percentage discounts in force at the end
    of that cycle.
    """
    if schedule.currency != currency:
        raise ValueError(f"the price books are in {schedule.currency}, the invoice in {currency}")
    cap = billable_seconds_per_month
    priced = [price_with_terms(usage_records, cycle, schedule, billable_seconds_per_month=cap)]
    seen: list[BillingCycle] = []
    for late in late_usage:
        if late.cycle.end > cycle.start:
            raise ValueError(f"late usage of {late.cycle} is not of a cycle before the invoice's {cycle}")
        if late.cycle in seen:
            raise ValueError(f"late usage of {late.cycle} is given twice; merge it into one LateUsage")
        seen.append(late.cycle)
        last = late.cycle.end - _TICK
        repriced = price_late_usage(late, schedule.book_at(last), billable_seconds_per_month=cap)
        discounts = schedule.terms.discounts_at(last)
        lines = discounted_lines(repriced.lines, discounts, currency, fixed=False)
        priced.append(PricedUsage(tuple(lines), repriced.errors))
    return DraftResult(
        InvoiceDraft(client_id, currency, cycle, tuple(line for part in priced for line in part.lines)),
        tuple(error for part in priced for error in part.errors),
    )


def price_late_usage(
    late: LateUsage,
    price_book: PriceBook,
    *,
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> PricedUsage:
    """The lines that bill what ``late`` adds to its already invoiced cycle, marked late.

    Late hours that cost nothing more (the cycle's line already reached the cap, or a SolusVM half hour
    inside an hour already billed) are still on a late line, at 0.00: every collected hour is on a line,
    so reconciliation finds them below the cap or invoiced late instead of on no line at all.
    """
    repriced = price_usage(
        late.records, late.cycle, price_book, billable_seconds_per_month=billable_seconds_per_month
    )
    lines: list[PricedLine] = []
    errors = list(repriced.errors)
    for line in repriced.lines:
        before = [invoiced for invoiced in late.invoiced if invoiced.key == line.key]
        quantity = line.quantity - sum((invoiced.quantity for invoiced in before), Decimal(0))
        if quantity < 0:
            errors.append(_invoiced_too_much(line, quantity))
        elif quantity > 0 or line.hours > sum((invoiced.hours for invoiced in before), Decimal(0)):
            lines.append(_beyond_invoiced(line, before, quantity))
    return PricedUsage(tuple(lines), tuple(errors))


def _beyond_invoiced(line: PricedLine, before: Sequence[PricedLine], quantity: Decimal) -> PricedLine:
    """The line for ``quantity`` more of ``line``'s unit, rounded once like any line."""
    tokens = None if line.tokens is None else int(quantity)
    return replace(
        line,
        hours=line.hours - sum((invoiced.hours for invoiced in before), Decimal(0)),
        billed_hours=line.billed_hours - sum((invoiced.billed_hours for invoiced in before), Decimal(0)),
        tokens=tokens,
        amount=round_money(quantity * line.unit_price, line.currency),
        late=True,
    )


def _invoiced_too_much(line: PricedLine, quantity: Decimal) -> UnpricedResource:
    return UnpricedResource(
        line.source,
        line.resource_id,
        line.resource_name,
        line.period,
        f"{-quantity} {line.unit}s more of plan {line.plan} were invoiced than its usage now shows; "
        "check the usage records of that cycle before billing it again",
    )


def _checked_late_usage(late_usage: Iterable[LateUsage], cycle: BillingCycle) -> list[LateUsage]:
    checked: list[LateUsage] = []
    for late in late_usage:
        if late.cycle.end > cycle.start:
            raise ValueError(f"late usage of {late.cycle} is not of a cycle before the invoice's {cycle}")
        if any(other.cycle == late.cycle for other in checked):
            raise ValueError(f"late usage of {late.cycle} is given twice; merge it into one LateUsage")
        checked.append(late)
    return checked


# -- the lines an invoice is stored and shown with --------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    """One stored line of an issued invoice, whatever it bills (usage, a fee, a charge, credit): the one
    shape the store keeps and the invoice documents print. ``position`` is its place on the invoice."""

    position: int
    line_reference: str
    source: str
    resource_id: str
    resource_name: str
    plan: str
    period_start: datetime
    period_end: datetime
    hours: Decimal
    billed_hours: Decimal
    unit_price: Decimal
    tokens_per_hour: int | None
    tokens: int | None
    amount: Decimal
    capped: bool
    late: bool
    description: str


_STORED_HOURS = Decimal("0.00000001")


def usage_lines(draft: InvoiceDraft) -> tuple[InvoiceLine, ...]:
    """The stored lines of a usage draft, in its line order (usage invoices and their replacements): its
    :func:`draft_lines`, hours cut to the places the store keeps."""
    return tuple(replace(line, hours=line.hours.quantize(_STORED_HOURS)) for line in draft_lines(draft))


def draft_lines(draft: InvoiceDraft) -> tuple[InvoiceLine, ...]:
    """A usage draft's lines in the one line shape, in its line order, with hours as priced (what a run's
    invoice document shows)."""
    return tuple(
        InvoiceLine(
            position=position,
            line_reference=line.reference,
            source=line.source,
            resource_id=line.resource_id,
            resource_name=line.resource_name,
            plan=line.plan,
            period_start=line.period.start,
            period_end=line.period.end,
            hours=line.hours,
            billed_hours=line.billed_hours,
            unit_price=line.unit_price,
            tokens_per_hour=line.tokens_per_hour,
            tokens=line.tokens,
            amount=line.amount,
            capped=line.capped,
            late=line.late,
            description=line.description(),
        )
        for position, line in enumerate(draft.lines, 1)
    )


def invoiced_line(line: InvoiceLine, currency: str, zone: str) -> PricedLine:
    """A stored line as the pricing reads it again (late usage is compared with what was invoiced): the
    inverse of :func:`usage_lines`. ``zone`` is the key of the billing time zone."""
    return PricedLine(
        source=as_source(line.source),
        resource_id=line.resource_id,
        resource_name=line.resource_name,
        plan=line.plan,
        period=BillingCycle(line.period_start, line.period_end, zone),
        hours=line.hours,
        billed_hours=line.billed_hours,
        unit_price=line.unit_price,
        amount=line.amount,
        currency=currency,
        capped=line.capped,
        tokens_per_hour=line.tokens_per_hour,
        tokens=line.tokens,
        late=line.late,
    )


def carried_line(line: InvoiceLine, currency: str, zone: str) -> CopiedLine:
    """A stored line carried unchanged onto a replacement invoice: priced as :func:`invoiced_line` reads
    it, its reference and description as the client saw them."""
    priced = invoiced_line(line, currency, zone)
    values = {item.name: getattr(priced, item.name) for item in fields(PricedLine)}
    return CopiedLine(**values, stored_reference=line.line_reference, stored_description=line.description)


def flat_line(
    position: int,
    *,
    line_reference: str,
    source: str,
    resource_id: str,
    resource_name: str,
    plan: str,
    period: tuple[datetime, datetime],
    unit_price: Decimal,
    amount: Decimal,
    description: str,
) -> InvoiceLine:
    """A line that bills an amount, not usage: a recurring fee, a charge, credit (no hours, no tokens)."""
    return InvoiceLine(
        position=position,
        line_reference=line_reference,
        source=source,
        resource_id=resource_id,
        resource_name=resource_name,
        plan=plan,
        period_start=period[0],
        period_end=period[1],
        hours=Decimal(0),
        billed_hours=Decimal(0),
        unit_price=unit_price,
        tokens_per_hour=None,
        tokens=None,
        amount=amount,
        capped=False,
        late=False,
        description=description,
    )


def credit_line(reference: str, amount: Decimal, at: datetime) -> InvoiceLine:
    """The one line of a credit auto-invoice (seed 000)."""
    return flat_line(
        1,
        line_reference=f"credit:{reference}",
        source="credit",
        resource_id="credit",
        resource_name="Credit",
        plan="",
        period=(at, at),
        unit_price=amount,
        amount=amount,
        description=credit_description(reference),
    )


def credit_description(reference: str) -> str:
    return f"Credit for the next 30 days of usage ({reference})"


def line_items(lines: Iterable[InvoiceLine]) -> tuple[InvoiceItem, ...]:
    """Stored lines as a client sees them in WHMCS: one item a line, its description and amount."""
    return tuple(InvoiceItem(line.description, line.amount) for line in lines)


def client_items(draft: InvoiceDraft, detail: str) -> tuple[InvoiceItem, ...]:
    """The lines a client sees in WHMCS: one per resource (``detailed``), or one per source (``simple``)."""
    if detail == "detailed":
        return line_items(draft_lines(draft))
    items = []
    for source, lines in draft.by_source().items():
        subtotal = round_money(sum((line.amount for line in lines), Decimal(0)), draft.currency)
        label = "OpenStack instances" if source == "openstack" else "SolusVM servers"
        items.append(InvoiceItem(f"{label}, {draft.cycle.label} ({len(lines)} resources)", subtotal))
    return tuple(items)


# -- the plan of a run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectedUsage:
    """A usage record and when the bridge collected it (usage collected after its cycle was invoiced is
    late)."""

    record: UsageRecord
    collected_at: datetime


@dataclass(frozen=True)
class ExistingInvoice:
    """A client's usage invoice that stands (not cancelled): the cycle it bills and when it was made.

    ``lines`` are its lines (late lines of earlier cycles included, each with its own period); None when
    they were not read, which is allowed only while :func:`needs_invoiced_lines` says False.
    """

    reference: str
    cycle_start: datetime
    created_at: datetime
    currency: str
    lines: tuple[PricedLine, ...] | None = None
    cycle_end: datetime | None = None
    """The end of the span it covers (None: the end of the cycle that starts at ``cycle_start``)."""

    def covers(self, cycle: BillingCycle) -> bool:
        """Whether this invoice bills exactly ``cycle``."""
        return self.cycle_start == cycle.start and self.cycle_end in (None, cycle.end)

    def overlaps(self, cycle: BillingCycle) -> bool:
        """Whether this invoice covers an instant of ``cycle`` (a cycle that does is never invoiced again)."""
        if self.cycle_end is None:
            return cycle.contains(self.cycle_start)
        return self.cycle_start < cycle.end and cycle.start < self.cycle_end


@dataclass(frozen=True)
class ClientPrices:
    """The prices a client's usage is billed at: its configuration's ``book``, or, when the client has
    plans or discounts, the ``schedule`` of its terms. ``problem`` says why the schedule could not be put
    together (a plan that is no longer in the settings): such a client's invoices are held."""

    book: PriceBook
    schedule: PriceSchedule | None = None
    problem: str | None = None


@dataclass(frozen=True)
class PlannedInvoice:
    """An invoice a run issues (numbers are given when it is stored, by the bridge's numbering).

    ``preview`` marks an invoice of a cycle that has not ended yet: what it would hold if the cycle
    ended now; only a dry run shows it, a real run never issues it.
    """

    client: Client
    draft: InvoiceDraft
    issuer: str
    status: str
    number: str | None
    proforma_number: str | None
    issued_at: datetime
    due_at: datetime
    detail: str
    preview: bool = False
    taxes: InvoiceTaxes | None = None
    """Its taxes once it is stored, when ``[taxes]`` is on and the bridge issues it."""


@dataclass(frozen=True)
class Held:
    """An invoice that waits: usage that cannot be priced (``errors``), or a ``problem`` with the inputs."""

    client: Client
    reference: str
    errors: tuple[UnpricedResource, ...]
    problem: str | None = None


@dataclass(frozen=True)
class Skipped:
    """An invoice a run does not issue, and why (already invoiced, zero, before the cut-off)."""

    client: Client
    reference: str
    reason: str


@dataclass(frozen=True)
class InvoicePlan:
    """What a run does for one client."""

    issue: tuple[PlannedInvoice, ...] = ()
    held: tuple[Held, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    already: tuple[Skipped, ...] = ()


ALREADY_INVOICED = "already invoiced"
BEFORE_CUTOFF = "cycle ended before generate_invoices_after"
ZERO_AMOUNT = "zero amount (invoice_zero_amounts is off)"


def plan_invoices(
    client: Client,
    configuration: Configuration,
    cycles: Sequence[BillingCycle],
    usage: Iterable[CollectedUsage],
    existing: Sequence[ExistingInvoice],
    prices: ClientPrices,
    *,
    invoice_date: date,
    now: datetime,
) -> InvoicePlan:
    """The invoices ``client`` needs from a run for ``invoice_date`` (see the module docstring).

    ``cycles`` are the cycles the run looks at, oldest first, the last ended one last
    (:func:`~bridge.domain.cycles.cycles_ended_by`); ``usage`` the client's usage collected in them;
    ``existing`` its standing usage invoices, oldest first. Missed cycles come first, each on its own
    invoice, then the last cycle with the late usage of the invoiced ones.
    """
    target = cycles[-1]
    by_cycle = usage_by_cycle(usage, cycles)
    plan = _Plan(client, configuration, prices, local_midnight(invoice_date, target.zone), now)
    late: list[LateUsage] = []
    for cycle in cycles[:-1]:
        records = by_cycle[cycle.start]
        invoice = invoice_covering(cycle, existing)
        if invoice is not None:
            if _has_late_usage(records, invoice):
                late.append(_late_usage(cycle, records, existing))
        elif records and not _overlapped(cycle, existing):
            plan.add(cycle, [collected.record for collected in records], [])
    covering = invoice_covering(target, existing) or next(
        (invoice for invoice in existing if invoice.overlaps(target)), None
    )
    if covering is not None:
        return plan.result(Skipped(client, covering.reference, ALREADY_INVOICED))
    plan.add(target, [collected.record for collected in by_cycle[target.start]], late)
    return plan.result()


def invoice_covering(cycle: BillingCycle, existing: Sequence[ExistingInvoice]) -> ExistingInvoice | None:
    """The standing invoice that bills exactly ``cycle``, if any ("already invoiced" is a matter of the
    span covered, not of where a cycle starts: a changed schedule never re-covers invoiced time)."""
    return next((invoice for invoice in existing if invoice.covers(cycle)), None)


def _overlapped(cycle: BillingCycle, existing: Sequence[ExistingInvoice]) -> bool:
    return any(invoice.overlaps(cycle) for invoice in existing)


def needs_invoiced_lines(
    cycles: Sequence[BillingCycle], usage: Iterable[CollectedUsage], existing: Sequence[ExistingInvoice]
) -> bool:
    """Whether :func:`plan_invoices` compares late usage with invoiced lines, so ``existing`` must carry
    its lines: an invoiced cycle (not the last) has usage collected after its invoice was made."""
    by_cycle = usage_by_cycle(usage, cycles)
    return any(
        (invoice := invoice_covering(cycle, existing)) is not None
        and _has_late_usage(by_cycle[cycle.start], invoice)
        for cycle in cycles[:-1]
    )


def usage_by_cycle(
    usage: Iterable[CollectedUsage], cycles: Sequence[BillingCycle]
) -> dict[datetime, list[CollectedUsage]]:
    """The usage under the cycle its window starts in (by cycle start); usage outside ``cycles`` is left
    out (a run reads the widest range of a chunk of clients at once)."""
    starts = [cycle.start for cycle in cycles]
    grouped: dict[datetime, list[CollectedUsage]] = {start: [] for start in starts}
    for collected in usage:
        window_start = collected.record.window.start
        index = bisect.bisect_right(starts, window_start) - 1
        if index < 0 or window_start >= cycles[-1].end:
            continue
        grouped[starts[index]].append(collected)
    return grouped


def issuer(configuration: Configuration) -> str:
    """``bridge`` when the bridge issues (and numbers) the configuration's invoices, ``whmcs`` when WHMCS
    does (through the outbox)."""
    return BRIDGE if configuration.generate_invoices else WHMCS


def _has_late_usage(records: Sequence[CollectedUsage], invoice: ExistingInvoice) -> bool:
    return any(collected.collected_at > invoice.created_at for collected in records)


def _late_usage(
    cycle: BillingCycle, records: Sequence[CollectedUsage], existing: Sequence[ExistingInvoice]
) -> LateUsage:
    """The cycle's usage for re-pricing, with every line already invoiced for it (on any invoice)."""
    currency = existing[0].currency
    earlier = []
    for invoice in existing:
        if invoice.lines is None:
            raise ValueError(
                f"the lines of invoice {invoice.reference} are needed for late usage of {cycle} but were "
                "not read"
            )
        earlier += [
            replace(line, period=cycle, currency=currency)
            for line in invoice.lines
            if line.period.start == cycle.start
        ]
    return LateUsage(cycle, tuple(collected.record for collected in records), tuple(earlier))


class _Plan:
    """One client's plan as it is built, cycle by cycle."""

    def __init__(
        self,
        client: Client,
        configuration: Configuration,
        prices: ClientPrices,
        issued_at: datetime,
        now: datetime,
    ) -> None:
        self.client = client
        self.configuration = configuration
        self.prices = prices
        self.issued_at = issued_at
        self.now = now
        self.issue: list[PlannedInvoice] = []
        self.held: list[Held] = []
        self.skipped: list[Skipped] = []

    def add(self, cycle: BillingCycle, records: list[UsageRecord], late: list[LateUsage]) -> None:
        """The invoice for one cycle, or nothing (no usage), held or skipped with the reason."""
        if not records and not late:
            return
        client, configuration = self.client, self.configuration
        try:
            result = self._draft(cycle, records, late)
        except ValueError as error:
            self.held.append(Held(client, usage_invoice(client.id, cycle.label), (), problem=str(error)))
            return
        draft = result.draft
        if result.held:
            self.held.append(Held(client, draft.reference, result.errors))
            return
        after = configuration.generate_invoices_after
        if after is not None and cycle.end <= after:
            self.skipped.append(Skipped(client, draft.reference, BEFORE_CUTOFF))
            return
        if draft.is_empty or zero_skipped(draft.total, not configuration.do_not_invoice_zero_prices):
            self.skipped.append(Skipped(client, draft.reference, ZERO_AMOUNT))
            return
        self.issue.append(
            PlannedInvoice(
                client=client,
                draft=draft,
                issuer=issuer(configuration),
                status=NEW_STATUS,
                number=None,
                proforma_number=None,
                issued_at=self.issued_at,
                due_at=due_at(configuration, self.issued_at),
                detail=configuration.invoice_detail,
                preview=cycle.end > self.now,
            )
        )

    def _draft(self, cycle: BillingCycle, records: list[UsageRecord], late: list[LateUsage]) -> DraftResult:
        client, prices = self.client, self.prices
        if prices.book.currency != client.currency:
            raise ValueError(
                f"client {client.id} is billed in {client.currency} but the prices are in "
                f"{prices.book.currency}; change the client's currency or add prices in it"
            )
        if prices.problem is not None:
            raise ValueError(prices.problem)
        cap = self.configuration.billable_seconds_per_month
        if prices.schedule is not None:
            return draft_with_terms(
                str(client.id),
                client.currency,
                cycle,
                records,
                prices.schedule,
                late_usage=late,
                billable_seconds_per_month=cap,
            )
        return draft_invoice(
            str(client.id),
            client.currency,
            cycle,
            records,
            prices.book,
            late_usage=late,
            billable_seconds_per_month=cap,
        )

    def result(self, *already: Skipped) -> InvoicePlan:
        return InvoicePlan(tuple(self.issue), tuple(self.held), tuple(self.skipped), tuple(already))
