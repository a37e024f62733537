"""Pricing plans and discounts over time (issue 8, seed 003): a client's terms and how they price a cycle.

**Terms.** A client's terms are the plan assignments and discounts it was given, each from a start instant
(a discount optionally until an end). The plan in force at an instant is the assignment with the latest
start at or before it (of two with the same start, the one given last); before any assignment, the
default plan (``[pricing]``). A discount is in force in ``[starts_at, ends_at)``.

**Pricing a cycle under terms** (:func:`price_with_terms`). Terms that change inside a cycle split it into
segments at each change. The cycle's quantities are computed once, over the whole cycle, exactly as
without terms (the billable-seconds cap and SolusVM's round-up and monthly tokens see the whole cycle);
the billed quantity of each line is then given to the segments in time order (a usage window belongs to
the segment it starts in), so the free hours of a capped resource are its last ones. Each segment's part
is priced with that segment's plan. Without changes inside the cycle the lines are the plain lines of
:func:`~bridge.domain.pricing.price_usage`, byte for byte.

**Discounts.** A percentage discount multiplies the value of the lines it applies to; a fixed amount is
taken once per invoice from the lines it applies to, in line order, never below zero (what is left over
is not carried to the next invoice). Either may be limited to a source (``openstack``, ``solusvm``, or
``fees`` for recurring charges) and to a resource kind (an OpenStack flavor, a SolusVM plan id, or a
subscription's name). A line keeps its list unit price and says in its description what was taken off;
its amount is rounded once, from quantity x unit price x (1 - percentages) - fixed share, so the total
still equals the sum of the printed lines. Late usage is priced with the plan and percentage discounts in
force at the end of its own cycle (:func:`bridge.domain.invoicing.draft_with_terms`); fixed amounts are
not taken again from it.

**When a change starts** (:func:`resolve_start`): now, the current period, or back into the previous
period while its invoice is in the grace period.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from bridge.domain.cycles import BillingCycle, local_midnight, previous_cycle
from bridge.domain.instants import as_utc
from bridge.domain.money import round_money
from bridge.domain.pricing import (
    DEFAULT_BILLABLE_SECONDS_PER_MONTH,
    PlanRate,
    PriceBook,
    PricedLine,
    PricedUsage,
    PricingError,
    UnpricedResource,
    price_usage,
    quantize_hours,
)
from bridge.domain.usage import UsageRecord

DEFAULT_PLAN = "default"
"""The plan every client is on until another is assigned: the ``[pricing]`` price book."""
FEES = "fees"
"""The discount source of recurring charges (subscription fees and charges)."""
DISCOUNT_SOURCES = ("openstack", "solusvm", FEES)
START_KEYWORDS = ("now", "current-period", "previous-period")

DiscountKind = Literal["percentage", "fixed"]
_TICK = timedelta(microseconds=1)
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


# -- terms ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanAssignment:
    """The client is on ``plan`` from ``starts_at`` on (until a later assignment). ``order`` breaks ties of
    equal starts: the higher one was given later and wins."""

    plan: str
    starts_at: datetime
    order: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts_at", as_utc(self.starts_at))
        if not self.plan or self.plan != self.plan.strip():
            raise ValueError(f"plan name {self.plan!r} must be non-empty text without surrounding spaces")


@dataclass(frozen=True)
class Discount:
    """A percentage (0 < value <= 100) or a fixed amount (value > 0, in the client's currency) off, from
    ``starts_at`` until ``ends_at`` (None: open-ended), optionally only on one source and resource kind."""

    kind: DiscountKind
    value: Decimal
    starts_at: datetime
    ends_at: datetime | None = None
    source: str | None = None
    resource_kind: str | None = None
    order: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts_at", as_utc(self.starts_at))
        if self.ends_at is not None:
            object.__setattr__(self, "ends_at", as_utc(self.ends_at))
            if self.ends_at <= self.starts_at:
                raise ValueError(
                    f"the discount's end {self.ends_at.isoformat()} is not after its start "
                    f"{self.starts_at.isoformat()}; give an end after the start, or none"
                )
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise TypeError(f"a discount's value must be a finite Decimal, not {self.value!r}")
        if self.kind == "percentage":
            if not _ZERO < self.value <= _HUNDRED:
                raise ValueError(f"a percentage discount must be above 0 and at most 100, got {self.value}")
        elif self.kind == "fixed":
            if self.value <= 0:
                raise ValueError(f"a fixed discount must be an amount above 0, got {self.value}")
        else:
            raise ValueError(f"discount kind {self.kind!r} is unknown; use 'percentage' or 'fixed'")
        if self.source is not None and self.source not in DISCOUNT_SOURCES:
            raise ValueError(
                f"discount source {self.source!r} is unknown; use one of {', '.join(DISCOUNT_SOURCES)}"
            )
        if self.resource_kind is not None and (
            not self.resource_kind or self.resource_kind != self.resource_kind.strip()
        ):
            raise ValueError(
                f"resource kind {self.resource_kind!r} must be non-empty text without spaces around"
            )

    def in_force(self, instant: datetime) -> bool:
        return self.starts_at <= instant and (self.ends_at is None or instant < self.ends_at)

    def applies_to(self, source: str, resource_kind: str) -> bool:
        """Whether the discount covers a line of ``source`` for ``resource_kind`` (flavor, plan id, name)."""
        if self.source is not None and self.source != source:
            return False
        return self.resource_kind is None or self.resource_kind == resource_kind

    @property
    def label(self) -> str:
        """``10% off`` or ``5.00 off``, with what it is limited to."""
        amount = f"{self.value.normalize():f}%" if self.kind == "percentage" else f"{self.value:f}"
        scope = " ".join(part for part in (self.source, self.resource_kind) if part)
        return f"{amount} off" + (f" {scope}" if scope else "")

    def same_as(self, other: Discount) -> bool:
        """The same discount given again (everything but the order)."""
        return replace(self, order=0) == replace(other, order=0)


@dataclass(frozen=True)
class ClientTerms:
    """Every plan assignment and discount of one client, in the order they were given."""

    assignments: tuple[PlanAssignment, ...] = ()
    discounts: tuple[Discount, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "assignments", tuple(sorted(self.assignments, key=lambda a: (a.starts_at, a.order)))
        )
        object.__setattr__(
            self, "discounts", tuple(sorted(self.discounts, key=lambda d: (d.starts_at, d.order)))
        )

    @property
    def is_plain(self) -> bool:
        """No plan but the default and no discount, ever: prices are the configuration's, unchanged."""
        return not self.discounts and all(a.plan == DEFAULT_PLAN for a in self.assignments)

    def plan_at(self, instant: datetime) -> str:
        instant = as_utc(instant)
        plan = DEFAULT_PLAN
        for assignment in self.assignments:
            if assignment.starts_at > instant:
                break
            plan = assignment.plan
        return plan

    def discounts_at(self, instant: datetime) -> tuple[Discount, ...]:
        instant = as_utc(instant)
        return tuple(discount for discount in self.discounts if discount.in_force(instant))

    def plans(self) -> frozenset[str]:
        return frozenset({DEFAULT_PLAN, *(assignment.plan for assignment in self.assignments)})

    def with_assignment(self, plan: str, starts_at: datetime) -> ClientTerms:
        """These terms with ``plan`` from ``starts_at``; the same terms if that plan is in force then already.

        Nothing else can change: from ``starts_at`` to the next later assignment the plan is the one in
        force at ``starts_at``, and later assignments still win after their own start.
        """
        if self.plan_at(starts_at) == plan:
            return self
        order = max((a.order for a in self.assignments), default=0) + 1
        return replace(self, assignments=(*self.assignments, PlanAssignment(plan, starts_at, order)))

    def with_discount(self, discount: Discount) -> ClientTerms:
        """These terms with ``discount``; the same terms if an identical discount was given already."""
        if any(discount.same_as(given) for given in self.discounts):
            return self
        order = max((d.order for d in self.discounts), default=0) + 1
        return replace(self, discounts=(*self.discounts, replace(discount, order=order)))

    def changes_within(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants strictly inside ``(start, end)`` at which the plan or a discount changes."""
        instants = {a.starts_at for a in self.assignments}
        instants |= {d.starts_at for d in self.discounts}
        instants |= {d.ends_at for d in self.discounts if d.ends_at is not None}
        return sorted(instant for instant in instants if start < instant < end)


@dataclass(frozen=True)
class Segment:
    """A stretch of a cycle with one plan and one set of discounts in force."""

    start: datetime
    end: datetime
    plan: str
    book: PriceBook
    discounts: tuple[Discount, ...]


@dataclass(frozen=True)
class PriceSchedule:
    """A client's terms with the price book of every plan they name: which prices hold at which instant."""

    terms: ClientTerms
    books: Mapping[str, PriceBook]

    def __post_init__(self) -> None:
        missing = sorted(self.terms.plans() - set(self.books))
        if missing:
            raise ValueError(f"no price book for plan {missing[0]!r}")
        currencies = {book.currency for book in self.books.values()}
        if len(currencies) != 1:
            raise ValueError(f"the plans' price books are in several currencies: {sorted(currencies)}")
        object.__setattr__(self, "books", MappingProxyType(dict(self.books)))

    @classmethod
    def build(cls, terms: ClientTerms, book_of: Callable[[str], PriceBook]) -> PriceSchedule:
        """The schedule of ``terms``, asking ``book_of`` for each plan they name (``default`` included)."""
        return cls(terms, {plan: book_of(plan) for plan in sorted(terms.plans())})

    @property
    def currency(self) -> str:
        return next(iter(self.books.values())).currency

    def book_at(self, instant: datetime) -> PriceBook:
        return self.books[self.terms.plan_at(instant)]

    def segments(self, cycle: BillingCycle) -> tuple[Segment, ...]:
        """The cycle cut at every change of the terms inside it; at least one segment."""
        cuts = [cycle.start, *self.terms.changes_within(cycle.start, cycle.end), cycle.end]
        return tuple(
            Segment(
                start,
                end,
                self.terms.plan_at(start),
                self.book_at(start),
                self.terms.discounts_at(start),
            )
            for start, end in itertools.pairwise(cuts)
        )


# -- lines under terms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermsLine(PricedLine):
    """A priced line that carries what the terms did to it.

    ``since``/``until`` bound the segment the line bills when the terms changed inside the cycle (the
    first segment keeps the plain line reference; later ones add ``@<start>``), and ``discount_note`` says
    what was taken off (``, 10% off``).
    """

    since: datetime | None = None
    until: datetime | None = None
    discount_note: str = ""

    @property
    def reference(self) -> str:
        base = PricedLine.reference.fget(self)  # type: ignore[attr-defined]
        assert isinstance(base, str)
        if self.since is None:
            return base
        return f"{base}@{self.since.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    def description(self) -> str:
        zone = self.period.tz
        first = _local_text(self.since or self.period.start, zone)
        last = ((self.until or self.period.end).astimezone(zone) - _TICK).date().isoformat()
        late = " (late usage)" if self.late else ""
        capped = ", capped" if self.capped else ""
        return (
            f"{self.resource_name} ({self.plan}) {first} to {last}{late}: "
            f"{self.quantity} {self.unit}s x {self.unit_price} {self.currency}{capped}{self.discount_note}"
        )


@dataclass(frozen=True)
class CopiedLine(PricedLine):
    """A line of an issued invoice carried unchanged onto its replacement (late usage of earlier cycles):
    its stored reference and description are kept as the client saw them."""

    stored_reference: str = ""
    stored_description: str = ""

    @property
    def reference(self) -> str:
        return self.stored_reference

    def description(self) -> str:
        return self.stored_description


def _local_text(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return local.date().isoformat()
    return local.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class _Part:
    """A line, or one segment's share of it, before discounts."""

    line: PricedLine
    since: datetime | None
    until: datetime | None
    discounts: tuple[Discount, ...]


def price_with_terms(
    records: Iterable[UsageRecord],
    cycle: BillingCycle,
    schedule: PriceSchedule,
    *,
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
    fixed_discounts: bool = True,
) -> PricedUsage:
    """Every resource's usage in ``cycle`` priced under the client's terms (see the module docstring).

    ``fixed_discounts`` False leaves fixed amounts out (late usage: they were taken on the cycle's invoice).
    """
    records = list(records)
    segments = schedule.segments(cycle)
    if len(segments) == 1 and not segments[0].discounts:
        return price_usage(
            records, cycle, segments[0].book, billable_seconds_per_month=billable_seconds_per_month
        )
    base = price_usage(
        records,
        cycle,
        _quantity_book([segment.book for segment in segments]),
        billable_seconds_per_month=billable_seconds_per_month,
    )
    hours = _hours_by_segment(records, segments)
    parts: list[_Part] = []
    errors = list(base.errors)
    for resource_lines in _by_resource(base.lines):
        try:
            parts += [
                part
                for line in resource_lines
                for part in _split(line, hours.get(line.key, {}), segments, multiple=len(segments) > 1)
            ]
        except PricingError as error:
            first = resource_lines[0]
            errors.append(
                UnpricedResource(
                    first.source,
                    first.resource_id,
                    first.resource_name,
                    cycle,
                    str(error),
                    error.settings_key,
                )
            )
    lines = _discounted(parts, schedule.currency, fixed=fixed_discounts)
    return PricedUsage(
        tuple(sorted(lines, key=lambda line: line.sort_key)),
        tuple(sorted(errors, key=lambda error: error.sort_key)),
    )


def discounted_lines(
    lines: Iterable[PricedLine], discounts: tuple[Discount, ...], currency: str, *, fixed: bool = True
) -> list[PricedLine]:
    """``lines`` with ``discounts`` applied (late usage: percentages only, ``fixed`` False)."""
    return _discounted([_Part(line, None, None, discounts) for line in lines], currency, fixed=fixed)


def _discounted(parts: Sequence[_Part], currency: str, *, fixed: bool = True) -> list[PricedLine]:
    """The parts as lines with their discounts applied, each amount rounded once."""
    values = [_list_value(part.line) * _percent_factor(part) for part in parts]
    shares: list[Decimal] = [_ZERO] * len(parts)
    if fixed:
        fixed_discounts = sorted(
            {d for part in parts for d in part.discounts if d.kind == "fixed"},
            key=lambda d: (d.starts_at, d.order),
        )
        for discount in fixed_discounts:
            remaining = discount.value
            for index, part in enumerate(parts):
                if remaining <= 0:
                    break
                if discount not in part.discounts or not _covers(discount, part.line):
                    continue
                take = min(remaining, values[index] - shares[index])
                if take > 0:
                    shares[index] += take
                    remaining -= take
    lines: list[PricedLine] = []
    for part, value, share in zip(parts, values, shares, strict=True):
        note = _note(part, share, currency)
        if part.since is None and part.until is None and not note:
            lines.append(part.line)
            continue
        line = _terms_line(part.line, part.since, part.until, note)
        lines.append(replace(line, amount=round_money(value - share, currency)))
    return lines


def _list_value(line: PricedLine) -> Decimal:
    return line.quantity * line.unit_price


def _covers(discount: Discount, line: PricedLine) -> bool:
    return discount.applies_to(line.source, line.plan)


def _percent_factor(part: _Part) -> Decimal:
    factor = Decimal(1)
    for discount in part.discounts:
        if discount.kind == "percentage" and _covers(discount, part.line):
            factor *= (_HUNDRED - discount.value) / _HUNDRED
    return factor


def _note(part: _Part, share: Decimal, currency: str) -> str:
    notes = [
        f"{discount.value.normalize():f}% off"
        for discount in part.discounts
        if discount.kind == "percentage" and _covers(discount, part.line)
    ]
    if share > 0:
        notes.append(f"{round_money(share, currency)} {currency} off")
    return "".join(f", {note}" for note in notes)


def _terms_line(line: PricedLine, since: datetime | None, until: datetime | None, note: str) -> TermsLine:
    values = {item.name: getattr(line, item.name) for item in fields(PricedLine)}
    return TermsLine(**values, since=since, until=until, discount_note=note)


def _quantity_book(books: Sequence[PriceBook]) -> PriceBook:
    """A book that knows every flavor, token price and SolusVM rate of ``books``: used only to compute the
    cycle's quantities, which do not depend on prices; each segment's own book prices them."""
    flavors: dict[str, Decimal] = {}
    plans: dict[str, PlanRate] = {}
    token_price = None
    for book in books:
        flavors.update(book.flavor_prices)
        plans.update(book.plans)
        token_price = token_price if token_price is not None else book.token_price
    return PriceBook(books[0].currency, flavors, token_price, plans)


def _hours_by_segment(
    records: Sequence[UsageRecord], segments: Sequence[Segment]
) -> dict[tuple[str, str, str], dict[int, Decimal]]:
    """Hours per (source, resource, plan) and segment; a window belongs to the segment it starts in."""
    starts = [segment.start for segment in segments]
    hours: dict[tuple[str, str, str], dict[int, Decimal]] = {}
    for record in records:
        index = max(bisect.bisect_right(starts, record.window.start) - 1, 0)
        per_segment = hours.setdefault((record.source, record.resource_id, record.plan), {})
        per_segment[index] = per_segment.get(index, _ZERO) + record.hours
    return hours


def _by_resource(lines: Sequence[PricedLine]) -> list[list[PricedLine]]:
    groups: dict[tuple[str, str], list[PricedLine]] = {}
    for line in lines:
        groups.setdefault((line.source, line.resource_id), []).append(line)
    return list(groups.values())


def _split(
    line: PricedLine, hours: Mapping[int, Decimal], segments: Sequence[Segment], *, multiple: bool
) -> list[_Part]:
    """``line``'s billed quantity given to the segments in time order, each part priced by its segment.

    A segment whose hours the cap (or the plan's monthly tokens) left nothing to bill keeps its part, at
    0.00 and capped: every collected hour is on a line, and reconciliation finds it below the cap.
    """
    if not multiple:
        segment = segments[0]
        return [_Part(_repriced(line, segment.book), None, None, segment.discounts)]
    parts: list[_Part] = []
    ran = _ZERO
    given_hours, given_billed, given_tokens = _ZERO, _ZERO, 0
    for index, segment in enumerate(segments):
        segment_hours = hours.get(index, _ZERO)
        if segment_hours == 0:
            continue
        ran += segment_hours
        if line.tokens is None:
            billed = min(quantize_hours(ran), line.billed_hours)
            part = replace(line, hours=segment_hours, billed_hours=billed - given_hours)
            given_hours = billed
        else:
            rate = line.tokens_per_hour or 0
            started = ran.to_integral_value(rounding=ROUND_CEILING)
            tokens = min(int(started) * rate, line.tokens)
            part = replace(
                line, hours=segment_hours, billed_hours=started - given_billed, tokens=tokens - given_tokens
            )
            given_billed, given_tokens = started, tokens
        since = segment.start if index > 0 else None
        until = segment.end if index < len(segments) - 1 else None
        parts.append(_Part(_repriced(part, segment.book), since, until, segment.discounts))
    return parts


def _repriced(line: PricedLine, book: PriceBook) -> PricedLine:
    """``line`` at ``book``'s unit price (its amount is set when the discounts are applied)."""
    price = book.solusvm_token_price() if line.tokens is not None else book.hourly_price(line.plan)
    return replace(line, unit_price=price, amount=round_money(line.quantity * price, line.currency))


# -- when a change starts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedStart:
    """When a plan or discount starts, and which issued invoice that reaches back into.

    ``reaches_previous`` is True when the start lies in the previous billing period (allowed only inside
    its grace period): that period's issued invoice is recalculated.
    """

    at: datetime
    given: str
    reaches_previous: bool
    current: BillingCycle
    previous: BillingCycle


def grace_period_end(previous: BillingCycle, grace_days: int) -> datetime:
    """The instant the previous period's invoice leaves its grace period: ``grace_days`` local days after
    the period ended."""
    return local_midnight(previous.local_end.date() + timedelta(days=grace_days), previous.zone)


def resolve_start(
    text: str,
    now: datetime,
    current: BillingCycle,
    grace_days: int,
    *,
    previous: BillingCycle | None = None,
) -> ResolvedStart:
    """``--start``: ``now``, ``current-period``, ``previous-period`` or seconds since 1970 (seed 003's
    startTimeInSeconds). Raises ValueError naming ``--start`` and the fix.

    Starts before the current period are allowed only back to the previous period's start and only while
    its invoice is in the grace period. ``previous`` is the client's cycle before ``current`` (after a
    schedule switch it is not the schedule's previous cycle); by default the schedule's.
    """
    now = as_utc(now)
    previous = previous or previous_cycle(current)
    value = text.strip()
    if value == "now":
        at = now
    elif value == "current-period":
        at = current.start
    elif value == "previous-period":
        at = previous.start
    elif value.isdigit():
        try:
            at = datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"--start {text!r} is out of range; give seconds since 1970-01-01 UTC") from None
    else:
        raise ValueError(
            f"--start {text!r} is not one of {', '.join(START_KEYWORDS)} or a time in seconds since "
            "1970-01-01 UTC (startTimeInSeconds); e.g. --start current-period"
        )
    if at >= current.start:
        return ResolvedStart(at, value, False, current, previous)
    if at < previous.start:
        raise ValueError(
            f"--start {text} ({at.isoformat()}) is before the previous billing period "
            f"({previous.local_start.date().isoformat()} on), whose invoices are final; give a start from "
            f"{previous.local_start.date().isoformat()} on, e.g. --start current-period"
        )
    closes = grace_period_end(previous, grace_days)
    if now >= closes:
        raise ValueError(
            f"--start {text} reaches into the previous billing period ({previous.label}), whose grace period "
            f"of {grace_days} days ended at {closes.isoformat()}; its invoice can no longer be recalculated: "
            "use --start current-period or now (billing.grace_period_days sets the grace period)"
        )
    return ResolvedStart(at, value, True, current, previous)
