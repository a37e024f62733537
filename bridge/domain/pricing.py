"""Pricing: one resource's usage in one billing cycle -> priced invoice lines.

OpenStack (Fleio's model): amount = billed hours x the flavor's hourly price. With *limit billable seconds
per month* (seed 001, default 2,400,000 s = 666.666667 h = 27.78 days) billed hours = min(hours, cap), but
only when the cycle is monthly AND the resource ran one flavor for the whole cycle (no upgrade or
downgrade); the seconds beyond the cap are free, so an always-on VM costs the same in February and March.

SolusVM 2 (WHMCS post-pay, research/solusvm2-api.md section 5): any started hour is billed in full, per
server per cycle, and the plan's ``tokens_per_month`` caps the tokens under the same conditions as above:
tokens = min(ceil(hours) x tokens_per_hour, tokens_per_month); amount = tokens x token price. The
billable-seconds cap is Fleio's and does not apply to SolusVM lines (744 h x 7 = 5208 -> 5000 tokens).

Decisions:

* Billed hours keep :data:`HOURS_PLACES` = 6 decimals, rounded half up (sub-second precision: 1 s is
  0.000278 h); the cap 2,400,000 / 3600 = 666.666...7 h is billed as 666.666667 h. A line's amount is
  :func:`~bridge.domain.money.round_money` of its own quantity x unit price, so a client can recompute
  every line from what the invoice prints.
* A resource or plan with zero hours in the cycle gives no line (and needs no price); a line with hours
  but a zero amount (a free flavor, a few seconds) is kept as evidence that the resource ran.
* Usage that cannot be priced safely (no price, a window across the cycle edge, overlapping windows that
  would bill the same hours twice) raises a :class:`PricingError`; :func:`price_usage` keeps it per
  resource so the other resources are still priced.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Literal, NoReturn

from bridge.domain.cycles import BillingCycle
from bridge.domain.money import Money, check_currency, round_money
from bridge.domain.usage import SOURCES, Source, UsageRecord, Window

DEFAULT_BILLABLE_SECONDS_PER_MONTH = 2_400_000
HOURS_PLACES = 6
ESTIMATE_HOURS_PER_MONTH = Decimal(720)  # the "24 h x 30 days" month of credit estimates (seed 000)

FLAVOR_PRICES_KEY = "pricing.flavors"
SOLUSVM_PLANS_KEY = "pricing.solusvm_plans"
TOKEN_PRICE_KEY = "pricing.token_price"

_HOURS_QUANTUM = Decimal(1).scaleb(-HOURS_PLACES)
_SECONDS_PER_HOUR = Decimal(3600)
_ZERO = Decimal(0)

Unit = Literal["hour", "token"]


class PricingError(Exception):
    """Why one resource's usage cannot be priced; ``settings_key`` names the setting that fixes it, if any."""

    def __init__(self, message: str, settings_key: str | None = None) -> None:
        super().__init__(message)
        self.settings_key = settings_key


class MissingPrice(PricingError):
    """A flavor, plan or token price the price book lacks; the message names the settings key to add."""

    def __init__(self, subject: str, settings_key: str) -> None:
        super().__init__(f"no price for {subject}; add {settings_key} to the settings file", settings_key)
        self.subject = subject


class UnusableUsage(PricingError):
    """Usage records that would bill wrongly: a window outside the cycle, or windows that overlap."""


def settings_key(table: str, name: str) -> str:
    """The TOML key of ``name`` in ``table``, always quoted: ``pricing.flavors."m1.small"``."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'{table}."{escaped}"'


@dataclass(frozen=True)
class PlanRate:
    """A SolusVM plan's token rate: tokens per started hour, capped at ``tokens_per_month`` (None: no cap)."""

    tokens_per_hour: int
    tokens_per_month: int | None = None

    def __post_init__(self) -> None:
        _require_count(self.tokens_per_hour, "tokens_per_hour")
        if self.tokens_per_month is not None:
            _require_count(self.tokens_per_month, "tokens_per_month")


def capped_tokens(hours: int, rate: PlanRate) -> int:
    """min(hours x tokens_per_hour, tokens_per_month): 744 h x 7 = 5208 -> 5000 at a cap of 5000."""
    uncapped = hours * rate.tokens_per_hour
    return uncapped if rate.tokens_per_month is None else min(uncapped, rate.tokens_per_month)


@dataclass(frozen=True)
class PriceBook:
    """The prices in force, in one currency.

    ``flavor_prices``: OpenStack flavor name -> price per hour. ``token_price``: the price of one SolusVM
    token (such as 0.00100). ``plans``: SolusVM plan id -> :class:`PlanRate`. All prices are Decimal.
    """

    currency: str
    flavor_prices: Mapping[str, Decimal] = field(default_factory=dict)
    token_price: Decimal | None = None
    plans: Mapping[str, PlanRate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_currency(self.currency)
        for flavor, price in self.flavor_prices.items():
            _require_price(price, settings_key(FLAVOR_PRICES_KEY, flavor))
        if self.token_price is not None:
            _require_price(self.token_price, TOKEN_PRICE_KEY)
        object.__setattr__(self, "flavor_prices", MappingProxyType(dict(self.flavor_prices)))
        object.__setattr__(self, "plans", MappingProxyType(dict(self.plans)))

    def hourly_price(self, flavor: str) -> Decimal:
        """The price per hour of an OpenStack flavor."""
        if flavor not in self.flavor_prices:
            raise MissingPrice(f'OpenStack flavor "{flavor}"', settings_key(FLAVOR_PRICES_KEY, flavor))
        return self.flavor_prices[flavor]

    def plan_rate(self, plan: str) -> PlanRate:
        """The token rate of a SolusVM plan."""
        if plan not in self.plans:
            raise MissingPrice(f'SolusVM plan "{plan}"', settings_key(SOLUSVM_PLANS_KEY, plan))
        return self.plans[plan]

    def solusvm_token_price(self) -> Decimal:
        """The price of one SolusVM token."""
        if self.token_price is None:
            raise MissingPrice("SolusVM tokens", TOKEN_PRICE_KEY)
        return self.token_price

    def hourly_cost(self, source: Source, plan: str) -> Decimal:
        """What one hour of ``plan`` costs, unrounded (a SolusVM plan: tokens per hour x token price)."""
        if source == "solusvm":
            return self.plan_rate(plan).tokens_per_hour * self.solusvm_token_price()
        return self.hourly_price(plan)


@dataclass(frozen=True)
class PricedLine:
    """One invoice line: one resource on one flavor or plan in one billing cycle.

    ``hours`` is what the resource ran, as collected; ``billed_hours`` is what is charged (capped for
    OpenStack, rounded up to whole hours for SolusVM). ``unit_price`` is per hour (OpenStack) or per token
    (SolusVM), and ``amount`` = round_money(quantity x unit_price), rounded once. ``capped`` says the
    billable-seconds cap or the plan's monthly tokens lowered it. ``late`` marks usage that arrived after
    ``period`` was invoiced; ``period`` is then that original cycle, not the invoice's.
    """

    source: Source
    resource_id: str
    resource_name: str
    plan: str
    period: BillingCycle
    hours: Decimal
    billed_hours: Decimal
    unit_price: Decimal
    amount: Decimal
    currency: str
    capped: bool = False
    tokens_per_hour: int | None = None
    tokens: int | None = None
    late: bool = False

    @property
    def unit(self) -> Unit:
        return "token" if self.tokens is not None else "hour"

    @property
    def quantity(self) -> Decimal:
        """What ``unit_price`` multiplies: tokens for SolusVM, billed hours for OpenStack."""
        return Decimal(self.tokens) if self.tokens is not None else self.billed_hours

    @property
    def key(self) -> tuple[Source, str, str]:
        """(source, resource id, plan): what a line of one cycle bills."""
        return (self.source, self.resource_id, self.plan)

    @property
    def reference(self) -> str:
        """A deterministic id of what this line bills, so a re-run never adds the line twice.

        Unique within one invoice; a second round of late usage for the same cycle lands on a later invoice
        under the same line reference, so (invoice reference, line reference) is the key across invoices.
        """
        late = ":late" if self.late else ""
        return f"{self.source}:{self.resource_id}:{self.plan}:{self.period.label}{late}"

    @property
    def sort_key(self) -> tuple[int, str, str, datetime, str]:
        """The one line order of invoices: source, resource name, resource id, then period and plan."""
        return (
            SOURCES.index(self.source),
            self.resource_name,
            self.resource_id,
            self.period.start,
            self.plan,
        )

    def description(self) -> str:
        """The invoice text: what ran, when, and how the amount comes about."""
        first = self.period.local_start.date().isoformat()
        last = (self.period.local_end - timedelta(microseconds=1)).date().isoformat()  # the end is exclusive
        late = " (late usage)" if self.late else ""
        capped = ", capped" if self.capped else ""
        return (
            f"{self.resource_name} ({self.plan}) {first} to {last}{late}: "
            f"{self.quantity} {self.unit}s x {self.unit_price} {self.currency}{capped}"
        )


@dataclass(frozen=True)
class UnpricedResource:
    """A resource whose usage in ``period`` could not be priced, and why; its client's invoice is held."""

    source: Source
    resource_id: str
    resource_name: str
    period: BillingCycle
    reason: str
    settings_key: str | None = None

    @property
    def sort_key(self) -> tuple[int, str, str, datetime]:
        return (SOURCES.index(self.source), self.resource_name, self.resource_id, self.period.start)


@dataclass(frozen=True)
class PricedUsage:
    """The lines of every resource that could be priced, and the resources that could not."""

    lines: tuple[PricedLine, ...]
    errors: tuple[UnpricedResource, ...]


def quantize_hours(hours: Decimal) -> Decimal:
    """Hours to :data:`HOURS_PLACES` decimals, half up: how hours appear on a line."""
    return hours.quantize(_HOURS_QUANTUM, rounding=ROUND_HALF_UP)


@functools.lru_cache(maxsize=16)
def billable_hours_cap(billable_seconds_per_month: int) -> Decimal:
    """The monthly cap in hours: 2,400,000 s -> 666.666667 h."""
    _require_count(billable_seconds_per_month, "billable_seconds_per_month")
    if billable_seconds_per_month == 0:
        raise ValueError("billable_seconds_per_month must be above 0; pass None to bill every second")
    return quantize_hours(Decimal(billable_seconds_per_month) / _SECONDS_PER_HOUR)


def price_usage(
    records: Iterable[UsageRecord],
    cycle: BillingCycle,
    book: PriceBook,
    *,
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> PricedUsage:
    """Price every resource's usage in ``cycle``; a resource that fails is listed, the others still priced.

    ``billable_seconds_per_month`` is the client's limit (seed 001); None turns it off.
    """
    lines: list[PricedLine] = []
    errors: list[UnpricedResource] = []
    for resource_records in _by_resource(records):
        try:
            lines += _price_one(resource_records, cycle, book, billable_seconds_per_month)
        except PricingError as error:
            errors.append(_unpriced(resource_records, cycle, error))
    return PricedUsage(
        tuple(sorted(lines, key=lambda line: line.sort_key)),
        tuple(sorted(errors, key=lambda error: error.sort_key)),
    )


def price_resource(
    records: Sequence[UsageRecord],
    cycle: BillingCycle,
    book: PriceBook,
    *,
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH,
) -> tuple[PricedLine, ...]:
    """The lines of one resource's usage in ``cycle``: one per flavor or plan it ran, in plan order.

    The caps apply only when ``cycle`` is monthly and the resource ran a single flavor or plan in it.
    Raises :class:`PricingError` (MissingPrice, UnusableUsage) when the usage cannot be priced.
    """
    _check_one_resource(records)
    return _price_one(records, cycle, book, billable_seconds_per_month)


def _price_one(
    records: Sequence[UsageRecord],
    cycle: BillingCycle,
    book: PriceBook,
    billable_seconds_per_month: int | None,
) -> tuple[PricedLine, ...]:
    """:func:`price_resource` for records already known to be of one resource."""
    ordered, hours_by_plan = _scan(records)
    _check_inside(ordered, cycle)
    cap_applies = cycle.is_monthly and len(hours_by_plan) == 1
    hours_cap = None if billable_seconds_per_month is None else billable_hours_cap(billable_seconds_per_month)
    lines = []
    for plan, hours in sorted(hours_by_plan.items()):
        if hours == 0:
            continue
        usage = _PlanUsage(
            ordered[0].source, ordered[0].resource_id, _latest(ordered).resource_name, plan, hours
        )
        if usage.source == "solusvm":
            lines.append(_solusvm_line(usage, cycle, book, cap_applies))
        else:
            lines.append(_openstack_line(usage, cycle, book, hours_cap if cap_applies else None))
    return tuple(lines)


@dataclass(frozen=True)
class _PlanUsage:
    source: Source
    resource_id: str
    resource_name: str
    plan: str
    hours: Decimal


def _openstack_line(
    usage: _PlanUsage, cycle: BillingCycle, book: PriceBook, cap: Decimal | None
) -> PricedLine:
    price = book.hourly_price(usage.plan)
    hours = quantize_hours(usage.hours)
    billed = hours if cap is None else min(hours, cap)
    return PricedLine(
        source=usage.source,
        resource_id=usage.resource_id,
        resource_name=usage.resource_name,
        plan=usage.plan,
        period=cycle,
        hours=usage.hours,
        billed_hours=billed,
        unit_price=price,
        amount=round_money(billed * price, book.currency),
        currency=book.currency,
        capped=billed < hours,
    )


def _solusvm_line(usage: _PlanUsage, cycle: BillingCycle, book: PriceBook, cap_applies: bool) -> PricedLine:
    rate = book.plan_rate(usage.plan)
    token_price = book.solusvm_token_price()
    billed_hours = usage.hours.to_integral_value(rounding=ROUND_CEILING)
    uncapped = int(billed_hours) * rate.tokens_per_hour
    tokens = capped_tokens(int(billed_hours), rate if cap_applies else replace(rate, tokens_per_month=None))
    return PricedLine(
        source=usage.source,
        resource_id=usage.resource_id,
        resource_name=usage.resource_name,
        plan=usage.plan,
        period=cycle,
        hours=usage.hours,
        billed_hours=billed_hours,
        unit_price=token_price,
        amount=round_money(tokens * token_price, book.currency),
        currency=book.currency,
        capped=tokens < uncapped,
        tokens_per_hour=rate.tokens_per_hour,
        tokens=tokens,
    )


@dataclass(frozen=True)
class RunningResource:
    """A resource running now, for the burn rate behind credit estimates and auto-invoices."""

    source: Source
    resource_id: str
    plan: str


def burn_rate_per_hour(resources: Iterable[RunningResource], book: PriceBook) -> Money:
    """What the running ``resources`` cost per hour together, unrounded (a rate, not an invoice amount).

    Raises :class:`MissingPrice` rather than underestimate a client's consumption.
    """
    total = sum((book.hourly_cost(resource.source, resource.plan) for resource in resources), Decimal(0))
    return Money(total, book.currency)


def estimated_monthly_cost(
    hourly_cost: Money, billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH
) -> Money:
    """The auto-invoice estimate of a month's consumption: hourly cost x min(720 h, cap), rounded once.

    Seed 000: with the billable-seconds cap the estimate is less than 24 h x 30 days x the hourly cost.
    """
    hours = ESTIMATE_HOURS_PER_MONTH
    if billable_seconds_per_month is not None:
        hours = min(hours, billable_hours_cap(billable_seconds_per_month))
    return (hourly_cost * hours).rounded()


def _by_resource(records: Iterable[UsageRecord]) -> list[list[UsageRecord]]:
    """Records grouped per (source, resource id), groups in that order.

    Consecutive records of one resource (as the store returns them) join the current group without a
    lookup; the dictionary is consulted only when the resource changes.
    """
    groups: dict[tuple[Source, str], list[UsageRecord]] = {}
    current: list[UsageRecord] = []
    source, resource_id = "", ""
    for record in records:
        if record.resource_id != resource_id or record.source != source:
            source, resource_id = record.source, record.resource_id
            current = groups.setdefault((record.source, resource_id), [])
        current.append(record)
    return [groups[key] for key in sorted(groups)]


def _scan(records: Sequence[UsageRecord]) -> tuple[Sequence[UsageRecord], dict[str, Decimal]]:
    """The records in window order, checked for overlaps, and their hours per plan, in one pass.

    Usage comes from the store already in window order; only out-of-order input is sorted (and scanned
    again).
    """
    hours: dict[str, Decimal] = {}
    previous: UsageRecord | None = None
    for record in records:
        window = record.window
        if previous is not None and window.start < previous.window.end:
            if window.start < previous.window.start:
                return _scan(sorted(records, key=_window_start))
            if not _interleaved_totals(previous, record):
                _overlap(previous.window, window)
        previous = record
        hours[record.plan] = hours.get(record.plan, _ZERO) + record.hours
    return records, hours


def _interleaved_totals(before: UsageRecord, after: UsageRecord) -> bool:
    """Two totals whose spans cross: of two plans (resized and back) or two owners (moved and back) of
    the resource, not an overlap. The windows inside them were one row each per start (the store's key)."""
    return before.summed and after.summed


def _latest(ordered: Sequence[UsageRecord]) -> UsageRecord:
    """The record whose window ends last: the last one, unless totals interleave."""
    last = ordered[-1]
    if not last.summed:
        return last
    return max(ordered, key=lambda record: record.window.end)


def _check_one_resource(records: Sequence[UsageRecord]) -> None:
    resources = {(record.source, record.resource_id) for record in records}
    if len(resources) != 1:
        raise ValueError(f"price_resource needs the records of exactly one resource, got {sorted(resources)}")


def _window_start(record: UsageRecord) -> datetime:
    return record.window.start


def _check_inside(ordered: Sequence[UsageRecord], cycle: BillingCycle) -> None:
    """Every window inside the cycle. ``ordered`` by start and free of overlaps, so the first window starts
    first and the latest (:func:`_latest`) ends last: checking those two suffices."""
    for record in (ordered[0], _latest(ordered)):
        window = record.window
        if not (cycle.start <= window.start and window.end <= cycle.end):
            raise UnusableUsage(
                f"usage window {window.start.isoformat()}..{window.end.isoformat()} is not inside the "
                f"billing cycle {cycle.start.isoformat()}..{cycle.end.isoformat()}; collect windows that end "
                "on cycle boundaries"
            )


def _overlap(before: Window, after: Window) -> NoReturn:
    raise UnusableUsage(
        f"usage windows {before.start.isoformat()}..{before.end.isoformat()} and "
        f"{after.start.isoformat()}..{after.end.isoformat()} overlap, which would bill the same "
        "hours twice; remove the duplicate usage"
    )


def _unpriced(records: Sequence[UsageRecord], cycle: BillingCycle, error: PricingError) -> UnpricedResource:
    first = records[0]
    name = _latest_name(records)
    return UnpricedResource(first.source, first.resource_id, name, cycle, str(error), error.settings_key)


def _latest_name(records: Sequence[UsageRecord]) -> str:
    """The resource's name as last reported (a VM renamed mid-cycle shows its new name)."""
    return max(records, key=lambda record: record.window.end).resource_name


def _require_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number of at least 0, got {value!r}")


def _require_price(price: Decimal, key: str) -> None:
    if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
        raise ValueError(f"{key} must be a Decimal price of at least 0, got {price!r}; write it as a string")
