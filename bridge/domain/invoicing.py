"""Invoice drafts: a pure function of a client, a billing cycle, its usage and the price book.

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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from bridge.domain.cycles import BillingCycle
from bridge.domain.money import check_currency, round_money
from bridge.domain.pricing import (
    DEFAULT_BILLABLE_SECONDS_PER_MONTH,
    PriceBook,
    PricedLine,
    PricedUsage,
    UnpricedResource,
    price_usage,
)
from bridge.domain.usage import SOURCES, Source, UsageRecord


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
    return f"BB-{client_id}-{cycle.label}"


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


def price_late_usage(
    late: LateUsage,
    price_book: PriceBook,
    *,
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> PricedUsage:
    """The lines that bill what ``late`` adds to its already invoiced cycle, marked late."""
    repriced = price_usage(
        late.records, late.cycle, price_book, billable_seconds_per_month=billable_seconds_per_month
    )
    lines: list[PricedLine] = []
    errors = list(repriced.errors)
    for line in repriced.lines:
        before = [invoiced for invoiced in late.invoiced if invoiced.key == line.key]
        quantity = line.quantity - sum((invoiced.quantity for invoiced in before), Decimal(0))
        if quantity > 0:
            lines.append(_beyond_invoiced(line, before, quantity))
        elif quantity < 0:
            errors.append(_invoiced_too_much(line, quantity))
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
